#include "daemon/daemon.hpp"

#include <csignal>

#include <spdlog/spdlog.h>

#include "bus/bus.hpp"
#include "bus/module_manager.hpp"
#include "common/asio.hpp"
#include "common/asio_clock.hpp"
#include "common/log.hpp"

namespace ebus::daemon {

int run(const options& opts) {
  if (!log::set_level(opts.log_level)) {
    log::get("daemon")->error("unknown log level '{}'", opts.log_level);
    return 2;
  }
  auto log = log::get("daemon");

  // One loop thread runs the bus, the modules and all timers (see docs/ARCHITECTURE.md).
  asio::io_context io(1);
  asio_clock clk(io.get_executor());
  bus::bus message_bus(io.get_executor(), clk);
  bus::module_manager modules(message_bus);

  if (auto started = modules.start_all(io.get_executor()); !started) {
    log->error("startup_failed error={}", started.error().message());
    return 1;
  }

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code ec, int signo) {
    if (ec) return;
    log->info("shutdown signal={}", signo);
    modules.stop_all();
    message_bus.shutdown();
  });

  log->info("ready modules={} bus_inbox_capacity={}", modules.size(),
            message_bus.options().inbox_capacity);
  io.run();
  log->info("stopped");
  return 0;
}

}  // namespace ebus::daemon
