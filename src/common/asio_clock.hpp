#pragma once
// The production clock: std::chrono::steady_clock, wake-ups through Asio timers on the loop.

#include <memory>

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
    timer->async_wait([timer, fn = std::move(fn)](std::error_code ec) {
      if (!ec) fn();
    });
  }

 private:
  asio::any_io_executor executor_;
};

}  // namespace ebus
