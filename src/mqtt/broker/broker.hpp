#pragma once
// The broker core: sessions by client id, the subscription tree, retained messages, routing,
// and the two EventBus hooks (interception of client publishes, injection from inside the
// process). No I/O: connections (connection.hpp) call it with decoded packets.
//
// Routing never blocks: a message is queued for each matching session, whose queue is bounded
// (broker_options::session_queue_size); a full queue applies the overflow policy to that one
// subscriber and counts the drop. Nothing a client does can stall another.
//
// Thread safety: distinct objects safe; shared objects unsafe (loop thread).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.hpp"
#include "mqtt/broker/application_message.hpp"
#include "mqtt/broker/broker_options.hpp"
#include "mqtt/broker/session.hpp"
#include "mqtt/codec/packet.hpp"
#include "mqtt/topic/retained_store.hpp"
#include "mqtt/topic/subscription_tree.hpp"

namespace spdlog {
class logger;
}

namespace ebus::mqtt::broker {

struct broker_stats {
  std::uint64_t connections_accepted = 0;  ///< CONNECTs answered with "accepted"
  std::uint64_t connections_refused = 0;   ///< over max_connections, or CONNACK with an error
  std::uint64_t protocol_errors = 0;       ///< connections closed for a protocol violation
  std::uint64_t messages_received = 0;     ///< PUBLISHes and wills accepted from clients
  std::uint64_t messages_injected = 0;     ///< messages published from inside the process
  std::uint64_t deliveries_queued = 0;     ///< (message, subscriber) pairs queued
  std::uint64_t deliveries_dropped = 0;    ///< pairs dropped: full queue, or QoS 0 to offline
  std::uint64_t slow_disconnects = 0;      ///< clients disconnected by overflow_policy::disconnect
  std::uint64_t intercepted = 0;           ///< messages handed to the interception hook
};

/// A connection as the broker sees it: it can be told to close (takeover, overflow policy).
class client_link : public session_link {
 public:
  /// Close the network connection; `reason` is logged. The will is published unless the
  /// client had sent DISCONNECT.
  virtual void close(std::string_view reason) = 0;
};

class broker {
 public:
  using interceptor = std::function<void(const message_ptr&)>;

  broker(broker_options options, clock& clk);
  broker(const broker&) = delete;
  broker& operator=(const broker&) = delete;
  ~broker();

  [[nodiscard]] const broker_options& options() const noexcept { return options_; }
  [[nodiscard]] const broker_stats& stats() const noexcept { return stats_; }
  broker_stats& mutable_stats() noexcept { return stats_; }

  struct connect_result {
    codec::connack ack;
    session* s = nullptr;   ///< set when accepted
    std::string client_id;  ///< the client id in use (assigned when the client sent none)
  };
  /// Handles CONNECT: client id rules [MQTT-3.1.3-7..9], takeover of a connected client id
  /// [MQTT-3.1.4-2], clean or resumed session [MQTT-3.1.2-4..6]. On success the session is
  /// attached to `link` and `resend` holds what must be written after the CONNACK.
  connect_result connect(const codec::connect& c, client_link& link, std::string& resend);

  /// The connection of `s` ended. A clean session is discarded [MQTT-3.1.2-6]; a persistent one
  /// keeps its subscriptions and queues QoS 1/2 messages while offline.
  void disconnect(session& s, client_link& link);

  /// Routes a PUBLISH (or will) accepted from a client: retained store, subscribers, and the
  /// interception hook when the topic matches the interest tree.
  void publish(message_ptr msg);

  /// Adds subscriptions; returns the SUBACK return codes and queues matching retained
  /// messages with RETAIN set [MQTT-3.3.1-8]. Invalid filters get 0x80 [MQTT-3.8.4-1].
  std::vector<codec::suback_return_code> subscribe(session& s,
                                                   const std::vector<codec::subscription>& subs);
  void unsubscribe(session& s, const std::vector<std::string>& filters);

  // --- EventBus hooks ------------------------------------------------------------------------

  /// Receives, in order, every message accepted from a client (QoS 0, 1 and 2 once each, and
  /// wills) whose topic matches a filter of the interest tree.
  void set_interceptor(interceptor fn) { interceptor_ = std::move(fn); }
  /// Adds / removes a filter of the interest tree; false for an invalid filter (add) or one that
  /// was not there (remove).
  bool add_interest(std::string_view filter);
  bool remove_interest(std::string_view filter);
  [[nodiscard]] bool interested_in(std::string_view topic) const;

  /// Publishes from inside the process, as a client would, but without interception.
  /// Fails for an invalid topic name.
  expected<void, std::error_code> inject(std::string topic, std::string payload,
                                         codec::qos_level qos, bool retain);

  /// True while `s` is attached to `link` (false after a takeover moved it elsewhere).
  /// Compares pointers only: safe to call with a session that no longer exists.
  [[nodiscard]] bool is_linked(const session* s, const client_link* link) const {
    const auto it = links_.find(const_cast<session*>(s));
    return it != links_.end() && it->second == link;
  }

  [[nodiscard]] std::size_t session_count() const noexcept { return sessions_.size(); }
  [[nodiscard]] std::size_t retained_count() const noexcept { return retained_.size(); }
  [[nodiscard]] const session* find_session(std::string_view client_id) const;

 private:
  void route(const message_ptr& msg);
  /// Counts one enqueue outcome and applies the overflow policy's consequences.
  void account(session& s, session::enqueue_result result);
  void discard(std::unique_ptr<session>& s);
  void report_drops(session& s);

  broker_options options_;
  clock& clock_;
  std::shared_ptr<spdlog::logger> log_;
  std::unordered_map<std::string, std::unique_ptr<session>> sessions_;
  std::unordered_map<session*, client_link*> links_;
  topic::subscription_tree<session*, codec::qos_level> subscriptions_;
  topic::retained_store<message_ptr> retained_;
  topic::subscription_tree<int, int> interest_;
  interceptor interceptor_;
  broker_stats stats_;
  std::uint64_t next_assigned_id_ = 0;
  std::vector<std::pair<session*, codec::qos_level>> matches_;  // reused by route()
  clock::time_point next_drop_warning_{};
};

}  // namespace ebus::mqtt::broker
