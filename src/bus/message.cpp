#include "bus/message.hpp"

#include <array>
#include <cstring>
#include <random>
#include <string_view>

#include "bus/message_json.hpp"
#include "common/clock.hpp"

namespace ebus::bus {
namespace {

// xoshiro256** seeded once per thread from the OS: UUIDs need uniqueness, not secrecy, and a
// system call per message would dominate the bus's hot path.
class uuid_source {
 public:
  uuid_source() {
    std::random_device rd;
    for (auto& word : s_)
      word = (std::uint64_t{rd()} << 32) | rd();
  }

  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> s_{};
};

/// The two lower-case hex digits of every byte value.
constexpr std::array<char, 512> hex_pairs = [] {
  constexpr std::string_view digits = "0123456789abcdef";
  std::array<char, 512> pairs{};
  for (std::size_t v = 0; v < 256; ++v) {
    pairs[2 * v] = digits[v >> 4];
    pairs[2 * v + 1] = digits[v & 15];
  }
  return pairs;
}();

// Bytes held by a JSON value: one node per value, plus its strings and, for objects, a tree node
// per member.
std::size_t json_size(const nlohmann::json& v) noexcept {
  constexpr std::size_t node = sizeof(nlohmann::json);
  constexpr std::size_t member = 4 * sizeof(void*);  // a std::map node's links and colour
  switch (v.type()) {
    case nlohmann::json::value_t::string:
      return node + v.get_ref<const std::string&>().size();
    case nlohmann::json::value_t::binary:
      return node + v.get_binary().size();
    case nlohmann::json::value_t::array: {
      std::size_t n = node;
      for (const auto& e : v)
        n += json_size(e);
      return n;
    }
    case nlohmann::json::value_t::object: {
      std::size_t n = node;
      for (const auto& [key, value] : v.items())
        n += member + sizeof(std::string) + key.size() + json_size(value);
      return n;
    }
    default:
      return node;
  }
}

}  // namespace

std::size_t approximate_size(const message& m) noexcept {
  const auto& h = m.header;
  const auto& r = m.route;
  std::size_t n = message_overhead + h.id.size() + h.parent_id.size() + h.resource_version.size() +
                  h.type.size() + r.source.size() + r.destination.size() + r.group.size() +
                  r.operation.size() + r.resource.size() + m.content.bytes().size();
  if (m.content.type() == content::kind::json) n += json_size(m.content.json_value());
  return n;
}

content content::json(nlohmann::json value) {
  if (value.is_null()) return {};
  if (value.is_string()) return text(std::move(value.get_ref<std::string&>()));
  content c;
  c.kind_ = kind::json;
  c.json_ = std::move(value);
  return c;
}

std::string content::data() const {
  switch (kind_) {
    case kind::text:
    case kind::binary:
      return bytes_;
    case kind::null:
      return "null";
    case kind::json: {
      std::string out;
      append_go_json(out, json_);
      return out;
    }
  }
  return {};
}

std::string new_uuid() {
  thread_local uuid_source source;
  std::array<std::uint8_t, 16> b{};
  const std::uint64_t hi = source.next();
  const std::uint64_t lo = source.next();
  for (std::size_t i = 0; i < 8; ++i) {
    b[i] = static_cast<std::uint8_t>(hi >> (56 - 8 * i));
    b[i + 8] = static_cast<std::uint8_t>(lo >> (56 - 8 * i));
  }
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0F) | 0x40);  // version 4
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3F) | 0x80);  // RFC 4122 variant
  // Where each byte's two hex digits go in 8-4-4-4-12.
  static constexpr std::array<std::uint8_t, 16> at = {0,  2,  4,  6,  9,  11, 14, 16,
                                                      19, 21, 24, 26, 28, 30, 32, 34};
  std::string out(36, '-');
  for (std::size_t i = 0; i < 16; ++i) {
    std::memcpy(&out[at[i]], &hex_pairs[2 * std::size_t{b[i]}], 2);
  }
  return out;
}

message new_message(std::string parent_id) {
  message m;
  m.header.id = new_uuid();
  m.header.parent_id = std::move(parent_id);
  m.header.timestamp = unix_millis();
  return m;
}

message& build_router(message& m, std::string source, std::string group, std::string resource,
                      std::string operation) {
  m.route.source = std::move(source);
  m.route.group = std::move(group);
  m.route.resource = std::move(resource);
  m.route.operation = std::move(operation);
  return m;
}

message new_response(const message& request, class content c) {
  message m = new_message(request.header.id);
  m.header.type = request.header.type;
  build_router(m, request.route.source, request.route.group, request.route.resource,
               std::string(operation::response));
  m.content = std::move(c);
  return m;
}

message new_error(const message& request, std::string text) {
  message m = new_message(request.header.id);
  m.route.resource = request.route.resource;
  m.route.operation = operation::error;
  m.content = content::text(std::move(text));
  return m;
}

message clone(const message& m) {
  message c = m;
  c.header.id = new_uuid();
  return c;
}

}  // namespace ebus::bus
