#include "mqtt/transport/tls_client.hpp"

#include <array>
#include <csignal>
#include <stdexcept>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace ebus::mqtt::transport {

void tls_context_free::operator()(ssl_ctx_st* ctx) const noexcept {
  SSL_CTX_free(ctx);
}

void tls_session_free::operator()(ssl_st* ssl) const noexcept {
  SSL_free(ssl);
}

std::string openssl_errors() {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    std::array<char, 256> text{};
    ERR_error_string_n(code, text.data(), text.size());
    if (!out.empty()) out += "; ";
    out += text.data();
  }
  return out;
}

tls_context_ptr make_tls_client_context(const std::string& ca_file, bool read_ahead) {
  std::signal(SIGPIPE, SIG_IGN);
  tls_context_ptr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) throw std::runtime_error("SSL_CTX_new: " + openssl_errors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (read_ahead) SSL_CTX_set_read_ahead(ctx.get(), 1);
  if (!ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1) {
      throw std::runtime_error("CA file '" + ca_file + "': " + openssl_errors());
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }
  return ctx;
}

tls_session_ptr make_tls_client_session(ssl_ctx_st* ctx, int fd, const std::string& host) {
  tls_session_ptr ssl(SSL_new(ctx));
  if (!ssl) throw std::runtime_error("SSL_new: " + openssl_errors());
  SSL_set_fd(ssl.get(), fd);
  // The certificate must name the address connected to (the tests' names IP:127.0.0.1).
  if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str()) != 1) {
    ERR_clear_error();
    SSL_set1_host(ssl.get(), host.c_str());
  }
  SSL_set_mode(ssl.get(), SSL_MODE_ENABLE_PARTIAL_WRITE);
  return ssl;
}

void tls_client_handshake(ssl_st* ssl, const std::function<bool(bool want_read)>& wait) {
  for (;;) {
    ERR_clear_error();
    const int r = SSL_connect(ssl);
    if (r == 1) return;
    const int err = SSL_get_error(ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (!wait(err == SSL_ERROR_WANT_READ)) {
        throw std::runtime_error("TLS handshake: no answer within the timeout");
      }
      continue;
    }
    std::string why = openssl_errors();
    if (const long verify = SSL_get_verify_result(ssl); verify != X509_V_OK) {
      why += std::string(why.empty() ? "" : "; ") + X509_verify_cert_error_string(verify);
    }
    throw std::runtime_error("TLS handshake failed: " +
                             (why.empty() ? std::string("connection closed") : why));
  }
}

}  // namespace ebus::mqtt::transport
