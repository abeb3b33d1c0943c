#pragma once
// Helpers to drive coroutines in unit tests without threads or sleeps: spawn, then poll the
// io_context until the result is there.

#include <optional>

#include "common/asio.hpp"

namespace ebus::test {

/// Starts `aw` on `io`; the returned optional fills in once the coroutine finishes. Exceptions
/// propagate out of io.poll().
template <class T>
std::shared_ptr<std::optional<T>> spawn(asio::io_context& io, asio::awaitable<T> aw) {
  auto result = std::make_shared<std::optional<T>>();
  asio::co_spawn(io, std::move(aw), [result](const std::exception_ptr& e, T value) {
    if (e) std::rethrow_exception(e);
    result->emplace(std::move(value));
  });
  return result;
}

/// Runs ready handlers until none is left (never blocks).
inline void drain(asio::io_context& io) {
  io.restart();
  io.poll();
}

}  // namespace ebus::test
