#pragma once
// Limits of the embedded broker. Every one bounds memory; defaults suit an edge box.

#include <chrono>
#include <cstddef>
#include <string>

namespace ebus::mqtt::broker {

/// What happens when a subscriber's queue is full (it reads slower than messages arrive).
enum class overflow_policy {
  drop_newest,  ///< the new message is not queued for that subscriber (mosquitto's behaviour)
  drop_oldest,  ///< the oldest queued message not yet sent makes room
  disconnect,   ///< the subscriber is disconnected; a persistent session keeps its queue
};

struct broker_options {
  /// Listen URL: tcp://host:port or mqtt://host:port.
  std::string listen_url = "tcp://127.0.0.1:1884";
  /// Largest packet accepted from a client, fixed header included.
  std::size_t max_packet_size = 1024 * 1024;
  /// Connections beyond this are closed right after accept.
  std::size_t max_connections = 10000;
  /// Per session: queued QoS 1/2 messages not yet sent, and separately QoS 0 messages not yet
  /// written (KubeEdge's mqttSessionQueueSize).
  std::size_t session_queue_size = 100;
  overflow_policy overflow = overflow_policy::drop_newest;
  /// QoS 1/2 messages sent to one client and not yet acknowledged.
  std::size_t max_inflight = 20;
  /// A connection that sends no CONNECT within this time is closed.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);
  /// Control packets (acks, PINGRESP) a client may leave unread before it is disconnected.
  std::size_t max_control_backlog = 256 * 1024;
};

}  // namespace ebus::mqtt::broker
