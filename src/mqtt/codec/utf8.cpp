#include "mqtt/codec/utf8.hpp"

#include <cstdint>
#include <cstring>

namespace ebus::mqtt::codec {
namespace {

constexpr std::uint64_t high_bits = 0x8080'8080'8080'8080;
constexpr std::uint64_t low_bits = 0x0101'0101'0101'0101;

// Eight bytes that are all ASCII and none of them zero. Topics and client ids are nearly always
// ASCII, so this word-at-a-time check carries the common case.
bool is_nonzero_ascii_word(const char* p) noexcept {
  std::uint64_t word = 0;
  std::memcpy(&word, p, sizeof word);
  const bool ascii = (word & high_bits) == 0;
  const bool has_zero = ((word - low_bits) & ~word & high_bits) != 0;
  return ascii && !has_zero;
}

bool is_continuation(unsigned char byte) noexcept {
  return (byte & 0xc0) == 0x80;
}

}  // namespace

bool is_mqtt_utf8(std::string_view text) noexcept {
  const char* p = text.data();
  const char* const end = p + text.size();
  while (p != end) {
    if (end - p >= 8 && is_nonzero_ascii_word(p)) {
      p += 8;
      continue;
    }
    const auto lead = static_cast<unsigned char>(*p);
    if (lead < 0x80) {
      if (lead == 0) return false;  // [MQTT-1.5.3-2]
      ++p;
      continue;
    }
    // Well-formed sequences per Unicode table 3-7. Narrowing the second byte's range for E0, ED,
    // F0 and F4 rejects overlong forms, surrogates and code points above U+10FFFF [MQTT-1.5.3-1].
    std::size_t length = 0;
    unsigned char second_min = 0x80;
    unsigned char second_max = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead == 0xe0) second_min = 0xa0;
      if (lead == 0xed) second_max = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead == 0xf0) second_min = 0x90;
      if (lead == 0xf4) second_max = 0x8f;
    } else {
      return false;  // continuation byte as lead, C0/C1 overlongs, F5..FF
    }
    if (static_cast<std::size_t>(end - p) < length) return false;
    const auto second = static_cast<unsigned char>(p[1]);
    if (second < second_min || second > second_max) return false;
    for (std::size_t i = 2; i < length; ++i) {
      if (!is_continuation(static_cast<unsigned char>(p[i]))) return false;
    }
    p += length;
  }
  return true;
}

bool is_mqtt_string(std::string_view text) noexcept {
  return text.size() <= max_string_length && is_mqtt_utf8(text);
}

}  // namespace ebus::mqtt::codec
