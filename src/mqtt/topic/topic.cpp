#include "mqtt/topic/topic.hpp"

#include <cstdint>

#include "mqtt/topic/tree_detail.hpp"

namespace ebus::mqtt::topic {

namespace {

// Checks what names and filters share: length and encoding. Returns an empty error_code if fine.
// Well-formed UTF-8 follows RFC 3629 (table 3-7 of the Unicode standard): no overlong forms, no
// surrogates U+D800..U+DFFF, nothing above U+10FFFF [MQTT-1.5.3-1]. U+0000 is rejected as well
// [MQTT-1.5.3-2][MQTT-4.7.3-2]. Other control characters and non-characters are only a "SHOULD NOT"
// in section 1.5.3, so they are accepted.
std::error_code check_encoding(std::string_view text) noexcept {
  if (text.empty()) return topic_errc::empty;                       // [MQTT-4.7.3-1]
  if (text.size() > max_topic_length) return topic_errc::too_long;  // [MQTT-4.7.3-3]

  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(text[i]); };
  const auto is_continuation = [&](std::size_t i) {
    return i < text.size() && (byte(i) & 0xC0U) == 0x80U;
  };
  std::size_t i = 0;
  while (i < text.size()) {
    const std::uint8_t lead = byte(i);
    if (lead == 0x00) return topic_errc::contains_nul;
    if (lead < 0x80) {
      ++i;
      continue;
    }
    // The second byte's allowed range depends on the lead byte; it is what excludes overlong
    // forms (E0, F0), surrogates (ED) and code points above U+10FFFF (F4).
    std::size_t length = 0;
    std::uint8_t second_min = 0x80;
    std::uint8_t second_max = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) second_min = 0xA0;
      if (lead == 0xED) second_max = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) second_min = 0x90;
      if (lead == 0xF4) second_max = 0x8F;
    } else {
      return topic_errc::invalid_utf8;  // 80..C1 or F5..FF cannot start a character
    }
    if (i + 1 >= text.size() || byte(i + 1) < second_min || byte(i + 1) > second_max) {
      return topic_errc::invalid_utf8;
    }
    for (std::size_t k = 2; k < length; ++k) {
      if (!is_continuation(i + k)) return topic_errc::invalid_utf8;
    }
    i += length;
  }
  return {};
}

// '+' and '#' are ASCII, and UTF-8 never uses ASCII bytes inside a multi-byte character, so a
// byte-wise scan finds exactly the wildcard characters.
std::error_code check_filter_levels(std::string_view text) noexcept {
  std::size_t pos = 0;
  while (!detail::at_end(text, pos)) {
    const std::string_view level = detail::read_level(text, pos);
    if (level.find('#') != std::string_view::npos) {
      // [MQTT-4.7.1-2] on its own, and the last character of the filter.
      if (level.size() != 1 || !detail::at_end(text, pos)) return topic_errc::misplaced_hash;
    } else if (level.find('+') != std::string_view::npos) {
      if (level.size() != 1) return topic_errc::misplaced_plus;  // [MQTT-4.7.1-3]
    }
  }
  return {};
}

}  // namespace

expected<topic_name, std::error_code> parse_name(std::string_view text) {
  if (const std::error_code ec = check_encoding(text)) return fail(ec);
  if (text.find('+') != std::string_view::npos || text.find('#') != std::string_view::npos) {
    return fail(make_error_code(topic_errc::wildcard_in_name));  // [MQTT-3.3.2-2]
  }
  return topic_name(text);
}

expected<topic_filter, std::error_code> parse_filter(std::string_view text) {
  if (const std::error_code ec = check_encoding(text)) return fail(ec);
  if (const std::error_code ec = check_filter_levels(text)) return fail(ec);
  return topic_filter(text);
}

bool matches(std::string_view filter, std::string_view name) noexcept {
  std::size_t filter_pos = 0;
  std::size_t name_pos = 0;
  bool first = true;
  while (!detail::at_end(filter, filter_pos)) {
    const std::string_view level = detail::read_level(filter, filter_pos);
    const bool wildcard = level == "+" || level == "#";
    // [MQTT-4.7.2-1] '$' topics are for server-specific use; root-level wildcards skip them.
    if (first && wildcard && name.starts_with('$')) return false;
    first = false;
    if (level == "#") return true;  // this level and all below, including none [MQTT-4.7.1-2]
    if (detail::at_end(name, name_pos)) return false;
    const std::string_view name_level = detail::read_level(name, name_pos);
    if (level != "+" && level != name_level) return false;  // '+' takes any one level
  }
  return detail::at_end(name, name_pos);
}

}  // namespace ebus::mqtt::topic
