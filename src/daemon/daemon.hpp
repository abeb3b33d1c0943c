#pragma once
// Wiring of the whole process: event loop, clock, bus, modules, signals, shutdown order.

#include <string>

#include "mqtt/broker/broker_options.hpp"

namespace ebus::daemon {

struct options {
  std::string log_level = "info";
  mqtt::broker::broker_options broker;
};

/// Runs the daemon on the calling thread until SIGINT or SIGTERM; returns the process exit code.
/// Logs one "ready" line once every module has started.
int run(const options& opts);

}  // namespace ebus::daemon
