// parse_broker_url: every URL form edgecore's Paho Go client dials, read as Paho reads it
// (AddBroker defaults, url.Parse's user information and percent-decoding); the refused forms say
// why and what to write instead, and no message ever shows the password.

#include "mqtt/client/broker_url.hpp"

#include <string>
#include <string_view>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ebus::mqtt::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

/// Parses `url`, which must be accepted.
broker_url parse_ok(std::string_view url) {
  auto r = parse_broker_url(url);
  EXPECT_TRUE(r.has_value()) << url << ": " << (r ? std::string() : r.error());
  return r ? *r : broker_url{};
}

/// Parses `url`, which must be refused; returns the reason.
std::string parse_error(std::string_view url) {
  auto r = parse_broker_url(url);
  EXPECT_FALSE(r.has_value()) << url << " was accepted as host '" << (r ? r->host : "") << "' port "
                              << (r ? r->port : 0) << " path '" << (r ? r->path : "") << "'";
  return r ? std::string() : r.error();
}

TEST(broker_url, plain_schemes_default_to_port_1883) {
  for (const char* url : {"tcp://broker.local", "mqtt://broker.local", "tcp://broker.local/"}) {
    const auto u = parse_ok(url);
    EXPECT_EQ(u.transport, broker_transport::tcp) << url;
    EXPECT_EQ(u.host, "broker.local") << url;
    EXPECT_EQ(u.port, 1883) << url;
    EXPECT_FALSE(u.username) << url;
    EXPECT_FALSE(u.password) << url;
  }
}

TEST(broker_url, tls_schemes_default_to_port_8883) {
  for (const char* scheme : {"ssl", "tls", "tcps", "mqtts", "mqtt+ssl"}) {
    const auto u = parse_ok(std::string(scheme) + "://10.0.0.2");
    EXPECT_EQ(u.scheme, scheme);
    EXPECT_EQ(u.transport, broker_transport::tls) << scheme;
    EXPECT_EQ(u.host, "10.0.0.2") << scheme;
    EXPECT_EQ(u.port, 8883) << scheme;
  }
}

TEST(broker_url, explicit_ports_and_ipv6_literals) {
  auto u = parse_ok("tcp://127.0.0.1:1884");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 1884);
  u = parse_ok("mqtts://[fe80::1]");
  EXPECT_EQ(u.host, "fe80::1");
  EXPECT_EQ(u.port, 8883);
  u = parse_ok("tcp://[::1]:65535");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 65535);
}

TEST(broker_url, scheme_is_case_insensitive_as_in_go) {
  const auto u = parse_ok("SSL://Broker:8884");
  EXPECT_EQ(u.scheme, "ssl");
  EXPECT_EQ(u.transport, broker_transport::tls);
  EXPECT_EQ(u.host, "Broker");
  EXPECT_EQ(u.port, 8884);
}

TEST(broker_url, without_a_scheme_it_is_tcp_as_paho_add_broker_makes_it) {
  auto u = parse_ok("10.0.0.2:1884");
  EXPECT_EQ(u.scheme, "tcp");
  EXPECT_EQ(u.transport, broker_transport::tcp);
  EXPECT_EQ(u.host, "10.0.0.2");
  EXPECT_EQ(u.port, 1884);
  u = parse_ok(":1885");  // AddBroker puts 127.0.0.1 in front
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 1885);
  u = parse_ok("broker");
  EXPECT_EQ(u.host, "broker");
  EXPECT_EQ(u.port, 1883);
}

TEST(broker_url, unix_socket_with_an_absolute_path) {
  // url.Parse("unix:///var/run/mosquitto.sock"): empty host, path "/var/run/mosquitto.sock".
  const auto u = parse_ok("unix:///var/run/mosquitto.sock");
  EXPECT_EQ(u.scheme, "unix");
  EXPECT_EQ(u.transport, broker_transport::unix_socket);
  EXPECT_EQ(u.path, "/var/run/mosquitto.sock");
  EXPECT_EQ(u.host, "");
  EXPECT_EQ(u.port, 0);
}

TEST(broker_url, unix_socket_path_is_percent_decoded) {
  EXPECT_EQ(parse_ok("unix:///run/my%20broker/mqtt.sock").path, "/run/my broker/mqtt.sock");
  EXPECT_THAT(parse_error("unix:///run/x%2.sock"), HasSubstr("invalid percent-encoding"));
  EXPECT_THAT(parse_error("unix:///run/x%00.sock"), HasSubstr("NUL"));
}

TEST(broker_url, unix_socket_refusals_say_what_to_write) {
  // Paho would dial these relative to edgecore's working directory, or drop the path.
  EXPECT_THAT(parse_error("unix://mosquitto.sock"),
              HasSubstr("the socket path 'mosquitto.sock' in 'unix://mosquitto.sock' is relative; "
                        "write the absolute path after three slashes, e.g. unix:///"));
  EXPECT_THAT(parse_error("unix://var/run/mosquitto.sock"),
              HasSubstr("unexpected host 'var' in 'unix://var/run/mosquitto.sock': a socket path "
                        "follows three slashes"));
  EXPECT_THAT(parse_error("unix://"), HasSubstr("missing socket path in 'unix://'"));
  EXPECT_THAT(parse_error("unix:///"), HasSubstr("missing socket path"));
  EXPECT_THAT(parse_error("unix:///run/mqtt.sock?x=1"), HasSubstr("unexpected query or fragment"));
  EXPECT_THAT(parse_error("unix:///run/mqtt.sock#x"), HasSubstr("unexpected query or fragment"));
}

TEST(broker_url, unix_socket_path_must_fit_sockaddr_un) {
  const std::string longest = "/" + std::string(106, 's');  // 107 bytes and the NUL: 108
  EXPECT_EQ(parse_ok("unix://" + longest).path, longest);
  EXPECT_THAT(parse_error("unix://" + longest + "s"),
              HasSubstr("is 108 bytes long; a Unix socket path must be shorter than 108 bytes"));
}

TEST(broker_url, user_information_is_percent_decoded) {
  const auto u = parse_ok("tcp://edge%40site:p%3Ass%2Fw%25rd@broker:1883");
  EXPECT_EQ(u.host, "broker");
  EXPECT_EQ(u.port, 1883);
  ASSERT_TRUE(u.username);
  ASSERT_TRUE(u.password);
  EXPECT_EQ(*u.username, "edge@site");
  EXPECT_EQ(*u.password, "p:ss/w%rd");
}

TEST(broker_url, user_information_splits_at_the_first_colon_and_the_last_at_sign) {
  const auto u = parse_ok("ssl://edge:a:b@c@broker");
  EXPECT_EQ(*u.username, "edge");
  EXPECT_EQ(*u.password, "a:b@c");
  EXPECT_EQ(u.host, "broker");
  EXPECT_EQ(u.port, 8883);
}

TEST(broker_url, user_information_forms) {
  auto u = parse_ok("tcp://edge@broker");
  EXPECT_EQ(u.username, "edge");
  EXPECT_FALSE(u.password);
  u = parse_ok("tcp://edge:@broker");
  EXPECT_EQ(u.username, "edge");
  EXPECT_EQ(u.password, "");
  u = parse_ok("tcp://@broker");
  EXPECT_EQ(u.username, "");
  EXPECT_FALSE(u.password);
  u = parse_ok("unix://edge:pw@/run/mqtt.sock");
  EXPECT_EQ(u.username, "edge");
  EXPECT_EQ(u.password, "pw");
  EXPECT_EQ(u.path, "/run/mqtt.sock");
  u = parse_ok("edge:pw@10.0.0.2:1884");  // no scheme: AddBroker adds tcp://
  EXPECT_EQ(u.username, "edge");
  EXPECT_EQ(u.password, "pw");
  EXPECT_EQ(u.host, "10.0.0.2");
}

TEST(broker_url, user_information_refusals_do_not_show_the_password) {
  auto e = parse_error("tcp://edge:se cret@broker");
  EXPECT_THAT(e, HasSubstr("holds a character that must be percent-encoded"));
  EXPECT_THAT(e, HasSubstr("'tcp://edge:***@broker'"));
  e = parse_error("tcp://edge:sec%zzret@broker");
  EXPECT_THAT(e, HasSubstr("invalid percent-encoding in the user information of "
                           "'tcp://edge:***@broker'"));
  EXPECT_THAT(e, Not(HasSubstr("sec")));
  e = parse_error("tcp://edge:sec%00ret@broker");
  EXPECT_THAT(e, HasSubstr("NUL"));
  EXPECT_THAT(e, Not(HasSubstr("sec")));
}

TEST(broker_url, unencoded_slash_or_hash_in_a_password_is_refused_without_showing_it) {
  // url.Parse ends the authority at the '/': "edge:Xq7" would be read as host "edge", port "Xq7".
  for (const char* url : {"tcp://edge:Xq7/Zw9@broker:1883", "tcp://edge:Xq7#Zw9@broker",
                          "tcp://edge:Xq7?Zw9@broker", "edge:Xq7/Zw9@broker"}) {
    const auto e = parse_error(url);
    EXPECT_THAT(e, Not(HasSubstr("Xq7"))) << url;
    EXPECT_THAT(e, Not(HasSubstr("Zw9"))) << url;
    EXPECT_THAT(e, HasSubstr("edge:***@broker")) << url;
    EXPECT_THAT(e, HasSubstr("must be percent-encoded: %2F, %3F, %23")) << url;
  }
}

TEST(broker_url, an_error_after_the_user_information_masks_the_password) {
  const auto e = parse_error("tcp://edge:hunter2@broker:0");
  EXPECT_EQ(e, "invalid port '0' in 'tcp://edge:***@broker:0' (must be 1 to 65535)");
}

TEST(broker_url, websocket_is_refused_with_the_same_broker_over_mqtt) {
  EXPECT_EQ(parse_error("ws://broker:8080/mqtt"),
            "unsupported scheme 'ws': the MQTT client does not speak WebSocket (libmosquitto has "
            "no WebSocket transport); connect to the same broker's MQTT listener instead, e.g. "
            "tcp://broker:1883 (mosquitto and EMQX serve MQTT beside WebSocket)");
  EXPECT_THAT(parse_error("wss://u:secret@[fd00::1]:8084/mqtt"),
              HasSubstr("connect to the same broker's MQTT over TLS listener instead, e.g. "
                        "ssl://[fd00::1]:8883"));
  EXPECT_THAT(parse_error("wss://u:secret@[fd00::1]:8084/mqtt"), Not(HasSubstr("secret")));
  EXPECT_THAT(parse_error("WS://b"), HasSubstr("unsupported scheme 'WS'"));
}

TEST(broker_url, other_schemes_are_refused_with_the_supported_ones) {
  EXPECT_EQ(parse_error("http://b"),
            "unsupported scheme 'http': use tcp://, mqtt://, ssl://, tls://, tcps://, mqtts://, "
            "mqtt+ssl:// or unix://");
  // AddBroker reads the leading ':' as an empty host: "127.0.0.1://b".
  EXPECT_THAT(parse_error("://b"), HasSubstr("'://b' is not a URL of the form tcp://host:port"));
  EXPECT_THAT(parse_error("1tcp://b"), HasSubstr("is not a URL of the form tcp://host:port"));
}

TEST(broker_url, tcp_refusals_keep_their_texts) {
  EXPECT_EQ(parse_error("tcp://"), "missing host in 'tcp://'");
  EXPECT_EQ(parse_error("tcp://b:0"), "invalid port '0' in 'tcp://b:0' (must be 1 to 65535)");
  EXPECT_EQ(parse_error("tcp://b:"), "invalid port '' in 'tcp://b:' (must be 1 to 65535)");
  EXPECT_THAT(parse_error("tcp://b:port"), HasSubstr("invalid port 'port'"));
  EXPECT_THAT(parse_error("tcp://b:65536"), HasSubstr("invalid port '65536'"));
  EXPECT_THAT(parse_error("tcp://b:-1"), HasSubstr("invalid port '-1'"));
  EXPECT_EQ(parse_error("tcp://::1"),
            "IPv6 address without brackets in 'tcp://::1' (write tcp://[::1]:1883)");
  EXPECT_THAT(parse_error("tcp://[::1"), HasSubstr("unclosed '['"));
  EXPECT_THAT(parse_error("tcp://[::1]x"), HasSubstr("unexpected text after ']'"));
  EXPECT_THAT(parse_error("tcp://:1883"), HasSubstr("missing host"));
  EXPECT_THAT(parse_error("tcp://b:1883/mqtt"), HasSubstr("unexpected path, query or fragment"));
  EXPECT_THAT(parse_error("tcp://b:1883?x=1"), HasSubstr("unexpected path, query or fragment"));
  EXPECT_THAT(parse_error("tcp://b:1883#x"), HasSubstr("unexpected path, query or fragment"));
  EXPECT_THAT(parse_error("tcp://b c:1883"), HasSubstr("invalid host 'b c'"));
  EXPECT_THAT(parse_error("tcp://[fe80::1%25eth0]:1883"), HasSubstr("invalid host"));
}

TEST(broker_url, empty_and_control_characters) {
  EXPECT_THAT(parse_error(""), HasSubstr("the URL is empty"));
  EXPECT_EQ(parse_error("tcp://b\n:1883"), "the URL holds a control character");
}

TEST(broker_url, redact_masks_only_the_password) {
  EXPECT_EQ(redact_url("tcp://edge:s3cret@broker:1883"), "tcp://edge:***@broker:1883");
  EXPECT_EQ(redact_url("tcp://edge@broker:1883"), "tcp://edge@broker:1883");
  EXPECT_EQ(redact_url("tcp://broker:1883"), "tcp://broker:1883");
  EXPECT_EQ(redact_url("tcp://edge:@broker"), "tcp://edge:@broker");
  EXPECT_EQ(redact_url("edge:pw@broker:1883"), "edge:***@broker:1883");
  EXPECT_EQ(redact_url("tcp://edge:a:b@c@broker"), "tcp://edge:***@broker");
  EXPECT_EQ(redact_url("unix:///run/a@b.sock"), "unix:///run/a@b.sock");
  // An '@' in the path of a socket that has user information stays in the path.
  EXPECT_EQ(redact_url("unix://u:p%40ss@/run/a@b.sock"), "unix://u:***@/run/a@b.sock");
  // Not a valid URL, yet the part that may be a password is masked.
  EXPECT_EQ(redact_url("tcp://edge:pa/ss@broker"), "tcp://edge:***@broker");
  EXPECT_EQ(redact_url("x:y://pw@host"), "x:***@host");
}

TEST(broker_url, url_credentials_override_the_configured_ones_as_in_paho) {
  const auto with = [](std::string_view url) {
    return credentials_for(parse_ok(url), "config-user", "config-pass");
  };
  auto c = with("tcp://broker");
  EXPECT_EQ(c.username, "config-user");
  EXPECT_EQ(c.password, "config-pass");
  c = with("tcp://url-user:url-pass@broker");
  EXPECT_EQ(c.username, "url-user");
  EXPECT_EQ(c.password, "url-pass");
  // A user name alone keeps the configured password (Paho replaces it only when the URL has one).
  c = with("tcp://url-user@broker");
  EXPECT_EQ(c.username, "url-user");
  EXPECT_EQ(c.password, "config-pass");
  c = with("tcp://url-user:@broker");
  EXPECT_EQ(c.username, "url-user");
  EXPECT_EQ(c.password, "");
  c = with("tcp://@broker");  // empty user information: no credentials are sent
  EXPECT_EQ(c.username, "");
  EXPECT_EQ(c.password, "config-pass");
}

}  // namespace
}  // namespace ebus::mqtt::client
