// The store thread: batching, bounds, failures and the shutdown bound. Real SQLite files in a
// temporary directory; the worker is held at a batch boundary through the before_batch hook, and
// time is a test clock, so nothing depends on how fast the machine is.
#include "store/topic_writer.hpp"

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <string>
#include <unistd.h>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

namespace ebus::store {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using status = batch_outcome::status;

// A second connection to the same file, as edgecore would hold.
class raw_db {
 public:
  explicit raw_db(const fs::path& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
      ADD_FAILURE() << "raw open failed: " << sqlite3_errmsg(db_);
    }
  }
  raw_db(const raw_db&) = delete;
  raw_db& operator=(const raw_db&) = delete;
  ~raw_db() { sqlite3_close(db_); }

  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << (err ? err : "?");
    }
    sqlite3_free(err);
  }

  std::size_t rows() {
    sqlite3_stmt* stmt = nullptr;
    std::size_t n = 0;
    if (sqlite3_prepare_v2(db_, "SELECT count(*) FROM sub_topics", -1, &stmt, nullptr) ==
            SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      n = static_cast<std::size_t>(sqlite3_column_int64(stmt, 0));
    } else {
      ADD_FAILURE() << sqlite3_errmsg(db_);
    }
    sqlite3_finalize(stmt);
    return n;
  }

 private:
  sqlite3* db_ = nullptr;
};

// Time that moves only when a test (or a hook on the worker) says so.
class test_time {
 public:
  std::chrono::steady_clock::time_point now() const {
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns_.load()));
  }
  void advance(std::chrono::nanoseconds d) { ns_ += d.count(); }

 private:
  std::atomic<std::int64_t> ns_{std::chrono::nanoseconds(1h).count()};
};

// Holds the worker before its first transaction until release().
class gate {
 public:
  void wait() {
    std::unique_lock lock(mutex_);
    reached_ = true;
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
  }
  void wait_reached() {
    std::unique_lock lock(mutex_);
    ASSERT_TRUE(changed_.wait_for(lock, 10s, [this] { return reached_; }));
  }
  void release() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool reached_ = false;
  bool open_ = false;
};

class topic_writer_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "ebus-writer-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir = pattern;
    db_path = dir / "edgecore.db";
  }
  void TearDown() override {
    writer.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  void start(writer_options o, std::chrono::milliseconds busy_timeout = 5s) {
    auto db = topic_store::open(db_path.string(), busy_timeout);
    ASSERT_TRUE(db) << db.error();
    if (!o.now) o.now = [this] { return time.now(); };
    writer =
        std::make_unique<topic_writer>(std::move(*db), std::move(o), [this](batch_outcome out) {
          std::lock_guard lock(mutex);
          outcomes.push_back(std::move(out));
          arrived.notify_all();
        });
  }

  // Holds the first batch at the gate.
  writer_options gated(writer_options o = {}) {
    o.before_batch = [this, first = std::make_shared<bool>(true)](std::size_t) {
      if (std::exchange(*first, false)) held.wait();
    };
    return o;
  }

  std::uint64_t submit(std::string topic, topic_write::kind op = topic_write::kind::insert) {
    auto seq = writer->submit({op, std::move(topic)});
    EXPECT_TRUE(seq) << seq.error();
    return seq.value_or(0);
  }

  // Every outcome until the one that covers `seq`.
  std::vector<batch_outcome> wait_for(std::uint64_t seq) {
    std::unique_lock lock(mutex);
    EXPECT_TRUE(arrived.wait_for(
        lock, 10s, [&] { return !outcomes.empty() && outcomes.back().last_seq >= seq; }));
    return outcomes;
  }

  fs::path dir;
  fs::path db_path;
  test_time time;
  gate held;
  std::mutex mutex;
  std::condition_variable arrived;
  std::vector<batch_outcome> outcomes;
  std::unique_ptr<topic_writer> writer;
};

std::uint64_t count_of(const std::vector<batch_outcome>& outs, status s) {
  std::uint64_t n = 0;
  for (const auto& o : outs)
    if (o.result == s) n += o.last_seq - o.first_seq + 1;
  return n;
}

TEST_F(topic_writer_test, a_burst_of_writes_takes_one_transaction) {
  start(gated());
  submit("t/0");
  held.wait_reached();  // the first write is in its own transaction, held
  for (int i = 1; i < 500; ++i)
    submit("t/" + std::to_string(i));
  held.release();
  const auto outs = wait_for(500);

  ASSERT_EQ(outs.size(), 2U);
  EXPECT_EQ(outs[0].first_seq, 1U);
  EXPECT_EQ(outs[0].last_seq, 1U);
  EXPECT_EQ(outs[1].first_seq, 2U);
  EXPECT_EQ(outs[1].last_seq, 500U);
  EXPECT_EQ(count_of(outs, status::committed), 500U);
  const auto s = writer->stats();
  EXPECT_EQ(s.transactions, 2U);
  EXPECT_EQ(s.committed, 500U);
  EXPECT_EQ(s.largest_batch, 499U);
  EXPECT_EQ(s.pending, 0U);
  EXPECT_EQ(s.pending_bytes, 0U);
  EXPECT_EQ(raw_db(db_path).rows(), 500U);
}

TEST_F(topic_writer_test, max_batch_splits_a_backlog_and_keeps_the_order) {
  writer_options o;
  o.max_batch = 100;
  start(gated(o));
  submit("t/0");
  held.wait_reached();
  for (int i = 1; i < 350; ++i)
    submit("t/" + std::to_string(i));
  // The last write of a topic wins: insert then remove in the same batch leaves no row.
  submit("t/7", topic_write::kind::remove);
  held.release();
  const auto outs = wait_for(351);
  ASSERT_EQ(outs.size(), 5U);  // 1, then 100, 100, 100, 50
  EXPECT_EQ(outs[4].last_seq - outs[4].first_seq + 1, 50U);
  for (std::size_t i = 1; i < outs.size(); ++i)
    EXPECT_EQ(outs[i].first_seq, outs[i - 1].last_seq + 1);
  EXPECT_EQ(writer->stats().transactions, 5U);
  EXPECT_EQ(raw_db(db_path).rows(), 349U);
}

TEST_F(topic_writer_test, refuses_writes_beyond_the_count_bound_until_some_finish) {
  writer_options o;
  o.max_pending = 10;
  start(gated(o));
  for (int i = 0; i < 10; ++i)  // the one held in its transaction counts too
    submit("t/" + std::to_string(i));
  held.wait_reached();
  const auto refused = writer->submit({topic_write::kind::insert, "t/10"});
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error(), HasSubstr("store queue full: 10 writes"));
  EXPECT_THAT(refused.error(), HasSubstr("limits 10 /"));
  EXPECT_EQ(writer->stats().refused, 1U);
  EXPECT_EQ(writer->stats().peak_pending, 10U);

  held.release();
  wait_for(10);
  EXPECT_EQ(submit("t/10"), 11U);
  wait_for(11);
  EXPECT_EQ(raw_db(db_path).rows(), 11U);
}

TEST_F(topic_writer_test, refuses_writes_beyond_the_byte_bound) {
  writer_options o;
  o.max_pending_bytes = 3 * (topic_writer::write_overhead + 10);
  start(gated(o));
  for (int i = 0; i < 3; ++i)
    submit("topic/000" + std::to_string(i));  // 10 bytes each
  held.wait_reached();
  EXPECT_EQ(writer->stats().pending_bytes, o.max_pending_bytes);
  const auto refused = writer->submit({topic_write::kind::insert, "x"});
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error(), HasSubstr("store queue full: 3 writes / 222 bytes"));
  held.release();
  wait_for(3);
  EXPECT_EQ(writer->stats().pending_bytes, 0U);
}

TEST_F(topic_writer_test, a_failed_transaction_writes_nothing_and_reports_each_write) {
  start(gated(), 0ms);  // no waiting for the lock
  raw_db edgecore(db_path);
  submit("held");
  held.wait_reached();
  submit("a");
  submit("b", topic_write::kind::remove);
  edgecore.exec("BEGIN EXCLUSIVE");  // works as root too, unlike file modes
  held.release();
  auto outs = wait_for(3);
  EXPECT_EQ(count_of(outs, status::failed), 3U);
  for (const auto& o : outs)
    EXPECT_THAT(o.error, HasSubstr("database is locked"));
  EXPECT_THAT(outs[0].error, HasSubstr(db_path.string()));
  EXPECT_EQ(writer->stats().failed, 3U);
  EXPECT_EQ(writer->stats().transactions, 0U);
  edgecore.exec("COMMIT");
  EXPECT_EQ(edgecore.rows(), 0U);

  submit("c");  // the lock is gone: writing works again
  outs = wait_for(4);
  EXPECT_EQ(outs.back().result, status::committed);
  EXPECT_EQ(edgecore.rows(), 1U);
}

TEST_F(topic_writer_test, a_dropped_table_fails_the_batch_with_sqlites_reason) {
  start({});
  raw_db(db_path).exec("DROP TABLE sub_topics");
  submit("a");
  const auto outs = wait_for(1);
  ASSERT_EQ(outs.size(), 1U);
  EXPECT_EQ(outs[0].result, status::failed);
  EXPECT_THAT(outs[0].error, HasSubstr("no such table"));
}

TEST_F(topic_writer_test, close_flushes_the_backlog_and_says_so) {
  start(gated());
  for (int i = 0; i < 100; ++i)
    submit("t/" + std::to_string(i));
  held.wait_reached();
  writer->begin_close();
  const auto after = writer->submit({topic_write::kind::insert, "late"});
  ASSERT_FALSE(after);
  EXPECT_THAT(after.error(), HasSubstr("closed"));
  held.release();
  const auto summary = writer->close();
  EXPECT_EQ(summary.pending, 100U);
  EXPECT_EQ(summary.flushed, 100U);
  EXPECT_EQ(summary.failed, 0U);
  EXPECT_EQ(summary.abandoned, 0U);
  EXPECT_EQ(raw_db(db_path).rows(), 100U);
  EXPECT_EQ(writer->close().flushed, 100U);  // idempotent
}

TEST_F(topic_writer_test, close_abandons_what_is_left_after_the_shutdown_timeout) {
  writer_options o;
  o.max_batch = 10;
  o.shutdown_timeout = 2s;
  // Each transaction "takes" one second of test time.
  o.before_batch = [this, first = std::make_shared<bool>(true)](std::size_t) {
    if (std::exchange(*first, false)) held.wait();
    time.advance(1s);
  };
  start(o);
  submit("t/0");
  held.wait_reached();
  for (int i = 1; i < 50; ++i)
    submit("t/" + std::to_string(i));
  writer->begin_close();  // deadline: now + 2 s
  held.release();
  const auto summary = writer->close();
  // The held write (1 s), one batch of 10 (2 s), then the deadline has passed.
  EXPECT_EQ(summary.pending, 50U);
  EXPECT_EQ(summary.flushed, 11U);
  EXPECT_EQ(summary.abandoned, 39U);
  const auto outs = wait_for(50);
  ASSERT_EQ(outs.size(), 3U);
  EXPECT_EQ(outs[2].result, status::abandoned);
  EXPECT_EQ(outs[2].first_seq, 12U);
  EXPECT_THAT(outs[2].error, HasSubstr("shutdown timeout of 2000 ms"));
  EXPECT_EQ(raw_db(db_path).rows(), 11U);
}

TEST_F(topic_writer_test, close_cuts_short_a_wait_for_a_lock_edgecore_holds) {
  writer_options o;
  o.shutdown_timeout = 0ms;
  start(o, std::chrono::hours(1));  // without the cut, this test would wait an hour
  raw_db edgecore(db_path);
  edgecore.exec("BEGIN EXCLUSIVE");
  submit("a");
  submit("b");
  const auto summary = writer->close();
  EXPECT_EQ(summary.pending, 2U);
  EXPECT_EQ(summary.flushed, 0U);
  EXPECT_EQ(summary.failed + summary.abandoned, 2U);
  edgecore.exec("COMMIT");
  EXPECT_EQ(edgecore.rows(), 0U);
}

}  // namespace
}  // namespace ebus::store
