// Keep alive.
//
// A client with keep alive 1 s that sends nothing is still connected after 1 s and is closed
// within a generous bound after one and a half times the keep alive, while a client with keep
// alive 0 is never timed out. PINGREQ is answered with PINGRESP and keeps the connection alive,
// and so does any other packet. Waits are bounded; nothing asserts how fast the broker is.
#include <gtest/gtest.h>

#include "conformance.hpp"

namespace ebus::test::conformance {
namespace {

TEST(keepalive, silent_client_is_closed_after_one_and_a_half_keep_alive) {
  // [MQTT-3.1.2-24]; keep alive 0 turns the mechanism off (section 3.1.2.10).
  broker_harness h;
  auto silent = connect_peer(h.port(), make_connect("silent", true, 1));
  auto forever = connect_peer(h.port(), make_connect("forever", true, 0));
  EXPECT_TRUE(silent->silent_for(1000ms)) << "closed before the keep alive elapsed";
  EXPECT_TRUE(silent->closed_within(4000ms));
  EXPECT_TRUE(round_trip(*forever, "keepalive/forever"));
}

TEST(keepalive, pingreq_gets_pingresp_and_keeps_the_connection_alive) {
  // [MQTT-3.12.4-1] [MQTT-3.1.2-23]: 3 x 0.7 s of activity outlasts 1.5 x the 1 s keep alive.
  // The other client keeps itself alive with QoS 0 PUBLISHes instead: any control packet counts.
  broker_harness h;
  auto pinger = connect_peer(h.port(), make_connect("pinger", true, 1));
  auto publisher = connect_peer(h.port(), make_connect("publisher", true, 1));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pinger->silent_for(700ms));
    pinger->send(codec::pingreq{});
    publisher->send(make_publish("keepalive/activity", std::to_string(i)));
    const auto resp = pinger->receive();
    ASSERT_TRUE(resp);
    EXPECT_TRUE(std::holds_alternative<codec::pingresp>(*resp));
  }
  EXPECT_TRUE(round_trip(*pinger, "keepalive/pinger"));
  EXPECT_TRUE(round_trip(*publisher, "keepalive/publisher"));
}

}  // namespace
}  // namespace ebus::test::conformance
