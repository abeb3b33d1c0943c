#include "mqtt/broker/session.hpp"

#include <algorithm>

#include "mqtt/codec/encoder.hpp"

namespace ebus::mqtt::broker {

using codec::qos_level;

session::session(std::string client_id, bool clean, const broker_options& options)
    : client_id_(std::move(client_id)), clean_(clean), options_(options) {}

void session::attach(session_link& link, std::string& out) {
  link_ = &link;
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

session::enqueue_result session::enqueue(const message_ptr& msg, qos_level qos, bool retain) {
  const bool qos0 = qos == qos_level::at_most_once;
  if (qos0 && !online()) return enqueue_result::dropped;  // not kept for offline sessions
  const std::size_t in_class = qos0 ? queued_qos0_ : queue_.size() - queued_qos0_;
  bool evicted = false;
  if (in_class >= options_.session_queue_size) {
    switch (options_.overflow) {
      case overflow_policy::drop_newest:
        count_drop();
        return enqueue_result::dropped;
      case overflow_policy::disconnect:
        count_drop();
        return online() ? enqueue_result::disconnect : enqueue_result::dropped;
      case overflow_policy::drop_oldest: {
        const auto oldest = std::find_if(queue_.begin(), queue_.end(), [qos0](const auto& q) {
          return (q.qos == qos_level::at_most_once) == qos0;
        });
        if (oldest != queue_.end()) {
          queue_.erase(oldest);
          if (qos0) --queued_qos0_;
        }
        count_drop();
        evicted = true;
        break;
      }
    }
  }
  queue_.push_back({msg, qos, retain});
  if (qos0) ++queued_qos0_;
  if (link_ != nullptr) link_->wake();  // cheap when the writer is already awake
  return evicted ? enqueue_result::queued_evicting : enqueue_result::queued;
}

bool session::has_sendable() const noexcept {
  if (queue_.empty()) return false;
  return queue_.front().qos == qos_level::at_most_once || inflight_.size() < options_.max_inflight;
}

void session::fill(std::string& out, std::size_t budget) {
  while (!queue_.empty() && out.size() < budget) {
    auto& q = queue_.front();
    const auto& m = *q.msg;
    if (q.qos == qos_level::at_most_once) {
      codec::encode_publish(out, m.topic, m.payload, q.qos, q.retain, false, 0);
      --queued_qos0_;
    } else {
      // Head-of-line: a QoS 0 message behind a blocked QoS 1/2 one waits too, so the order of
      // messages on a topic never changes [MQTT-4.6.0-6].
      if (inflight_.size() >= options_.max_inflight) break;
      const std::uint16_t id = next_packet_id();
      codec::encode_publish(out, m.topic, m.payload, q.qos, q.retain, false, id);
      inflight_.push_back({id,
                           q.qos == qos_level::at_least_once ? inflight_state::awaiting_puback
                                                             : inflight_state::awaiting_pubrec,
                           std::move(q)});
    }
    queue_.pop_front();
  }
}

std::deque<session::inflight_message>::iterator session::find_inflight(std::uint16_t id) {
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
  return awaiting_release_.insert(id).second;
}

std::uint16_t session::next_packet_id() {
  // Ids of messages in flight are skipped; at most max_inflight (< 65535) are in use.
  for (;;) {
    last_id_ = static_cast<std::uint16_t>(last_id_ == 65535 ? 1 : last_id_ + 1);
    if (find_inflight(last_id_) == inflight_.end()) return last_id_;
  }
}

}  // namespace ebus::mqtt::broker
