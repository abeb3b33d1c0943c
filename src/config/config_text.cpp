#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "config/config_loader.hpp"

namespace ebus::config {
namespace {

// edgecore's fallback when the host name cannot be read or is no valid node name
// (KubeEdge constants.DefaultHostnameOverride).
constexpr const char* fallback_node_name = "default-edge-node";

std::string host_name() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0) return {};
  return buf.data();
}

bool is_go_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

bool is_plain_safe(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '/')) return false;
  for (const char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' &&
        c != '/' && c != ':') {
      return false;
    }
  }
  // Words YAML 1.1 readers take as booleans or null.
  for (const char* word : {"true", "false", "yes", "no", "on", "off", "y", "n", "null"}) {
    if (s.size() == std::strlen(word) && std::equal(s.begin(), s.end(), word, [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == b;
        })) {
      return false;
    }
  }
  return true;
}

// A string as a YAML scalar: plain when that reads back as the same string in any YAML reader,
// else double-quoted (a host name such as "1234" or "yes" must stay a string).
std::string yaml_scalar(const std::string& s) {
  if (is_plain_safe(s)) return s;
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7F) {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0xF];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

const char* yes_no(bool b) {
  return b ? "true" : "false";
}

// The keys of one listener, one per line at `indent`; the first line may carry a prefix ("- ").
std::string listener_keys(const listener_config& l, const std::string& indent, bool with_url,
                          bool with_comments) {
  std::string out;
  const auto line = [&](std::string_view comment, std::string_view key, const std::string& value) {
    if (with_comments && !comment.empty()) {  // "": covered by the comment before
      out += indent;
      out += "# ";
      out += comment;
      out += '\n';
    }
    out += indent;
    out += key;
    out += ": ";
    out += value;
    out += '\n';
  };
  if (with_url) line("", "url", yaml_scalar(l.url));
  line("Clients without a user name; null: true without passwordFile, false with one.",
       "allowAnonymous", l.allow_anonymous ? yes_no(*l.allow_anonymous) : "null");
  line("tls and wss: server certificate chain and private key (PEM), both required.", "certFile",
       yaml_scalar(l.cert_file));
  line("", "keyFile", yaml_scalar(l.key_file));
  line("tls and wss: CAs that client certificates are checked against.", "caFile",
       yaml_scalar(l.ca_file));
  line("tls and wss: refuse clients without a certificate signed by caFile.", "requireCertificate",
       yes_no(l.require_certificate));
  line("tls and wss: the client certificate's CN is the user name, no password asked.",
       "useIdentityAsUsername", yes_no(l.use_identity_as_username));
  line("ws and wss: the HTTP path of the WebSocket upgrade.", "path", yaml_scalar(l.path));
  return out;
}

std::string listener_list(const std::vector<listener_config>& ls) {
  if (ls.empty()) return "[]";
  std::string out;
  for (const auto& l : ls) {
    std::string keys = listener_keys(l, "        ", true, false);
    keys.replace(6, 2, "- ");
    out += '\n' + keys;
  }
  out.pop_back();  // the template ends the line
  return out;
}

std::string id_list(const std::vector<std::uint32_t>& ids) {
  return fmt::format("[{}]", fmt::join(ids, ", "));
}

const char* policy_name(overflow_policy p) {
  switch (p) {
    case overflow_policy::drop_oldest:
      return "dropOldest";
    case overflow_policy::disconnect:
      return "disconnect";
    case overflow_policy::drop_newest:
      break;
  }
  return "dropNewest";
}

constexpr const char* default_template =
    R"(# eventbus configuration in edgecore's layout (edgecore.yaml). Every key is optional; a
# missing key keeps the value shown here. Keys match case-insensitively. Other edgecore
# modules and sections may be present and are ignored.
apiVersion: edgecore.config.kubeedge.io/v1alpha2
kind: EdgeCore
database:
  # SQLite file holding the sub_topics table (same table as edgecore's).
  dataSource: {data_source}
modules:
  edged:
    # Node name used in topics (a lowercase RFC 1123 subdomain); defaults to the host name,
    # trimmed and lower-cased, or default-edge-node when that is not a valid name, as edgecore.
    hostnameOverride: {node_name}
  eventBus:
    # false: broker-only mode, in place of the mosquitto of a KubeEdge node. The embedded broker
    # runs on mqttServerInternal whatever mqttMode says, and nothing is routed to modules.
    enable: {enable}
    # 0: embedded broker only, 1: embedded and external broker, 2: external broker only.
    # edgecore's default is 2, which needs a running external broker; ours is 0.
    mqttMode: {mode}
    # QoS (0, 1 or 2) and retain flag of the messages the eventbus publishes on the embedded
    # broker.
    mqttQOS: {qos}
    mqttRetain: {retain}
    # Messages queued per subscriber of the embedded broker (at least 1).
    mqttSessionQueueSize: {session_queue_size}
    # Where the embedded broker listens (modes 0 and 1, and with enable: false): scheme://host:port
    # with tcp or mqtt, tls, ssl or mqtts, ws, wss (settings in internalListener below).
    mqttServerInternal: {server_internal}
    # The external broker (modes 1 and 2): tcp://, mqtt://, ssl://, tls:// or mqtts://.
    mqttServerExternal: {server_external}
    # Client ids at the external broker; empty: hub-client-sub-<unix time> and
    # hub-client-pub-<unix time>, as edgecore.
    mqttSubClientID: {sub_client_id}
    mqttPubClientID: {pub_client_id}
    # Credentials at the external broker; sent only when both are set.
    mqttUsername: {username}
    mqttPassword: {password}
    # TLS towards the external broker. When enabled in modes 1 and 2, the three files must be
    # readable at start-up.
    eventBusTLS:
      enable: {tls_enable}
      tlsMqttCAFile: {ca_file}
      tlsMqttCertFile: {cert_file}
      tlsMqttPrivateKeyFile: {key_file}
    # The keys below are extensions of this implementation; edgecore does not know them.
    # Largest packet the embedded broker accepts, in bytes (64 to 268435455).
    mqttMaxPacketSize: {max_packet_size}
    # Connections the embedded broker accepts at once.
    mqttMaxConnections: {max_connections}
    # QoS 1 and 2 messages sent to one client and not yet acknowledged (1 to 65535).
    mqttMaxInflightMessages: {max_inflight}
    # When a subscriber's queue is full: dropNewest, dropOldest or disconnect.
    mqttQueueOverflowPolicy: {overflow}
    # Seconds a new client of the embedded broker has to send CONNECT.
    mqttConnectTimeoutSeconds: {connect_timeout}
    # Publishes towards the external broker kept while it is unreachable.
    mqttExternalBufferSize: {external_buffer_size}
    # Delay before reconnecting to the external broker: from min, doubling up to max.
    mqttReconnectMinMilliseconds: {reconnect_min}
    mqttReconnectMaxMilliseconds: {reconnect_max}
    # Keepalive of the connections to the external broker: 0 (none) or 5 to 65535 (libmosquitto
    # refuses 1 to 4).
    mqttKeepAliveSeconds: {keepalive}
    # The module bus serves other processes whether or not the eventbus is enabled, so the
    # keys below apply, and are checked, even with enable: false.
    # Unix sockets where other processes join the module bus with beehive's socket protocol:
    # one message per packet (SOCK_SEQPACKET) and one message per line (SOCK_STREAM). Absolute
    # paths shorter than 108 bytes; "" disables one.
    moduleSocket: {module_socket}
    moduleStreamSocket: {module_stream_socket}
    # Both sockets are created with mode 0600, and each connecting process is checked
    # (SO_PEERCRED): root and the daemon's own user are always let in; these lists let in more
    # user and group ids, e.g. [1000, 1001].
    moduleSocketAllowedUids: {module_socket_allowed_uids}
    moduleSocketAllowedGids: {module_socket_allowed_gids}
    # Connections of both sockets together (at least 1).
    moduleSocketMaxConnections: {module_socket_max_connections}
    # Largest message accepted or sent on them, in bytes (1024 to 268435455; at least
    # 6 x mqttMaxPacketSize + 64 KiB, so every MQTT message fits once encoded).
    moduleSocketMaxMessageBytes: {module_socket_max_message_bytes}
    # Messages kept for group twin or hub while no module is in it, delivered to the first one
    # that joins (0 to 1000000; 0: none kept).
    groupBacklogSize: {group_backlog_size}
    # Limits (docs/CONFIG.md "Limits"). Everything clients and modules can make the daemon hold
    # is charged to this budget, in bytes; at the budget new messages are refused and counted
    # (0: unlimited).
    maxMemoryBytes: {max_memory_bytes}
    # Per subscriber of the embedded broker: queued bytes, the counterpart of
    # mqttSessionQueueSize. Past either, publishers feeding it wait; past twice either, or when
    # it is slow, mqttQueueOverflowPolicy applies.
    mqttSessionQueueBytes: {session_queue_bytes}
    # How long a publisher may wait for a subscriber over its limit before that subscriber
    # counts as slow.
    mqttSlowSubscriberTimeoutMilliseconds: {slow_subscriber_timeout}
    # Seconds a packet has to arrive whole once its first byte is in.
    mqttPacketTimeoutSeconds: {packet_timeout}
    # Retained messages kept, and their bytes (topic + payload + 160 bytes each).
    mqttMaxRetainedMessages: {max_retained_messages}
    mqttMaxRetainedBytes: {max_retained_bytes}
    # Subscriptions one client may hold.
    mqttMaxSubscriptionsPerClient: {max_subscriptions_per_client}
    # Longest topic (bytes, up to 65535) and most levels of a topic name or filter.
    mqttMaxTopicLength: {max_topic_length}
    mqttMaxTopicLevels: {max_topic_levels}
    # Sessions with clean session 0 kept, and seconds an offline one is kept (0: forever).
    mqttMaxPersistentSessions: {max_persistent_sessions}
    mqttSessionExpirySeconds: {session_expiry}
    # Bytes of publishes kept for the external broker while it is unreachable.
    mqttExternalBufferBytes: {external_buffer_bytes}
    # Bytes waiting in one module's inbox, in one group backlog, and for one module-socket
    # connection.
    moduleInboxBytes: {module_inbox_bytes}
    groupBacklogBytes: {group_backlog_bytes}
    moduleSocketOutboundBytes: {module_socket_outbound_bytes}
    # Run-time subscriptions of the eventbus (count, and topic bytes together).
    maxRuntimeSubscriptions: {max_runtime_subscriptions}
    maxRuntimeSubscriptionBytes: {max_runtime_subscription_bytes}
    # Subscription writes waiting for the database, and seconds allowed to finish them at
    # shutdown.
    storeQueueSize: {store_queue_size}
    storeQueueBytes: {store_queue_bytes}
    storeShutdownTimeoutSeconds: {store_shutdown_timeout}
    # Listeners, authentication and ACL (docs/CONFIG.md). Settings of the mqttServerInternal
    # listener; its scheme says what it speaks: tcp:// or mqtt://, tls://, ssl:// or mqtts://,
    # ws://, wss://.
    internalListener:
{internal_listener}
    # More listeners of the embedded broker, each a url (scheme://host:port) and the keys of
    # internalListener. For example:
    #   - url: tls://0.0.0.0:8883
    #     certFile: /etc/kubeedge/certs/server.crt
    #     keyFile: /etc/kubeedge/certs/server.key
    #   - url: ws://127.0.0.1:8080
    listeners: {listeners}
    # Users and their password hashes, in mosquitto_passwd's format; "" = none.
    passwordFile: {password_file}
    # Topic rules in mosquitto's acl_file format; "" = every client may read and write every
    # topic.
    aclFile: {acl_file}
)";

constexpr const char* min_template = R"(apiVersion: edgecore.config.kubeedge.io/v1alpha2
kind: EdgeCore
database:
  dataSource: {data_source}
modules:
  edged:
    hostnameOverride: {node_name}
  eventBus:
    # false, as in edgecore's minimal file: only the embedded broker runs, on
    # mqttServerInternal, with no routing to modules. true: the EventBus, in mqttMode.
    enable: false
    # 0: embedded broker only, 1: both, 2: external broker only (edgecore's default, which
    # needs a running external broker).
    mqttMode: {mode}
    mqttServerInternal: {server_internal}
    mqttServerExternal: {server_external}
    mqttQOS: {qos}
    mqttRetain: {retain}
)";

std::string render(const char* text, const daemon_config& d) {
  const eventbus_config& e = d.eventbus;
  return fmt::format(
      fmt::runtime(text), fmt::arg("data_source", yaml_scalar(d.data_source)),
      fmt::arg("node_name", yaml_scalar(d.node_name)), fmt::arg("enable", yes_no(e.enable)),
      fmt::arg("mode", static_cast<unsigned>(e.mode)), fmt::arg("qos", unsigned{e.qos}),
      fmt::arg("retain", yes_no(e.retain)), fmt::arg("session_queue_size", e.session_queue_size),
      fmt::arg("server_internal", yaml_scalar(e.server_internal)),
      fmt::arg("server_external", yaml_scalar(e.server_external)),
      fmt::arg("sub_client_id", yaml_scalar(e.sub_client_id)),
      fmt::arg("pub_client_id", yaml_scalar(e.pub_client_id)),
      fmt::arg("username", yaml_scalar(e.username)), fmt::arg("password", yaml_scalar(e.password)),
      fmt::arg("tls_enable", yes_no(e.tls.enable)), fmt::arg("ca_file", yaml_scalar(e.tls.ca_file)),
      fmt::arg("cert_file", yaml_scalar(e.tls.cert_file)),
      fmt::arg("key_file", yaml_scalar(e.tls.private_key_file)),
      fmt::arg("max_packet_size", e.max_packet_size),
      fmt::arg("max_connections", e.max_connections), fmt::arg("max_inflight", e.max_inflight),
      fmt::arg("overflow", policy_name(e.overflow)),
      fmt::arg("connect_timeout",
               std::chrono::duration_cast<std::chrono::seconds>(e.connect_timeout).count()),
      fmt::arg("external_buffer_size", e.external_buffer_size),
      fmt::arg("reconnect_min", e.reconnect_min.count()),
      fmt::arg("reconnect_max", e.reconnect_max.count()),
      fmt::arg("keepalive", unsigned{e.keepalive_seconds}),
      fmt::arg("module_socket", yaml_scalar(e.module_socket)),
      fmt::arg("module_stream_socket", yaml_scalar(e.module_stream_socket)),
      fmt::arg("module_socket_max_connections", e.module_socket_max_connections),
      fmt::arg("module_socket_max_message_bytes", e.module_socket_max_message_bytes),
      fmt::arg("group_backlog_size", e.group_backlog_size),
      fmt::arg("max_memory_bytes", e.max_memory_bytes),
      fmt::arg("session_queue_bytes", e.session_queue_bytes),
      fmt::arg("slow_subscriber_timeout", e.slow_subscriber_timeout.count()),
      fmt::arg("packet_timeout",
               std::chrono::duration_cast<std::chrono::seconds>(e.packet_timeout).count()),
      fmt::arg("max_retained_messages", e.max_retained_messages),
      fmt::arg("max_retained_bytes", e.max_retained_bytes),
      fmt::arg("max_subscriptions_per_client", e.max_subscriptions_per_client),
      fmt::arg("max_topic_length", e.max_topic_length),
      fmt::arg("max_topic_levels", e.max_topic_levels),
      fmt::arg("max_persistent_sessions", e.max_persistent_sessions),
      fmt::arg("session_expiry", e.session_expiry.count()),
      fmt::arg("external_buffer_bytes", e.external_buffer_bytes),
      fmt::arg("module_inbox_bytes", e.module_inbox_bytes),
      fmt::arg("group_backlog_bytes", e.group_backlog_bytes),
      fmt::arg("module_socket_outbound_bytes", e.module_socket_outbound_bytes),
      fmt::arg("max_runtime_subscriptions", e.max_runtime_subscriptions),
      fmt::arg("max_runtime_subscription_bytes", e.max_runtime_subscription_bytes),
      fmt::arg("store_queue_size", e.store_queue_size),
      fmt::arg("store_queue_bytes", e.store_queue_bytes),
      fmt::arg("store_shutdown_timeout",
               std::chrono::duration_cast<std::chrono::seconds>(e.store_shutdown_timeout).count()),
      fmt::arg("module_socket_allowed_uids", id_list(e.module_socket_allowed_uids)),
      fmt::arg("module_socket_allowed_gids", id_list(e.module_socket_allowed_gids)),
      fmt::arg("internal_listener",
               [&] {
                 auto keys = listener_keys(e.internal_listener, "      ", false, true);
                 keys.pop_back();  // the template ends the line
                 return keys;
               }()),
      fmt::arg("listeners", listener_list(e.listeners)),
      fmt::arg("password_file", yaml_scalar(e.password_file)),
      fmt::arg("acl_file", yaml_scalar(e.acl_file)));
}

}  // namespace

std::string node_name_from_host(std::string_view host) {
  // k8s.io/component-helpers nodeutil.GetHostname, then KubeEdge util.GetHostname.
  while (!host.empty() && is_go_space(host.front()))
    host.remove_prefix(1);
  while (!host.empty() && is_go_space(host.back()))
    host.remove_suffix(1);
  std::string name(host);
  for (char& c : name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  if (name.empty() || node_name_problem(name)) return fallback_node_name;
  return name;
}

daemon_config default_config() {
  daemon_config c;
  c.node_name = node_name_from_host(host_name());
  return c;
}

std::string default_config_yaml() {
  return render(default_template, default_config());
}

std::string min_config_yaml() {
  return render(min_template, default_config());
}

}  // namespace ebus::config
