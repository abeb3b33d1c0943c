#pragma once
// The broker core: sessions by client id, the subscription tree, retained messages, routing,
// and the two EventBus hooks (interception of client publishes, injection from inside the
// process). No I/O: connections (connection.hpp) call it with decoded packets.
//
// Routing never blocks: a message is queued for each matching session, whose queue is bounded
// in messages and bytes (broker_options). A queue past its limit asks the publisher to wait
// (publish() returns held) for at most slow_subscriber_timeout; a subscriber that does not drain
// in that time is slow and the overflow policy applies to it alone, counted. Retained messages,
// subscriptions, topics and persistent sessions are bounded too, and every message held is
// charged to the memory budget (docs/BROKER.md).
//
// Thread safety: distinct objects safe; shared objects unsafe (loop thread).

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/keyed_set.hpp"
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
  std::uint64_t deliveries_queued = 0;     ///< live (message, subscriber) pairs queued
  std::uint64_t retained_walks = 0;        ///< subscriptions whose retained messages are being sent
  std::uint64_t deliveries_dropped = 0;    ///< pairs dropped, all reasons below together
  std::uint64_t dropped_queue_full = 0;    ///< ... a slow or offline subscriber's queue was full
  std::uint64_t dropped_offline_qos0 = 0;  ///< ... QoS 0 for an offline session
  std::uint64_t dropped_budget = 0;        ///< ... the memory budget was spent
  std::uint64_t slow_disconnects = 0;      ///< clients disconnected by overflow_policy::disconnect
  std::uint64_t publishers_held = 0;       ///< publishes after which the publisher had to wait
  std::uint64_t intercepted = 0;           ///< messages handed to the interception hook
  std::uint64_t messages_refused_budget = 0;  ///< client messages refused: memory budget spent
  std::uint64_t messages_refused_topic = 0;   ///< client messages refused: topic over the limits
  std::uint64_t retained_refused = 0;         ///< retained messages not stored: store full
  std::uint64_t subscriptions_refused = 0;    ///< filters refused: per-client cap or limits
  std::uint64_t sessions_refused = 0;         ///< CONNECTs refused: persistent session cap
  std::uint64_t sessions_expired = 0;         ///< offline persistent sessions discarded
  std::uint64_t packet_timeouts = 0;          ///< connections closed: packet not completed
  std::uint64_t budget_disconnects = 0;       ///< connections closed: memory budget spent
  std::uint64_t handshake_failures = 0;       ///< TLS or WebSocket openings that failed
  std::uint64_t connection_lines_held = 0;    ///< connection log lines moved to debug (churn)
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
  /// Gets each intercepted message, after the subscribers, and its publisher's flow record (null
  /// for a will); it may take the payload (inbound_message::take_payload). The interceptor may
  /// hold the publisher back as a subscriber over its limit does: one more in `from->blocking`,
  /// kept as a flow_hold and ended with release_holds() (session.hpp).
  using interceptor =
      std::function<void(inbound_message&, const std::shared_ptr<flow_waiter>& from)>;

  broker(broker_options options, clock& clk);
  broker(const broker&) = delete;
  broker& operator=(const broker&) = delete;
  ~broker();

  [[nodiscard]] const broker_options& options() const noexcept { return options_; }
  /// The clock the broker and its connections read time and arm deadlines with.
  [[nodiscard]] clock& time_source() const noexcept { return clock_; }
  [[nodiscard]] const broker_stats& stats() const noexcept { return stats_; }
  broker_stats& mutable_stats() noexcept { return stats_; }

  struct connect_result {
    codec::connack ack;
    session* s = nullptr;  ///< set when accepted; its client_id() is the id in use (assigned
                           ///< when the client sent none)
  };
  /// Handles CONNECT: client id rules [MQTT-3.1.3-7..9], takeover of a connected client id
  /// [MQTT-3.1.4-2], clean or resumed session [MQTT-3.1.2-4..6]. On success the session is
  /// attached to `link` and `resend` holds what must be written after the CONNACK.
  connect_result connect(const codec::connect& c, client_link& link, std::string& resend);

  /// The connection of `s` ended. A clean session is discarded [MQTT-3.1.2-6]; a persistent one
  /// keeps its subscriptions and queues QoS 1/2 messages while offline.
  void disconnect(session& s, client_link& link);

  /// A message to route, its bytes charged to the memory budget; nullopt (counted) when the
  /// budget is spent.
  [[nodiscard]] std::optional<inbound_message> make_message(std::string&& topic,
                                                            std::string&& payload,
                                                            codec::qos_level qos, bool retain);

  /// Connection buffers grown for large packets or unread acknowledgements may hold at most a
  /// quarter of the budget, so that half-sent packets cannot starve message traffic; charge
  /// them here, then to the budget.
  [[nodiscard]] memory_budget* receive_share() noexcept {
    return options_.budget != nullptr ? &receive_share_ : nullptr;
  }

  /// True at most once every 10 s for per-connection warnings: a flood of connections must not
  /// flood the log (the counters keep the totals).
  [[nodiscard]] bool connection_warning_allowed() { return should_warn(next_connection_warning_); }

  /// Whether one per-connection line (connected, disconnected, refused, will) is logged at info:
  /// true for the first connection_log_burst lines of each second; the rest go to debug and are
  /// counted, and the next second's first line is preceded by how many were held. Clients that
  /// connect for every data point (KubeEdge's mapper template does) must not flood the log.
  [[nodiscard]] bool connection_line_at_info();
  static constexpr std::uint32_t connection_log_burst = 20;

  /// The ACL in force and what it refused (access_policy.hpp).
  [[nodiscard]] access_policy& access() noexcept { return access_; }
  [[nodiscard]] const access_policy& access() const noexcept { return access_; }
  /// Whether the client of `s` (its client id and username) may do `what` on `topic`.
  [[nodiscard]] bool allows(auth::acl_access what, std::string_view topic, const session& s) const {
    return access_.allows(what, topic, s.client_id(), s.username());
  }

  /// Why a topic name or filter is refused by the limits, or empty when it is within them.
  [[nodiscard]] std::string_view check_topic(std::string_view topic) const noexcept;

  enum class publish_result {
    routed,   ///< queued for every subscriber that could take it
    held,     ///< routed; some subscriber is over its limit: `from` must wait (flow_waiter)
    refused,  ///< not routed: the topic is over the limits (counted)
  };
  /// Routes a PUBLISH (or will) accepted from a client: retained store, subscribers, and the
  /// interception hook when the topic matches the interest tree. `from`, the publisher's flow
  /// state, is registered with every subscriber over its limit (see session::hold).
  /// `self`, the publisher's own session, never holds it: a held connection is not read, so it
  /// could not read the acknowledgements its own queue waits for.
  publish_result publish(inbound_message& msg, const std::shared_ptr<flow_waiter>& from = {},
                         const session* self = nullptr);

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
  /// Fails for an invalid topic name or one over the limits (invalid_topic_name), a PUBLISH
  /// larger than max_packet_size (packet_too_large), or a spent memory budget
  /// (not_enough_memory).
  expected<void, std::error_code> inject(std::string topic, std::string payload,
                                         codec::qos_level qos, bool retain);

  /// True while `link` holds `s` (false after a takeover moved it elsewhere). `s` must be a
  /// live session: a connection drops its pointer when the session is taken over or released.
  [[nodiscard]] bool is_linked(const session* s, const client_link* link) const {
    return s->owner() == link;
  }

  [[nodiscard]] std::size_t session_count() const noexcept { return sessions_.size(); }
  [[nodiscard]] std::size_t retained_count() const noexcept { return retained_.size(); }
  [[nodiscard]] std::size_t retained_bytes() const noexcept { return retained_bytes_; }
  [[nodiscard]] std::size_t persistent_session_count() const noexcept { return persistent_; }
  [[nodiscard]] const session* find_session(std::string_view client_id) const;

  /// Discards offline persistent sessions older than session_expiry. Runs on every CONNECT and
  /// disconnect (sessions only accumulate through those), so no timer is needed; cheap when
  /// nothing is due.
  void expire_sessions();

 private:
  bool route(inbound_message& msg, const std::shared_ptr<flow_waiter>& from, const session* self);
  void retain(const message_ptr& msg);
  /// Counts one enqueue outcome and applies the overflow policy's consequences.
  void account(session& s, session::enqueue_result result);
  void discard(session& s);
  // Sessions found by their own client id: one pointer a slot, the id kept once.
  struct session_id {
    std::string_view operator()(const session& s) const noexcept { return s.client_id(); }
  };
  void erase_session(session& s);
  /// The connection that holds a session: every link the broker attaches is a client_link.
  static client_link* owner_of(const session& s) noexcept {
    return static_cast<client_link*>(s.owner());
  }
  void report_drops(session& s, std::string_view reason);
  /// Logs at most one warning per `what` every 10 s.
  bool should_warn(clock::time_point& next);

  broker_options options_;
  clock& clock_;
  std::shared_ptr<spdlog::logger> log_;
  keyed_set<session, session_id> sessions_;
  topic::subscription_tree<session*, codec::qos_level> subscriptions_;
  topic::retained_store<message_ptr> retained_;
  topic::subscription_tree<int, int> interest_;
  // interested_in() for the topics last asked about: devices publish on a few topics over and
  // over, and the walk hashes every level. Direct-mapped, 64 topics of up to 128 bytes, emptied
  // whenever an interest is added or removed.
  struct interest_memo {
    std::string topic;
    bool interested = false;
    bool valid = false;
  };
  static constexpr std::size_t interest_memo_slots = 64;
  static constexpr std::size_t interest_memo_topic_bytes = 128;
  mutable std::array<interest_memo, interest_memo_slots> interest_memo_;
  void forget_interests() noexcept;
  interceptor interceptor_;
  access_policy access_;
  broker_stats stats_;
  std::uint64_t next_assigned_id_ = 0;
  std::vector<std::pair<session*, codec::qos_level>> matches_;  // reused by route()
  std::size_t retained_bytes_ = 0;
  std::size_t persistent_ = 0;                                // sessions with clean session 0
  clock::time_point next_expiry_ = clock::time_point::max();  // earliest offline session due
  clock::time_point next_drop_warning_{};
  clock::time_point next_retained_warning_{};
  clock::time_point next_refusal_warning_{};
  clock::time_point next_connection_warning_{};
  clock::time_point connection_log_window_end_{};
  std::uint32_t connection_lines_in_window_ = 0;
  std::uint64_t connection_lines_unreported_ = 0;  // held since the last info line said so
  memory_budget receive_share_;
};

}  // namespace ebus::mqtt::broker
