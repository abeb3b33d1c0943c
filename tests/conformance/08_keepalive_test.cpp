// Keep alive.
//
// On a manual clock: a client with keep alive 1 s that sends nothing is still connected 1.499 s
// later and is closed at one and a half times the keep alive, while a client with keep alive 0 is
// never timed out. PINGREQ is answered with PINGRESP and keeps the connection alive, and so does
// any other packet; once the client falls silent, the 1.5 x limit runs from its last packet.
// Time moves only when the test moves it, so nothing depends on how fast the broker or the
// machine is.
#include <gtest/gtest.h>

#include "conformance.hpp"

namespace ebus::test::conformance {
namespace {

TEST(keepalive, silent_client_is_closed_at_one_and_a_half_keep_alive) {
  // [MQTT-3.1.2-24]; keep alive 0 turns the mechanism off (section 3.1.2.10).
  manual_clock clk;
  broker_harness h({}, clk);
  auto silent = connect_peer(h.port(), make_connect("silent", true, 1));
  auto forever = connect_peer(h.port(), make_connect("forever", true, 0));

  advance(h, clk, 1499ms);
  // The round trip turns the loop over: a close decided at 1.499 s would have finished by now.
  ASSERT_TRUE(round_trip(*forever, "keepalive/forever"));
  EXPECT_TRUE(online(h, "silent")) << "closed before one and a half times the keep alive";

  advance(h, clk, 1ms);
  EXPECT_TRUE(silent->closed_within(close_bound));

  advance(h, clk, std::chrono::hours(24));
  EXPECT_TRUE(round_trip(*forever, "keepalive/forever"));
  EXPECT_TRUE(online(h, "forever"));
}

TEST(keepalive, pingreq_gets_pingresp_and_keeps_the_connection_alive) {
  // [MQTT-3.12.4-1] [MQTT-3.1.2-23]: 3 x 1 s of activity outlasts 1.5 x the 1 s keep alive.
  // The other client keeps itself alive with QoS 1 PUBLISHes instead: any control packet counts.
  manual_clock clk;
  broker_harness h({}, clk);
  auto pinger = connect_peer(h.port(), make_connect("pinger", true, 1));
  auto publisher = connect_peer(h.port(), make_connect("publisher", true, 1));
  for (std::uint16_t i = 1; i <= 3; ++i) {
    advance(h, clk, 1000ms);
    pinger->send(codec::pingreq{});
    const auto resp = pinger->receive();
    ASSERT_TRUE(resp);
    EXPECT_TRUE(std::holds_alternative<codec::pingresp>(*resp));
    // The PUBACK shows the broker has read the PUBLISH at this time.
    ASSERT_TRUE(published(*publisher, make_publish("keepalive/activity", "x", qos1, i)));
  }
  EXPECT_TRUE(round_trip(*pinger, "keepalive/pinger"));
  EXPECT_TRUE(round_trip(*publisher, "keepalive/publisher"));

  // Silent from here: the limit runs from the last packet, at 3 s.
  advance(h, clk, 1499ms);
  ASSERT_TRUE(synced(*pinger));  // turns the loop over; this PINGREQ restarts pinger's limit
  EXPECT_TRUE(online(h, "publisher"));
  advance(h, clk, 1ms);
  EXPECT_TRUE(publisher->closed_within(close_bound));
  EXPECT_TRUE(online(h, "pinger"));
  advance(h, clk, 1500ms);
  EXPECT_TRUE(pinger->closed_within(close_bound));
}

}  // namespace
}  // namespace ebus::test::conformance
