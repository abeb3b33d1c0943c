#pragma once
// What an MQTT connection speaks on its socket: plain TCP, TLS, WebSocket or WebSocket over TLS.
// The broker's listeners, the load generator and the test peer all name transports this way.

#include <cstdint>
#include <optional>
#include <string_view>

namespace ebus::mqtt::transport {

enum class transport_kind : std::uint8_t { tcp, tls, ws, wss };

/// "tcp", "tls", "ws" or "wss"; nullopt for anything else.
[[nodiscard]] constexpr std::optional<transport_kind> parse_transport_kind(
    std::string_view name) noexcept {
  if (name == "tcp") return transport_kind::tcp;
  if (name == "tls") return transport_kind::tls;
  if (name == "ws") return transport_kind::ws;
  if (name == "wss") return transport_kind::wss;
  return std::nullopt;
}

/// "tcp", "tls", "ws", "wss": also the canonical listen URL scheme.
[[nodiscard]] constexpr std::string_view name_of(transport_kind kind) noexcept {
  switch (kind) {
    case transport_kind::tcp:
      break;
    case transport_kind::tls:
      return "tls";
    case transport_kind::ws:
      return "ws";
    case transport_kind::wss:
      return "wss";
  }
  return "tcp";
}

/// The transports that need a certificate and a key.
[[nodiscard]] constexpr bool uses_tls(transport_kind kind) noexcept {
  return kind == transport_kind::tls || kind == transport_kind::wss;
}
/// The WebSocket transports, the ones with an HTTP path.
[[nodiscard]] constexpr bool uses_websocket(transport_kind kind) noexcept {
  return kind == transport_kind::ws || kind == transport_kind::wss;
}

}  // namespace ebus::mqtt::transport
