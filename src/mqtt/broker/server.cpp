#include "mqtt/broker/server.hpp"

#include <spdlog/spdlog.h>

#include "common/log.hpp"
#include "mqtt/broker/connection.hpp"
#include "mqtt/broker/listen_url.hpp"

namespace ebus::mqtt::broker {

server::server(asio::any_io_executor executor, clock& clk, broker_options options)
    : executor_(executor),
      core_(std::move(options), clk),
      log_(log::get("mqtt.broker")),
      acceptor_(executor) {}

server::~server() {
  stop();
}

expected<void, std::string> server::start() {
  const auto& url = core_.options().listen_url;
  auto addr = parse_listen_url(url);
  if (!addr) return fail(addr.error());

  std::error_code ec;
  asio::ip::tcp::endpoint endpoint;
  if (auto ip = asio::ip::make_address(addr->host, ec); !ec) {
    endpoint = {ip, addr->port};
  } else {
    // Host names are resolved once, at start-up, before the loop serves anyone.
    asio::ip::tcp::resolver resolver(executor_);
    auto results = resolver.resolve(addr->host, std::to_string(addr->port), ec);
    if (ec || results.empty()) {
      return fail("cannot resolve '" + addr->host + "' in '" + url + "': " + ec.message());
    }
    endpoint = results.begin()->endpoint();
  }
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::error_code ignored;
    acceptor_.close(ignored);
    return fail("cannot listen on '" + url + "': " + ec.message());
  }
  asio::co_spawn(executor_, accept_loop(), [this](const std::exception_ptr& e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log_->critical("accept_loop_failed error={}", ex.what());
    }
  });
  log_->info("listening url={} endpoint={}:{}", url, local_endpoint().address().to_string(),
             local_endpoint().port());
  return {};
}

asio::ip::tcp::endpoint server::local_endpoint() const {
  std::error_code ec;
  return acceptor_.local_endpoint(ec);
}

awaitable<void> server::accept_loop() {
  using asio::experimental::as_tuple;
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(as_tuple(asio::use_awaitable));
    if (stopped_ || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Transient (EMFILE, ECONNABORTED, ...): log and keep accepting, unlike gomqtt, which
      // stops accepting for good after one failure.
      log_->warn("accept_failed error={}", ec.message());
      asio::steady_timer pause(executor_, std::chrono::milliseconds(100));
      co_await pause.async_wait(as_tuple(asio::use_awaitable));
      continue;
    }
    if (connections_.size() >= core_.options().max_connections) {
      ++core_.mutable_stats().connections_refused;
      log_->warn("connection_refused reason=max_connections limit={}",
                 core_.options().max_connections);
      std::error_code ignored;
      socket.close(ignored);
      continue;
    }
    auto c = std::make_shared<connection>(std::move(socket), core_, *this);
    connections_.emplace(c.get(), c);
    c->start();
  }
}

void server::on_closed(connection* c) {
  connections_.erase(c);
}

void server::stop() {
  if (stopped_) return;
  stopped_ = true;
  std::error_code ignored;
  acceptor_.close(ignored);
  // close() is asynchronous; each connection removes itself once its reader has finished.
  for (auto& [ptr, c] : connections_)
    c->close("broker shutting down");
}

}  // namespace ebus::mqtt::broker
