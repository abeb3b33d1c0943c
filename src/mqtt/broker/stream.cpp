#include "mqtt/broker/stream.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "mqtt/broker/tcp_socket.hpp"

namespace ebus::mqtt::broker {
namespace {

using asio::use_awaitable;
using asio::experimental::as_tuple;

// Plain TCP on a bare descriptor: readiness comes from the server's readiness_set, so that the
// stream holds nothing but the descriptor and what waits for it.
class tcp_stream final : public stream, private readiness_set::watcher {
 public:
  tcp_stream(int fd, readiness_set& readiness) : socket_(fd), readiness_(readiness) {}
  tcp_stream(const tcp_stream&) = delete;
  tcp_stream& operator=(const tcp_stream&) = delete;
  ~tcp_stream() override {
    if (socket_.fd() >= 0) readiness_.remove(socket_.fd());  // a no-op when add() had failed
  }

  std::error_code start() noexcept { return readiness_.add(socket_.fd(), *this); }

  awaitable<std::error_code> open() override { co_return std::error_code{}; }

  awaitable<read_result> read_some(asio::mutable_buffer into) override {
    return socket_.read_some(into, read_wait_);
  }

  awaitable<std::error_code> write(write_batch batch) override {
    return socket_.write(batch, write_wait_);
  }

  void cancel() noexcept override {
    socket_wait::complete(read_wait_, asio::error::operation_aborted);
    socket_wait::complete(write_wait_, asio::error::operation_aborted);
  }

  void close() noexcept override {
    socket_.close(readiness_);
    cancel();
  }

  int native_handle() const noexcept override { return socket_.fd(); }
  const char* name() const noexcept override { return "tcp"; }

 private:
  void on_ready(bool readable, bool writable) noexcept override {
    if (readable) socket_wait::complete(read_wait_, {});
    if (writable) socket_wait::complete(write_wait_, {});
  }

  tcp_socket socket_;
  readiness_set& readiness_;
  std::unique_ptr<socket_wait> read_wait_;   // read_some()'s, while it waits
  std::unique_ptr<socket_wait> write_wait_;  // write()'s, while it waits
};

// TLS over a socket that Asio's reactor watches.
class tls_stream final : public stream {
 public:
  // The SSL object keeps its own reference to the OpenSSL context; context_ keeps Asio's.
  tls_stream(asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> context)
      : stream_(std::move(socket), *context), context_(std::move(context)) {}

  awaitable<read_result> read_some(asio::mutable_buffer into) override {
    auto [ec, n] = co_await stream_.async_read_some(into, as_tuple(use_awaitable));
    co_return read_result{ec, n};
  }

  awaitable<std::error_code> write(write_batch batch) override {
    auto [ec, n] = co_await asio::async_write(stream_, batch, as_tuple(use_awaitable));
    (void)n;
    co_return ec;
  }

  void cancel() noexcept override {
    std::error_code ignored;
    stream_.next_layer().cancel(ignored);
  }

  void close() noexcept override {
    // Over TLS without close_notify: the peer is gone or being dropped, and waiting for it
    // could stall.
    std::error_code ignored;
    stream_.next_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    stream_.next_layer().close(ignored);
  }

  int native_handle() const noexcept override {
    return const_cast<asio::ip::tcp::socket&>(stream_.next_layer()).native_handle();
  }

  awaitable<std::error_code> open() override {
    auto [ec] =
        co_await stream_.async_handshake(asio::ssl::stream_base::server, as_tuple(use_awaitable));
    if (!ec) read_certificate_name();
    co_return ec;
  }

  std::optional<std::string> certificate_name() const override { return certificate_name_; }
  const char* name() const noexcept override { return "tls"; }

 private:
  void read_certificate_name() {
    SSL* ssl = stream_.native_handle();
    X509* cert = SSL_get_peer_certificate(ssl);
    if (cert == nullptr) return;
    if (SSL_get_verify_result(ssl) == X509_V_OK) {
      X509_NAME* subject = X509_get_subject_name(cert);
      const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
      if (at >= 0) {
        const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
        unsigned char* utf8 = nullptr;
        const int n = ASN1_STRING_to_UTF8(&utf8, data);
        if (n >= 0) certificate_name_.emplace(reinterpret_cast<const char*>(utf8), n);
        OPENSSL_free(utf8);
      }
    }
    X509_free(cert);
  }

  asio::ssl::stream<asio::ip::tcp::socket> stream_;
  std::shared_ptr<asio::ssl::context> context_;
  std::optional<std::string> certificate_name_;
};

// The WebSocket layer writes from two places: the connection's writer (MQTT in binary frames)
// and the reader (the 101, pongs, close frames). Writes to the inner stream are taken in turn,
// whole frames each, so a pong never lands inside a data frame.
class websocket_stream final : public stream {
 public:
  websocket_stream(std::unique_ptr<stream> inner, transport::websocket_options options,
                   const asio::any_io_executor& executor)
      : inner_(std::move(inner)),
        ws_(std::move(options)),
        turn_(executor, std::chrono::steady_clock::time_point::max()) {}

  awaitable<std::error_code> open() override {
    if (auto ec = co_await inner_->open(); ec) co_return ec;
    while (!ws_.open()) {
      if (auto ec = co_await receive(); ec) co_return ec;
    }
    co_return std::error_code{};
  }

  awaitable<read_result> read_some(asio::mutable_buffer into) override {
    while (taken_ == mqtt_.size()) {
      mqtt_.clear();
      taken_ = 0;
      if (auto ec = co_await receive(); ec) co_return read_result{ec, 0};
    }
    const std::size_t n = std::min(into.size(), mqtt_.size() - taken_);
    std::memcpy(into.data(), mqtt_.data() + taken_, n);
    taken_ += n;
    co_return read_result{std::error_code{}, n};
  }

  awaitable<std::error_code> write(write_batch batch) override {
    std::string frames;
    for (const auto& b : batch) {
      ws_.send({static_cast<const char*>(b.data()), b.size()}, frames);
    }
    co_return co_await write_in_turn(std::move(frames));
  }

  void cancel() noexcept override {
    cancelled_ = true;
    turn_.cancel();
    inner_->cancel();
  }
  void close() noexcept override { inner_->close(); }

  int native_handle() const noexcept override { return inner_->native_handle(); }
  std::optional<std::string> certificate_name() const override {
    return inner_->certificate_name();
  }
  const char* name() const noexcept override {
    return std::string_view(inner_->name()) == "tls" ? "wss" : "ws";
  }

 private:
  // Reads once from the inner stream, feeds the protocol and writes what it answers.
  awaitable<std::error_code> receive() {
    auto [ec, n] = co_await inner_->read_some(asio::buffer(raw_));
    if (ec) co_return ec;
    const bool go_on = ws_.feed({raw_.data(), n}, mqtt_);
    if (auto answer = ws_.take_output(); !answer.empty()) {
      if (auto wec = co_await write_in_turn(std::move(answer)); wec) co_return wec;
    }
    if (!go_on) {
      // A close frame is the peer's orderly end; anything else broke the protocol.
      co_return ws_.close_reason() == "close frame received"
          ? std::error_code(asio::error::eof)
          : std::make_error_code(std::errc::protocol_error);
    }
    co_return std::error_code{};
  }

  awaitable<std::error_code> write_in_turn(std::string bytes) {
    while (writing_ && !cancelled_) {
      turn_.expires_at(std::chrono::steady_clock::time_point::max());
      (void)co_await turn_.async_wait(as_tuple(use_awaitable));
    }
    if (cancelled_) co_return std::error_code(asio::error::operation_aborted);
    writing_ = true;
    const auto ec = co_await inner_->write({asio::buffer(bytes), asio::const_buffer{}});
    writing_ = false;
    turn_.cancel();  // the other writer, if waiting, goes next
    co_return ec;
  }

  std::unique_ptr<stream> inner_;
  transport::websocket_server ws_;
  asio::steady_timer turn_;
  std::array<char, 16 * 1024> raw_{};
  std::string mqtt_;  // MQTT bytes received and not yet read
  std::size_t taken_ = 0;
  bool writing_ = false;
  bool cancelled_ = false;
};

std::string openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

}  // namespace

expected<std::unique_ptr<stream>, std::error_code> make_tcp_stream(int fd,
                                                                   readiness_set& readiness) {
  auto s = std::make_unique<tcp_stream>(fd, readiness);
  if (const auto ec = s->start(); ec) return fail(ec);
  return s;
}

std::unique_ptr<stream> make_tls_stream(asio::ip::tcp::socket socket,
                                        std::shared_ptr<asio::ssl::context> context) {
  return std::make_unique<tls_stream>(std::move(socket), std::move(context));
}

expected<std::shared_ptr<asio::ssl::context>, std::string> make_tls_context(
    const tls_server_settings& settings) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* ctx = context->native_handle();
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // A key file protected by a pass phrase must fail here, not block on a terminal prompt.
  SSL_CTX_set_default_passwd_cb(ctx, [](char*, int, int, void*) { return 0; });
  if (SSL_CTX_use_certificate_chain_file(ctx, settings.cert_file.c_str()) != 1) {
    return fail("certificate '" + settings.cert_file + "': " + openssl_error());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, settings.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return fail("key '" + settings.key_file + "': " + openssl_error());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return fail("key '" + settings.key_file + "' does not match certificate '" +
                settings.cert_file + "': " + openssl_error());
  }
  if (!settings.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, settings.ca_file.c_str(), nullptr) != 1) {
      return fail("CA file '" + settings.ca_file + "': " + openssl_error());
    }
    // The CAs' names tell the client which certificate to present.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings.ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(ctx, names);
    }
    int mode = SSL_VERIFY_PEER;
    if (settings.require_certificate) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, nullptr);
  }
  // Session resumption across a reload would mix contexts; each context has its own id space.
  SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const unsigned char*>("ebus"), 4);
  ERR_clear_error();
  return context;
}

std::unique_ptr<stream> make_websocket_stream(std::unique_ptr<stream> inner,
                                              transport::websocket_options options,
                                              const asio::any_io_executor& executor) {
  return std::make_unique<websocket_stream>(std::move(inner), std::move(options), executor);
}

}  // namespace ebus::mqtt::broker
