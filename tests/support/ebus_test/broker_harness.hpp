#pragma once
// The embedded broker on 127.0.0.1 with free ports, its loop on a background thread, for
// conformance and integration tests. Tests touch broker state only through call().
//
// By default it has one listener speaking the process's test_transport() (EBUS_TEST_TRANSPORT),
// so an mqtt_peer with default options reaches it whatever the transport; tests about listeners
// themselves give their own list, built with test_listener().

#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/asio.hpp"
#include "common/asio_clock.hpp"
#include "ebus_test/transport.hpp"
#include "mqtt/broker/server.hpp"

namespace ebus::test {

/// A listener on 127.0.0.1, port 0, for `kind`; TLS ones use test_tls_files() and ask for no
/// client certificate; WebSocket ones serve /mqtt.
[[nodiscard]] mqtt::broker::listener_options test_listener(transport_kind kind);

class broker_harness {
 public:
  explicit broker_harness(mqtt::broker::broker_options options = {});
  /// The broker on `clk` (a manual_clock, say) instead of the steady clock. `clk` outlives the
  /// harness and is touched on the loop thread only: advance it through call().
  broker_harness(mqtt::broker::broker_options options, clock& clk);
  /// The broker with these listeners (at least one) instead of the test transport's.
  broker_harness(mqtt::broker::broker_options options,
                 std::vector<mqtt::broker::listener_options> listeners);
  broker_harness(mqtt::broker::broker_options options,
                 std::vector<mqtt::broker::listener_options> listeners, clock& clk);
  broker_harness(const broker_harness&) = delete;
  broker_harness& operator=(const broker_harness&) = delete;
  ~broker_harness();

  /// The first listener's port.
  [[nodiscard]] std::uint16_t port() const noexcept { return ports_.front(); }
  /// The port of listener `i`, in the order given.
  [[nodiscard]] std::uint16_t port(std::size_t i) const { return ports_.at(i); }

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
  std::vector<std::uint16_t> ports_;
  std::thread thread_;
};

}  // namespace ebus::test
