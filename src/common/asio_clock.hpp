#pragma once
// The production clock: std::chrono::steady_clock, wake-ups through Asio timers on the loop.

#include <memory>
#include <unordered_set>

#include "common/asio.hpp"
#include "common/clock.hpp"

namespace ebus {

class asio_clock final : public clock {
 public:
  explicit asio_clock(asio::any_io_executor executor) : executor_(std::move(executor)) {}

  [[nodiscard]] time_point now() const noexcept override {
    return std::chrono::steady_clock::now();
  }

  void call_at(time_point at, std::function<void()> fn) override {
    auto timer = std::make_shared<asio::steady_timer>(executor_, at);
    pending_->insert(timer.get());
    timer->async_wait([timer, pending = pending_, fn = std::move(fn)](std::error_code ec) {
      pending->erase(timer.get());
      if (!ec) fn();
    });
  }

  /// Drops every wake-up not yet due, so that a loop being shut down is not kept running until
  /// the last deadline (a 30 s request timeout, say). Loop thread only.
  void cancel_all() {
    // cancel() only queues the completions; they erase themselves from the set later.
    for (auto* timer : *pending_)
      timer->cancel();
  }

 private:
  asio::any_io_executor executor_;
  // Shared with the completion handlers, which may run after the clock is gone.
  std::shared_ptr<std::unordered_set<asio::steady_timer*>> pending_ =
      std::make_shared<std::unordered_set<asio::steady_timer*>>();
};

}  // namespace ebus
