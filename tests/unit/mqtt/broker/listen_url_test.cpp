// parse_listen_url: the plain, TLS and WebSocket schemes with IPv4, host names and bracketed IPv6
// literals; everything else is refused with a reason that names the problem.

#include "mqtt/broker/listen_url.hpp"

#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace ebus::mqtt::broker {
namespace {

/// Parses `url`, which must be accepted.
listen_address parse_ok(std::string_view url) {
  auto r = parse_listen_url(url);
  EXPECT_TRUE(r.has_value()) << url << ": " << (r ? std::string() : r.error());
  return r ? *r : listen_address{};
}

/// Parses `url`, which must be refused; returns the reason.
std::string parse_error(std::string_view url) {
  auto r = parse_listen_url(url);
  EXPECT_FALSE(r.has_value()) << url << " was accepted as host '" << (r ? r->host : "") << "' port "
                              << (r ? r->port : 0);
  return r ? std::string() : r.error();
}

TEST(listen_url, tcp_with_an_ipv4_address) {
  const auto a = parse_ok("tcp://127.0.0.1:1884");
  EXPECT_EQ(a.scheme, "tcp");
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 1884);
}

TEST(listen_url, mqtt_with_a_host_name) {
  const auto a = parse_ok("mqtt://broker.local:1883");
  EXPECT_EQ(a.scheme, "mqtt");
  EXPECT_EQ(a.host, "broker.local");
  EXPECT_EQ(a.port, 1883);
}

TEST(listen_url, bracketed_ipv6_literal_loses_its_brackets) {
  const auto a = parse_ok("tcp://[::1]:1884");
  EXPECT_EQ(a.scheme, "tcp");
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 1884);

  const auto b = parse_ok("mqtt://[fe80::1:2]:8883");
  EXPECT_EQ(b.host, "fe80::1:2");
  EXPECT_EQ(b.port, 8883);
}

TEST(listen_url, wildcard_address_and_the_highest_port) {
  const auto a = parse_ok("tcp://0.0.0.0:65535");
  EXPECT_EQ(a.host, "0.0.0.0");
  EXPECT_EQ(a.port, 65535);
}

TEST(listen_url, a_single_trailing_slash_is_not_a_path) {
  const auto a = parse_ok("tcp://localhost:1884/");
  EXPECT_EQ(a.host, "localhost");
  EXPECT_EQ(a.port, 1884);
}

TEST(listen_url, each_scheme_gives_its_transport_and_keeps_its_name) {
  const struct {
    const char* scheme;
    listen_transport transport;
  } cases[] = {
      {"tcp", listen_transport::tcp},   {"mqtt", listen_transport::tcp},
      {"tls", listen_transport::tls},   {"ssl", listen_transport::tls},
      {"mqtts", listen_transport::tls}, {"ws", listen_transport::ws},
      {"wss", listen_transport::wss},
  };
  for (const auto& c : cases) {
    const auto a = parse_ok(std::string(c.scheme) + "://0.0.0.0:8883");
    EXPECT_EQ(a.scheme, c.scheme);
    EXPECT_EQ(a.transport, c.transport) << c.scheme;
    EXPECT_EQ(a.host, "0.0.0.0");
    EXPECT_EQ(a.port, 8883);
  }
}

TEST(listen_url, tls_and_websocket_predicates) {
  EXPECT_FALSE(transport::uses_tls(listen_transport::tcp));
  EXPECT_TRUE(transport::uses_tls(listen_transport::tls));
  EXPECT_FALSE(transport::uses_tls(listen_transport::ws));
  EXPECT_TRUE(transport::uses_tls(listen_transport::wss));
  EXPECT_FALSE(transport::uses_websocket(listen_transport::tcp));
  EXPECT_FALSE(transport::uses_websocket(listen_transport::tls));
  EXPECT_TRUE(transport::uses_websocket(listen_transport::ws));
  EXPECT_TRUE(transport::uses_websocket(listen_transport::wss));
}

TEST(listen_url, websocket_with_an_ipv6_literal) {
  const auto a = parse_ok("wss://[::1]:8443/");
  EXPECT_EQ(a.transport, listen_transport::wss);
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 8443);
}

TEST(listen_url, other_schemes_are_refused_with_the_scheme_named) {
  for (const std::string scheme : {"http", "https", "udp", "TCP", "Ws", "quic", ""}) {
    const auto reason = parse_error(scheme + "://127.0.0.1:1884");
    EXPECT_NE(reason.find("unsupported scheme '" + scheme + "'"), std::string::npos) << reason;
  }
}

TEST(listen_url, a_websocket_path_in_the_url_points_to_the_path_key) {
  for (const char* url : {"ws://127.0.0.1:8080/mqtt", "wss://[::1]:8443/mqtt/x"}) {
    const auto reason = parse_error(url);
    EXPECT_NE(reason.find("unexpected path '/mqtt"), std::string::npos) << reason;
    EXPECT_NE(reason.find("`path` key"), std::string::npos) << reason;
  }
}

TEST(listen_url, query_and_fragment_are_refused) {
  for (const char* url : {"tcp://127.0.0.1:1884?x=1", "ws://127.0.0.1:8080/#top"}) {
    const auto reason = parse_error(url);
    EXPECT_NE(reason.find("query or fragment"), std::string::npos) << url << ": " << reason;
  }
}

TEST(listen_url, user_information_is_refused_without_echoing_it) {
  const auto reason = parse_error("tcp://user:secret@127.0.0.1:1884");
  EXPECT_EQ(reason, "user information in the URL is not supported");
}

TEST(listen_url, host_with_spaces_is_refused) {
  const auto reason = parse_error("tcp://my host:1884");
  EXPECT_NE(reason.find("invalid host 'my host'"), std::string::npos) << reason;
}

TEST(listen_url, port_0_is_accepted_for_a_port_the_kernel_picks) {
  EXPECT_EQ(parse_ok("tcp://127.0.0.1:0").port, 0);
}

TEST(listen_url, text_without_a_scheme_is_refused) {
  EXPECT_FALSE(parse_error("127.0.0.1:1884").empty());
  EXPECT_FALSE(parse_error("").empty());
  EXPECT_FALSE(parse_error("tcp:/127.0.0.1:1884").empty());
}

TEST(listen_url, missing_port_is_refused) {
  for (const char* url : {"tcp://127.0.0.1", "tcp://broker.local",
                          "tcp://127.0.0.1:", "tcp://[::1]", "tcp://[::1]:", "tcp://127.0.0.1:/"}) {
    const auto reason = parse_error(url);
    EXPECT_NE(reason.find("port"), std::string::npos) << url << ": " << reason;
  }
}

TEST(listen_url, invalid_port_is_refused) {
  for (const char* url :
       {"tcp://127.0.0.1:65536", "tcp://127.0.0.1:99999999999", "tcp://127.0.0.1:-1",
        "tcp://127.0.0.1:+1", "tcp://127.0.0.1:http", "tcp://127.0.0.1:18 84",
        "tcp://127.0.0.1:1884x", "tcp://[::1]x:1884", "tcp://[::1]1884"}) {
    const auto reason = parse_error(url);
    EXPECT_NE(reason.find("port"), std::string::npos) << url << ": " << reason;
  }
}

TEST(listen_url, paths_are_refused) {
  for (const char* url :
       {"tcp://127.0.0.1:1884/mqtt", "mqtt://broker.local:1883//", "tcp://[::1]:1884/x"}) {
    const auto reason = parse_error(url);
    EXPECT_NE(reason.find("path"), std::string::npos) << url << ": " << reason;
  }
}

TEST(listen_url, missing_host_is_refused) {
  for (const char* url : {"tcp://:1884", "tcp://[]:1884"}) {
    const auto reason = parse_error(url);
    EXPECT_NE(reason.find("host"), std::string::npos) << url << ": " << reason;
  }
}

TEST(listen_url, unclosed_bracket_is_refused) {
  const auto reason = parse_error("tcp://[::1:1884");
  EXPECT_NE(reason.find("'['"), std::string::npos) << reason;
}

TEST(listen_url, the_reason_quotes_the_url) {
  const auto reason = parse_error("tcp://127.0.0.1:70000");
  EXPECT_NE(reason.find("'tcp://127.0.0.1:70000'"), std::string::npos) << reason;
}

TEST(listen_url, unbracketed_ipv6_literal_without_a_port_is_refused) {
  // Taking the port after the last ':' would read "tcp://::1" as host ":" port 1: a host with
  // ':' outside brackets is refused (RFC 3986 section 3.2.2 requires brackets for IPv6).
  parse_error("tcp://::1");
  parse_error("tcp://fe80::1");
}

}  // namespace
}  // namespace ebus::mqtt::broker
