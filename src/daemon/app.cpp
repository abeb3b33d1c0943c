#include "daemon/app.hpp"

#include <algorithm>
#include <iterator>
#include <sys/resource.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "bus/bus.hpp"
#include "bus/module_manager.hpp"
#include "common/asio_clock.hpp"
#include "common/log.hpp"
#include "eventbus/eventbus_module.hpp"
#include "eventbus/persisted_topics.hpp"
#include "eventbus/routing.hpp"
#include "mqtt/auth/acl.hpp"
#include "mqtt/auth/password_file.hpp"
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

/// The broker's listeners: mqttServerInternal with internalListener, then `listeners`.
std::vector<mqtt::broker::listener_options> listeners_of(const config::eventbus_config& eb) {
  const auto convert = [&](const config::listener_config& c, const std::string& url) {
    mqtt::broker::listener_options o;
    o.url = url;
    // As mosquitto 2: configuring a password file means clients must log in, unless said.
    o.allow_anonymous = c.allow_anonymous.value_or(eb.password_file.empty());
    o.tls.cert_file = c.cert_file;
    o.tls.key_file = c.key_file;
    o.tls.ca_file = c.ca_file;
    o.tls.require_certificate = c.require_certificate || c.use_identity_as_username;
    o.use_identity_as_username = c.use_identity_as_username;
    o.ws_path = c.path;
    return o;
  };
  std::vector<mqtt::broker::listener_options> out;
  out.push_back(convert(eb.internal_listener, eb.server_internal));
  for (const auto& l : eb.listeners)
    out.push_back(convert(l, l.url));
  return out;
}

remote::socket_options socket_options_of(const config::eventbus_config& eb, memory_budget& budget) {
  remote::socket_options o;
  // Root and the daemon's own user can reach the daemon anyway; the lists add others.
  remote::socket_options::peer_policy peers;
  peers.uids = {0, static_cast<std::uint32_t>(::geteuid())};
  peers.uids.insert(peers.uids.end(), eb.module_socket_allowed_uids.begin(),
                    eb.module_socket_allowed_uids.end());
  peers.gids = eb.module_socket_allowed_gids;
  o.allowed_peers = std::move(peers);
  // Others can connect only to a file they may write; the credential check decides then.
  const bool others =
      !eb.module_socket_allowed_uids.empty() || !eb.module_socket_allowed_gids.empty();
  o.file_mode = others ? 0666 : 0600;
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

/// Appends ` name=value` for a counter that is not zero.
void add_counter(std::string& line, std::string_view name, std::uint64_t value) {
  if (value == 0) return;
  fmt::format_to(std::back_inserter(line), "{}{}={}", line.empty() ? "" : " ", name, value);
}

}  // namespace

std::size_t app::descriptor_reserve(const config::daemon_config& cfg) noexcept {
  const auto& eb = cfg.eventbus;
  const bool sockets = !eb.module_socket.empty() || !eb.module_stream_socket.empty();
  return base_descriptor_reserve + (sockets ? eb.module_socket_max_connections : 0);
}

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
  // Disabled: broker-only mode, the embedded broker alone (in place of a node's mosquitto).
  const bool use_internal = !enabled || eb.mode != mqtt_mode::external;
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
    internal_ = std::make_unique<mqtt::broker::server>(
        io_.get_executor(), *clock_, broker_options_of(eb, *budget_), listeners_of(eb));
  }
  if (use_external) {
    external_ = std::make_unique<mqtt::client::external_broker>(
        io_.get_executor(), *clock_, external_options_of(eb, *budget_),
        [this](std::string_view topic, std::string_view payload) {
          if (eventbus_ != nullptr) eventbus_->on_external_message(topic, payload);
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
    opts.slow_group_timeout = eb.slow_subscriber_timeout;
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
    if (auto loaded = load_security("loaded"); !loaded) return fail(loaded.error());
    internal_->reserve_descriptors(descriptor_reserve(cfg_));
    internal_->on_failure([this](const std::string& what) { report_failure(what); });
    if (auto listening = internal_->start(); !listening) {
      return fail(fmt::format("embedded broker: {}", listening.error()));
    }
    check_descriptor_limit();
  }
  if (external_) {
    if (auto connecting = external_->start(); !connecting) {
      return fail(fmt::format("modules.eventBus.mqttServerExternal: {}", connecting.error()));
    }
  }
  modules_->on_failure([this](const std::string& what) { report_failure(what); });
  if (auto running = modules_->start_all(io_.get_executor()); !running) {
    return fail(fmt::format("modules: {}", running.error().message()));
  }
  if (!eb.module_socket.empty() || !eb.module_stream_socket.empty()) {
    sockets_ = std::make_unique<remote::socket_server>(io_.get_executor(), *bus_,
                                                       socket_options_of(eb, *budget_));
    sockets_->on_failure([this](const std::string& what) { report_failure(what); });
    if (auto listening = sockets_->start(); !listening) {
      return fail(fmt::format("modules.eventBus.moduleSocket: {}", listening.error()));
    }
  }
  return {};
}

expected<void, std::string> app::load_security(std::string_view verb) {
  // Each file replaces what is in force only once it has loaded; the errors say which did not.
  std::string errors;
  const auto note = [&](const std::string& line) {
    if (!errors.empty()) errors += '\n';
    errors += line;
  };
  const auto& eb = cfg_.eventbus;
  if (!eb.password_file.empty()) {
    if (auto passwords = mqtt::auth::password_file::load(eb.password_file); passwords) {
      log_->info("{} password_file path={} users={}", verb, log::escape(eb.password_file),
                 passwords->size());
      internal_->set_password_file(
          std::make_shared<const mqtt::auth::password_file>(std::move(*passwords)));
    } else {
      note("modules.eventBus.passwordFile: " + passwords.error());
    }
  }
  if (!eb.acl_file.empty()) {
    if (auto acl = mqtt::auth::acl::load(eb.acl_file); acl) {
      log_->info("{} acl_file path={} rules={}", verb, log::escape(eb.acl_file), acl->rule_count());
      internal_->set_acl(std::make_shared<const mqtt::auth::acl>(std::move(*acl)));
    } else {
      note("modules.eventBus.aclFile: " + acl.error());
    }
  }
  if (!errors.empty()) return fail(std::move(errors));
  return {};
}

expected<void, std::string> app::reload_security() {
  if (!internal_) return {};
  auto files = load_security("reloaded");
  auto certificates = internal_->reload_certificates();
  if (files && certificates) return {};
  std::string errors = files ? std::string() : files.error();
  if (!certificates) errors += (errors.empty() ? "" : "\n") + certificates.error();
  return fail(std::move(errors));
}

std::string app::describe() const {
  const auto& eb = cfg_.eventbus;
  std::string line = fmt::format("mode={}", eb.enable ? mode_name(eb.mode) : "broker-only");
  if (internal_) {
    const auto urls = internal_->local_urls();
    line += fmt::format(" mqtt={}", urls.front());
    if (urls.size() > 1) {
      line += fmt::format(" listeners={}", fmt::join(std::next(urls.begin()), urls.end(), ","));
    }
  }
  if (external_) line += fmt::format(" external={}", external_->display_url());
  if (sockets_) {
    if (!eb.module_socket.empty()) line += fmt::format(" socket={}", eb.module_socket);
    if (!eb.module_stream_socket.empty()) {
      line += fmt::format(" stream_socket={}", eb.module_stream_socket);
    }
  }
  line += fmt::format(" node={} modules={}", cfg_.node_name, modules_->size());
  return line;
}

void app::report_failure(const std::string& what) {
  if (failed_ || stopping_) return;
  failed_ = true;
  if (on_failure_) {
    on_failure_(what);
  } else {
    log_->critical("failed {}", what);
  }
}

void app::check_descriptor_limit() const {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return;
  const auto& eb = cfg_.eventbus;
  const auto reserve = descriptor_reserve(cfg_);
  const auto soft = static_cast<std::uint64_t>(lim.rlim_cur);
  if (eb.max_connections + reserve <= soft) return;
  log_->warn(
      "fd_limit_low soft={} hard={} mqttMaxConnections={} reserve={} (module connections + {}): "
      "MQTT connections on descriptors from {} up are answered CONNACK 0x03 (server "
      "unavailable); raise the limit (systemd LimitNOFILE=, ulimit -n) to at least {}",
      soft, lim.rlim_max == RLIM_INFINITY ? std::string("unlimited") : std::to_string(lim.rlim_max),
      eb.max_connections, reserve, base_descriptor_reserve,
      internal_->descriptor_ceiling().value_or(0), eb.max_connections + reserve);
}

std::string app::counters() const {
  std::string line;
  if (internal_) {
    const auto& s = internal_->core().stats();
    add_counter(line, "mqtt.connections_accepted", s.connections_accepted);
    add_counter(line, "mqtt.connections_refused", s.connections_refused);
    const auto& l = internal_->stats();
    add_counter(line, "mqtt.refused_max_connections", l.refused_max_connections);
    add_counter(line, "mqtt.refused_fd_reserve", l.refused_fd_reserve);
    add_counter(line, "mqtt.accept_errors", l.accept_errors);
    add_counter(line, "mqtt.refused_logins", l.login_failures);
    add_counter(line, "mqtt.refused_sessions_max_persistent", s.sessions_refused);
    add_counter(line, "mqtt.protocol_errors", s.protocol_errors);
    add_counter(line, "mqtt.messages_received", s.messages_received);
    add_counter(line, "mqtt.messages_injected", s.messages_injected);
    add_counter(line, "mqtt.intercepted", s.intercepted);
    add_counter(line, "mqtt.deliveries_queued", s.deliveries_queued);
    add_counter(line, "mqtt.retained_walks", s.retained_walks);
    add_counter(line, "mqtt.deliveries_dropped", s.deliveries_dropped);
    add_counter(line, "mqtt.dropped_queue_full", s.dropped_queue_full);
    add_counter(line, "mqtt.dropped_offline_qos0", s.dropped_offline_qos0);
    add_counter(line, "mqtt.dropped_memory_budget", s.dropped_budget);
    add_counter(line, "mqtt.refused_messages_memory_budget", s.messages_refused_budget);
    add_counter(line, "mqtt.refused_messages_topic_limits", s.messages_refused_topic);
    add_counter(line, "mqtt.refused_retained_store_full", s.retained_refused);
    add_counter(line, "mqtt.refused_subscriptions_limits", s.subscriptions_refused);
    add_counter(line, "mqtt.disconnected_slow_subscriber", s.slow_disconnects);
    add_counter(line, "mqtt.disconnected_packet_timeout", s.packet_timeouts);
    add_counter(line, "mqtt.disconnected_memory_budget", s.budget_disconnects);
    add_counter(line, "mqtt.publishers_held", s.publishers_held);
    add_counter(line, "mqtt.sessions_expired", s.sessions_expired);
    add_counter(line, "mqtt.connection_log_lines_held", s.connection_lines_held);
    add_counter(line, "mqtt.handshake_failures", s.handshake_failures);
    const auto& a = internal_->core().access();
    add_counter(line, "mqtt.acl_denied_publishes", a.denied_publishes);
    add_counter(line, "mqtt.acl_denied_deliveries", a.denied_deliveries);
    add_counter(line, "mqtt.acl_denied_subscriptions", a.denied_subscriptions);
  }
  const auto& b = bus_->stats();
  add_counter(line, "bus.delivered", b.delivered);
  add_counter(line, "bus.backlogged", b.backlogged);
  add_counter(line, "bus.refused_queue_full", b.queue_full);
  add_counter(line, "bus.refused_memory_budget", b.memory_budget);
  add_counter(line, "bus.refused_too_large", b.too_large);
  add_counter(line, "bus.refused_no_route", b.no_route);
  add_counter(line, "bus.request_timeouts", b.timeouts);
  add_counter(line, "bus.requests_cancelled", b.cancelled);
  add_counter(line, "bus.late_responses_dropped", b.late_responses);
  if (sockets_) {
    const auto& r = sockets_->stats();
    add_counter(line, "remote.accepted", r.accepted);
    add_counter(line, "remote.refused_max_connections", r.refused);
    add_counter(line, "remote.refused_peer_credentials", r.refused_peer);
    add_counter(line, "remote.registered", r.registered);
    add_counter(line, "remote.closed_protocol_error", r.closed_protocol);
    add_counter(line, "remote.messages_in", r.messages_in);
    add_counter(line, "remote.messages_out", r.messages_out);
    add_counter(line, "remote.errors_returned", r.errors_returned);
    add_counter(line, "remote.dropped_replies_or_kernel_refused", r.messages_dropped);
    add_counter(line, "remote.refused_too_large", r.too_large);
    add_counter(line, "remote.refused_memory_budget", r.memory_budget);
  }
  if (external_) {
    const auto& x = external_->stats();
    add_counter(line, "external.sub_connects", x.sub_connects);
    add_counter(line, "external.pub_connects", x.pub_connects);
    add_counter(line, "external.connection_losses", x.connection_losses);
    add_counter(line, "external.received", x.received);
    add_counter(line, "external.published", x.published);
    add_counter(line, "external.acknowledged", x.acknowledged);
    add_counter(line, "external.dropped_buffer_full", x.dropped_buffer_full);
    add_counter(line, "external.dropped_memory_budget", x.dropped_budget);
    add_counter(line, "external.dropped_stopping",
                x.dropped - std::min(x.dropped, x.dropped_buffer_full + x.dropped_budget));
    add_counter(line, "external.lost_unacknowledged_at_stop", x.lost_at_stop);
    add_counter(line, "external.rejected_invalid", x.rejected);
    add_counter(line, "external.subscribe_failures", x.subscribe_failures);
  }
  if (eventbus_ != nullptr) {
    const auto& e = eventbus_->stats();
    add_counter(line, "eventbus.to_twin", e.to_twin);
    add_counter(line, "eventbus.to_hub", e.to_hub);
    add_counter(line, "eventbus.backlogged", e.backlogged);
    add_counter(line, "eventbus.dropped_no_member", e.no_member);
    add_counter(line, "eventbus.dropped_inbox_full", e.refused);
    add_counter(line, "eventbus.publishers_held", e.publishers_held);
    add_counter(line, "eventbus.external_subscriber_paused", e.external_held);
    add_counter(line, "eventbus.groups_slow", e.groups_slow);
    add_counter(line, "eventbus.published_internal", e.published_internal);
    add_counter(line, "eventbus.published_external", e.published_external);
    add_counter(line, "eventbus.subscribes", e.subscribes);
    add_counter(line, "eventbus.unsubscribes", e.unsubscribes);
    add_counter(line, "eventbus.queries", e.queries);
    add_counter(line, "eventbus.confirmed", e.confirmed);
    add_counter(line, "eventbus.rejected_bad_input", e.rejected);
    add_counter(line, "eventbus.ignored_unknown_operation", e.ignored);
    add_counter(line, "eventbus.refused_subscription_limits", e.subscriptions_refused);
    add_counter(line, "eventbus.refused_publish_too_large", e.publishes_too_large);
    add_counter(line, "eventbus.refused_publish_external_buffer", e.publishes_refused);
    add_counter(line, "eventbus.refused_store_queue", e.store_refused);
    add_counter(line, "eventbus.store_write_failed", e.store_failed);
    add_counter(line, "eventbus.stored_rows_skipped", e.stored_skipped);
    add_counter(line, "eventbus.errors_returned", e.errors_returned);
  }
  if (store_) {
    const auto w = store_->stats();
    add_counter(line, "store.writes_committed", w.committed);
    add_counter(line, "store.writes_refused", w.refused);
    add_counter(line, "store.writes_failed", w.failed);
    add_counter(line, "store.writes_abandoned_at_stop", w.abandoned);
    add_counter(line, "store.transactions", w.transactions);
    add_counter(line, "store.transactions_failed", w.failed_transactions);
  }
  add_counter(line, "memory_budget.refusals", budget_->refusals());
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
    const auto totals = counters();
    log_->info("final_counters {}", totals.empty() ? "(all zero)" : totals);
    if (done) done();
  };
  if (external_) {
    external_->stop(flush_timeout, std::move(finish));
  } else {
    finish();
  }
}

}  // namespace ebus::daemon
