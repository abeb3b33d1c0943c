#pragma once
// ebus::expected is tl::expected (Debian's libexpected-dev) until the project moves to C++23,
// where std::expected takes its place with the same interface.

#include <tl/expected.hpp>

namespace ebus {

template <class T, class E>
using expected = tl::expected<T, E>;

template <class E>
using unexpected = tl::unexpected<E>;

/// Shorthand for returning an error: `return ebus::fail(bus_errc::no_route);`
template <class E>
[[nodiscard]] auto fail(E&& e) {
  return tl::make_unexpected(std::forward<E>(e));
}

}  // namespace ebus
