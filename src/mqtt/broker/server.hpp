#pragma once
// The embedded broker as a network service: listener, connections, and the broker core.
//
// Thread safety: loop thread only (the executor given at construction).

#include <memory>
#include <string>
#include <unordered_map>

#include "common/asio.hpp"
#include "common/clock.hpp"
#include "common/expected.hpp"
#include "mqtt/broker/broker.hpp"

namespace spdlog {
class logger;
}

namespace ebus::mqtt::broker {

class connection;

class server {
 public:
  server(asio::any_io_executor executor, clock& clk, broker_options options);
  server(const server&) = delete;
  server& operator=(const server&) = delete;
  ~server();

  /// Binds and listens on options().listen_url and starts accepting. The error says what
  /// failed (bad URL, address in use, ...).
  expected<void, std::string> start();

  /// Stops accepting and closes every connection (wills of connected clients are published).
  void stop();

  /// The bound address (the real port when the URL asked for port 0).
  [[nodiscard]] asio::ip::tcp::endpoint local_endpoint() const;

  [[nodiscard]] broker& core() noexcept { return core_; }
  [[nodiscard]] std::size_t connection_count() const noexcept { return connections_.size(); }

 private:
  friend class connection;
  awaitable<void> accept_loop();
  void on_closed(connection* c);

  asio::any_io_executor executor_;
  broker core_;
  std::shared_ptr<spdlog::logger> log_;
  asio::ip::tcp::acceptor acceptor_;
  std::unordered_map<connection*, std::shared_ptr<connection>> connections_;
  bool stopped_ = false;
};

}  // namespace ebus::mqtt::broker
