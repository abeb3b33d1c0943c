#include "store/topic_store.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

namespace ebus::store {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

// What edgecore's ORMs write: beego (v1.6 - v1.22) for `orm:"column(topic); type(text); pk"`,
// gorm (v1.23+) for `gorm:"column:topic;type:text;primaryKey"`, and the varchar form of a
// sized beego string field.
constexpr const char* beego_table = R"(CREATE TABLE IF NOT EXISTS "sub_topics" (
    "topic" text NOT NULL PRIMARY KEY
))";
constexpr const char* gorm_table = "CREATE TABLE `sub_topics` (`topic` text,PRIMARY KEY (`topic`))";
constexpr const char* varchar_table =
    R"(CREATE TABLE "sub_topics" ("topic" varchar(256) NOT NULL PRIMARY KEY))";

// A second connection to the same file, as edgecore (or the sqlite3 shell) would hold.
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

  // First column of every row, NULL as "<null>".
  std::vector<std::string> column(const std::string& sql) {
    std::vector<std::string> out;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return out;
    }
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* text = sqlite3_column_text(stmt, 0);
      out.emplace_back(text ? reinterpret_cast<const char*>(text) : "<null>");
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

// SQLite's process-wide settings are made by the first topic_store::open(), as in the daemon:
// this runs before any test, whose raw handles would otherwise initialise SQLite first.
class first_open_environment : public ::testing::Environment {
 public:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "ebus-store-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    ASSERT_TRUE(topic_store::open((fs::path(pattern) / "first.db").string()).has_value());
    std::error_code ec;
    fs::remove_all(pattern, ec);
  }
};
[[maybe_unused]] const auto* const first_open =
    ::testing::AddGlobalTestEnvironment(new first_open_environment);

class topic_store_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "ebus-store-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir = pattern;
    db_path = dir / "edgecore.db";
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir, ec);
  }

  topic_store open_ok(const fs::path& path) {
    auto store = topic_store::open(path.string());
    if (!store) throw std::runtime_error(store.error());  // gtest reports it as a failure
    return std::move(*store);
  }

  fs::path dir;
  fs::path db_path;
};

// SQLite's default page cache starts with 20 slots of page size plus header per connection,
// each written to (87 KB); the store takes slots as pages are read: two for this table. The rest
// is the connection's own (its lookaside, the schema, the prepared statements).
TEST_F(topic_store_test, an_open_store_of_an_empty_table_holds_no_bulk_page_cache) {
  const auto before = sqlite3_memory_used();
  auto store = open_ok(db_path);
  ASSERT_TRUE(store.list().has_value());
  const auto held = sqlite3_memory_used() - before;
  EXPECT_LT(held, 64 * 1024);  // 40 KB here; 115 KB with the bulk allocation
}

TEST_F(topic_store_test, new_database_lists_no_topics) {
  auto store = open_ok(db_path);
  const auto topics = store.list();
  ASSERT_TRUE(topics) << topics.error();
  EXPECT_THAT(*topics, IsEmpty());
  EXPECT_EQ(store.path(), db_path.string());
}

TEST_F(topic_store_test, creates_the_table_as_edgecore_does) {
  open_ok(db_path);
  raw_db raw(db_path);
  EXPECT_THAT(raw.column("SELECT sql FROM sqlite_master WHERE name = 'sub_topics'"),
              UnorderedElementsAre(HasSubstr(R"("topic" text NOT NULL PRIMARY KEY)")));
}

TEST_F(topic_store_test, inserts_lists_and_removes) {
  auto store = open_ok(db_path);
  ASSERT_TRUE(store.insert("default/test"));
  ASSERT_TRUE(store.insert("a/b/c"));
  auto topics = store.list();
  ASSERT_TRUE(topics);
  EXPECT_THAT(*topics, UnorderedElementsAre("default/test", "a/b/c"));

  ASSERT_TRUE(store.remove("default/test"));
  topics = store.list();
  ASSERT_TRUE(topics);
  EXPECT_THAT(*topics, UnorderedElementsAre("a/b/c"));
}

TEST_F(topic_store_test, inserting_twice_keeps_one_row) {
  auto store = open_ok(db_path);
  ASSERT_TRUE(store.insert("default/test"));
  ASSERT_TRUE(store.insert("default/test"));
  const auto topics = store.list();
  ASSERT_TRUE(topics);
  EXPECT_THAT(*topics, UnorderedElementsAre("default/test"));
  raw_db raw(db_path);
  EXPECT_THAT(raw.column("SELECT count(*) FROM sub_topics"), UnorderedElementsAre("1"));
}

TEST_F(topic_store_test, removing_an_absent_topic_is_not_an_error) {
  auto store = open_ok(db_path);
  ASSERT_TRUE(store.insert("kept"));
  const auto removed = store.remove("never/inserted");
  EXPECT_TRUE(removed) << removed.error();
  const auto topics = store.list();
  ASSERT_TRUE(topics);
  EXPECT_THAT(*topics, UnorderedElementsAre("kept"));
}

TEST_F(topic_store_test, topics_survive_close_and_reopen) {
  {
    auto store = open_ok(db_path);
    ASSERT_TRUE(store.insert("one"));
    ASSERT_TRUE(store.insert("two"));
    ASSERT_TRUE(store.remove("one"));
  }
  auto store = open_ok(db_path);
  const auto topics = store.list();
  ASSERT_TRUE(topics);
  EXPECT_THAT(*topics, UnorderedElementsAre("two"));
}

TEST_F(topic_store_test, creates_missing_parent_directories) {
  const auto nested = dir / "var" / "lib" / "kubeedge" / "edgecore.db";
  auto store = open_ok(nested);
  ASSERT_TRUE(store.insert("x"));
  EXPECT_TRUE(fs::is_regular_file(nested));
}

TEST_F(topic_store_test, path_under_a_regular_file_fails_naming_the_path) {
  const auto file = dir / "plain-file";
  std::ofstream(file) << "not a directory";
  for (const auto& path : {file / "edgecore.db", file / "sub" / "edgecore.db"}) {
    SCOPED_TRACE(path.string());
    const auto store = topic_store::open(path.string());
    ASSERT_FALSE(store);
    EXPECT_THAT(store.error(), HasSubstr("cannot open '" + path.string() + "': "));
  }
}

TEST_F(topic_store_test, a_directory_in_place_of_the_file_fails_with_sqlites_reason) {
  fs::create_directories(db_path);
  const auto store = topic_store::open(db_path.string());
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error(), "cannot open '" + db_path.string() + "': unable to open database file");
}

TEST_F(topic_store_test, read_only_file_is_refused) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can write any file";
  open_ok(db_path);
  fs::permissions(db_path, fs::perms::owner_read);
  const auto store = topic_store::open(db_path.string());
  ASSERT_FALSE(store);
  EXPECT_THAT(store.error(), HasSubstr(db_path.string()));
}

TEST_F(topic_store_test, a_sub_topics_table_without_a_topic_column_fails_at_open) {
  {
    raw_db raw(db_path);
    raw.exec("CREATE TABLE sub_topics (name TEXT)");
  }
  const auto store = topic_store::open(db_path.string());
  ASSERT_FALSE(store);
  EXPECT_THAT(store.error(), HasSubstr("cannot open '" + db_path.string() + "': "));
  EXPECT_THAT(store.error(), HasSubstr("topic"));
}

TEST_F(topic_store_test, opens_a_database_created_by_kubeedge) {
  for (const char* schema : {beego_table, gorm_table, varchar_table}) {
    SCOPED_TRACE(schema);
    fs::remove(db_path);
    std::vector<std::string> table_sql;
    {
      raw_db raw(db_path);
      raw.exec(schema);
      raw.exec(R"(CREATE TABLE "meta" ("key" varchar(256) NOT NULL PRIMARY KEY,
                  "type" varchar(32) NOT NULL DEFAULT '', "value" text NOT NULL DEFAULT ''))");
      raw.exec("INSERT INTO meta VALUES ('default/pod/nginx', 'pod', '{\"spec\":{}}')");
      raw.exec("INSERT INTO sub_topics (topic) VALUES ('default/test'), ('default/other')");
      table_sql = raw.column("SELECT sql FROM sqlite_master WHERE name = 'sub_topics'");
    }
    {
      auto store = open_ok(db_path);
      auto topics = store.list();
      ASSERT_TRUE(topics) << topics.error();
      EXPECT_THAT(*topics, UnorderedElementsAre("default/test", "default/other"));
      ASSERT_TRUE(store.insert("default/new"));
      ASSERT_TRUE(store.remove("default/other"));
    }
    raw_db raw(db_path);
    EXPECT_THAT(raw.column("SELECT topic FROM sub_topics"),
                UnorderedElementsAre("default/test", "default/new"));
    EXPECT_THAT(raw.column("SELECT key || '|' || type || '|' || value FROM meta"),
                UnorderedElementsAre(R"(default/pod/nginx|pod|{"spec":{}})"));
    EXPECT_EQ(raw.column("SELECT sql FROM sqlite_master WHERE name = 'sub_topics'"), table_sql);
  }
}

TEST_F(topic_store_test, leaves_the_journal_mode_of_the_file_alone) {
  {
    raw_db raw(db_path);
    EXPECT_THAT(raw.column("PRAGMA journal_mode=WAL"), UnorderedElementsAre("wal"));
    raw.exec(beego_table);
  }
  {
    auto store = open_ok(db_path);
    ASSERT_TRUE(store.insert("t"));
  }
  raw_db raw(db_path);
  EXPECT_THAT(raw.column("PRAGMA journal_mode"), UnorderedElementsAre("wal"));
  EXPECT_THAT(raw.column("SELECT topic FROM sub_topics"), UnorderedElementsAre("t"));
}

TEST_F(topic_store_test, skips_null_rows_that_gorms_table_allows) {
  {
    raw_db raw(db_path);
    raw.exec(gorm_table);
    raw.exec("INSERT INTO sub_topics (topic) VALUES (NULL), ('real')");
  }
  auto store = open_ok(db_path);
  const auto topics = store.list();
  ASSERT_TRUE(topics);
  EXPECT_THAT(*topics, UnorderedElementsAre("real"));
}

TEST_F(topic_store_test, stores_topics_with_wildcards_quotes_and_unicode_verbatim) {
  const std::vector<std::string> odd = {
      "$hw/events/device/+/+/twin/+",
      "sensors/#",
      "+/user/#",
      "it's \"quoted\"",
      "x'); DROP TABLE sub_topics; --",
      "température/größe/温度/🌡",
      " leading and trailing ",
      "a//b/",
      "",
      std::string(4096, 'L'),
  };
  {
    auto store = open_ok(db_path);
    for (const auto& t : odd)
      ASSERT_TRUE(store.insert(t)) << t;
  }
  auto store = open_ok(db_path);
  auto topics = store.list();
  ASSERT_TRUE(topics);
  EXPECT_THAT(*topics, UnorderedElementsAreArray(odd));
  for (const auto& t : odd)
    ASSERT_TRUE(store.remove(t)) << t;
  topics = store.list();
  ASSERT_TRUE(topics);
  EXPECT_THAT(*topics, IsEmpty());
}

TEST_F(topic_store_test, sees_rows_written_by_another_connection) {
  auto store = open_ok(db_path);
  ASSERT_TRUE(store.insert("ours"));
  raw_db other(db_path);
  other.exec("INSERT OR REPLACE INTO sub_topics (topic) VALUES ('theirs')");
  auto topics = store.list();
  ASSERT_TRUE(topics);
  EXPECT_THAT(*topics, UnorderedElementsAre("ours", "theirs"));

  other.exec("DELETE FROM sub_topics WHERE topic = 'ours'");
  topics = store.list();
  ASSERT_TRUE(topics);
  EXPECT_THAT(*topics, UnorderedElementsAre("theirs"));
  ASSERT_TRUE(store.insert("again"));
  EXPECT_THAT(other.column("SELECT topic FROM sub_topics"),
              UnorderedElementsAre("theirs", "again"));
}

TEST_F(topic_store_test, a_moved_store_keeps_working_and_the_moved_from_one_reports_closed) {
  auto first = open_ok(db_path);
  ASSERT_TRUE(first.insert("a"));
  topic_store second = std::move(first);
  ASSERT_TRUE(second.insert("b"));
  const auto topics = second.list();
  ASSERT_TRUE(topics);
  EXPECT_THAT(*topics, UnorderedElementsAre("a", "b"));

  const auto refused = first.insert("c");  // NOLINT(bugprone-use-after-move): on purpose
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error(), HasSubstr("closed"));

  auto third = open_ok(dir / "other.db");
  third = std::move(second);
  const auto moved = third.list();
  ASSERT_TRUE(moved);
  EXPECT_THAT(*moved, UnorderedElementsAre("a", "b"));
}

TEST_F(topic_store_test, apply_writes_a_batch_in_one_transaction) {
  auto store = open_ok(db_path);
  ASSERT_TRUE(store.insert("gone"));
  const std::vector<topic_write> batch = {{topic_write::kind::insert, "a"},
                                          {topic_write::kind::insert, "b"},
                                          {topic_write::kind::remove, "gone"},
                                          {topic_write::kind::insert, "a"}};
  const auto before = store.commits();
  ASSERT_TRUE(store.apply(batch));
  EXPECT_EQ(store.commits(), before + 1);
  const auto topics = store.list();
  ASSERT_TRUE(topics);
  EXPECT_THAT(*topics, UnorderedElementsAre("a", "b"));
  ASSERT_TRUE(store.apply({}));
  EXPECT_EQ(store.commits(), before + 1);  // an empty batch is no transaction
}

TEST_F(topic_store_test, apply_is_all_or_nothing) {
  auto store = open_ok(db_path);
  ASSERT_TRUE(store.insert("kept"));
  {
    raw_db raw(db_path);  // a write that fails in the middle of the batch
    raw.exec(R"(CREATE TRIGGER refuse BEFORE INSERT ON sub_topics WHEN NEW.topic = 'bad'
                BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END)");
  }
  const std::vector<topic_write> batch = {{topic_write::kind::insert, "a"},
                                          {topic_write::kind::remove, "kept"},
                                          {topic_write::kind::insert, "bad"},
                                          {topic_write::kind::insert, "c"}};
  const auto applied = store.apply(batch);
  ASSERT_FALSE(applied);
  EXPECT_THAT(applied.error(), HasSubstr("refused by trigger"));
  EXPECT_THAT(applied.error(), HasSubstr(db_path.string()));
  EXPECT_THAT(applied.error(), Not(HasSubstr("bad")));  // no client text in errors
  auto topics = store.list();
  ASSERT_TRUE(topics);
  EXPECT_THAT(*topics, UnorderedElementsAre("kept"));
  // The connection is usable again: no transaction was left open.
  ASSERT_TRUE(store.insert("after"));
  topics = store.list();
  ASSERT_TRUE(topics);
  EXPECT_THAT(*topics, UnorderedElementsAre("kept", "after"));
}

TEST_F(topic_store_test, a_write_waits_for_a_lock_only_as_long_as_give_up_allows) {
  auto opened = topic_store::open(db_path.string(), std::chrono::hours(1));
  ASSERT_TRUE(opened) << opened.error();
  auto store = std::move(*opened);
  bool asked = false;
  store.set_give_up([&] { return std::exchange(asked, true); });  // gives up on the second ask
  raw_db edgecore(db_path);
  edgecore.exec("BEGIN EXCLUSIVE");
  const auto refused = store.insert("t");
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error(), HasSubstr("locked"));
  EXPECT_TRUE(asked);
  edgecore.exec("COMMIT");
  EXPECT_TRUE(store.insert("t"));
}

}  // namespace
}  // namespace ebus::store
