#pragma once
// The client side of MQTT over TLS, for the load generator and the test peer: the OpenSSL client
// context, a session on a connected socket and the handshake, with the reasons of a failure in
// words. The caller owns the socket and decides how to wait for it.
//
// Thread safety: a context may be shared once made; a session belongs to one thread.

#include <functional>
#include <memory>
#include <string>

// OpenSSL's handle types, so that this header does not pull in OpenSSL's.
struct ssl_ctx_st;
struct ssl_st;

namespace ebus::mqtt::transport {

struct tls_context_free {
  void operator()(ssl_ctx_st* ctx) const noexcept;
};
using tls_context_ptr = std::unique_ptr<ssl_ctx_st, tls_context_free>;

struct tls_session_free {
  void operator()(ssl_st* ssl) const noexcept;  ///< sends nothing: no close_notify
};
using tls_session_ptr = std::unique_ptr<ssl_st, tls_session_free>;

/// What OpenSSL's error queue holds, "; "-separated (the queue is emptied); "" when nothing.
[[nodiscard]] std::string openssl_errors();

/// A client context: TLS 1.2 at least. `ca_file`: the server's certificate must chain to it;
/// empty: it is not checked at all. `read_ahead`: one read takes in as many records as have
/// arrived. Ignores SIGPIPE for the process: OpenSSL writes with write(2), and a server that
/// closes must come back as an error, as it does for MSG_NOSIGNAL sends. Throws
/// std::runtime_error when OpenSSL fails or the CA file cannot be read.
[[nodiscard]] tls_context_ptr make_tls_client_context(const std::string& ca_file, bool read_ahead);

/// A session on the connected socket `fd`, whose certificate must name `host` (an IP address
/// or a DNS name) when the context checks it, with partial writes enabled. Throws
/// std::runtime_error when OpenSSL fails.
[[nodiscard]] tls_session_ptr make_tls_client_session(ssl_ctx_st* ctx, int fd,
                                                      const std::string& host);

/// Runs the handshake on a non-blocking socket. `wait(want_read)` waits until the socket is
/// readable (true) or writable (false) and returns false when the caller gives up. Throws
/// std::runtime_error: "TLS handshake: no answer within the timeout" when `wait` gives up, else
/// "TLS handshake failed: " and OpenSSL's reasons, the certificate check's among them.
void tls_client_handshake(ssl_st* ssl, const std::function<bool(bool want_read)>& wait);

}  // namespace ebus::mqtt::transport
