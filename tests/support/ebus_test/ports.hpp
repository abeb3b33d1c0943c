#pragma once
// Loopback TCP ports for tests that start listeners (the daemon, mosquitto).

#include <cstdint>

namespace ebus::test {

/// A TCP port on 127.0.0.1 that was free a moment ago and that no earlier call in this process
/// returned: the kernel may hand a closed port out again, and a test that takes several (one
/// per listener, or a daemon and a mosquitto) must not get the same one twice.
std::uint16_t free_port();

}  // namespace ebus::test
