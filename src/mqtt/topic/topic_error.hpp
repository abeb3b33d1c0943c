#pragma once
// Errors of topic name and topic filter validation.

#include <system_error>
#include <type_traits>

namespace ebus::mqtt::topic {

/// Why parse_name() or parse_filter() rejected a string. Spec ids use MQTT 3.1.1 numbering
/// (MQTT 5.0 uses the same ids for 4.7.x and 3.3.2-2; its UTF-8 rules are 1.5.4-x).
/// In a v5 reply, encoding errors are a Malformed Packet; the others are Topic Name invalid or
/// Topic Filter invalid. The broker's single reason-code mapping decides.
enum class topic_errc {
  empty = 1,         ///< zero length [MQTT-4.7.3-1]
  too_long,          ///< more than 65,535 bytes [MQTT-4.7.3-3]
  invalid_utf8,      ///< not well-formed UTF-8, e.g. a surrogate or overlong form [MQTT-1.5.3-1]
  contains_nul,      ///< contains U+0000 [MQTT-4.7.3-2][MQTT-1.5.3-2]
  wildcard_in_name,  ///< '+' or '#' in a topic name [MQTT-3.3.2-2][MQTT-4.7.1-1]
  misplaced_hash,    ///< '#' not alone in the last level [MQTT-4.7.1-2]
  misplaced_plus,    ///< '+' not alone in its level [MQTT-4.7.1-3]
};

/// The category of topic_errc; its name is "mqtt.topic".
[[nodiscard]] const std::error_category& topic_category() noexcept;

[[nodiscard]] std::error_code make_error_code(topic_errc e) noexcept;

}  // namespace ebus::mqtt::topic

template <>
struct std::is_error_code_enum<ebus::mqtt::topic::topic_errc> : std::true_type {};
