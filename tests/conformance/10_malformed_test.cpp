// Malformed and forbidden packets after CONNECT.
//
// A connected client sends one bad packet: a Remaining Length longer than four bytes, a packet
// larger than max_packet_size (announced by its header, the body never sent), a topic that is not
// valid UTF-8 or contains U+0000, PUBLISH with QoS 3 or DUP on QoS 0, SUBSCRIBE or UNSUBSCRIBE
// with wrong fixed-header flags, an empty SUBSCRIBE, a requested QoS of 3, a zero packet id, or a
// packet only a server sends. The broker closes that connection without answering the packet;
// another client connected all along still completes a round trip afterwards.
#include <string>

#include <gtest/gtest.h>

#include "conformance.hpp"

namespace ebus::test::conformance {
namespace {

struct bad_packet {
  const char* name;
  std::string bytes;
  const char* cites;
};

std::string bytes(std::initializer_list<int> b) {
  std::string out;
  for (const int c : b)
    out.push_back(static_cast<char>(c));
  return out;
}

// Small enough that the announced packet below is too large, big enough for everything else.
constexpr std::size_t max_packet = 256;

const bad_packet bad_packets[] = {
    {"remaining_length_over_four_bytes", bytes({0x30, 0xff, 0xff, 0xff, 0xff, 0x01}),
     "section 2.2.3"},
    {"packet_over_max_packet_size_header_only", bytes({0x30, 0xe8, 0x07}),  // 1000-byte body
     "broker_options::max_packet_size"},
    {"topic_not_utf8", bytes({0x30, 0x05, 0x00, 0x02, 0xc3, 0x28, 'x'}), "[MQTT-3.3.2-1]"},
    {"topic_overlong_utf8_nul", bytes({0x30, 0x05, 0x00, 0x02, 0xc0, 0x80, 'x'}), "[MQTT-1.5.3-1]"},
    {"topic_contains_nul", bytes({0x30, 0x05, 0x00, 0x02, 'a', 0x00, 'x'}), "[MQTT-1.5.3-2]"},
    {"topic_utf16_surrogate", bytes({0x30, 0x06, 0x00, 0x03, 0xed, 0xa0, 0x80, 'x'}),
     "[MQTT-1.5.3-1]"},
    {"publish_qos_3", bytes({0x36, 0x05, 0x00, 0x01, 'a', 0x00, 0x01}), "[MQTT-3.3.1-4]"},
    {"publish_dup_on_qos_0", bytes({0x38, 0x04, 0x00, 0x01, 'a', 'x'}), "[MQTT-3.3.1-2]"},
    {"publish_zero_packet_id", bytes({0x32, 0x05, 0x00, 0x01, 'a', 0x00, 0x00}), "[MQTT-2.3.1-1]"},
    {"subscribe_flags_0000", bytes({0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00}),
     "[MQTT-3.8.1-1]"},
    {"subscribe_zero_packet_id", bytes({0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 'a', 0x00}),
     "[MQTT-2.3.1-1]"},
    {"subscribe_without_filters", bytes({0x82, 0x02, 0x00, 0x01}), "[MQTT-3.8.3-3]"},
    {"subscribe_requested_qos_3", bytes({0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03}),
     "[MQTT-3.8.3-4]"},
    {"subscribe_reserved_bits_in_qos_byte", bytes({0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x41}),
     "[MQTT-3.8.3-4]"},
    {"unsubscribe_flags_0000", bytes({0xa0, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'}), "[MQTT-3.10.1-1]"},
    {"unsubscribe_without_filters", bytes({0xa2, 0x02, 0x00, 0x01}), "[MQTT-3.10.3-2]"},
    {"pubrel_flags_0000", bytes({0x60, 0x02, 0x00, 0x01}), "[MQTT-3.6.1-1]"},
    {"puback_zero_packet_id", bytes({0x40, 0x02, 0x00, 0x00}), "[MQTT-2.3.1-1]"},
    {"pingreq_with_a_body", bytes({0xc0, 0x01, 0x00}), "section 3.12"},
    {"pingreq_flags_set", bytes({0xc1, 0x00}), "[MQTT-2.2.2-2]"},
    {"reserved_packet_type_0", bytes({0x00, 0x00}), "section 2.2.1"},
    {"reserved_packet_type_15", bytes({0xf0, 0x00}), "section 2.2.1"},
    {"connack_from_a_client", bytes({0x20, 0x02, 0x00, 0x00}), "section 3.2 (server to client)"},
    {"suback_from_a_client", bytes({0x90, 0x03, 0x00, 0x01, 0x00}), "section 3.9"},
    {"unsuback_from_a_client", bytes({0xb0, 0x02, 0x00, 0x01}), "section 3.11"},
    {"pingresp_from_a_client", bytes({0xd0, 0x00}), "section 3.13"},
};

class malformed : public ::testing::TestWithParam<bad_packet> {};

INSTANTIATE_TEST_SUITE_P(packets, malformed, ::testing::ValuesIn(bad_packets),
                         [](const ::testing::TestParamInfo<bad_packet>& param) {
                           return std::string(param.param.name);
                         });

TEST_P(malformed, closes_that_connection_only) {
  // [MQTT-4.8.0-1]: a protocol violation closes the network connection. Each case cites its own
  // statement in the table above.
  const auto& bad = GetParam();
  SCOPED_TRACE(bad.cites);
  broker_harness h({.max_packet_size = max_packet});
  auto observer = connect_peer(h.port(), "observer");
  ASSERT_TRUE(subscribed(*observer, "#", qos0));
  auto offender = connect_peer(h.port(), "offender");
  offender->send_raw(bad.bytes);
  EXPECT_FALSE(offender->receive(quiet)) << "the bad packet was answered";
  EXPECT_TRUE(offender->closed_within(close_bound));
  EXPECT_TRUE(round_trip(*observer, "malformed/observer"));
  EXPECT_GE(stats(h).protocol_errors, 1U);
}

TEST(malformed, packet_over_max_packet_size_is_refused_before_its_body_arrives) {
  // The header announces 100 kB; the broker closes without waiting for (or buffering) the body,
  // so the peer sees the close having sent only the four header bytes.
  broker_harness h({.max_packet_size = max_packet});
  auto p = connect_peer(h.port(), "big");
  p->send_raw(bytes({0x30, 0xa0, 0x8d, 0x06}));  // Remaining Length 100,000
  EXPECT_TRUE(p->closed_within(close_bound));
}

TEST(malformed, packet_of_exactly_max_packet_size_is_accepted) {
  // The limit counts the whole packet, fixed header included; one at the limit goes through.
  broker_harness h({.max_packet_size = max_packet});
  auto sub = connect_peer(h.port(), "sub");
  ASSERT_TRUE(subscribed(*sub, "big/t", qos0));
  auto pub = connect_peer(h.port(), "pub");
  // 1 type byte + 2 length bytes + 2 + 5 topic bytes + payload = 256
  const std::string payload(max_packet - 10, 'x');
  ASSERT_TRUE(published(*pub, make_publish("big/t", payload)));
  const auto got = sub->receive_publish();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->payload.size(), payload.size());
}

}  // namespace
}  // namespace ebus::test::conformance
