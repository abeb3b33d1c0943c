#include "remote/sizing.hpp"

#include <algorithm>
#include <cerrno>
#include <limits>
#include <memory>
#include <sys/socket.h>
#include <unistd.h>

namespace ebus::remote {
namespace {

/// Sends `n` bytes from `data` as one packet on `fd` and discards it on `peer`; false when the
/// kernel refuses a packet of that size.
bool packet_fits(int fd, int peer, const char* data, std::size_t n) {
  const auto sent = ::send(fd, data, n, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (sent < 0 || static_cast<std::size_t>(sent) != n) return false;
  char byte = 0;
  (void)::recv(peer, &byte, 1, MSG_DONTWAIT | MSG_TRUNC);  // MSG_TRUNC: the rest is dropped
  return true;
}

}  // namespace

std::size_t required_message_bytes(std::size_t max_mqtt_packet) noexcept {
  constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
  if (max_mqtt_packet > (max - envelope_bytes) / max_json_expansion) return max;
  return max_mqtt_packet * max_json_expansion + envelope_bytes;
}

send_buffer size_packet_send_buffer(int fd, std::size_t packet_bytes) noexcept {
  const auto current = [fd]() -> std::size_t {
    int size = 0;
    socklen_t length = sizeof size;
    if (::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, &length) != 0 || size <= 0) return 0;
    return static_cast<std::size_t>(size);
  };
  const auto limit_of = [packet_bytes](std::size_t size) {
    return size > packet_overhead ? std::min(packet_bytes, size - packet_overhead) : 0;
  };
  send_buffer out;
  if (const auto size = current(); size >= packet_bytes + packet_overhead) {
    out.packet_limit = packet_bytes;  // large enough already: never shrunk
    return out;
  }
  // Linux doubles the value asked for (for its bookkeeping): half of what the packet needs is
  // asked, so that a client that does not read holds no more than that in the kernel. The
  // value read back is what counts.
  const auto wanted = static_cast<int>(std::min<std::size_t>(
      (packet_bytes + packet_overhead + 1) / 2 + 256, std::numeric_limits<int>::max() / 2));
  out.forced = ::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &wanted, sizeof wanted) == 0;
  if (!out.forced) (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &wanted, sizeof wanted);
  const auto size = current();
  out.packet_limit = size == 0 ? packet_bytes : limit_of(size);  // unknown: the kernel decides
  return out;
}

send_buffer probe_packet_limit(std::size_t packet_bytes) {
  int pair[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return {};
  send_buffer out = size_packet_send_buffer(pair[0], packet_bytes);
  // Never written: the kernel reads zero pages, so the probe costs no memory.
  const auto data =
      std::make_unique_for_overwrite<char[]>(std::max<std::size_t>(1, out.packet_limit));
  if (out.packet_limit > 0 && !packet_fits(pair[0], pair[1], data.get(), out.packet_limit)) {
    std::size_t good = 0;  // largest size known to fit
    std::size_t bad = out.packet_limit;
    while (bad - good > 1) {
      const std::size_t mid = good + (bad - good) / 2;
      (packet_fits(pair[0], pair[1], data.get(), mid) ? good : bad) = mid;
    }
    out.packet_limit = good;
  }
  ::close(pair[0]);
  ::close(pair[1]);
  return out;
}

}  // namespace ebus::remote
