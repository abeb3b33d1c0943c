#pragma once
// The external broker's URL (KubeEdge's mqttServerExternal), read the way edgecore's Paho Go client
// reads it (ClientOptions.AddBroker, Go's url.Parse, then openConnection picks the transport), so
// that an edgecore.yaml that works with KubeEdge works here. Pure parsing, the one place that reads
// this URL: config validation and external_broker both call it.
//
//   tcp://host:port, mqtt://            MQTT over TCP; the port defaults to 1883
//   ssl://, tls://, tcps://, mqtts://,  MQTT over TLS; the port defaults to 8883
//   mqtt+ssl://
//   unix:///path/to/socket              a Unix domain socket: nothing to resolve, no TLS
//   host:port, :port                    no scheme: tcp://, and 127.0.0.1 for ":port" (AddBroker)
//   user:password@ before the host      percent-decoded; overrides mqttUsername/mqttPassword
//
// Refused, with the reason and what to write instead: ws:// and wss:// (libmosquitto's client has
// no WebSocket transport), a relative or host-qualified unix:// path, paths, queries and fragments
// of TCP URLs, bad ports, IPv6 addresses without brackets, an empty host.
//
// The password never appears in an error message, nor in redact_url()'s output.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/expected.hpp"

namespace ebus::mqtt::client {

/// How the client reaches the broker.
enum class broker_transport : std::uint8_t {
  tcp,          ///< tcp://, mqtt://
  tls,          ///< ssl://, tls://, tcps://, mqtts://, mqtt+ssl://
  unix_socket,  ///< unix://
};

struct broker_url {
  std::string scheme;  ///< lower case, as url.Parse leaves it; "tcp" for a URL without one
  broker_transport transport = broker_transport::tcp;
  std::string host;        ///< name or address, IPv6 brackets removed; empty for unix://
  std::uint16_t port = 0;  ///< 1 to 65535 (the default when left out); 0 for unix://
  std::string path;        ///< unix://: the absolute socket path, percent-decoded
  /// Present when the URL has user information (`user@`, `user:password@`, even `@`).
  std::optional<std::string> username;
  /// Present when the user information has a ':'.
  std::optional<std::string> password;
};

/// Parses `url` as described above. The error names what is wrong and how to write it; it quotes
/// the URL with its password masked.
[[nodiscard]] expected<broker_url, std::string> parse_broker_url(std::string_view url);

/// `url` with the password of its user information replaced by "***", for logs and messages:
/// "tcp://edge:***@broker:1883". Works on any text, valid URL or not; masks generously (from the
/// first ':' after the scheme to the last '@') so that a password holding an unencoded '/', '?'
/// or '#' is masked too; only an '@' right before the path of "unix://user:pw@/path" ends the
/// mask early. A socket path holding ':' and '@' may thus be masked in part. Text without '@'
/// comes back unchanged.
[[nodiscard]] std::string redact_url(std::string_view url);

struct broker_credentials {
  std::string username;  ///< sent only when non-empty
  std::string password;  ///< sent only when username and password are non-empty
};

/// What the clients send, as Paho's newConnectMsgFromOptions decides: the URL's user name
/// replaces `username` whenever the URL has user information, and its password replaces
/// `password` when the URL has one.
[[nodiscard]] broker_credentials credentials_for(const broker_url& url, std::string username,
                                                 std::string password);

}  // namespace ebus::mqtt::client
