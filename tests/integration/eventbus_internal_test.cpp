// The eventbus node in mode 0 (embedded broker) with real MQTT clients: MQTT -> bus messages as
// KubeEdge builds them, bus -> MQTT operations, subscriptions persisted in SQLite.
#include <csignal>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "bus/message_json.hpp"
#include "ebus_test/mqtt_peer.hpp"
#include "ebus_test/process.hpp"
#include "eventbus/eventbus_module.hpp"
#include "mqtt/broker/server.hpp"
#include "mqtt/codec/encoder.hpp"
#include "node_harness.hpp"
#include "remote/client.hpp"

namespace ebus::test {
namespace {

using config::mqtt_mode;

const std::string device_twin_topic = "$hw/events/device/default/led1/twin/update";
const std::string device_twin_resource = "JGh3L2V2ZW50cy9kZXZpY2UvZGVmYXVsdC9sZWQxL3R3aW4vdXBkYXRl";

void publish(std::uint16_t port, const std::string& topic, const std::string& payload,
             int qos = 1) {
  process pub({"mosquitto_pub", "-p", std::to_string(port), "-t", topic, "-q", std::to_string(qos),
               "-m", payload});
  ASSERT_EQ(pub.wait(), 0) << pub.output();
}

/// A mosquitto_sub on `topic` that has its SUBACK; `count` messages then it exits.
std::unique_ptr<process> subscriber(std::uint16_t port, const std::string& topic, int count = 1) {
  auto sub = std::make_unique<process>(std::vector<std::string>{
      "stdbuf", "-oL", "mosquitto_sub", "-p", std::to_string(port), "-t", topic, "-q", "1", "-v",
      "-d", "-C", std::to_string(count), "-W", "15"});
  EXPECT_TRUE(sub->wait_for_output("SUBACK")) << sub->output();
  return sub;
}

eventbus::eventbus_stats stats(node_harness& node) {
  return node.call([](daemon::app& a) { return a.eventbus()->stats(); });
}

std::vector<std::string> stored_topics(const std::string& db_path) {
  sqlite3* db = nullptr;
  std::vector<std::string> topics;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT topic FROM sub_topics ORDER BY topic", -1, &st, nullptr) ==
        SQLITE_OK) {
      while (sqlite3_step(st) == SQLITE_ROW) {
        topics.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
      }
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return topics;
}

class internal_mode : public ::testing::Test {
 protected:
  temp_dir dir;
  config::daemon_config cfg = node_harness::test_config(mqtt_mode::internal, dir);
  std::string db_path = cfg.data_source;
};

TEST_F(internal_mode, twin_update_reaches_group_twin_exactly_as_kubeedge_builds_it) {
  node_harness node(cfg);
  const std::string payload =
      R"({"event_id":"e1","timestamp":1,"twin":{"power":{"actual":{"value":"on"}}}})";
  publish(node.port(), device_twin_topic, payload);
  const auto got = node.twin().wait_for(1);
  ASSERT_EQ(got.size(), 1U);
  const auto& m = got[0];
  EXPECT_EQ(m.route.source, "bus");
  EXPECT_EQ(m.route.group, "user");
  EXPECT_EQ(m.route.operation, "response");
  EXPECT_EQ(m.route.resource, device_twin_resource);
  EXPECT_EQ(m.content, bus::content::text(payload));
  EXPECT_EQ(m.header.id.size(), 36U);
  EXPECT_TRUE(m.header.parent_id.empty());
  EXPECT_GT(m.header.timestamp, 1'600'000'000'000);
  // The JSON a remote twin module would receive.
  const std::string json = bus::to_json(m);
  EXPECT_NE(json.find(R"("route":{"source":"bus","group":"user","operation":"response",)"
                      R"("resource":")" +
                      device_twin_resource + R"("},"content":")"),
            std::string::npos)
      << json;
  EXPECT_TRUE(node.hub().messages().empty());
}

TEST_F(internal_mode, every_fixed_topic_is_intercepted_and_routed_to_its_group) {
  node_harness node(cfg);
  struct route_case {
    std::string topic;
    bool twin;
  };
  const std::vector<route_case> cases = {
      {"$hw/events/device/default/led1/state/update", true},
      {"$hw/events/device/default/led1/twin/get", true},
      {"$hw/events/device/led1/twin/update", true},  // v1.1-era single-level device id
      {"$hw/events/device/led1/state/update", true},
      {"$hw/events/node/edge-node/membership/get", true},
      {"$hw/events/upload/temperature", false},
      {"$hw/events/upload", false},
      {"SYS/dis/upload_records", false},
      {"default/user/data", false},
  };
  for (const auto& c : cases)
    publish(node.port(), c.topic, "p:" + c.topic);
  const auto twin = node.twin().wait_for(5);
  const auto hub = node.hub().wait_for(4);
  ASSERT_EQ(twin.size(), 5U);
  ASSERT_EQ(hub.size(), 4U);
  std::size_t t = 0;
  std::size_t h = 0;
  for (const auto& c : cases) {
    const auto& m = c.twin ? twin[t++] : hub[h++];
    EXPECT_EQ(m.content.bytes(), "p:" + c.topic);
    EXPECT_EQ(m.route.operation, c.twin ? "response" : "upload") << c.topic;
    EXPECT_EQ(m.route.resource, c.twin ? bus::base64_url(c.topic) : c.topic) << c.topic;
  }
}

TEST_F(internal_mode, topics_outside_the_interest_list_reach_only_mqtt_subscribers) {
  node_harness node(cfg);
  auto sub = subscriber(node.port(), "plain/topic");
  publish(node.port(), "plain/topic", "x");
  publish(node.port(), "$hw/events/upload/marker", "after");
  ASSERT_EQ(sub->wait(), 0) << sub->output();
  const auto hub = node.hub().wait_for(1);
  ASSERT_EQ(hub.size(), 1U);
  EXPECT_EQ(hub[0].content.bytes(), "after");
  EXPECT_TRUE(node.twin().messages().empty());
}

TEST_F(internal_mode, messages_from_one_device_keep_their_order) {
  node_harness node(cfg);
  constexpr int n = 300;
  process pub({"sh", "-c",
               "seq 1 " + std::to_string(n) + " | mosquitto_pub -l -q 1 -p " +
                   std::to_string(node.port()) + " -t '" + device_twin_topic + "'"});
  ASSERT_EQ(pub.wait(std::chrono::seconds(20)), 0) << pub.output();
  const auto got = node.twin().wait_for(n);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    EXPECT_EQ(got[static_cast<std::size_t>(i)].content.bytes(), std::to_string(i + 1));
}

TEST_F(internal_mode, bus_publish_reaches_mqtt_subscribers_as_text_and_as_bytes) {
  node_harness node(cfg);
  const std::string topic = "$hw/events/device/default/led1/twin/update/result";
  auto sub = subscriber(node.port(), topic, 2);
  node.send_to_eventbus(router_message("publish", topic, bus::content::text(R"({"ok":true})")));
  node.send_to_eventbus(router_message("publish", topic, bus::content::binary("bytes")));
  ASSERT_EQ(sub->wait(), 0) << sub->output();
  EXPECT_NE(sub->output().find(topic + R"( {"ok":true})"), std::string::npos) << sub->output();
  EXPECT_NE(sub->output().find(topic + " bytes"), std::string::npos) << sub->output();
  EXPECT_EQ(stats(node).published_internal, 2U);
  // eventbus's own publishes are not intercepted, even on an intercepted topic: no loop back.
  auto upload_sub = subscriber(node.port(), "$hw/events/upload/loop");
  node.send_to_eventbus(
      router_message("publish", "$hw/events/upload/loop", bus::content::text("x")));
  ASSERT_EQ(upload_sub->wait(), 0) << upload_sub->output();
  EXPECT_TRUE(node.hub().messages().empty());
}

TEST_F(internal_mode, message_and_get_result_operations_publish_json) {
  node_harness node(cfg);
  auto cmd_sub = subscriber(node.port(), "dev/cmd");
  auto auth_sub = subscriber(node.port(), "$hw/events/node/+/authInfo/get/result");
  node.send_to_eventbus(router_message(
      "message", "",
      bus::content::json(nlohmann::json::parse(R"({"message":{"topic":"dev/cmd","b":2,"a":1}})"))));
  node.send_to_eventbus(router_message("get_result", "auth_info",
                                       bus::content::json(nlohmann::json{{"token", "abc"}})));
  ASSERT_EQ(cmd_sub->wait(), 0) << cmd_sub->output();
  ASSERT_EQ(auth_sub->wait(), 0) << auth_sub->output();
  EXPECT_NE(cmd_sub->output().find(R"(dev/cmd {"a":1,"b":2,"topic":"dev/cmd"})"), std::string::npos)
      << cmd_sub->output();
  EXPECT_NE(
      auth_sub->output().find(R"($hw/events/node/edge-node/authInfo/get/result {"token":"abc"})"),
      std::string::npos)
      << auth_sub->output();
}

TEST_F(internal_mode, bad_bus_input_is_counted_and_skipped_and_the_loop_goes_on) {
  node_harness node(cfg);
  auto sub = subscriber(node.port(), "ok/topic");
  node.send_to_eventbus(router_message("message", "", bus::content::text("not an object")));
  node.send_to_eventbus(router_message("get_result", "other", bus::content::text("x")));
  node.send_to_eventbus(router_message("publish", "bad/+", bus::content::text("x")));
  node.send_to_eventbus(router_message("publish", "t", {}));
  node.send_to_eventbus(
      router_message("connect", "node/connection", bus::content::text("cloud_connected")));
  node.send_to_eventbus(router_message("publish", "ok/topic", bus::content::text("still here")));
  ASSERT_EQ(sub->wait(), 0) << sub->output();
  EXPECT_NE(sub->output().find("ok/topic still here"), std::string::npos) << sub->output();
  const auto s = stats(node);
  EXPECT_EQ(s.rejected, 4U);
  EXPECT_EQ(s.ignored, 1U);
  EXPECT_EQ(s.published_internal, 1U);
}

TEST_F(internal_mode, subscribe_intercepts_the_topic_and_persists_it_unsubscribe_undoes_both) {
  {
    node_harness node(cfg);
    node.send_to_eventbus(router_message("subscribe", "default/test"));
    node.send_to_eventbus(router_message("subscribe", "sensors/+/data"));
    publish(node.port(), "default/test", "hello");
    publish(node.port(), "sensors/s1/data", "21.5");
    const auto hub = node.hub().wait_for(2);
    ASSERT_EQ(hub.size(), 2U);
    EXPECT_EQ(hub[0].route.resource, "default/test");
    EXPECT_EQ(hub[0].route.operation, "upload");
    EXPECT_EQ(hub[0].content.bytes(), "hello");
    EXPECT_EQ(hub[1].route.resource, "sensors/s1/data");
    node.send_to_eventbus(router_message("unsubscribe", "sensors/+/data"));
    publish(node.port(), "sensors/s1/data", "ignored");
    publish(node.port(), "default/test", "marker");
    const auto after = node.hub().wait_for(3);
    ASSERT_EQ(after.size(), 3U);
    EXPECT_EQ(after[2].content.bytes(), "marker");
  }  // the node has stopped: its store is closed
  EXPECT_EQ(stored_topics(db_path), std::vector<std::string>{"default/test"});
}

TEST_F(internal_mode, query_answers_the_sorted_run_time_subscriptions) {
  node_harness node(cfg);
  node.send_to_eventbus(router_message("subscribe", "z/topic"));
  node.send_to_eventbus(router_message("subscribe", "a/+/x"));
  node.send_to_eventbus(router_message("subscribe", "$hw/events/upload/#"));  // fixed: not listed
  auto answer = node.request("eventbus", router_message("query", "subscriptions"));
  ASSERT_TRUE(answer.has_value()) << answer.error().message();
  EXPECT_EQ(answer->route.operation, "response");
  EXPECT_EQ(answer->content, bus::content::json(nlohmann::json::array({"a/+/x", "z/topic"})));

  auto wrong = node.request("eventbus", router_message("query", "other"));
  ASSERT_TRUE(wrong.has_value()) << wrong.error().message();
  EXPECT_EQ(wrong->route.operation, "error");
}

TEST_F(internal_mode, subscriptions_survive_a_restart) {
  {
    node_harness node(cfg);
    node.send_to_eventbus(router_message("subscribe", "default/rule-topic"));
    node.call([](daemon::app&) { return 0; });  // the subscribe has been handled
  }
  node_harness restarted(cfg);
  publish(restarted.port(), "default/rule-topic", "after restart");
  const auto hub = restarted.hub().wait_for(1);
  ASSERT_EQ(hub.size(), 1U);
  EXPECT_EQ(hub[0].route.resource, "default/rule-topic");
  EXPECT_EQ(hub[0].content.bytes(), "after restart");
}

TEST_F(internal_mode, an_existing_edgecore_database_is_honoured) {
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(
        sqlite3_exec(db,
                     "CREATE TABLE sub_topics (topic varchar(256) NOT NULL PRIMARY KEY);"
                     "CREATE TABLE meta (key varchar(256) PRIMARY KEY, type TEXT, value TEXT);"
                     "INSERT INTO meta VALUES ('k', 't', 'v');"
                     "INSERT INTO sub_topics VALUES ('default/from-edgecore');",
                     nullptr, nullptr, nullptr),
        SQLITE_OK);
    sqlite3_close(db);
  }
  node_harness node(cfg);
  publish(node.port(), "default/from-edgecore", "x");
  const auto hub = node.hub().wait_for(1);
  ASSERT_EQ(hub.size(), 1U);
  EXPECT_EQ(hub[0].route.resource, "default/from-edgecore");
}

TEST_F(internal_mode, messages_for_twin_and_hub_wait_for_a_member_that_joins_later) {
  node_harness node(cfg, /*with_recorders=*/false);
  publish(node.port(), device_twin_topic, "early twin 1");
  publish(node.port(), device_twin_topic, "early twin 2");
  publish(node.port(), "$hw/events/upload/y", "early hub");
  const auto s = stats(node);
  EXPECT_EQ(s.backlogged, 3U);
  EXPECT_EQ(s.no_member, 0U);

  // A twin module joins late (as a remote devicetwin would after a restart): it gets the kept
  // messages first, in order, handed over in slices on later loop turns.
  ASSERT_TRUE(node.call(
      [](daemon::app& a) { return a.message_bus().add_module("late-twin", "twin").has_value(); }));
  std::vector<std::string> received;
  for (int turn = 0; turn < 100 && received.size() < 2; ++turn) {
    node.call([&received](daemon::app& a) {
      while (auto m = a.message_bus().try_receive("late-twin"))
        received.push_back(m->content.bytes());
      return 0;
    });
  }
  EXPECT_EQ(received, (std::vector<std::string>{"early twin 1", "early twin 2"}));
}

TEST_F(internal_mode, without_a_backlog_messages_for_an_empty_group_are_counted) {
  cfg.eventbus.group_backlog_size = 0;
  node_harness node(cfg, /*with_recorders=*/false);
  publish(node.port(), device_twin_topic, "x");
  publish(node.port(), "$hw/events/upload/y", "y");
  const auto s = stats(node);
  EXPECT_EQ(s.no_member, 2U);
  EXPECT_EQ(s.backlogged, 0U);
  EXPECT_EQ(s.to_twin, 0U);
}

TEST_F(internal_mode, wills_on_intercepted_topics_reach_the_bus) {
  node_harness node(cfg);
  {
    // stdbuf and -d: its SUBACK line shows the broker has handled the CONNECT, will included.
    process device({"stdbuf", "-oL", "mosquitto_sub", "-d", "-p", std::to_string(node.port()), "-t",
                    "none", "-i", "dev1", "--will-topic",
                    "$hw/events/device/default/led1/state/update", "--will-payload",
                    R"({"state":"offline"})", "--will-qos", "1", "-k", "5"});
    ASSERT_TRUE(device.wait_for_output("SUBACK")) << device.output();
    // Killed without DISCONNECT: the broker publishes the will.
    device.signal(SIGKILL);
  }
  const auto twin = node.twin().wait_for(1);
  ASSERT_EQ(twin.size(), 1U);
  EXPECT_EQ(twin[0].content.bytes(), R"({"state":"offline"})");
  EXPECT_EQ(twin[0].route.resource, bus::base64_url("$hw/events/device/default/led1/state/update"));
}

// Devices far ahead of a remote twin that reads as fast as it can: 8 publishers write 1,000
// messages each at once, 8 times what the module's queue holds. Past half of it the
// publishers wait for the twin (docs/REMOTE.md#bounds); nothing is refused.
TEST_F(internal_mode, a_burst_of_device_messages_far_ahead_of_a_remote_twin_loses_nothing) {
  node_harness node(cfg, /*with_recorders=*/false);
  auto twin = remote::bus_client::connect(cfg.eventbus.module_socket, "twin", "twin");
  ASSERT_TRUE(twin) << twin.error();
  constexpr int publishers = 8;
  constexpr int each = 1000;
  std::vector<std::unique_ptr<mqtt_peer>> devices;
  for (int d = 0; d < publishers; ++d) {
    devices.push_back(std::make_unique<mqtt_peer>(node.port()));
    ASSERT_TRUE(devices.back()->connect("burst-" + std::to_string(d)));
  }
  for (int d = 0; d < publishers; ++d) {
    const std::string topic =
        "$hw/events/device/default/burst-" + std::to_string(d) + "/twin/update";
    std::string burst;
    for (int n = 0; n < each; ++n) {
      mqtt::codec::encode_publish(burst, topic, std::to_string(n),
                                  mqtt::codec::qos_level::at_most_once, false, false, 0);
    }
    devices[static_cast<std::size_t>(d)]->send_raw(burst);
  }

  std::map<std::string, int> next;  // per device topic (as its resource): the next number
  int received = 0;
  while (received < publishers * each) {
    auto m = twin->receive(std::chrono::seconds(10));
    ASSERT_TRUE(m) << m.error();
    ASSERT_TRUE(*m) << "only " << received << " of " << publishers * each << " arrived";
    int& expected = next[(*m)->route.resource];
    EXPECT_EQ((*m)->content.bytes(), std::to_string(expected)) << (*m)->route.resource;
    ++expected;
    ++received;
  }
  EXPECT_EQ(next.size(), static_cast<std::size_t>(publishers));
  const auto s = stats(node);
  EXPECT_EQ(s.to_twin, static_cast<std::uint64_t>(publishers * each));
  EXPECT_EQ(s.refused, 0U);
  EXPECT_GT(s.publishers_held, 0U) << "the burst did go past half the queue";
  EXPECT_EQ(node.call([](daemon::app& a) { return a.message_bus().stats().queue_full; }), 0U);
}

// A remote twin that never reads holds the device's publisher back once, for at most the
// slow-subscriber timeout; from then on what does not fit its queue is refused and counted, and
// an MQTT subscriber of the same topic, which keeps reading, gets every message.
TEST_F(internal_mode,
       a_stuck_remote_twin_holds_publishers_once_and_costs_mqtt_subscribers_nothing) {
  cfg.eventbus.slow_subscriber_timeout = std::chrono::milliseconds(300);
  node_harness node(cfg, /*with_recorders=*/false);
  auto twin = remote::bus_client::connect(cfg.eventbus.module_socket, "twin", "twin");
  ASSERT_TRUE(twin) << twin.error();  // registered, and never reads again
  const std::string topic = "$hw/events/device/default/stuck/twin/update";
  mqtt_peer reader(node.port());
  ASSERT_TRUE(reader.connect("reader"));
  ASSERT_EQ(reader.subscribe(topic, mqtt::codec::qos_level::at_most_once),
            mqtt::codec::suback_return_code::success_maximum_qos_0);
  mqtt_peer device(node.port());
  ASSERT_TRUE(device.connect("stuck-device"));
  // More than the twin's queue and its socket's kernel buffers together hold.
  constexpr int n = 20000;
  std::string burst;
  for (int i = 0; i < n; ++i) {
    mqtt::codec::encode_publish(burst, topic, std::to_string(i),
                                mqtt::codec::qos_level::at_most_once, false, false, 0);
  }
  std::thread writer([&] { device.send_raw(burst); });
  int received = 0;
  for (; received < n; ++received) {
    auto p = reader.receive_publish(std::chrono::seconds(10));
    if (!p) break;
    ASSERT_EQ(p->payload, std::to_string(received));
  }
  writer.join();
  EXPECT_EQ(received, n);
  eventbus::eventbus_stats s{};
  for (int tries = 0; tries < 100; ++tries) {  // the last messages may still be on the loop
    s = stats(node);
    if (s.to_twin + s.refused == static_cast<std::uint64_t>(n)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(s.to_twin + s.refused, static_cast<std::uint64_t>(n));
  EXPECT_GT(s.refused, 0U);
  EXPECT_GE(s.publishers_held, 1U);
  EXPECT_GE(s.groups_slow, 1U);
}

}  // namespace
}  // namespace ebus::test
