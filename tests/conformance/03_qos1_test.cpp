// QoS 1: at least once.
//
// The publisher gets a PUBACK with its packet id. The subscriber gets the message with a nonzero
// packet id and DUP 0, even when the publisher's copy was a retransmission with DUP 1. Messages
// in flight to one client carry distinct packet ids, and no more than max_inflight are
// unacknowledged at once. A persistent subscriber that disconnects without acknowledging gets
// the message again after reconnecting, same packet id, DUP 1; once acknowledged, it is not sent
// again.
#include <set>

#include <gtest/gtest.h>

#include "conformance.hpp"

namespace ebus::test::conformance {
namespace {

TEST(qos1, puback_carries_the_packet_id_of_the_publish) {
  // [MQTT-4.3.2-2] [MQTT-2.3.1-6]
  broker_harness h;
  auto pub = connect_peer(h.port(), "pub");
  for (const std::uint16_t id : {1, 300, 65535}) {
    pub->send(make_publish("qos1/t", "m", qos1, id));
    const auto ack = pub->receive_as<codec::puback>();
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->packet_id, id);
  }
}

TEST(qos1, subscriber_gets_a_nonzero_packet_id_and_dup_0_even_for_a_retransmitted_publish) {
  // [MQTT-2.3.1-1] [MQTT-3.3.1-3]: DUP of an incoming PUBLISH is not propagated.
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(subscribed(*sub, "qos1/t", qos1));
  auto retransmission = make_publish("qos1/t", "again", qos1, 5);
  retransmission.dup = true;
  ASSERT_TRUE(published(*pub, retransmission));
  const auto got = sub->receive_publish();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->qos, qos1);
  EXPECT_NE(got->packet_id, 0);
  EXPECT_FALSE(got->dup);
  EXPECT_EQ(got->payload, "again");
}

TEST(qos1, messages_in_flight_have_distinct_ids_and_the_window_opens_on_puback) {
  // [MQTT-2.3.1-2] [MQTT-2.3.1-4]: a new packet id for each new message in flight. The window is
  // broker_options::max_inflight (here 5): more is sent only as PUBACKs come back.
  broker_harness h({.max_inflight = 5});
  auto sub = connect_peer(h.port(), "sub");
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(subscribed(*sub, "qos1/window", qos1));
  for (std::uint16_t i = 1; i <= 8; ++i) {
    ASSERT_TRUE(published(*pub, make_publish("qos1/window", std::to_string(i), qos1, i)));
  }
  std::set<std::uint16_t> ids;
  std::vector<codec::publish> first;
  for (int i = 0; i < 5; ++i) {
    auto p = sub->receive_publish();
    ASSERT_TRUE(p);
    ids.insert(p->packet_id);
    first.push_back(std::move(*p));
  }
  EXPECT_EQ(ids.size(), 5U);
  EXPECT_TRUE(sub->silent_for(quiet)) << "more than max_inflight unacknowledged";
  sub->send(codec::puback{first[0].packet_id});
  const auto sixth = sub->receive_publish();
  ASSERT_TRUE(sixth);
  EXPECT_EQ(sixth->payload, "6");
  EXPECT_EQ(ids.count(sixth->packet_id), 0U) << "id of a message still in flight reused";
}

TEST(qos1, unacknowledged_message_is_redelivered_with_dup_after_reconnect) {
  // [MQTT-4.4.0-1] [MQTT-3.3.1-1] [MQTT-4.3.2-1]: same packet id, DUP 1, after the CONNACK.
  broker_harness h;
  auto pub = connect_peer(h.port(), "pub");
  auto sub = connect_peer(h.port(), "sub", false);
  ASSERT_TRUE(subscribed(*sub, "qos1/redeliver", qos1));
  ASSERT_TRUE(published(*pub, make_publish("qos1/redeliver", "m", qos1, 1)));
  const auto first = sub->receive_publish();
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->dup);
  sub->close();  // no PUBACK, no DISCONNECT

  sub = std::make_unique<mqtt_peer>(h.port());
  sub->send(make_connect("sub", false));
  const auto ack = sub->receive_as<codec::connack>();
  ASSERT_TRUE(ack);
  EXPECT_TRUE(ack->session_present);
  const auto again = sub->receive_publish();
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->dup);
  EXPECT_EQ(again->packet_id, first->packet_id);
  EXPECT_EQ(again->qos, qos1);
  EXPECT_EQ(again->payload, "m");
  sub->send(codec::puback{again->packet_id});
  ASSERT_TRUE(synced(*sub));  // the PUBACK is handled before the next connection takes over
  sub->send(codec::disconnect{});
  sub->close();

  // Acknowledged now: a further reconnect brings nothing.
  sub = std::make_unique<mqtt_peer>(h.port());
  ASSERT_TRUE(sub->connect("sub", false));
  EXPECT_TRUE(sub->silent_for(quiet));
}

}  // namespace
}  // namespace ebus::test::conformance
