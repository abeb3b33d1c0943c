#pragma once
// The daemon: one event loop thread running app (app.hpp) until SIGINT or SIGTERM.

#include <string>

#include "config/config.hpp"

namespace ebus::daemon {

struct options {
  std::string log_level = "info";
  config::daemon_config config;
};

/// Runs the daemon on the calling thread until SIGINT or SIGTERM; returns the process exit code
/// (0 after a signal, 1 when start-up failed). Logs one "ready" line once everything started.
int run(const options& opts);

}  // namespace ebus::daemon
