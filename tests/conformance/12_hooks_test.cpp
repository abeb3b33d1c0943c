// The EventBus hooks of the broker core.
//
// With an interceptor set and an interest filter added, every PUBLISH accepted from a client
// whose topic matches (QoS 0, 1 and 2 once each, a QoS 2 retransmission not again) and every will
// reach the interceptor, in the order the broker accepted them; topics outside the interest do
// not, and removing the interest stops it. inject() publishes from inside the process: subscribers
// get the message at the given QoS (capped by their subscription), a retained injection is stored
// and sent with RETAIN 1 to later subscribers, and nothing injected reaches the interceptor.
// These are the broker's own interfaces; the MQTT rules they follow are cited per test.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "conformance.hpp"

namespace ebus::test::conformance {
namespace {

using mqtt::broker::inbound_message;

/// What the interceptor saw of a message; it takes the payload, as the EventBus does.
struct seen_message {
  std::string topic;
  std::string payload;
  codec::qos_level qos;
  bool retain;
};
using mqtt::broker::server;

/// What the interceptor saw. Touched only on the loop thread (the interceptor runs there, and
/// the test reads it through call()).
struct intercepted {
  std::vector<seen_message> messages;

  bool install(broker_harness& h, const std::string& filter) {
    return h.call([this, &filter](server& s) {
      s.core().set_interceptor([this](inbound_message& m, const auto&) {
        messages.push_back({std::string(m.topic()), m.take_payload(), m.qos(), m.retain()});
      });
      return s.core().add_interest(filter);
    });
  }

  std::vector<seen_message> snapshot(broker_harness& h) {
    return h.call([this](server&) { return messages; });
  }
};

TEST(hooks, interceptor_gets_each_matching_client_publish_and_will_once_in_order) {
  // [MQTT-4.3.3-2] (a QoS 2 retransmission is not a new message) [MQTT-4.6.0-6] [MQTT-3.1.2-8]
  intercepted seen;  // outlives the harness: wills published at shutdown still reach it
  broker_harness h;
  ASSERT_TRUE(seen.install(h, "hook/#"));
  auto will_sub = connect_peer(h.port(), "will-sub");
  ASSERT_TRUE(subscribed(*will_sub, "hook/will", qos1));

  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(published(*pub, make_publish("hook/a", "0", qos0)));
  ASSERT_TRUE(published(*pub, make_publish("hook/b", "1", qos1, 1)));
  ASSERT_TRUE(published(*pub, make_publish("elsewhere/x", "skip", qos1, 2)));
  pub->send(make_publish("hook/c", "2", qos2, 3));
  ASSERT_TRUE(pub->receive_as<codec::pubrec>());
  auto again = make_publish("hook/c", "2", qos2, 3);
  again.dup = true;
  pub->send(again);  // retransmission before PUBREL: not a new message
  ASSERT_TRUE(pub->receive_as<codec::pubrec>());
  pub->send(codec::pubrel{3});
  ASSERT_TRUE(pub->receive_as<codec::pubcomp>());
  ASSERT_TRUE(published(*pub, make_publish("hook/d", "3", qos0, 0, true)));
  ASSERT_TRUE(synced(*pub));

  auto dying = make_connect("dying");
  dying.will = codec::will_message{.topic = "hook/will", .payload = "4", .qos = qos1};
  connect_peer(h.port(), dying)->close();
  ASSERT_EQ(receive_acked(*will_sub, 1).size(), 1U);  // the will has been published

  const auto got = seen.snapshot(h);
  ASSERT_EQ(got.size(), 5U);
  const std::string topics[] = {"hook/a", "hook/b", "hook/c", "hook/d", "hook/will"};
  const qos_level qos[] = {qos0, qos1, qos2, qos0, qos1};
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].topic, topics[i]);
    EXPECT_EQ(got[i].payload, std::to_string(i));
    EXPECT_EQ(got[i].qos, qos[i]);
    EXPECT_EQ(got[i].retain, i == 3);
  }
  EXPECT_EQ(stats(h).intercepted, 5U);

  ASSERT_TRUE(h.call([](server& s) { return s.core().remove_interest("hook/#"); }));
  ASSERT_TRUE(published(*pub, make_publish("hook/e", "5", qos1, 4)));
  EXPECT_EQ(seen.snapshot(h).size(), 5U);
}

TEST(hooks, inject_reaches_subscribers_with_the_given_qos_and_retain_and_is_not_intercepted) {
  // [MQTT-3.8.4-6] [MQTT-3.3.1-8] [MQTT-3.3.1-9]
  intercepted seen;
  broker_harness h;
  ASSERT_TRUE(seen.install(h, "#"));
  auto sub = connect_peer(h.port(), "sub");
  ASSERT_TRUE(subscribed(*sub, "inj/#", qos2));
  auto low = connect_peer(h.port(), "low");
  ASSERT_TRUE(subscribed(*low, "inj/#", qos0));

  const auto inject = [&h](std::string topic, std::string payload, qos_level qos, bool retain) {
    return h.call([&](server& s) {
      return s.core().inject(std::move(topic), std::move(payload), qos, retain).has_value();
    });
  };
  ASSERT_TRUE(inject("inj/a", "one", qos1, false));
  ASSERT_TRUE(inject("inj/b", "two", qos2, true));
  ASSERT_TRUE(inject("inj/c", "zero", qos0, false));
  EXPECT_FALSE(inject("inj/+", "bad", qos0, false)) << "a wildcard is no topic name";

  const auto got = receive_acked(*sub, 3);
  ASSERT_EQ(got.size(), 3U);
  EXPECT_EQ(got[0].payload, "one");
  EXPECT_EQ(got[0].qos, qos1);
  EXPECT_EQ(got[1].payload, "two");
  EXPECT_EQ(got[1].qos, qos2);
  EXPECT_FALSE(got[1].retain) << "live forwards carry RETAIN 0";
  EXPECT_EQ(got[2].payload, "zero");
  EXPECT_EQ(got[2].qos, qos0);
  const auto low_got = receive_acked(*low, 3);
  ASSERT_EQ(low_got.size(), 3U);
  for (const auto& p : low_got)
    EXPECT_EQ(p.qos, qos0);

  auto later = connect_peer(h.port(), "later");
  ASSERT_TRUE(subscribed(*later, "inj/#", qos2));
  const auto retained = receive_acked(*later, 2, quiet);
  ASSERT_EQ(retained.size(), 1U);
  EXPECT_EQ(retained[0].topic, "inj/b");
  EXPECT_EQ(retained[0].qos, qos2);
  EXPECT_TRUE(retained[0].retain);

  EXPECT_TRUE(seen.snapshot(h).empty());
  const auto st = stats(h);
  EXPECT_EQ(st.messages_injected, 3U);
  EXPECT_EQ(st.intercepted, 0U);
}

TEST(hooks, interest_filters_are_validated) {
  // Filters follow the SUBSCRIBE rules [MQTT-4.7.1-2], and '$' topics need an explicit first
  // level [MQTT-4.7.2-1].
  broker_harness h;
  EXPECT_FALSE(h.call([](server& s) { return s.core().add_interest("a/#/b"); }));
  EXPECT_FALSE(h.call([](server& s) { return s.core().remove_interest("never/added"); }));
  EXPECT_TRUE(h.call([](server& s) { return s.core().add_interest("$hw/events/#"); }));
  EXPECT_TRUE(h.call([](server& s) { return s.core().interested_in("$hw/events/upload/x"); }));
  EXPECT_FALSE(h.call([](server& s) { return s.core().interested_in("hw/events/upload"); }));
  EXPECT_TRUE(h.call([](server& s) { return s.core().add_interest("#"); }));
  EXPECT_TRUE(h.call([](server& s) { return s.core().interested_in("hw/events/upload"); }));
  EXPECT_FALSE(h.call([](server& s) { return s.core().interested_in("$SYS/uptime"); }));
}

}  // namespace
}  // namespace ebus::test::conformance
