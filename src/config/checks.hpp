#pragma once
// Internal to ebus_config: the canonical key paths validate() reports, and the messages the
// loader reports itself for values daemon_config cannot hold (a negative queue size, a mode
// beyond 255), so that both say the same thing.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_loader.hpp"

namespace ebus::config::detail {

namespace key {
inline constexpr const char* enable = "modules.eventBus.enable";
inline constexpr const char* mode = "modules.eventBus.mqttMode";
inline constexpr const char* qos = "modules.eventBus.mqttQOS";
inline constexpr const char* retain = "modules.eventBus.mqttRetain";
inline constexpr const char* session_queue_size = "modules.eventBus.mqttSessionQueueSize";
inline constexpr const char* server_internal = "modules.eventBus.mqttServerInternal";
inline constexpr const char* server_external = "modules.eventBus.mqttServerExternal";
inline constexpr const char* sub_client_id = "modules.eventBus.mqttSubClientID";
inline constexpr const char* pub_client_id = "modules.eventBus.mqttPubClientID";
inline constexpr const char* username = "modules.eventBus.mqttUsername";
inline constexpr const char* password = "modules.eventBus.mqttPassword";
inline constexpr const char* tls_enable = "modules.eventBus.eventBusTLS.enable";
inline constexpr const char* tls_ca_file = "modules.eventBus.eventBusTLS.tlsMqttCAFile";
inline constexpr const char* tls_cert_file = "modules.eventBus.eventBusTLS.tlsMqttCertFile";
inline constexpr const char* tls_key_file = "modules.eventBus.eventBusTLS.tlsMqttPrivateKeyFile";
inline constexpr const char* max_packet_size = "modules.eventBus.mqttMaxPacketSize";
inline constexpr const char* max_connections = "modules.eventBus.mqttMaxConnections";
inline constexpr const char* max_inflight = "modules.eventBus.mqttMaxInflightMessages";
inline constexpr const char* overflow = "modules.eventBus.mqttQueueOverflowPolicy";
inline constexpr const char* connect_timeout = "modules.eventBus.mqttConnectTimeoutSeconds";
inline constexpr const char* external_buffer_size = "modules.eventBus.mqttExternalBufferSize";
inline constexpr const char* reconnect_min = "modules.eventBus.mqttReconnectMinMilliseconds";
inline constexpr const char* reconnect_max = "modules.eventBus.mqttReconnectMaxMilliseconds";
inline constexpr const char* keepalive = "modules.eventBus.mqttKeepAliveSeconds";
inline constexpr const char* module_socket = "modules.eventBus.moduleSocket";
inline constexpr const char* module_stream_socket = "modules.eventBus.moduleStreamSocket";
inline constexpr const char* module_socket_max_connections =
    "modules.eventBus.moduleSocketMaxConnections";
inline constexpr const char* module_socket_max_message_bytes =
    "modules.eventBus.moduleSocketMaxMessageBytes";
inline constexpr const char* group_backlog_size = "modules.eventBus.groupBacklogSize";
inline constexpr const char* max_memory_bytes = "modules.eventBus.maxMemoryBytes";
inline constexpr const char* session_queue_bytes = "modules.eventBus.mqttSessionQueueBytes";
inline constexpr const char* slow_subscriber_timeout =
    "modules.eventBus.mqttSlowSubscriberTimeoutMilliseconds";
inline constexpr const char* packet_timeout = "modules.eventBus.mqttPacketTimeoutSeconds";
inline constexpr const char* max_retained_messages = "modules.eventBus.mqttMaxRetainedMessages";
inline constexpr const char* max_retained_bytes = "modules.eventBus.mqttMaxRetainedBytes";
inline constexpr const char* max_subscriptions_per_client =
    "modules.eventBus.mqttMaxSubscriptionsPerClient";
inline constexpr const char* max_topic_length = "modules.eventBus.mqttMaxTopicLength";
inline constexpr const char* max_topic_levels = "modules.eventBus.mqttMaxTopicLevels";
inline constexpr const char* max_persistent_sessions = "modules.eventBus.mqttMaxPersistentSessions";
inline constexpr const char* session_expiry = "modules.eventBus.mqttSessionExpirySeconds";
inline constexpr const char* external_buffer_bytes = "modules.eventBus.mqttExternalBufferBytes";
inline constexpr const char* module_inbox_bytes = "modules.eventBus.moduleInboxBytes";
inline constexpr const char* group_backlog_bytes = "modules.eventBus.groupBacklogBytes";
inline constexpr const char* module_socket_outbound_bytes =
    "modules.eventBus.moduleSocketOutboundBytes";
inline constexpr const char* max_runtime_subscriptions = "modules.eventBus.maxRuntimeSubscriptions";
inline constexpr const char* max_runtime_subscription_bytes =
    "modules.eventBus.maxRuntimeSubscriptionBytes";
inline constexpr const char* store_queue_size = "modules.eventBus.storeQueueSize";
inline constexpr const char* store_queue_bytes = "modules.eventBus.storeQueueBytes";
inline constexpr const char* store_shutdown_timeout =
    "modules.eventBus.storeShutdownTimeoutSeconds";
inline constexpr const char* internal_listener = "modules.eventBus.internalListener";
inline constexpr const char* listeners = "modules.eventBus.listeners";
inline constexpr const char* password_file = "modules.eventBus.passwordFile";
inline constexpr const char* acl_file = "modules.eventBus.aclFile";
inline constexpr const char* module_socket_allowed_uids =
    "modules.eventBus.moduleSocketAllowedUids";
inline constexpr const char* module_socket_allowed_gids =
    "modules.eventBus.moduleSocketAllowedGids";
inline constexpr const char* node_name = "modules.edged.hostnameOverride";
inline constexpr const char* data_source = "database.dataSource";

// The keys of one listener, below internalListener or an entry of listeners.
namespace listener {
inline constexpr const char* url = "url";
inline constexpr const char* allow_anonymous = "allowAnonymous";
inline constexpr const char* cert_file = "certFile";
inline constexpr const char* key_file = "keyFile";
inline constexpr const char* ca_file = "caFile";
inline constexpr const char* require_certificate = "requireCertificate";
inline constexpr const char* use_identity_as_username = "useIdentityAsUsername";
inline constexpr const char* path = "path";
}  // namespace listener
}  // namespace key

/// "modules.eventBus.listeners[index]".
std::string listener_path(std::size_t index);
/// "modules.eventBus.<list>[index]" for an element of a sequence key.
std::string element_path(std::string_view list, std::size_t index);

/// validate(), and the warnings of the same checks when `warnings` is not null: settings that are
/// ignored, and listeners open to anyone on the network.
std::vector<config_issue> check(const daemon_config& cfg, std::vector<config_issue>* warnings);

std::string mode_message(std::int64_t value);
std::string positive_message(std::int64_t value);
std::string keepalive_message(std::int64_t value);

}  // namespace ebus::config::detail
