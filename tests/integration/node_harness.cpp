#include "node_harness.hpp"

#include <random>
#include <stdexcept>
#include <unistd.h>

#include "eventbus/eventbus_module.hpp"
#include "mqtt/broker/server.hpp"

namespace ebus::test {

awaitable<void> recorder::run(bus::bus& b) {
  for (;;) {
    auto m = co_await b.receive(name_);
    if (!m) co_return;
    {
      const std::lock_guard lock(mutex_);
      messages_.push_back(std::move(*m));
    }
    arrived_.notify_all();
  }
}

std::vector<bus::message> recorder::wait_for(std::size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  arrived_.wait_for(lock, timeout, [&] { return messages_.size() >= n; });
  return messages_;
}

std::vector<bus::message> recorder::messages() {
  const std::lock_guard lock(mutex_);
  return messages_;
}

temp_dir::temp_dir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          ("ebus-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

config::daemon_config node_harness::test_config(config::mqtt_mode mode, const temp_dir& dir,
                                                const std::string& external_url) {
  config::daemon_config cfg;
  cfg.node_name = "edge-node";
  cfg.data_source = (dir.path() / "edgecore.db").string();
  cfg.eventbus.mode = mode;
  cfg.eventbus.server_internal = "tcp://127.0.0.1:0";
  if (!external_url.empty()) cfg.eventbus.server_external = external_url;
  cfg.eventbus.reconnect_min = std::chrono::milliseconds(100);
  cfg.eventbus.reconnect_max = std::chrono::milliseconds(500);
  cfg.eventbus.module_socket = (dir.path() / "eventbus.sock").string();
  cfg.eventbus.module_stream_socket = (dir.path() / "eventbus-stream.sock").string();
  return cfg;
}

node_harness::node_harness(config::daemon_config cfg, bool with_recorders)
    : app_(std::make_unique<daemon::app>(io_, std::move(cfg))) {
  if (with_recorders) {
    auto twin = std::make_unique<recorder>("twin", "twin");
    auto hub = std::make_unique<recorder>("websocket", "hub");
    twin_ = twin.get();
    hub_ = hub.get();
    app_->add_module(std::move(twin));
    app_->add_module(std::move(hub));
  }
  if (auto started = app_->start(); !started) throw std::runtime_error(started.error());
  if (auto* internal = app_->internal_broker()) port_ = internal->local_endpoint().port();
  work_.emplace(io_.get_executor());
  thread_ = std::thread([this] { io_.run(); });
}

node_harness::~node_harness() {
  stop();
}

void node_harness::stop() {
  if (stopped_) return;
  stopped_ = true;
  asio::post(io_, [this] { app_->stop(std::chrono::seconds(2), [this] { work_.reset(); }); });
  thread_.join();
}

void node_harness::send_to_eventbus(bus::message m) {
  const auto sent = call([&](daemon::app& a) {
    return a.message_bus().send(eventbus::eventbus_module::module_name, std::move(m));
  });
  if (!sent) throw std::runtime_error("send to eventbus failed: " + sent.error().message());
}

expected<bus::message, std::error_code> node_harness::request(std::string module, bus::message m,
                                                              std::chrono::milliseconds timeout) {
  std::promise<expected<bus::message, std::error_code>> outcome;
  auto future = outcome.get_future();
  asio::co_spawn(
      io_,
      [&]() -> awaitable<void> {
        outcome.set_value(co_await app_->message_bus().send_sync(module, std::move(m), timeout));
      },
      [](const std::exception_ptr& e) {
        if (e) std::rethrow_exception(e);
      });
  return future.get();
}

bus::message router_message(std::string operation, std::string resource, bus::content c) {
  bus::message m = bus::new_message();
  bus::build_router(m, "router_eventbus", "user", std::move(resource), std::move(operation));
  m.content = std::move(c);
  return m;
}

}  // namespace ebus::test
