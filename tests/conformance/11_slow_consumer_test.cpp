// Slow consumers.
//
// Two subscribers with tiny receive buffers never read: one subscribed to a busy topic at QoS 0,
// the other at QoS 1. A publisher floods that topic with 1 KiB messages in batches of 250, at
// least 2,000 of them and on until the broker reports drops for both (at most 16,000). All the
// while a second publisher/subscriber pair does QoS 1 round trips on another topic and gets every
// message, new connections are accepted and served, and the stuck subscribers' sessions stay within
// twice session_queue_size (the hard limit of flow control) and max_inflight. The flooding
// publisher is held back for at most slow_subscriber_timeout; after that the stuck subscribers are
// slow and lose messages, counted. When the stuck subscribers go away the broker carries on.
// With overflow_policy::disconnect the stuck subscriber is disconnected instead, once.
//
// None of this is an MQTT 3.1.1 normative statement: the specification leaves flow control to
// the implementation (section 4.3). What it checks is the broker's own contract
// (broker_options, broker.hpp): routing never blocks and one client cannot stall another.
#include <string>

#include <gtest/gtest.h>

#include "conformance.hpp"

namespace ebus::test::conformance {
namespace {

using mqtt::broker::overflow_policy;

constexpr int batch_size = 250;
constexpr int min_rounds = 8;
constexpr int max_rounds = 64;  // 16 MiB: far beyond any socket buffer of a stuck subscriber
constexpr peer_options tiny_buffer{.receive_buffer = 4096};

/// Sends `batch_size` QoS 1 messages of 1 KiB to `topic` and reads their PUBACKs.
::testing::AssertionResult flood(mqtt_peer& p, const std::string& topic) {
  static const std::string payload(1024, 'p');
  std::string batch;
  for (int i = 1; i <= batch_size; ++i) {
    codec::encode(make_publish(topic, payload, qos1, static_cast<std::uint16_t>(i)), batch);
  }
  p.send_raw(batch);
  for (int i = 1; i <= batch_size; ++i) {
    const auto ack = p.receive_as<codec::puback>();
    if (!ack || ack->packet_id != i) return ::testing::AssertionFailure() << "PUBACK " << i;
  }
  return ::testing::AssertionSuccess();
}

/// A publisher/subscriber pair on its own topic; each exchange must get through.
struct pair_probe {
  pair_probe(broker_harness& h, const std::string& name)
      : topic("calm/" + name),
        sub(connect_peer(h.port(), name + "-sub")),
        pub(connect_peer(h.port(), name + "-pub")) {
    EXPECT_TRUE(subscribed(*sub, topic, qos1));
  }

  ::testing::AssertionResult exchange() {
    const auto payload = std::to_string(next_id);
    if (auto r = published(*pub, make_publish(topic, payload, qos1, next_id++)); !r) return r;
    const auto got = receive_acked(*sub, 1);
    if (got.size() != 1 || got[0].payload != payload) {
      return ::testing::AssertionFailure() << "message " << payload << " did not arrive";
    }
    return ::testing::AssertionSuccess();
  }

  std::string topic;
  std::unique_ptr<mqtt_peer> sub;
  std::unique_ptr<mqtt_peer> pub;
  std::uint16_t next_id = 1;
};

struct session_state {
  bool found = false;
  std::size_t queued = 0;
  std::size_t inflight = 0;
  std::uint64_t dropped = 0;
};

session_state session_of(broker_harness& h, const std::string& id) {
  return h.call([&id](mqtt::broker::server& s) {
    const auto* session = s.core().find_session(id);
    return session == nullptr
               ? session_state{}
               : session_state{true, session->queued(), session->inflight(), session->dropped()};
  });
}

TEST(slow_consumer, stuck_subscribers_lose_only_their_own_messages_and_the_broker_keeps_serving) {
  constexpr std::size_t queue_size = 10;
  constexpr std::size_t inflight = 20;
  broker_harness h({.session_queue_size = queue_size, .max_inflight = inflight});
  auto stuck0 = connect_peer(h.port(), make_connect("stuck0"), tiny_buffer);
  auto stuck1 = connect_peer(h.port(), make_connect("stuck1"), tiny_buffer);
  ASSERT_TRUE(subscribed(*stuck0, "busy/#", qos0));
  ASSERT_TRUE(subscribed(*stuck1, "busy/#", qos1));
  auto publisher = connect_peer(h.port(), "flood");
  pair_probe calm(h, "calm");

  int rounds = 0;
  for (; rounds < max_rounds; ++rounds) {
    ASSERT_TRUE(flood(*publisher, "busy/t")) << "round " << rounds;
    for (int i = 0; i < 3; ++i)
      ASSERT_TRUE(calm.exchange()) << "round " << rounds;
    if (rounds % 8 == 0) {
      auto fresh = connect_peer(h.port(), "fresh" + std::to_string(rounds));
      ASSERT_TRUE(round_trip(*fresh, "fresh/" + std::to_string(rounds)));
    }
    if (rounds + 1 >= min_rounds && session_of(h, "stuck0").dropped > 0 &&
        session_of(h, "stuck1").dropped > 0) {
      break;
    }
  }
  ASSERT_LT(rounds, max_rounds) << "no drops after " << max_rounds * batch_size << " messages";

  const auto s0 = session_of(h, "stuck0");
  const auto s1 = session_of(h, "stuck1");
  ASSERT_TRUE(s0.found && s1.found);
  EXPECT_LE(s0.queued, 2 * queue_size);
  EXPECT_EQ(s0.inflight, 0U);
  EXPECT_LE(s1.queued, 2 * queue_size);
  EXPECT_LE(s1.inflight, inflight);
  const auto st = stats(h);
  EXPECT_GT(st.deliveries_dropped, 0U);
  EXPECT_EQ(st.deliveries_dropped, s0.dropped + s1.dropped) << "only the stuck ones lose messages";
  EXPECT_EQ(st.slow_disconnects, 0U);

  stuck0->close();
  stuck1->close();
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(calm.exchange());
  auto after = connect_peer(h.port(), "after");
  EXPECT_TRUE(round_trip(*after, "slow/after"));
  EXPECT_TRUE(flood(*publisher, "busy/t"));
}

TEST(slow_consumer, disconnect_policy_closes_the_stuck_subscriber_once) {
  broker_harness h({.session_queue_size = 10, .overflow = overflow_policy::disconnect});
  auto stuck = connect_peer(h.port(), make_connect("stuck"), tiny_buffer);
  ASSERT_TRUE(subscribed(*stuck, "busy/#", qos0));
  auto publisher = connect_peer(h.port(), "flood");
  pair_probe calm(h, "calm");

  int rounds = 0;
  for (; rounds < max_rounds && stats(h).slow_disconnects == 0; ++rounds) {
    ASSERT_TRUE(flood(*publisher, "busy/t"));
    ASSERT_TRUE(calm.exchange());
  }
  ASSERT_LT(rounds, max_rounds) << "the stuck subscriber was never disconnected";
  EXPECT_TRUE(stuck->closed_within(5000ms));  // reads what was buffered, then the end
  EXPECT_TRUE(flood(*publisher, "busy/t"));
  EXPECT_TRUE(calm.exchange());
  EXPECT_EQ(stats(h).slow_disconnects, 1U);
  EXPECT_FALSE(session_of(h, "stuck").found) << "a clean session ends with its connection";
}

}  // namespace
}  // namespace ebus::test::conformance
