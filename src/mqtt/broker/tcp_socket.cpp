#include "mqtt/broker/tcp_socket.hpp"

#include <array>
#include <cerrno>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace ebus::mqtt::broker {
namespace {

using asio::use_awaitable;
using asio::experimental::as_tuple;

asio::error_code last_error() noexcept {
  return {errno, asio::error::get_system_category()};
}

template <class Handler>
class pending_handler final : public socket_wait {
 public:
  explicit pending_handler(Handler h) : handler_(std::move(h)) {}
  void complete(std::error_code ec) override {
    auto executor = asio::get_associated_executor(handler_);
    asio::post(executor, [h = std::move(handler_), ec]() mutable { std::move(h)(ec); });
  }

 private:
  Handler handler_;
};

}  // namespace

awaitable<std::error_code> socket_wait::wait(std::unique_ptr<socket_wait>& slot) {
  auto token = as_tuple(use_awaitable);
  auto [ec] = co_await asio::async_initiate<decltype(token), void(std::error_code)>(
      [&slot](auto handler) {
        slot = std::make_unique<pending_handler<decltype(handler)>>(std::move(handler));
      },
      token);
  co_return ec;
}

tcp_socket::~tcp_socket() {
  if (fd_ >= 0) ::close(fd_);
}

stream::read_result tcp_socket::read_ready(asio::mutable_buffer into) noexcept {
  if (fd_ < 0) return {asio::error::bad_descriptor, 0};
  for (;;) {
    const auto n = ::recv(fd_, into.data(), into.size(), 0);
    if (n > 0) return {{}, static_cast<std::size_t>(n)};
    if (n == 0) return {asio::error::eof, 0};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {asio::error::would_block, 0};
    return {last_error(), 0};
  }
}

awaitable<stream::read_result> tcp_socket::read_some(asio::mutable_buffer into,
                                                     std::unique_ptr<socket_wait>& wait) {
  for (;;) {
    auto r = read_ready(into);
    if (r.first != asio::error::would_block) co_return r;
    if (const auto ec = co_await socket_wait::wait(wait); ec) co_return stream::read_result{ec, 0};
  }
}

awaitable<std::error_code> tcp_socket::write(stream::write_batch batch,
                                             std::unique_ptr<socket_wait>& wait) {
  std::array<iovec, 2> parts{};
  std::size_t first = 0;
  std::size_t count = 0;
  for (const auto& b : batch) {
    if (b.size() != 0) parts[count++] = {const_cast<void*>(b.data()), b.size()};
  }
  while (first < count) {
    if (fd_ < 0) co_return std::error_code(asio::error::bad_descriptor);
    msghdr m{};
    m.msg_iov = &parts[first];
    m.msg_iovlen = count - first;
    const auto n = ::sendmsg(fd_, &m, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) co_return std::error_code(last_error());
      if (const auto ec = co_await socket_wait::wait(wait); ec) co_return ec;
      continue;
    }
    auto sent = static_cast<std::size_t>(n);
    while (first < count && sent >= parts[first].iov_len) {
      sent -= parts[first].iov_len;
      ++first;
    }
    if (first < count) {
      parts[first].iov_base = static_cast<char*>(parts[first].iov_base) + sent;
      parts[first].iov_len -= sent;
    }
  }
  co_return std::error_code{};
}

void tcp_socket::close(readiness_set& readiness) noexcept {
  if (fd_ < 0) return;
  readiness.remove(fd_);
  ::shutdown(fd_, SHUT_RDWR);
  ::close(fd_);
  fd_ = -1;
}

}  // namespace ebus::mqtt::broker
