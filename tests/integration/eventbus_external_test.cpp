// The eventbus node in modes 2 (external broker) and 1 (both) against Debian's mosquitto on a
// free loopback port: devices publish on mosquitto, the node subscribes and publishes there as
// edgecore does, and survives the broker going away and coming back.
#include <gtest/gtest.h>

#include "bus/message_json.hpp"
#include "ebus_test/mosquitto_broker.hpp"
#include "ebus_test/mqtt_peer.hpp"
#include "ebus_test/process.hpp"
#include "eventbus/eventbus_module.hpp"
#include "mqtt/client/external_broker.hpp"
#include "mqtt/codec/encoder.hpp"
#include "node_harness.hpp"
#include "remote/client.hpp"

namespace ebus::test {
namespace {

using namespace std::chrono_literals;
using config::mqtt_mode;

const std::string twin_topic = "$hw/events/device/default/led1/twin/update";

void publish(std::uint16_t port, const std::string& topic, const std::string& payload) {
  process pub({"mosquitto_pub", "-p", std::to_string(port), "-t", topic, "-q", "1", "-m", payload});
  ASSERT_EQ(pub.wait(), 0) << pub.output();
}

/// A mosquitto_sub printing "MSG <qos> <retain> <topic> <payload>", returned once subscribed.
std::unique_ptr<process> subscriber(std::uint16_t port, const std::string& topic, int count) {
  auto sub = std::make_unique<process>(std::vector<std::string>{
      "stdbuf", "-oL", "mosquitto_sub", "-p", std::to_string(port), "-t", topic, "-q", "1", "-F",
      "MSG %q %r %t %p", "-d", "-C", std::to_string(count), "-W", "15"});
  EXPECT_TRUE(sub->wait_for_output("SUBACK")) << sub->output();
  return sub;
}

/// Polls `pred` on the test thread for up to `limit`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

/// mosquitto logs each filter of a SUBSCRIBE as "\t<filter> (QoS 1)".
bool subscribed(mosquitto_broker& broker, const std::string& filter) {
  return broker.wait_for_output("\t" + filter + " (QoS 1)", 10s);
}

class external_mode : public ::testing::Test {
 protected:
  node_harness& start_node(mqtt_mode mode, const std::string& sub_id = "eb-sub",
                           const std::string& pub_id = "eb-pub") {
    auto cfg = node_harness::test_config(mode, dir, broker.url());
    cfg.eventbus.sub_client_id = sub_id;
    cfg.eventbus.pub_client_id = pub_id;
    node = std::make_unique<node_harness>(std::move(cfg));
    return *node;
  }

  bool connected() {
    return node->call([](daemon::app& a) {
      return a.external_broker()->sub_connected() && a.external_broker()->pub_connected();
    });
  }

  mqtt::client::external_stats external_stats() {
    return node->call([](daemon::app& a) { return a.external_broker()->stats(); });
  }

  /// "Received PUBLISH from <client> ... '<topic>'" lines in mosquitto's log.
  std::size_t received_by_broker(const std::string& topic) {
    return count(broker.output(), "'" + topic + "'");
  }

  temp_dir dir;
  mosquitto_broker broker;
  std::unique_ptr<node_harness> node;
};

TEST_F(external_mode,
       device_messages_on_the_external_broker_reach_the_bus_as_kubeedge_builds_them) {
  auto& n = start_node(mqtt_mode::external);
  ASSERT_TRUE(eventually([&] { return connected(); }));
  ASSERT_TRUE(subscribed(broker, "$hw/events/device/+/twin/+")) << broker.output();
  EXPECT_EQ(n.port(), 0U) << "no embedded broker in mode 2";

  publish(broker.port(), twin_topic, R"({"event_id":"x"})");
  publish(broker.port(), "SYS/dis/upload_records", "records");
  const auto twin = n.twin().wait_for(1);
  ASSERT_EQ(twin.size(), 1U);
  EXPECT_EQ(twin[0].route.source, "bus");
  EXPECT_EQ(twin[0].route.group, "user");
  EXPECT_EQ(twin[0].route.operation, "response");
  EXPECT_EQ(twin[0].route.resource, "JGh3L2V2ZW50cy9kZXZpY2UvZGVmYXVsdC9sZWQxL3R3aW4vdXBkYXRl");
  EXPECT_EQ(twin[0].content, bus::content::text(R"({"event_id":"x"})"));
  const auto hub = n.hub().wait_for(1);
  ASSERT_EQ(hub.size(), 1U);
  EXPECT_EQ(hub[0].route.resource, "SYS/dis/upload_records");
  EXPECT_EQ(hub[0].route.operation, "upload");
}

TEST_F(external_mode, subscribes_every_fixed_topic_with_qos1_and_the_configured_client_ids) {
  start_node(mqtt_mode::external);
  for (const char* filter :
       {"$hw/events/upload/#", "$hw/events/device/+/+/state/update", "$hw/events/device/+/+/twin/+",
        "$hw/events/node/+/membership/get", "SYS/dis/upload_records", "+/user/#",
        "$hw/events/device/+/state/update", "$hw/events/device/+/twin/+"}) {
    EXPECT_TRUE(subscribed(broker, filter)) << filter << "\n" << broker.output();
  }
  EXPECT_NE(broker.output().find(" as eb-sub "), std::string::npos) << broker.output();
  EXPECT_NE(broker.output().find(" as eb-pub "), std::string::npos) << broker.output();
}

TEST_F(external_mode, generated_client_ids_follow_kubeedge) {
  start_node(mqtt_mode::external, "", "");
  ASSERT_TRUE(eventually([&] { return connected(); }));
  EXPECT_NE(broker.output().find(" as hub-client-sub-"), std::string::npos) << broker.output();
  EXPECT_NE(broker.output().find(" as hub-client-pub-"), std::string::npos) << broker.output();
}

TEST_F(external_mode, bus_publish_reaches_external_subscribers_with_qos1_and_no_retain) {
  start_node(mqtt_mode::external);
  ASSERT_TRUE(eventually([&] { return connected(); }));
  auto sub = subscriber(broker.port(), "devices/led1/cmd", 1);
  node->send_to_eventbus(router_message("publish", "devices/led1/cmd", bus::content::text("on")));
  ASSERT_EQ(sub->wait(), 0) << sub->output();
  EXPECT_NE(sub->output().find("MSG 1 0 devices/led1/cmd on"), std::string::npos) << sub->output();
}

TEST_F(external_mode, subscribe_from_the_bus_subscribes_on_the_external_broker) {
  start_node(mqtt_mode::external);
  node->send_to_eventbus(router_message("subscribe", "default/test"));
  ASSERT_TRUE(subscribed(broker, "default/test")) << broker.output();
  publish(broker.port(), "default/test", "rule data");
  const auto hub = node->hub().wait_for(1);
  ASSERT_EQ(hub.size(), 1U);
  EXPECT_EQ(hub[0].route.resource, "default/test");
  EXPECT_EQ(hub[0].content.bytes(), "rule data");

  node->send_to_eventbus(router_message("unsubscribe", "default/test"));
  ASSERT_TRUE(broker.wait_for_output("Received UNSUBSCRIBE from eb-sub", 10s)) << broker.output();
}

TEST_F(external_mode, starts_without_the_broker_and_delivers_buffered_publishes_once_it_is_up) {
  broker.stop();
  start_node(mqtt_mode::external);  // returns at once: nothing waits for the broker
  for (int i = 0; i < 3; ++i) {
    node->send_to_eventbus(
        router_message("publish", "buffered/out", bus::content::text("m" + std::to_string(i))));
  }
  EXPECT_TRUE(eventually([&] {
    return node->call([](daemon::app& a) { return a.external_broker()->pending(); }) == 3;
  }));
  broker.start();
  ASSERT_TRUE(eventually([&] { return connected(); }));
  ASSERT_TRUE(eventually([&] { return received_by_broker("buffered/out") == 3; }))
      << broker.output();
  ASSERT_TRUE(subscribed(broker, "$hw/events/upload/#")) << broker.output();
  publish(broker.port(), "$hw/events/upload/late", "works");
  EXPECT_EQ(node->hub().wait_for(1).size(), 1U);
}

TEST_F(external_mode, reconnects_resubscribes_fixed_and_stored_topics_and_flushes_the_buffer) {
  start_node(mqtt_mode::external);
  node->send_to_eventbus(router_message("subscribe", "default/dynamic"));
  ASSERT_TRUE(subscribed(broker, "default/dynamic")) << broker.output();

  broker.kill();
  ASSERT_TRUE(eventually([&] { return !connected(); }));
  node->send_to_eventbus(router_message("publish", "while/down", bus::content::text("kept")));
  broker.start();
  ASSERT_TRUE(eventually([&] { return connected(); }));
  ASSERT_TRUE(subscribed(broker, "default/dynamic")) << broker.output();
  ASSERT_TRUE(subscribed(broker, "$hw/events/device/+/+/twin/+")) << broker.output();
  ASSERT_TRUE(eventually([&] { return received_by_broker("while/down") >= 1; })) << broker.output();

  publish(broker.port(), twin_topic, "after restart");
  publish(broker.port(), "default/dynamic", "dynamic after restart");
  EXPECT_EQ(node->twin().wait_for(1).size(), 1U);
  EXPECT_EQ(node->hub().wait_for(1).size(), 1U);
  EXPECT_GE(external_stats().sub_connects, 2U);
}

TEST_F(external_mode, stored_subscriptions_are_subscribed_on_the_external_broker_at_start) {
  {
    auto& n = start_node(mqtt_mode::external);
    n.send_to_eventbus(router_message("subscribe", "default/kept"));
    ASSERT_TRUE(subscribed(broker, "default/kept")) << broker.output();
    node.reset();
  }
  broker.stop();
  broker.start();
  start_node(mqtt_mode::external);
  ASSERT_TRUE(subscribed(broker, "default/kept")) << broker.output();
  publish(broker.port(), "default/kept", "x");
  EXPECT_EQ(node->hub().wait_for(1).size(), 1U);
}

TEST_F(external_mode, mode_both_feeds_the_bus_from_both_brokers_and_publishes_to_both) {
  auto& n = start_node(mqtt_mode::both);
  ASSERT_NE(n.port(), 0U);
  ASSERT_TRUE(eventually([&] { return connected(); }));
  ASSERT_TRUE(subscribed(broker, "$hw/events/device/+/+/twin/+")) << broker.output();

  publish(n.port(), twin_topic, "from internal");
  publish(broker.port(), twin_topic, "from external");
  const auto twin = n.twin().wait_for(2);
  ASSERT_EQ(twin.size(), 2U);
  EXPECT_EQ(twin[0].content.bytes(), "from internal");
  EXPECT_EQ(twin[1].content.bytes(), "from external");

  auto internal_sub = subscriber(n.port(), "both/out", 1);
  auto external_sub = subscriber(broker.port(), "both/out", 1);
  n.send_to_eventbus(router_message("publish", "both/out", bus::content::text("to both")));
  ASSERT_EQ(internal_sub->wait(), 0) << internal_sub->output();
  ASSERT_EQ(external_sub->wait(), 0) << external_sub->output();
  EXPECT_NE(internal_sub->output().find("both/out to both"), std::string::npos);
  EXPECT_NE(external_sub->output().find("MSG 1 0 both/out to both"), std::string::npos);
}

// A burst on the external broker for a remote twin: devices publish `n` QoS 1 messages on
// mosquitto (which may queue them all for the node's subscriber), and nothing is lost whatever
// the twin does meanwhile (docs/REMOTE.md#bounds).
class external_burst : public ::testing::Test {
 protected:
  void start(std::chrono::milliseconds slow_timeout) {
    auto cfg = node_harness::test_config(mqtt_mode::external, dir, broker.url());
    cfg.eventbus.slow_subscriber_timeout = slow_timeout;
    node = std::make_unique<node_harness>(std::move(cfg), /*with_recorders=*/false);
    auto connected =
        remote::bus_client::connect((dir.path() / "eventbus.sock").string(), "twin", "twin");
    ASSERT_TRUE(connected) << connected.error();
    twin = std::move(*connected);
    ASSERT_TRUE(eventually([&] {
      return node->call([](daemon::app& a) { return a.external_broker()->sub_connected(); });
    }));
    // The "subscribe" log line: "<client id> 1 <filter>".
    ASSERT_TRUE(broker.wait_for_output(" 1 $hw/events/device/+/twin/+", 10s)) << broker.output();
  }

  /// `n` QoS 1 publishes of their own number, written at once by one device.
  void publish_burst(int n) {
    ASSERT_TRUE(device.connect("burst-device"));
    std::string burst;
    for (int i = 0; i < n; ++i) {
      mqtt::codec::encode_publish(burst, topic, std::to_string(i),
                                  mqtt::codec::qos_level::at_least_once, false, false,
                                  static_cast<std::uint16_t>(i + 1));
    }
    device.send_raw(burst);
  }

  eventbus::eventbus_stats stats() {
    return node->call([](daemon::app& a) { return a.eventbus()->stats(); });
  }

  const std::string topic = "$hw/events/device/default/burst/twin/update";
  temp_dir dir;
  // Keeps what the node's subscriber has not read yet, as many as the test sends; logs no
  // packets, which nobody reads meanwhile.
  mosquitto_broker broker{
      {.extra_config = {"max_queued_messages 100000"},
       .log_types = {"error", "warning", "notice", "information", "subscribe"}}};
  std::unique_ptr<node_harness> node;
  std::optional<remote::bus_client> twin;
  mqtt_peer device{broker.port()};
};

// The twin does not read until the device has written the whole burst, more than its queue
// and its socket's kernel buffers hold: past half of its queue the node stops reading from
// mosquitto, which keeps the rest, and every message reaches the twin in order once it reads.
TEST_F(external_burst, a_twin_that_reads_late_loses_nothing_from_the_external_broker) {
  start(std::chrono::seconds(10));
  constexpr int n = 20000;
  publish_burst(n);
  ASSERT_TRUE(eventually([&] { return stats().external_held > 0; }))
      << "the node never paused its subscriber";
  for (int i = 0; i < n; ++i) {
    auto m = twin->receive(std::chrono::seconds(10));
    ASSERT_TRUE(m) << m.error();
    ASSERT_TRUE(*m) << "only " << i << " of " << n << " arrived";
    ASSERT_EQ((*m)->content.bytes(), std::to_string(i));
  }
  const auto s = stats();
  EXPECT_EQ(s.to_twin, static_cast<std::uint64_t>(n));
  EXPECT_EQ(s.refused, 0U);
  EXPECT_EQ(s.groups_slow, 0U);
}

// A twin that never reads keeps the subscriber paused for the slow-subscriber timeout only:
// then the group is slow, the node reads on, and what does not fit is refused and counted.
TEST_F(external_burst, a_stuck_twin_pauses_the_external_subscriber_only_until_the_timeout) {
  start(std::chrono::milliseconds(300));
  constexpr int n = 20000;
  publish_burst(n);
  eventbus::eventbus_stats s{};
  EXPECT_TRUE(eventually([&] {
    s = stats();
    return s.to_twin + s.refused == static_cast<std::uint64_t>(n);
  })) << "to_twin="
      << s.to_twin << " refused=" << s.refused;
  EXPECT_GE(s.external_held, 1U);
  EXPECT_GE(s.groups_slow, 1U);
  EXPECT_GT(s.refused, 0U);
  EXPECT_TRUE(node->call([](daemon::app& a) { return !a.external_broker()->receiving_paused(); }));
}

}  // namespace
}  // namespace ebus::test
