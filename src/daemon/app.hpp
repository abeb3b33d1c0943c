#pragma once
// The process's parts wired together for one configuration: clock, bus, topic store, embedded
// broker, external broker clients, the eventbus module and any other modules. It runs on an
// io_context owned by the caller, so tests can run a whole node in-process next to real
// clients, and the daemon (daemon.hpp) adds only signals and the exit code.
//
// A part that fails while running and cannot recover (a listener whose accept loop ended, a
// module whose run() threw or returned) is reported once to the failure handler: the node can
// no longer do its whole job, and a restart is the cure. At the end of stop() one line lists
// every counter that is not zero (final_counters), so drop totals are always in the log.
//
// Thread safety: loop thread only, except construction and start() before the loop runs.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
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
  /// Descriptors kept free for everything but MQTT connections besides the module sockets'
  /// connections: store (database and journal), external clients, listeners, the loop's own.
  static constexpr std::size_t base_descriptor_reserve = 32;

  /// The descriptors below the soft RLIMIT_NOFILE that MQTT connections never take:
  /// base_descriptor_reserve plus moduleSocketMaxConnections when a module socket is on.
  [[nodiscard]] static std::size_t descriptor_reserve(const config::daemon_config& cfg) noexcept;

  app(asio::io_context& io, config::daemon_config cfg);
  app(const app&) = delete;
  app& operator=(const app&) = delete;
  ~app();

  /// Adds a module to start with the others; call before start().
  void add_module(std::unique_ptr<bus::module> m);

  /// Receives one line naming the part that failed and why; called on the loop, at most once,
  /// never after stop() began. Set before start().
  void on_failure(std::function<void(const std::string& what)> handler) {
    on_failure_ = std::move(handler);
  }

  /// Opens the topic store, installs the interests, starts the embedded broker (modes 0 and 1),
  /// the external clients (modes 1 and 2, in the background), every module, and the module
  /// sockets for remote modules. The error names the component and the reason.
  expected<void, std::string> start();

  /// SIGHUP: reads the password file, the ACL file and the listeners' certificates again. Each
  /// that fails to load keeps what was in force, and the error is returned (one line per
  /// file); connections stay up either way. Loop thread.
  expected<void, std::string> reload_security();

  /// Closes the module sockets (remote modules leave the bus), stops accepting MQTT
  /// connections, stops the modules, sends buffered external publishes
  /// (for at most `flush_timeout`), closes the store and the bus; `done` runs on the loop.
  void stop(std::chrono::milliseconds flush_timeout, std::function<void()> done);

  /// The line logged when ready: mode, URLs and module count.
  [[nodiscard]] std::string describe() const;

  /// Every counter of the node that is not zero, as space-separated `part.counter=value`
  /// (mqtt, bus, remote, external, eventbus, store), each named after what it counts; "" when
  /// all are zero. Logged by stop() as `final_counters ...`.
  [[nodiscard]] std::string counters() const;

  [[nodiscard]] const config::daemon_config& config() const noexcept { return cfg_; }
  /// The memory budget (maxMemoryBytes) every part of the node charges.
  [[nodiscard]] const memory_budget& budget() const noexcept { return *budget_; }
  [[nodiscard]] bus::bus& message_bus() noexcept { return *bus_; }
  /// Null when the module is disabled.
  [[nodiscard]] eventbus::eventbus_module* eventbus() noexcept { return eventbus_; }
  /// Null in mode 2 (the embedded broker runs alone when the eventbus is disabled).
  [[nodiscard]] mqtt::broker::server* internal_broker() noexcept { return internal_.get(); }
  /// Null in mode 0 or when disabled.
  [[nodiscard]] mqtt::client::external_broker* external_broker() noexcept {
    return external_.get();
  }
  /// Null when both module socket paths are empty.
  [[nodiscard]] remote::socket_server* module_sockets() noexcept { return sockets_.get(); }

 private:
  void report_failure(const std::string& what);
  /// Warns (one line) when the soft RLIMIT_NOFILE cannot hold every connection allowed.
  void check_descriptor_limit() const;
  /// Loads the password and ACL files into the broker (`verb` for the log: loaded, reloaded).
  expected<void, std::string> load_security(std::string_view verb);

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
  std::function<void(const std::string&)> on_failure_;
  bool failed_ = false;
  bool started_ = false;
  bool stopping_ = false;
};

}  // namespace ebus::daemon
