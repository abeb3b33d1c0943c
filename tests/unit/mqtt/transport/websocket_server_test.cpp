// The WebSocket server side as a Sans-I/O object: the upgrade request and client frames go in as
// bytes, MQTT bytes and the bytes to write come out. The client side here is a small test-only
// encoder (masked frames) and decoder (server frames), written from RFC 6455 section 5.2.

#include "mqtt/transport/websocket_server.hpp"

#include <array>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace ebus::mqtt::transport {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

// The request paho-mqtt 1.6 (transport="websockets") writes, with the key of RFC 6455's
// example; note its "Sec-Websocket-" spelling.
constexpr std::string_view paho_request =
    "GET /mqtt HTTP/1.1\r\n"
    "Host: 127.0.0.1:1883\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Origin: https://127.0.0.1:1883\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-Websocket-Version: 13\r\n"
    "Sec-Websocket-Protocol: mqtt\r\n"
    "\r\n";

constexpr std::string_view accepted_mqtt =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "Sec-WebSocket-Protocol: mqtt\r\n"
    "\r\n";

// CONNECT, MQTT 3.1.1, clean session, keep-alive 60, client id "c".
const std::string connect_packet = "\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01\x63"s;
const std::string pingreq = "\xc0\x00"s;

constexpr std::uint8_t op_continuation = 0x0;
constexpr std::uint8_t op_text = 0x1;
constexpr std::uint8_t op_binary = 0x2;
constexpr std::uint8_t op_close = 0x8;
constexpr std::uint8_t op_ping = 0x9;
constexpr std::uint8_t op_pong = 0xa;

struct client_frame {
  std::uint8_t opcode = op_binary;
  std::string payload{};
  bool fin = true;
  bool masked = true;
  std::uint8_t rsv = 0;
};

// A client frame on the wire: length in its shortest form, payload masked with a fixed key.
std::string encode(const client_frame& f) {
  std::string out;
  out += static_cast<char>((f.fin ? 0x80 : 0) | (f.rsv << 4) | f.opcode);
  const char mask_bit = f.masked ? '\x80' : '\x00';
  const std::size_t n = f.payload.size();
  if (n < 126) {
    out += static_cast<char>(mask_bit | static_cast<char>(n));
  } else if (n < 65536) {
    out += static_cast<char>(mask_bit | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xff);
  } else {
    out += static_cast<char>(mask_bit | 127);
    for (int shift = 56; shift >= 0; shift -= 8)
      out += static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xff);
  }
  const std::array<char, 4> key{'\x37', '\xfa', '\x21', '\x3d'};
  if (f.masked) out.append(key.data(), key.size());
  for (std::size_t i = 0; i < n; ++i)
    out += f.masked ? static_cast<char>(f.payload[i] ^ key[i % 4]) : f.payload[i];
  return out;
}

std::string encode_all(const std::vector<client_frame>& frames) {
  std::string out;
  for (const auto& f : frames)
    out += encode(f);
  return out;
}

struct server_frame {
  bool fin = false;
  std::uint8_t opcode = 0;
  std::string payload;
};

// Splits server output into frames; fails the test on a masked or truncated frame.
std::vector<server_frame> decode(std::string_view wire) {
  std::vector<server_frame> frames;
  while (!wire.empty()) {
    EXPECT_GE(wire.size(), 2U);
    if (wire.size() < 2) break;
    const auto b0 = static_cast<unsigned char>(wire[0]);
    const auto b1 = static_cast<unsigned char>(wire[1]);
    EXPECT_EQ(b1 & 0x80, 0) << "server frames are not masked";
    std::uint64_t n = b1 & 0x7f;
    std::size_t header = 2;
    if (n == 126 || n == 127) {
      const std::size_t bytes = n == 126 ? 2 : 8;
      n = 0;
      for (std::size_t i = 0; i < bytes; ++i)
        n = (n << 8) | static_cast<unsigned char>(wire[2 + i]);
      header += bytes;
    }
    EXPECT_GE(wire.size(), header + n);
    if (wire.size() < header + n) break;
    frames.push_back({(b0 & 0x80) != 0, static_cast<std::uint8_t>(b0 & 0x0f),
                      std::string(wire.substr(header, n))});
    wire.remove_prefix(header + n);
  }
  return frames;
}

std::uint16_t close_code(const server_frame& f) {
  if (f.payload.size() < 2) return 0;
  return static_cast<std::uint16_t>((static_cast<unsigned char>(f.payload[0]) << 8) |
                                    static_cast<unsigned char>(f.payload[1]));
}

std::span<const char> bytes(std::string_view s) {
  return {s.data(), s.size()};
}

websocket_options options(std::size_t max_buffered = 1 << 20) {
  websocket_options o;
  o.max_buffered_bytes = max_buffered;
  return o;
}

// A server past the upgrade, its 101 already taken.
websocket_server open_server(std::size_t max_buffered = 1 << 20) {
  websocket_server ws(options(max_buffered));
  std::string mqtt;
  EXPECT_TRUE(ws.feed(bytes(paho_request), mqtt));
  EXPECT_EQ(ws.take_output(), accepted_mqtt);
  EXPECT_TRUE(ws.open());
  return ws;
}

// Feeds `wire` in pieces of 1, 2, ... `max_piece` bytes, round robin; stops at the first false.
bool feed_in_pieces(websocket_server& ws, std::string_view wire, std::string& mqtt,
                    std::size_t max_piece) {
  std::size_t piece = 1;
  while (!wire.empty()) {
    const std::size_t n = std::min(piece, wire.size());
    if (!ws.feed(bytes(wire.substr(0, n)), mqtt)) return false;
    wire.remove_prefix(n);
    piece = piece % max_piece + 1;
  }
  return true;
}

// --- handshake ----------------------------------------------------------------------------

TEST(websocket_handshake, accept_key_matches_rfc_6455_example) {
  EXPECT_EQ(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(websocket_handshake, paho_request_gets_the_exact_101_with_mqtt_echoed) {
  websocket_server ws(options());
  std::string mqtt;
  EXPECT_TRUE(ws.feed(bytes(paho_request), mqtt));
  EXPECT_EQ(ws.take_output(), accepted_mqtt);
  EXPECT_TRUE(ws.open());
  EXPECT_FALSE(ws.closed());
  EXPECT_EQ(ws.subprotocol(), "mqtt");
  EXPECT_TRUE(mqtt.empty());
  EXPECT_TRUE(ws.take_output().empty()) << "output is moved out";
}

TEST(websocket_handshake, browser_request_with_query_extensions_and_connection_list) {
  // As Firefox sends it for mqtt.js: a query string, "keep-alive, Upgrade", an extension offer
  // (declined by not answering it), and other headers that do not matter.
  constexpr std::string_view request =
      "GET /mqtt?clientId=web-1 HTTP/1.1\r\n"
      "Host: edge.local:8083\r\n"
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
      "Accept: */*\r\n"
      "Accept-Language: en-US,en;q=0.5\r\n"
      "Accept-Encoding: gzip, deflate\r\n"
      "Sec-WebSocket-Version: 13\r\n"
      "Origin: http://edge.local:8080\r\n"
      "Sec-WebSocket-Protocol: mqtt\r\n"
      "Sec-WebSocket-Extensions: permessage-deflate\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Connection: keep-alive, Upgrade\r\n"
      "Pragma: no-cache\r\n"
      "Cache-Control: no-cache\r\n"
      "Upgrade: WebSocket\r\n"
      "\r\n";
  websocket_server ws(options());
  std::string mqtt;
  EXPECT_TRUE(ws.feed(bytes(request), mqtt));
  EXPECT_EQ(ws.take_output(), accepted_mqtt);
  EXPECT_TRUE(ws.open());
}

std::string request_with_protocol(std::string_view header_lines) {
  std::string r =
      "GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
  r += header_lines;
  r += "\r\n";
  return r;
}

TEST(websocket_handshake, old_paho_mqttv31_is_echoed_when_it_is_the_only_offer) {
  websocket_server ws(options());
  std::string mqtt;
  EXPECT_TRUE(ws.feed(bytes(request_with_protocol("Sec-WebSocket-Protocol: mqttv3.1\r\n")), mqtt));
  EXPECT_EQ(ws.subprotocol(), "mqttv3.1");
  EXPECT_NE(ws.take_output().find("\r\nSec-WebSocket-Protocol: mqttv3.1\r\n"), std::string::npos);
}

TEST(websocket_handshake, mqtt_is_preferred_whatever_the_order_of_offers) {
  // [MQTT-6.0.0-4]; offers may be one list or repeated headers.
  for (const std::string_view lines :
       {"Sec-WebSocket-Protocol: mqttv3.1, mqtt\r\n"sv,
        "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: mqttv3.1 ,mqtt\r\n"sv}) {
    websocket_server ws(options());
    std::string mqtt;
    EXPECT_TRUE(ws.feed(bytes(request_with_protocol(lines)), mqtt)) << lines;
    EXPECT_EQ(ws.subprotocol(), "mqtt") << lines;
  }
}

TEST(websocket_handshake, no_subprotocol_offered_is_accepted_without_the_header) {
  websocket_server ws(options());
  std::string mqtt;
  EXPECT_TRUE(ws.feed(bytes(request_with_protocol("")), mqtt));
  EXPECT_EQ(ws.take_output(),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
  EXPECT_EQ(ws.subprotocol(), "");
  EXPECT_TRUE(ws.open());
}

TEST(websocket_handshake, request_fed_byte_by_byte_is_answered_once_complete) {
  websocket_server ws(options());
  std::string mqtt;
  for (std::size_t i = 0; i + 1 < paho_request.size(); ++i) {
    ASSERT_TRUE(ws.feed(bytes(paho_request.substr(i, 1)), mqtt)) << i;
    ASSERT_FALSE(ws.open()) << i;
    ASSERT_TRUE(ws.take_output().empty()) << i;
  }
  EXPECT_TRUE(ws.feed(bytes(paho_request.substr(paho_request.size() - 1)), mqtt));
  EXPECT_EQ(ws.take_output(), accepted_mqtt);
  EXPECT_TRUE(ws.open());
}

TEST(websocket_handshake, empty_feed_before_the_request_is_not_end_of_stream) {
  websocket_server ws(options());
  std::string mqtt;
  EXPECT_TRUE(ws.feed({}, mqtt));
  EXPECT_TRUE(ws.feed(bytes(paho_request.substr(0, 10)), mqtt));
  EXPECT_TRUE(ws.feed({}, mqtt));
  EXPECT_TRUE(ws.feed(bytes(paho_request.substr(10)), mqtt));
  EXPECT_TRUE(ws.open());
}

TEST(websocket_handshake, frames_in_the_same_read_as_the_request_are_kept) {
  websocket_server ws(options());
  std::string wire(paho_request);
  wire += encode({.payload = connect_packet});
  wire += encode({.payload = pingreq});
  std::string mqtt;
  EXPECT_TRUE(ws.feed(bytes(wire), mqtt));
  EXPECT_EQ(ws.take_output(), accepted_mqtt);
  EXPECT_EQ(mqtt, connect_packet + pingreq);
}

struct refusal {
  std::string name;
  std::string request;
  std::string status_line;
  std::string reason;
};

std::string without(std::string_view line) {
  std::string r(paho_request);
  r.erase(r.find(line), line.size());
  return r;
}

std::string replaced(std::string_view from, std::string_view to) {
  std::string r(paho_request);
  r.replace(r.find(from), from.size(), to);
  return r;
}

void PrintTo(const refusal& r, std::ostream* os) {
  *os << r.name;
}

class websocket_refusal : public testing::TestWithParam<refusal> {};

TEST_P(websocket_refusal, answers_its_status_and_closes) {
  const refusal& c = GetParam();
  websocket_server ws(options());
  std::string mqtt;
  EXPECT_FALSE(ws.feed(bytes(c.request), mqtt));
  EXPECT_TRUE(ws.closed());
  EXPECT_FALSE(ws.open());
  EXPECT_EQ(ws.close_reason(), c.reason);
  const std::string out = ws.take_output();
  EXPECT_EQ(out.substr(0, c.status_line.size() + 2), c.status_line + "\r\n");
  EXPECT_NE(out.find("\r\nConnection: close\r\n"), std::string::npos);
  // The body is the reason, its length announced.
  const std::string body = c.reason + "\n";
  EXPECT_NE(out.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n"),
            std::string::npos);
  EXPECT_EQ(out.substr(out.size() - body.size()), body);
  EXPECT_TRUE(mqtt.empty());
  // Closed is final.
  EXPECT_FALSE(ws.feed(bytes(paho_request), mqtt));
  EXPECT_TRUE(ws.take_output().empty());
}

INSTANTIATE_TEST_SUITE_P(
    websocket_handshake, websocket_refusal,
    testing::Values(
        refusal{"post", replaced("GET ", "POST "), "HTTP/1.1 400 Bad Request",
                "bad upgrade request: method is not GET"},
        refusal{"http_1_0", replaced("HTTP/1.1", "HTTP/1.0"), "HTTP/1.1 400 Bad Request",
                "bad upgrade request: not HTTP/1.1"},
        refusal{"other_path", replaced("/mqtt ", "/ws "), "HTTP/1.1 404 Not Found",
                "bad upgrade request: unknown path"},
        refusal{"trailing_slash", replaced("/mqtt ", "/mqtt/ "), "HTTP/1.1 404 Not Found",
                "bad upgrade request: unknown path"},
        refusal{"no_upgrade", without("Upgrade: websocket\r\n"), "HTTP/1.1 400 Bad Request",
                "bad upgrade request: no Upgrade: websocket"},
        refusal{"upgrade_h2c", replaced("Upgrade: websocket", "Upgrade: h2c"),
                "HTTP/1.1 400 Bad Request", "bad upgrade request: no Upgrade: websocket"},
        refusal{"connection_keep_alive", replaced("Connection: Upgrade", "Connection: keep-alive"),
                "HTTP/1.1 400 Bad Request",
                "bad upgrade request: Connection does not list upgrade"},
        refusal{"version_8", replaced("Version: 13", "Version: 8"), "HTTP/1.1 426 Upgrade Required",
                "bad upgrade request: Sec-WebSocket-Version is not 13"},
        refusal{"no_version", without("Sec-Websocket-Version: 13\r\n"),
                "HTTP/1.1 426 Upgrade Required",
                "bad upgrade request: Sec-WebSocket-Version is not 13"},
        refusal{"no_key", without("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
                "HTTP/1.1 400 Bad Request", "bad upgrade request: no Sec-WebSocket-Key"},
        refusal{"short_key", replaced("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
                "HTTP/1.1 400 Bad Request",
                "bad upgrade request: Sec-WebSocket-Key is not 16 bytes in base64"},
        refusal{"two_keys",
                replaced("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
                "HTTP/1.1 400 Bad Request",
                "bad upgrade request: Sec-WebSocket-Key is not 16 bytes in base64"},
        refusal{"other_subprotocol", replaced("Protocol: mqtt", "Protocol: chat, MQTT"),
                "HTTP/1.1 400 Bad Request",
                "bad upgrade request: neither mqtt nor mqttv3.1 offered"},
        refusal{"not_http", "\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"s,
                "HTTP/1.1 400 Bad Request", "bad upgrade request: malformed HTTP"},
        refusal{"over_max_request_bytes",
                replaced("Origin: ", "X-Padding: " + std::string(8192, 'p') + "\r\nOrigin: "),
                "HTTP/1.1 431 Request Header Fields Too Large",
                "bad upgrade request: over 8192 bytes"}),
    [](const testing::TestParamInfo<refusal>& p) { return p.param.name; });

TEST(websocket_handshake, version_refusal_names_the_version_served) {
  websocket_server ws(options());
  std::string mqtt;
  EXPECT_FALSE(ws.feed(bytes(replaced("Version: 13", "Version: 8")), mqtt));
  EXPECT_NE(ws.take_output().find("\r\nSec-WebSocket-Version: 13\r\n"), std::string::npos);
}

TEST(websocket_handshake, over_long_request_is_refused_when_the_limit_is_reached_unfinished) {
  // Nothing past the limit is parsed: an endless header stream is cut at max_request_bytes.
  websocket_options o = options();
  o.max_request_bytes = 64;
  websocket_server ws(o);
  std::string mqtt;
  EXPECT_TRUE(ws.feed(bytes(paho_request.substr(0, 63)), mqtt));
  EXPECT_FALSE(ws.feed(bytes(paho_request.substr(63, 1)), mqtt));
  EXPECT_EQ(ws.close_reason(), "bad upgrade request: over 64 bytes");
  EXPECT_EQ(ws.take_output().substr(0, 12), "HTTP/1.1 431");
}

TEST(websocket_handshake, request_of_exactly_max_request_bytes_is_accepted) {
  websocket_options o = options();
  o.max_request_bytes = paho_request.size();
  websocket_server ws(o);
  std::string mqtt;
  std::string wire(paho_request);
  wire += encode({.payload = pingreq});
  EXPECT_TRUE(ws.feed(bytes(wire), mqtt));
  EXPECT_TRUE(ws.open());
  EXPECT_EQ(mqtt, pingreq) << "frames after the request do not count toward its limit";
}

TEST(websocket_handshake, configured_path_is_served) {
  websocket_options o = options();
  o.path = "/edge/mqtt";
  websocket_server ws(o);
  std::string mqtt;
  EXPECT_TRUE(ws.feed(bytes(replaced("GET /mqtt ", "GET /edge/mqtt?x=1 ")), mqtt));
  EXPECT_TRUE(ws.open());
  websocket_server other(o);
  EXPECT_FALSE(other.feed(bytes(paho_request), mqtt));
  EXPECT_EQ(other.close_reason(), "bad upgrade request: unknown path");
}

// --- frames -------------------------------------------------------------------------------

TEST(websocket_frames, binary_frame_payload_is_mqtt) {
  auto ws = open_server();
  std::string mqtt;
  EXPECT_TRUE(ws.feed(bytes(encode({.payload = connect_packet})), mqtt));
  EXPECT_EQ(mqtt, connect_packet);
  EXPECT_TRUE(ws.take_output().empty());
}

TEST(websocket_frames, several_packets_in_one_frame) {
  auto ws = open_server();
  std::string mqtt;
  EXPECT_TRUE(ws.feed(bytes(encode({.payload = connect_packet + pingreq + pingreq})), mqtt));
  EXPECT_EQ(mqtt, connect_packet + pingreq + pingreq);
}

TEST(websocket_frames, one_packet_across_messages) {
  // [MQTT-6.0.0-2]: packets need not align with frames or messages.
  auto ws = open_server();
  std::string mqtt;
  const std::string wire = encode_all({{.payload = connect_packet.substr(0, 3)},
                                       {.payload = connect_packet.substr(3, 7)},
                                       {.payload = connect_packet.substr(10) + pingreq}});
  EXPECT_TRUE(ws.feed(bytes(wire), mqtt));
  EXPECT_EQ(mqtt, connect_packet + pingreq);
}

TEST(websocket_frames, fragmented_message_with_a_ping_between_fragments) {
  auto ws = open_server();
  std::string mqtt;
  const std::string wire =
      encode_all({{.opcode = op_binary, .payload = connect_packet.substr(0, 5), .fin = false},
                  {.opcode = op_ping, .payload = "are you there"},
                  {.opcode = op_continuation, .payload = connect_packet.substr(5, 4), .fin = false},
                  {.opcode = op_continuation, .payload = connect_packet.substr(9), .fin = true},
                  {.opcode = op_binary, .payload = pingreq}});
  EXPECT_TRUE(ws.feed(bytes(wire), mqtt));
  EXPECT_EQ(mqtt, connect_packet + pingreq);
  const auto out = decode(ws.take_output());
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].opcode, op_pong);
  EXPECT_EQ(out[0].payload, "are you there");
}

TEST(websocket_frames, every_split_of_the_stream_gives_the_same_bytes) {
  // 7-bit, 16-bit and 64-bit lengths, fragments, control frames, empty frames.
  std::string big(70000, '\0');
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>(i * 31 + 7);
  const std::string medium = big.substr(0, 300);
  const std::string wire = encode_all({{.payload = connect_packet},
                                       {.payload = medium},
                                       {.opcode = op_ping, .payload = ""},
                                       {.payload = "", .fin = false},
                                       {.opcode = op_continuation, .payload = big, .fin = false},
                                       {.opcode = op_pong, .payload = "unsolicited"},
                                       {.opcode = op_continuation, .payload = pingreq, .fin = true},
                                       {.opcode = op_ping, .payload = "x"}});
  const std::string expected_mqtt = connect_packet + medium + big + pingreq;

  for (const std::size_t max_piece : {std::size_t{1}, std::size_t{3}, std::size_t{7},
                                      std::size_t{4096}, std::size_t{5000}, wire.size()}) {
    auto ws = open_server();
    std::string mqtt;
    EXPECT_TRUE(feed_in_pieces(ws, wire, mqtt, max_piece)) << max_piece;
    EXPECT_EQ(mqtt, expected_mqtt) << max_piece;
    const auto out = decode(ws.take_output());
    ASSERT_EQ(out.size(), 2U) << max_piece;
    EXPECT_EQ(out[0].opcode, op_pong);
    EXPECT_EQ(out[0].payload, "");
    EXPECT_EQ(out[1].payload, "x");
  }
}

TEST(websocket_frames, ping_gets_a_pong_with_its_payload) {
  auto ws = open_server();
  std::string mqtt;
  const std::string payload(125, 'p');
  EXPECT_TRUE(ws.feed(bytes(encode({.opcode = op_ping, .payload = payload})), mqtt));
  const auto out = decode(ws.take_output());
  ASSERT_EQ(out.size(), 1U);
  EXPECT_TRUE(out[0].fin);
  EXPECT_EQ(out[0].opcode, op_pong);
  EXPECT_EQ(out[0].payload, payload);
  EXPECT_TRUE(mqtt.empty());
}

TEST(websocket_frames, close_is_echoed_and_ends_the_connection) {
  auto ws = open_server();
  std::string mqtt;
  const std::string wire = encode_all({{.payload = pingreq},
                                       {.opcode = op_close, .payload = "\x03\xe8going away"},
                                       {.payload = pingreq}});
  EXPECT_FALSE(ws.feed(bytes(wire), mqtt));
  EXPECT_TRUE(ws.closed());
  EXPECT_EQ(ws.close_reason(), "close frame received");
  EXPECT_EQ(mqtt, pingreq) << "bytes before the close are delivered, bytes after it are not";
  const auto out = decode(ws.take_output());
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].opcode, op_close);
  EXPECT_EQ(out[0].payload, "\x03\xe8");
  EXPECT_FALSE(ws.feed(bytes(encode({.payload = pingreq})), mqtt));
  EXPECT_EQ(mqtt, pingreq);
  std::string wire_out;
  ws.send(bytes(pingreq), wire_out);
  EXPECT_TRUE(wire_out.empty()) << "nothing is sent after the close";
}

TEST(websocket_frames, empty_close_is_echoed_empty) {
  auto ws = open_server();
  std::string mqtt;
  EXPECT_FALSE(ws.feed(bytes(encode({.opcode = op_close})), mqtt));
  EXPECT_EQ(ws.take_output(), "\x88\x00"s);
}

struct frame_failure {
  std::string name;
  std::vector<client_frame> frames;
  std::uint16_t code;
  std::string reason;
  std::size_t max_buffered = 1 << 20;
  std::string delivered{};  // MQTT bytes of `frames` delivered before the fault
};

void PrintTo(const frame_failure& f, std::ostream* os) {
  *os << f.name;
}

class websocket_frame_failure : public testing::TestWithParam<frame_failure> {};

TEST_P(websocket_frame_failure, closes_with_its_code_and_reason) {
  const frame_failure& c = GetParam();
  auto ws = open_server(c.max_buffered);
  std::string mqtt;
  // A good frame first: what came before the fault is still delivered.
  std::string wire = encode({.payload = pingreq});
  wire += encode_all(c.frames);
  wire += encode({.payload = pingreq});
  EXPECT_FALSE(ws.feed(bytes(wire), mqtt));
  EXPECT_TRUE(ws.closed());
  EXPECT_EQ(ws.close_reason().substr(0, c.reason.size()), c.reason);
  EXPECT_EQ(mqtt, pingreq + c.delivered);
  const auto out = decode(ws.take_output());
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].opcode, op_close);
  EXPECT_EQ(close_code(out[0]), c.code);
  EXPECT_EQ(out[0].payload.substr(2), ws.close_reason().substr(0, 123));
}

INSTANTIATE_TEST_SUITE_P(
    websocket_frames, websocket_frame_failure,
    testing::Values(
        frame_failure{
            "unmasked", {{.payload = pingreq, .masked = false}}, 1002, "client frame not masked"},
        frame_failure{"text", {{.opcode = op_text, .payload = "hello"}}, 1003, "text frame"},
        frame_failure{"text_fragment_start",
                      {{.opcode = op_text, .payload = "he", .fin = false}},
                      1003,
                      "text frame"},
        frame_failure{
            "oversize", {{.payload = std::string(101, 'x')}}, 1009, "frame too large", 100},
        frame_failure{"oversize_continuation",
                      {{.payload = "ok", .fin = false},
                       {.opcode = op_continuation, .payload = std::string(101, 'x')}},
                      1009,
                      "frame too large",
                      100,
                      "ok"},
        frame_failure{"control_over_125",
                      {{.opcode = op_ping, .payload = std::string(126, 'p')}},
                      1002,
                      "bad frame header"},
        frame_failure{"fragmented_ping",
                      {{.opcode = op_ping, .payload = "p", .fin = false}},
                      1002,
                      "bad frame header"},
        frame_failure{"reserved_bit", {{.payload = pingreq, .rsv = 4}}, 1002, "reserved bits set"},
        frame_failure{
            "reserved_opcode", {{.opcode = 0x3, .payload = "x"}}, 1002, "reserved opcode"},
        frame_failure{"reserved_control_opcode", {{.opcode = 0xb}}, 1002, "reserved opcode"},
        frame_failure{"continuation_first",
                      {{.opcode = op_continuation, .payload = "x"}},
                      1002,
                      "continuation frame without a message"},
        frame_failure{"binary_inside_fragmented",
                      {{.payload = "a", .fin = false}, {.payload = "b"}},
                      1002,
                      "new message inside a fragmented one",
                      1 << 20,
                      "a"},
        frame_failure{"close_one_byte",
                      {{.opcode = op_close, .payload = "\x03"}},
                      1002,
                      "close frame with a 1-byte payload"},
        frame_failure{"close_reserved_code",
                      {{.opcode = op_close, .payload = "\x03\xed"}},
                      1002,
                      "close frame with an invalid status code"}),
    [](const testing::TestParamInfo<frame_failure>& p) { return p.param.name; });

TEST(websocket_frames, length_not_in_its_shortest_form_is_a_protocol_error) {
  // RFC 6455 5.2: a 5-byte payload announced with the 16-bit form.
  auto ws = open_server();
  std::string wire = "\x82\xfe\x00\x05\x00\x00\x00\x00hello"s;
  std::string mqtt;
  EXPECT_FALSE(ws.feed(bytes(wire), mqtt));
  EXPECT_EQ(ws.close_reason().substr(0, 16), "bad frame header");
  EXPECT_TRUE(mqtt.empty());
  const auto out = decode(ws.take_output());
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(close_code(out[0]), 1002);
}

TEST(websocket_frames, frame_at_the_limit_is_accepted) {
  auto ws = open_server(100);
  std::string mqtt;
  EXPECT_TRUE(ws.feed(bytes(encode({.payload = std::string(100, 'x')})), mqtt));
  EXPECT_EQ(mqtt.size(), 100U);
}

TEST(websocket_frames, oversize_frame_is_refused_before_its_payload_arrives) {
  // A header announcing 1 GiB and one payload byte: closed, nothing held or delivered.
  auto ws = open_server(100);
  std::string wire = "\x82\xff"s;
  for (const int b : {0, 0, 0, 0, 0x40, 0, 0, 0})
    wire += static_cast<char>(b);
  wire += "\x01\x02\x03\x04\x05"s;
  std::string mqtt;
  EXPECT_FALSE(ws.feed(bytes(wire), mqtt));
  EXPECT_EQ(ws.close_reason(), "frame too large");
  EXPECT_TRUE(mqtt.empty());
}

TEST(websocket_frames, fragmented_message_longer_than_the_frame_limit_streams_through) {
  // Fragments are never collected, so only each frame is bounded, not the message.
  auto ws = open_server(100);
  std::vector<client_frame> frames{{.payload = std::string(100, 'a'), .fin = false}};
  for (int i = 0; i < 20; ++i)
    frames.push_back({.opcode = op_continuation, .payload = std::string(100, 'b'), .fin = false});
  frames.push_back({.opcode = op_continuation, .payload = "c", .fin = true});
  std::string mqtt;
  EXPECT_TRUE(ws.feed(bytes(encode_all(frames)), mqtt));
  EXPECT_EQ(mqtt.size(), 2101U);
}

TEST(websocket_frames, send_wraps_mqtt_in_one_unmasked_binary_frame) {
  auto ws = open_server();
  std::string wire;
  ws.send(bytes("\x20\x02\x00\x00"s), wire);  // CONNACK
  EXPECT_EQ(wire, "\x82\x04\x20\x02\x00\x00"s);

  for (const std::size_t n : {std::size_t{125}, std::size_t{126}, std::size_t{65535},
                              std::size_t{65536}, std::size_t{200000}}) {
    const std::string payload(n, 'm');
    std::string out = "already queued";
    ws.send(bytes(payload), out);
    ASSERT_EQ(out.substr(0, 14), "already queued") << "send appends";
    const auto frames = decode(std::string_view(out).substr(14));
    ASSERT_EQ(frames.size(), 1U) << n;
    EXPECT_TRUE(frames[0].fin);
    EXPECT_EQ(frames[0].opcode, op_binary);
    EXPECT_EQ(frames[0].payload, payload) << n;
  }
  std::string none;
  ws.send({}, none);
  EXPECT_TRUE(none.empty());
}

TEST(websocket_frames, send_before_the_upgrade_writes_nothing) {
  websocket_server ws(options());
  std::string wire;
  ws.send(bytes(pingreq), wire);
  EXPECT_TRUE(wire.empty());
}

TEST(websocket_frames, moved_server_keeps_its_partial_frame) {
  auto ws = open_server();
  const std::string wire = encode({.payload = connect_packet});
  std::string mqtt;
  EXPECT_TRUE(ws.feed(bytes(std::string_view(wire).substr(0, 4)), mqtt));
  websocket_server moved(std::move(ws));
  EXPECT_TRUE(moved.feed(bytes(std::string_view(wire).substr(4)), mqtt));
  EXPECT_EQ(mqtt, connect_packet);
}

}  // namespace
}  // namespace ebus::mqtt::transport
