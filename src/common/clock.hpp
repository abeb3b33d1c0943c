#pragma once
// Time as a value. Core logic asks a clock for `now()` and for a wake-up at a deadline; it never
// reads std::chrono directly, so tests drive time with a manual clock and never sleep.

#include <chrono>
#include <functional>

namespace ebus {

/// Source of time and of wake-ups for code that runs on the event loop.
/// Thread safety: all calls on the loop thread.
class clock {
 public:
  using duration = std::chrono::steady_clock::duration;
  using time_point = std::chrono::steady_clock::time_point;

  clock() = default;
  clock(const clock&) = delete;
  clock& operator=(const clock&) = delete;
  virtual ~clock() = default;

  /// Current time on a monotonic scale.
  [[nodiscard]] virtual time_point now() const noexcept = 0;

  /// Runs `fn` once on the loop thread when `now() >= at`. There is no cancellation: owners
  /// guard `fn` with a liveness token and treat early or stale wake-ups as harmless.
  virtual void call_at(time_point at, std::function<void()> fn) = 0;
};

/// Wall-clock milliseconds since the Unix epoch (beehive's `header.timestamp`).
[[nodiscard]] inline std::int64_t unix_millis() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace ebus
