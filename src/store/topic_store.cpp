#include "store/topic_store.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <thread>
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
// IMMEDIATE: the write lock is taken (or waited for) at BEGIN, so a batch never fails halfway
// because edgecore started writing meanwhile.
constexpr const char* begin_sql = "BEGIN IMMEDIATE";
constexpr const char* commit_sql = "COMMIT";
constexpr const char* rollback_sql = "ROLLBACK";
// Per connection, not stored in the file: every COMMIT is fsynced before apply() returns, in
// rollback-journal and in WAL mode alike. edgecore's own connections are not affected.
constexpr const char* synchronous_sql = "PRAGMA synchronous=FULL";

// SQLite's default is a bulk allocation of 20 page-cache slots per connection at its first read,
// each slot written to: 87 KB of an idle daemon whose table fits in two pages. Slots are then
// taken one at a time, as pages are read. Global, so set once before SQLite initialises; a
// process that initialised SQLite before keeps its own setting (SQLITE_MISUSE, ignored).
void configure_sqlite_once() {
  static std::once_flag once;
  std::call_once(once, [] { sqlite3_config(SQLITE_CONFIG_PAGECACHE, nullptr, 0, 0); });
}

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

// SQLite's own busy handler (sqlite3_busy_timeout) cannot be cut short; this one sleeps in the
// same growing steps but asks give_up between them.
struct topic_store::busy_state {
  std::chrono::milliseconds timeout;
  std::function<bool()> give_up;
  std::chrono::steady_clock::time_point started{};

  static int handler(void* self, int count) {
    auto& s = *static_cast<busy_state*>(self);
    const auto now = std::chrono::steady_clock::now();
    if (count == 0) s.started = now;
    if (s.give_up && s.give_up()) return 0;
    const auto waited = now - s.started;
    if (waited >= s.timeout) return 0;
    static constexpr std::array<int, 8> steps_ms = {1, 2, 5, 10, 15, 20, 25, 50};
    const auto step = std::chrono::milliseconds(
        steps_ms[std::min(static_cast<std::size_t>(count), steps_ms.size() - 1)]);
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(step, s.timeout - waited));
    return 1;
  }
};

void topic_store::closer::operator()(sqlite3* db) const noexcept {
  // close_v2 defers the close until every statement is finalized, so member order after a
  // move assignment cannot leak the connection.
  sqlite3_close_v2(db);
}

void topic_store::finalizer::operator()(sqlite3_stmt* stmt) const noexcept {
  sqlite3_finalize(stmt);
}

topic_store::topic_store(sqlite3* db, std::string path, std::unique_ptr<busy_state> busy)
    : busy_(std::move(busy)), db_(db), path_(std::move(path)) {}

topic_store::topic_store(topic_store&&) noexcept = default;
topic_store::~topic_store() = default;

topic_store& topic_store::operator=(topic_store&& other) noexcept {
  if (this == &other) return *this;
  // Statements and the connection go before the busy state their handler points into.
  insert_.reset();
  remove_.reset();
  list_.reset();
  begin_.reset();
  commit_.reset();
  rollback_.reset();
  db_.reset();
  busy_ = std::move(other.busy_);
  db_ = std::move(other.db_);
  path_ = std::move(other.path_);
  commits_ = std::exchange(other.commits_, 0);
  insert_ = std::move(other.insert_);
  remove_ = std::move(other.remove_);
  list_ = std::move(other.list_);
  begin_ = std::move(other.begin_);
  commit_ = std::move(other.commit_);
  rollback_ = std::move(other.rollback_);
  return *this;
}

expected<topic_store, std::string> topic_store::open(const std::string& path,
                                                     std::chrono::milliseconds busy_timeout) {
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

  configure_sqlite_once();
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  auto busy = std::make_unique<busy_state>();
  busy->timeout = busy_timeout;
  std::unique_ptr<sqlite3, closer> db(raw);
  if (rc != SQLITE_OK) {
    return fail_open(db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc));
  }
  // SQLite silently falls back to read-only when the file is not writable; we need to write.
  if (sqlite3_db_readonly(db.get(), "main") == 1) return fail_open("the file is read-only");
  // edgecore may be writing the same file; wait for its lock rather than failing at once.
  sqlite3_busy_handler(db.get(), &busy_state::handler, busy.get());

  if (sqlite3_exec(db.get(), synchronous_sql, nullptr, nullptr, nullptr) != SQLITE_OK ||
      sqlite3_exec(db.get(), create_table_sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail_open(sqlite3_errmsg(db.get()));
  }

  topic_store store(db.release(), path, std::move(busy));
  const auto prepare = [&](const char* sql, statement& out) {
    sqlite3_stmt* stmt = nullptr;
    const int prc =
        sqlite3_prepare_v3(store.db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    out.reset(stmt);
    return prc == SQLITE_OK;
  };
  // A table left by another program without a `topic` column fails here, at start-up.
  if (!prepare(insert_sql, store.insert_) || !prepare(remove_sql, store.remove_) ||
      !prepare(list_sql, store.list_) || !prepare(begin_sql, store.begin_) ||
      !prepare(commit_sql, store.commit_) || !prepare(rollback_sql, store.rollback_)) {
    return fail_open(sqlite3_errmsg(store.db_.get()));
  }
  return store;
}

void topic_store::set_give_up(std::function<bool()> give_up) {
  if (busy_) busy_->give_up = std::move(give_up);
}

std::string topic_store::failed(std::string_view what, std::string_view reason) const {
  return "cannot " + std::string(what) + " in " + in_quotes(path_) + ": " + std::string(reason);
}

expected<void, std::string> topic_store::run(sqlite3_stmt* stmt) {
  const reset_on_exit guard(stmt);
  if (sqlite3_step(stmt) != SQLITE_DONE) return fail(std::string(sqlite3_errmsg(db_.get())));
  return {};
}

expected<void, std::string> topic_store::step_write(const topic_write& w) {
  if (w.topic.size() > static_cast<std::size_t>(INT_MAX))
    return fail(std::string("topic too long"));
  sqlite3_stmt* stmt = w.op == topic_write::kind::insert ? insert_.get() : remove_.get();
  const reset_on_exit guard(stmt);
  // data() of an empty string is never null, so '' is bound as '' and not as NULL.
  // STATIC: the string outlives the statement's use, which ends in the guard's reset.
  sqlite3_bind_text(stmt, 1, w.topic.data(), static_cast<int>(w.topic.size()), SQLITE_STATIC);
  if (sqlite3_step(stmt) != SQLITE_DONE) return fail(std::string(sqlite3_errmsg(db_.get())));
  return {};
}

expected<void, std::string> topic_store::apply(std::span<const topic_write> batch) {
  const std::string what =
      batch.size() == 1 ? std::string("write 1 topic")
                        : "write " + std::to_string(batch.size()) + " topics in one transaction";
  if (!db_) return fail(failed(what, "the store is closed"));
  if (batch.empty()) return {};
  if (auto begun = run(begin_.get()); !begun) return fail(failed(what, begun.error()));
  for (const auto& w : batch) {
    if (auto ok = step_write(w); !ok) {
      // Some errors (I/O, full disk) roll back on their own; ROLLBACK is then a harmless no-op
      // failure, and autocommit tells which case this is.
      if (sqlite3_get_autocommit(db_.get()) == 0) (void)run(rollback_.get());
      return fail(failed(what, ok.error()));
    }
  }
  if (auto committed = run(commit_.get()); !committed) {
    // COMMIT can fail with SQLITE_BUSY (a reader holds the file) and leave the transaction open.
    if (sqlite3_get_autocommit(db_.get()) == 0) (void)run(rollback_.get());
    return fail(failed(what, committed.error()));
  }
  ++commits_;
  return {};
}

expected<void, std::string> topic_store::insert(std::string_view topic) {
  const topic_write w{topic_write::kind::insert, std::string(topic)};
  return apply(std::span(&w, 1));
}

expected<void, std::string> topic_store::remove(std::string_view topic) {
  const topic_write w{topic_write::kind::remove, std::string(topic)};
  return apply(std::span(&w, 1));
}

expected<std::vector<std::string>, std::string> topic_store::list() {
  if (!list_) return fail(failed("list topics", "the store is closed"));

  const reset_on_exit guard(list_.get());
  std::vector<std::string> topics;
  for (;;) {
    const int rc = sqlite3_step(list_.get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return fail(failed("list topics", sqlite3_errmsg(db_.get())));
    // gorm's table (v1.23+) has no NOT NULL; a NULL row names no topic to subscribe.
    if (sqlite3_column_type(list_.get(), 0) == SQLITE_NULL) continue;
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(list_.get(), 0));
    if (text == nullptr) {  // out of memory
      return fail(failed("list topics", sqlite3_errmsg(db_.get())));
    }
    const int size = sqlite3_column_bytes(list_.get(), 0);
    topics.emplace_back(text, static_cast<std::size_t>(size));
  }
  return topics;
}

}  // namespace ebus::store
