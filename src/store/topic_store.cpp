#include "store/topic_store.hpp"

#include <filesystem>
#include <system_error>
#include <utility>

#include <climits>
#include <sqlite3.h>

namespace ebus::store {

namespace {

// The definition beego's ORM writes for edgecore's SubTopics model (v1.6 - v1.22); gorm
// (v1.23+) accepts it as is, so edgecore and this daemon can share the file either way round.
constexpr const char* create_table_sql =
    R"(CREATE TABLE IF NOT EXISTS "sub_topics" ("topic" text NOT NULL PRIMARY KEY))";
constexpr const char* insert_sql = "INSERT OR REPLACE INTO sub_topics (topic) VALUES (?)";
constexpr const char* remove_sql = "DELETE FROM sub_topics WHERE topic = ?";
constexpr const char* list_sql = "SELECT topic FROM sub_topics";

// edgecore may be writing the same file; wait for its lock rather than failing at once.
constexpr int busy_timeout_ms = 5000;

std::string in_quotes(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  out += s;
  out += '\'';
  return out;
}

// Leaves a statement ready for its next use, whatever happened to this one.
class reset_on_exit {
 public:
  explicit reset_on_exit(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
  reset_on_exit(const reset_on_exit&) = delete;
  reset_on_exit& operator=(const reset_on_exit&) = delete;
  ~reset_on_exit() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

 private:
  sqlite3_stmt* stmt_;
};

}  // namespace

void topic_store::closer::operator()(sqlite3* db) const noexcept {
  // close_v2 defers the close until every statement is finalized, so member order after a
  // move assignment cannot leak the connection.
  sqlite3_close_v2(db);
}

void topic_store::finalizer::operator()(sqlite3_stmt* stmt) const noexcept {
  sqlite3_finalize(stmt);
}

topic_store::topic_store(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

topic_store::topic_store(topic_store&&) noexcept = default;
topic_store& topic_store::operator=(topic_store&&) noexcept = default;
topic_store::~topic_store() = default;

expected<topic_store, std::string> topic_store::open(const std::string& path) {
  const auto fail_open = [&](std::string_view reason) {
    return fail("cannot open " + in_quotes(path) + ": " + std::string(reason));
  };

  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return fail_open("cannot create directory " + in_quotes(parent.string()) + ": " +
                       ec.message());
    }
  }

  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<sqlite3, closer> db(raw);
  if (rc != SQLITE_OK) {
    return fail_open(db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc));
  }
  // SQLite silently falls back to read-only when the file is not writable; we need to write.
  if (sqlite3_db_readonly(db.get(), "main") == 1) return fail_open("the file is read-only");
  sqlite3_busy_timeout(db.get(), busy_timeout_ms);

  if (sqlite3_exec(db.get(), create_table_sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail_open(sqlite3_errmsg(db.get()));
  }

  topic_store store(db.release(), path);
  const auto prepare = [&](const char* sql, statement& out) {
    sqlite3_stmt* stmt = nullptr;
    const int prc =
        sqlite3_prepare_v3(store.db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    out.reset(stmt);
    return prc == SQLITE_OK;
  };
  // A table left by another program without a `topic` column fails here, at start-up.
  if (!prepare(insert_sql, store.insert_) || !prepare(remove_sql, store.remove_) ||
      !prepare(list_sql, store.list_)) {
    return fail_open(sqlite3_errmsg(store.db_.get()));
  }
  return store;
}

expected<void, std::string> topic_store::insert(std::string_view topic) {
  const auto failed = [&](std::string_view reason) {
    return fail("cannot insert topic " + in_quotes(topic) + " into " + in_quotes(path_) + ": " +
                std::string(reason));
  };
  if (!insert_) return failed("the store is closed");
  if (topic.size() > static_cast<std::size_t>(INT_MAX)) return failed("topic too long");

  const reset_on_exit guard(insert_.get());
  // data() of an empty view may be null, which SQLite would bind as NULL instead of ''.
  const char* text = topic.empty() ? "" : topic.data();
  // STATIC: the view outlives the statement's use, which ends in the guard's reset.
  sqlite3_bind_text(insert_.get(), 1, text, static_cast<int>(topic.size()), SQLITE_STATIC);
  if (sqlite3_step(insert_.get()) != SQLITE_DONE) return failed(sqlite3_errmsg(db_.get()));
  return {};
}

expected<void, std::string> topic_store::remove(std::string_view topic) {
  const auto failed = [&](std::string_view reason) {
    return fail("cannot remove topic " + in_quotes(topic) + " from " + in_quotes(path_) + ": " +
                std::string(reason));
  };
  if (!remove_) return failed("the store is closed");
  if (topic.size() > static_cast<std::size_t>(INT_MAX)) return failed("topic too long");

  const reset_on_exit guard(remove_.get());
  const char* text = topic.empty() ? "" : topic.data();
  sqlite3_bind_text(remove_.get(), 1, text, static_cast<int>(topic.size()), SQLITE_STATIC);
  if (sqlite3_step(remove_.get()) != SQLITE_DONE) return failed(sqlite3_errmsg(db_.get()));
  return {};
}

expected<std::vector<std::string>, std::string> topic_store::list() {
  const auto failed = [&](std::string_view reason) {
    return fail("cannot list topics in " + in_quotes(path_) + ": " + std::string(reason));
  };
  if (!list_) return failed("the store is closed");

  const reset_on_exit guard(list_.get());
  std::vector<std::string> topics;
  for (;;) {
    const int rc = sqlite3_step(list_.get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return failed(sqlite3_errmsg(db_.get()));
    // gorm's table (v1.23+) has no NOT NULL; a NULL row names no topic to subscribe.
    if (sqlite3_column_type(list_.get(), 0) == SQLITE_NULL) continue;
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(list_.get(), 0));
    if (text == nullptr) return failed(sqlite3_errmsg(db_.get()));  // out of memory
    const int size = sqlite3_column_bytes(list_.get(), 0);
    topics.emplace_back(text, static_cast<std::size_t>(size));
  }
  return topics;
}

}  // namespace ebus::store
