#include "mqtt/broker/broker.hpp"

#include <algorithm>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/log.hpp"
#include "common/string_hash.hpp"
#include "mqtt/codec/codec_error.hpp"
#include "mqtt/codec/encoder.hpp"
#include "mqtt/topic/topic.hpp"

namespace ebus::mqtt::broker {

using codec::connect_return_code;
using codec::qos_level;

namespace {
constexpr auto warning_interval = std::chrono::seconds(10);
constexpr std::size_t max_logged_topic = 256;

// What one retained message costs the store: topic and payload, plus the tree node and entry
// that hold it (so that many tiny messages are bounded by bytes too).
constexpr std::size_t retained_entry_overhead = 160;
std::size_t retained_footprint(const application_message& m) noexcept {
  return m.topic.size() + m.payload.size() + retained_entry_overhead;
}
}  // namespace

broker::broker(broker_options options, clock& clk)
    : options_(std::move(options)),
      clock_(clk),
      log_(log::get("mqtt.broker")),
      receive_share_(
          options_.budget != nullptr ? std::max<std::size_t>(options_.budget->limit() / 4, 1) : 0) {
  options_.access = &access_;
}

broker::~broker() {
  sessions_.clear();  // their retained walks point into retained_, which goes first otherwise
}

broker::connect_result broker::connect(const codec::connect& c, client_link& link,
                                       std::string& resend) {
  connect_result result;
  expire_sessions();  // before the session cap is checked
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

  session* existing = sessions_.find(id);
  if (existing != nullptr) {
    session& old = *existing;
    if (client_link* previous = owner_of(old)) {
      // Takeover: the existing connection with this id is closed [MQTT-3.1.4-2].
      old.disown(clock_.now());
      old.detach();
      log_->info("takeover client_id=\"{}\"", log::escape(id));
      previous->close("session taken over by a new connection");
    }
    if (c.clean_session || old.clean()) {
      erase_session(old);  // [MQTT-3.1.2-6]
      existing = nullptr;
    }
  }
  if (existing == nullptr) {
    if (!c.clean_session && persistent_ >= options_.max_persistent_sessions) {
      // Refused before anything is kept: the client may retry once sessions expire.
      result.ack.return_code = connect_return_code::server_unavailable;
      ++stats_.connections_refused;
      ++stats_.sessions_refused;
      if (should_warn(next_refusal_warning_)) {
        log_->warn("session_refused reason=max_persistent_sessions limit={} refused_total={}",
                   options_.max_persistent_sessions, stats_.sessions_refused);
      }
      return result;
    }
    existing = &sessions_.insert(std::make_unique<session>(id, c.clean_session, options_));
    if (!c.clean_session) ++persistent_;
  } else {
    result.ack.session_present = true;  // [MQTT-3.2.2-2]
  }
  session& s = *existing;
  s.set_username(c.username);
  s.attach(link, resend);
  result.s = &s;
  ++stats_.connections_accepted;
  return result;
}

void broker::disconnect(session& s, client_link& link) {
  if (owner_of(s) != &link) return;  // already taken over
  s.disown(clock_.now());
  s.detach();
  if (s.clean()) {
    erase_session(s);
  } else if (options_.session_expiry.count() > 0) {
    next_expiry_ = std::min(next_expiry_, s.offline_since() + options_.session_expiry);
  }
  expire_sessions();
}

void broker::erase_session(session& s) {
  if (!s.clean()) --persistent_;
  discard(s);
  sessions_.erase(s);
}

void broker::expire_sessions() {
  const auto now = clock_.now();
  if (now < next_expiry_) return;
  next_expiry_ = clock::time_point::max();
  std::optional<clock::time_point> next;
  std::vector<session*> expired;
  sessions_.for_each([&](session& s) {
    if (s.owner() != nullptr || s.clean()) return;  // a closing connection still holds it
    const auto due = s.offline_since() + options_.session_expiry;
    if (due <= now) {
      expired.push_back(&s);
    } else if (!next || due < *next) {
      next = due;
    }
  });
  for (session* s : expired)
    erase_session(*s);
  if (!expired.empty()) {
    stats_.sessions_expired += expired.size();
    log_->info("sessions_expired count={} offline_for_at_least_s={} persistent_left={}",
               expired.size(), options_.session_expiry.count(), persistent_);
  }
  if (next) next_expiry_ = *next;
}

void broker::discard(session& s) {
  for (const auto& [filter, qos] : s.subscriptions()) {
    if (auto f = topic::parse_filter(filter)) subscriptions_.erase(*f, &s);
  }
  s.clear_subscriptions();
}

const session* broker::find_session(std::string_view client_id) const {
  return sessions_.find(client_id);
}

std::optional<inbound_message> broker::make_message(std::string&& topic, std::string&& payload,
                                                    qos_level qos, bool retain) {
  budget_charge charge;
  if (!budget_charge::try_make(options_.budget, footprint(topic.size(), payload.size()), charge)) {
    ++stats_.messages_refused_budget;
    if (should_warn(next_refusal_warning_)) {
      log_->warn("message_refused reason=memory_budget used={} limit={} refused_total={}",
                 options_.budget->used(), options_.budget->limit(), stats_.messages_refused_budget);
    }
    return std::nullopt;
  }
  return std::optional<inbound_message>(std::in_place, std::move(topic), std::move(payload), qos,
                                        retain, std::move(charge));
}

std::string_view broker::check_topic(std::string_view topic) const noexcept {
  if (topic.size() > options_.max_topic_length) return "longer than max_topic_length";
  // A topic has at most size() + 1 levels: short topics need no count.
  if (topic.size() >= options_.max_topic_levels &&
      static_cast<std::size_t>(std::count(topic.begin(), topic.end(), '/')) + 1 >
          options_.max_topic_levels) {
    return "more levels than max_topic_levels";
  }
  return {};
}

broker::publish_result broker::publish(inbound_message& msg,
                                       const std::shared_ptr<flow_waiter>& from,
                                       const session* self) {
  if (const auto why = check_topic(msg.topic()); !why.empty()) {
    ++stats_.messages_refused_topic;
    if (should_warn(next_refusal_warning_)) {
      log_->warn("message_refused reason=\"topic {}\" topic=\"{}\" refused_total={}", why,
                 log::escape(msg.topic(), max_logged_topic), stats_.messages_refused_topic);
    }
    return publish_result::refused;
  }
  if (self != nullptr && access_.acl && !allows(auth::acl_access::write, msg.topic(), *self)) {
    ++access_.denied_publishes;
    if (should_warn(next_refusal_warning_)) {
      log_->warn("publish_denied client_id=\"{}\" topic=\"{}\" reason=acl denied_total={}",
                 log::escape(self->client_id(), max_logged_topic),
                 log::escape(msg.topic(), max_logged_topic), access_.denied_publishes);
    }
    return publish_result::refused;
  }
  ++stats_.messages_received;
  const bool held = route(msg, from, self);
  if (interceptor_ && interested_in(msg.topic())) {
    ++stats_.intercepted;
    interceptor_(msg, from);
  }
  return held ? publish_result::held : publish_result::routed;
}

expected<void, std::error_code> broker::inject(std::string topic, std::string payload,
                                               qos_level qos, bool retain) {
  if (auto name = topic::parse_name(topic); !name) return fail(name.error());
  if (!check_topic(topic).empty())
    return fail(codec::make_error_code(codec::codec_errc::topic_name_invalid));
  if (codec::publish_size(topic.size(), payload.size(), qos) > options_.max_packet_size) {
    return fail(codec::make_error_code(codec::codec_errc::packet_too_large));
  }
  auto msg = make_message(std::move(topic), std::move(payload), qos, retain);
  if (!msg) return fail(std::make_error_code(std::errc::not_enough_memory));
  ++stats_.messages_injected;
  route(*msg, nullptr, nullptr);
  return {};
}

void broker::retain(const message_ptr& msg) {
  if (msg->payload.empty()) {
    if (const auto* old = retained_.find(msg->topic)) {
      retained_bytes_ -= retained_footprint(**old);
      retained_.erase(msg->topic);  // [MQTT-3.3.1-10]
    }
    return;
  }
  auto name = topic::parse_name(msg->topic);
  if (!name) return;
  const auto* old = retained_.find(msg->topic);
  const std::size_t old_bytes = old != nullptr ? retained_footprint(**old) : 0;
  const std::size_t new_bytes = retained_footprint(*msg);
  const bool count_ok = old != nullptr || retained_.size() < options_.max_retained_messages;
  const bool bytes_ok = retained_bytes_ - old_bytes + new_bytes <= options_.max_retained_bytes;
  if (!count_ok || !bytes_ok) {
    // The message is still routed live; only the store refuses it, and the previous retained
    // message on the topic (if any) stays.
    ++stats_.retained_refused;
    if (should_warn(next_retained_warning_)) {
      log_->warn(
          "retained_refused reason={} topic=\"{}\" stored={} stored_bytes={} limit={} "
          "limit_bytes={} refused_total={}",
          count_ok ? "max_retained_bytes" : "max_retained_messages",
          log::escape(msg->topic, max_logged_topic), retained_.size(), retained_bytes_,
          options_.max_retained_messages, options_.max_retained_bytes, stats_.retained_refused);
    }
    return;
  }
  retained_bytes_ = retained_bytes_ - old_bytes + new_bytes;
  retained_.store(std::move(*name), msg);  // replaces [MQTT-3.3.1-5]
}

bool broker::route(inbound_message& in, const std::shared_ptr<flow_waiter>& from,
                   const session* self) {
  if (in.retain()) retain(in.shared());

  // Overlapping subscriptions of one client get one copy at the highest granted QoS.
  matches_.clear();
  subscriptions_.match(
      in.topic(), [this](session* const& s, const qos_level& granted, const topic::topic_filter&) {
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
  // As for every device message only the EventBus takes: no shared message is made.
  if (matches_.empty()) return false;
  const message_ptr& msg = in.shared();
  const auto now = clock_.now();
  bool held = false;
  for (const auto& [s, granted] : matches_) {
    if (access_.acl && !allows(auth::acl_access::read, msg->topic, *s)) {
      ++access_.denied_deliveries;
      continue;
    }
    // Live forwards carry RETAIN 0 [MQTT-3.3.1-9]; delivered QoS is min [MQTT-3.8.4-6].
    const auto result = s->enqueue(msg, std::min(msg->qos, granted), false, now);
    if (result == session::enqueue_result::queued_over_limit && from && s != self) {
      s->hold(from);
      held = true;
    }
    account(*s, result);
  }
  if (held) ++stats_.publishers_held;
  return held;
}

void broker::account(session& s, session::enqueue_result result) {
  switch (result) {
    case session::enqueue_result::queued:
    case session::enqueue_result::queued_over_limit:
      ++stats_.deliveries_queued;
      return;
    case session::enqueue_result::queued_evicting:
      ++stats_.deliveries_queued;
      ++stats_.deliveries_dropped;
      ++stats_.dropped_queue_full;
      report_drops(s, "queue_full");
      return;
    case session::enqueue_result::dropped:
      ++stats_.deliveries_dropped;
      ++stats_.dropped_queue_full;
      report_drops(s, "queue_full");
      return;
    case session::enqueue_result::dropped_offline:
      ++stats_.deliveries_dropped;
      ++stats_.dropped_offline_qos0;
      return;
    case session::enqueue_result::dropped_budget:
      ++stats_.deliveries_dropped;
      ++stats_.dropped_budget;
      report_drops(s, "memory_budget");
      return;
    case session::enqueue_result::disconnect:
      ++stats_.deliveries_dropped;
      ++stats_.dropped_queue_full;
      ++stats_.slow_disconnects;
      report_drops(s, "queue_full");
      // The connection closes asynchronously. Until it has finished, the session counts as
      // offline, so messages routed meanwhile are handled as for any offline session (QoS 0
      // dropped, QoS 1/2 queued while there is room) instead of closing it again.
      if (client_link* l = owner_of(s)) {
        s.detach();
        l->close("session queue full (overflow policy: disconnect)");
      }
      return;
  }
}

bool broker::connection_line_at_info() {
  const auto now = clock_.now();
  if (now >= connection_log_window_end_) {
    connection_log_window_end_ = now + std::chrono::seconds(1);
    connection_lines_in_window_ = 0;
    if (connection_lines_unreported_ > 0) {
      log_->info(
          "connection_lines_held count={} held_total={} detail=\"logged at debug: more "
          "than {} connections opened or closed in one second\"",
          connection_lines_unreported_, stats_.connection_lines_held, connection_log_burst);
      connection_lines_unreported_ = 0;
    }
  }
  if (connection_lines_in_window_ < connection_log_burst) {
    ++connection_lines_in_window_;
    return true;
  }
  ++connection_lines_unreported_;
  ++stats_.connection_lines_held;
  return false;
}

bool broker::should_warn(clock::time_point& next) {
  const auto now = clock_.now();
  if (now < next) return false;
  next = now + warning_interval;
  return true;
}

void broker::report_drops(session& s, std::string_view reason) {
  if (!should_warn(next_drop_warning_)) return;
  log_->warn(
      "messages_dropped reason={} client_id=\"{}\" dropped={} dropped_total={} queued={} "
      "queued_bytes={} queue_size={} queue_bytes={} all_clients_total={}",
      reason, log::escape(s.client_id(), max_logged_topic), s.take_unreported_drops(), s.dropped(),
      s.queued(), s.queued_bytes(), options_.session_queue_size, options_.session_queue_bytes,
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
    if (access_.acl && !allows(auth::acl_access::subscribe, sub.filter, s)) {
      ++access_.denied_subscriptions;
      if (should_warn(next_refusal_warning_)) {
        log_->warn("subscription_denied client_id=\"{}\" filter=\"{}\" reason=acl denied_total={}",
                   log::escape(s.client_id(), max_logged_topic),
                   log::escape(sub.filter, max_logged_topic), access_.denied_subscriptions);
      }
      codes.push_back(codec::suback_return_code::failure);
      continue;
    }
    std::string_view refusal = check_topic(sub.filter);
    if (refusal.empty() && s.subscriptions().size() >= options_.max_subscriptions_per_client &&
        !s.subscriptions().contains(sub.filter)) {
      refusal = "client holds max_subscriptions_per_client";
    }
    if (!refusal.empty()) {
      ++stats_.subscriptions_refused;
      if (should_warn(next_refusal_warning_)) {
        log_->warn(
            "subscription_refused client_id=\"{}\" filter=\"{}\" reason=\"{}\" "
            "refused_total={}",
            log::escape(s.client_id(), max_logged_topic), log::escape(sub.filter, max_logged_topic),
            refusal, stats_.subscriptions_refused);
      }
      codes.push_back(codec::suback_return_code::failure);
      continue;
    }
    // The server grants exactly what was asked (it supports QoS 2) [MQTT-3.9.3-2].
    subscriptions_.insert(*filter, &s, sub.qos);
    s.set_subscription(filter->str(), sub.qos);
    codes.push_back(static_cast<codec::suback_return_code>(sub.qos));
    // Retained messages for the new subscription, RETAIN set [MQTT-3.3.1-6][MQTT-3.3.1-8]. They
    // are found a slice at a time as the writer asks for them, ahead of the live queue and
    // outside its limits, so every one of them reaches the subscriber and 100,000 of them do
    // not hold the loop.
    if (!retained_.empty()) {
      s.add_retained_walk(retained_.begin_walk(*filter), sub.qos);
      ++stats_.retained_walks;
    } else {
      s.cancel_retained_walk(sub.filter);
    }
  }
  return codes;
}

void broker::unsubscribe(session& s, const std::vector<std::string>& filters) {
  for (const auto& text : filters) {
    auto filter = topic::parse_filter(text);
    if (!filter) continue;
    subscriptions_.erase(*filter, &s);
    s.erase_subscription(text);
    s.cancel_retained_walk(text);
  }
}

bool broker::add_interest(std::string_view filter) {
  auto f = topic::parse_filter(filter);
  if (!f) return false;
  interest_.insert(*f, 0, 0);
  forget_interests();
  return true;
}

bool broker::remove_interest(std::string_view filter) {
  auto f = topic::parse_filter(filter);
  if (!f || !interest_.erase(*f, 0)) return false;
  forget_interests();
  return true;
}

void broker::forget_interests() noexcept {
  for (auto& memo : interest_memo_)
    memo.valid = false;
}

bool broker::interested_in(std::string_view topic) const {
  if (topic.size() > interest_memo_topic_bytes) return interest_.matches_any(topic);
  auto& memo = interest_memo_[string_hash{}(topic) % interest_memo_slots];
  if (memo.valid && memo.topic == topic) return memo.interested;
  memo.interested = interest_.matches_any(topic);
  memo.topic.assign(topic);
  memo.valid = true;
  return memo.interested;
}

}  // namespace ebus::mqtt::broker
