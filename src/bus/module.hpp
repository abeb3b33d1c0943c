#pragma once
// A module of the bus (beehive core.Module): a named member of a group with a run loop.

#include <string>

#include "common/asio.hpp"

namespace ebus::bus {

class bus;

class module {
 public:
  module() = default;
  module(const module&) = delete;
  module& operator=(const module&) = delete;
  virtual ~module() = default;

  /// Unique module name, e.g. "eventbus".
  [[nodiscard]] virtual std::string name() const = 0;
  /// Group the module joins, e.g. "bus"; may be empty.
  [[nodiscard]] virtual std::string group() const = 0;
  /// Disabled modules are neither registered nor started.
  [[nodiscard]] virtual bool enabled() const { return true; }

  /// The module's work. Runs on the loop, after its inbox exists; returning ends the module.
  virtual awaitable<void> run(bus& b) = 0;

  /// Asks run() to return soon; called on the loop during shutdown. The module's inbox is closed
  /// right after, so a run() waiting in receive() completes with bus_errc::cancelled anyway.
  virtual void stop() {}
};

}  // namespace ebus::bus
