#include "eventbus/eventbus_module.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bus/bus.hpp"
#include "common/log.hpp"
#include "eventbus/command.hpp"
#include "eventbus/persisted_topics.hpp"
#include "eventbus/routing.hpp"
#include "eventbus/topics.hpp"
#include "mqtt/broker/broker.hpp"
#include "mqtt/client/external_broker.hpp"

namespace ebus::eventbus {
namespace {

// Warnings about lost or rejected messages repeat at most this often, with a count.
constexpr auto warning_interval = std::chrono::seconds(10);

}  // namespace

eventbus_module::eventbus_module(bus::bus& b, clock& clk, eventbus_options options,
                                 mqtt::broker::broker* internal,
                                 mqtt::client::external_broker* external, persisted_topics* store)
    : bus_(b),
      clock_(clk),
      options_(std::move(options)),
      internal_(internal),
      external_(external),
      store_(store),
      log_(log::get("eventbus")) {}

eventbus_module::~eventbus_module() {
  if (internal_ != nullptr) internal_->set_interceptor(nullptr);
}

void eventbus_module::install(const std::vector<std::string>& persisted) {
  for (const auto topic : fixed_topics) {
    fixed_.emplace(topic);
    if (internal_ != nullptr) internal_->add_interest(topic);
    if (external_ != nullptr) external_->subscribe(std::string(topic));
  }
  for (const auto& topic : persisted) {
    if (fixed_.contains(topic) || !dynamic_.insert(topic).second) continue;
    if (internal_ != nullptr && !internal_->add_interest(topic)) {
      log_->warn("stored_topic_invalid topic=\"{}\": not intercepted", topic);
      dynamic_.erase(topic);
      continue;
    }
    if (external_ != nullptr) external_->subscribe(topic);
  }
  if (internal_ != nullptr) {
    internal_->set_interceptor(
        [this](const mqtt::broker::message_ptr& m) { on_mqtt_message(m->topic, m->payload); });
  }
  log_->info("interests fixed={} stored={}", fixed_.size(), dynamic_.size());
}

void eventbus_module::on_mqtt_message(std::string_view topic, std::string_view payload) {
  auto msg = to_bus_message(topic, payload, unix_millis());
  const std::string_view group = target_group(topic);
  log_->trace("mqtt_to_bus topic=\"{}\" group={} bytes={}", topic, group, payload.size());
  auto sent = bus_.send_to_group(group, std::move(msg));
  if (!sent) {
    warn_undelivered(group, sent.error());
    return;
  }
  if (*sent == 0) {
    ++stats_.backlogged;  // kept by the bus until a member joins
  } else if (group == twin_group) {
    ++stats_.to_twin;
  } else {
    ++stats_.to_hub;
  }
}

void eventbus_module::warn_undelivered(std::string_view group, std::error_code ec) {
  if (ec == bus::bus_errc::no_route) {
    ++stats_.no_member;
  } else {
    ++stats_.refused;
  }
  ++undelivered_since_warning_;
  const auto now = clock_.now();
  if (now < next_undelivered_warning_) return;
  next_undelivered_warning_ = now + warning_interval;
  log_->warn(
      "mqtt_message_undelivered group={} reason=\"{}\" count={} total_no_member={} "
      "total_refused={}",
      group, ec.message(), undelivered_since_warning_, stats_.no_member, stats_.refused);
  undelivered_since_warning_ = 0;
}

awaitable<void> eventbus_module::run(bus::bus& b) {
  const std::string self(module_name);
  for (;;) {
    auto m = co_await b.receive(self);
    if (!m) co_return;  // inbox closed: shutdown or removal
    handle(std::move(*m));
  }
}

void eventbus_module::handle(bus::message&& m) {
  if (m.route.operation == operation::query) {
    answer_query(m);
    return;
  }
  const std::string id = m.header.id;
  auto cmd = parse_command(std::move(m), options_.node_name);
  if (!cmd) {
    const rejection& r = cmd.error();
    if (r.type == rejection::kind::unknown_operation) {
      ++stats_.ignored;
      log_->debug("bus_message_ignored msg_id={} reason=\"{}\"", id, r.reason);
      return;
    }
    ++stats_.rejected;
    const auto now = clock_.now();
    const auto level = now >= next_rejected_warning_ ? spdlog::level::warn : spdlog::level::debug;
    if (level == spdlog::level::warn) next_rejected_warning_ = now + std::chrono::seconds(1);
    log_->log(level, "bus_message_rejected msg_id={} reason=\"{}\" total_rejected={}", id, r.reason,
              stats_.rejected);
    return;
  }
  std::visit(
      [this](auto&& c) {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, subscribe_command>) {
          subscribe(std::move(c.filter));
        } else if constexpr (std::is_same_v<T, unsubscribe_command>) {
          unsubscribe(c.filter);
        } else {
          publish(std::move(c.topic), std::move(c.payload));
        }
      },
      std::move(*cmd));
}

void eventbus_module::answer_query(const bus::message& request) {
  if (!request.header.sync || request.route.resource != subscriptions_resource) {
    ++stats_.rejected;
    log_->warn("bus_message_rejected msg_id={} reason=\"query needs sync and resource '{}'\"",
               request.header.id, subscriptions_resource);
    if (request.header.sync) {
      (void)bus_.send_resp(bus::new_error(request, fmt::format("unknown query resource '{}'",
                                                               request.route.resource)),
                           module_name);
    }
    return;
  }
  std::vector<std::string> topics(dynamic_.begin(), dynamic_.end());
  std::sort(topics.begin(), topics.end());
  ++stats_.queries;
  if (auto sent =
          bus_.send_resp(bus::new_response(request, bus::content::json(topics)), module_name);
      !sent) {
    log_->debug("query_response_undelivered msg_id={} error={}", request.header.id,
                sent.error().message());
  }
}

void eventbus_module::subscribe(std::string filter) {
  ++stats_.subscribes;
  // A fixed topic is always intercepted; a subscription of it is stored but changes nothing.
  if (!fixed_.contains(filter) && dynamic_.insert(filter).second) {
    if (internal_ != nullptr) internal_->add_interest(filter);
    if (external_ != nullptr) external_->subscribe(filter);
  }
  if (store_ != nullptr) store_->add(filter);
  log_->info("subscribed topic=\"{}\"", filter);
}

void eventbus_module::unsubscribe(const std::string& filter) {
  ++stats_.unsubscribes;
  if (dynamic_.erase(filter) != 0 && !fixed_.contains(filter)) {
    if (internal_ != nullptr) internal_->remove_interest(filter);
    if (external_ != nullptr) external_->unsubscribe(filter);
  }
  if (store_ != nullptr) store_->remove(filter);
  log_->info("unsubscribed topic=\"{}\"", filter);
}

void eventbus_module::publish(std::string topic, std::string payload) {
  log_->trace("bus_to_mqtt topic=\"{}\" bytes={}", topic, payload.size());
  // Mode 1 publishes on both, external first (as KubeEdge).
  if (external_ != nullptr) {
    external_->publish(topic, payload);
    ++stats_.published_external;
  }
  if (internal_ != nullptr) {
    if (auto ok =
            internal_->inject(std::move(topic), std::move(payload), options_.qos, options_.retain);
        !ok) {
      ++stats_.rejected;
      log_->warn("internal_publish_failed error=\"{}\"", ok.error().message());
      return;
    }
    ++stats_.published_internal;
  }
}

}  // namespace ebus::eventbus
