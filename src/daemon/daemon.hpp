#pragma once
// The daemon: one event loop thread running app (app.hpp) until a stop signal or a failure.
//
// Signals: SIGINT, SIGTERM and SIGQUIT stop the node in order (module sockets closed and their
// files removed, MQTT connections closed with their wills, modules stopped, buffered external
// publishes flushed for at most 3 s, the store flushed) and the exit status is 0. SIGHUP does
// not reload anything: it logs that a changed configuration needs a restart (the log goes to
// stderr, so there is no file to reopen). SIGPIPE is ignored.
//
// Exit status: 0 after a stop signal; 1 when start-up failed, or when a part failed while
// running (an accept loop ended, a module's run() threw or returned): one `fatal` line names it,
// the node is stopped in order, and the non-zero status lets systemd or the kubelet restart the
// daemon; 2 for an unknown log level.

#include <string>

#include "config/config.hpp"

namespace asio {
class io_context;
}

namespace ebus::daemon {

class app;

struct options {
  std::string log_level = "info";
  config::daemon_config config;
};

/// Exit status after a failure at start-up or while running.
inline constexpr int failure_status = 1;

/// Raises the soft RLIMIT_NOFILE to the hard limit and logs both (one line).
void raise_descriptor_limit();

/// Runs the daemon on the calling thread until a stop signal or a failure; returns the process
/// exit status. Logs one "ready" line once everything started.
int run(const options& opts);

/// What run() does once the node exists: starts `node` (which runs on `io`), logs "ready",
/// serves until a stop signal or a failure, stops the node in order and returns the exit status.
/// The signals are handled from before start() until it returns. For tests, with modules of
/// their own in the node.
int serve(asio::io_context& io, app& node);

}  // namespace ebus::daemon
