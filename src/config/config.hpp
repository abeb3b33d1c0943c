#pragma once
// The daemon's configuration: KubeEdge edgecore's `modules.eventBus` keys (v1alpha2), the old
// v1.1-era `mqtt.*` keys, and our own extensions under `modules.eventBus`. Plain values only;
// config_loader.hpp reads and validates them. docs/CONFIG.md documents every key.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ebus::config {

/// KubeEdge's mqttMode.
enum class mqtt_mode : std::uint8_t {
  internal = 0,  ///< embedded broker only (our default; KubeEdge's default is external)
  both = 1,      ///< embedded broker and external broker
  external = 2,  ///< external broker only
};

/// What the embedded broker does when a subscriber's queue is full.
enum class overflow_policy : std::uint8_t { drop_newest, drop_oldest, disconnect };

/// `modules.eventBus.eventBusTLS`: TLS towards the external broker.
struct tls_config {
  bool enable = false;
  std::string ca_file = "/etc/kubeedge/ca/rootCA.crt";              ///< tlsMqttCAFile
  std::string cert_file = "/etc/kubeedge/certs/server.crt";         ///< tlsMqttCertFile
  std::string private_key_file = "/etc/kubeedge/certs/server.key";  ///< tlsMqttPrivateKeyFile

  friend bool operator==(const tls_config&, const tls_config&) = default;
};

/// Settings of one embedded-broker listener: the first one (`mqttServerInternal` with
/// `internalListener`) or an entry of `listeners`.
struct listener_config {
  /// tcp:// or mqtt://, tls:// ssl:// or mqtts://, ws://, wss://; host:port.
  std::string url;
  /// allowAnonymous: unset = true without a passwordFile, false with one (as mosquitto 2).
  std::optional<bool> allow_anonymous;
  std::string cert_file;  ///< certFile (tls, wss): PEM certificate chain
  std::string key_file;   ///< keyFile (tls, wss): PEM private key
  std::string ca_file;    ///< caFile (tls, wss): CAs that client certificates are checked against
  /// requireCertificate (tls, wss): refuse clients without a certificate signed by caFile.
  bool require_certificate = false;
  /// useIdentityAsUsername (tls, wss): the client certificate's CN is the username, and no
  /// password is asked (mosquitto's use_identity_as_username); implies requireCertificate.
  bool use_identity_as_username = false;
  std::string path = "/mqtt";  ///< path (ws, wss): the HTTP path of the WebSocket upgrade

  friend bool operator==(const listener_config&, const listener_config&) = default;
};

struct eventbus_config {
  // --- KubeEdge keys (modules.eventBus) -------------------------------------------------------
  /// false: broker-only mode, the embedded broker alone on server_internal (no eventbus module,
  /// no routing, no store), in place of a KubeEdge node's mosquitto.
  bool enable = true;
  mqtt_mode mode = mqtt_mode::internal;  ///< mqttMode
  std::uint8_t qos = 0;                  ///< mqttQOS: QoS of injected internal publishes
  bool retain = false;                   ///< mqttRetain: retain flag of the same
  std::size_t session_queue_size = 100;  ///< mqttSessionQueueSize
  std::string server_internal = "tcp://127.0.0.1:1884";  ///< mqttServerInternal
  std::string server_external = "tcp://127.0.0.1:1883";  ///< mqttServerExternal
  std::string sub_client_id;  ///< mqttSubClientID ("" = hub-client-sub-<unixsec>)
  std::string pub_client_id;  ///< mqttPubClientID ("" = hub-client-pub-<unixsec>)
  std::string username;       ///< mqttUsername
  std::string password;       ///< mqttPassword
  tls_config tls;             ///< eventBusTLS

  // --- our extensions (modules.eventBus) ------------------------------------------------------
  /// internalListener: settings of the mqttServerInternal listener (its url is
  /// server_internal; the url field here is unused).
  listener_config internal_listener;
  /// listeners: more listeners of the embedded broker, each with its own scheme and settings.
  std::vector<listener_config> listeners;
  /// passwordFile: users in mosquitto_passwd's format; "" = none.
  std::string password_file;
  /// aclFile: topic rules in mosquitto's acl_file format; "" = every client may do anything.
  std::string acl_file;
  /// moduleSocketAllowedUids / moduleSocketAllowedGids: peers (SO_PEERCRED) allowed on the
  /// module sockets besides root and the daemon's own user.
  std::vector<std::uint32_t> module_socket_allowed_uids;
  std::vector<std::uint32_t> module_socket_allowed_gids;

  std::size_t max_packet_size = std::size_t{1024} * 1024;   ///< mqttMaxPacketSize (bytes)
  std::size_t max_connections = 10000;                      ///< mqttMaxConnections
  std::size_t max_inflight = 20;                            ///< mqttMaxInflightMessages
  overflow_policy overflow = overflow_policy::drop_newest;  ///< mqttQueueOverflowPolicy
  std::chrono::milliseconds connect_timeout{10000};         ///< mqttConnectTimeoutSeconds
  /// Publishes towards the external broker kept while it is unreachable (external mode).
  std::size_t external_buffer_size = 10000;        ///< mqttExternalBufferSize
  std::chrono::milliseconds reconnect_min{500};    ///< mqttReconnectMinMilliseconds
  std::chrono::milliseconds reconnect_max{30000};  ///< mqttReconnectMaxMilliseconds
  std::uint16_t keepalive_seconds = 30;            ///< mqttKeepAliveSeconds (external clients)

  // The module bus (docs/REMOTE.md). It runs whether or not the eventbus module does, so these
  // apply, and are checked, even when `enable` is false.
  /// moduleSocket: SOCK_SEQPACKET socket for remote modules; "" disables it.
  std::string module_socket = "/var/run/kubeedge/eventbus.sock";
  /// moduleStreamSocket: SOCK_STREAM socket (one message per line); "" disables it.
  std::string module_stream_socket = "/var/run/kubeedge/eventbus-stream.sock";
  /// moduleSocketMaxConnections: both sockets together.
  std::size_t module_socket_max_connections = 64;
  /// moduleSocketMaxMessageBytes: the largest message accepted or sent on them.
  /// Default: what the largest MQTT message needs once encoded (6 bytes per payload byte in the
  /// worst case, `\u00XX`), plus the envelope.
  std::size_t module_socket_max_message_bytes = std::size_t{8} * 1024 * 1024;
  /// groupBacklogSize: messages kept per declared group while it has no member; 0: none.
  std::size_t group_backlog_size = 1000;

  // Memory bounds and flow control (docs/BROKER.md, docs/CONFIG.md "Limits").
  /// maxMemoryBytes: everything clients and modules can make the daemon hold; 0: unlimited.
  std::size_t max_memory_bytes = std::size_t{256} * 1024 * 1024;
  std::size_t session_queue_bytes = std::size_t{16} * 1024 * 1024;  ///< mqttSessionQueueBytes
  /// mqttSlowSubscriberTimeoutMilliseconds
  std::chrono::milliseconds slow_subscriber_timeout{2000};
  std::chrono::milliseconds packet_timeout{30000};                 ///< mqttPacketTimeoutSeconds
  std::size_t max_retained_messages = 100000;                      ///< mqttMaxRetainedMessages
  std::size_t max_retained_bytes = std::size_t{64} * 1024 * 1024;  ///< mqttMaxRetainedBytes
  std::size_t max_subscriptions_per_client = 1000;  ///< mqttMaxSubscriptionsPerClient
  std::size_t max_topic_length = 4096;              ///< mqttMaxTopicLength
  std::size_t max_topic_levels = 128;               ///< mqttMaxTopicLevels
  std::size_t max_persistent_sessions = 10000;      ///< mqttMaxPersistentSessions
  std::chrono::seconds session_expiry{86400};       ///< mqttSessionExpirySeconds (0: never)
  /// mqttExternalBufferBytes: byte bound of the external buffer.
  std::size_t external_buffer_bytes = std::size_t{16} * 1024 * 1024;
  std::size_t module_inbox_bytes = std::size_t{16} * 1024 * 1024;   ///< moduleInboxBytes
  std::size_t group_backlog_bytes = std::size_t{32} * 1024 * 1024;  ///< groupBacklogBytes
  /// moduleSocketOutboundBytes: per connection, messages waiting to be written.
  std::size_t module_socket_outbound_bytes = std::size_t{16} * 1024 * 1024;
  std::size_t max_runtime_subscriptions = 10000;  ///< maxRuntimeSubscriptions
  /// maxRuntimeSubscriptionBytes: topic bytes of all run-time subscriptions together.
  std::size_t max_runtime_subscription_bytes = std::size_t{1024} * 1024;
  std::size_t store_queue_size = 10000;                          ///< storeQueueSize
  std::size_t store_queue_bytes = std::size_t{4} * 1024 * 1024;  ///< storeQueueBytes
  std::chrono::milliseconds store_shutdown_timeout{5000};        ///< storeShutdownTimeoutSeconds

  friend bool operator==(const eventbus_config&, const eventbus_config&) = default;
};

struct daemon_config {
  eventbus_config eventbus;
  /// Node name used in topics (modules.edged.hostnameOverride; v1.1: edgehub.controller.node-id).
  /// Defaults to the host name as edgecore derives it (node_name_from_host()); a lowercase
  /// RFC 1123 subdomain.
  std::string node_name;
  /// SQLite file holding sub_topics (database.dataSource).
  std::string data_source = "/var/lib/kubeedge/edgecore.db";

  friend bool operator==(const daemon_config&, const daemon_config&) = default;
};

}  // namespace ebus::config
