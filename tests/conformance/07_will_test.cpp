// Will messages.
//
// A client connects with a will and its socket closes without DISCONNECT: the will is published,
// at its QoS, to the will topic's subscribers. After DISCONNECT it is not. A will with RETAIN 1
// is stored as the retained message of its topic; one with RETAIN 0 is not. The will is also
// published when the broker closes the connection: on keep-alive expiry, on a protocol error,
// and when another connection takes the client id over.
#include <gtest/gtest.h>

#include "conformance.hpp"

namespace ebus::test::conformance {
namespace {

codec::connect with_will(std::string id, std::string topic, std::string payload,
                         qos_level qos = qos0, bool retain = false, std::uint16_t keep_alive = 60) {
  auto c = make_connect(std::move(id), true, keep_alive);
  c.will = codec::will_message{
      .topic = std::move(topic), .payload = std::move(payload), .qos = qos, .retain = retain};
  return c;
}

TEST(will, published_when_the_socket_closes_without_disconnect) {
  // [MQTT-3.1.2-8], at the will's QoS (section 3.1.2.6)
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  ASSERT_TRUE(subscribed(*sub, "will/t", qos2));
  auto dying = connect_peer(h.port(), with_will("dying", "will/t", "gone", qos1));
  dying->close();
  const auto got = receive_acked(*sub, 1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].topic, "will/t");
  EXPECT_EQ(got[0].payload, "gone");
  EXPECT_EQ(got[0].qos, qos1);
  EXPECT_FALSE(got[0].retain);
}

TEST(will, not_published_after_disconnect) {
  // [MQTT-3.1.2-10] [MQTT-3.14.4-3]
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  ASSERT_TRUE(subscribed(*sub, "will/t", qos1));
  auto polite = connect_peer(h.port(), with_will("polite", "will/t", "gone", qos1));
  polite->send(codec::disconnect{});
  EXPECT_TRUE(polite->closed_within(close_bound));
  EXPECT_TRUE(sub->silent_for(quiet));
}

TEST(will, retain_1_stores_the_will_as_the_retained_message) {
  // [MQTT-3.1.2-17]
  broker_harness h;
  {
    auto dying = connect_peer(h.port(), with_will("dying", "will/retained", "gone", qos1, true));
    auto sub = connect_peer(h.port(), "live");
    ASSERT_TRUE(subscribed(*sub, "will/retained", qos1));
    dying->close();
    const auto live = receive_acked(*sub, 1);
    ASSERT_EQ(live.size(), 1U);
    EXPECT_FALSE(live[0].retain) << "live forwards carry RETAIN 0 [MQTT-3.3.1-9]";
  }
  auto later = connect_peer(h.port(), "later");
  ASSERT_TRUE(subscribed(*later, "will/retained", qos1));
  const auto got = receive_acked(*later, 1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_TRUE(got[0].retain);
  EXPECT_EQ(got[0].payload, "gone");
}

TEST(will, retain_0_is_not_stored) {
  // [MQTT-3.1.2-16]
  broker_harness h;
  auto sub = connect_peer(h.port(), "live");
  ASSERT_TRUE(subscribed(*sub, "will/plain", qos1));
  connect_peer(h.port(), with_will("dying", "will/plain", "gone", qos1, false))->close();
  ASSERT_EQ(receive_acked(*sub, 1).size(), 1U);
  auto later = connect_peer(h.port(), "later");
  ASSERT_TRUE(subscribed(*later, "will/plain", qos1));
  EXPECT_TRUE(later->silent_for(quiet));
}

TEST(will, will_topic_with_a_wildcard_closes_without_connack) {
  // [MQTT-3.1.3-10] [MQTT-4.7.1-1]: the Will Topic is a topic name; MQTT 3.1.1 has no CONNACK
  // code for a bad one, so the connection is closed.
  broker_harness h;
  mqtt_peer p(h.port());
  p.send(with_will("bad-will", "will/#", "x"));
  EXPECT_FALSE(p.receive(quiet));
  EXPECT_TRUE(p.closed_within(close_bound));
}

TEST(will, published_when_keep_alive_expires) {
  // [MQTT-3.1.2-24] [MQTT-3.1.2-8]: keep alive 1 s, so the broker gives up at 1.5 s (manual
  // clock) and publishes the will then, not before.
  manual_clock clk;
  broker_harness h({}, clk);
  auto sub = connect_peer(h.port(), make_connect("sub", true, 0));
  ASSERT_TRUE(subscribed(*sub, "will/ka", qos1));
  auto silent = connect_peer(h.port(), with_will("silent", "will/ka", "timed out", qos1, false, 1));
  advance(h, clk, 1499ms);
  EXPECT_TRUE(round_trip(*sub, "will/probe"));
  EXPECT_TRUE(online(h, "silent"));
  advance(h, clk, 1ms);
  const auto got = receive_acked(*sub, 1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].payload, "timed out");
  EXPECT_TRUE(silent->closed_within(close_bound));
}

TEST(will, published_when_the_broker_closes_for_a_protocol_error) {
  // [MQTT-3.1.2-8]; section 3.1.2.5 lists "the Server closes the Network Connection because of a
  // protocol error" among the cases.
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  ASSERT_TRUE(subscribed(*sub, "will/err", qos1));
  auto bad = connect_peer(h.port(), with_will("bad", "will/err", "broken", qos1));
  bad->send(make_connect("bad"));  // a second CONNECT [MQTT-3.1.0-2]
  EXPECT_TRUE(bad->closed_within(close_bound));
  const auto got = receive_acked(*sub, 1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].payload, "broken");
}

TEST(will, published_when_another_connection_takes_the_client_id_over) {
  // [MQTT-3.1.4-2] closes the old network connection without a DISCONNECT from its client, so
  // its will is published [MQTT-3.1.2-8]. The new connection's own will stays armed.
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  ASSERT_TRUE(subscribed(*sub, "will/takeover", qos1));
  auto first = connect_peer(h.port(), with_will("same", "will/takeover", "first", qos1));
  auto second = connect_peer(h.port(), with_will("same", "will/takeover", "second", qos1));
  EXPECT_TRUE(first->closed_within(close_bound));
  const auto got = receive_acked(*sub, 2, 1000ms);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].payload, "first");

  second->close();
  const auto later = receive_acked(*sub, 1);
  ASSERT_EQ(later.size(), 1U);
  EXPECT_EQ(later[0].payload, "second");
}

}  // namespace
}  // namespace ebus::test::conformance
