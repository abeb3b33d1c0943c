#include "mqtt/broker/peer_address.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>

namespace ebus::mqtt::broker {

peer_address peer_address::of_socket(int fd) noexcept {
  peer_address peer;
  sockaddr_storage storage{};
  auto size = static_cast<socklen_t>(sizeof storage);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &size) != 0) return peer;
  if (storage.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
    std::memcpy(peer.address_.data(), &in->sin_addr, sizeof in->sin_addr);
    peer.port_ = ntohs(in->sin_port);
    peer.family_ = AF_INET;
  } else if (storage.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    std::memcpy(peer.address_.data(), &in6->sin6_addr, sizeof in6->sin6_addr);
    peer.port_ = ntohs(in6->sin6_port);
    peer.family_ = AF_INET6;
  }
  return peer;
}

std::string peer_address::to_string() const {
  if (!known()) return "unknown";
  char text[INET6_ADDRSTRLEN] = {};
  if (::inet_ntop(family_, address_.data(), text, sizeof text) == nullptr) return "unknown";
  return std::string(text) + ":" + std::to_string(port_);
}

}  // namespace ebus::mqtt::broker
