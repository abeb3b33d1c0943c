// The embedded broker alone on a given port, for side-by-side benchmarks against mosquitto:
//   broker_server PORT
// Runs until SIGINT/SIGTERM. Logs at warn level so that logging does not skew the numbers. The
// broker runs at the daemon's defaults, memory budget (maxMemoryBytes) included.
#include <csignal>
#include <cstdlib>
#include <iostream>

#include "common/asio.hpp"
#include "common/asio_clock.hpp"
#include "common/log.hpp"
#include "common/memory_budget.hpp"
#include "config/config.hpp"
#include "mqtt/broker/server.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: broker_server PORT\n";
    return 2;
  }
  ebus::log::set_level("warn");
  asio::io_context io(1);
  ebus::asio_clock clk(io.get_executor());
  static const ebus::config::eventbus_config defaults;  // the daemon's default budget
  ebus::memory_budget budget(defaults.max_memory_bytes);
  ebus::mqtt::broker::broker_options opts;
  opts.budget = &budget;
  opts.listen_url = std::string("tcp://127.0.0.1:") + argv[1];
  ebus::mqtt::broker::server srv(io.get_executor(), clk, opts);
  if (auto r = srv.start(); !r) {
    std::cerr << r.error() << "\n";
    return 1;
  }
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code, int) { srv.stop(); });
  io.run();
  return 0;
}
