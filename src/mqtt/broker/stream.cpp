#include "mqtt/broker/stream.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include "mqtt/broker/tcp_socket.hpp"
#include "openssl/openssl_api.hpp"

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

// Layers over an inner stream (TLS, WebSocket) write to it from two places, the connection's
// writer and the reader (handshake answers, pongs, key updates); the inner stream takes one write
// at a time, so the writers take turns. Whole frames or records each: nothing lands inside another.
class write_turn {
 public:
  explicit write_turn(const asio::any_io_executor& executor)
      : wake_(executor, std::chrono::steady_clock::time_point::max()) {}

  /// Waits until no one else writes and takes the turn; false once cancelled.
  awaitable<bool> take() {
    while (busy_ && !cancelled_) {
      wake_.expires_at(std::chrono::steady_clock::time_point::max());
      (void)co_await wake_.async_wait(as_tuple(use_awaitable));
    }
    if (cancelled_) co_return false;
    busy_ = true;
    co_return true;
  }

  /// Ends the turn taken; the other writer, if waiting, goes next.
  void give_back() {
    busy_ = false;
    wake_.cancel();
  }

  /// Makes a waiting take() and every later one return false.
  void cancel() {
    cancelled_ = true;
    wake_.cancel();
  }

  [[nodiscard]] bool busy() const noexcept { return busy_; }

 private:
  asio::steady_timer wake_;
  bool busy_ = false;
  bool cancelled_ = false;
};

// OpenSSL's errors as error codes: the value is OpenSSL's packed error code, the message its
// text ("wrong version number", "certificate verify failed", ...).
class tls_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "tls"; }
  std::string message(int value) const override {
    const auto ssl = openssl::load();
    if (!ssl) return "TLS error " + std::to_string(value);
    std::array<char, 256> text{};
    (*ssl)->ERR_error_string_n(static_cast<unsigned int>(value), text.data(), text.size());
    return text.data();
  }
};

const std::error_category& tls_errors() noexcept {
  static const tls_category category;
  return category;
}

// OpenSSL reads and writes through two BIOs of our own over strings of the stream's. Bytes read
// from the socket are appended to `input_` and handed over as OpenSSL asks; what it writes
// (handshake, records, alerts) is appended to `output_`, which the stream swaps out and writes to
// the socket. Memory BIOs would zero every write, copy the output once more, and keep their
// largest buffers for the connection's life; these strings are freed once used up.
struct tls_input {
  std::string bytes;
  std::size_t taken = 0;  // handed to OpenSSL
};

int take_input(BIO* bio, char* out, std::size_t size, std::size_t* read) noexcept {
  const auto& ssl = **openssl::load();  // loaded: a TLS stream exists
  auto& in = *static_cast<tls_input*>(ssl.BIO_get_data(bio));
  ssl.BIO_clear_flags(bio, BIO_FLAGS_RWS | BIO_FLAGS_SHOULD_RETRY);
  const std::size_t left = in.bytes.size() - in.taken;
  if (left == 0) {
    ssl.BIO_set_flags(bio, BIO_FLAGS_READ | BIO_FLAGS_SHOULD_RETRY);  // wait for the socket
    *read = 0;
    return 0;
  }
  const std::size_t n = std::min(size, left);
  std::memcpy(out, in.bytes.data() + in.taken, n);
  in.taken += n;
  if (in.taken == in.bytes.size()) in = tls_input{};  // used up: freed
  *read = n;
  return 1;
}

// Called from OpenSSL's C code, which no exception may cross: out of memory is a failed write,
// which fails the connection.
int append_output(BIO* bio, const char* data, std::size_t size, std::size_t* written) noexcept {
  const auto& ssl = **openssl::load();
  try {
    static_cast<std::string*>(ssl.BIO_get_data(bio))->append(data, size);
  } catch (const std::bad_alloc&) {
    *written = 0;
    return 0;
  }
  *written = size;
  return 1;
}

// NOLINTBEGIN(google-runtime-int): OpenSSL's types
long input_control(BIO* bio, int command, long, void*) noexcept {
  if (command != BIO_CTRL_PENDING) return 0;
  const auto& in = *static_cast<tls_input*>((**openssl::load()).BIO_get_data(bio));
  return static_cast<long>(in.bytes.size() - in.taken);
}

long output_control(BIO*, int command, long, void*) noexcept {
  return command == BIO_CTRL_FLUSH ? 1 : 0;  // flushed by the stream; nothing else applies
}
// NOLINTEND(google-runtime-int)

}  // namespace

// A server context as a listener configured it; connections share it with the listener and keep
// it when a reload replaces the listener's.
class tls_context {
 public:
  tls_context(const openssl::functions& ssl, SSL_CTX* ctx) noexcept : ssl_(ssl), ctx_(ctx) {}
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;
  ~tls_context() {
    ssl_.SSL_CTX_free(ctx_);
    ssl_.BIO_meth_free(input_);  // the connections' BIOs are gone: each holds the context
    ssl_.BIO_meth_free(output_);
  }

  /// Makes the methods of the connections' BIOs (take_input, append_output); false when
  /// OpenSSL is out of memory.
  [[nodiscard]] bool make_bio_methods() noexcept {
    input_ = ssl_.BIO_meth_new(ssl_.BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "eventbus TLS in");
    output_ =
        ssl_.BIO_meth_new(ssl_.BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "eventbus TLS out");
    if (input_ == nullptr || output_ == nullptr) return false;
    ssl_.BIO_meth_set_read_ex(input_, take_input);
    ssl_.BIO_meth_set_ctrl(input_, input_control);
    ssl_.BIO_meth_set_write_ex(output_, append_output);
    ssl_.BIO_meth_set_ctrl(output_, output_control);
    return true;
  }

  [[nodiscard]] const openssl::functions& functions() const noexcept { return ssl_; }
  [[nodiscard]] SSL_CTX* native_handle() const noexcept { return ctx_; }
  [[nodiscard]] const BIO_METHOD* input_method() const noexcept { return input_; }
  [[nodiscard]] const BIO_METHOD* output_method() const noexcept { return output_; }

 private:
  const openssl::functions& ssl_;
  SSL_CTX* ctx_;
  BIO_METHOD* input_ = nullptr;
  BIO_METHOD* output_ = nullptr;
};

namespace {

// TLS over an inner stream (TCP), through the BIOs of tls_context. A TLS connection waits on the
// same readiness set as a TCP one, and holds no buffer while idle: its record buffers are freed
// (SSL_MODE_RELEASE_BUFFERS), its input once OpenSSL took it, its output once written.
//
// OpenSSL may produce output while reading (a TLS 1.3 key update); those bytes and the writer's
// go out in the order OpenSSL produced them, one write to the inner stream at a time.
class tls_stream final : public stream {
 public:
  tls_stream(std::unique_ptr<stream> inner, std::shared_ptr<tls_context> context, SSL* session,
             BIO* into_tls, BIO* out_of_tls, const asio::any_io_executor& executor)
      : inner_(std::move(inner)),
        context_(std::move(context)),
        ssl_(context_->functions()),
        session_(session),
        into_tls_(into_tls),
        out_of_tls_(out_of_tls),
        turn_(executor) {
    ssl_.BIO_set_data(into_tls_, &input_);
    ssl_.BIO_set_init(into_tls_, 1);
    ssl_.BIO_set_data(out_of_tls_, &output_);
    ssl_.BIO_set_init(out_of_tls_, 1);
  }
  tls_stream(const tls_stream&) = delete;
  tls_stream& operator=(const tls_stream&) = delete;
  ~tls_stream() override { ssl_.SSL_free(session_); }  // and both BIOs with it

  awaitable<std::error_code> open() override {
    if (auto ec = co_await inner_->open(); ec) co_return ec;
    // The handshake's reads need a buffer of their own; it lives only as long as the handshake.
    std::vector<char> scratch(handshake_read_bytes);
    for (;;) {
      ssl_.ERR_clear_error();
      const int r = ssl_.SSL_do_handshake(session_);
      // Read before the flush: the thread's error queue is every connection's while this waits.
      const int err = r == 1 ? SSL_ERROR_NONE : ssl_.SSL_get_error(session_, r);
      const std::error_code failure =
          err == SSL_ERROR_NONE || err == SSL_ERROR_WANT_READ ? std::error_code{} : error_of(err);
      // What the handshake wrote goes out first, a refusing alert included.
      if (auto ec = co_await flush(); ec && !failure) co_return ec;
      if (failure) co_return failure;
      if (r == 1) break;
      if (auto ec = co_await fill(asio::buffer(scratch)); ec) co_return ec;
    }
    read_certificate_name();
    co_return std::error_code{};
  }

  awaitable<read_result> read_some(asio::mutable_buffer into) override {
    if (into.size() == 0) co_return read_result{std::error_code{}, 0};
    const int size = static_cast<int>(std::min<std::size_t>(into.size(), max_step));
    for (;;) {
      ssl_.ERR_clear_error();
      const int n = ssl_.SSL_read(session_, into.data(), size);
      if (n > 0) co_return read_result{std::error_code{}, static_cast<std::size_t>(n)};
      const int err = ssl_.SSL_get_error(session_, n);
      std::error_code failure;
      if (err == SSL_ERROR_ZERO_RETURN) {
        failure = asio::error::eof;  // close_notify
      } else if (err != SSL_ERROR_WANT_READ) {
        failure = error_of(err);  // before the flush, which lets other connections run
      }
      if (!output_.empty() && !turn_.busy()) {
        if (auto ec = co_await flush(); ec && !failure) co_return read_result{ec, 0};
      }
      if (failure) co_return read_result{failure, 0};
      // The ciphertext is read into the caller's buffer, then decrypted into it.
      if (auto ec = co_await fill(into); ec) co_return read_result{ec, 0};
    }
  }

  awaitable<std::error_code> write(write_batch batch) override {
    for (const auto& b : batch) {
      const auto* data = static_cast<const char*>(b.data());
      std::size_t left = b.size();
      while (left > 0) {
        const int step = static_cast<int>(std::min(left, max_step));
        ssl_.ERR_clear_error();
        const int n = ssl_.SSL_write(session_, data, step);
        if (n <= 0) co_return error_of(ssl_.SSL_get_error(session_, n));
        data += n;
        left -= static_cast<std::size_t>(n);
        if (auto ec = co_await flush(); ec) co_return ec;
      }
    }
    co_return std::error_code{};
  }

  void cancel() noexcept override {
    turn_.cancel();
    inner_->cancel();
  }

  void close() noexcept override {
    // Without close_notify: the peer is gone or being dropped, and waiting for it could stall.
    inner_->close();
  }

  int native_handle() const noexcept override { return inner_->native_handle(); }
  std::optional<std::string> certificate_name() const override { return certificate_name_; }
  const char* name() const noexcept override { return "tls"; }

 private:
  static constexpr std::size_t handshake_read_bytes = 16 * 1024;
  // One TLS record's plaintext per SSL_write: the output waiting to be flushed stays one record.
  static constexpr std::size_t max_step = 16 * 1024;

  // Reads once from the inner stream into `scratch` and hands the bytes to OpenSSL.
  awaitable<std::error_code> fill(asio::mutable_buffer scratch) {
    auto [ec, n] = co_await inner_->read_some(scratch);
    if (ec) co_return ec;
    if (n == 0) co_return std::error_code(asio::error::eof);
    input_.bytes.append(static_cast<const char*>(scratch.data()), n);
    co_return std::error_code{};
  }

  // Writes out everything OpenSSL has produced, in turn with any other flush.
  awaitable<std::error_code> flush() {
    if (!co_await turn_.take()) co_return std::error_code(asio::error::operation_aborted);
    std::error_code ec;
    while (!ec && !output_.empty()) {
      // Swapped out: OpenSSL may append more while this waits (the reader's output).
      const std::string bytes = std::exchange(output_, std::string{});
      ec = co_await inner_->write({asio::buffer(bytes), asio::const_buffer{}});
    }
    turn_.give_back();
    co_return ec;
  }

  std::error_code error_of(int ssl_error) {
    if (ssl_error == SSL_ERROR_SSL) {
      const unsigned long code = ssl_.ERR_get_error();  // NOLINT(google-runtime-int): OpenSSL's
      ssl_.ERR_clear_error();
      if (code != 0) return {static_cast<int>(static_cast<unsigned int>(code)), tls_errors()};
    }
    ssl_.ERR_clear_error();
    return std::make_error_code(std::errc::protocol_error);
  }

  void read_certificate_name() {
    X509* cert = ssl_.SSL_get1_peer_certificate(session_);
    if (cert == nullptr) return;
    if (ssl_.SSL_get_verify_result(session_) == X509_V_OK) {
      X509_NAME* subject = ssl_.X509_get_subject_name(cert);
      const int at = ssl_.X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
      if (at >= 0) {
        const ASN1_STRING* data =
            ssl_.X509_NAME_ENTRY_get_data(ssl_.X509_NAME_get_entry(subject, at));
        unsigned char* utf8 = nullptr;
        const int n = ssl_.ASN1_STRING_to_UTF8(&utf8, data);
        if (n >= 0) certificate_name_.emplace(reinterpret_cast<const char*>(utf8), n);
        ssl_.CRYPTO_free(utf8, OPENSSL_FILE, OPENSSL_LINE);
      }
    }
    ssl_.X509_free(cert);
  }

  std::unique_ptr<stream> inner_;
  std::shared_ptr<tls_context> context_;
  const openssl::functions& ssl_;
  SSL* session_;
  BIO* into_tls_;       // owned by session_
  BIO* out_of_tls_;     // owned by session_
  tls_input input_;     // read from the socket, not yet taken by OpenSSL
  std::string output_;  // what OpenSSL wrote to out_of_tls_, not yet flushed
  write_turn turn_;
  std::optional<std::string> certificate_name_;
};

// The WebSocket layer writes from two places: the connection's writer (MQTT in binary frames)
// and the reader (the 101, pongs, close frames). Writes to the inner stream are taken in turn,
// whole frames each, so a pong never lands inside a data frame.
class websocket_stream final : public stream {
 public:
  websocket_stream(std::unique_ptr<stream> inner, transport::websocket_options options,
                   const asio::any_io_executor& executor)
      : inner_(std::move(inner)), ws_(std::move(options)), turn_(executor) {}

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
    if (!co_await turn_.take()) co_return std::error_code(asio::error::operation_aborted);
    const auto ec = co_await inner_->write({asio::buffer(bytes), asio::const_buffer{}});
    turn_.give_back();
    co_return ec;
  }

  std::unique_ptr<stream> inner_;
  transport::websocket_server ws_;
  write_turn turn_;
  std::array<char, 16 * 1024> raw_{};
  std::string mqtt_;  // MQTT bytes received and not yet read
  std::size_t taken_ = 0;
};

}  // namespace

expected<std::unique_ptr<stream>, std::error_code> make_tcp_stream(int fd,
                                                                   readiness_set& readiness) {
  auto s = std::make_unique<tcp_stream>(fd, readiness);
  if (const auto ec = s->start(); ec) return fail(ec);
  return s;
}

expected<std::unique_ptr<stream>, std::error_code> make_tls_stream(
    std::unique_ptr<stream> inner, std::shared_ptr<tls_context> context,
    const asio::any_io_executor& executor) {
  const openssl::functions& ssl = context->functions();
  SSL* session = ssl.SSL_new(context->native_handle());
  BIO* into_tls = ssl.BIO_new(context->input_method());
  BIO* out_of_tls = ssl.BIO_new(context->output_method());
  if (session == nullptr || into_tls == nullptr || out_of_tls == nullptr) {
    // Not handed to the session yet: each is freed on its own (the free functions take null).
    ssl.SSL_free(session);
    ssl.BIO_free(into_tls);
    ssl.BIO_free(out_of_tls);
    ssl.ERR_clear_error();
    return fail(std::make_error_code(std::errc::not_enough_memory));
  }
  ssl.SSL_set_bio(session, into_tls, out_of_tls);
  ssl.SSL_set_accept_state(session);
  return std::make_unique<tls_stream>(std::move(inner), std::move(context), session, into_tls,
                                      out_of_tls, executor);
}

expected<std::shared_ptr<tls_context>, std::string> make_tls_context(
    const tls_server_settings& settings) {
  const auto loaded = openssl::load();
  if (!loaded) return fail("TLS needs OpenSSL: " + loaded.error());
  const openssl::functions& ssl = **loaded;
  SSL_CTX* native = ssl.SSL_CTX_new(ssl.TLS_server_method());
  if (native == nullptr) return fail("cannot create a TLS context: " + openssl::last_error(ssl));
  auto context = std::make_shared<tls_context>(ssl, native);
  if (!context->make_bio_methods()) {
    return fail("cannot create a TLS context: " + openssl::last_error(ssl));
  }
  SSL_CTX* ctx = context->native_handle();
  ssl.ERR_clear_error();
  ssl.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, nullptr);
  ssl.SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // An idle connection keeps no record buffers.
  ssl.SSL_CTX_ctrl(ctx, SSL_CTRL_MODE, SSL_MODE_RELEASE_BUFFERS, nullptr);
  if (auto used = openssl::use_key_pair(ssl, ctx, settings.cert_file, settings.key_file); !used) {
    return fail(openssl::describe(used.error(), settings.cert_file, settings.key_file));
  }
  if (!settings.ca_file.empty()) {
    if (ssl.SSL_CTX_load_verify_locations(ctx, settings.ca_file.c_str(), nullptr) != 1) {
      return fail("CA file '" + settings.ca_file + "': " + openssl::last_error(ssl));
    }
    // The CAs' names tell the client which certificate to present.
    if (STACK_OF(X509_NAME)* names = ssl.SSL_load_client_CA_file(settings.ca_file.c_str())) {
      ssl.SSL_CTX_set_client_CA_list(ctx, names);
    }
    int mode = SSL_VERIFY_PEER;
    if (settings.require_certificate) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    ssl.SSL_CTX_set_verify(ctx, mode, nullptr);
  }
  // Session resumption across a reload would mix contexts; each context has its own id space.
  ssl.SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const unsigned char*>("ebus"), 4);
  ssl.ERR_clear_error();
  return context;
}

std::unique_ptr<stream> make_websocket_stream(std::unique_ptr<stream> inner,
                                              transport::websocket_options options,
                                              const asio::any_io_executor& executor) {
  return std::make_unique<websocket_stream>(std::move(inner), std::move(options), executor);
}

}  // namespace ebus::mqtt::broker
