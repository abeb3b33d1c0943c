#include "daemon/daemon.hpp"

#include <csignal>

#include <spdlog/spdlog.h>

#include "common/asio.hpp"
#include "common/log.hpp"
#include "daemon/app.hpp"

namespace ebus::daemon {
namespace {

// How long buffered publishes to the external broker may delay the exit.
constexpr auto flush_timeout = std::chrono::seconds(3);

}  // namespace

int run(const options& opts) {
  if (!log::set_level(opts.log_level)) {
    log::get("daemon")->error("unknown log level '{}'", opts.log_level);
    return 2;
  }
  auto log = log::get("daemon");

  // One loop thread runs the bus, the brokers, the modules and all timers
  // (docs/ARCHITECTURE.md); SQLite runs on the store thread.
  asio::io_context io(1);
  app node(io, opts.config);
  if (auto started = node.start(); !started) {
    log->error("startup_failed {}", started.error());
    return 1;
  }

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code ec, int signo) {
    if (ec) return;
    log->info("shutdown signal={}", signo);
    node.stop(flush_timeout, [] {});
  });

  log->info("ready {}", node.describe());
  io.run();
  log->info("stopped");
  return 0;
}

}  // namespace ebus::daemon
