// The embedded broker alone on a given port, for side-by-side benchmarks against mosquitto:
//   broker_server PORT [--url URL] [--cert FILE --key FILE] [--max-connections N]
// Without --url it listens on tcp://127.0.0.1:PORT. --url names the one listener instead
// (tls://, ws://, wss://127.0.0.1:PORT; its port must be PORT), anonymous clients allowed, the
// WebSocket path at its default (/mqtt); tls and wss need --cert and --key (PEM).
// Runs until SIGINT/SIGTERM. Logs at warn level so that logging does not skew the numbers. The
// broker runs at the daemon's defaults, memory budget (maxMemoryBytes) and heap policy included;
// --max-connections raises the one limit that a bench of more idle clients than its default
// (10,000) has to.
#include <csignal>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <string>

#include "common/asio.hpp"
#include "common/asio_clock.hpp"
#include "common/heap.hpp"
#include "common/log.hpp"
#include "common/memory_budget.hpp"
#include "config/config.hpp"
#include "load_client.hpp"
#include "mqtt/broker/listen_url.hpp"
#include "mqtt/broker/server.hpp"

namespace {

constexpr const char* usage =
    "usage: broker_server PORT [--url URL] [--cert FILE --key FILE] [--max-connections N]\n";

int run(int argc, char** argv) {
  if (argc < 2 || argc % 2 != 0) {
    std::cerr << usage;
    return 2;
  }
  const std::string port = argv[1];
  ebus::mqtt::broker::listener_options listener;
  listener.url = "tcp://127.0.0.1:" + port;
  std::optional<std::size_t> max_connections;
  // The options follow PORT: parse them as if they began the command line.
  ebus::bench::parse_options(argc - 1, argv + 1,
                             [&](const std::string& key, const std::string& value) {
                               if (key == "--url") {
                                 listener.url = value;
                               } else if (key == "--cert") {
                                 listener.tls.cert_file = value;
                               } else if (key == "--key") {
                                 listener.tls.key_file = value;
                               } else if (key == "--max-connections") {
                                 max_connections = std::stoul(value);
                               } else {
                                 return false;
                               }
                               return true;
                             });
  const auto address = ebus::mqtt::broker::parse_listen_url(listener.url);
  if (!address) {
    std::cerr << "--url " << listener.url << ": " << address.error() << "\n";
    return 2;
  }
  if (std::to_string(address->port) != port) {
    std::cerr << "--url " << listener.url << ": the port must be " << port << "\n";
    return 2;
  }

  ebus::log::set_level("warn");
  asio::io_context io(1);
  ebus::asio_clock clk(io.get_executor());
  static const ebus::config::eventbus_config defaults;  // the daemon's default budget
  ebus::memory_budget budget(defaults.max_memory_bytes);
  ebus::mqtt::broker::broker_options opts;
  opts.budget = &budget;
  opts.listen_url = listener.url;
  if (max_connections) opts.max_connections = *max_connections;
  ebus::mqtt::broker::server srv(io.get_executor(), clk, opts, {listener});
  if (auto r = srv.start(); !r) {
    std::cerr << r.error() << "\n";
    return 1;
  }
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code, int) { srv.stop(); });
  io.run();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ebus::tune_heap();  // as the daemon does
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "broker_server: " << e.what() << "\n";
    return 2;
  }
}
