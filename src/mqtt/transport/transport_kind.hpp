#pragma once
// What an MQTT client speaks on its socket, by listen URL scheme: plain TCP, TLS, WebSocket or
// WebSocket over TLS. Shared by the load generator and the test peer.

#include <cstdint>
#include <optional>
#include <string_view>

namespace ebus::mqtt::transport {

enum class transport_kind : std::uint8_t { tcp, tls, ws, wss };

/// "tcp", "tls", "ws" or "wss"; nullopt for anything else.
[[nodiscard]] std::optional<transport_kind> parse_transport_kind(std::string_view name) noexcept;

/// "tcp", "tls", "ws", "wss": also the listen URL scheme.
[[nodiscard]] std::string_view name_of(transport_kind kind) noexcept;

[[nodiscard]] constexpr bool uses_tls(transport_kind kind) noexcept {
  return kind == transport_kind::tls || kind == transport_kind::wss;
}
[[nodiscard]] constexpr bool uses_websocket(transport_kind kind) noexcept {
  return kind == transport_kind::ws || kind == transport_kind::wss;
}

}  // namespace ebus::mqtt::transport
