#pragma once
// MQTT 3.1 / 3.1.1 packet encoder: appends the wire form of a packet to a std::string. The tests
// build their expected bytes with these same functions.
//
// Precondition for every function: the packet is one the decoder would accept (strings and binary
// fields at most 65535 bytes, a nonzero packet identifier where one is sent, a Remaining Length of
// at most max_remaining_length). Violations are caught by assertions in debug builds only; callers
// that build packets from outside data check them first (is_mqtt_string(), remaining_length()).

#include <cstddef>
#include <string>
#include <string_view>

#include "mqtt/codec/packet.hpp"

namespace ebus::mqtt::codec {

/// Appends `p` to `out`.
void encode(const packet& p, std::string& out);
void encode(const connect& p, std::string& out);
void encode(const connack& p, std::string& out);
void encode(const publish& p, std::string& out);
void encode(const puback& p, std::string& out);
void encode(const pubrec& p, std::string& out);
void encode(const pubrel& p, std::string& out);
void encode(const pubcomp& p, std::string& out);
void encode(const subscribe& p, std::string& out);
void encode(const suback& p, std::string& out);
void encode(const unsubscribe& p, std::string& out);
void encode(const unsuback& p, std::string& out);
void encode(const pingreq& p, std::string& out);
void encode(const pingresp& p, std::string& out);
void encode(const disconnect& p, std::string& out);

/// Appends a PUBLISH built from views, so a routed message is encoded for each subscriber
/// without first being copied into a `publish` value.
void encode_publish(std::string& out, std::string_view topic, std::string_view payload,
                    qos_level qos, bool retain, bool dup, std::uint16_t packet_id);

/// Number of bytes encode_publish() appends for a topic and payload of these sizes at `qos`, fixed
/// header included: what a PUBLISH weighs against a maximum packet size.
[[nodiscard]] std::size_t publish_size(std::size_t topic_size, std::size_t payload_size,
                                       qos_level qos) noexcept;

/// Number of bytes encode() appends for `p`, fixed header included.
[[nodiscard]] std::size_t encoded_size(const packet& p) noexcept;

/// Remaining Length of `p`: its size without the fixed header. May exceed max_remaining_length for
/// a packet that cannot be sent; encoded_size() is only meaningful when it does not.
[[nodiscard]] std::size_t remaining_length(const packet& p) noexcept;

}  // namespace ebus::mqtt::codec
