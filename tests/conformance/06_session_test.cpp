// Sessions: clean and persistent.
//
// A client with clean session 0 subscribes and disconnects; QoS 1 and 2 messages published
// meanwhile are queued and arrive, in order, after it reconnects with session present 1, and its
// subscriptions still deliver live messages; QoS 0 messages are not kept for it. The offline
// queue is bounded by session_queue_size. Connecting with clean session 1 discards whatever
// session there was, and a clean session is itself discarded when its connection ends.
#include <gtest/gtest.h>

#include "conformance.hpp"

namespace ebus::test::conformance {
namespace {

std::unique_ptr<mqtt_peer> reconnect(broker_harness& h, const std::string& id, bool clean,
                                     bool expect_session_present) {
  auto p = std::make_unique<mqtt_peer>(h.port());
  const auto ack = p->connect(id, clean);
  if (!ack || ack->return_code != codec::connect_return_code::accepted) {
    ADD_FAILURE() << "reconnect of " << id << " refused";
  } else {
    EXPECT_EQ(ack->session_present, expect_session_present) << id;
  }
  return p;
}

void leave(mqtt_peer& p) {
  p.send(codec::disconnect{});
  EXPECT_TRUE(p.closed_within(close_bound));
}

TEST(session, new_persistent_session_has_session_present_0) {
  // [MQTT-3.2.2-3]
  broker_harness h;
  auto p = reconnect(h, "fresh", false, false);
  EXPECT_TRUE(round_trip(*p, "session/fresh"));
}

TEST(session, persistent_session_keeps_subscriptions_and_queues_qos1_and_qos2_while_offline) {
  // [MQTT-3.1.2-4] [MQTT-3.1.2-5] [MQTT-3.2.2-2] [MQTT-4.6.0-6]
  broker_harness h;
  {
    auto sub = connect_peer(h.port(), "sub", false);
    ASSERT_TRUE(subscribed(*sub, "session/q", qos2));
    leave(*sub);
  }
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(published(*pub, make_publish("session/q", "one", qos1, 1)));
  ASSERT_TRUE(published(*pub, make_publish("session/q", "zero", qos0)));
  ASSERT_TRUE(published(*pub, make_publish("session/q", "two", qos2, 2)));
  ASSERT_TRUE(published(*pub, make_publish("session/q", "three", qos1, 3)));
  ASSERT_TRUE(synced(*pub));

  auto sub = reconnect(h, "sub", false, true);
  const auto got = receive_acked(*sub, 4, quiet);
  ASSERT_EQ(got.size(), 3U) << "QoS 0 is not kept for an offline session";
  EXPECT_EQ(got[0].payload, "one");
  EXPECT_EQ(got[0].qos, qos1);
  EXPECT_EQ(got[1].payload, "two");
  EXPECT_EQ(got[1].qos, qos2);
  EXPECT_EQ(got[2].payload, "three");

  // The subscription itself survived: live messages keep coming.
  ASSERT_TRUE(published(*pub, make_publish("session/q", "live", qos0)));
  const auto live = receive_acked(*sub, 1);
  ASSERT_EQ(live.size(), 1U);
  EXPECT_EQ(live[0].payload, "live");
}

TEST(session, offline_queue_is_bounded_by_session_queue_size) {
  // broker_options::session_queue_size with the default policy: the newest messages beyond the
  // bound are dropped and counted; the oldest ones are delivered.
  broker_harness h({.session_queue_size = 5});
  {
    auto sub = connect_peer(h.port(), "sub", false);
    ASSERT_TRUE(subscribed(*sub, "session/bound", qos1));
    leave(*sub);
  }
  auto pub = connect_peer(h.port(), "pub");
  for (std::uint16_t i = 1; i <= 8; ++i) {
    ASSERT_TRUE(published(*pub, make_publish("session/bound", std::to_string(i), qos1, i)));
  }
  EXPECT_EQ(stats(h).deliveries_dropped, 3U);
  auto sub = reconnect(h, "sub", false, true);
  const auto got = receive_acked(*sub, 8, quiet);
  ASSERT_EQ(got.size(), 5U);
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(got[i].payload, std::to_string(i + 1));
}

TEST(session, clean_session_1_discards_the_previous_session) {
  // [MQTT-3.1.2-6] [MQTT-3.2.2-1]
  broker_harness h;
  {
    auto sub = connect_peer(h.port(), "sub", false);
    ASSERT_TRUE(subscribed(*sub, "session/clean", qos1));
    leave(*sub);
  }
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(published(*pub, make_publish("session/clean", "queued", qos1, 1)));

  auto sub = reconnect(h, "sub", true, false);
  EXPECT_TRUE(sub->silent_for(quiet)) << "the queued message belonged to the discarded session";
  ASSERT_TRUE(published(*pub, make_publish("session/clean", "live", qos1, 2)));
  EXPECT_TRUE(sub->silent_for(quiet)) << "the subscription belonged to the discarded session";
}

TEST(session, clean_session_ends_with_its_connection) {
  // [MQTT-3.1.2-6]: a later persistent connection starts without the clean one's subscriptions.
  broker_harness h;
  {
    auto sub = connect_peer(h.port(), "sub", true);
    ASSERT_TRUE(subscribed(*sub, "session/ends", qos1));
    leave(*sub);
  }
  auto sub = reconnect(h, "sub", false, false);
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(published(*pub, make_publish("session/ends", "m", qos1, 1)));
  EXPECT_TRUE(sub->silent_for(quiet));
  EXPECT_EQ(h.call([](mqtt::broker::server& s) { return s.core().session_count(); }), 2U);
}

TEST(session, takeover_moves_the_session_and_its_unacknowledged_messages_to_the_new_connection) {
  // [MQTT-3.1.4-2] [MQTT-3.2.2-2] [MQTT-4.4.0-1]: the first connection is closed, the second
  // resumes the session and gets the message the first never acknowledged, DUP 1.
  broker_harness h;
  auto first = connect_peer(h.port(), "sub", false);
  ASSERT_TRUE(subscribed(*first, "session/takeover", qos1));
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(published(*pub, make_publish("session/takeover", "m", qos1, 1)));
  const auto unacked = first->receive_publish();
  ASSERT_TRUE(unacked);

  auto second = reconnect(h, "sub", false, true);
  EXPECT_TRUE(first->closed_within(close_bound));
  const auto again = second->receive_publish();
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->dup);
  EXPECT_EQ(again->packet_id, unacked->packet_id);
  second->send(codec::puback{again->packet_id});
  ASSERT_TRUE(published(*pub, make_publish("session/takeover", "live", qos1, 2)));
  const auto live = receive_acked(*second, 1);
  ASSERT_EQ(live.size(), 1U);
  EXPECT_EQ(live[0].payload, "live");
}

TEST(session, persistent_session_survives_an_abrupt_close) {
  // [MQTT-3.1.2-4]: the session outlives the network connection however it ends.
  broker_harness h;
  {
    auto sub = connect_peer(h.port(), "sub", false);
    ASSERT_TRUE(subscribed(*sub, "session/abrupt", qos1));
  }  // socket closed without DISCONNECT
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(published(*pub, make_publish("session/abrupt", "m", qos1, 1)));
  auto sub = reconnect(h, "sub", false, true);
  const auto got = receive_acked(*sub, 1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].payload, "m");
}

}  // namespace
}  // namespace ebus::test::conformance
