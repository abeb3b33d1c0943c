#pragma once
// MQTT 3.1 / 3.1.1 packet encoder: appends the wire form of a packet to a std::string. The tests
// build their expected bytes with these same functions.
//
// A packet that cannot be encoded (a string or binary field over 65535 bytes, a Remaining Length
// over max_remaining_length, a packet identifier missing where one is sent or present where none
// is, SUBSCRIBE / SUBACK / UNSUBSCRIBE without entries) is refused in every build: nothing is
// appended and the function returns false, so a corrupt length can never reach the wire. Callers
// that build packets from outside data check first (is_mqtt_string(), publish_size()) so that
// they can tell the sender why; the refusal is the last line of defence.

#include <cstddef>
#include <string>
#include <string_view>

#include "mqtt/codec/packet.hpp"

namespace ebus::mqtt::codec {

/// Appends `p` to `out` and returns true; returns false, appending nothing, when `p` cannot be
/// encoded (see above). Packets of fixed size fail only for a zero packet identifier.
bool encode(const packet& p, std::string& out);
bool encode(const connect& p, std::string& out);
bool encode(const connack& p, std::string& out);
bool encode(const publish& p, std::string& out);
bool encode(const puback& p, std::string& out);
bool encode(const pubrec& p, std::string& out);
bool encode(const pubrel& p, std::string& out);
bool encode(const pubcomp& p, std::string& out);
bool encode(const subscribe& p, std::string& out);
bool encode(const suback& p, std::string& out);
bool encode(const unsubscribe& p, std::string& out);
bool encode(const unsuback& p, std::string& out);
bool encode(const pingreq& p, std::string& out);
bool encode(const pingresp& p, std::string& out);
bool encode(const disconnect& p, std::string& out);

/// Appends a PUBLISH built from views, so a routed message is encoded for each subscriber
/// without first being copied into a `publish` value. Returns false, appending nothing, when the
/// topic is over 65535 bytes, the Remaining Length over max_remaining_length, or `packet_id` is 0
/// at QoS 1 or 2 (or not 0 at QoS 0).
bool encode_publish(std::string& out, std::string_view topic, std::string_view payload,
                    qos_level qos, bool retain, bool dup, std::uint16_t packet_id);

/// Number of bytes encode_publish() appends for a topic and payload of these sizes at `qos`, fixed
/// header included: what a PUBLISH weighs against a maximum packet size. Above
/// max_packet_size_limit for a PUBLISH that cannot be encoded at all (its Remaining Length would
/// exceed max_remaining_length).
[[nodiscard]] std::size_t publish_size(std::size_t topic_size, std::size_t payload_size,
                                       qos_level qos) noexcept;

/// Number of bytes encode() appends for `p`, fixed header included.
[[nodiscard]] std::size_t encoded_size(const packet& p) noexcept;

/// Remaining Length of `p`: its size without the fixed header. May exceed max_remaining_length for
/// a packet that cannot be sent; encoded_size() is only meaningful when it does not.
[[nodiscard]] std::size_t remaining_length(const packet& p) noexcept;

}  // namespace ebus::mqtt::codec
