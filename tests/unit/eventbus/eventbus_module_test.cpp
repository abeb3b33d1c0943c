// The eventbus module on one io_context with a manual clock, the embedded broker's Sans-I/O core
// and a real SQLite file: what a subscribe, unsubscribe, publish or query is answered, and when.
// The store thread is held at a batch boundary (before_batch hook) or by a lock another
// connection holds, so the order of events never depends on timing.
#include "eventbus/eventbus_module.hpp"

#include <condition_variable>
#include <filesystem>
#include <limits>
#include <mutex>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "bus/bus.hpp"
#include "ebus_test/manual_clock.hpp"
#include "ebus_test/run_coro.hpp"
#include "eventbus/persisted_topics.hpp"
#include "mqtt/broker/broker.hpp"
#include "mqtt/broker/session.hpp"
#include "mqtt/client/external_broker.hpp"
#include "mqtt/codec/encoder.hpp"

namespace ebus::eventbus {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using reply = std::shared_ptr<std::optional<expected<bus::message, std::error_code>>>;

// A second connection to the database file, as edgecore would hold.
class raw_db {
 public:
  explicit raw_db(const fs::path& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
      ADD_FAILURE() << sqlite3_errmsg(db_);
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
  std::vector<std::string> topics() {
    std::vector<std::string> out;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT topic FROM sub_topics ORDER BY topic", -1, &stmt,
                           nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sqlite3_errmsg(db_);
      return out;
    }
    while (sqlite3_step(stmt) == SQLITE_ROW)
      out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

// Holds the store thread before its first transaction until release().
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

class eventbus_module_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "ebus-module-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir = pattern;
    db_path = dir / "edgecore.db";
    ASSERT_TRUE(b.add_module(std::string(eventbus_module::module_name), "bus"));
    ASSERT_TRUE(b.add_module("tester"));
  }
  void TearDown() override {
    if (store) held.release();
    module.reset();
    store.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  // With `external`, when a test has made one.
  void start(eventbus_options o = {}, persisted_options po = {}, bool with_store = true) {
    std::vector<std::string> stored;
    if (with_store) {
      po.loop = io.get_executor();
      auto opened = persisted_topics::open(db_path.string(), std::move(po));
      ASSERT_TRUE(opened) << opened.error();
      store = std::move(opened->store);
      stored = std::move(opened->topics);
    }
    module = std::make_unique<eventbus_module>(b, clk, std::move(o), &broker, external.get(),
                                               store.get());
    module->install(stored);
  }

  // Holds the store's first transaction at `held`.
  persisted_options gated() {
    persisted_options po;
    po.writer.before_batch = [this, first = std::make_shared<bool>(true)](std::size_t) {
      if (std::exchange(*first, false)) held.wait();
    };
    return po;
  }

  static bus::message op(std::string operation, std::string resource,
                         bus::content c = bus::content::text("")) {
    auto m = bus::new_message();
    bus::build_router(m, "tester", "user", std::move(resource), std::move(operation));
    m.content = std::move(c);
    return m;
  }

  // Handles `m` as if it came from tester's own send (not sync).
  void send(bus::message m) {
    ASSERT_TRUE(b.send(eventbus_module::module_name, std::move(m)));
    pump();
  }

  // A sync request from the test; the reply fills in once answered.
  reply request(bus::message m) {
    auto r = test::spawn(io, b.send_sync(eventbus_module::module_name, std::move(m), 60s));
    pump();
    return r;
  }

  // Hands every message in eventbus's inbox to the module, then runs what is ready.
  void pump() {
    test::drain(io);
    while (auto m = b.try_receive(eventbus_module::module_name))
      module->handle(std::move(*m));
    test::drain(io);
  }

  // Runs the loop until `done()` holds, at most 10 s (outcomes come from the store thread).
  template <class Done>
  bool run_until(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      pump();
      io.restart();
      io.run_one_for(10ms);
    }
    return true;
  }

  bus::message answer_of(const reply& r) {
    EXPECT_TRUE(run_until([&] { return r->has_value(); }));
    if (!r->has_value() || !r->value()) {
      ADD_FAILURE() << "no answer";
      return {};
    }
    return *r->value();
  }

  // Takes `n` messages out of `inbox`, then runs what that made ready.
  void take(std::string_view inbox, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
      ASSERT_TRUE(b.try_receive(inbox));
    test::drain(io);
  }

  std::vector<bus::message> tester_inbox() {
    std::vector<bus::message> out;
    while (auto m = b.try_receive("tester"))
      out.push_back(std::move(*m));
    return out;
  }

  // The sorted list a query answers, once every earlier write has committed.
  std::vector<std::string> query() {
    const auto a = answer_of(request(op("query", "subscriptions")));
    EXPECT_EQ(a.route.operation, "response");
    std::vector<std::string> out;
    if (a.content.type() == bus::content::kind::json) {
      for (const auto& t : a.content.json_value())
        out.push_back(t.get<std::string>());
    }
    return out;
  }

  fs::path dir;
  fs::path db_path;
  asio::io_context io;
  test::manual_clock clk;
  bus::bus b{io.get_executor(), clk};
  mqtt::broker::broker broker{{}, clk};
  gate held;
  std::unique_ptr<persisted_topics> store;
  // Declared before the module, which may pause it until its destruction.
  std::unique_ptr<mqtt::client::external_broker> external;
  std::unique_ptr<eventbus_module> module;
};

TEST_F(eventbus_module_test, a_query_is_answered_only_after_every_earlier_write_committed) {
  start({}, gated());
  for (int i = 0; i < 200; ++i)
    send(op("subscribe", "t/" + std::to_string(i)));
  auto answer = request(op("query", "subscriptions"));
  held.wait_reached();
  test::drain(io);
  // Intercepted at once, but not confirmed: nothing is committed yet.
  EXPECT_TRUE(broker.interested_in("t/199"));
  EXPECT_FALSE(answer->has_value());
  EXPECT_THAT(raw_db(db_path).topics(), IsEmpty());

  held.release();
  const auto a = answer_of(answer);
  EXPECT_EQ(a.route.operation, "response");
  EXPECT_EQ(raw_db(db_path).topics().size(), 200U);  // on disk when the answer came
  ASSERT_EQ(a.content.type(), bus::content::kind::json);
  EXPECT_EQ(a.content.json_value().size(), 200U);
  EXPECT_EQ(a.content.json_value()[0], "t/0");
  // Batched: the held transaction, then the rest together.
  EXPECT_LE(store->stats().transactions, 2U);
  EXPECT_EQ(store->stats().committed, 200U);
  EXPECT_EQ(module->stats().queries, 1U);
  EXPECT_THAT(tester_inbox(), IsEmpty());  // no errors
}

TEST_F(eventbus_module_test, a_sync_subscribe_is_answered_once_its_row_is_on_disk) {
  start({}, gated());
  auto r = request(op("subscribe", "default/test"));
  held.wait_reached();
  test::drain(io);
  EXPECT_FALSE(r->has_value());
  held.release();
  const auto a = answer_of(r);
  EXPECT_EQ(a.route.operation, "response");
  EXPECT_THAT(raw_db(db_path).topics(), ElementsAre("default/test"));
  EXPECT_EQ(module->stats().confirmed, 1U);

  const auto u = answer_of(request(op("unsubscribe", "default/test")));
  EXPECT_EQ(u.route.operation, "response");
  EXPECT_THAT(raw_db(db_path).topics(), IsEmpty());
  EXPECT_FALSE(broker.interested_in("default/test"));
}

TEST_F(eventbus_module_test, a_failed_write_is_answered_with_an_error_and_memory_follows_disk) {
  persisted_options po;
  po.busy_timeout = 0ms;  // fail at once while the file is locked
  // Hold the second transaction: the writes after "kept".
  po.writer.before_batch = [this, n = std::make_shared<int>(0)](std::size_t) {
    if (++*n == 2) held.wait();
  };
  start({}, po);
  send(op("subscribe", "kept"));
  EXPECT_THAT(query(), ElementsAre("kept"));

  auto sub = request(op("subscribe", "a/b"));
  held.wait_reached();
  send(op("unsubscribe", "kept"));
  test::drain(io);
  // Applied at once, not yet confirmed.
  EXPECT_TRUE(broker.interested_in("a/b"));
  EXPECT_FALSE(broker.interested_in("kept"));
  EXPECT_FALSE(sub->has_value());
  raw_db edgecore(db_path);
  edgecore.exec("BEGIN EXCLUSIVE");  // works as root, unlike a read-only file
  held.release();

  const auto a = answer_of(sub);
  EXPECT_EQ(a.route.operation, "error");
  EXPECT_THAT(a.content.data(), HasSubstr("subscribe 'a/b' not stored"));
  EXPECT_THAT(a.content.data(), HasSubstr("database is locked"));
  // The unsubscribe was not sync: its error went to its source module.
  ASSERT_TRUE(run_until([&] { return store->unconfirmed() == 0; }));
  const auto inbox = tester_inbox();
  ASSERT_EQ(inbox.size(), 1U);
  EXPECT_EQ(inbox[0].route.operation, "error");
  EXPECT_THAT(inbox[0].content.data(), HasSubstr("unsubscribe 'kept' not stored"));
  // Rolled back to what the table holds.
  EXPECT_FALSE(broker.interested_in("a/b"));
  EXPECT_TRUE(broker.interested_in("kept"));
  EXPECT_THAT(module->subscriptions(), UnorderedElementsAre("kept"));
  EXPECT_EQ(module->stats().store_failed, 2U);
  EXPECT_EQ(module->stats().errors_returned, 2U);
  edgecore.exec("COMMIT");
  EXPECT_THAT(edgecore.topics(), ElementsAre("kept"));
  EXPECT_THAT(query(), ElementsAre("kept"));
}

TEST_F(eventbus_module_test, a_full_store_queue_refuses_the_subscribe_and_changes_nothing) {
  auto po = gated();
  po.writer.max_pending = 2;
  start({}, po);
  send(op("subscribe", "t/0"));
  send(op("subscribe", "t/1"));
  held.wait_reached();
  auto r = request(op("subscribe", "t/2"));
  ASSERT_TRUE(r->has_value());  // refused at once
  ASSERT_TRUE(r->value());
  EXPECT_EQ(r->value()->route.operation, "error");
  EXPECT_THAT(r->value()->content.data(), HasSubstr("store queue full: 2 writes"));
  EXPECT_FALSE(broker.interested_in("t/2"));
  EXPECT_EQ(module->stats().store_refused, 1U);
  held.release();
  EXPECT_THAT(query(), ElementsAre("t/0", "t/1"));
  EXPECT_THAT(raw_db(db_path).topics(), ElementsAre("t/0", "t/1"));
}

TEST_F(eventbus_module_test, subscriptions_are_capped_in_count_and_bytes) {
  eventbus_options o;
  o.max_subscriptions = 3;
  o.max_subscription_bytes = 12;
  start(o);
  send(op("subscribe", "a/1"));
  send(op("subscribe", "b/2"));
  send(op("subscribe", "$hw/events/upload/#"));  // fixed: stored, not counted
  auto over_bytes = request(op("subscribe", "long/topic"));
  const auto e1 = answer_of(over_bytes);
  EXPECT_EQ(e1.route.operation, "error");
  EXPECT_THAT(e1.content.data(), HasSubstr("limit of run-time subscriptions is reached"));
  EXPECT_THAT(e1.content.data(), HasSubstr("2 subscriptions / 6 bytes; limits 3 / 12"));
  send(op("subscribe", "c/3"));
  send(op("subscribe", "a/1"));  // already there: not refused
  send(op("subscribe", "d/4"));  // not sync: the error goes to the source module
  EXPECT_THAT(query(), ElementsAre("a/1", "b/2", "c/3"));
  const auto inbox = tester_inbox();
  ASSERT_EQ(inbox.size(), 1U);
  EXPECT_THAT(inbox[0].content.data(), HasSubstr("subscribe 'd/4' refused"));
  EXPECT_FALSE(broker.interested_in("d/4"));
  EXPECT_EQ(module->stats().subscriptions_refused, 2U);
  EXPECT_EQ(module->subscription_bytes(), 9U);
  EXPECT_THAT(raw_db(db_path).topics(), ElementsAre("$hw/events/upload/#", "a/1", "b/2", "c/3"));

  send(op("unsubscribe", "b/2"));
  send(op("subscribe", "d/4"));  // room again
  EXPECT_THAT(query(), ElementsAre("a/1", "c/3", "d/4"));
}

TEST_F(eventbus_module_test, stored_rows_beyond_the_cap_are_skipped_at_start_and_kept_on_disk) {
  {
    raw_db raw(db_path);
    raw.exec(R"(CREATE TABLE "sub_topics" ("topic" text NOT NULL PRIMARY KEY))");
    raw.exec("INSERT INTO sub_topics VALUES ('r/1'), ('r/2'), ('r/3'), ('r/4'), ('r/5')");
  }
  eventbus_options o;
  o.max_subscriptions = 3;
  start(o);
  EXPECT_EQ(module->subscriptions().size(), 3U);
  EXPECT_EQ(module->stats().stored_skipped, 2U);
  EXPECT_EQ(raw_db(db_path).topics().size(), 5U);
}

TEST_F(eventbus_module_test, a_publish_over_the_maximum_packet_size_is_refused_to_its_sender) {
  eventbus_options o;
  o.max_packet_size = 100;  // QoS 0: 1 + 1 + 2 + topic + payload
  start(o, {}, false);
  const auto fits =
      answer_of(request(op("publish", "t", bus::content::text(std::string(95, 'x')))));
  EXPECT_EQ(fits.route.operation, "response");
  EXPECT_EQ(module->stats().published_internal, 1U);

  const auto big = answer_of(request(op("publish", "t", bus::content::text(std::string(96, 'x')))));
  EXPECT_EQ(big.route.operation, "error");
  EXPECT_THAT(big.content.data(),
              HasSubstr("the MQTT packet would be 101 bytes, more than the maximum packet size "
                        "of 100 bytes"));
  send(op("publish", "t", bus::content::binary(std::string(1000, 'x'))));
  const auto inbox = tester_inbox();
  ASSERT_EQ(inbox.size(), 1U);
  EXPECT_EQ(inbox[0].route.operation, "error");
  EXPECT_EQ(inbox[0].header.parent_id.empty(), false);
  EXPECT_EQ(module->stats().publishes_too_large, 2U);
  EXPECT_EQ(module->stats().published_internal, 1U);

  // Not a module on the bus (a router message from the cloud): counted, nobody to tell.
  auto from_cloud = op("publish", "t", bus::content::text(std::string(1000, 'x')));
  from_cloud.route.source = "router_eventbus";
  send(std::move(from_cloud));
  EXPECT_THAT(tester_inbox(), IsEmpty());
  EXPECT_EQ(module->stats().publishes_too_large, 3U);
}

TEST_F(eventbus_module_test, a_publish_mqtt_cannot_encode_is_refused_whatever_the_limits_say) {
  // No limit of its own (0), and a broker that would take anything: only MQTT's Remaining Length
  // bounds the packet. Before, this message went to the encoder with a length it cannot write.
  mqtt::broker::broker_options bo;
  bo.max_packet_size = std::numeric_limits<std::size_t>::max();
  mqtt::broker::broker unbounded{bo, clk};
  eventbus_options o;
  o.max_packet_size = 0;
  eventbus_module m(b, clk, o, &unbounded, nullptr, nullptr);
  m.install({});
  // QoS 0, topic "t": Remaining Length = 2 + 1 + payload, one byte over the maximum.
  const std::size_t payload = mqtt::codec::max_remaining_length - 2;
  m.handle(op("publish", "t", bus::content::binary(std::string(payload, 'x'))));
  const auto inbox = tester_inbox();
  ASSERT_EQ(inbox.size(), 1U);
  EXPECT_EQ(inbox[0].route.operation, "error");
  EXPECT_THAT(inbox[0].content.data(),
              HasSubstr("publish on 't' refused: the MQTT packet would be 268435461 bytes, more "
                        "than the largest packet MQTT can encode (268435460 bytes)"));
  EXPECT_EQ(m.stats().publishes_too_large, 1U);
  EXPECT_EQ(m.stats().published_internal, 0U);
  EXPECT_EQ(unbounded.stats().messages_injected, 0U);
}

TEST_F(eventbus_module_test, topics_beyond_the_length_and_level_limits_are_rejected) {
  eventbus_options o;
  o.max_topic_length = 10;
  o.max_topic_levels = 3;
  start(o);
  const auto too_long = answer_of(request(op("subscribe", "abcdefghijk")));
  EXPECT_EQ(too_long.route.operation, "error");
  EXPECT_THAT(too_long.content.data(), HasSubstr("too long: 11 bytes, the limit is 10"));
  const auto too_deep = answer_of(request(op("publish", "a/b/c/d", bus::content::text("x"))));
  EXPECT_THAT(too_deep.content.data(), HasSubstr("too many levels: 4, the limit is 3"));
  const auto ok = answer_of(request(op("subscribe", "a/b/c")));
  EXPECT_EQ(ok.route.operation, "response");
  EXPECT_EQ(module->stats().rejected, 2U);
}

TEST_F(eventbus_module_test, client_strings_in_errors_are_escaped_and_cut) {
  start({}, {}, false);
  const auto bad = answer_of(request(op("subscribe", "a/#/\n\"" + std::string(500, 'z'))));
  EXPECT_EQ(bad.route.operation, "error");
  const auto text = bad.content.data();
  EXPECT_THAT(text, Not(HasSubstr("\n")));
  EXPECT_THAT(text, HasSubstr("a/#/\\n\\\""));
  EXPECT_THAT(text, HasSubstr("...(506 bytes)"));
  EXPECT_LT(text.size(), 400U);
}

TEST_F(eventbus_module_test, close_answers_every_write_it_could_not_finish) {
  persisted_options po;
  po.busy_timeout = std::chrono::hours(1);  // only the shutdown bound ends the wait
  po.writer.shutdown_timeout = 0ms;
  start({}, po);
  send(op("subscribe", "kept"));
  EXPECT_THAT(query(), ElementsAre("kept"));

  raw_db edgecore(db_path);
  edgecore.exec("BEGIN EXCLUSIVE");
  std::vector<reply> replies;
  for (int i = 0; i < 5; ++i)
    replies.push_back(request(op("subscribe", "late/" + std::to_string(i))));
  store->close();  // on the loop thread, as app::stop does
  test::drain(io);
  for (const auto& r : replies) {
    ASSERT_TRUE(r->has_value());
    ASSERT_TRUE(r->value());
    EXPECT_EQ(r->value()->route.operation, "error");
  }
  EXPECT_THAT(module->subscriptions(), UnorderedElementsAre("kept"));
  EXPECT_EQ(module->stats().store_failed, 5U);
  EXPECT_EQ(store->stats().failed + store->stats().abandoned, 5U);
  edgecore.exec("COMMIT");
  EXPECT_THAT(edgecore.topics(), ElementsAre("kept"));

  const auto after = answer_of(request(op("subscribe", "after/close")));
  EXPECT_EQ(after.route.operation, "error");
  EXPECT_THAT(after.content.data(), HasSubstr("closed"));
}

// --- MQTT -> bus flow control -------------------------------------------------------------------

constexpr std::string_view device_topic = "$hw/events/device/dev-1/twin/update";

// A publisher's flow record as its connection keeps it; `resumed` counts its on_clear calls.
struct publisher {
  std::shared_ptr<mqtt::broker::flow_waiter> flow = std::make_shared<mqtt::broker::flow_waiter>();
  int resumed = 0;
  publisher() {
    flow->on_clear = [this] { ++resumed; };
  }
  // What the connection does when its own wait ends by timeout (connection::resume_reader).
  void time_out() {
    flow->blocking = 0;
    ++flow->generation;
  }
};

TEST_F(eventbus_module_test,
       a_device_publisher_waits_while_twin_is_over_half_and_goes_on_once_drained) {
  start({}, {}, false);
  ASSERT_TRUE(b.add_module("twin", "twin"));
  const std::size_t capacity = b.options().inbox_capacity;
  publisher p;
  for (std::size_t i = 0; i < capacity / 2; ++i)
    module->on_mqtt_message(device_topic, "{}", p.flow);
  EXPECT_EQ(p.flow->blocking, 0U);
  module->on_mqtt_message(device_topic, "{}", p.flow);  // over half
  EXPECT_EQ(p.flow->blocking, 1U);
  EXPECT_EQ(module->stats().publishers_held, 1U);

  take("twin", capacity / 2 - capacity / 4);  // one above a quarter left
  EXPECT_EQ(p.resumed, 0) << "still above a quarter";
  ASSERT_TRUE(b.try_receive("twin"));
  test::drain(io);
  EXPECT_EQ(p.flow->blocking, 0U);
  EXPECT_EQ(p.resumed, 1);
  EXPECT_EQ(module->stats().to_twin, capacity / 2 + 1);
  EXPECT_EQ(module->stats().refused, 0U);
}

TEST_F(eventbus_module_test,
       a_group_that_does_not_drain_holds_publishers_once_then_refuses_counted) {
  eventbus_options o;
  o.slow_group_timeout = 2s;
  start(o, {}, false);
  ASSERT_TRUE(b.add_module("twin", "twin"));
  const std::size_t capacity = b.options().inbox_capacity;
  publisher p;
  for (std::size_t i = 0; i <= capacity / 2; ++i)
    module->on_mqtt_message(device_topic, "{}", p.flow);
  ASSERT_EQ(p.flow->blocking, 1U);

  clk.advance(2s);
  p.time_out();
  // Still crowded past the timeout: slow, holding nobody; what does not fit is refused.
  for (std::size_t i = capacity / 2 + 1; i < capacity + 10; ++i)
    module->on_mqtt_message(device_topic, "{}", p.flow);
  EXPECT_EQ(p.flow->blocking, 0U);
  EXPECT_EQ(module->stats().groups_slow, 1U);
  EXPECT_EQ(module->stats().publishers_held, 1U);
  EXPECT_EQ(module->stats().to_twin, capacity);
  EXPECT_EQ(module->stats().refused, 10U);
  EXPECT_EQ(b.stats().queue_full, 10U);

  // Once it has drained it is an ordinary group again: over half, it holds.
  while (b.try_receive("twin")) {
  }
  test::drain(io);
  for (std::size_t i = 0; i <= capacity / 2; ++i)
    module->on_mqtt_message(device_topic, "{}", p.flow);
  EXPECT_EQ(p.flow->blocking, 1U);
  EXPECT_EQ(module->stats().publishers_held, 2U);
}

TEST_F(eventbus_module_test,
       messages_without_a_publisher_record_or_for_a_group_without_members_hold_nobody) {
  start({}, {}, false);
  publisher p;
  // No member of twin: nothing would drain it.
  for (std::size_t i = 0; i < 10; ++i)
    module->on_mqtt_message(device_topic, "{}", p.flow);
  EXPECT_EQ(p.flow->blocking, 0U);
  ASSERT_TRUE(b.add_module("twin", "twin"));
  // A message without a record (nor an external subscriber) holds nobody.
  for (std::size_t i = 0; i <= b.options().inbox_capacity / 2; ++i)
    module->on_mqtt_message(device_topic, "{}");
  EXPECT_EQ(module->stats().publishers_held, 0U);
}

// An external broker client that is never started: pausing it is what the module asks for, and
// what the tests look at.
std::unique_ptr<mqtt::client::external_broker> unstarted_external(asio::io_context& io, clock& clk,
                                                                  std::uint16_t keepalive = 30) {
  mqtt::client::external_options o;
  o.sub_client_id = "sub";
  o.pub_client_id = "pub";
  o.keepalive_seconds = keepalive;
  return std::make_unique<mqtt::client::external_broker>(io.get_executor(), clk, std::move(o),
                                                         nullptr);
}

TEST_F(eventbus_module_test,
       the_external_subscriber_pauses_while_twin_is_over_half_and_resumes_once_drained) {
  external = unstarted_external(io, clk);
  start({}, {}, false);
  ASSERT_TRUE(b.add_module("twin", "twin"));
  const std::size_t capacity = b.options().inbox_capacity;
  for (std::size_t i = 0; i < capacity / 2; ++i)
    module->on_external_message(device_topic, "{}");
  EXPECT_FALSE(external->receiving_paused());
  module->on_external_message(device_topic, "{}");  // over half
  EXPECT_TRUE(external->receiving_paused());
  // What libmosquitto had read already still comes, and is taken while it fits.
  module->on_external_message(device_topic, "{}");
  EXPECT_EQ(module->stats().external_held, 1U);

  take("twin", capacity / 2 + 1 - capacity / 4);  // one above a quarter left
  EXPECT_TRUE(external->receiving_paused()) << "still above a quarter";
  ASSERT_TRUE(b.try_receive("twin"));
  test::drain(io);
  EXPECT_FALSE(external->receiving_paused());
  EXPECT_EQ(module->stats().to_twin, capacity / 2 + 2);
  EXPECT_EQ(module->stats().refused, 0U);
  EXPECT_EQ(module->stats().groups_slow, 0U);
}

TEST_F(eventbus_module_test,
       a_twin_that_does_not_drain_pauses_the_external_subscriber_at_most_the_timeout) {
  external = unstarted_external(io, clk);
  eventbus_options o;
  o.slow_group_timeout = 2s;
  start(o, {}, false);
  ASSERT_TRUE(b.add_module("twin", "twin"));
  const std::size_t capacity = b.options().inbox_capacity;
  for (std::size_t i = 0; i <= capacity / 2; ++i)
    module->on_external_message(device_topic, "{}");
  ASSERT_TRUE(external->receiving_paused());

  // Nothing more comes from the paused subscriber: the timeout alone ends the pause.
  clk.advance(1999ms);
  EXPECT_TRUE(external->receiving_paused());
  clk.advance(1ms);
  EXPECT_FALSE(external->receiving_paused());
  EXPECT_EQ(module->stats().groups_slow, 1U);
  // Slow from then on: what does not fit is refused, counted, and nothing pauses again.
  for (std::size_t i = capacity / 2 + 1; i < capacity + 10; ++i)
    module->on_external_message(device_topic, "{}");
  EXPECT_FALSE(external->receiving_paused());
  EXPECT_EQ(module->stats().external_held, 1U);
  EXPECT_EQ(module->stats().to_twin, capacity);
  EXPECT_EQ(module->stats().refused, 10U);

  // Once drained it is an ordinary group again.
  while (b.try_receive("twin")) {
  }
  test::drain(io);
  for (std::size_t i = 0; i <= capacity / 2; ++i)
    module->on_external_message(device_topic, "{}");
  EXPECT_TRUE(external->receiving_paused());
  EXPECT_EQ(module->stats().external_held, 2U);
}

TEST_F(eventbus_module_test, a_pause_never_outlasts_half_the_external_keepalive) {
  external = unstarted_external(io, clk, /*keepalive=*/2);
  eventbus_options o;
  o.slow_group_timeout = 10s;
  start(o, {}, false);
  ASSERT_TRUE(b.add_module("twin", "twin"));
  for (std::size_t i = 0; i <= b.options().inbox_capacity / 2; ++i)
    module->on_external_message(device_topic, "{}");
  ASSERT_TRUE(external->receiving_paused());
  clk.advance(1s);  // the PINGRESP would otherwise wait unread past the keepalive
  EXPECT_FALSE(external->receiving_paused());
  EXPECT_EQ(module->stats().groups_slow, 1U);
}

TEST_F(eventbus_module_test, twin_and_hub_crowded_together_resume_the_subscriber_once_both_drain) {
  external = unstarted_external(io, clk);
  start({}, {}, false);
  ASSERT_TRUE(b.add_module("twin", "twin"));
  ASSERT_TRUE(b.add_module("hub", "hub"));
  const std::size_t capacity = b.options().inbox_capacity;
  for (std::size_t i = 0; i <= capacity / 2; ++i) {
    module->on_external_message(device_topic, "{}");
    module->on_external_message("SYS/dis/upload_records", "{}");
  }
  ASSERT_TRUE(external->receiving_paused());
  EXPECT_EQ(module->stats().external_held, 2U);
  while (b.try_receive("twin")) {
  }
  test::drain(io);
  EXPECT_TRUE(external->receiving_paused()) << "hub is still crowded";
  while (b.try_receive("hub")) {
  }
  test::drain(io);
  EXPECT_FALSE(external->receiving_paused());
}

}  // namespace
}  // namespace ebus::eventbus
