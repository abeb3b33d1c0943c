#pragma once
// Counts heap allocations, for tests of code that must not allocate on its hot path. Linking
// ebus_test_allocation_counter replaces the global operator new of the whole test executable.

#include <cstddef>

namespace ebus::test {

/// Calls of operator new since the program started.
[[nodiscard]] std::size_t allocations() noexcept;

}  // namespace ebus::test
