#pragma once
// The state MQTT keeps per client id, with or without a network connection: subscriptions, the
// queue of messages waiting to be sent, QoS 1/2 messages in flight in both directions, and
// packet identifiers. Sans-I/O: the connection asks it for bytes to write and feeds it the
// acknowledgements it reads.
//
// Thread safety: distinct objects safe; shared objects unsafe (loop thread).

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <unordered_set>
#include <utility>

#include "mqtt/broker/application_message.hpp"
#include "mqtt/broker/broker_options.hpp"

namespace ebus::mqtt::broker {

/// What a session needs from the network connection it is attached to.
class session_link {
 public:
  virtual ~session_link() = default;
  /// The session has something to write (a message was queued, or the window opened).
  virtual void wake() = 0;
};

class session {
 public:
  /// queued_evicting: queued, and the oldest queued message of its class was dropped for it.
  enum class enqueue_result { queued, queued_evicting, dropped, disconnect };

  session(std::string client_id, bool clean, const broker_options& options);

  [[nodiscard]] const std::string& client_id() const noexcept { return client_id_; }
  [[nodiscard]] bool clean() const noexcept { return clean_; }
  [[nodiscard]] bool online() const noexcept { return link_ != nullptr; }

  /// Attaches to a connection. Returns bytes to resend first: unacknowledged PUBLISHes with DUP
  /// set and PUBRELs of QoS 2 messages already received by the client [MQTT-4.4.0-1].
  void attach(session_link& link, std::string& out);
  void detach() noexcept { link_ = nullptr; }

  /// Queues `msg` for delivery at `qos` (already min(message, subscription)). `retain` is the
  /// RETAIN flag of this delivery. Offline sessions keep QoS 1/2 only [MQTT-3.1.2-5].
  enqueue_result enqueue(const message_ptr& msg, codec::qos_level qos, bool retain);

  /// True when fill() would write something now.
  [[nodiscard]] bool has_sendable() const noexcept;

  /// Appends PUBLISH packets to `out` while the queue has messages, the in-flight window has
  /// room and `out` is shorter than `budget` bytes. Order is the queue's order.
  void fill(std::string& out, std::size_t budget);

  /// Outgoing QoS 1 acknowledged. False for an unknown id (ignored by the caller).
  bool on_puback(std::uint16_t id);
  /// Outgoing QoS 2 received by the client: appends PUBREL [MQTT-4.3.3-1].
  bool on_pubrec(std::uint16_t id, std::string& out);
  /// Outgoing QoS 2 completed.
  bool on_pubcomp(std::uint16_t id);

  /// Incoming QoS 2 PUBLISH: true if the packet id is new (deliver the message), false for a
  /// retransmission before PUBREL (do not deliver again) [MQTT-4.3.3-2].
  bool receive_qos2(std::uint16_t id);
  /// Incoming PUBREL: forgets the packet id. Always answered with PUBCOMP.
  void release_qos2(std::uint16_t id) { awaiting_release_.erase(id); }

  /// Subscriptions of this session: filter -> granted QoS.
  std::map<std::string, codec::qos_level, std::less<>> subscriptions;

  [[nodiscard]] std::size_t queued() const noexcept { return queue_.size(); }
  [[nodiscard]] std::size_t inflight() const noexcept { return inflight_.size(); }
  [[nodiscard]] std::uint64_t dropped() const noexcept { return dropped_; }
  /// Drops counted since the last call (for rate-limited warnings).
  std::uint64_t take_unreported_drops() noexcept { return std::exchange(unreported_drops_, 0); }

 private:
  struct queued_message {
    message_ptr msg;
    codec::qos_level qos;
    bool retain;
  };
  enum class inflight_state : std::uint8_t { awaiting_puback, awaiting_pubrec, awaiting_pubcomp };
  struct inflight_message {
    std::uint16_t id;
    inflight_state state;
    queued_message delivery;
  };

  std::uint16_t next_packet_id();
  std::deque<inflight_message>::iterator find_inflight(std::uint16_t id);
  void count_drop() noexcept {
    ++dropped_;
    ++unreported_drops_;
  }

  std::string client_id_;
  bool clean_;
  const broker_options& options_;
  session_link* link_ = nullptr;
  std::deque<queued_message> queue_;
  std::size_t queued_qos0_ = 0;
  std::deque<inflight_message> inflight_;  // in send order, for in-order redelivery
  std::unordered_set<std::uint16_t> awaiting_release_;
  std::uint16_t last_id_ = 0;
  std::uint64_t dropped_ = 0;
  std::uint64_t unreported_drops_ = 0;
};

}  // namespace ebus::mqtt::broker
