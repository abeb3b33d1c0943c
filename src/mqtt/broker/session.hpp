#pragma once
// The state MQTT keeps per client id, with or without a network connection: subscriptions, the
// queue of messages waiting to be sent, retained messages owed to new subscriptions, QoS 1/2
// messages in flight in both directions, and packet identifiers. Sans-I/O: the connection asks it
// for bytes to write and feeds it the acknowledgements it reads.
//
// Flow control (docs/BROKER.md): the live queue has a soft limit (session_queue_size messages
// per QoS class, session_queue_bytes bytes). Past it, while the subscriber is online and not
// slow, a message is still queued (up to twice the limit) and the enqueue result asks the
// publisher to wait: hold() registers it, and it is released once the queue has drained below
// half the limit. A subscriber that stays over its limit for slow_subscriber_timeout is slow:
// the overflow policy applies to it, and nobody waits for it, until it drains.
//
// Thread safety: distinct objects safe; shared objects unsafe (loop thread).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/memory_budget.hpp"
#include "common/ring_queue.hpp"
#include "common/shared_string.hpp"
#include "mqtt/broker/access_policy.hpp"
#include "mqtt/broker/application_message.hpp"
#include "mqtt/broker/broker_options.hpp"
#include "mqtt/topic/retained_store.hpp"

namespace ebus::mqtt::broker {

/// What a session needs from the network connection it is attached to.
class session_link {
 public:
  virtual ~session_link() = default;
  /// The session has something to write (a message was queued, or the window opened).
  virtual void wake() = 0;
};

/// A publisher held back by subscriber queues over their limit. Owned by the publishing
/// connection; sessions keep weak references.
struct flow_waiter {
  std::size_t blocking = 0;        ///< sessions this publisher still waits for
  std::uint64_t generation = 0;    ///< bumped when a wait ends by timeout: older holds are void
  std::function<void()> on_clear;  ///< called when `blocking` falls to 0
  /// The publisher's own: when it stops waiting whatever the sessions say
  /// (slow_subscriber_timeout after it began), while it waits.
  clock::time_point wait_until = clock::time_point::max();
};

/// One hold on a publisher: its flow record and the generation the hold was made in.
using flow_hold = std::pair<std::weak_ptr<flow_waiter>, std::uint64_t>;

/// Holds `publisher` back once more, recording the hold in `holds`.
inline void add_hold(std::vector<flow_hold>& holds, const std::shared_ptr<flow_waiter>& publisher) {
  ++publisher->blocking;
  holds.emplace_back(publisher, publisher->generation);
}

/// Ends `holds`: each publisher whose wait did not end otherwise meanwhile waits for one fewer,
/// and goes on (on_clear) when that was the last.
void release_holds(std::vector<flow_hold> holds) noexcept;

class session {
 public:
  enum class enqueue_result {
    queued,
    queued_over_limit,  ///< queued past the soft limit: the publisher should wait (hold())
    queued_evicting,    ///< queued, and an older message was dropped for it (drop_oldest)
    dropped,            ///< refused by the queue limits (slow or offline subscriber)
    dropped_offline,    ///< QoS 0 for an offline session: not kept [MQTT-3.1.2-5]
    dropped_budget,     ///< refused because the memory budget is spent
    disconnect,         ///< refused; the overflow policy disconnects the subscriber
  };

  /// Bookkeeping of one queued entry (its ring slot, and the free slots a doubling ring keeps),
  /// charged to the budget besides the message, which is charged once however many queues
  /// hold it.
  static constexpr std::size_t entry_overhead = 48;

  /// `options` outlives the session; so does its access policy, when set: retained messages it
  /// denies are not sent.
  session(std::string_view client_id, bool clean, const broker_options& options);
  session(const session&) = delete;
  session& operator=(const session&) = delete;
  ~session();

  [[nodiscard]] std::string_view client_id() const noexcept { return client_id_; }
  /// The client id, shared with the connection attached (one copy between them).
  [[nodiscard]] const shared_string& shared_client_id() const noexcept { return client_id_; }
  /// The username of the connection now or last attached (the ACL's %u and user blocks).
  [[nodiscard]] std::optional<std::string_view> username() const noexcept {
    if (!username_) return std::nullopt;
    return *username_;
  }
  void set_username(const std::optional<std::string>& username) {
    if (!username) {
      username_.reset();
    } else if (!username_ || *username_ != *username) {
      username_ = std::make_unique<const std::string>(*username);
    }
  }
  [[nodiscard]] bool clean() const noexcept { return clean_; }
  [[nodiscard]] bool online() const noexcept { return online_; }
  /// The connection that holds the session: set by attach(), kept by detach() (a connection
  /// being closed for its queue holds an offline session until it has finished), ended by
  /// disown().
  [[nodiscard]] session_link* owner() const noexcept { return owned_ ? owner_ : nullptr; }
  /// No connection holds the session any more, since `now`.
  void disown(clock::time_point now) noexcept {
    owned_ = false;
    online_ = false;
    offline_since_ = now;
  }

  /// Attaches to a connection. Returns bytes to resend first: unacknowledged PUBLISHes with DUP
  /// set and PUBRELs of QoS 2 messages already received by the client [MQTT-4.4.0-1].
  void attach(session_link& link, std::string& out);
  /// The connection went away; publishers waiting for this session are released.
  void detach() noexcept;

  /// Queues `msg` for delivery at `qos` (already min(message, subscription)). `retain` is the
  /// RETAIN flag of this delivery. Offline sessions keep QoS 1/2 only [MQTT-3.1.2-5].
  enqueue_result enqueue(const message_ptr& msg, codec::qos_level qos, bool retain,
                         clock::time_point now);

  using retained_walk = topic::retained_store<message_ptr>::walk;
  /// The retained messages for a new subscription at `qos` [MQTT-3.3.1-6], found a slice at a
  /// time as the writer asks for them (fill()) and sent before the live queue, outside its
  /// limits, so a subscription receives every matching retained message. A walk for the same filter
  /// still pending is replaced: the subscription was replaced and its messages are sent again
  /// [MQTT-3.8.4-3].
  void add_retained_walk(retained_walk walk, codec::qos_level qos);
  /// Unsubscribed: the retained messages still owed to `filter` are not sent.
  void cancel_retained_walk(std::string_view filter) noexcept;

  /// Makes `publisher` wait until this session's queue is below half its limit (or it goes
  /// offline, or is destroyed). Call after enqueue() returned queued_over_limit.
  void hold(const std::shared_ptr<flow_waiter>& publisher);

  /// Frees the storage of queues that are empty (the connection's writer has gone idle).
  void release_idle_memory() noexcept;

  /// True when fill() would write something now into an empty buffer.
  [[nodiscard]] bool has_sendable() const noexcept;

  /// Appends PUBLISH packets to `out` while there are messages, the in-flight window has room
  /// and the next packet keeps `out` within `budget` bytes (into an empty `out`, one packet goes
  /// whatever its size): retained messages owed first, then the queue.
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
  void release_qos2(std::uint16_t id) {
    if (rare_ && rare_->awaiting_release) rare_->awaiting_release->erase(id);
  }

  using subscription_map = std::map<std::string, codec::qos_level, std::less<>>;
  /// Subscriptions of this session: filter -> granted QoS.
  [[nodiscard]] const subscription_map& subscriptions() const noexcept {
    static const subscription_map none;
    return subscriptions_ ? *subscriptions_ : none;
  }
  void set_subscription(std::string filter, codec::qos_level qos) {
    if (!subscriptions_) subscriptions_ = std::make_unique<subscription_map>();
    (*subscriptions_)[std::move(filter)] = qos;
  }
  void erase_subscription(std::string_view filter) {
    if (!subscriptions_) return;
    if (const auto it = subscriptions_->find(filter); it != subscriptions_->end()) {
      subscriptions_->erase(it);
    }
    if (subscriptions_->empty()) subscriptions_.reset();
  }
  void clear_subscriptions() noexcept { subscriptions_.reset(); }

  [[nodiscard]] std::size_t queued() const noexcept { return queue_.size(); }
  [[nodiscard]] std::size_t queued_bytes() const noexcept { return queue_.totals().bytes; }
  /// Retained messages found and waiting to be sent (more may be found by pending walks).
  [[nodiscard]] std::size_t retained_owed() const noexcept {
    return retained() != nullptr ? retained()->messages.size() : 0;
  }
  [[nodiscard]] std::size_t retained_walks() const noexcept {
    return retained() != nullptr ? retained()->walks.size() : 0;
  }
  [[nodiscard]] std::size_t inflight() const noexcept { return inflight_.size(); }
  [[nodiscard]] std::uint64_t dropped() const noexcept { return rare_ ? rare_->dropped : 0; }
  /// Drops counted since the last call (for rate-limited warnings).
  std::uint64_t take_unreported_drops() noexcept {
    return rare_ ? std::exchange(rare_->unreported_drops, 0) : 0;
  }
  /// True while the subscriber counts as slow (see the header comment).
  [[nodiscard]] bool slow(clock::time_point now) const noexcept;
  /// When disown() last ran. Precondition: owner() is null.
  [[nodiscard]] clock::time_point offline_since() const noexcept { return offline_since_; }

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
  ring_queue<inflight_message>::iterator find_inflight(std::uint16_t id);
  void count_drop() {
    auto& r = rare();
    ++r.dropped;
    ++r.unreported_drops;
  }
  [[nodiscard]] std::size_t in_class(bool qos0) const noexcept {
    const std::size_t qos0_count = queue_.totals().qos0;
    return qos0 ? qos0_count : queue_.size() - qos0_count;
  }
  /// Applies the overflow policy to a message that does not fit; nullopt when room was made.
  std::optional<enqueue_result> overflow(bool qos0, std::size_t bytes);
  void drained() noexcept;
  using waiter_list = std::vector<flow_hold>;
  /// The queue no longer counts as over its limit: its waiting publishers go.
  void end_over_limit() noexcept {
    if (!rare_) return;
    if (auto state = std::move(rare_->over_limit)) release_holds(std::move(state->waiters));
  }
  // Every entry of queue_ and of the retained messages owed is charged entry_overhead.
  bool charge_entry() noexcept {
    if (options_.budget != nullptr && !options_.budget->fits(entry_overhead)) return false;
    force_charge_entry();
    return true;
  }
  void force_charge_entry() noexcept {
    if (options_.budget != nullptr) options_.budget->force_charge(entry_overhead);
  }
  void release_entry() noexcept {
    if (options_.budget != nullptr) options_.budget->release(entry_overhead);
  }
  void write(std::string& out, queued_message& q);
  /// Moves the next slice of the first pending walk into retained_->messages.
  void find_retained();
  /// fill()'s first part: retained messages owed; true when none are left. Out of line, so
  /// that fill() stays small on the path of every live message.
  [[gnu::noinline]] bool send_retained(std::string& out, std::size_t budget);

  // Every connected client holds a session, so what most sessions never use is behind one
  // pointer (rare_), and the queues are one pointer each until used (ring_queue.hpp).
  shared_string client_id_;
  // Allocated with the first subscription: many devices only publish.
  std::unique_ptr<subscription_map> subscriptions_;
  std::unique_ptr<const std::string> username_;  // on the heap: most clients send none
  const broker_options& options_;
  // See owner(). A session without one keeps, in the same place, when it lost it (owned_
  // tells which): the session table's expiry reads only that of sessions nobody holds.
  union {
    session_link* owner_;  // written to while online
    clock::time_point offline_since_{};
  };
  // Kept in the queue's storage: an empty queue holds none, and its totals are zero.
  struct queue_totals {
    std::size_t bytes = 0;   // entry_bytes() of every queued message
    std::uint32_t qos0 = 0;  // QoS 0 messages queued
  };
  ring_queue<queued_message, queue_totals> queue_;
  /// Adds `q`, just queued, to queue_'s totals; uncount() takes out one about to leave.
  void count(const queued_message& q) noexcept;
  void uncount(const queued_message& q) noexcept;
  struct pending_walk {
    retained_walk walk;
    codec::qos_level qos;
  };
  // What new subscriptions are owed of the retained messages: made by a subscription, gone once
  // all is sent, so that most sessions, most of the time, hold a null pointer for it.
  struct owed_retained {
    ring_queue<queued_message> messages;  // found, sent before the queue
    ring_queue<pending_walk> walks;       // still to find
    budget_charge walks_charge;           // what the walks hold
  };
  ring_queue<inflight_message> inflight_;  // in send order, for in-order redelivery
  // While the queue is over its soft limit: since when, and the publishers held for it. Made
  // when the queue crosses the limit, gone once it has drained below half.
  struct over_limit_state {
    clock::time_point since;
    waiter_list waiters;
  };
  struct rare_state {
    std::unique_ptr<owed_retained> retained;
    // Incoming QoS 2 ids not yet released; made by the first QoS 2 PUBLISH.
    std::unique_ptr<std::unordered_set<std::uint16_t>> awaiting_release;
    std::unique_ptr<over_limit_state> over_limit;
    std::uint64_t dropped = 0;
    std::uint64_t unreported_drops = 0;
  };
  // Made by the first of its parts to be needed; freed by release_idle_memory() once none is.
  std::unique_ptr<rare_state> rare_;
  rare_state& rare() {
    if (!rare_) rare_ = std::make_unique<rare_state>();
    return *rare_;
  }
  [[nodiscard]] owed_retained* retained() const noexcept {
    return rare_ ? rare_->retained.get() : nullptr;
  }
  [[nodiscard]] over_limit_state* over_limit() const noexcept {
    return rare_ ? rare_->over_limit.get() : nullptr;
  }
  std::uint16_t last_id_ = 0;
  bool clean_;
  bool online_ = false;
  bool owned_ = false;  // owner_ rather than offline_since_
};

}  // namespace ebus::mqtt::broker
