#pragma once
// Module lifecycle (beehive core.StartModules / GracefulShutdown): registers every enabled
// module on the bus, runs each as a coroutine on the loop, and stops them in reverse order.
// A module whose run() throws, or returns before stop_all() asked it to, is unregistered (so
// senders get no_route instead of filling an inbox nobody reads) and reported to the failure
// handler: the daemon stops and exits non-zero rather than run on without one of its parts.
// Without a handler it is logged and the other modules carry on.
//
// Thread safety: loop thread only.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bus/bus.hpp"
#include "bus/module.hpp"

namespace ebus::bus {

class module_manager {
 public:
  explicit module_manager(bus& b);
  module_manager(const module_manager&) = delete;
  module_manager& operator=(const module_manager&) = delete;
  ~module_manager();

  /// Adds a module; call before start_all().
  void add(std::unique_ptr<module> m);

  /// Registers every enabled module on the bus, then starts each run() in the order added.
  /// Fails (starting nothing) if a name is taken.
  expected<void, std::error_code> start_all(const asio::any_io_executor& executor);

  /// Stops the started modules in reverse order: stop(), then unregister from the bus.
  void stop_all();

  /// Receives one line naming the module and what happened when a module's run() throws or
  /// returns before stop_all(); called on the loop, once per module.
  void on_failure(std::function<void(const std::string&)> handler) {
    state_->on_failure = std::move(handler);
  }

  /// Modules whose run() has not returned yet.
  [[nodiscard]] std::size_t running() const noexcept { return state_->running; }
  [[nodiscard]] std::size_t size() const noexcept { return modules_.size(); }

 private:
  bus& bus_;
  std::vector<std::unique_ptr<module>> modules_;
  std::vector<module*> started_;
  // Shared with the completion handlers of the module runs, which may outlive the manager.
  struct shared_state {
    std::size_t running = 0;
    bus* owner = nullptr;
    bool stopping = false;  // stop_all() has begun: a run() that returns now is expected
    std::function<void(const std::string&)> on_failure;
  };
  std::shared_ptr<shared_state> state_;
};

}  // namespace ebus::bus
