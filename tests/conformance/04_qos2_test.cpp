// QoS 2: exactly once, in both directions.
//
// From a client: PUBLISH is answered with PUBREC, PUBREL with PUBCOMP, same packet id. A
// retransmitted PUBLISH with the same id before PUBREL is acknowledged again but not delivered
// again, also when the publisher reconnects to its persistent session in between; once released,
// the id is free for a new message. 50 QoS 2 messages left unreleased by one publisher are all
// delivered, exactly once each (mosquitto 2.0.11 loses some past 20). To a client: PUBLISH,
// PUBREC -> PUBREL, PUBCOMP. A persistent subscriber that disconnects before PUBREC gets the
// PUBLISH again with DUP 1; one that disconnects before PUBCOMP gets the PUBREL again.
#include <string>

#include <gtest/gtest.h>

#include "conformance.hpp"

namespace ebus::test::conformance {
namespace {

TEST(qos2, publish_from_a_client_is_answered_with_pubrec_and_pubrel_with_pubcomp) {
  // [MQTT-4.3.3-2] [MQTT-2.3.1-6] [MQTT-3.6.4-1]
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(subscribed(*sub, "qos2/in", qos2));
  pub->send(make_publish("qos2/in", "m", qos2, 10));
  const auto rec = pub->receive_as<codec::pubrec>();
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->packet_id, 10);
  pub->send(codec::pubrel{10});
  const auto comp = pub->receive_as<codec::pubcomp>();
  ASSERT_TRUE(comp);
  EXPECT_EQ(comp->packet_id, 10);
  EXPECT_EQ(receive_acked(*sub, 1).size(), 1U);
  EXPECT_TRUE(only_pubrels_for(*sub));
}

TEST(qos2, delivery_to_a_client_runs_publish_pubrec_pubrel_pubcomp) {
  // [MQTT-4.3.3-1] [MQTT-3.6.1-1]: PUBREL comes with flags 0010 (the peer's decoder checks them)
  // and the same packet id; after PUBCOMP the flow is over.
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(subscribed(*sub, "qos2/out", qos2));
  ASSERT_TRUE(published(*pub, make_publish("qos2/out", "m", qos2, 1)));
  const auto msg = sub->receive_as<codec::publish>();
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->qos, qos2);
  EXPECT_NE(msg->packet_id, 0);
  EXPECT_FALSE(msg->dup);
  sub->send(codec::pubrec{msg->packet_id});
  const auto rel = sub->receive_as<codec::pubrel>();
  ASSERT_TRUE(rel);
  EXPECT_EQ(rel->packet_id, msg->packet_id);
  sub->send(codec::pubcomp{msg->packet_id});
  EXPECT_TRUE(sub->silent_for(quiet));
  EXPECT_TRUE(round_trip(*sub, "qos2/out/after"));
}

TEST(qos2, retransmitted_publish_before_pubrel_is_not_delivered_twice) {
  // [MQTT-4.3.3-2]: after PUBREC the receiver must not deliver the same packet id again until
  // PUBREL; after PUBREL the id names a new message.
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(subscribed(*sub, "qos2/dup", qos2));
  pub->send(make_publish("qos2/dup", "once", qos2, 7));
  ASSERT_TRUE(pub->receive_as<codec::pubrec>());
  auto again = make_publish("qos2/dup", "once", qos2, 7);
  again.dup = true;
  pub->send(again);
  const auto rec = pub->receive_as<codec::pubrec>();
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->packet_id, 7);
  const auto got = receive_acked(*sub, 2, quiet);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].payload, "once");

  pub->send(codec::pubrel{7});
  ASSERT_TRUE(pub->receive_as<codec::pubcomp>());
  ASSERT_TRUE(published(*pub, make_publish("qos2/dup", "next", qos2, 7)));
  const auto next = receive_acked(*sub, 1);
  ASSERT_EQ(next.size(), 1U);
  EXPECT_EQ(next[0].payload, "next");
}

TEST(qos2, fifty_unreleased_publishes_from_one_client_are_each_delivered_exactly_once) {
  // [MQTT-4.3.3-2] [MQTT-4.6.0-6]: all 50 arrive, in order, and retransmitting all of them
  // before releasing any delivers nothing more.
  constexpr std::uint16_t count = 50;
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(subscribed(*sub, "qos2/many", qos2));
  std::string batch;
  for (std::uint16_t id = 1; id <= count; ++id) {
    codec::encode(make_publish("qos2/many", std::to_string(id), qos2, id), batch);
  }
  pub->send_raw(batch);
  for (std::uint16_t id = 1; id <= count; ++id) {
    const auto rec = pub->receive_as<codec::pubrec>();
    ASSERT_TRUE(rec) << id;
    EXPECT_EQ(rec->packet_id, id);
  }
  const auto got = receive_acked(*sub, count);
  ASSERT_EQ(got.size(), count);
  for (std::uint16_t i = 0; i < count; ++i)
    EXPECT_EQ(got[i].payload, std::to_string(i + 1));

  batch.clear();
  for (std::uint16_t id = 1; id <= count; ++id) {
    auto again = make_publish("qos2/many", std::to_string(id), qos2, id);
    again.dup = true;
    codec::encode(again, batch);
  }
  pub->send_raw(batch);
  for (std::uint16_t id = 1; id <= count; ++id)
    ASSERT_TRUE(pub->receive_as<codec::pubrec>());
  EXPECT_TRUE(only_pubrels_for(*sub));

  for (std::uint16_t id = 1; id <= count; ++id)
    pub->send(codec::pubrel{id});
  for (std::uint16_t id = 1; id <= count; ++id) {
    const auto comp = pub->receive_as<codec::pubcomp>();
    ASSERT_TRUE(comp);
    EXPECT_EQ(comp->packet_id, id);
  }
}

TEST(qos2, retransmission_after_the_publisher_reconnects_is_not_delivered_again) {
  // [MQTT-3.1.2-4] [MQTT-4.3.3-2]: the ids of QoS 2 messages received and not yet released are
  // part of the persistent session.
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  ASSERT_TRUE(subscribed(*sub, "qos2/resume", qos2));
  auto pub = connect_peer(h.port(), "pub", false);
  pub->send(make_publish("qos2/resume", "m", qos2, 9));
  ASSERT_TRUE(pub->receive_as<codec::pubrec>());
  pub->close();  // no PUBREL

  pub = std::make_unique<mqtt_peer>(h.port());
  const auto ack = pub->connect("pub", false);
  ASSERT_TRUE(ack);
  EXPECT_TRUE(ack->session_present);
  auto again = make_publish("qos2/resume", "m", qos2, 9);
  again.dup = true;
  pub->send(again);
  ASSERT_TRUE(pub->receive_as<codec::pubrec>());
  pub->send(codec::pubrel{9});
  ASSERT_TRUE(pub->receive_as<codec::pubcomp>());
  const auto got = receive_acked(*sub, 2, quiet);
  EXPECT_EQ(got.size(), 1U);
}

TEST(qos2, publish_is_redelivered_with_dup_when_pubrec_is_missing) {
  // [MQTT-4.4.0-1] [MQTT-3.3.1-1]
  broker_harness h;
  auto pub = connect_peer(h.port(), "pub");
  auto sub = connect_peer(h.port(), "sub", false);
  ASSERT_TRUE(subscribed(*sub, "qos2/redeliver", qos2));
  ASSERT_TRUE(published(*pub, make_publish("qos2/redeliver", "m", qos2, 1)));
  const auto first = sub->receive_publish();
  ASSERT_TRUE(first);
  sub->close();  // no PUBREC

  sub = std::make_unique<mqtt_peer>(h.port());
  const auto ack = sub->connect("sub", false);
  ASSERT_TRUE(ack);
  EXPECT_TRUE(ack->session_present);
  const auto again = sub->receive_publish();
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->dup);
  EXPECT_EQ(again->packet_id, first->packet_id);
  EXPECT_EQ(again->qos, qos2);
  sub->send(codec::pubrec{again->packet_id});
  const auto rel = sub->receive_as<codec::pubrel>();
  ASSERT_TRUE(rel);
  EXPECT_EQ(rel->packet_id, first->packet_id);
  sub->send(codec::pubcomp{rel->packet_id});
  EXPECT_TRUE(sub->silent_for(quiet));
}

TEST(qos2, pubrel_is_redelivered_after_reconnect_when_pubcomp_is_missing) {
  // [MQTT-4.4.0-1] [MQTT-4.3.3-1]: the message itself is not sent again.
  broker_harness h;
  auto pub = connect_peer(h.port(), "pub");
  auto sub = connect_peer(h.port(), "sub", false);
  ASSERT_TRUE(subscribed(*sub, "qos2/pubrel", qos2));
  ASSERT_TRUE(published(*pub, make_publish("qos2/pubrel", "m", qos2, 1)));
  const auto msg = sub->receive_publish();
  ASSERT_TRUE(msg);
  sub->send(codec::pubrec{msg->packet_id});
  ASSERT_TRUE(sub->receive_as<codec::pubrel>());
  sub->close();  // no PUBCOMP

  sub = std::make_unique<mqtt_peer>(h.port());
  const auto ack = sub->connect("sub", false);
  ASSERT_TRUE(ack);
  EXPECT_TRUE(ack->session_present);
  const auto rel = sub->receive_as<codec::pubrel>();
  ASSERT_TRUE(rel);
  EXPECT_EQ(rel->packet_id, msg->packet_id);
  sub->send(codec::pubcomp{rel->packet_id});
  ASSERT_TRUE(synced(*sub));
  sub->send(codec::disconnect{});
  sub->close();

  sub = std::make_unique<mqtt_peer>(h.port());
  ASSERT_TRUE(sub->connect("sub", false));
  EXPECT_TRUE(sub->silent_for(quiet));
}

TEST(qos2, pubrel_for_an_unknown_packet_id_is_answered_with_pubcomp) {
  // [MQTT-3.6.4-1]
  broker_harness h;
  auto p = connect_peer(h.port(), "c");
  p->send(codec::pubrel{4321});
  const auto comp = p->receive_as<codec::pubcomp>();
  ASSERT_TRUE(comp);
  EXPECT_EQ(comp->packet_id, 4321);
}

}  // namespace
}  // namespace ebus::test::conformance
