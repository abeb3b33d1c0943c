#pragma once
// The embedded broker on 127.0.0.1 with a free port, its loop on a background thread, for
// conformance and integration tests. Tests touch broker state only through call().

#include <future>
#include <memory>
#include <thread>

#include "common/asio.hpp"
#include "common/asio_clock.hpp"
#include "mqtt/broker/server.hpp"

namespace ebus::test {

class broker_harness {
 public:
  explicit broker_harness(mqtt::broker::broker_options options = {});
  /// The broker on `clk` (a manual_clock, say) instead of the steady clock. `clk` outlives the
  /// harness and is touched on the loop thread only: advance it through call().
  broker_harness(mqtt::broker::broker_options options, clock& clk);
  broker_harness(const broker_harness&) = delete;
  broker_harness& operator=(const broker_harness&) = delete;
  ~broker_harness();

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

  /// Runs `f(server&)` on the loop thread and returns its result.
  template <class F>
  auto call(F&& f) {
    using result_t = decltype(f(*server_));
    std::packaged_task<result_t()> task([&] { return f(*server_); });
    auto fut = task.get_future();
    asio::post(io_, [&task] { task(); });
    return fut.get();
  }

 private:
  asio::io_context io_{1};
  asio_clock steady_clock_{io_.get_executor()};
  std::unique_ptr<mqtt::broker::server> server_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace ebus::test
