#include "daemon/app.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bus/bus.hpp"
#include "bus/module_manager.hpp"
#include "common/asio_clock.hpp"
#include "common/log.hpp"
#include "eventbus/eventbus_module.hpp"
#include "eventbus/persisted_topics.hpp"
#include "eventbus/routing.hpp"
#include "mqtt/broker/server.hpp"
#include "mqtt/client/external_broker.hpp"
#include "remote/socket_server.hpp"

namespace ebus::daemon {
namespace {

using config::mqtt_mode;

mqtt::broker::broker_options broker_options_of(const config::eventbus_config& eb,
                                               memory_budget& budget) {
  mqtt::broker::broker_options o;
  o.budget = &budget;
  o.session_queue_bytes = eb.session_queue_bytes;
  o.slow_subscriber_timeout = eb.slow_subscriber_timeout;
  o.packet_timeout = eb.packet_timeout;
  o.max_retained_messages = eb.max_retained_messages;
  // Retained messages never take more than half the budget, so they cannot starve live traffic.
  o.max_retained_bytes = eb.max_memory_bytes == 0
                             ? eb.max_retained_bytes
                             : std::min(eb.max_retained_bytes, eb.max_memory_bytes / 2);
  o.max_subscriptions_per_client = eb.max_subscriptions_per_client;
  o.max_topic_length = eb.max_topic_length;
  o.max_topic_levels = eb.max_topic_levels;
  o.max_persistent_sessions = eb.max_persistent_sessions;
  o.session_expiry = eb.session_expiry;
  o.listen_url = eb.server_internal;
  o.max_packet_size = eb.max_packet_size;
  o.max_connections = eb.max_connections;
  o.session_queue_size = eb.session_queue_size;
  o.max_inflight = eb.max_inflight;
  o.connect_timeout = eb.connect_timeout;
  switch (eb.overflow) {
    case config::overflow_policy::drop_newest:
      o.overflow = mqtt::broker::overflow_policy::drop_newest;
      break;
    case config::overflow_policy::drop_oldest:
      o.overflow = mqtt::broker::overflow_policy::drop_oldest;
      break;
    case config::overflow_policy::disconnect:
      o.overflow = mqtt::broker::overflow_policy::disconnect;
      break;
  }
  return o;
}

// KubeEdge's generated ids: "hub-client-sub-" / "hub-client-pub-" + the Unix time in seconds,
// shared by both clients and kept for every reconnect.
mqtt::client::external_options external_options_of(const config::eventbus_config& eb,
                                                   memory_budget& budget) {
  const auto seconds = unix_millis() / 1000;
  mqtt::client::external_options o;
  o.url = eb.server_external;
  o.sub_client_id =
      eb.sub_client_id.empty() ? fmt::format("hub-client-sub-{}", seconds) : eb.sub_client_id;
  o.pub_client_id =
      eb.pub_client_id.empty() ? fmt::format("hub-client-pub-{}", seconds) : eb.pub_client_id;
  o.username = eb.username;
  o.password = eb.password;
  o.tls_enable = eb.tls.enable;
  o.ca_file = eb.tls.ca_file;
  o.cert_file = eb.tls.cert_file;
  o.key_file = eb.tls.private_key_file;
  o.keepalive_seconds = eb.keepalive_seconds;
  o.reconnect_min = eb.reconnect_min;
  o.reconnect_max = eb.reconnect_max;
  o.buffer_size = eb.external_buffer_size;
  o.buffer_bytes = eb.external_buffer_bytes;
  o.budget = &budget;
  return o;
}

bus::bus_options bus_options_of(const config::daemon_config& cfg, memory_budget& budget) {
  bus::bus_options o;
  o.group_backlog = cfg.eventbus.group_backlog_size;
  o.group_backlog_bytes = cfg.eventbus.group_backlog_bytes;
  o.inbox_bytes = cfg.eventbus.module_inbox_bytes;
  o.budget = &budget;
  return o;
}

remote::socket_options socket_options_of(const config::eventbus_config& eb, memory_budget& budget) {
  remote::socket_options o;
  o.outbound_bytes = eb.module_socket_outbound_bytes;
  o.budget = &budget;
  o.seqpacket_path = eb.module_socket;
  o.stream_path = eb.module_stream_socket;
  o.max_connections = eb.module_socket_max_connections;
  o.max_message_bytes = eb.module_socket_max_message_bytes;
  return o;
}

std::string_view mode_name(mqtt_mode m) {
  switch (m) {
    case mqtt_mode::internal:
      return "internal";
    case mqtt_mode::both:
      return "both";
    case mqtt_mode::external:
      break;
  }
  return "external";
}

}  // namespace

app::app(asio::io_context& io, config::daemon_config cfg)
    : io_(io),
      cfg_(std::move(cfg)),
      log_(log::get("daemon")),
      budget_(std::make_unique<memory_budget>(cfg_.eventbus.max_memory_bytes)),
      clock_(std::make_unique<asio_clock>(io.get_executor())),
      bus_(std::make_unique<bus::bus>(io.get_executor(), *clock_, bus_options_of(cfg_, *budget_))),
      modules_(std::make_unique<bus::module_manager>(*bus_)) {}

app::~app() = default;

void app::add_module(std::unique_ptr<bus::module> m) {
  extra_modules_.push_back(std::move(m));
}

expected<void, std::string> app::start() {
  if (started_) return fail(std::string("already started"));
  started_ = true;
  const auto& eb = cfg_.eventbus;
  const bool enabled = eb.enable;
  const bool use_internal = enabled && eb.mode != mqtt_mode::external;
  const bool use_external = enabled && eb.mode != mqtt_mode::internal;

  std::vector<std::string> stored;
  if (enabled) {
    eventbus::persisted_options store_options;
    store_options.writer.max_pending = eb.store_queue_size;
    store_options.writer.max_pending_bytes = eb.store_queue_bytes;
    store_options.writer.shutdown_timeout = eb.store_shutdown_timeout;
    auto opened = eventbus::persisted_topics::open(cfg_.data_source, std::move(store_options));
    if (!opened) return fail(fmt::format("database.dataSource: {}", opened.error()));
    store_ = std::move(opened->store);
    stored = std::move(opened->topics);
  }

  if (use_internal) {
    internal_ = std::make_unique<mqtt::broker::server>(io_.get_executor(), *clock_,
                                                       broker_options_of(eb, *budget_));
  }
  if (use_external) {
    external_ = std::make_unique<mqtt::client::external_broker>(
        io_.get_executor(), external_options_of(eb, *budget_),
        [this](std::string_view topic, std::string_view payload) {
          if (eventbus_ != nullptr) eventbus_->on_mqtt_message(topic, payload);
        });
  }
  if (enabled) {
    // The EventBus's MQTT traffic waits for its receivers (devicetwin, edgehub), which may be
    // remote processes that start later or restart.
    bus_->declare_group(std::string(eventbus::twin_group));
    bus_->declare_group(std::string(eventbus::hub_group));
    eventbus::eventbus_options opts;
    opts.node_name = cfg_.node_name;
    opts.qos = static_cast<mqtt::codec::qos_level>(eb.qos);
    opts.retain = eb.retain;
    opts.max_subscriptions = eb.max_runtime_subscriptions;
    opts.max_subscription_bytes = eb.max_runtime_subscription_bytes;
    opts.max_packet_size = eb.max_packet_size;
    opts.max_topic_length = eb.max_topic_length;
    opts.max_topic_levels = eb.max_topic_levels;
    auto module = std::make_unique<eventbus::eventbus_module>(
        *bus_, *clock_, std::move(opts), internal_ ? &internal_->core() : nullptr, external_.get(),
        store_.get());
    module->install(stored);
    eventbus_ = module.get();
    modules_->add(std::move(module));
  }
  for (auto& m : extra_modules_)
    modules_->add(std::move(m));
  extra_modules_.clear();

  if (internal_) {
    if (auto listening = internal_->start(); !listening) {
      return fail(fmt::format("modules.eventBus.mqttServerInternal: {}", listening.error()));
    }
  }
  if (external_) {
    if (auto connecting = external_->start(); !connecting) {
      return fail(fmt::format("modules.eventBus.mqttServerExternal: {}", connecting.error()));
    }
  }
  if (auto running = modules_->start_all(io_.get_executor()); !running) {
    return fail(fmt::format("modules: {}", running.error().message()));
  }
  if (!eb.module_socket.empty() || !eb.module_stream_socket.empty()) {
    sockets_ = std::make_unique<remote::socket_server>(io_.get_executor(), *bus_,
                                                       socket_options_of(eb, *budget_));
    if (auto listening = sockets_->start(); !listening) {
      return fail(fmt::format("modules.eventBus.moduleSocket: {}", listening.error()));
    }
  }
  return {};
}

std::string app::describe() const {
  const auto& eb = cfg_.eventbus;
  std::string line = fmt::format("mode={}", eb.enable ? mode_name(eb.mode) : "disabled");
  if (internal_) {
    const auto ep = internal_->local_endpoint();
    line += fmt::format(" mqtt=tcp://{}:{}", ep.address().to_string(), ep.port());
  }
  if (external_) line += fmt::format(" external={}", eb.server_external);
  if (sockets_) {
    if (!eb.module_socket.empty()) line += fmt::format(" socket={}", eb.module_socket);
    if (!eb.module_stream_socket.empty()) {
      line += fmt::format(" stream_socket={}", eb.module_stream_socket);
    }
  }
  line += fmt::format(" node={} modules={}", cfg_.node_name, modules_->size());
  return line;
}

void app::stop(std::chrono::milliseconds flush_timeout, std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  if (sockets_) sockets_->stop();
  // Wills of clients still connected are published (and intercepted) while the modules run.
  if (internal_) internal_->stop();
  modules_->stop_all();
  auto finish = [this, done = std::move(done)] {
    if (store_) store_->close();
    bus_->shutdown();
    clock_->cancel_all();  // deadlines of requests the shutdown just failed
    if (done) done();
  };
  if (external_) {
    external_->stop(flush_timeout, std::move(finish));
  } else {
    finish();
  }
}

}  // namespace ebus::daemon
