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

  /// Moves time forward by `d`, running every wake-up and alarm that becomes due, in deadline
  /// order (a wake-up before an alarm due at the same time).
  void advance(duration d) {
    const time_point target = now_ + d;
    for (;;) {
      const auto alarm_at = next_alarm();
      const bool wakeup_due = !wakeups_.empty() && wakeups_.begin()->first <= target;
      const bool alarm_due = alarm_at && *alarm_at <= target;
      if (wakeup_due && (!alarm_due || wakeups_.begin()->first <= *alarm_at)) {
        auto node = wakeups_.extract(wakeups_.begin());
        now_ = std::max(now_, node.key());
        node.mapped()();
      } else if (alarm_due) {
        now_ = std::max(now_, *alarm_at);
        ring_next();
      } else {
        break;
      }
    }
    now_ = target;
  }

  /// Wake-ups and alarms waiting for their time.
  [[nodiscard]] std::size_t scheduled() const noexcept { return wakeups_.size() + armed_alarms(); }

 private:
  time_point now_{std::chrono::hours(1)};
  std::multimap<time_point, std::function<void()>> wakeups_;
};

}  // namespace ebus::test
