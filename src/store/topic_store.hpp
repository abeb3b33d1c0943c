#pragma once
// Run-time subscriptions persisted in edgecore's SQLite file: table
// `sub_topics(topic TEXT NOT NULL PRIMARY KEY)`, the table KubeEdge v1.6+ creates, so an
// existing edgecore.db works unchanged. Blocking calls: use them on the store thread
// (topic_writer.hpp), never on the event loop.
//
// Durability: the connection runs with `PRAGMA synchronous=FULL`, so a successful apply() has
// been fsynced. The journal mode of the file is left as edgecore made it (a persistent property
// of the file; see docs/TOPICS.md, "Persisted subscriptions").
//
// Errors name the database path and SQLite's reason, never a topic: callers log the topic
// themselves, escaped.
//
// Thread safety: distinct objects safe; shared objects unsafe. set_give_up's predicate is called
// on the thread that runs apply().

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace ebus::store {

/// One change of the sub_topics table.
struct topic_write {
  enum class kind : std::uint8_t {
    insert,  ///< INSERT OR REPLACE, as edgecore
    remove,  ///< DELETE WHERE topic = ?; removing an absent topic is not an error
  };
  kind op = kind::insert;
  std::string topic;
};

class topic_store {
 public:
  /// How long a write waits for a lock another connection (edgecore) holds.
  static constexpr std::chrono::milliseconds default_busy_timeout{5000};

  /// Opens (creating the file, its missing parent directories and the table when absent) the
  /// database at `path`. The error names the path and SQLite's reason.
  static expected<topic_store, std::string> open(
      const std::string& path, std::chrono::milliseconds busy_timeout = default_busy_timeout);

  topic_store(topic_store&&) noexcept;
  topic_store& operator=(topic_store&&) noexcept;
  ~topic_store();

  /// Applies `batch` in order in ONE transaction (BEGIN IMMEDIATE ... COMMIT), with statements
  /// prepared once. All or nothing: on any failure the transaction is rolled back and the error
  /// returned; no row of the batch has changed. An empty batch does nothing.
  expected<void, std::string> apply(std::span<const topic_write> batch);

  /// One-operation batches.
  expected<void, std::string> insert(std::string_view topic);
  expected<void, std::string> remove(std::string_view topic);

  /// Every stored topic, in table order; empty when there are none (not an error).
  expected<std::vector<std::string>, std::string> list();

  /// While a write waits for a lock, `give_up` is asked between short sleeps; when it returns
  /// true the wait ends at once and the write fails (used to bound shutdown).
  void set_give_up(std::function<bool()> give_up);

  /// Transactions committed by apply() (a test hook for batching).
  [[nodiscard]] std::uint64_t commits() const noexcept { return commits_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  struct busy_state;
  topic_store(sqlite3* db, std::string path, std::unique_ptr<busy_state> busy);
  struct closer {
    void operator()(sqlite3* db) const noexcept;
  };
  struct finalizer {
    void operator()(sqlite3_stmt* stmt) const noexcept;
  };
  using statement = std::unique_ptr<sqlite3_stmt, finalizer>;

  expected<void, std::string> run(sqlite3_stmt* stmt);
  expected<void, std::string> step_write(const topic_write& w);
  std::string failed(std::string_view what, std::string_view reason) const;

  // Declared before db_: SQLite's busy handler points into it, so it must outlive the connection.
  std::unique_ptr<busy_state> busy_;
  std::unique_ptr<sqlite3, closer> db_;
  std::string path_;
  std::uint64_t commits_ = 0;
  // Prepared once for the connection's life; declared after db_ so they are finalized first.
  statement insert_;
  statement remove_;
  statement list_;
  statement begin_;
  statement commit_;
  statement rollback_;
};

}  // namespace ebus::store
