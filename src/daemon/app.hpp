#pragma once
// The process's parts wired together for one configuration: clock, bus, topic store, embedded
// broker, external broker clients, the eventbus module and any other modules. It runs on an
// io_context owned by the caller, so tests can run a whole node in-process next to real
// clients, and the daemon (daemon.hpp) adds only signals and the exit code.
//
// Thread safety: loop thread only, except construction and start() before the loop runs.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/asio.hpp"
#include "common/expected.hpp"
#include "common/memory_budget.hpp"
#include "config/config.hpp"

namespace spdlog {
class logger;
}
namespace ebus {
class asio_clock;
}
namespace ebus::bus {
class bus;
class module;
class module_manager;
}  // namespace ebus::bus
namespace ebus::mqtt::broker {
class server;
}
namespace ebus::mqtt::client {
class external_broker;
}
namespace ebus::remote {
class socket_server;
}

namespace ebus::eventbus {
class eventbus_module;
class persisted_topics;
}  // namespace ebus::eventbus

namespace ebus::daemon {

class app {
 public:
  app(asio::io_context& io, config::daemon_config cfg);
  app(const app&) = delete;
  app& operator=(const app&) = delete;
  ~app();

  /// Adds a module to start with the others; call before start().
  void add_module(std::unique_ptr<bus::module> m);

  /// Opens the topic store, installs the interests, starts the embedded broker (modes 0 and 1),
  /// the external clients (modes 1 and 2, in the background), every module, and the module
  /// sockets for remote modules. The error names the component and the reason.
  expected<void, std::string> start();

  /// Closes the module sockets (remote modules leave the bus), stops accepting MQTT
  /// connections, stops the modules, sends buffered external publishes
  /// (for at most `flush_timeout`), closes the store and the bus; `done` runs on the loop.
  void stop(std::chrono::milliseconds flush_timeout, std::function<void()> done);

  /// The line logged when ready: mode, URLs and module count.
  [[nodiscard]] std::string describe() const;

  [[nodiscard]] const config::daemon_config& config() const noexcept { return cfg_; }
  /// The memory budget (maxMemoryBytes) every part of the node charges.
  [[nodiscard]] const memory_budget& budget() const noexcept { return *budget_; }
  [[nodiscard]] bus::bus& message_bus() noexcept { return *bus_; }
  /// Null when the module is disabled.
  [[nodiscard]] eventbus::eventbus_module* eventbus() noexcept { return eventbus_; }
  /// Null in mode 2 or when disabled.
  [[nodiscard]] mqtt::broker::server* internal_broker() noexcept { return internal_.get(); }
  /// Null in mode 0 or when disabled.
  [[nodiscard]] mqtt::client::external_broker* external_broker() noexcept {
    return external_.get();
  }
  /// Null when both module socket paths are empty.
  [[nodiscard]] remote::socket_server* module_sockets() noexcept { return sockets_.get(); }

 private:
  asio::io_context& io_;
  config::daemon_config cfg_;
  std::shared_ptr<spdlog::logger> log_;
  // First: everything below charges it until it is destroyed.
  std::unique_ptr<memory_budget> budget_;
  std::unique_ptr<asio_clock> clock_;
  std::unique_ptr<bus::bus> bus_;
  std::unique_ptr<eventbus::persisted_topics> store_;
  std::unique_ptr<mqtt::broker::server> internal_;
  std::unique_ptr<mqtt::client::external_broker> external_;
  // Declared after what the modules point to, so that the modules are destroyed first.
  std::unique_ptr<bus::module_manager> modules_;
  std::unique_ptr<remote::socket_server> sockets_;
  eventbus::eventbus_module* eventbus_ = nullptr;  // owned by modules_
  std::vector<std::unique_ptr<bus::module>> extra_modules_;
  bool started_ = false;
  bool stopping_ = false;
};

}  // namespace ebus::daemon
