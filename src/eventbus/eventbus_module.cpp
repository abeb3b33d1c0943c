#include "eventbus/eventbus_module.hpp"

#include <algorithm>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bus/bus.hpp"
#include "common/asio.hpp"
#include "common/log.hpp"
#include "eventbus/command.hpp"
#include "eventbus/persisted_topics.hpp"
#include "eventbus/routing.hpp"
#include "eventbus/topics.hpp"
#include "mqtt/broker/broker.hpp"
#include "mqtt/broker/session.hpp"
#include "mqtt/client/external_broker.hpp"
#include "mqtt/codec/encoder.hpp"

namespace ebus::eventbus {
namespace {

// Warnings about lost or rejected messages repeat at most this often, with a count.
constexpr auto warning_interval = std::chrono::seconds(10);

// The request a message was, without its content: what an answer needs.
bus::message request_of(const bus::message& m) {
  bus::message r;
  r.header = m.header;
  r.route = m.route;
  return r;
}

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
      log_(log::get("eventbus")) {
  if (external_ != nullptr) {
    // A pause must not outlast the subscriber's keepalive either.
    const auto pause = external_->max_pause();
    external_limit_ = options_.slow_group_timeout;
    if (pause < std::chrono::duration_cast<std::chrono::milliseconds>(external_limit_)) {
      external_limit_ = pause;
    }
    external_timer_ = clock_.make_timer([this] { on_external_deadline(); });
  }
}

eventbus_module::~eventbus_module() {
  if (internal_ != nullptr) internal_->set_interceptor(nullptr);
  if (external_ != nullptr && external_pauses_ != 0) external_->pause_receiving(false);
  bus_.set_relief_listener(nullptr);
}

void eventbus_module::install(const std::vector<std::string>& persisted) {
  for (const auto topic : fixed_topics) {
    fixed_.emplace(topic);
    if (internal_ != nullptr) internal_->add_interest(topic);
    if (external_ != nullptr) external_->subscribe(std::string(topic));
  }
  std::size_t skipped = 0;
  for (const auto& topic : persisted) {
    if (fixed_.contains(topic) || dynamic_.contains(topic)) continue;
    if (dynamic_.size() >= options_.max_subscriptions ||
        topic.size() > options_.max_subscription_bytes - dynamic_bytes_) {
      ++skipped;
      continue;
    }
    if (internal_ != nullptr && !internal_->add_interest(topic)) {
      log_->warn("stored_topic_invalid topic=\"{}\": not intercepted", log::escape(topic));
      continue;
    }
    dynamic_.insert(topic);
    dynamic_bytes_ += topic.size();
    if (external_ != nullptr) external_->subscribe(topic);
  }
  if (internal_ != nullptr) {
    internal_->set_interceptor([this](mqtt::broker::inbound_message& m,
                                      const std::shared_ptr<mqtt::broker::flow_waiter>& from) {
      on_mqtt_message(m.topic(), m.take_payload(), from);
    });
  }
  if (internal_ != nullptr || external_ != nullptr) {
    bus_.set_relief_listener([this](const std::string& group) { on_relief(group); });
  }
  log_->info("interests fixed={} stored={} bytes={}", fixed_.size(), dynamic_.size(),
             dynamic_bytes_);
  if (skipped != 0) {
    stats_.stored_skipped += skipped;
    log_->warn(
        "stored_topics_skipped count={} max_subscriptions={} max_subscription_bytes={}: rows "
        "beyond the limits stay in sub_topics but are not intercepted",
        skipped, options_.max_subscriptions, options_.max_subscription_bytes);
  }
}

void eventbus_module::on_mqtt_message(std::string_view topic, std::string payload,
                                      const std::shared_ptr<mqtt::broker::flow_waiter>& from) {
  // The next messages of this publisher wait in its socket while the group drains, as for a
  // subscriber over its limit: a burst from devices loses nothing to a module that keeps
  // reading. A group with no member is never crowded (nothing would drain it).
  if (const auto [group, crowded] = forward(topic, std::move(payload)); crowded && from) {
    hold(group, from);
  }
}

void eventbus_module::on_external_message(std::string_view topic, std::string_view payload) {
  // The same for the external broker's messages: they wait in its queue for our subscriber.
  if (const auto [group, crowded] = forward(topic, std::string(payload));
      crowded && external_ != nullptr) {
    hold_external(group);
  }
}

eventbus_module::forwarded eventbus_module::forward(std::string_view topic, std::string payload) {
  auto [group, msg] = route_to_bus(topic, std::move(payload), unix_millis(), resources_);
  if (log_->should_log(spdlog::level::trace)) {
    log_->trace("mqtt_to_bus topic=\"{}\" group={} bytes={}", log::escape(topic), group,
                msg.content.bytes().size());
  }
  bool crowded = false;
  auto sent = bus_.send_to_group(group, std::move(msg), crowded);
  if (!sent) {
    warn_undelivered(group, sent.error());
  } else if (*sent == 0) {
    ++stats_.backlogged;  // kept by the bus until a member joins
  } else if (group == twin_group) {
    ++stats_.to_twin;
  } else {
    ++stats_.to_hub;
  }
  return {group, crowded};
}

eventbus_module::crowded_group* eventbus_module::crowding(std::string_view group) {
  auto it = crowded_.find(group);
  const auto now = clock_.now();
  if (it == crowded_.end()) {
    it = crowded_.emplace(std::string(group), crowded_group{}).first;
    it->second.since = now;
    bus_.watch(group);  // on_relief() once its members have drained
  }
  crowded_group& c = it->second;
  if (c.slow) return nullptr;
  if (now - c.since >= options_.slow_group_timeout) {
    become_slow(group, c);
    return nullptr;
  }
  return &c;
}

void eventbus_module::hold(std::string_view group,
                           const std::shared_ptr<mqtt::broker::flow_waiter>& from) {
  crowded_group* c = crowding(group);
  if (c == nullptr) return;
  mqtt::broker::add_hold(c->holds, from);
  ++stats_.publishers_held;
}

void eventbus_module::hold_external(std::string_view group) {
  crowded_group* c = crowding(group);
  if (c == nullptr || c->external) return;
  c->external = true;
  ++stats_.external_held;
  if (external_pauses_++ == 0) external_->pause_receiving(true);
  // Nothing more comes from the paused subscriber to find the group slow: the timer does.
  arm_external_timer();
}

void eventbus_module::become_slow(std::string_view group, crowded_group& c) {
  // Its members do not drain: nobody waits for it any more; what does not fit is refused
  // (counted) until it has drained.
  c.slow = true;
  ++stats_.groups_slow;
  mqtt::broker::release_holds(std::exchange(c.holds, {}));
  release_external(c);
  if (allow_warning(slow_warning_)) {
    log_->warn(
        "group_slow group={} crowded_ms={}: MQTT publishers are no longer held back for it "
        "until its modules drain; messages that do not fit their queues are refused "
        "(counted) groups_slow_total={} refused_total={}",
        group,
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now() - c.since).count(),
        stats_.groups_slow, stats_.refused);
  }
}

void eventbus_module::release_external(crowded_group& c) {
  if (!c.external) return;
  c.external = false;
  if (--external_pauses_ == 0) external_->pause_receiving(false);
}

void eventbus_module::on_external_deadline() {
  const auto now = clock_.now();
  for (auto& [group, c] : crowded_) {
    if (c.external && now >= c.since + external_limit_) become_slow(group, c);
  }
  arm_external_timer();
}

void eventbus_module::arm_external_timer() {
  std::optional<clock::time_point> next;
  for (const auto& [group, c] : crowded_) {
    if (c.external && (!next || c.since + external_limit_ < *next))
      next = c.since + external_limit_;
  }
  if (next) {
    external_timer_->arm(*next);
  } else {
    external_timer_->cancel();
  }
}

void eventbus_module::on_relief(const std::string& group) {
  const auto it = crowded_.find(group);
  if (it == crowded_.end()) return;
  auto holds = std::move(it->second.holds);
  release_external(it->second);
  crowded_.erase(it);
  mqtt::broker::release_holds(std::move(holds));
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

bool eventbus_module::allow_warning(rate_limit& limit) {
  const auto now = clock_.now();
  if (now < limit.next) {
    ++limit.suppressed;
    return false;
  }
  limit.next = now + warning_interval;
  return true;
}

awaitable<void> eventbus_module::run(bus::bus& b) {
  // Store outcomes come back on this loop.
  if (store_ != nullptr) store_->bind(co_await asio::this_coro::executor);
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
  const bus::message request = request_of(m);
  auto cmd = parse_command(std::move(m), options_.node_name,
                           {.max_topic_length = options_.max_topic_length,
                            .max_topic_levels = options_.max_topic_levels});
  if (!cmd) {
    const rejection& r = cmd.error();
    if (r.type == rejection::kind::unknown_operation) {
      ++stats_.ignored;
      log_->debug("bus_message_ignored msg_id={} reason=\"{}\"", log::escape(request.header.id),
                  r.reason);
      return;
    }
    ++stats_.rejected;
    const auto now = clock_.now();
    const auto level = now >= next_rejected_warning_ ? spdlog::level::warn : spdlog::level::debug;
    if (level == spdlog::level::warn) next_rejected_warning_ = now + std::chrono::seconds(1);
    log_->log(level, "bus_message_rejected msg_id={} reason=\"{}\" total_rejected={}",
              log::escape(request.header.id), r.reason, stats_.rejected);
    refuse(request, r.reason);
    return;
  }
  std::visit(
      [&](auto&& c) {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, subscribe_command>) {
          subscribe(std::move(c.filter), request);
        } else if constexpr (std::is_same_v<T, unsubscribe_command>) {
          unsubscribe(c.filter, request);
        } else {
          if (auto ok = publish(std::move(c.topic), std::move(c.payload)); !ok) {
            refuse(request, ok.error());
          } else {
            confirm(request);
          }
        }
      },
      std::move(*cmd));
}

void eventbus_module::confirm(const bus::message& request) {
  if (!request.header.sync) return;
  if (auto sent = bus_.send_resp(bus::new_response(request, bus::content{}), module_name); !sent) {
    log_->debug("response_undelivered msg_id={} error={}", log::escape(request.header.id),
                sent.error().message());
    return;
  }
  ++stats_.confirmed;
}

void eventbus_module::refuse(const bus::message& request, const std::string& reason) {
  if (request.header.sync) {
    if (bus_.send_resp(bus::new_error(request, reason), module_name)) ++stats_.errors_returned;
    return;
  }
  // Not sync: only a module on the bus can be told (eventbus-ctl reads these before the answer
  // to the query it sends next). Router messages from the cloud name no module.
  const auto& source = request.route.source;
  if (source.empty() || source == module_name || !bus_.has_module(source)) return;
  if (bus_.send(source, bus::new_error(request, reason))) ++stats_.errors_returned;
}

void eventbus_module::answer_query(const bus::message& request) {
  if (!request.header.sync || request.route.resource != subscriptions_resource) {
    ++stats_.rejected;
    log_->warn("bus_message_rejected msg_id={} reason=\"query needs sync and resource '{}'\"",
               log::escape(request.header.id), subscriptions_resource);
    if (request.header.sync) {
      (void)bus_.send_resp(
          bus::new_error(request, fmt::format("unknown query resource '{}'",
                                              log::escape(request.route.resource))),
          module_name);
    }
    return;
  }
  auto answer = [this, request = request_of(request)] {
    std::vector<std::string> topics(dynamic_.begin(), dynamic_.end());
    std::sort(topics.begin(), topics.end());
    ++stats_.queries;
    if (auto sent =
            bus_.send_resp(bus::new_response(request, bus::content::json(topics)), module_name);
        !sent) {
      log_->debug("query_response_undelivered msg_id={} error={}", log::escape(request.header.id),
                  sent.error().message());
    }
  };
  if (store_ == nullptr) {
    answer();
    return;
  }
  // The answer confirms every subscribe / unsubscribe received before it: it waits until their
  // writes have committed (or failed, and their senders have had the error).
  store_->barrier([token = std::weak_ptr(alive_), answer = std::move(answer)] {
    if (!token.expired()) answer();
  });
}

void eventbus_module::set_interest(const std::string& filter, bool present) {
  if (present) {
    if (!dynamic_.insert(filter).second) return;
    dynamic_bytes_ += filter.size();
    if (internal_ != nullptr) internal_->add_interest(filter);
    if (external_ != nullptr) external_->subscribe(filter);
  } else {
    if (dynamic_.erase(filter) == 0) return;
    dynamic_bytes_ -= filter.size();
    if (internal_ != nullptr) internal_->remove_interest(filter);
    if (external_ != nullptr) external_->unsubscribe(filter);
  }
}

bool eventbus_module::store_write(const std::string& filter, bool insert,
                                  const bus::message& request) {
  auto [it, first] = unconfirmed_.try_emplace(filter);
  // With no write outstanding, the table holds what memory holds.
  if (first) it->second.stored = dynamic_.contains(filter);
  auto done = [this, token = std::weak_ptr(alive_), filter, insert,
               request](const expected<void, std::string>& result) {
    if (!token.expired()) on_stored(filter, insert, result, request);
  };
  auto queued =
      insert ? store_->add(filter, std::move(done)) : store_->remove(filter, std::move(done));
  if (queued) {
    ++it->second.writes;
    return true;
  }
  if (it->second.writes == 0) unconfirmed_.erase(it);
  ++stats_.store_refused;
  if (allow_warning(store_warning_)) {
    log_->warn("subscription_not_stored topic=\"{}\" reason=\"{}\" store_refused={}",
               log::escape(filter), queued.error(), stats_.store_refused);
  }
  refuse(request, fmt::format("{} '{}' refused: {}", insert ? "subscribe" : "unsubscribe",
                              log::escape(filter), queued.error()));
  return false;
}

void eventbus_module::on_stored(const std::string& filter, bool insert,
                                const expected<void, std::string>& result,
                                const bus::message& request) {
  // What memory holds for the filter after this write (a fixed topic is never a run-time one).
  const bool present = insert && !fixed_.contains(filter);
  const auto it = unconfirmed_.find(filter);
  if (it != unconfirmed_.end()) {
    if (result) it->second.stored = present;
    if (--it->second.writes == 0) {
      // The last outstanding write of this filter: memory follows the table again, which rolls
      // back the effect of writes that failed.
      const bool stored = it->second.stored;
      unconfirmed_.erase(it);
      if (!fixed_.contains(filter) && dynamic_.contains(filter) != stored) {
        set_interest(filter, stored);
        log_->warn("subscription_rolled_back topic=\"{}\" intercepted={}", log::escape(filter),
                   stored);
      }
    }
  }
  if (result) {
    confirm(request);
    return;
  }
  ++stats_.store_failed;
  if (allow_warning(store_warning_)) {
    log_->warn("subscription_not_stored topic=\"{}\" reason=\"{}\" store_failed={}",
               log::escape(filter), result.error(), stats_.store_failed);
  }
  refuse(request, fmt::format("{} '{}' not stored: {}", insert ? "subscribe" : "unsubscribe",
                              log::escape(filter), result.error()));
}

void eventbus_module::subscribe(std::string filter, const bus::message& request) {
  ++stats_.subscribes;
  // A fixed topic is always intercepted; a subscription of it is stored but changes nothing.
  const bool is_new = !fixed_.contains(filter) && !dynamic_.contains(filter);
  if (is_new && (dynamic_.size() >= options_.max_subscriptions ||
                 filter.size() > options_.max_subscription_bytes -
                                     std::min(dynamic_bytes_, options_.max_subscription_bytes))) {
    ++stats_.subscriptions_refused;
    const auto reason = fmt::format(
        "subscribe '{}' refused: the limit of run-time subscriptions is reached ({} "
        "subscriptions / {} bytes; limits {} / {})",
        log::escape(filter), dynamic_.size(), dynamic_bytes_, options_.max_subscriptions,
        options_.max_subscription_bytes);
    if (allow_warning(cap_warning_)) {
      log_->warn("subscription_refused reason=\"{}\" refused={} not_logged={}", reason,
                 stats_.subscriptions_refused, std::exchange(cap_warning_.suppressed, 0));
    }
    refuse(request, reason);
    return;
  }
  if (store_ != nullptr && !store_write(filter, true, request)) return;
  if (is_new) set_interest(filter, true);
  log_->info("subscribed topic=\"{}\"", log::escape(filter));
  if (store_ == nullptr) confirm(request);
}

void eventbus_module::unsubscribe(const std::string& filter, const bus::message& request) {
  ++stats_.unsubscribes;
  if (store_ != nullptr && !store_write(filter, false, request)) return;
  set_interest(filter, false);
  log_->info("unsubscribed topic=\"{}\"", log::escape(filter));
  if (store_ == nullptr) confirm(request);
}

expected<void, std::string> eventbus_module::publish(std::string topic, std::string payload) {
  if (log_->should_log(spdlog::level::trace)) {
    log_->trace("bus_to_mqtt topic=\"{}\" bytes={}", log::escape(topic), payload.size());
  }
  // Checked at the highest QoS it goes out with, so that no broker has to drop it later.
  auto qos = internal_ != nullptr ? options_.qos : mqtt::codec::qos_level::at_most_once;
  if (external_ != nullptr && qos == mqtt::codec::qos_level::at_most_once) {
    qos = mqtt::codec::qos_level::at_least_once;
  }
  // Whatever the configured limit (0: none), MQTT cannot encode a larger packet: the encoder
  // would refuse it on the way out, after this sender had been told it was published.
  const bool configured = options_.max_packet_size != 0 &&
                          options_.max_packet_size < mqtt::codec::max_packet_size_limit;
  const std::size_t limit =
      configured ? options_.max_packet_size : mqtt::codec::max_packet_size_limit;
  if (const auto size = mqtt::codec::publish_size(topic.size(), payload.size(), qos);
      size > limit) {
    ++stats_.publishes_too_large;
    auto reason = fmt::format(
        fmt::runtime(
            configured
                ? "publish on '{}' refused: the MQTT packet would be {} bytes, more than the "
                  "maximum packet size of {} bytes"
                : "publish on '{}' refused: the MQTT packet would be {} bytes, more than the "
                  "largest packet MQTT can encode ({} bytes)"),
        log::escape(topic), size, limit);
    if (allow_warning(size_warning_)) {
      log_->warn("publish_too_large reason=\"{}\" refused={} not_logged={}", reason,
                 stats_.publishes_too_large, std::exchange(size_warning_.suppressed, 0));
    }
    return fail(std::move(reason));
  }
  std::string external_error;
  // Mode 1 publishes on both, external first (as KubeEdge).
  if (external_ != nullptr) {
    if (auto ok = external_->publish(topic, payload); ok) {
      ++stats_.published_external;
    } else {
      ++stats_.publishes_refused;  // counted and logged by the client with its reason
      external_error = fmt::format("publish on '{}' refused by the external broker client: {}",
                                   log::escape(topic), ok.error());
    }
  }
  if (internal_ != nullptr) {
    if (auto ok =
            internal_->inject(std::move(topic), std::move(payload), options_.qos, options_.retain);
        !ok) {
      ++stats_.rejected;
      log_->warn("internal_publish_failed error=\"{}\"", ok.error().message());
      return fail("publish refused by the embedded broker: " + ok.error().message());
    }
    ++stats_.published_internal;
  }
  if (!external_error.empty()) return fail(std::move(external_error));
  return {};
}

}  // namespace ebus::eventbus
