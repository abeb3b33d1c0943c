#pragma once
// Validation of MQTT's "UTF-8 encoded strings" (MQTT 3.1.1 section 1.5.3).

#include <cstddef>
#include <string_view>

namespace ebus::mqtt::codec {

/// Longest MQTT string: its length prefix is two bytes.
inline constexpr std::size_t max_string_length = 65'535;

/// True if `text` is well-formed UTF-8 (no overlong forms, no surrogates U+D800..U+DFFF, nothing
/// above U+10FFFF) [MQTT-1.5.3-1] and contains no U+0000 [MQTT-1.5.3-2]. Other control characters
/// and noncharacters are allowed: the specification only says they SHOULD NOT be sent.
[[nodiscard]] bool is_mqtt_utf8(std::string_view text) noexcept;

/// is_mqtt_utf8 and at most max_string_length bytes long: a string that can go on the wire.
[[nodiscard]] bool is_mqtt_string(std::string_view text) noexcept;

}  // namespace ebus::mqtt::codec
