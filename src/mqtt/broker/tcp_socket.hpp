#pragma once
// Plain TCP on a bare non-blocking descriptor whose readiness comes from the server's
// readiness_set: reads and writes straight to the socket, and the coroutine waits for "readable"
// or "writable" again. The owner (a connection on a tcp:// listener, or the TCP stream under a
// WebSocket) keeps the descriptor in the set, hears its readiness and completes the waits; this
// class holds the descriptor only, so a connection that owns its socket pays 4 bytes for it.
//
// Thread safety: loop thread only.

#include <memory>
#include <system_error>

#include "common/asio.hpp"
#include "mqtt/broker/readiness_set.hpp"
#include "mqtt/broker/stream.hpp"

namespace ebus::mqtt::broker {

/// A coroutine suspended until a socket is ready again, kept only while it waits.
class socket_wait {
 public:
  virtual ~socket_wait() = default;
  /// Resumes the coroutine on a later turn of the loop, never inline.
  virtual void complete(std::error_code ec) = 0;

  /// Completes the wait in `slot`, if any.
  static void complete(std::unique_ptr<socket_wait>& slot, std::error_code ec) {
    if (auto w = std::move(slot)) w->complete(ec);
  }
  /// Suspends until complete(slot, ec); returns ec.
  static awaitable<std::error_code> wait(std::unique_ptr<socket_wait>& slot);
};

class tcp_socket {
 public:
  /// Takes `fd` (connected, non-blocking); -1: none.
  explicit tcp_socket(int fd = -1) noexcept : fd_(fd) {}
  tcp_socket(const tcp_socket&) = delete;
  tcp_socket& operator=(const tcp_socket&) = delete;
  /// Closes a descriptor the owner did not close(): it must have left the readiness set.
  ~tcp_socket();

  [[nodiscard]] int fd() const noexcept { return fd_; }

  /// Reads what has arrived; would_block when nothing has.
  stream::read_result read_ready(asio::mutable_buffer into) noexcept;
  /// Reads at least one byte, waiting in `wait` for readability.
  awaitable<stream::read_result> read_some(asio::mutable_buffer into,
                                           std::unique_ptr<socket_wait>& wait);
  /// Writes all of `batch`, waiting in `wait` for room.
  awaitable<std::error_code> write(stream::write_batch batch, std::unique_ptr<socket_wait>& wait);
  /// Takes the descriptor out of `readiness`, shuts the connection down both ways and closes
  /// it. No more I/O.
  void close(readiness_set& readiness) noexcept;

 private:
  int fd_;
};

}  // namespace ebus::mqtt::broker
