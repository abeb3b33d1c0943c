// Idle connections.
//
// A connection with nothing to read, write or wait for holds no read, write or closing state:
// on a box with thousands of quiet devices that state would be most of the memory. Over plain
// TCP, where the broker waits for readiness without a buffer, every connection goes idle once
// its traffic is done, and an idle connection still receives, publishes, answers PINGREQ, is
// closed by keep-alive and has its will published when its socket drops. TLS and WebSocket
// streams keep their own buffers, so this file runs over TCP only (CMakeLists.txt).
#include <gtest/gtest.h>

#include "conformance.hpp"

namespace ebus::test::conformance {
namespace {

/// Waits until no connection of the broker holds read, write or closing state; the writer
/// lets go of it after its last write completes, a moment after the client has the bytes.
::testing::AssertionResult all_idle(broker_harness& h) {
  const auto until = std::chrono::steady_clock::now() + close_bound;
  for (;;) {
    const auto busy = h.call([](mqtt::broker::server& s) { return s.busy_connection_count(); });
    if (busy == 0) return ::testing::AssertionSuccess();
    if (std::chrono::steady_clock::now() >= until) {
      return ::testing::AssertionFailure() << busy << " connections still busy";
    }
    std::this_thread::yield();
  }
}

TEST(idle, connections_let_go_of_their_state_and_wake_for_traffic) {
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  ASSERT_TRUE(subscribed(*sub, "idle/t", qos1));
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(connection_count_is(h, 2));
  ASSERT_TRUE(all_idle(h));

  // Both directions, twice: the second round starts from idle connections.
  for (std::uint16_t round = 1; round <= 2; ++round) {
    ASSERT_TRUE(published(*pub, make_publish("idle/t", "m" + std::to_string(round), qos1, round)));
    const auto got = receive_acked(*sub, 1);
    ASSERT_EQ(got.size(), 1U) << "round " << round;
    EXPECT_EQ(got[0].payload, "m" + std::to_string(round));
    ASSERT_TRUE(synced(*sub));  // the PUBACK has been read; PINGREQ answered from idle too
    EXPECT_TRUE(all_idle(h)) << "round " << round;
  }
  EXPECT_EQ(stats(h).deliveries_dropped, 0U);
}

TEST(idle, keep_alive_closes_an_idle_connection) {
  manual_clock clk;
  broker_harness h({}, clk);
  auto silent = connect_peer(h.port(), make_connect("silent", true, 1));
  ASSERT_TRUE(all_idle(h));
  advance(h, clk, 1499ms);
  EXPECT_TRUE(online(h, "silent"));
  advance(h, clk, 1ms);
  EXPECT_TRUE(silent->closed_within(close_bound));
}

TEST(idle, the_will_of_an_idle_connection_is_published_when_its_socket_drops) {
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  ASSERT_TRUE(subscribed(*sub, "idle/will", qos1));
  auto c = make_connect("dying");
  c.will = codec::will_message{.topic = "idle/will", .payload = "gone", .qos = qos1};
  auto dying = connect_peer(h.port(), c);
  ASSERT_TRUE(all_idle(h));
  dying->close();
  const auto got = receive_acked(*sub, 1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].payload, "gone");
}

}  // namespace
}  // namespace ebus::test::conformance
