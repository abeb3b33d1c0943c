#pragma once
// The transport a test process speaks to the embedded broker: plain TCP, TLS, WebSocket or
// WebSocket over TLS. One switch for the whole process, EBUS_TEST_TRANSPORT, so that one suite
// runs unchanged over every listener kind (ctest registers the conformance suite once per value).

#include <cstdint>
#include <string>
#include <string_view>

namespace ebus::test {

enum class transport_kind : std::uint8_t { tcp, tls, ws, wss };

/// EBUS_TEST_TRANSPORT: "tcp" (also when unset or empty), "tls", "ws" or "wss"; read once. Any
/// other value throws std::invalid_argument, so a typo cannot silently test plain TCP.
[[nodiscard]] transport_kind test_transport();

/// "tcp", "tls", "ws", "wss": also the listen URL scheme.
[[nodiscard]] std::string_view name_of(transport_kind kind) noexcept;

[[nodiscard]] constexpr bool uses_tls(transport_kind kind) noexcept {
  return kind == transport_kind::tls || kind == transport_kind::wss;
}
[[nodiscard]] constexpr bool uses_websocket(transport_kind kind) noexcept {
  return kind == transport_kind::ws || kind == transport_kind::wss;
}

/// A self-signed certificate for CN=localhost and IP 127.0.0.1, and its key: the TLS listeners'
/// certificate and the clients' only trusted CA. Made on first use with the openssl CLI, once per
/// process, in a private temporary directory that is removed at exit; throws if openssl fails.
struct tls_files {
  std::string cert_file;  ///< PEM certificate, also the CA file clients verify against
  std::string key_file;   ///< PEM private key, unencrypted
};
[[nodiscard]] const tls_files& test_tls_files();

}  // namespace ebus::test
