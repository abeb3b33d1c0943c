#include "mqtt/codec/decoder.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "mqtt/codec/utf8.hpp"

// Design note. next() works in two steps. The fixed header is checked as soon as its bytes are
// in: the first byte (type and flags), then the Remaining Length, which is compared with the
// maximum packet size and, for packets of fixed size, with that size. Only then does the decoder
// wait for the body, so a hostile length never makes it buffer or allocate anything. Once the
// whole packet is buffered, a per-type function parses the body from a string_view into the
// packet struct; strings are copied out exactly once, when they are known to be valid.
//
// Consumed bytes are not shifted out after each packet: `begin_` moves forward and prepare()
// compacts only when the free tail is too small (or resets for free when everything is consumed).

namespace ebus::mqtt::codec {
namespace {

struct failure {
  codec_errc code;
  std::string_view detail;
};

using body_result = ebus::expected<packet, failure>;

ebus::unexpected<failure> malformed(std::string_view detail) {
  return ebus::unexpected<failure>(failure{codec_errc::malformed_packet, detail});
}

ebus::unexpected<failure> violation(codec_errc code, std::string_view detail) {
  return ebus::unexpected<failure>(failure{code, detail});
}

constexpr std::string_view reserved_type = "packet type 0 or 15 is reserved (section 2.2.1)";
constexpr std::string_view packet_id_truncated = "packet identifier is truncated";
constexpr std::string_view packet_id_zero = "[MQTT-2.3.1-1] packet identifier is 0";

// Reads the body's fields front to back. Every read fails, rather than reading past the end, when
// the field is not entirely inside the Remaining Length.
class reader {
 public:
  explicit reader(std::string_view body) noexcept : rest_(body) {}

  [[nodiscard]] bool empty() const noexcept { return rest_.empty(); }

  [[nodiscard]] bool read_u8(std::uint8_t& out) noexcept {
    if (rest_.empty()) return false;
    out = static_cast<std::uint8_t>(rest_[0]);
    rest_.remove_prefix(1);
    return true;
  }

  [[nodiscard]] bool read_u16(std::uint16_t& out) noexcept {
    if (rest_.size() < 2) return false;
    out = static_cast<std::uint16_t>((static_cast<unsigned char>(rest_[0]) << 8) |
                                     static_cast<unsigned char>(rest_[1]));
    rest_.remove_prefix(2);
    return true;
  }

  // A two-byte length followed by that many bytes: UTF-8 strings and binary data (section 1.5.3).
  [[nodiscard]] bool read_prefixed(std::string_view& out) noexcept {
    if (rest_.size() < 2) return false;
    const std::size_t length =
        (static_cast<std::size_t>(static_cast<unsigned char>(rest_[0])) << 8) |
        static_cast<unsigned char>(rest_[1]);
    if (rest_.size() - 2 < length) return false;
    out = rest_.substr(2, length);
    rest_.remove_prefix(2 + length);
    return true;
  }

  [[nodiscard]] std::string_view take_rest() noexcept { return std::exchange(rest_, {}); }

 private:
  std::string_view rest_;
};

bool is_valid_qos(std::uint8_t value) noexcept {
  return value <= 2;
}

// Topic names carry no wildcards [MQTT-4.7.1-1] and have at least one character [MQTT-4.7.3-1].
// Two memchr scans: find_first_of() would call memchr once per character of the topic.
bool has_wildcard(std::string_view topic) noexcept {
  return topic.find('+') != std::string_view::npos || topic.find('#') != std::string_view::npos;
}

// ---- fixed header ---------------------------------------------------------------------------

// Checks the first byte: a known type and the flag bits that type requires. MQTT 3.1 marked these
// bits "not used" instead of reserving them, and brokers accept any value there, so on level 3
// only the PUBLISH flags, which carry meaning, and CONNECT, which comes before the level is known,
// are checked.
std::optional<failure> check_first_byte(std::uint8_t first, protocol_level level) noexcept {
  const unsigned type = first >> 4;
  const unsigned flags = first & 0x0fu;
  const bool strict = level != protocol_level::v3_1;
  switch (type) {
    case 0:
    case 15:
      return failure{codec_errc::malformed_packet, reserved_type};
    case static_cast<unsigned>(packet_type::publish): {
      const unsigned qos = (flags >> 1) & 0x03u;
      if (qos == 3) {
        return failure{codec_errc::malformed_packet, "[MQTT-3.3.1-4] PUBLISH QoS is 3"};
      }
      if (qos == 0 && (flags & 0x08u) != 0) {
        return failure{codec_errc::malformed_packet, "[MQTT-3.3.1-2] PUBLISH DUP is set on QoS 0"};
      }
      return std::nullopt;
    }
    case static_cast<unsigned>(packet_type::connect):
      if (flags != 0) {
        return failure{codec_errc::malformed_packet, "[MQTT-2.2.2-1] CONNECT flags are not 0000"};
      }
      return std::nullopt;
    case static_cast<unsigned>(packet_type::pubrel):
      if (strict && flags != 0x02) {
        return failure{codec_errc::malformed_packet, "[MQTT-3.6.1-1] PUBREL flags are not 0010"};
      }
      return std::nullopt;
    case static_cast<unsigned>(packet_type::subscribe):
      if (strict && flags != 0x02) {
        return failure{codec_errc::malformed_packet, "[MQTT-3.8.1-1] SUBSCRIBE flags are not 0010"};
      }
      return std::nullopt;
    case static_cast<unsigned>(packet_type::unsubscribe):
      if (strict && flags != 0x02) {
        return failure{codec_errc::malformed_packet,
                       "[MQTT-3.10.1-1] UNSUBSCRIBE flags are not 0010"};
      }
      return std::nullopt;
    default:
      if (strict && flags != 0) {
        return failure{codec_errc::malformed_packet, "[MQTT-2.2.2-1] reserved flags are not 0000"};
      }
      return std::nullopt;
  }
}

// Remaining Length of the packets whose size is fixed; nullopt for the others.
std::optional<std::size_t> fixed_remaining_length(packet_type type) noexcept {
  switch (type) {
    case packet_type::connack:
    case packet_type::puback:
    case packet_type::pubrec:
    case packet_type::pubrel:
    case packet_type::pubcomp:
    case packet_type::unsuback:
      return 2;
    case packet_type::pingreq:
    case packet_type::pingresp:
    case packet_type::disconnect:
      return 0;
    default:
      return std::nullopt;
  }
}

// ---- bodies ---------------------------------------------------------------------------------

body_result decode_connect(std::string_view body) {
  reader in(body);
  std::string_view protocol_name;
  if (!in.read_prefixed(protocol_name)) return malformed("CONNECT protocol name is truncated");
  // The name says which specification the rest of the packet follows [MQTT-3.1.2-1]; a known
  // name with another level is answered with CONNACK 0x01 [MQTT-3.1.2-2], which is how a v5
  // client learns that this server speaks 3.1.1.
  protocol_level level{};
  if (protocol_name == "MQTT") {
    level = protocol_level::v3_1_1;
  } else if (protocol_name == "MQIsdp") {
    level = protocol_level::v3_1;
  } else {
    return violation(codec_errc::protocol_error,
                     "[MQTT-3.1.2-1] CONNECT protocol name is not MQTT or MQIsdp");
  }
  std::uint8_t level_byte = 0;
  if (!in.read_u8(level_byte)) return malformed("CONNECT protocol level is truncated");
  if (level_byte != static_cast<std::uint8_t>(level)) {
    return violation(codec_errc::unacceptable_protocol_version,
                     "[MQTT-3.1.2-2] CONNECT protocol level is not supported");
  }

  std::uint8_t flags = 0;
  if (!in.read_u8(flags)) return malformed("CONNECT flags are truncated");
  const bool username_flag = (flags & 0x80u) != 0;
  const bool password_flag = (flags & 0x40u) != 0;
  const bool will_retain = (flags & 0x20u) != 0;
  const auto will_qos = static_cast<std::uint8_t>((flags >> 3) & 0x03u);
  const bool will_flag = (flags & 0x04u) != 0;
  const bool clean_session = (flags & 0x02u) != 0;
  if ((flags & 0x01u) != 0) return malformed("[MQTT-3.1.2-3] CONNECT reserved flag is not 0");
  if (!will_flag && will_qos != 0) {
    return malformed("[MQTT-3.1.2-13] CONNECT will QoS is set without the will flag");
  }
  if (will_qos == 3) return malformed("[MQTT-3.1.2-14] CONNECT will QoS is 3");
  if (!will_flag && will_retain) {
    return malformed("[MQTT-3.1.2-15] CONNECT will retain is set without the will flag");
  }
  if (password_flag && !username_flag) {
    return violation(codec_errc::protocol_error,
                     "[MQTT-3.1.2-22] CONNECT password flag is set without the user name flag");
  }

  connect out;
  out.level = level;
  out.clean_session = clean_session;
  if (!in.read_u16(out.keep_alive)) return malformed("CONNECT keep alive is truncated");

  // Payload fields come in this order when their flags are set [MQTT-3.1.3-1].
  std::string_view client_id;
  if (!in.read_prefixed(client_id)) {
    return malformed("[MQTT-3.1.3-3] CONNECT client identifier is truncated");
  }
  if (!is_mqtt_utf8(client_id)) {
    return malformed("[MQTT-3.1.3-4] CONNECT client identifier is not valid UTF-8");
  }
  if (will_flag) {
    std::string_view topic;
    std::string_view payload;
    if (!in.read_prefixed(topic)) {
      return malformed("[MQTT-3.1.2-9] CONNECT will topic is truncated");
    }
    if (!is_mqtt_utf8(topic)) {
      return malformed("[MQTT-3.1.3-10] CONNECT will topic is not valid UTF-8");
    }
    if (topic.empty()) {
      return violation(codec_errc::topic_name_invalid,
                       "[MQTT-4.7.3-1] CONNECT will topic is empty");
    }
    if (has_wildcard(topic)) {
      return violation(codec_errc::topic_name_invalid,
                       "[MQTT-4.7.1-1] CONNECT will topic contains a wildcard");
    }
    if (!in.read_prefixed(payload)) {
      return malformed("[MQTT-3.1.2-9] CONNECT will message is truncated");
    }
    out.will = will_message{.topic = std::string(topic),
                            .payload = std::string(payload),
                            .qos = static_cast<qos_level>(will_qos),
                            .retain = will_retain};
  }
  if (username_flag) {
    std::string_view username;
    if (!in.read_prefixed(username)) {
      return malformed("[MQTT-3.1.2-19] CONNECT user name is truncated");
    }
    if (!is_mqtt_utf8(username)) {
      return malformed("[MQTT-3.1.3-11] CONNECT user name is not valid UTF-8");
    }
    out.username.emplace(username);
  }
  if (password_flag) {
    std::string_view password;
    if (!in.read_prefixed(password)) {
      return malformed("[MQTT-3.1.2-21] CONNECT password is truncated");
    }
    out.password.emplace(password);
  }
  if (!in.empty()) return malformed("CONNECT has bytes after its last field");

  // Checked last: a refusal is answered with a CONNACK, which only makes sense for a packet that
  // is otherwise well formed.
  if (client_id.empty()) {
    if (level == protocol_level::v3_1) {
      // MQTT 3.1 requires 1 to 23 characters; longer ones are accepted, as by other brokers.
      return violation(codec_errc::identifier_rejected,
                       "CONNECT client identifier is empty on MQTT 3.1");
    }
    if (!clean_session) {
      return violation(codec_errc::identifier_rejected,
                       "[MQTT-3.1.3-8] CONNECT client identifier is empty without clean session");
    }
  }
  out.client_id.assign(client_id);
  return out;
}

body_result decode_connack(std::string_view body, protocol_level level) {
  // The Remaining Length was checked to be 2 before the body was buffered.
  const auto ack_flags = static_cast<std::uint8_t>(body[0]);
  const auto code = static_cast<std::uint8_t>(body[1]);
  const bool strict = level != protocol_level::v3_1;
  if (strict && (ack_flags & 0xfeu) != 0) {
    return malformed("CONNACK acknowledge flags bits 7-1 are not 0 (section 3.2.2.1)");
  }
  if (code > static_cast<std::uint8_t>(connect_return_code::not_authorized)) {
    return malformed("CONNACK return code is reserved (section 3.2.2.3)");
  }
  connack out;
  out.session_present = (ack_flags & 0x01u) != 0;
  out.return_code = static_cast<connect_return_code>(code);
  if (strict && out.session_present && out.return_code != connect_return_code::accepted) {
    return violation(codec_errc::protocol_error,
                     "[MQTT-3.2.2-4] CONNACK session present is set on a refusal");
  }
  return out;
}

body_result decode_publish(std::uint8_t flags, std::string_view body) {
  reader in(body);
  std::string_view topic;
  if (!in.read_prefixed(topic)) return malformed("PUBLISH topic name is truncated");
  if (!is_mqtt_utf8(topic)) {
    return malformed("[MQTT-3.3.2-1] PUBLISH topic name is not valid UTF-8");
  }
  if (topic.empty()) {
    return violation(codec_errc::topic_name_invalid, "[MQTT-4.7.3-1] PUBLISH topic name is empty");
  }
  if (has_wildcard(topic)) {
    return violation(codec_errc::topic_name_invalid,
                     "[MQTT-3.3.2-2] PUBLISH topic name contains a wildcard");
  }
  // Flags were checked with the first byte: QoS is 0, 1 or 2 and DUP is only set with QoS > 0.
  const auto qos = static_cast<qos_level>((flags >> 1) & 0x03u);
  std::uint16_t packet_id = 0;
  if (qos != qos_level::at_most_once) {
    if (!in.read_u16(packet_id)) return malformed(packet_id_truncated);
    if (packet_id == 0) return violation(codec_errc::protocol_error, packet_id_zero);
  }
  const std::string_view payload = in.take_rest();
  return publish{.topic = std::string(topic),
                 .payload = std::string(payload),
                 .qos = qos,
                 .retain = (flags & 0x01u) != 0,
                 .dup = (flags & 0x08u) != 0,
                 .packet_id = packet_id};
}

// PUBACK, PUBREC, PUBREL, PUBCOMP and UNSUBACK: exactly a packet identifier (size checked
// before buffering). It answers a packet that had a nonzero one [MQTT-2.3.1-1].
template <class Ack>
body_result decode_ack(std::string_view body) {
  reader in(body);
  Ack out;
  if (!in.read_u16(out.packet_id)) return malformed(packet_id_truncated);
  if (out.packet_id == 0) return violation(codec_errc::protocol_error, packet_id_zero);
  return out;
}

body_result decode_subscribe(std::string_view body) {
  reader in(body);
  subscribe out;
  if (!in.read_u16(out.packet_id)) return malformed(packet_id_truncated);
  if (out.packet_id == 0) return violation(codec_errc::protocol_error, packet_id_zero);
  while (!in.empty()) {
    std::string_view filter;
    std::uint8_t requested = 0;
    if (!in.read_prefixed(filter)) return malformed("SUBSCRIBE topic filter is truncated");
    if (!is_mqtt_utf8(filter)) {
      return malformed("[MQTT-3.8.3-1] SUBSCRIBE topic filter is not valid UTF-8");
    }
    if (filter.empty()) {
      return violation(codec_errc::topic_filter_invalid,
                       "[MQTT-4.7.3-1] SUBSCRIBE topic filter is empty");
    }
    if (!in.read_u8(requested)) return malformed("SUBSCRIBE requested QoS is truncated");
    // Bits 7-2 are reserved and QoS 3 does not exist: both make the packet malformed.
    if (!is_valid_qos(requested)) {
      return malformed("[MQTT-3.8.3-4] SUBSCRIBE requested QoS byte is not 0, 1 or 2");
    }
    out.subscriptions.push_back({std::string(filter), static_cast<qos_level>(requested)});
  }
  if (out.subscriptions.empty()) {
    return violation(codec_errc::protocol_error, "[MQTT-3.8.3-3] SUBSCRIBE has no topic filter");
  }
  return out;
}

body_result decode_suback(std::string_view body) {
  reader in(body);
  suback out;
  if (!in.read_u16(out.packet_id)) return malformed(packet_id_truncated);
  if (out.packet_id == 0) return violation(codec_errc::protocol_error, packet_id_zero);
  const std::string_view codes = in.take_rest();
  // A SUBACK answers a SUBSCRIBE, which has at least one filter, one return code each.
  if (codes.empty()) return violation(codec_errc::protocol_error, "SUBACK has no return code");
  out.return_codes.reserve(codes.size());
  for (const char c : codes) {
    const auto code = static_cast<std::uint8_t>(c);
    if (!is_valid_qos(code) && code != static_cast<std::uint8_t>(suback_return_code::failure)) {
      return malformed("[MQTT-3.9.3-2] SUBACK return code is reserved");
    }
    out.return_codes.push_back(static_cast<suback_return_code>(code));
  }
  return out;
}

body_result decode_unsubscribe(std::string_view body) {
  reader in(body);
  unsubscribe out;
  if (!in.read_u16(out.packet_id)) return malformed(packet_id_truncated);
  if (out.packet_id == 0) return violation(codec_errc::protocol_error, packet_id_zero);
  while (!in.empty()) {
    std::string_view filter;
    if (!in.read_prefixed(filter)) return malformed("UNSUBSCRIBE topic filter is truncated");
    if (!is_mqtt_utf8(filter)) {
      return malformed("[MQTT-3.10.3-1] UNSUBSCRIBE topic filter is not valid UTF-8");
    }
    if (filter.empty()) {
      return violation(codec_errc::topic_filter_invalid,
                       "[MQTT-4.7.3-1] UNSUBSCRIBE topic filter is empty");
    }
    out.filters.emplace_back(filter);
  }
  if (out.filters.empty()) {
    return violation(codec_errc::protocol_error, "[MQTT-3.10.3-2] UNSUBSCRIBE has no topic filter");
  }
  return out;
}

body_result decode_body(packet_type type, std::uint8_t flags, std::string_view body,
                        protocol_level level) {
  switch (type) {
    case packet_type::connect:
      return decode_connect(body);
    case packet_type::connack:
      return decode_connack(body, level);
    case packet_type::publish:
      return decode_publish(flags, body);
    case packet_type::puback:
      return decode_ack<puback>(body);
    case packet_type::pubrec:
      return decode_ack<pubrec>(body);
    case packet_type::pubrel:
      return decode_ack<pubrel>(body);
    case packet_type::pubcomp:
      return decode_ack<pubcomp>(body);
    case packet_type::subscribe:
      return decode_subscribe(body);
    case packet_type::suback:
      return decode_suback(body);
    case packet_type::unsubscribe:
      return decode_unsubscribe(body);
    case packet_type::unsuback:
      return decode_ack<unsuback>(body);
    case packet_type::pingreq:
      return pingreq{};
    case packet_type::pingresp:
      return pingresp{};
    case packet_type::disconnect:
      return disconnect{};
  }
  return malformed(reserved_type);  // unreachable: check_first_byte refused types 0 and 15
}

// Buffers above this size are released once drained, so that one large packet does not pin its
// memory for the lifetime of the connection.
constexpr std::size_t large_buffer = 64 * std::size_t{1024};
constexpr std::size_t initial_capacity = 4 * std::size_t{1024};

}  // namespace

decoder::decoder(decoder_options options)
    : max_packet_size_(
          static_cast<std::uint32_t>(std::min(options.max_packet_size, max_packet_size_limit))),
      level_(options.level) {}

std::span<char> decoder::prepare(std::size_t n) {
  if (borrowed_ != nullptr) keep_rest();
  if (begin_ == end_) {
    begin_ = end_ = 0;
    if (capacity_ > large_buffer) {
      buffer_.reset();
      capacity_ = 0;
    }
  }
  if (capacity_ - end_ < n) {
    const std::size_t live = end_ - begin_;
    if (capacity_ - live >= n) {
      std::memmove(buffer_.get(), buffer_.get() + begin_, live);
    } else {
      // Grow geometrically, so that memory follows the bytes that actually arrived: a header
      // announcing a large packet costs nothing until its body comes. No need to go past the
      // end of the pending packet, though, when its size is known.
      std::size_t new_capacity = std::max({live + n, 2 * std::size_t{capacity_}, initial_capacity});
      if (missing_ != 0) {
        new_capacity = std::min(new_capacity, live + std::max(n, std::size_t{missing_}));
      }
      auto bigger = std::make_unique_for_overwrite<char[]>(new_capacity);
      if (live != 0) std::memcpy(bigger.get(), buffer_.get() + begin_, live);
      buffer_ = std::move(bigger);
      capacity_ = static_cast<std::uint32_t>(new_capacity);
    }
    begin_ = 0;
    end_ = static_cast<std::uint32_t>(live);
  }
  return {buffer_.get() + end_, capacity_ - end_};
}

void decoder::commit(std::size_t n) noexcept {
  end_ += static_cast<std::uint32_t>(std::min(n, std::size_t{capacity_ - end_}));
  missing_ = missing_ > n ? missing_ - static_cast<std::uint32_t>(n) : 0;
}

void decoder::feed(std::string_view bytes) {
  if (bytes.empty()) return;
  const std::span<char> space = prepare(bytes.size());
  std::memcpy(space.data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

void decoder::borrow(std::string_view bytes) noexcept {
  borrowed_ = bytes.data();
  begin_ = 0;
  end_ = static_cast<std::uint32_t>(bytes.size());
  missing_ = 0;  // next() measures the pending packet again, in the borrowed bytes
}

void decoder::keep_rest() {
  if (borrowed_ == nullptr) return;
  const char* rest = borrowed_ + begin_;
  const std::size_t live = end_ - begin_;
  borrowed_ = nullptr;
  begin_ = end_ = 0;
  if (live == 0) return;
  // missing_ already counts these bytes as received: prepare() must not size by it, nor
  // commit() subtract them again.
  const std::uint32_t missing = std::exchange(missing_, 0);
  const std::span<char> space = prepare(live);
  std::memcpy(space.data(), rest, live);
  end_ += static_cast<std::uint32_t>(live);
  missing_ = missing;
}

void decoder::release() noexcept {
  if (borrowed_ != nullptr || begin_ != end_) return;
  buffer_.reset();
  capacity_ = 0;
  begin_ = end_ = 0;
}

decode_result decoder::fail(codec_errc code, std::string_view detail) {
  error_ = code;
  detail_ = detail.data();
  detail_size_ = static_cast<std::uint32_t>(detail.size());
  return ebus::fail(make_error_code(code));
}

decode_result decoder::next() {
  if (error_ != codec_errc{}) return ebus::fail(make_error_code(error_));
  const std::size_t available = end_ - begin_;
  if (available == 0) return std::nullopt;
  const char* const data = (borrowed_ != nullptr ? borrowed_ : buffer_.get()) + begin_;

  const auto first = static_cast<std::uint8_t>(data[0]);
  if (const auto f = check_first_byte(first, level_)) return fail(f->code, f->detail);
  const auto type = static_cast<packet_type>(first >> 4);

  // Remaining Length: 7 bits per byte, least significant group first, at most four bytes
  // (section 2.2.3). Rejected as soon as a fourth byte still has its continuation bit set.
  std::size_t remaining = 0;
  std::size_t header_size = 1;
  for (unsigned shift = 0;; shift += 7) {
    if (header_size == 5) {
      return fail(codec_errc::malformed_packet,
                  "Remaining Length is longer than four bytes (section 2.2.3)");
    }
    if (header_size >= available) return std::nullopt;
    const auto byte = static_cast<std::uint8_t>(data[header_size++]);
    remaining |= static_cast<std::size_t>(byte & 0x7fu) << shift;
    if ((byte & 0x80u) == 0) break;
  }

  // Both checks happen before the body is waited for, so nothing is buffered for a packet that
  // will be refused.
  if (const auto fixed = fixed_remaining_length(type); fixed && remaining != *fixed) {
    return fail(codec_errc::malformed_packet,
                "Remaining Length does not match the packet type's fixed size");
  }
  const std::size_t total = header_size + remaining;
  if (total > max_packet_size_) {
    return fail(codec_errc::packet_too_large, "packet is larger than the maximum packet size");
  }
  if (available < total) {
    missing_ = static_cast<std::uint32_t>(total - available);
    return std::nullopt;
  }

  auto body = decode_body(type, static_cast<std::uint8_t>(first & 0x0fu),
                          std::string_view(data + header_size, remaining), level_);
  begin_ += static_cast<std::uint32_t>(total);
  missing_ = 0;
  if (!body) return fail(body.error().code, body.error().detail);
  if (const auto* c = std::get_if<connect>(&*body)) level_ = c->level;
  return std::optional<packet>(std::move(*body));
}

}  // namespace ebus::mqtt::codec
