#include "ebus_test/mqtt_peer.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>

#include "mqtt/codec/encoder.hpp"

namespace ebus::test {

namespace codec = mqtt::codec;

mqtt_peer::mqtt_peer(std::uint16_t port, const std::string& host)
    : mqtt_peer(port, peer_options{}, host) {}

mqtt_peer::mqtt_peer(std::uint16_t port, peer_options options, const std::string& host) {
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
}

mqtt_peer::~mqtt_peer() {
  close();
}

void mqtt_peer::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void mqtt_peer::send(const codec::packet& p) {
  std::string bytes;
  codec::encode(p, bytes);
  send_raw(bytes);
  if (const auto* c = std::get_if<codec::connect>(&p)) decoder_.set_level(c->level);
}

void mqtt_peer::send_raw(std::string_view bytes) {
  while (!bytes.empty() && fd_ >= 0) {
    const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return;  // the broker closed: later receive() calls report it
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::optional<codec::packet> mqtt_peer::receive(ms timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto r = decoder_.next();
    if (!r) return std::nullopt;
    if (*r) return std::move(**r);
    if (fd_ < 0 || eof_) return std::nullopt;
    const auto left = std::chrono::duration_cast<ms>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    auto space = decoder_.prepare(64 * 1024);
    const auto n = ::recv(fd_, space.data(), space.size(), 0);
    if (n <= 0) {
      eof_ = true;
      decoder_.commit(0);
      continue;  // decode what is buffered, then report the end
    }
    decoder_.commit(static_cast<std::size_t>(n));
  }
}

bool mqtt_peer::silent_for(ms timeout) {
  if (receive(timeout)) return false;
  return !eof_;
}

bool mqtt_peer::closed_within(ms timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!eof_) {
    const auto left = std::chrono::duration_cast<ms>(deadline - std::chrono::steady_clock::now());
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
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<ms>(deadline - std::chrono::steady_clock::now());
    auto p = receive(std::max(left, ms(0)));
    if (!p) return std::nullopt;
    if (auto* pub = std::get_if<codec::publish>(&*p)) return std::move(*pub);
  }
}

}  // namespace ebus::test
