#pragma once
// Helpers shared by the codec tests: byte literals, gtest printers and one-shot decoding.

#include <cstdio>
#include <initializer_list>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "mqtt/codec/decoder.hpp"
#include "mqtt/codec/encoder.hpp"
#include "mqtt/codec/packet.hpp"

namespace ebus::mqtt::codec::test {

/// Wire bytes from a list of byte values; `int` so that 0x80..0xff and 'c' need no casts.
inline std::string bytes(std::initializer_list<int> values) {
  std::string out;
  out.reserve(values.size());
  for (const int v : values)
    out.push_back(static_cast<char>(v));
  return out;
}

/// "10 0c 00 04" for failure messages.
inline std::string hex(std::string_view data) {
  std::string out;
  for (const char c : data) {
    char digits[4];
    std::snprintf(digits, sizeof digits, "%02x ", static_cast<unsigned char>(c));
    out += digits;
  }
  if (!out.empty()) out.pop_back();
  return out;
}

inline std::string encoded(const packet& p) {
  std::string out;
  encode(p, out);
  return out;
}

/// Decodes `wire`, which must hold exactly one packet, with a fresh decoder.
inline decode_result decode_one(std::string_view wire, decoder_options options = {}) {
  decoder dec(options);
  dec.feed(wire);
  return dec.next();
}

}  // namespace ebus::mqtt::codec::test

namespace ebus::mqtt::codec {

template <class T, class Variant>
struct is_alternative_of : std::false_type {};
template <class T, class... Alternatives>
struct is_alternative_of<T, std::variant<Alternatives...>>
    : std::bool_constant<(std::is_same_v<T, Alternatives> || ...)> {};

template <class T>
concept packet_alternative = is_alternative_of<T, packet>::value;

// gtest printers, found by argument-dependent lookup: packet name and wire bytes.
template <packet_alternative T>
void PrintTo(const T& p, std::ostream* os) {
  const packet whole{p};
  *os << name_of(type_of(whole)) << " [" << test::hex(test::encoded(whole)) << "]";
}

}  // namespace ebus::mqtt::codec
