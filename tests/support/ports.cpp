#include "ebus_test/ports.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <mutex>
#include <netinet/in.h>
#include <set>
#include <stdexcept>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>

namespace ebus::test {
namespace {

// The kernel picks a port that is free now; the listener binds it moments later.
std::uint16_t unbound_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) throw std::system_error(err, std::generic_category(), "bind 127.0.0.1:0");
  return ntohs(a.sin_port);
}

}  // namespace

std::uint16_t free_port() {
  static std::mutex mutex;
  static std::set<std::uint16_t> given;
  const std::scoped_lock lock(mutex);
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::uint16_t port = unbound_port();
    if (given.insert(port).second) return port;
  }
  throw std::runtime_error("no free port that was not given before");
}

}  // namespace ebus::test
