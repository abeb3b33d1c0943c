#include "mqtt/broker/session.hpp"

#include <algorithm>

#include "mqtt/codec/encoder.hpp"

namespace ebus::mqtt::broker {

using codec::qos_level;

namespace {
std::size_t entry_bytes(const application_message& m) noexcept {
  return m.topic.size() + m.payload.size() + session::entry_overhead;
}
}  // namespace

session::session(std::string_view client_id, bool clean, const broker_options& options)
    : client_id_(client_id), options_(options), clean_(clean) {}

session::~session() {
  end_over_limit();
  if (options_.budget != nullptr) {
    options_.budget->release((queue_.size() + retained_owed()) * entry_overhead);
  }
}

void session::attach(session_link& link, std::string& out) {
  owner_ = &link;
  owned_ = true;
  online_ = true;
  // A queue filled while offline gets a fresh slow_subscriber_timeout to drain.
  end_over_limit();
  // Redeliver in the original order with DUP set [MQTT-4.4.0-1][MQTT-3.3.1-1].
  for (const auto& f : inflight_) {
    if (f.state == inflight_state::awaiting_pubcomp) {
      codec::encode(codec::pubrel{f.id}, out);
    } else {
      const auto& m = *f.delivery.msg;
      codec::encode_publish(out, m.topic, m.payload, f.delivery.qos, f.delivery.retain,
                            /*dup=*/true, f.id);
    }
  }
}

void session::count(const queued_message& q) noexcept {
  auto& totals = queue_.mutable_totals();
  totals.bytes += entry_bytes(*q.msg);
  if (q.qos == qos_level::at_most_once) ++totals.qos0;
}

void session::uncount(const queued_message& q) noexcept {
  auto& totals = queue_.mutable_totals();
  totals.bytes -= entry_bytes(*q.msg);
  if (q.qos == qos_level::at_most_once) --totals.qos0;
}

void session::detach() noexcept {
  online_ = false;
  // Nothing drains an offline queue: nobody waits for it.
  if (auto* state = over_limit()) release_holds(std::exchange(state->waiters, {}));
  release_idle_memory();
}

bool session::slow(clock::time_point now) const noexcept {
  const auto* state = over_limit();
  return state != nullptr && now - state->since >= options_.slow_subscriber_timeout;
}

std::optional<session::enqueue_result> session::overflow(bool qos0, std::size_t bytes) {
  switch (options_.overflow) {
    case overflow_policy::drop_newest:
      count_drop();
      return enqueue_result::dropped;
    case overflow_policy::disconnect:
      count_drop();
      return online() ? enqueue_result::disconnect : enqueue_result::dropped;
    case overflow_policy::drop_oldest:
      break;
  }
  // Evict the oldest messages of the same class until the new one fits the soft limits.
  std::size_t evicted = 0;
  while (in_class(qos0) >= options_.session_queue_size ||
         queued_bytes() + bytes > options_.session_queue_bytes) {
    const auto oldest = std::find_if(queue_.begin(), queue_.end(), [qos0](const auto& q) {
      return (q.qos == qos_level::at_most_once) == qos0;
    });
    if (oldest == queue_.end()) break;
    uncount(*oldest);
    queue_.erase(oldest);
    release_entry();
    count_drop();
    ++evicted;
  }
  if (queued_bytes() + bytes > options_.session_queue_bytes) {
    count_drop();  // larger than the whole byte limit on its own
    return enqueue_result::dropped;
  }
  return evicted > 0 ? std::optional(enqueue_result::queued_evicting) : std::nullopt;
}

session::enqueue_result session::enqueue(const message_ptr& msg, qos_level qos, bool retain,
                                         clock::time_point now) {
  const bool qos0 = qos == qos_level::at_most_once;
  if (qos0 && !online()) return enqueue_result::dropped_offline;
  const std::size_t bytes = entry_bytes(*msg);
  const bool over_soft = in_class(qos0) >= options_.session_queue_size ||
                         queued_bytes() + bytes > options_.session_queue_bytes;
  std::optional<enqueue_result> evicting;
  bool publisher_waits = false;
  if (over_soft) {
    if (over_limit() == nullptr) {
      rare().over_limit = std::make_unique<over_limit_state>(over_limit_state{now, {}});
    }
    const bool over_hard = in_class(qos0) >= 2 * options_.session_queue_size ||
                           queued_bytes() + bytes > 2 * options_.session_queue_bytes;
    if (!online() || slow(now) || over_hard) {
      evicting = overflow(qos0, bytes);
      if (evicting && *evicting != enqueue_result::queued_evicting) return *evicting;
    } else {
      publisher_waits = true;
    }
  }
  if (!charge_entry()) {
    count_drop();
    return enqueue_result::dropped_budget;
  }
  count(queue_.emplace_back(queued_message{msg, qos, retain}));
  if (online_) owner_->wake();  // cheap when the writer is already awake
  if (evicting) return *evicting;
  // The wake-up may have written part of the queue already; ask the publisher to wait only
  // when the queue is still over its limit.
  if (publisher_waits && over_limit() != nullptr) return enqueue_result::queued_over_limit;
  return enqueue_result::queued;
}

void session::hold(const std::shared_ptr<flow_waiter>& publisher) {
  auto* state = over_limit();
  if (!publisher || state == nullptr || !online()) return;
  add_hold(state->waiters, publisher);
}

void release_holds(std::vector<flow_hold> holds) noexcept {
  for (auto& [weak, generation] : holds) {
    const auto w = weak.lock();
    if (!w || w->generation != generation || w->blocking == 0) continue;
    if (--w->blocking == 0 && w->on_clear) w->on_clear();
  }
}

void session::drained() noexcept {
  if (over_limit() == nullptr) return;
  const bool below_half = in_class(true) <= options_.session_queue_size / 2 &&
                          in_class(false) <= options_.session_queue_size / 2 &&
                          queued_bytes() <= options_.session_queue_bytes / 2;
  if (!below_half) return;
  end_over_limit();
}

bool session::has_sendable() const noexcept {
  const auto* owed = retained();
  if (owed != nullptr && owed->messages.empty() && !owed->walks.empty()) {
    return true;  // fill() finds the next ones
  }
  const auto* head = owed != nullptr && !owed->messages.empty() ? &owed->messages.front()
                     : !queue_.empty()                          ? &queue_.front()
                                                                : nullptr;
  if (head == nullptr) return false;
  return head->qos == qos_level::at_most_once || inflight_.size() < options_.max_inflight;
}

namespace {
// Whole packets up to the budget: a writer's buffer reserved for one batch is never grown (and
// copied) for the packet that crosses it. A packet larger than the budget goes alone.
bool fits(const std::string& out, const application_message& m, codec::qos_level qos,
          std::size_t budget) noexcept {
  return out.empty() ||
         out.size() + codec::publish_size(m.topic.size(), m.payload.size(), qos) <= budget;
}
}  // namespace

inline void session::write(std::string& out, queued_message& q) {
  const auto& m = *q.msg;
  if (q.qos == qos_level::at_most_once) {
    codec::encode_publish(out, m.topic, m.payload, q.qos, q.retain, false, 0);
    return;
  }
  const std::uint16_t id = next_packet_id();
  codec::encode_publish(out, m.topic, m.payload, q.qos, q.retain, false, id);
  inflight_.push_back({id,
                       q.qos == qos_level::at_least_once ? inflight_state::awaiting_puback
                                                         : inflight_state::awaiting_pubrec,
                       std::move(q)});
}

bool session::send_retained(std::string& out, std::size_t budget) {
  auto& owed = *retained();
  for (;;) {
    while (!owed.messages.empty() && out.size() < budget) {
      auto& q = owed.messages.front();
      if (q.qos != qos_level::at_most_once && inflight_.size() >= options_.max_inflight) {
        return false;
      }
      if (!fits(out, *q.msg, q.qos, budget)) return false;
      write(out, q);
      owed.messages.pop_front();
      release_entry();
    }
    if (!owed.messages.empty() || out.size() >= budget || owed.walks.empty()) break;
    find_retained();
  }
  if (!owed.messages.empty() || !owed.walks.empty()) return false;
  rare_->retained.reset();  // all sent
  return true;
}

void session::fill(std::string& out, std::size_t budget) {
  // Head-of-line: a QoS 0 message behind a blocked QoS 1/2 one waits too, so the order of
  // messages on a topic never changes [MQTT-4.6.0-6]; retained messages owed to a subscription
  // go before live messages that followed it.
  if (retained() != nullptr && !send_retained(out, budget)) return;
  while (!queue_.empty() && out.size() < budget) {
    auto& q = queue_.front();
    if (q.qos != qos_level::at_most_once && inflight_.size() >= options_.max_inflight) break;
    if (!fits(out, *q.msg, q.qos, budget)) break;
    uncount(q);  // before write() moves the message out of q
    write(out, q);
    queue_.pop_front();
    release_entry();
  }
  drained();
}

void session::release_idle_memory() noexcept {
  queue_.release();
  if (auto* owed = retained()) {
    owed->messages.release();
    owed->walks.release();
  }
  inflight_.release();
  if (rare_ && !rare_->retained && !rare_->over_limit &&
      (!rare_->awaiting_release || rare_->awaiting_release->empty()) && rare_->dropped == 0) {
    rare_.reset();
  }
}

ring_queue<session::inflight_message>::iterator session::find_inflight(std::uint16_t id) {
  return std::find_if(inflight_.begin(), inflight_.end(),
                      [id](const inflight_message& f) { return f.id == id; });
}

bool session::on_puback(std::uint16_t id) {
  const auto it = find_inflight(id);
  if (it == inflight_.end() || it->state != inflight_state::awaiting_puback) return false;
  inflight_.erase(it);
  return true;
}

bool session::on_pubrec(std::uint16_t id, std::string& out) {
  const auto it = find_inflight(id);
  if (it == inflight_.end() || it->state == inflight_state::awaiting_puback) return false;
  it->state = inflight_state::awaiting_pubcomp;
  it->delivery.msg.reset();  // the client owns the message now; only the id remains
  codec::encode(codec::pubrel{id}, out);
  return true;
}

bool session::on_pubcomp(std::uint16_t id) {
  const auto it = find_inflight(id);
  if (it == inflight_.end() || it->state != inflight_state::awaiting_pubcomp) return false;
  inflight_.erase(it);
  return true;
}

bool session::receive_qos2(std::uint16_t id) {
  auto& ids = rare().awaiting_release;
  if (!ids) ids = std::make_unique<std::unordered_set<std::uint16_t>>();
  return ids->insert(id).second;
}

std::uint16_t session::next_packet_id() {
  // Ids of messages in flight are skipped; at most max_inflight (< 65535) are in use.
  for (;;) {
    last_id_ = static_cast<std::uint16_t>(last_id_ == 65535 ? 1 : last_id_ + 1);
    if (find_inflight(last_id_) == inflight_.end()) return last_id_;
  }
}

}  // namespace ebus::mqtt::broker
