#pragma once
// A whole eventbus node (daemon::app) in-process, its loop on a background thread, with
// recording modules standing in for devicetwin (group twin) and edgehub (group hub). Devices
// are real MQTT clients (mosquitto_pub/sub processes); the external broker is a real mosquitto.

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bus/bus.hpp"
#include "bus/message.hpp"
#include "bus/module.hpp"
#include "common/asio.hpp"
#include "config/config.hpp"
#include "daemon/app.hpp"
#include "ebus_test/ports.hpp"

namespace ebus::test {

/// A bus module that keeps every message it receives; readable from the test thread.
class recorder final : public bus::module {
 public:
  recorder(std::string name, std::string group)
      : name_(std::move(name)), group_(std::move(group)) {}

  [[nodiscard]] std::string name() const override { return name_; }
  [[nodiscard]] std::string group() const override { return group_; }
  awaitable<void> run(bus::bus& b) override;

  /// Waits until at least `n` messages arrived; returns a copy of all of them.
  std::vector<bus::message> wait_for(std::size_t n,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(10));
  [[nodiscard]] std::vector<bus::message> messages();

 private:
  std::string name_;
  std::string group_;
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<bus::message> messages_;
};

/// A unique temporary directory, removed with its content on destruction.
class temp_dir {
 public:
  temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir();
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

class node_harness {
 public:
  /// A configuration for tests: node "edge-node", embedded broker on a free port of 127.0.0.1,
  /// database in `dir`, fast reconnects.
  static config::daemon_config test_config(config::mqtt_mode mode, const temp_dir& dir,
                                           const std::string& external_url = {});

  /// Starts the node with recorders "twin" (group twin) and "hub" (group hub) unless
  /// `with_recorders` is false. Throws std::runtime_error when start() fails.
  explicit node_harness(config::daemon_config cfg, bool with_recorders = true);
  node_harness(const node_harness&) = delete;
  node_harness& operator=(const node_harness&) = delete;
  ~node_harness();  // graceful stop, then joins the loop

  /// Port of the embedded broker (0 in mode 2).
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] recorder& twin() noexcept { return *twin_; }
  [[nodiscard]] recorder& hub() noexcept { return *hub_; }

  /// Runs `f(app&)` on the loop thread and returns its result.
  template <class F>
  auto call(F&& f) {
    using result_t = decltype(f(*app_));
    std::packaged_task<result_t()> task([&] { return f(*app_); });
    auto fut = task.get_future();
    asio::post(io_, [&task] { task(); });
    return fut.get();
  }

  /// Sends `m` to module eventbus from the loop thread, as a module would.
  void send_to_eventbus(bus::message m);

  /// send_sync of `m` to `module` from the loop thread; waits for the outcome.
  expected<bus::message, std::error_code> request(
      std::string module, bus::message m,
      std::chrono::milliseconds timeout = std::chrono::seconds(5));

  /// Stops gracefully now (the destructor does nothing more).
  void stop();

 private:
  asio::io_context io_{1};
  // Keeps run() going in mode 2 while nothing else is pending; released once stopped.
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::unique_ptr<daemon::app> app_;
  recorder* twin_ = nullptr;
  recorder* hub_ = nullptr;
  std::uint16_t port_ = 0;
  std::thread thread_;
  bool stopped_ = false;
};

/// A message to eventbus as the cloud router sends it.
bus::message router_message(std::string operation, std::string resource, bus::content c = {});

}  // namespace ebus::test
