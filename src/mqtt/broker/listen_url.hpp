#pragma once
// Listen URLs of the embedded broker: scheme://host:port, KubeEdge's mqttServerInternal and the
// url of each entry of our `listeners`. Pure parsing, the one place that reads these URLs
// (config validation and the server both call it); the reason names what is wrong for config
// errors.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/expected.hpp"
#include "mqtt/transport/transport_kind.hpp"

namespace ebus::mqtt::broker {

/// What a listener speaks on its socket: tcp (tcp://, mqtt://), tls (tls://, ssl://, mqtts://),
/// ws (ws://), wss (wss://).
using listen_transport = transport::transport_kind;

struct listen_address {
  std::string scheme;  ///< as written: "tcp", "mqtt", "tls", "ssl", "mqtts", "ws" or "wss"
  listen_transport transport = listen_transport::tcp;
  std::string host;  ///< address or host name; brackets of IPv6 literals removed
  std::uint16_t port = 0;
};

/// Parses `url`: a known scheme, `://`, a host (IPv6 literals in brackets) and a port, with at
/// most a single trailing `/`. Port 0 is accepted (the kernel picks one; tests use it). Errors:
/// unknown scheme (named), user information, missing host or port, invalid port, a path (for
/// WebSocket the reason says to use the listener's `path` key), a query or fragment.
[[nodiscard]] expected<listen_address, std::string> parse_listen_url(std::string_view url);

}  // namespace ebus::mqtt::broker
