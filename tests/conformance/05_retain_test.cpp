// Retained messages.
//
// A PUBLISH with RETAIN 1 is stored; a later subscriber gets it with RETAIN 1 at the lower of
// the stored and granted QoS, while subscribers that were already there get it with RETAIN 0. A
// new retained message on the topic replaces the old one, also at QoS 0; a PUBLISH with RETAIN 0
// leaves it alone; an empty retained payload deletes it and is still forwarded to current
// subscribers. A wildcard subscription gets every matching retained message, and subscribing
// again to the same filter sends them again.
#include <map>

#include <gtest/gtest.h>

#include "conformance.hpp"

namespace ebus::test::conformance {
namespace {

std::size_t retained_count(broker_harness& h) {
  return h.call([](mqtt::broker::server& s) { return s.core().retained_count(); });
}

TEST(retain, retained_message_goes_to_a_later_subscriber_with_retain_1) {
  // [MQTT-3.3.1-5] [MQTT-3.3.1-6] [MQTT-3.3.1-8] [MQTT-3.8.4-6]
  broker_harness h;
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(published(*pub, make_publish("ret/a", "stored", qos2, 1, true)));
  for (const auto sub_qos : {qos0, qos1, qos2}) {
    SCOPED_TRACE(static_cast<int>(sub_qos));
    auto sub = connect_peer(h.port(), "sub");
    ASSERT_TRUE(subscribed(*sub, "ret/a", sub_qos));
    const auto got = receive_acked(*sub, 1);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_TRUE(got[0].retain);
    EXPECT_EQ(got[0].payload, "stored");
    EXPECT_EQ(got[0].qos, sub_qos);
    EXPECT_TRUE(only_pubrels_for(*sub));
  }
}

TEST(retain, live_forward_of_a_retained_publish_has_retain_0) {
  // [MQTT-3.3.1-9]
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  ASSERT_TRUE(subscribed(*sub, "ret/live", qos1));
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(published(*pub, make_publish("ret/live", "m", qos1, 1, true)));
  const auto got = receive_acked(*sub, 1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_FALSE(got[0].retain);
  EXPECT_EQ(retained_count(h), 1U);
}

TEST(retain, new_retained_message_replaces_the_old_one_also_at_qos0) {
  // [MQTT-3.3.1-5] [MQTT-3.3.1-7]
  broker_harness h;
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(published(*pub, make_publish("ret/r", "first", qos1, 1, true)));
  ASSERT_TRUE(published(*pub, make_publish("ret/r", "second", qos0, 0, true)));
  ASSERT_TRUE(synced(*pub));
  auto sub = connect_peer(h.port(), "sub");
  ASSERT_TRUE(subscribed(*sub, "ret/r", qos1));
  const auto got = receive_acked(*sub, 2, quiet);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].payload, "second");
  EXPECT_EQ(got[0].qos, qos0);
  EXPECT_TRUE(got[0].retain);
  EXPECT_EQ(retained_count(h), 1U);
}

TEST(retain, publish_without_retain_leaves_the_retained_message) {
  // [MQTT-3.3.1-12]
  broker_harness h;
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(published(*pub, make_publish("ret/keep", "kept", qos1, 1, true)));
  ASSERT_TRUE(published(*pub, make_publish("ret/keep", "not retained", qos1, 2, false)));
  auto sub = connect_peer(h.port(), "sub");
  ASSERT_TRUE(subscribed(*sub, "ret/keep", qos1));
  const auto got = receive_acked(*sub, 2, quiet);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].payload, "kept");
}

TEST(retain, empty_retained_payload_deletes_the_message_and_is_still_forwarded) {
  // [MQTT-3.3.1-10] [MQTT-3.3.1-11]
  broker_harness h;
  auto pub = connect_peer(h.port(), "pub");
  auto live = connect_peer(h.port(), "live");
  ASSERT_TRUE(published(*pub, make_publish("ret/del", "doomed", qos1, 1, true)));
  ASSERT_TRUE(subscribed(*live, "ret/del", qos1));
  ASSERT_EQ(receive_acked(*live, 1).size(), 1U);  // the retained one
  ASSERT_TRUE(published(*pub, make_publish("ret/del", "", qos1, 2, true)));
  const auto forwarded = receive_acked(*live, 1);
  ASSERT_EQ(forwarded.size(), 1U);
  EXPECT_EQ(forwarded[0].payload, "");
  EXPECT_FALSE(forwarded[0].retain);
  EXPECT_EQ(retained_count(h), 0U);

  auto later = connect_peer(h.port(), "later");
  ASSERT_TRUE(subscribed(*later, "ret/del", qos1));
  EXPECT_TRUE(later->silent_for(quiet));
}

TEST(retain, wildcard_subscription_gets_every_matching_retained_message) {
  // [MQTT-3.3.1-6] [MQTT-4.7.1-2] [MQTT-4.7.1-3]
  broker_harness h;
  auto pub = connect_peer(h.port(), "pub");
  const std::map<std::string, std::string> stored = {
      {"home", "0"}, {"home/a", "1"}, {"home/a/b", "2"}, {"home/c", "3"}, {"other/a", "4"}};
  std::uint16_t id = 1;
  for (const auto& [topic, payload] : stored) {
    ASSERT_TRUE(published(*pub, make_publish(topic, payload, qos1, id++, true)));
  }
  auto sub = connect_peer(h.port(), "sub");
  ASSERT_TRUE(subscribed(*sub, "home/#", qos1));
  std::map<std::string, std::string> got;
  for (const auto& p : receive_acked(*sub, 5, quiet)) {
    EXPECT_TRUE(p.retain);
    got[p.topic] = p.payload;
  }
  EXPECT_EQ(got, (std::map<std::string, std::string>{
                     {"home", "0"}, {"home/a", "1"}, {"home/a/b", "2"}, {"home/c", "3"}}));

  auto plus = connect_peer(h.port(), "plus");
  ASSERT_TRUE(subscribed(*plus, "+/a", qos0));
  got.clear();
  for (const auto& p : receive_acked(*plus, 3, quiet))
    got[p.topic] = p.payload;
  EXPECT_EQ(got, (std::map<std::string, std::string>{{"home/a", "1"}, {"other/a", "4"}}));
}

TEST(retain, subscribing_again_sends_the_retained_messages_again) {
  // [MQTT-3.8.4-3]
  broker_harness h;
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(published(*pub, make_publish("ret/again", "m", qos1, 1, true)));
  auto sub = connect_peer(h.port(), "sub");
  ASSERT_TRUE(subscribed(*sub, "ret/again", qos1, 1));
  ASSERT_EQ(receive_acked(*sub, 1).size(), 1U);
  ASSERT_TRUE(subscribed(*sub, "ret/again", qos1, 2));
  const auto got = receive_acked(*sub, 1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_TRUE(got[0].retain);
}

TEST(retain, suback_comes_before_the_retained_messages) {
  // Section 3.8.4 allows either order; this broker promises the SUBACK first (connection.cpp),
  // so a client sees its subscription confirmed before the retained messages it brings.
  broker_harness h;
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(published(*pub, make_publish("ret/order", "m", qos0, 0, true)));
  ASSERT_TRUE(synced(*pub));
  auto sub = connect_peer(h.port(), "sub");
  sub->send(codec::subscribe{5, {{"ret/order", qos0}}});
  const auto first = sub->receive();
  ASSERT_TRUE(first);
  EXPECT_TRUE(std::holds_alternative<codec::suback>(*first));
  const auto second = sub->receive_as<codec::publish>();
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->retain);
}

}  // namespace
}  // namespace ebus::test::conformance
