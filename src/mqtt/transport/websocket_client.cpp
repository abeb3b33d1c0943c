#include "mqtt/transport/websocket_client.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <random>

#include <openssl/evp.h>

#include "mqtt/transport/websocket_server.hpp"

namespace ebus::mqtt::transport {
namespace {

std::string base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// xorshift64: masking keys need no cryptographic quality here (RFC 6455 asks for it against
// proxies that a loopback client never meets), and must cost nothing.
std::uint32_t next_mask(std::uint64_t& state) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return static_cast<std::uint32_t>(state >> 32);
}

}  // namespace

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::optional<std::string> http_header_value(std::string_view head, std::string_view name) {
  std::size_t at = head.find("\r\n");
  while (at != std::string_view::npos) {
    const std::size_t begin = at + 2;
    const std::size_t end = head.find("\r\n", begin);
    const auto line = head.substr(begin, end == std::string_view::npos ? end : end - begin);
    const std::size_t colon = line.find(':');
    if (colon != std::string_view::npos && ascii_lower(line.substr(0, colon)) == name) {
      auto value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);
      return std::string(value);
    }
    at = end;
  }
  return std::nullopt;
}

websocket_client::websocket_client(websocket_client_options options)
    : options_(std::move(options)) {
  std::random_device random;
  std::array<unsigned char, 16> nonce{};
  for (auto& b : nonce)
    b = static_cast<unsigned char>(random());
  mask_state_ = (std::uint64_t{random()} << 32) | random() | 1;  // xorshift needs a nonzero state
  key_ = base64(nonce.data(), nonce.size());
  request_ = "GET " + options_.path + " HTTP/1.1\r\nHost: " + options_.host +
             "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key_ +
             "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";
}

websocket_client::upgrade_result websocket_client::check_upgrade(std::string_view received) const {
  const std::size_t end = received.find("\r\n\r\n");
  if (end == std::string_view::npos || end + 4 > options_.max_response_bytes) {
    if (received.size() < options_.max_response_bytes) return {};
    return {upgrade_state::refused, 0,
            "WebSocket upgrade: response header over " +
                std::to_string(options_.max_response_bytes) + " bytes"};
  }
  const std::string_view head = received.substr(0, end + 2);  // the last CRLF, for the headers
  const std::string_view status = head.substr(0, head.find("\r\n"));
  if (status.rfind("HTTP/1.1 101", 0) != 0) {
    return {upgrade_state::refused, 0, "WebSocket upgrade refused: " + std::string(status)};
  }
  const auto mismatch = [head](std::string_view name, const std::string& wanted,
                               bool ignore_case) -> std::optional<std::string> {
    const auto value = http_header_value(head, name);
    if (value && (ignore_case ? ascii_lower(*value) == ascii_lower(wanted) : *value == wanted)) {
      return std::nullopt;
    }
    return "WebSocket upgrade: " + std::string(name) + " is '" + value.value_or("(absent)") +
           "', expected '" + wanted + "'";
  };
  for (auto why : {mismatch("upgrade", "websocket", true), mismatch("connection", "upgrade", true),
                   mismatch("sec-websocket-accept", websocket_accept_key(key_), false),
                   mismatch("sec-websocket-protocol", "mqtt", false)}) {  // [MQTT-6.0.0-4]
    if (why) return {upgrade_state::refused, 0, std::move(*why)};
  }
  return {upgrade_state::accepted, end + 4, {}};
}

void websocket_client::frame(std::uint8_t opcode, std::string_view payload, std::string& out) {
  out.push_back(static_cast<char>(0x80 | opcode));  // FIN: every frame is a whole message
  if (payload.size() < 126) {
    out.push_back(static_cast<char>(0x80 | payload.size()));
  } else if (payload.size() <= 0xffff) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(payload.size() >> 8));
    out.push_back(static_cast<char>(payload.size() & 0xff));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8)
      out.push_back(
          static_cast<char>((static_cast<std::uint64_t>(payload.size()) >> shift) & 0xff));
  }
  const std::uint32_t mask = next_mask(mask_state_);
  std::array<char, 4> key{};
  std::memcpy(key.data(), &mask, key.size());
  out.append(key.data(), key.size());
  const std::size_t start = out.size();
  out.append(payload);
  // A word at a time: the key repeats every four bytes, so two copies make an 8-byte mask.
  std::uint64_t word_mask = 0;
  std::memcpy(&word_mask, key.data(), 4);
  std::memcpy(reinterpret_cast<char*>(&word_mask) + 4, key.data(), 4);
  char* p = out.data() + start;
  const std::size_t words = payload.size() / 8;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint64_t w = 0;
    std::memcpy(&w, p + i * 8, 8);
    w ^= word_mask;
    std::memcpy(p + i * 8, &w, 8);
  }
  for (std::size_t i = words * 8; i < payload.size(); ++i)
    p[i] = static_cast<char>(p[i] ^ key[i % 4]);
}

websocket_client::unwrap_result websocket_client::unwrap_into(std::string_view in, sink_fn sink,
                                                              void* context, std::string& replies) {
  unwrap_result result;
  for (;;) {
    const std::string_view rest = in.substr(result.consumed);
    if (rest.size() < 2) return result;
    const auto b0 = static_cast<std::uint8_t>(rest[0]);
    const auto b1 = static_cast<std::uint8_t>(rest[1]);
    const auto fail = [&result](std::string why) {
      result.state = unwrap_state::failed;
      result.reason = std::move(why);
      return std::move(result);
    };
    if ((b0 & 0x70) != 0) return fail("WebSocket: reserved bits set by the server");
    if ((b1 & 0x80) != 0) return fail("WebSocket: masked frame from the server");
    std::size_t header = 2;
    std::uint64_t length = b1 & 0x7f;
    if (length >= 126) {
      const std::size_t bytes = length == 126 ? 2 : 8;
      if (rest.size() < header + bytes) return result;
      length = 0;
      for (std::size_t i = 0; i < bytes; ++i)
        length = (length << 8) | static_cast<std::uint8_t>(rest[header + i]);
      header += bytes;
    }
    if (length > options_.max_frame_payload) {
      return fail("WebSocket: frame over " + std::to_string(options_.max_frame_payload) +
                  " bytes from the server");
    }
    const std::size_t frame_bytes = header + static_cast<std::size_t>(length);
    if (rest.size() < frame_bytes) {
      result.next_frame_bytes = frame_bytes;
      return result;
    }
    const std::string_view payload = rest.substr(header, static_cast<std::size_t>(length));
    switch (b0 & 0x0f) {
      case op_continuation:
      case op_binary:
        sink(context, payload);
        break;
      case op_text:
        return fail("WebSocket: text frame from the server [MQTT-6.0.0-1]");
      case op_close:
        result.consumed += frame_bytes;
        result.state = unwrap_state::closed;
        return result;
      case op_ping:
        frame(op_pong, payload, replies);
        break;
      case op_pong:
        break;
      default:
        return fail("WebSocket: reserved opcode " + std::to_string(b0 & 0x0f));
    }
    result.consumed += frame_bytes;
  }
}

}  // namespace ebus::mqtt::transport
