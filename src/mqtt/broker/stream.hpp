#pragma once
// The byte stream under one MQTT connection: plain TCP, TLS, or WebSocket (over either). The
// connection reads and writes MQTT bytes through this interface and never sees the layers
// below; each layer's own opening (TLS handshake, HTTP upgrade) runs in open(), inside the
// connection's CONNECT timeout.
//
// Thread safety: loop thread only. At most one read and one write are outstanding at a time.

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "common/asio.hpp"
#include "common/expected.hpp"
#include "mqtt/broker/readiness_set.hpp"
#include "mqtt/transport/websocket_server.hpp"

namespace ebus::mqtt::broker {

class stream {
 public:
  using read_result = std::pair<std::error_code, std::size_t>;
  /// What a writer hands over in one go: control packets, then PUBLISHes.
  using write_batch = std::array<asio::const_buffer, 2>;

  stream() = default;
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;
  virtual ~stream() = default;

  /// Completes the layers' opening exchange; an error closes the connection.
  virtual awaitable<std::error_code> open() = 0;
  virtual awaitable<read_result> read_some(asio::mutable_buffer into) = 0;
  /// Writes all of `batch` (either buffer may be empty).
  virtual awaitable<std::error_code> write(write_batch batch) = 0;
  /// Makes the pending read and write complete with operation_aborted.
  virtual void cancel() noexcept = 0;
  /// Closes the socket; no more I/O.
  virtual void close() noexcept = 0;

  /// The TCP socket's descriptor at the bottom (peer address, socket options); -1 once closed.
  [[nodiscard]] virtual int native_handle() const noexcept = 0;
  /// The client certificate's common name, once open() verified one; empty otherwise.
  [[nodiscard]] virtual std::optional<std::string> certificate_name() const { return {}; }
  /// "tcp", "tls", "ws" or "wss", for logs.
  [[nodiscard]] virtual const char* name() const noexcept = 0;
};

/// Plain TCP on a connected, non-blocking socket, which the stream owns from now on (also on
/// failure): open() does nothing, reads and writes go straight to the socket, and `readiness`
/// says when it can read or write again. For the layers over TCP (WebSocket); a connection on a
/// tcp:// listener owns its socket itself (connection.hpp). `readiness` outlives the stream (the
/// server owns both, and its connections end before it does). Fails when the set refuses the
/// socket.
[[nodiscard]] expected<std::unique_ptr<stream>, std::error_code> make_tcp_stream(
    int fd, readiness_set& readiness);

/// What a listener's TLS context is made of.
struct tls_server_settings {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;               ///< "" = client certificates are neither asked nor checked
  bool require_certificate = false;  ///< refuse clients without a valid certificate
};
/// A server TLS context as the listener configures it. Shared: connections keep the context
/// they were accepted with when a reload replaces the listener's.
class tls_context;

/// Loads certificate, key and CAs; TLS 1.2 at least. The error names the file and the reason.
/// OpenSSL is opened here, the first time a TLS listener needs it (openssl/openssl_api.hpp).
[[nodiscard]] expected<std::shared_ptr<tls_context>, std::string> make_tls_context(
    const tls_server_settings& settings);

/// TLS over `inner` (TCP): open() runs the inner opening, then the server handshake. Fails only
/// when OpenSSL cannot allocate the session.
[[nodiscard]] expected<std::unique_ptr<stream>, std::error_code> make_tls_stream(
    std::unique_ptr<stream> inner, std::shared_ptr<tls_context> context,
    const asio::any_io_executor& executor);

/// MQTT over WebSocket on `inner` (TCP for ws://, TLS for wss://): open() runs the inner
/// opening, then the HTTP upgrade.
[[nodiscard]] std::unique_ptr<stream> make_websocket_stream(std::unique_ptr<stream> inner,
                                                            transport::websocket_options options,
                                                            const asio::any_io_executor& executor);

}  // namespace ebus::mqtt::broker
