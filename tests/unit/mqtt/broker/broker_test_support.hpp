#pragma once
// Helpers shared by the broker core tests: a client_link that records what it is asked to do,
// message construction, and decoding of the bytes a session writes, so that tests assert on
// packets rather than on raw bytes.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "mqtt/broker/application_message.hpp"
#include "mqtt/broker/broker.hpp"
#include "mqtt/broker/session.hpp"
#include "mqtt/codec/decoder.hpp"
#include "mqtt/codec/packet.hpp"

namespace ebus::mqtt::broker::test {

/// A network connection stand-in: counts wake() calls and records close() reasons.
class fake_link final : public client_link {
 public:
  void wake() override { ++wakes; }
  void close(std::string_view reason) override { closes.emplace_back(reason); }

  int wakes = 0;
  std::vector<std::string> closes;
};

inline message_ptr make_message(std::string topic, std::string payload,
                                codec::qos_level qos = codec::qos_level::at_most_once,
                                bool retain = false) {
  return std::make_shared<const application_message>(
      application_message{std::move(topic), std::move(payload), qos, retain});
}

/// A message as a client's PUBLISH brings it in, charged to no budget.
inline inbound_message inbound(std::string topic, std::string payload,
                               codec::qos_level qos = codec::qos_level::at_most_once,
                               bool retain = false) {
  return {std::move(topic), std::move(payload), qos, retain, budget_charge{}};
}

/// Decodes every packet of `wire` with codec::decoder. A decode error or a partial packet at
/// the end fails the test.
inline std::vector<codec::packet> decode_all(std::string_view wire) {
  codec::decoder dec;
  dec.feed(wire);
  std::vector<codec::packet> out;
  for (;;) {
    auto r = dec.next();
    if (!r) {
      ADD_FAILURE() << "decode error: " << r.error().message() << ": " << dec.error_detail();
      return out;
    }
    if (!*r) break;
    out.push_back(std::move(**r));
  }
  EXPECT_EQ(dec.buffered(), 0u) << "bytes of an incomplete packet at the end";
  return out;
}

/// The PUBLISH packets of `wire`; any other packet fails the test.
inline std::vector<codec::publish> decode_publishes(std::string_view wire) {
  std::vector<codec::publish> out;
  for (auto& p : decode_all(wire)) {
    if (auto* pub = std::get_if<codec::publish>(&p)) {
      out.push_back(std::move(*pub));
    } else {
      ADD_FAILURE() << "expected only PUBLISH packets, got " << codec::name_of(codec::type_of(p));
    }
  }
  return out;
}

/// Everything `s` would write now, with no byte budget, as PUBLISH packets.
inline std::vector<codec::publish> fill_publishes(session& s) {
  std::string out;
  s.fill(out, std::numeric_limits<std::size_t>::max());
  return decode_publishes(out);
}

/// The PUBLISH a session writes for a first delivery (DUP 0).
inline codec::publish publish_packet(std::string topic, std::string payload, codec::qos_level qos,
                                     std::uint16_t packet_id = 0, bool retain = false) {
  return codec::publish{.topic = std::move(topic),
                        .payload = std::move(payload),
                        .qos = qos,
                        .retain = retain,
                        .dup = false,
                        .packet_id = packet_id};
}

/// The same PUBLISH as a redelivery (DUP 1) [MQTT-3.3.1-1].
inline codec::publish redelivered(codec::publish p) {
  p.dup = true;
  return p;
}

}  // namespace ebus::mqtt::broker::test

namespace ebus::mqtt::codec {

// gtest printers, found by argument-dependent lookup.
inline void PrintTo(qos_level q, std::ostream* os) {
  *os << "qos" << static_cast<int>(q);
}

inline void PrintTo(connect_return_code rc, std::ostream* os) {
  *os << "connect_return_code(" << static_cast<int>(rc) << ")";
}

inline void PrintTo(suback_return_code rc, std::ostream* os) {
  *os << "suback_return_code(0x" << std::hex << static_cast<int>(rc) << std::dec << ")";
}

inline void PrintTo(const publish& p, std::ostream* os) {
  *os << "PUBLISH{topic=\"" << p.topic << "\" payload=\"" << p.payload
      << "\" qos=" << static_cast<int>(p.qos) << " retain=" << p.retain << " dup=" << p.dup
      << " id=" << p.packet_id << "}";
}

inline void PrintTo(const pubrel& p, std::ostream* os) {
  *os << "PUBREL{id=" << p.packet_id << "}";
}

inline void PrintTo(const connack& p, std::ostream* os) {
  *os << "CONNACK{session_present=" << p.session_present
      << " rc=" << static_cast<int>(p.return_code) << "}";
}

}  // namespace ebus::mqtt::codec
