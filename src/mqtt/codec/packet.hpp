#pragma once
// MQTT 3.1 and 3.1.1 control packets as plain values. A value of these types says nothing about
// validity by itself: the decoder only produces packets that satisfy the rules it documents, and
// the encoder expects the same of the packets it is given. Every member has an initializer, so
// designated initializers may leave any of them out (g++ 12 warns otherwise).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ebus::mqtt::codec {

/// Control packet type, bits 7-4 of the fixed header (MQTT 3.1.1 section 2.2.1).
enum class packet_type : std::uint8_t {
  connect = 1,
  connack = 2,
  publish = 3,
  puback = 4,
  pubrec = 5,
  pubrel = 6,
  pubcomp = 7,
  subscribe = 8,
  suback = 9,
  unsubscribe = 10,
  unsuback = 11,
  pingreq = 12,
  pingresp = 13,
  disconnect = 14,
};

/// Protocol Level byte of CONNECT: 3 is MQTT 3.1 ("MQIsdp"), 4 is MQTT 3.1.1 ("MQTT").
enum class protocol_level : std::uint8_t {
  v3_1 = 3,
  v3_1_1 = 4,
};

/// QoS level (MQTT 3.1.1 section 4.3).
enum class qos_level : std::uint8_t {
  at_most_once = 0,
  at_least_once = 1,
  exactly_once = 2,
};

/// CONNACK return code (MQTT 3.1.1 section 3.2.2.3).
enum class connect_return_code : std::uint8_t {
  accepted = 0x00,
  unacceptable_protocol_version = 0x01,
  identifier_rejected = 0x02,
  server_unavailable = 0x03,
  bad_user_name_or_password = 0x04,
  not_authorized = 0x05,
};

/// SUBACK return code (MQTT 3.1.1 section 3.9.3); `failure` does not exist in MQTT 3.1.
enum class suback_return_code : std::uint8_t {
  success_maximum_qos_0 = 0x00,
  success_maximum_qos_1 = 0x01,
  success_maximum_qos_2 = 0x02,
  failure = 0x80,
};

/// Largest value the Remaining Length field can carry (four bytes, MQTT 3.1.1 section 2.2.3).
inline constexpr std::size_t max_remaining_length = 268'435'455;

/// Largest packet the protocol allows: fixed header byte, four length bytes, body.
inline constexpr std::size_t max_packet_size_limit = 1 + 4 + max_remaining_length;

/// Will Message of a CONNECT.
struct will_message {
  std::string topic{};    ///< A topic name: non-empty, no wildcards.
  std::string payload{};  ///< Binary; at most 65535 bytes.
  qos_level qos = qos_level::at_most_once;
  bool retain = false;

  friend bool operator==(const will_message&, const will_message&) = default;
};

struct connect {
  protocol_level level = protocol_level::v3_1_1;
  bool clean_session = true;
  std::uint16_t keep_alive = 0;  ///< Seconds; 0 turns keep alive off.
  std::string client_id{};       ///< May be empty only with clean_session on MQTT 3.1.1.
  std::optional<will_message> will{};
  std::optional<std::string> username{};
  std::optional<std::string> password{};  ///< Binary; requires a username [MQTT-3.1.2-22].

  friend bool operator==(const connect&, const connect&) = default;
};

struct connack {
  bool session_present = false;
  connect_return_code return_code = connect_return_code::accepted;

  friend bool operator==(const connack&, const connack&) = default;
};

struct publish {
  std::string topic{};    ///< A topic name: non-empty, no wildcards.
  std::string payload{};  ///< Binary, may be empty.
  qos_level qos = qos_level::at_most_once;
  bool retain = false;
  bool dup = false;             ///< Only with qos > 0 [MQTT-3.3.1-2].
  std::uint16_t packet_id = 0;  ///< Nonzero iff qos > 0 [MQTT-2.3.1-1].

  friend bool operator==(const publish&, const publish&) = default;
};

struct puback {
  std::uint16_t packet_id = 0;

  friend bool operator==(const puback&, const puback&) = default;
};

struct pubrec {
  std::uint16_t packet_id = 0;

  friend bool operator==(const pubrec&, const pubrec&) = default;
};

struct pubrel {
  std::uint16_t packet_id = 0;

  friend bool operator==(const pubrel&, const pubrel&) = default;
};

struct pubcomp {
  std::uint16_t packet_id = 0;

  friend bool operator==(const pubcomp&, const pubcomp&) = default;
};

/// One topic filter of a SUBSCRIBE with the maximum QoS the client asks for.
struct subscription {
  std::string filter{};  ///< Non-empty UTF-8; its topic syntax is checked by the topic layer.
  qos_level qos = qos_level::at_most_once;

  friend bool operator==(const subscription&, const subscription&) = default;
};

struct subscribe {
  std::uint16_t packet_id = 0;
  std::vector<subscription> subscriptions{};  ///< At least one [MQTT-3.8.3-3].

  friend bool operator==(const subscribe&, const subscribe&) = default;
};

struct suback {
  std::uint16_t packet_id = 0;
  std::vector<suback_return_code> return_codes{};  ///< One per filter of the SUBSCRIBE.

  friend bool operator==(const suback&, const suback&) = default;
};

struct unsubscribe {
  std::uint16_t packet_id = 0;
  std::vector<std::string> filters{};  ///< At least one [MQTT-3.10.3-2].

  friend bool operator==(const unsubscribe&, const unsubscribe&) = default;
};

struct unsuback {
  std::uint16_t packet_id = 0;

  friend bool operator==(const unsuback&, const unsuback&) = default;
};

struct pingreq {
  friend bool operator==(const pingreq&, const pingreq&) = default;
};

struct pingresp {
  friend bool operator==(const pingresp&, const pingresp&) = default;
};

struct disconnect {
  friend bool operator==(const disconnect&, const disconnect&) = default;
};

/// Any control packet. The alternatives follow packet_type, so `index() + 1` is the type value.
using packet = std::variant<connect, connack, publish, puback, pubrec, pubrel, pubcomp, subscribe,
                            suback, unsubscribe, unsuback, pingreq, pingresp, disconnect>;

/// The control packet type of `p`.
[[nodiscard]] packet_type type_of(const packet& p) noexcept;

/// Lower-case name of `type` for logs ("publish", "pingreq", ...).
[[nodiscard]] std::string_view name_of(packet_type type) noexcept;

}  // namespace ebus::mqtt::codec
