#include "ebus_test/broker_harness.hpp"

#include <stdexcept>

namespace ebus::test {

broker_harness::broker_harness(mqtt::broker::broker_options options)
    : broker_harness(std::move(options), steady_clock_) {}

broker_harness::broker_harness(mqtt::broker::broker_options options, clock& clk) {
  options.listen_url = "tcp://127.0.0.1:0";
  server_ = std::make_unique<mqtt::broker::server>(io_.get_executor(), clk, std::move(options));
  if (auto started = server_->start(); !started) throw std::runtime_error(started.error());
  port_ = server_->local_endpoint().port();
  thread_ = std::thread([this] { io_.run(); });
}

broker_harness::~broker_harness() {
  asio::post(io_, [this] { server_->stop(); });
  thread_.join();  // run() returns once every connection has finished
}

}  // namespace ebus::test
