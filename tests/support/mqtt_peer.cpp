#include "ebus_test/mqtt_peer.hpp"

#include <arpa/inet.h>
#include <array>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>

#include <climits>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "mqtt/codec/encoder.hpp"

namespace ebus::test {

namespace codec = mqtt::codec;
using steady = std::chrono::steady_clock;

namespace {

// Larger sends are split: a real client's frames stay near its packets, and the broker caps one
// frame at its maximum packet size plus headroom.
constexpr std::size_t max_frame_payload = std::size_t{64} * 1024;

/// Waits until `fd` is ready for `events`; false once `deadline` has passed.
bool wait_ready(int fd, short events, steady::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
  if (left.count() <= 0) return false;
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, static_cast<int>(left.count())) > 0;
}

/// One client context per process: it trusts the test certificate only.
ssl_ctx_st* client_context() {
  static const mqtt::transport::tls_context_ptr context =
      mqtt::transport::make_tls_client_context(test_tls_files().cert_file, false);
  return context.get();
}

}  // namespace

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
  tls_ = mqtt::transport::make_tls_client_session(client_context(), fd_, host);
  // Non-blocking under the hood, so every wait is a poll() with a deadline: a blocking SSL_read
  // could sit on a session ticket or half a record past any timeout.
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  const auto deadline = steady::now() + default_timeout;
  mqtt::transport::tls_client_handshake(tls_.get(), [this, deadline](bool want_read) {
    return wait_ready(fd_, want_read ? POLLIN : POLLOUT, deadline);
  });
}

void mqtt_peer::upgrade_to_websocket(const std::string& host, std::uint16_t port) {
  ws_.emplace(mqtt::transport::websocket_client_options{.host = host + ":" + std::to_string(port)});
  write_wire(ws_->request());

  const auto deadline = steady::now() + default_timeout;
  std::string response;
  for (;;) {
    auto r = ws_->check_upgrade(response);
    using state = mqtt::transport::websocket_client::upgrade_state;
    if (r.state == state::refused) throw std::runtime_error(r.reason);
    if (r.state == state::accepted) {
      frames_in_ = response.substr(r.head_bytes);  // frames may follow the head in the same read
      break;
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
    const int n =
        SSL_read(tls_.get(), into, static_cast<int>(std::min<std::size_t>(size, INT_MAX)));
    if (n > 0) return n;
    const int err = SSL_get_error(tls_.get(), n);
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
    const int n = SSL_write(tls_.get(), bytes.data(),
                            static_cast<int>(std::min<std::size_t>(bytes.size(), INT_MAX)));
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    const int err = SSL_get_error(tls_.get(), n);
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
  ws_->frame(opcode, payload, frame);
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
  if (eof_) return;
  std::string pongs;
  const auto r = ws_->unwrap(
      frames_in_, [this](std::string_view mqtt) { decoder_.feed(mqtt); }, pongs);
  frames_in_.erase(0, r.consumed);
  write_wire(pongs);
  using state = mqtt::transport::websocket_client::unwrap_state;
  if (r.state == state::failed) throw std::runtime_error(r.reason);
  if (r.state == state::closed) eof_ = true;
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
    write_frame(mqtt::transport::websocket_client::op_binary, frame);
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
