#pragma once
// The transport a test process speaks to the embedded broker: plain TCP, TLS, WebSocket or
// WebSocket over TLS. One switch for the whole process, EBUS_TEST_TRANSPORT, so that one suite
// runs unchanged over every listener kind (ctest registers the conformance suite once per value).

#include <cstdint>
#include <string>
#include <string_view>

#include "mqtt/transport/transport_kind.hpp"

namespace ebus::test {

/// name_of(): "tcp", "tls", "ws", "wss", also the listen URL scheme.
using mqtt::transport::name_of;
using mqtt::transport::transport_kind;
using mqtt::transport::uses_tls;
using mqtt::transport::uses_websocket;

/// EBUS_TEST_TRANSPORT: "tcp" (also when unset or empty), "tls", "ws" or "wss"; read once. Any
/// other value throws std::invalid_argument, so a typo cannot silently test plain TCP.
[[nodiscard]] transport_kind test_transport();

/// A self-signed certificate for CN=localhost and IP 127.0.0.1, and its key: the TLS listeners'
/// certificate and the clients' only trusted CA. Made on first use with the openssl CLI, once per
/// process, in a private temporary directory that is removed at exit; throws if openssl fails.
struct tls_files {
  std::string cert_file;  ///< PEM certificate, also the CA file clients verify against
  std::string key_file;   ///< PEM private key, unencrypted
};
[[nodiscard]] const tls_files& test_tls_files();

}  // namespace ebus::test
