#pragma once
// Limits of the embedded broker. Every one bounds memory; defaults suit an edge box.
// docs/BROKER.md explains the flow-control policy they take part in.

#include <chrono>
#include <cstddef>
#include <string>

namespace ebus {
class memory_budget;
}

namespace ebus::mqtt::broker {

struct access_policy;

/// What happens to a message for a subscriber whose queue is over its limit while that
/// subscriber is slow (it has not drained its queue within slow_subscriber_timeout), or offline.
enum class overflow_policy {
  drop_newest,  ///< the new message is not queued for that subscriber (mosquitto's behaviour)
  drop_oldest,  ///< the oldest queued message not yet sent makes room
  disconnect,   ///< the subscriber is disconnected; a persistent session keeps its queue
};

struct broker_options {
  /// Listen URL: tcp://host:port or mqtt://host:port.
  std::string listen_url = "tcp://127.0.0.1:1884";
  /// Largest packet accepted from a client, fixed header included; also the largest PUBLISH
  /// the broker injects for the EventBus.
  std::size_t max_packet_size = 1024 * 1024;
  /// Connections beyond this are closed right after accept.
  std::size_t max_connections = 10000;
  /// Per session: queued QoS 1/2 messages not yet sent, and separately QoS 0 messages not yet
  /// written (KubeEdge's mqttSessionQueueSize). Past it, a publisher feeding an online subscriber
  /// waits (see slow_subscriber_timeout); the queue may then hold up to twice this.
  std::size_t session_queue_size = 100;
  overflow_policy overflow = overflow_policy::drop_newest;
  /// QoS 1/2 messages sent to one client and not yet acknowledged.
  std::size_t max_inflight = 20;
  /// A connection that sends no CONNECT within this time is closed.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);
  /// Control packets (acks, PINGRESP) a client may leave unread before it is disconnected.
  std::size_t max_control_backlog = 256 * 1024;

  // --- memory bounds and flow control (issue: bounded memory, lossless bursts) ---------------

  /// Per session: bytes of queued messages (topic + payload + bookkeeping), the byte
  /// counterpart of session_queue_size, with the same soft/hard meaning.
  std::size_t session_queue_bytes = std::size_t{16} * 1024 * 1024;
  /// How long a publisher may wait for a subscriber whose queue is over its limit. A subscriber
  /// that has not come back under half its limit by then is slow: overflow applies to it until
  /// it drains, and publishers are no longer held for it.
  std::chrono::milliseconds slow_subscriber_timeout = std::chrono::seconds(2);
  /// A packet must be complete this long after its first byte arrived (slow-loris bound).
  std::chrono::milliseconds packet_timeout = std::chrono::seconds(30);
  /// Retained messages: count and bytes (topic + payload + 160 bytes of store bookkeeping each).
  /// A new one past either is refused.
  std::size_t max_retained_messages = 100000;
  std::size_t max_retained_bytes = std::size_t{64} * 1024 * 1024;
  /// Subscriptions one client may hold; more get SUBACK 0x80.
  std::size_t max_subscriptions_per_client = 1000;
  /// Topic names and filters longer or deeper than this are refused.
  std::size_t max_topic_length = 4096;
  std::size_t max_topic_levels = 128;
  /// Persistent (clean session 0) sessions kept, online or not; a new one past it gets
  /// CONNACK 0x03 (server unavailable).
  std::size_t max_persistent_sessions = 10000;
  /// An offline persistent session is discarded after this long (mosquitto's
  /// persistent_client_expiration); zero keeps it forever.
  std::chrono::seconds session_expiry = std::chrono::hours(24);
  /// The daemon's memory budget, shared with the bus; null means unlimited.
  memory_budget* budget = nullptr;
  /// The ACL in force and its counts, for the sessions to check retained messages against. The
  /// broker points it at its own (broker::access()); null means no checks.
  access_policy* access = nullptr;
};

}  // namespace ebus::mqtt::broker
