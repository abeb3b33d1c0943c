#include "mqtt/broker/readiness_set.hpp"

#include <array>
#include <cerrno>
#include <sys/epoll.h>
#include <unistd.h>

namespace ebus::mqtt::broker {
namespace {

constexpr int events_per_turn = 256;

int make_epoll_set() {
  const int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::system_category(), "epoll_create1");
  return fd;
}

}  // namespace

readiness_set::readiness_set(asio::any_io_executor executor)
    : executor_(std::move(executor)), epoll_(executor_, make_epoll_set()) {
  wait();
}

readiness_set::~readiness_set() {
  *alive_ = false;
}

std::error_code readiness_set::add(int fd, watcher& w) noexcept {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = &w;
  if (::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return {errno, asio::error::get_system_category()};
  }
  return {};
}

void readiness_set::remove(int fd) noexcept {
  ::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_DEL, fd, nullptr);
}

void readiness_set::close() noexcept {
  closed_ = true;
  std::error_code ignored;
  epoll_.cancel(ignored);
}

void readiness_set::wait() {
  // Asio watches the set edge-triggered, and its wait does not complete for an edge that came
  // while no wait was pending. None is lost: the set is drained after every completion, and an
  // event that arrives after the drain makes a new edge for the wait armed here.
  epoll_.async_wait(asio::posix::descriptor_base::wait_read,
                    [this, alive = alive_](std::error_code ec) {
                      if (!*alive || ec || closed_) return;  // destroyed or closed
                      dispatch();
                    });
}

void readiness_set::dispatch() {
  std::array<epoll_event, events_per_turn> ready;
  int n = 0;
  do {
    n = ::epoll_wait(epoll_.native_handle(), ready.data(), events_per_turn, 0);
  } while (n < 0 && errno == EINTR);
  for (int i = 0; i < n; ++i) {
    const auto e = ready[static_cast<std::size_t>(i)].events;
    constexpr std::uint32_t failed = EPOLLERR | EPOLLHUP;
    static_cast<watcher*>(ready[static_cast<std::size_t>(i)].data.ptr)
        ->on_ready((e & (EPOLLIN | EPOLLRDHUP | failed)) != 0, (e & (EPOLLOUT | failed)) != 0);
  }
  events_ += n > 0 ? static_cast<std::uint64_t>(n) : 0;
  if (n == events_per_turn) {
    // More may be ready: the rest on a later turn, after the handlers these events posted.
    asio::post(executor_, [this, alive = alive_] {
      if (*alive && !closed_) dispatch();
    });
    return;
  }
  wait();
}

}  // namespace ebus::mqtt::broker
