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
    auto wake = std::make_shared<asio::steady_timer>(executor_, at);
    pending_->insert(wake.get());
    wake->async_wait([wake, pending = pending_, fn = std::move(fn)](std::error_code ec) {
      pending->erase(wake.get());
      if (!ec) fn();
    });
  }

  [[nodiscard]] std::unique_ptr<timer> make_timer(std::function<void()> fn) override {
    return std::make_unique<steady_timer_adapter>(executor_, std::move(fn));
  }

  /// Drops every wake-up not yet due, so that a loop being shut down is not kept running until
  /// the last deadline (a 30 s request timeout, say). Loop thread only.
  void cancel_all() {
    // cancel() only queues the completions; they erase themselves from the set later.
    for (auto* wake : *pending_)
      wake->cancel();
  }

 private:
  // A cancelled or re-armed wait completes with operation_aborted and runs nothing.
  class steady_timer_adapter final : public timer {
   public:
    steady_timer_adapter(const asio::any_io_executor& executor, std::function<void()> fn)
        : timer_(executor), fn_(std::make_shared<std::function<void()>>(std::move(fn))) {}

    void arm(time_point at) override {
      timer_.expires_at(at);
      // Weak: a wait that was already due when the timer went away must not run fn.
      timer_.async_wait([fn = std::weak_ptr<std::function<void()>>(fn_)](std::error_code ec) {
        if (ec) return;
        if (const auto f = fn.lock()) (*f)();
      });
    }
    void cancel() noexcept override { timer_.cancel(); }

   private:
    asio::steady_timer timer_;
    std::shared_ptr<std::function<void()>> fn_;
  };

  asio::any_io_executor executor_;
  // Shared with the completion handlers, which may run after the clock is gone.
  std::shared_ptr<std::unordered_set<asio::steady_timer*>> pending_ =
      std::make_shared<std::unordered_set<asio::steady_timer*>>();
};

}  // namespace ebus
