#include "ebus_test/mqtt_peer.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cctype>
#include <csignal>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <random>
#include <stdexcept>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>

#include <climits>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mqtt/codec/encoder.hpp"
#include "mqtt/transport/websocket_server.hpp"

namespace ebus::test {

namespace codec = mqtt::codec;
using steady = std::chrono::steady_clock;

namespace {

// RFC 6455 section 5.2.
constexpr std::uint8_t op_continuation = 0x0;
constexpr std::uint8_t op_text = 0x1;
constexpr std::uint8_t op_binary = 0x2;
constexpr std::uint8_t op_close = 0x8;
constexpr std::uint8_t op_ping = 0x9;
constexpr std::uint8_t op_pong = 0xa;
// Larger sends are split: a real client's frames stay near its packets, and the broker caps one
// frame at its maximum packet size plus headroom.
constexpr std::size_t max_frame_payload = std::size_t{64} * 1024;
constexpr std::size_t max_response_header = std::size_t{16} * 1024;

std::mt19937& random_engine() {
  thread_local std::mt19937 engine{std::random_device{}()};
  return engine;
}

/// Waits until `fd` is ready for `events`; false once `deadline` has passed.
bool wait_ready(int fd, short events, steady::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
  if (left.count() <= 0) return false;
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, static_cast<int>(left.count())) > 0;
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

struct ssl_ctx_free {
  void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
};

/// One client context per process: it trusts the test certificate only.
SSL_CTX* client_context() {
  static const std::unique_ptr<SSL_CTX, ssl_ctx_free> context = [] {
    // SSL_write writes with write(2): a connection the broker closed must come back as an
    // error, as it does for the MSG_NOSIGNAL sends of plain TCP, not kill the test.
    std::signal(SIGPIPE, SIG_IGN);
    std::unique_ptr<SSL_CTX, ssl_ctx_free> ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) throw std::runtime_error("SSL_CTX_new: " + openssl_errors());
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    const auto& ca = test_tls_files().cert_file;
    if (SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr) != 1) {
      throw std::runtime_error("CA file '" + ca + "': " + openssl_errors());
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    return ctx;
  }();
  return context.get();
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

/// The value of header `name` (lower case) in an HTTP response head, trimmed; nullopt if absent.
std::optional<std::string> header_value(std::string_view head, std::string_view name) {
  std::size_t at = head.find("\r\n");
  while (at != std::string_view::npos) {
    const std::size_t begin = at + 2;
    const std::size_t end = head.find("\r\n", begin);
    const auto line = head.substr(begin, end == std::string_view::npos ? end : end - begin);
    const std::size_t colon = line.find(':');
    if (colon != std::string_view::npos && lower(line.substr(0, colon)) == name) {
      auto value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);
      return std::string(value);
    }
    at = end;
  }
  return std::nullopt;
}

}  // namespace

struct mqtt_peer::tls_session {
  tls_session() = default;
  tls_session(const tls_session&) = delete;
  tls_session& operator=(const tls_session&) = delete;
  ~tls_session() {
    if (ssl != nullptr) SSL_free(ssl);  // sends nothing: no close_notify
  }
  SSL* ssl = nullptr;
};

mqtt_peer::mqtt_peer(std::uint16_t port, const std::string& host)
    : mqtt_peer(port, peer_options{}, host) {}

mqtt_peer::mqtt_peer(std::uint16_t port, peer_options options, const std::string& host)
    : transport_(options.transport.value_or(test_transport())) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
  if (options.receive_buffer > 0) {
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &options.receive_buffer,
                 sizeof options.receive_buffer);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::system_error(err, std::generic_category(), "connect");
  }
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  try {
    if (uses_tls(transport_)) start_tls(host);
    if (uses_websocket(transport_)) upgrade_to_websocket(host, port);
  } catch (...) {
    close();
    throw;
  }
}

mqtt_peer::~mqtt_peer() {
  close();
}

void mqtt_peer::close() {
  tls_.reset();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void mqtt_peer::start_tls(const std::string& host) {
  tls_ = std::make_unique<tls_session>();
  SSL* ssl = tls_->ssl = SSL_new(client_context());
  if (ssl == nullptr) throw std::runtime_error("SSL_new: " + openssl_errors());
  SSL_set_fd(ssl, fd_);
  // The certificate must name the address connected to (its subjectAltName is IP:127.0.0.1).
  if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) != 1) {
    ERR_clear_error();
    SSL_set1_host(ssl, host.c_str());
  }
  SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE);
  // Non-blocking under the hood, so every wait is a poll() with a deadline: a blocking SSL_read
  // could sit on a session ticket or half a record past any timeout.
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  const auto deadline = steady::now() + default_timeout;
  for (;;) {
    ERR_clear_error();
    const int r = SSL_connect(ssl);
    if (r == 1) return;
    const int err = SSL_get_error(ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (!wait_ready(fd_, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
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

void mqtt_peer::upgrade_to_websocket(const std::string& host, std::uint16_t port) {
  std::array<unsigned char, 16> nonce{};
  for (auto& b : nonce)
    b = static_cast<unsigned char>(random_engine()());
  std::array<unsigned char, 25> encoded{};  // base64 of 16 bytes: 24 characters and a NUL
  EVP_EncodeBlock(encoded.data(), nonce.data(), static_cast<int>(nonce.size()));
  const std::string key(reinterpret_cast<const char*>(encoded.data()), 24);
  write_wire("GET /mqtt HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) +
             "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
             "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n");

  const auto deadline = steady::now() + default_timeout;
  std::string response;
  std::size_t head_end = 0;
  while ((head_end = response.find("\r\n\r\n")) == std::string::npos) {
    if (response.size() > max_response_header) {
      throw std::runtime_error("WebSocket upgrade: response header over 16 KiB");
    }
    std::array<char, 4096> chunk{};
    const auto n = read_wire(chunk.data(), chunk.size(), deadline);
    if (n < 0) throw std::runtime_error("WebSocket upgrade: no response within the timeout");
    if (n == 0) {
      throw std::runtime_error("WebSocket upgrade: connection closed after '" +
                               response.substr(0, response.find("\r\n")) + "'");
    }
    response.append(chunk.data(), static_cast<std::size_t>(n));
  }
  frames_in_ = response.substr(head_end + 4);  // frames may follow the head in the same read
  response.resize(head_end + 2);               // keep the last line's CRLF for header_value()
  const std::string status = response.substr(0, response.find("\r\n"));
  if (status.rfind("HTTP/1.1 101", 0) != 0) {
    throw std::runtime_error("WebSocket upgrade refused: " + status);
  }
  const auto expect = [&response](std::string_view name, const std::string& wanted,
                                  bool ignore_case) {
    const auto value = header_value(response, name);
    const bool ok = value && (ignore_case ? lower(*value) == lower(wanted) : *value == wanted);
    if (!ok) {
      throw std::runtime_error("WebSocket upgrade: " + std::string(name) + " is '" +
                               value.value_or("(absent)") + "', expected '" + wanted + "'");
    }
  };
  expect("upgrade", "websocket", true);
  expect("connection", "upgrade", true);
  expect("sec-websocket-accept", mqtt::transport::websocket_accept_key(key), false);
  expect("sec-websocket-protocol", "mqtt", false);  // [MQTT-6.0.0-4]
  unwrap_frames();
}

std::ptrdiff_t mqtt_peer::read_wire(char* into, std::size_t size, steady::time_point deadline) {
  if (steady::now() >= deadline) return -1;
  if (!tls_) {
    if (!wait_ready(fd_, POLLIN, deadline)) return -1;
    const auto n = ::recv(fd_, into, size, 0);
    return n > 0 ? n : 0;
  }
  for (;;) {
    ERR_clear_error();
    const int n = SSL_read(tls_->ssl, into, static_cast<int>(std::min<std::size_t>(size, INT_MAX)));
    if (n > 0) return n;
    const int err = SSL_get_error(tls_->ssl, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      // Records that carry no data (session tickets) end here too: wait for more.
      if (!wait_ready(fd_, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) return -1;
      continue;
    }
    ERR_clear_error();
    return 0;  // close_notify, a reset or an end without close_notify: the connection is over
  }
}

void mqtt_peer::write_wire(std::string_view bytes) {
  while (!bytes.empty() && fd_ >= 0) {
    if (!tls_) {
      const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;  // the broker closed: later receive() calls report it
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    ERR_clear_error();
    const int n = SSL_write(tls_->ssl, bytes.data(),
                            static_cast<int>(std::min<std::size_t>(bytes.size(), INT_MAX)));
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    const int err = SSL_get_error(tls_->ssl, n);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      ERR_clear_error();
      return;  // as above
    }
    // Blocks as a plain TCP send does while the broker does not read.
    pollfd p{fd_, static_cast<short>(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    ::poll(&p, 1, -1);
  }
}

void mqtt_peer::write_frame(std::uint8_t opcode, std::string_view payload) {
  std::string frame;
  frame.reserve(payload.size() + 14);
  frame.push_back(static_cast<char>(0x80 | opcode));  // FIN: every frame is a whole message
  if (payload.size() < 126) {
    frame.push_back(static_cast<char>(0x80 | payload.size()));
  } else if (payload.size() <= 0xffff) {
    frame.push_back(static_cast<char>(0x80 | 126));
    frame.push_back(static_cast<char>(payload.size() >> 8));
    frame.push_back(static_cast<char>(payload.size() & 0xff));
  } else {
    frame.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8)
      frame.push_back(
          static_cast<char>((static_cast<std::uint64_t>(payload.size()) >> shift) & 0xff));
  }
  std::array<char, 4> mask{};  // a client masks every frame (RFC 6455 section 5.3)
  for (auto& b : mask)
    b = static_cast<char>(random_engine()());
  frame.append(mask.data(), mask.size());
  const std::size_t start = frame.size();
  frame.resize(start + payload.size());
  for (std::size_t i = 0; i < payload.size(); ++i)
    frame[start + i] = static_cast<char>(payload[i] ^ mask[i % 4]);
  write_wire(frame);
}

bool mqtt_peer::pump(steady::time_point deadline) {
  if (!uses_websocket(transport_)) {
    auto space = decoder_.prepare(64 * 1024);
    const auto n = read_wire(space.data(), space.size(), deadline);
    if (n < 0) return false;
    if (n == 0) eof_ = true;  // decode what is buffered, then report the end
    decoder_.commit(static_cast<std::size_t>(n));
    return true;
  }
  std::array<char, 16 * 1024> chunk{};
  const auto n = read_wire(chunk.data(), chunk.size(), deadline);
  if (n < 0) return false;
  if (n == 0) {
    eof_ = true;
    return true;
  }
  frames_in_.append(chunk.data(), static_cast<std::size_t>(n));
  unwrap_frames();
  return true;
}

void mqtt_peer::unwrap_frames() {
  std::size_t at = 0;
  while (!eof_ && frames_in_.size() - at >= 2) {
    const auto b0 = static_cast<std::uint8_t>(frames_in_[at]);
    const auto b1 = static_cast<std::uint8_t>(frames_in_[at + 1]);
    if ((b0 & 0x70) != 0) throw std::runtime_error("WebSocket: reserved bits set by the server");
    if ((b1 & 0x80) != 0) throw std::runtime_error("WebSocket: masked frame from the server");
    std::size_t header = 2;
    std::uint64_t length = b1 & 0x7f;
    if (length >= 126) {
      const std::size_t bytes = length == 126 ? 2 : 8;
      if (frames_in_.size() - at < header + bytes) break;
      length = 0;
      for (std::size_t i = 0; i < bytes; ++i)
        length = (length << 8) | static_cast<std::uint8_t>(frames_in_[at + header + i]);
      header += bytes;
    }
    if (frames_in_.size() - at - header < length) break;
    const std::string_view payload(frames_in_.data() + at + header,
                                   static_cast<std::size_t>(length));
    switch (b0 & 0x0f) {
      case op_continuation:
      case op_binary:
        decoder_.feed(payload);  // MQTT packets may span frames [MQTT-6.0.0-2]
        break;
      case op_text:
        throw std::runtime_error("WebSocket: text frame from the server [MQTT-6.0.0-1]");
      case op_close:
        eof_ = true;
        break;
      case op_ping:
        write_frame(op_pong, payload);
        break;
      case op_pong:
        break;
      default:
        throw std::runtime_error("WebSocket: reserved opcode " + std::to_string(b0 & 0x0f));
    }
    at += header + static_cast<std::size_t>(length);
  }
  frames_in_.erase(0, at);
}

void mqtt_peer::send(const codec::packet& p) {
  std::string bytes;
  codec::encode(p, bytes);
  send_raw(bytes);
  if (const auto* c = std::get_if<codec::connect>(&p)) decoder_.set_level(c->level);
}

void mqtt_peer::send_raw(std::string_view bytes) {
  if (!uses_websocket(transport_)) {
    write_wire(bytes);
    return;
  }
  while (!bytes.empty()) {
    const auto frame = bytes.substr(0, max_frame_payload);
    write_frame(op_binary, frame);
    bytes.remove_prefix(frame.size());
  }
}

std::optional<codec::packet> mqtt_peer::receive(ms timeout) {
  const auto deadline = steady::now() + timeout;
  for (;;) {
    auto r = decoder_.next();
    if (!r) return std::nullopt;
    if (*r) return std::move(**r);
    if (fd_ < 0 || eof_) return std::nullopt;
    if (!pump(deadline)) return std::nullopt;
  }
}

bool mqtt_peer::silent_for(ms timeout) {
  if (receive(timeout)) return false;
  return !eof_;
}

bool mqtt_peer::closed_within(ms timeout) {
  const auto deadline = steady::now() + timeout;
  while (!eof_) {
    const auto left = std::chrono::duration_cast<ms>(deadline - steady::now());
    if (left.count() <= 0) return false;
    if (!receive(left) && !eof_) return false;
  }
  return true;
}

std::optional<codec::connack> mqtt_peer::connect(codec::connect c) {
  send(c);
  auto p = receive();
  if (!p) return std::nullopt;
  if (auto* ack = std::get_if<codec::connack>(&*p)) return *ack;
  return std::nullopt;
}

std::optional<codec::connack> mqtt_peer::connect(const std::string& client_id, bool clean,
                                                 std::uint16_t keep_alive) {
  return connect(
      codec::connect{.clean_session = clean, .keep_alive = keep_alive, .client_id = client_id});
}

std::optional<codec::suback_return_code> mqtt_peer::subscribe(const std::string& filter,
                                                              codec::qos_level qos,
                                                              std::uint16_t packet_id) {
  send(codec::subscribe{packet_id, {{filter, qos}}});
  for (;;) {
    auto p = receive();
    if (!p) return std::nullopt;
    if (auto* ack = std::get_if<codec::suback>(&*p)) {
      if (ack->packet_id != packet_id || ack->return_codes.size() != 1) return std::nullopt;
      return ack->return_codes[0];
    }
  }
}

std::optional<codec::publish> mqtt_peer::receive_publish(ms timeout) {
  const auto deadline = steady::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<ms>(deadline - steady::now());
    auto p = receive(std::max(left, ms(0)));
    if (!p) return std::nullopt;
    if (auto* pub = std::get_if<codec::publish>(&*p)) return std::move(*pub);
  }
}

}  // namespace ebus::test
