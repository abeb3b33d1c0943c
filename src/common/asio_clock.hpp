#pragma once
// The production clock: std::chrono::steady_clock, wake-ups through Asio timers on the loop.
// Thread safety: loop thread only (now() from any thread).

#include <memory>
#include <optional>
#include <unordered_set>

#include "common/asio.hpp"
#include "common/clock.hpp"

namespace ebus {

class asio_clock final : public clock {
 public:
  explicit asio_clock(asio::any_io_executor executor)
      : executor_(std::move(executor)), alarm_(std::make_shared<system_alarm>(executor_)) {}
  ~asio_clock() override { alarm_->timer.cancel(); }

  [[nodiscard]] time_point now() const noexcept override {
    return std::chrono::steady_clock::now();
  }

  void call_at(time_point at, std::function<void()> fn) override {
    auto wake = std::make_shared<asio::steady_timer>(executor_, at);
    pending_->insert(wake.get());
    wake->async_wait([wake, pending = pending_, fn = std::move(fn)](std::error_code ec) {
      pending->erase(wake.get());
      if (!ec) fn();
    });
  }

  /// Drops every wake-up not yet due, so that a loop being shut down is not kept running until
  /// the last deadline (a 30 s request timeout, say). Loop thread only.
  void cancel_all() {
    // cancel() only queues the completions; they erase themselves from the set later.
    for (auto* wake : *pending_)
      wake->cancel();
    disarm_all();
    alarms_changed();
  }

 private:
  // Alarms share one Asio timer, set to the earliest deadline of the clock's heap: an alarm
  // costs a heap slot and no Asio wait, and re-arming it (a keep-alive deadline pushed back by
  // every packet) moves it in the heap instead of cancelling and starting a wait.
  struct system_alarm {
    explicit system_alarm(const asio::any_io_executor& executor) : timer(executor) {}
    asio::steady_timer timer;
    std::optional<time_point> at;  // while a wait is pending
  };

  void alarms_changed() override {
    const auto first = next_alarm();
    if (!first) {
      alarm_->at.reset();
      alarm_->timer.cancel();  // a loop with nothing armed may finish
      return;
    }
    if (alarm_->at && *alarm_->at <= *first) return;
    alarm_->at = *first;
    alarm_->timer.expires_at(*first);  // cancels the wait for a later deadline
    // The handler may run after the clock is gone (its completion already queued): it holds
    // only a weak reference, and the clock is reached through the state it owns.
    alarm_->timer.async_wait(
        [this, weak = std::weak_ptr<system_alarm>(alarm_)](std::error_code ec) {
          if (ec) return;  // replaced by an earlier deadline, or stopped
          if (weak.expired()) return;
          ring();
        });
  }

  void ring() {
    alarm_->at.reset();
    const time_point t = now();
    while (const auto first = next_alarm()) {
      if (*first > t) break;
      ring_next();
    }
    alarms_changed();
  }

  asio::any_io_executor executor_;
  // Shared with the completion handlers, which may run after the clock is gone.
  std::shared_ptr<std::unordered_set<asio::steady_timer*>> pending_ =
      std::make_shared<std::unordered_set<asio::steady_timer*>>();
  std::shared_ptr<system_alarm> alarm_;
};

}  // namespace ebus
