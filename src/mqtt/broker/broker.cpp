#include "mqtt/broker/broker.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "common/log.hpp"
#include "mqtt/topic/topic.hpp"

namespace ebus::mqtt::broker {

using codec::connect_return_code;
using codec::qos_level;

namespace {
constexpr auto drop_warning_interval = std::chrono::seconds(10);
}

broker::broker(broker_options options, clock& clk)
    : options_(std::move(options)), clock_(clk), log_(log::get("mqtt.broker")) {}

broker::~broker() = default;

broker::connect_result broker::connect(const codec::connect& c, client_link& link,
                                       std::string& resend) {
  connect_result result;
  std::string id = c.client_id;
  if (id.empty()) {
    // A zero-length id is allowed only with clean session on MQTT 3.1.1 [MQTT-3.1.3-7/8].
    if (!c.clean_session || c.level == codec::protocol_level::v3_1) {
      result.ack.return_code = connect_return_code::identifier_rejected;
      ++stats_.connections_refused;
      return result;
    }
    do {
      id = "auto-" + std::to_string(++next_assigned_id_);
    } while (sessions_.contains(id));
  }

  auto it = sessions_.find(id);
  if (it != sessions_.end()) {
    session& old = *it->second;
    if (const auto l = links_.find(&old); l != links_.end()) {
      // Takeover: the existing connection with this id is closed [MQTT-3.1.4-2].
      client_link* previous = l->second;
      links_.erase(l);
      old.detach();
      log_->info("takeover client_id={}", id);
      previous->close("session taken over by a new connection");
    }
    if (c.clean_session || old.clean()) {
      discard(it->second);  // [MQTT-3.1.2-6]
      sessions_.erase(it);
      it = sessions_.end();
    }
  }
  if (it == sessions_.end()) {
    it = sessions_.emplace(id, std::make_unique<session>(id, c.clean_session, options_)).first;
  } else {
    result.ack.session_present = true;  // [MQTT-3.2.2-2]
  }
  session& s = *it->second;
  links_[&s] = &link;
  s.attach(link, resend);
  result.s = &s;
  result.client_id = std::move(id);
  ++stats_.connections_accepted;
  return result;
}

void broker::disconnect(session& s, client_link& link) {
  const auto l = links_.find(&s);
  if (l == links_.end() || l->second != &link) return;  // already taken over
  links_.erase(l);
  s.detach();
  if (s.clean()) {
    const auto it = sessions_.find(s.client_id());
    if (it != sessions_.end()) {
      discard(it->second);
      sessions_.erase(it);
    }
  }
}

void broker::discard(std::unique_ptr<session>& s) {
  for (const auto& [filter, qos] : s->subscriptions) {
    if (auto f = topic::parse_filter(filter)) subscriptions_.erase(*f, s.get());
  }
  s->subscriptions.clear();
}

const session* broker::find_session(std::string_view client_id) const {
  const auto it = sessions_.find(std::string(client_id));
  return it == sessions_.end() ? nullptr : it->second.get();
}

void broker::publish(message_ptr msg) {
  ++stats_.messages_received;
  route(msg);
  if (interceptor_ && interested_in(msg->topic)) {
    ++stats_.intercepted;
    interceptor_(msg);
  }
}

expected<void, std::error_code> broker::inject(std::string topic, std::string payload,
                                               qos_level qos, bool retain) {
  if (auto name = topic::parse_name(topic); !name) return fail(name.error());
  ++stats_.messages_injected;
  route(std::make_shared<const application_message>(
      application_message{std::move(topic), std::move(payload), qos, retain}));
  return {};
}

void broker::route(const message_ptr& msg) {
  if (msg->retain) {
    if (msg->payload.empty()) {
      retained_.erase(msg->topic);  // [MQTT-3.3.1-10]
    } else if (auto name = topic::parse_name(msg->topic)) {
      retained_.store(std::move(*name), msg);  // replaces [MQTT-3.3.1-5]
    }
  }

  // Overlapping subscriptions of one client get one copy at the highest granted QoS.
  matches_.clear();
  subscriptions_.match(
      msg->topic, [this](session* const& s, const qos_level& granted, const topic::topic_filter&) {
        matches_.emplace_back(s, granted);
      });
  if (matches_.size() > 1) {
    std::sort(matches_.begin(), matches_.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second > b.second;
    });
    matches_.erase(std::unique(matches_.begin(), matches_.end(),
                               [](const auto& a, const auto& b) { return a.first == b.first; }),
                   matches_.end());
  }
  for (const auto& [s, granted] : matches_) {
    // Live forwards carry RETAIN 0 [MQTT-3.3.1-9]; delivered QoS is min [MQTT-3.8.4-6].
    account(*s, s->enqueue(msg, std::min(msg->qos, granted), false));
  }
}

void broker::account(session& s, session::enqueue_result result) {
  switch (result) {
    case session::enqueue_result::queued:
      ++stats_.deliveries_queued;
      return;
    case session::enqueue_result::queued_evicting:
      ++stats_.deliveries_queued;
      ++stats_.deliveries_dropped;
      report_drops(s);
      return;
    case session::enqueue_result::dropped:
      ++stats_.deliveries_dropped;
      report_drops(s);
      return;
    case session::enqueue_result::disconnect:
      ++stats_.deliveries_dropped;
      ++stats_.slow_disconnects;
      report_drops(s);
      // The connection closes asynchronously. Until it has finished, the session counts as
      // offline, so messages routed meanwhile are handled as for any offline session (QoS 0
      // dropped, QoS 1/2 queued while there is room) instead of closing it again.
      if (const auto l = links_.find(&s); l != links_.end()) {
        s.detach();
        l->second->close("session queue full (overflow policy: disconnect)");
      }
      return;
  }
}

void broker::report_drops(session& s) {
  const auto now = clock_.now();
  if (now < next_drop_warning_) return;
  next_drop_warning_ = now + drop_warning_interval;
  log_->warn(
      "queue_full client_id={} dropped={} dropped_total={} queue_size={} all_clients_total={}",
      s.client_id(), s.take_unreported_drops(), s.dropped(), options_.session_queue_size,
      stats_.deliveries_dropped);
}

std::vector<codec::suback_return_code> broker::subscribe(
    session& s, const std::vector<codec::subscription>& subs) {
  std::vector<codec::suback_return_code> codes;
  codes.reserve(subs.size());
  for (const auto& sub : subs) {
    auto filter = topic::parse_filter(sub.filter);
    if (!filter) {
      codes.push_back(codec::suback_return_code::failure);
      continue;
    }
    // The server grants exactly what was asked (it supports QoS 2) [MQTT-3.9.3-2].
    subscriptions_.insert(*filter, &s, sub.qos);
    s.subscriptions[filter->str()] = sub.qos;
    codes.push_back(static_cast<codec::suback_return_code>(sub.qos));
    // Retained messages for the new subscription, RETAIN set [MQTT-3.3.1-6][MQTT-3.3.1-8].
    retained_.match(*filter, [&](const topic::topic_name&, const message_ptr& m) {
      account(s, s.enqueue(m, std::min(m->qos, sub.qos), true));
    });
  }
  return codes;
}

void broker::unsubscribe(session& s, const std::vector<std::string>& filters) {
  for (const auto& text : filters) {
    auto filter = topic::parse_filter(text);
    if (!filter) continue;
    subscriptions_.erase(*filter, &s);
    s.subscriptions.erase(text);
  }
}

bool broker::add_interest(std::string_view filter) {
  auto f = topic::parse_filter(filter);
  if (!f) return false;
  interest_.insert(*f, 0, 0);
  return true;
}

bool broker::remove_interest(std::string_view filter) {
  auto f = topic::parse_filter(filter);
  return f && interest_.erase(*f, 0);
}

bool broker::interested_in(std::string_view topic) const {
  bool found = false;
  interest_.match(topic,
                  [&found](const int&, const int&, const topic::topic_filter&) { found = true; });
  return found;
}

}  // namespace ebus::mqtt::broker
