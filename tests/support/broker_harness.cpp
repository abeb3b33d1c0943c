#include "ebus_test/broker_harness.hpp"

#include <stdexcept>

namespace ebus::test {

mqtt::broker::listener_options test_listener(transport_kind kind) {
  mqtt::broker::listener_options o;
  o.url = std::string(name_of(kind)) + "://127.0.0.1:0";
  if (uses_tls(kind)) {
    const auto& files = test_tls_files();
    o.tls.cert_file = files.cert_file;
    o.tls.key_file = files.key_file;
  }
  return o;
}

broker_harness::broker_harness(mqtt::broker::broker_options options)
    : broker_harness(std::move(options), steady_clock_) {}

broker_harness::broker_harness(mqtt::broker::broker_options options, clock& clk)
    : broker_harness(std::move(options), {test_listener(test_transport())}, clk) {}

broker_harness::broker_harness(mqtt::broker::broker_options options,
                               std::vector<mqtt::broker::listener_options> listeners)
    : broker_harness(std::move(options), std::move(listeners), steady_clock_) {}

broker_harness::broker_harness(mqtt::broker::broker_options options,
                               std::vector<mqtt::broker::listener_options> listeners, clock& clk) {
  if (listeners.empty()) throw std::invalid_argument("broker_harness: no listener");
  options.listen_url = listeners.front().url;
  server_ = std::make_unique<mqtt::broker::server>(io_.get_executor(), clk, std::move(options),
                                                   std::move(listeners));
  if (auto started = server_->start(); !started) throw std::runtime_error(started.error());
  for (const auto& url : server_->local_urls()) {
    // scheme://127.0.0.1:port: the port is what follows the last colon.
    ports_.push_back(static_cast<std::uint16_t>(std::stoul(url.substr(url.rfind(':') + 1))));
  }
  thread_ = std::thread([this] { io_.run(); });
}

broker_harness::~broker_harness() {
  asio::post(io_, [this] { server_->stop(); });
  thread_.join();  // run() returns once every connection has finished
}

}  // namespace ebus::test
