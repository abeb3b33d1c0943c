#pragma once
// The one place that includes Asio. Asio is costly to compile on a 2-core box: only the layers
// that do I/O (bus, broker, client, daemon) include this header; codec and topic never do.

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>

namespace ebus {

template <class T = void>
using awaitable = asio::awaitable<T>;

/// Completion handler for co_spawn that rethrows, so that no exception escapes a coroutine
/// unnoticed (asio::detached drops them in Asio 1.22). Use rethrow_handler{} where an exception
/// must stop io_context::run(), or pass a handler that logs and cleans up.
struct rethrow_handler {
  void operator()(const std::exception_ptr& e) const {
    if (e) std::rethrow_exception(e);
  }
};

}  // namespace ebus
