#include "daemon/daemon.hpp"

#include <csignal>

#include <spdlog/spdlog.h>

#include "bus/bus.hpp"
#include "bus/module_manager.hpp"
#include "common/asio.hpp"
#include "common/asio_clock.hpp"
#include "common/log.hpp"
#include "mqtt/broker/server.hpp"

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

  mqtt::broker::server broker(io.get_executor(), clk, opts.broker);
  if (auto listening = broker.start(); !listening) {
    log->error("startup_failed component=mqtt_broker error=\"{}\"", listening.error());
    return 1;
  }

  if (auto started = modules.start_all(io.get_executor()); !started) {
    log->error("startup_failed error={}", started.error().message());
    return 1;
  }

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code ec, int signo) {
    if (ec) return;
    log->info("shutdown signal={}", signo);
    broker.stop();
    modules.stop_all();
    message_bus.shutdown();
  });

  log->info("ready mode=internal mqtt={} modules={}", opts.broker.listen_url, modules.size());
  io.run();
  log->info("stopped");
  return 0;
}

}  // namespace ebus::daemon
