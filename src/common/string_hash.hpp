#pragma once
// The hash of the string-keyed maps on the message path (topic levels in the subscription and
// retained trees, bus groups and modules, users): XXH3, inlined, which hashes a short topic level
// several times faster than std::hash's out-of-line murmur. The seed is drawn once per process,
// so clients cannot precompute keys that collide in one bucket of a running daemon.

#include <cstddef>
#include <cstdint>
#include <random>
#include <string_view>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace ebus {

namespace detail {
inline std::uint64_t draw_hash_seed() {
  std::random_device device;
  return (std::uint64_t{device()} << 32) ^ device();
}
inline const std::uint64_t hash_seed = draw_hash_seed();
}  // namespace detail

/// Transparent string hash: a std::string_view finds a std::string key without allocating.
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return static_cast<std::size_t>(XXH3_64bits_withSeed(s.data(), s.size(), detail::hash_seed));
  }
};

}  // namespace ebus
