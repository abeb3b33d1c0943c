#pragma once
// A clock that moves only when a test advances it. Wake-ups run inside advance(), in deadline
// order, so tests of timeouts take microseconds and never sleep.

#include <map>

#include "common/clock.hpp"

namespace ebus::test {

class manual_clock final : public clock {
 public:
  [[nodiscard]] time_point now() const noexcept override { return now_; }

  void call_at(time_point at, std::function<void()> fn) override {
    wakeups_.emplace(at, std::move(fn));
  }

  /// Moves time forward by `d`, running every wake-up that becomes due.
  void advance(duration d) {
    const time_point target = now_ + d;
    while (!wakeups_.empty() && wakeups_.begin()->first <= target) {
      auto node = wakeups_.extract(wakeups_.begin());
      now_ = std::max(now_, node.key());
      node.mapped()();
    }
    now_ = target;
  }

  [[nodiscard]] std::size_t scheduled() const noexcept { return wakeups_.size(); }

 private:
  time_point now_{std::chrono::hours(1)};
  std::multimap<time_point, std::function<void()>> wakeups_;
};

}  // namespace ebus::test
