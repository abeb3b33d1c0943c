#pragma once
// Run-time subscriptions persisted in edgecore's SQLite file: table
// `sub_topics(topic TEXT NOT NULL PRIMARY KEY)`, the table KubeEdge v1.6+ creates, so an
// existing edgecore.db works unchanged. Blocking calls: use them on the store thread
// (store_thread.hpp), never on the event loop.
//
// Thread safety: distinct objects safe; shared objects unsafe.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace ebus::store {

class topic_store {
 public:
  /// Opens (creating the file, its missing parent directories and the table when absent) the
  /// database at `path`. The error names the path and SQLite's reason.
  static expected<topic_store, std::string> open(const std::string& path);

  topic_store(topic_store&&) noexcept;
  topic_store& operator=(topic_store&&) noexcept;
  ~topic_store();

  /// INSERT OR REPLACE, as edgecore.
  expected<void, std::string> insert(std::string_view topic);
  /// DELETE WHERE topic = ?; removing an absent topic is not an error.
  expected<void, std::string> remove(std::string_view topic);
  /// Every stored topic, in table order; empty when there are none (not an error).
  expected<std::vector<std::string>, std::string> list();

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  topic_store(sqlite3* db, std::string path);
  struct closer {
    void operator()(sqlite3* db) const noexcept;
  };
  struct finalizer {
    void operator()(sqlite3_stmt* stmt) const noexcept;
  };
  using statement = std::unique_ptr<sqlite3_stmt, finalizer>;

  std::unique_ptr<sqlite3, closer> db_;
  std::string path_;
  // Prepared once for the connection's life; declared after db_ so they are finalized first.
  statement insert_;
  statement remove_;
  statement list_;
};

}  // namespace ebus::store
