// The client side of MQTT over WebSocket against the server side: the client's request upgrades
// a websocket_server, the client's masked frames come out of the server as the same MQTT bytes,
// the server's frames unwrap to the same bytes, and a response other than a proper 101 is
// refused with its reason.

#include "mqtt/transport/websocket_client.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "mqtt/transport/transport_kind.hpp"
#include "mqtt/transport/websocket_server.hpp"

namespace ebus::mqtt::transport {
namespace {

using namespace std::string_literals;
using client = websocket_client;

// CONNECT, MQTT 3.1.1, clean session, keep-alive 60, client id "c".
const std::string connect_packet = "\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01\x63"s;

std::span<const char> bytes(std::string_view s) {
  return {s.data(), s.size()};
}

// Payloads around every length encoding (7-bit, 16-bit, 64-bit) and masking's 8-byte words.
std::vector<std::string> sample_payloads() {
  std::vector<std::string> out;
  for (const std::size_t size : {1, 7, 8, 9, 125, 126, 127, 65535, 65536, 70001}) {
    std::string p(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
      p[i] = static_cast<char>((i * 131 + size) & 0xff);
    out.push_back(std::move(p));
  }
  return out;
}

class websocket_client_test : public ::testing::Test {
 protected:
  // Upgrades `server_` with the client's request and checks the 101 with the client.
  void upgrade() {
    std::string mqtt;
    ASSERT_TRUE(server_.feed(bytes(client_.request()), mqtt));
    ASSERT_TRUE(server_.open()) << server_.close_reason();
    const std::string response = server_.take_output();
    const auto r = client_.check_upgrade(response);
    ASSERT_EQ(r.state, client::upgrade_state::accepted) << r.reason;
    EXPECT_EQ(r.head_bytes, response.size());
  }

  websocket_server server_{websocket_options{}};
  websocket_client client_{websocket_client_options{.host = "127.0.0.1:1883"}};
};

TEST_F(websocket_client_test, RequestUpgradesTheServerToMqtt) {
  upgrade();
  EXPECT_EQ(server_.subprotocol(), "mqtt");
  EXPECT_NE(client_.request().find("Host: 127.0.0.1:1883\r\n"), std::string::npos);
  EXPECT_EQ(client_.key().size(), 24U);  // base64 of 16 bytes
}

TEST_F(websocket_client_test, EveryClientHasItsOwnKey) {
  const websocket_client other{websocket_client_options{.host = "127.0.0.1:1883"}};
  EXPECT_NE(client_.key(), other.key());
}

TEST_F(websocket_client_test, ResponseHeadIsIncompleteUntilTheBlankLine) {
  std::string mqtt;
  ASSERT_TRUE(server_.feed(bytes(client_.request()), mqtt));
  std::string response = server_.take_output();
  for (std::size_t n = 0; n + 1 < response.size(); ++n) {
    EXPECT_EQ(client_.check_upgrade(std::string_view(response).substr(0, n)).state,
              client::upgrade_state::incomplete)
        << n;
  }
  // Frames in the same read as the head stay behind it.
  const std::size_t head = response.size();
  server_.send(bytes(connect_packet), response);
  const auto r = client_.check_upgrade(response);
  ASSERT_EQ(r.state, client::upgrade_state::accepted) << r.reason;
  EXPECT_EQ(r.head_bytes, head);
}

TEST_F(websocket_client_test, ClientFramesComeOutOfTheServerAsTheSameMqttBytes) {
  upgrade();
  std::string wire;
  std::string sent;
  for (const auto& p : sample_payloads()) {
    client_.frame(client::op_binary, p, wire);
    sent += p;
  }
  // In uneven pieces, so that frame headers and masks are split across reads.
  std::string mqtt;
  for (std::size_t at = 0; at < wire.size(); at += 1000) {
    ASSERT_TRUE(server_.feed(bytes(std::string_view(wire).substr(at, 1000)), mqtt))
        << server_.close_reason();
  }
  EXPECT_EQ(mqtt.size(), sent.size());
  EXPECT_TRUE(mqtt == sent);
  EXPECT_TRUE(server_.take_output().empty());
}

TEST_F(websocket_client_test, FramesAreMasked) {
  upgrade();
  std::string wire;
  client_.frame(client::op_binary, connect_packet, wire);
  ASSERT_EQ(wire.size(), 2 + 4 + connect_packet.size());
  EXPECT_EQ(static_cast<std::uint8_t>(wire[0]), 0x82);                          // FIN, binary
  EXPECT_EQ(static_cast<std::uint8_t>(wire[1]), 0x80 | connect_packet.size());  // masked
}

TEST_F(websocket_client_test, ServerFramesUnwrapToTheSameBytes) {
  upgrade();
  std::string wire;
  std::string sent;
  for (const auto& p : sample_payloads()) {
    server_.send(bytes(p), wire);
    sent += p;
  }
  // Grows the buffer a piece at a time, as a socket delivers it, taking whole frames only.
  std::string buffer;
  std::string got;
  std::string replies;
  for (std::size_t at = 0; at < wire.size(); at += 777) {
    buffer.append(wire, at, 777);
    const auto r = client_.unwrap(
        buffer, [&got](std::string_view mqtt) { got += mqtt; }, replies);
    ASSERT_EQ(r.state, client::unwrap_state::more) << r.reason;
    buffer.erase(0, r.consumed);
    if (r.next_frame_bytes != 0) {
      EXPECT_GT(r.next_frame_bytes, buffer.size());
    }
  }
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent);
  EXPECT_TRUE(replies.empty());
}

TEST_F(websocket_client_test, PingIsAnsweredWithAPongTheServerAccepts) {
  upgrade();
  const std::string ping = "\x89\x03"s + "abc";
  std::string replies;
  std::string got;
  const auto r = client_.unwrap(
      ping, [&got](std::string_view mqtt) { got += mqtt; }, replies);
  EXPECT_EQ(r.state, client::unwrap_state::more);
  EXPECT_EQ(r.consumed, ping.size());
  EXPECT_TRUE(got.empty());
  ASSERT_EQ(replies.size(), 2U + 4 + 3);
  EXPECT_EQ(static_cast<std::uint8_t>(replies[0]), 0x8a);
  std::string mqtt;
  EXPECT_TRUE(server_.feed(bytes(replies), mqtt)) << server_.close_reason();
  EXPECT_TRUE(mqtt.empty());
}

TEST_F(websocket_client_test, CloseFrameEndsTheConnectionAfterTheBytesBeforeIt) {
  upgrade();
  std::string wire;
  server_.send(bytes(connect_packet), wire);
  wire += "\x88\x02\x03\xe8"s;  // close, 1000
  wire += "\x82\x01x"s;         // nothing after a close counts
  std::string got;
  std::string replies;
  const auto r = client_.unwrap(
      wire, [&got](std::string_view mqtt) { got += mqtt; }, replies);
  EXPECT_EQ(r.state, client::unwrap_state::closed);
  EXPECT_EQ(r.consumed, wire.size() - 3);
  EXPECT_EQ(got, connect_packet);
}

TEST_F(websocket_client_test, FramesNoServerMaySendFailWithTheReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\x81\x01x"s, "text frame"},
      {"\x82\x81\x00\x00\x00\x00x"s, "masked frame"},
      {"\xc2\x01x"s, "reserved bits"},
      {"\x83\x01x"s, "reserved opcode 3"},
  };
  for (const auto& [frame, reason] : cases) {
    const std::string wire = "\x82\x01\x10"s + frame;
    std::string got;
    std::string replies;
    const auto r = client_.unwrap(
        wire, [&got](std::string_view mqtt) { got += mqtt; }, replies);
    EXPECT_EQ(r.state, client::unwrap_state::failed) << reason;
    EXPECT_NE(r.reason.find(reason), std::string::npos) << r.reason;
    EXPECT_EQ(got, "\x10");  // the frame before the bad one was handed on
  }
}

TEST(websocket_client, FrameOverTheLimitFailsBeforeItsPayloadArrives) {
  websocket_client c{websocket_client_options{.host = "h:1", .max_frame_payload = 1000}};
  std::string replies;
  const auto r = c.unwrap(
      "\x82\x7e\x03\xe9"s, [](std::string_view) {}, replies);  // 1001 bytes
  EXPECT_EQ(r.state, client::unwrap_state::failed);
  EXPECT_NE(r.reason.find("over 1000 bytes"), std::string::npos) << r.reason;
}

TEST_F(websocket_client_test, ServerRefusalIsRefusedWithItsStatusLine) {
  websocket_client elsewhere{websocket_client_options{.host = "127.0.0.1:1883", .path = "/x"}};
  std::string mqtt;
  EXPECT_FALSE(server_.feed(bytes(elsewhere.request()), mqtt));
  const auto r = elsewhere.check_upgrade(server_.take_output());
  EXPECT_EQ(r.state, client::upgrade_state::refused);
  EXPECT_EQ(r.reason, "WebSocket upgrade refused: HTTP/1.1 404 Not Found");
}

TEST_F(websocket_client_test, BadSwitchingProtocolsIsRefusedWithItsReason) {
  const std::string accept = websocket_accept_key(client_.key());
  const auto response = [&accept](std::string_view upgrade, std::string_view accept_value,
                                  std::string_view protocol) {
    std::string r =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: "s + std::string(upgrade) +
        "\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + std::string(accept_value) + "\r\n";
    if (!protocol.empty()) r += "Sec-WebSocket-Protocol: " + std::string(protocol) + "\r\n";
    return r + "\r\n";
  };
  const auto reason = [this](const std::string& r) { return client_.check_upgrade(r).reason; };
  EXPECT_EQ(client_.check_upgrade(response("WebSocket", accept, "mqtt")).state,
            client::upgrade_state::accepted);
  EXPECT_EQ(reason(response("websocket", "xyz=", "mqtt")),
            "WebSocket upgrade: sec-websocket-accept is 'xyz=', expected '" + accept + "'");
  EXPECT_EQ(reason(response("websocket", accept, "")),
            "WebSocket upgrade: sec-websocket-protocol is '(absent)', expected 'mqtt'");
  EXPECT_EQ(reason(response("websocket", accept, "mqttv3.1")),
            "WebSocket upgrade: sec-websocket-protocol is 'mqttv3.1', expected 'mqtt'");
  EXPECT_EQ(reason(response("h2c", accept, "mqtt")),
            "WebSocket upgrade: upgrade is 'h2c', expected 'websocket'");
  EXPECT_EQ(reason("HTTP/1.1 200 OK\r\n\r\n"), "WebSocket upgrade refused: HTTP/1.1 200 OK");
}

TEST(websocket_client, ResponseHeadOverTheLimitIsRefused) {
  websocket_client c{websocket_client_options{.host = "h:1", .max_response_bytes = 64}};
  const std::string head = "HTTP/1.1 101 Switching Protocols\r\nX-Padding: " + std::string(64, 'p');
  const auto r = c.check_upgrade(head);
  EXPECT_EQ(r.state, client::upgrade_state::refused);
  EXPECT_EQ(r.reason, "WebSocket upgrade: response header over 64 bytes");
  EXPECT_EQ(c.check_upgrade(head.substr(0, 63)).state, client::upgrade_state::incomplete);
}

TEST(http_header_value, NamesAreCaseInsensitiveAndValuesTrimmed) {
  const std::string head = "HTTP/1.1 101 x\r\nUpgrade: \t websocket \t\r\nX-Empty:\r\n";
  EXPECT_EQ(http_header_value(head, "upgrade"), "websocket");
  EXPECT_EQ(http_header_value(head, "x-empty"), "");
  EXPECT_EQ(http_header_value(head, "connection"), std::nullopt);
  EXPECT_EQ(ascii_lower("Sec-WebSocket-Accept"), "sec-websocket-accept");
}

TEST(transport_kind, NamesRoundTrip) {
  for (const auto kind :
       {transport_kind::tcp, transport_kind::tls, transport_kind::ws, transport_kind::wss}) {
    EXPECT_EQ(parse_transport_kind(name_of(kind)), kind);
  }
  EXPECT_EQ(parse_transport_kind("wss "), std::nullopt);
  EXPECT_EQ(parse_transport_kind(""), std::nullopt);
  EXPECT_TRUE(uses_tls(transport_kind::wss));
  EXPECT_FALSE(uses_tls(transport_kind::ws));
  EXPECT_TRUE(uses_websocket(transport_kind::ws));
  EXPECT_FALSE(uses_websocket(transport_kind::tls));
}

}  // namespace
}  // namespace ebus::mqtt::transport
