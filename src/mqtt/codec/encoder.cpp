#include "mqtt/codec/encoder.hpp"

#include <cstdint>
#include <string_view>
#include <variant>

#include "mqtt/codec/utf8.hpp"

namespace ebus::mqtt::codec {
namespace {

constexpr std::string_view protocol_name(protocol_level level) noexcept {
  return level == protocol_level::v3_1 ? std::string_view("MQIsdp") : std::string_view("MQTT");
}

// Fixed-header flag bits; PUBREL, SUBSCRIBE and UNSUBSCRIBE carry 0010 [MQTT-2.2.2-1].
constexpr std::uint8_t first_byte(packet_type type, std::uint8_t flags = 0) noexcept {
  return static_cast<std::uint8_t>(static_cast<unsigned>(type) << 4 | flags);
}

constexpr std::size_t varint_size(std::size_t value) noexcept {
  return value < 128 ? 1 : value < 16'384 ? 2 : value < 2'097'152 ? 3 : 4;
}

constexpr std::size_t prefixed_size(std::string_view field) noexcept {
  return 2 + field.size();
}

// Only for packets that fits() accepted: the checks live there, so that a refused packet leaves
// `out` untouched.
class writer {
 public:
  // Appends the fixed header and reserves room for the whole packet.
  // Inlined: it is on the path of every PUBLISH the broker writes.
  [[gnu::always_inline]] writer(std::string& out, std::uint8_t first, std::size_t remaining)
      : out_(out) {
    out_.reserve(out_.size() + 1 + varint_size(remaining) + remaining);
    u8(first);
    do {
      auto byte = static_cast<std::uint8_t>(remaining & 0x7fu);
      remaining >>= 7;
      if (remaining != 0) byte |= 0x80u;
      u8(byte);
    } while (remaining != 0);
  }

  void u8(std::uint8_t value) { out_.push_back(static_cast<char>(value)); }

  void u16(std::uint16_t value) {
    u8(static_cast<std::uint8_t>(value >> 8));
    u8(static_cast<std::uint8_t>(value & 0xffu));
  }

  void prefixed(std::string_view field) {
    u16(static_cast<std::uint16_t>(field.size()));
    raw(field);
  }

  void raw(std::string_view bytes) { out_.append(bytes); }

 private:
  std::string& out_;
};

constexpr bool field_fits(std::string_view field) noexcept {
  return field.size() <= max_string_length;
}

constexpr bool length_fits(std::size_t remaining) noexcept {
  return remaining <= max_remaining_length;
}

std::uint8_t connect_flags(const connect& p) noexcept {
  unsigned flags = 0;
  if (p.username) flags |= 0x80u;
  if (p.password) flags |= 0x40u;
  if (p.will) {
    if (p.will->retain) flags |= 0x20u;
    flags |= static_cast<unsigned>(p.will->qos) << 3;
    flags |= 0x04u;
  }
  if (p.clean_session) flags |= 0x02u;
  return static_cast<std::uint8_t>(flags);
}

std::size_t body_size(const connect& p) noexcept {
  std::size_t size = prefixed_size(protocol_name(p.level)) + 1 + 1 + 2 + prefixed_size(p.client_id);
  if (p.will) size += prefixed_size(p.will->topic) + prefixed_size(p.will->payload);
  if (p.username) size += prefixed_size(*p.username);
  if (p.password) size += prefixed_size(*p.password);
  return size;
}

std::size_t body_size(const connack&) noexcept {
  return 2;
}

std::size_t body_size(const publish& p) noexcept {
  return prefixed_size(p.topic) + (p.qos != qos_level::at_most_once ? 2 : 0) + p.payload.size();
}

std::size_t body_size(const puback&) noexcept {
  return 2;
}
std::size_t body_size(const pubrec&) noexcept {
  return 2;
}
std::size_t body_size(const pubrel&) noexcept {
  return 2;
}
std::size_t body_size(const pubcomp&) noexcept {
  return 2;
}
std::size_t body_size(const unsuback&) noexcept {
  return 2;
}

std::size_t body_size(const subscribe& p) noexcept {
  std::size_t size = 2;
  for (const auto& s : p.subscriptions)
    size += prefixed_size(s.filter) + 1;
  return size;
}

std::size_t body_size(const suback& p) noexcept {
  return 2 + p.return_codes.size();
}

std::size_t body_size(const unsubscribe& p) noexcept {
  std::size_t size = 2;
  for (const auto& f : p.filters)
    size += prefixed_size(f);
  return size;
}

std::size_t body_size(const pingreq&) noexcept {
  return 0;
}
std::size_t body_size(const pingresp&) noexcept {
  return 0;
}
std::size_t body_size(const disconnect&) noexcept {
  return 0;
}

template <class Ack>
bool encode_ack(const Ack& p, packet_type type, std::uint8_t flags, std::string& out) {
  if (p.packet_id == 0) return false;
  writer w(out, first_byte(type, flags), body_size(p));
  w.u16(p.packet_id);
  return true;
}

bool fits(const connect& p) noexcept {
  if (!field_fits(p.client_id)) return false;
  if (p.will && (!field_fits(p.will->topic) || !field_fits(p.will->payload))) return false;
  if (p.username && !field_fits(*p.username)) return false;
  if (p.password && !field_fits(*p.password)) return false;
  return length_fits(body_size(p));
}

}  // namespace

bool encode(const connect& p, std::string& out) {
  if (!fits(p)) return false;
  writer w(out, first_byte(packet_type::connect), body_size(p));
  w.prefixed(protocol_name(p.level));
  w.u8(static_cast<std::uint8_t>(p.level));
  w.u8(connect_flags(p));
  w.u16(p.keep_alive);
  w.prefixed(p.client_id);
  if (p.will) {
    w.prefixed(p.will->topic);
    w.prefixed(p.will->payload);
  }
  if (p.username) w.prefixed(*p.username);
  if (p.password) w.prefixed(*p.password);
  return true;
}

bool encode(const connack& p, std::string& out) {
  writer w(out, first_byte(packet_type::connack), body_size(p));
  w.u8(p.session_present ? 0x01 : 0x00);
  w.u8(static_cast<std::uint8_t>(p.return_code));
  return true;
}

std::size_t publish_size(std::size_t topic_size, std::size_t payload_size, qos_level qos) noexcept {
  const std::size_t body = 2 + topic_size + (qos == qos_level::at_most_once ? 0 : 2) + payload_size;
  // varint_size() stops at 4 bytes; a body past max_remaining_length has no encoding, and the
  // result, above max_packet_size_limit, says so to every size check.
  return 1 + varint_size(body) + body;
}

bool encode_publish(std::string& out, std::string_view topic, std::string_view payload,
                    qos_level qos, bool retain, bool dup, std::uint16_t packet_id) {
  const bool has_id = qos != qos_level::at_most_once;
  // One branch on the path of every PUBLISH written. The payload is checked on its own first so
  // that one near SIZE_MAX cannot wrap the sum around.
  const std::size_t body = 2 + topic.size() + (has_id ? 2 : 0) + payload.size();
  const unsigned invalid = unsigned{has_id != (packet_id != 0)} | unsigned{!field_fits(topic)} |
                           unsigned{payload.size() > max_remaining_length} |
                           unsigned{!length_fits(body)};
  if (invalid != 0) [[unlikely]] {
    return false;
  }
  unsigned flags = static_cast<unsigned>(qos) << 1;
  if (dup) flags |= 0x08u;
  if (retain) flags |= 0x01u;
  writer w(out, first_byte(packet_type::publish, static_cast<std::uint8_t>(flags)), body);
  w.prefixed(topic);
  if (has_id) w.u16(packet_id);
  w.raw(payload);
  return true;
}

bool encode(const publish& p, std::string& out) {
  return encode_publish(out, p.topic, p.payload, p.qos, p.retain, p.dup, p.packet_id);
}

bool encode(const puback& p, std::string& out) {
  return encode_ack(p, packet_type::puback, 0, out);
}
bool encode(const pubrec& p, std::string& out) {
  return encode_ack(p, packet_type::pubrec, 0, out);
}
bool encode(const pubrel& p, std::string& out) {
  return encode_ack(p, packet_type::pubrel, 0x02, out);
}
bool encode(const pubcomp& p, std::string& out) {
  return encode_ack(p, packet_type::pubcomp, 0, out);
}
bool encode(const unsuback& p, std::string& out) {
  return encode_ack(p, packet_type::unsuback, 0, out);
}

bool encode(const subscribe& p, std::string& out) {
  if (p.packet_id == 0 || p.subscriptions.empty() || !length_fits(body_size(p))) return false;
  for (const auto& s : p.subscriptions) {
    if (!field_fits(s.filter)) return false;
  }
  writer w(out, first_byte(packet_type::subscribe, 0x02), body_size(p));
  w.u16(p.packet_id);
  for (const auto& s : p.subscriptions) {
    w.prefixed(s.filter);
    w.u8(static_cast<std::uint8_t>(s.qos));
  }
  return true;
}

bool encode(const suback& p, std::string& out) {
  if (p.packet_id == 0 || p.return_codes.empty() || !length_fits(body_size(p))) return false;
  writer w(out, first_byte(packet_type::suback), body_size(p));
  w.u16(p.packet_id);
  for (const auto code : p.return_codes)
    w.u8(static_cast<std::uint8_t>(code));
  return true;
}

bool encode(const unsubscribe& p, std::string& out) {
  if (p.packet_id == 0 || p.filters.empty() || !length_fits(body_size(p))) return false;
  for (const auto& f : p.filters) {
    if (!field_fits(f)) return false;
  }
  writer w(out, first_byte(packet_type::unsubscribe, 0x02), body_size(p));
  w.u16(p.packet_id);
  for (const auto& f : p.filters)
    w.prefixed(f);
  return true;
}

bool encode(const pingreq&, std::string& out) {
  writer w(out, first_byte(packet_type::pingreq), 0);
  return true;
}

bool encode(const pingresp&, std::string& out) {
  writer w(out, first_byte(packet_type::pingresp), 0);
  return true;
}

bool encode(const disconnect&, std::string& out) {
  writer w(out, first_byte(packet_type::disconnect), 0);
  return true;
}

bool encode(const packet& p, std::string& out) {
  return std::visit([&out](const auto& alternative) { return encode(alternative, out); }, p);
}

std::size_t remaining_length(const packet& p) noexcept {
  return std::visit([](const auto& alternative) { return body_size(alternative); }, p);
}

std::size_t encoded_size(const packet& p) noexcept {
  const std::size_t remaining = remaining_length(p);
  return 1 + varint_size(remaining) + remaining;
}

}  // namespace ebus::mqtt::codec
