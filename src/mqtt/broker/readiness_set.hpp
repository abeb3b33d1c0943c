#pragma once
// Readiness of many sockets through one registration in the loop: an epoll set of the broker's
// own, which Asio waits on as a single descriptor. Asio keeps about 170 bytes of reactor state
// per socket it knows and about 330 bytes per pending wait; a socket in this set costs its owner
// a pointer and the kernel its epoll entry, so an idle MQTT connection holds no readiness state
// of its own in the process.
//
// Sockets are registered edge-triggered for input and output: a watcher is told when a socket
// becomes readable or writable, so its owner waits only after a read or a write found the socket
// drained or full (then the next edge cannot be missed), and ignores what it was not waiting for.
// Each wake-up reads at most 256 events; more go on a later turn of the loop.
//
// Thread safety: loop thread only.

#include <cstdint>
#include <memory>
#include <system_error>

#include "common/asio.hpp"

namespace ebus::mqtt::broker {

class readiness_set {
 public:
  /// Told about one socket's readiness. on_ready runs inside the set's dispatch: it must not
  /// close sockets or destroy watchers there, only hand the news on (post) to whoever waits.
  class watcher {
   public:
    /// `readable`: input, end of input or an error; `writable`: room to write, or an error.
    virtual void on_ready(bool readable, bool writable) noexcept = 0;

   protected:
    watcher() = default;
    watcher(const watcher&) = default;
    watcher& operator=(const watcher&) = default;
    ~watcher() = default;
  };

  /// Throws std::system_error when the kernel refuses an epoll set.
  explicit readiness_set(asio::any_io_executor executor);
  readiness_set(const readiness_set&) = delete;
  readiness_set& operator=(const readiness_set&) = delete;
  ~readiness_set();

  /// Watches `fd` until remove(fd). `w` must outlive the registration.
  [[nodiscard]] std::error_code add(int fd, watcher& w) noexcept;
  /// Call before closing `fd`: a descriptor still open in another process (a child between fork
  /// and exec) would otherwise stay in the set.
  void remove(int fd) noexcept;

  /// Stops watching (the loop may then run out of work): watchers are not told anything more.
  /// For shutdown.
  void close() noexcept;

  [[nodiscard]] const asio::any_io_executor& executor() const noexcept { return executor_; }

  /// Events handed to watchers so far (for tests and statistics).
  [[nodiscard]] std::uint64_t events() const noexcept { return events_; }

 private:
  void wait();
  void dispatch();

  asio::any_io_executor executor_;
  asio::posix::stream_descriptor epoll_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::uint64_t events_ = 0;
  bool closed_ = false;
};

}  // namespace ebus::mqtt::broker
