#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <fcntl.h>
#include <memory>
#include <netinet/in.h>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <system_error>
#include <tuple>
#include <unistd.h>
#include <utility>
#include <vector>

#include "common/log.hpp"
#include "config/checks.hpp"
#include "config/config_loader.hpp"
#include "mqtt/broker/listen_url.hpp"
#include "mqtt/client/broker_url.hpp"
#include "openssl/openssl_api.hpp"

namespace ebus::config {
namespace detail {

std::string mode_message(std::int64_t value) {
  return "must be 0 (internal broker), 1 (both) or 2 (external broker), got " +
         std::to_string(value);
}

std::string positive_message(std::int64_t value) {
  return "must be greater than 0, got " + std::to_string(value);
}

std::string keepalive_message(std::int64_t value) {
  // libmosquitto refuses 1 to 4; the CONNECT field holds 16 bits.
  return "must be 0 (none) or between 5 and 65535, got " + std::to_string(value);
}

std::string element_path(std::string_view list, std::size_t index) {
  return std::string(list) + "[" + std::to_string(index) + "]";
}

std::string listener_path(std::size_t index) {
  return element_path(key::listeners, index);
}

}  // namespace detail

std::optional<std::string> node_name_problem(std::string_view name) {
  // k8s.io/apimachinery IsDNS1123Subdomain, as ValidateNodeName applies it; the texts are its own.
  constexpr std::size_t max_subdomain = 253;
  if (name.size() > max_subdomain) {
    return "must be no more than " + std::to_string(max_subdomain) + " characters";
  }
  const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  bool valid = !name.empty();
  std::size_t label_start = 0;
  for (std::size_t i = 0; valid && i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '.') {
      // A label: [a-z0-9]([-a-z0-9]*[a-z0-9])?
      valid = i > label_start && alnum(name[label_start]) && alnum(name[i - 1]);
      label_start = i + 1;
    } else {
      valid = alnum(name[i]) || name[i] == '-';
    }
  }
  if (valid) return std::nullopt;
  return std::string(
      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
      "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
      "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
}

namespace {

// The largest remaining length MQTT can encode; below 64 bytes even a CONNECT may not fit.
constexpr std::size_t max_mqtt_packet_size = 268435455;
constexpr std::size_t min_packet_size = 64;
// sizeof(sockaddr_un::sun_path) on Linux, the terminating NUL included.
constexpr std::size_t sun_path_size = 108;
constexpr std::size_t min_module_message_bytes = 1024;
constexpr std::size_t max_module_message_bytes = 268435455;
constexpr std::size_t max_group_backlog = 1000000;
constexpr std::size_t min_memory_bytes = std::size_t{16} * 1024 * 1024;
// Worst case of a beehive message carrying one MQTT message: every payload byte escaped as
// \u00XX (6 bytes), the topic as well, and the envelope (ids, route, header).
constexpr std::size_t envelope_bytes = 64 * 1024;
std::size_t module_message_bytes_for(std::size_t max_packet_size) {
  return 6 * max_packet_size + envelope_bytes;
}

std::string quote(std::string_view s) {
  return "'" + std::string(s) + "'";
}

bool has_space_or_control(std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) return true;
  }
  return false;
}

// The external broker's URL (mqttServerExternal), read by the client's own parser, which masks a
// password in what it says; listen URLs are mqtt/broker/listen_url.hpp's.
std::optional<std::string> check_external_url(std::string_view url) {
  auto parsed = mqtt::client::parse_broker_url(url);
  if (!parsed) return std::move(parsed.error());
  return std::nullopt;
}

std::optional<std::string> check_socket_path(const std::string& path) {
  if (path.find('\0') != std::string::npos) return "the path contains a NUL character";
  if (path.front() != '/') return "must be an absolute path, got " + quote(path);
  if (path.size() >= sun_path_size) {
    return "must be shorter than " + std::to_string(sun_path_size) +
           " bytes (the limit of a Unix socket path), got " + std::to_string(path.size());
  }
  return std::nullopt;
}

// Opened, not read: enough to catch what edgecore crashes on (missing file, no permission).
std::optional<std::string> unreadable(const std::string& file) {
  if (file.find('\0') != std::string::npos) return "the file name contains a NUL character";
  const auto cannot = [&](int err) {
    return "cannot read " + quote(file) + ": " + std::generic_category().message(err);
  };
  // O_NONBLOCK: opening a FIFO without a writer must not hang the start-up.
  const int fd = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return cannot(errno);
  struct stat st {};
  std::optional<std::string> problem;
  if (::fstat(fd, &st) != 0) {
    problem = cannot(errno);
  } else if (S_ISDIR(st.st_mode)) {
    problem = cannot(EISDIR);
  } else if (!S_ISREG(st.st_mode)) {
    problem = "cannot read " + quote(file) + ": not a regular file";
  }
  ::close(fd);
  return problem;
}

namespace key = detail::key;
namespace lk = detail::key::listener;
using mqtt::broker::listen_address;
using mqtt::broker::listen_transport;

char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

std::optional<in_addr> ipv4(const std::string& host) {
  in_addr a{};
  if (::inet_pton(AF_INET, host.c_str(), &a) != 1) return std::nullopt;
  return a;
}

std::optional<in6_addr> ipv6(const std::string& host) {
  in6_addr a{};
  if (::inet_pton(AF_INET6, host.c_str(), &a) != 1) return std::nullopt;
  return a;
}

// 127.0.0.0/8, ::1 (and ::ffff:127.x.x.x), localhost. Other names are not resolved here.
bool is_loopback(const std::string& host) {
  if (iequals(host, "localhost")) return true;
  if (const auto a = ipv4(host)) return (ntohl(a->s_addr) >> 24) == 127;
  if (const auto a = ipv6(host)) {
    return IN6_IS_ADDR_LOOPBACK(&*a) || (IN6_IS_ADDR_V4MAPPED(&*a) && a->s6_addr[12] == 127);
  }
  return false;
}

// Whether two listeners would fight over one socket: the same address, or a wildcard address
// that covers the other one (0.0.0.0 every IPv4 address; :: every address, as Linux binds it
// dual-stack by default).
bool same_endpoint(const listen_address& a, const listen_address& b) {
  if (a.port != b.port) return false;
  if (iequals(a.host, b.host)) return true;
  const auto covers = [](const std::string& wildcard, const std::string& other) {
    if (const auto w = ipv4(wildcard); w && w->s_addr == INADDR_ANY) return ipv4(other).has_value();
    if (const auto w = ipv6(wildcard); w && IN6_IS_ADDR_UNSPECIFIED(&*w)) {
      return ipv4(other).has_value() || ipv6(other).has_value();
    }
    return false;
  };
  return covers(a.host, b.host) || covers(b.host, a.host);
}

// Loads certificate chain and key as the TLS listener will; the issue names the key at fault.
std::optional<config_issue> key_pair_problem(const std::string& base, const listener_config& l) {
  const auto loaded = openssl::load();
  if (!loaded) return config_issue{base + "." + lk::cert_file, "cannot check: " + loaded.error()};
  const openssl::functions& ssl = **loaded;
  const std::unique_ptr<SSL_CTX, decltype(ssl.SSL_CTX_free)> ctx(
      ssl.SSL_CTX_new(ssl.TLS_server_method()), ssl.SSL_CTX_free);
  if (!ctx) {
    return config_issue{base + "." + lk::cert_file, "cannot check: " + openssl::last_error(ssl)};
  }
  const auto used = openssl::use_key_pair(ssl, ctx.get(), l.cert_file, l.key_file);
  if (used) return std::nullopt;
  const auto& [what, detail] = used.error();
  switch (what) {
    case openssl::key_pair_failure::kind::certificate:
      return config_issue{base + "." + lk::cert_file,
                          quote(l.cert_file) + " is not a PEM certificate chain: " + detail};
    case openssl::key_pair_failure::kind::key:
      return config_issue{
          base + "." + lk::key_file,
          "cannot load " + quote(l.key_file) + " as an unencrypted PEM private key: " + detail};
    case openssl::key_pair_failure::kind::mismatch:
      break;
  }
  return config_issue{base + "." + lk::key_file, quote(l.key_file) + " does not match certFile " +
                                                     quote(l.cert_file) + ": " + detail};
}

// One listener: its URL at `url_path`, its settings below `base`.
struct listener_ref {
  std::string url_path;
  std::string base;
  const std::string& url;
  const listener_config& settings;
};

void check_listener_settings(const daemon_config& cfg, const listener_ref& ref,
                             const listen_address& addr, std::vector<config_issue>& out,
                             std::vector<config_issue>* warnings) {
  const auto& l = ref.settings;
  const auto at = [&](const char* name) { return ref.base + "." + name; };
  const auto add = [&](const char* name, std::string message) {
    out.push_back({at(name), std::move(message)});
  };
  const auto warn = [&](const char* name, std::string message) {
    if (warnings != nullptr) warnings->push_back({at(name), std::move(message)});
  };
  const bool tls = mqtt::transport::uses_tls(addr.transport);
  const bool websocket = mqtt::transport::uses_websocket(addr.transport);
  if (tls) {
    const std::string why = "required for a " + addr.scheme + ":// listener: ";
    bool pair_readable = true;
    for (const auto& [name, file, what] :
         {std::tuple{lk::cert_file, &l.cert_file, "the server certificate chain (PEM)"},
          std::tuple{lk::key_file, &l.key_file, "the private key of certFile (PEM)"}}) {
      if (file->empty()) {
        add(name, why + what);
        pair_readable = false;
      } else if (auto problem = unreadable(*file)) {
        add(name, std::move(*problem));
        pair_readable = false;
      }
    }
    if (!l.ca_file.empty()) {
      if (auto problem = unreadable(l.ca_file)) add(lk::ca_file, std::move(*problem));
    }
    for (const auto& [name, set] :
         {std::pair{lk::require_certificate, l.require_certificate},
          std::pair{lk::use_identity_as_username, l.use_identity_as_username}}) {
      if (set && l.ca_file.empty()) {
        add(name, "needs caFile: client certificates are checked against its CAs");
      }
    }
    if (pair_readable) {
      if (auto problem = key_pair_problem(ref.base, l)) out.push_back(std::move(*problem));
    }
  } else {
    const std::string why = "ignored: " + quote(ref.url) + " is not TLS";
    for (const auto& [name, file] :
         {std::pair{lk::cert_file, &l.cert_file}, std::pair{lk::key_file, &l.key_file},
          std::pair{lk::ca_file, &l.ca_file}}) {
      if (!file->empty()) warn(name, why);
    }
    if (l.require_certificate) warn(lk::require_certificate, why);
    if (l.use_identity_as_username) warn(lk::use_identity_as_username, why);
  }
  if (websocket) {
    if (l.path.empty() || l.path.front() != '/' || has_space_or_control(l.path)) {
      add(lk::path, "must start with '/' and hold no spaces or control characters, got " +
                        quote(log::escape(l.path)));
    }
  } else if (l.path != listener_config{}.path) {
    warn(lk::path, "ignored: " + quote(ref.url) + " is not WebSocket");
  }
  // The default of allowAnonymous is mosquitto 2's: open unless a password file exists.
  const bool anonymous = l.allow_anonymous.value_or(cfg.eventbus.password_file.empty());
  const bool identity = tls && l.use_identity_as_username;
  if (!anonymous && cfg.eventbus.password_file.empty() && !identity) {
    add(lk::allow_anonymous,
        "false with no passwordFile and no useIdentityAsUsername: no client could ever connect; "
        "set passwordFile, or useIdentityAsUsername on a TLS listener");
  }
  if (anonymous && !tls && !is_loopback(addr.host) && warnings != nullptr) {
    const std::string node =
        node_name_problem(cfg.node_name) || cfg.node_name.empty() ? "<node>" : cfg.node_name;
    warnings->push_back(
        {ref.url_path,
         quote(ref.url) +
             " takes anonymous clients without TLS on an address other than loopback: anyone "
             "who can reach it can read and publish every topic" +
             (cfg.eventbus.acl_file.empty() ? "" : " that aclFile allows anonymous clients") +
             " (e.g. $hw/events/node/" + node +
             "/authInfo/get/result carries the node's keys); set passwordFile (anonymous "
             "clients are then refused), restrict anonymous clients with aclFile, listen on "
             "127.0.0.1, or use a tls:// or wss:// listener with certFile and keyFile"});
  }
}

// Every listener of the embedded broker: mqttServerInternal with internalListener, then each
// entry of listeners; and the files the broker reads at start.
void check_listeners(const daemon_config& cfg, std::vector<config_issue>& out,
                     std::vector<config_issue>* warnings) {
  const auto& e = cfg.eventbus;
  std::vector<listener_ref> refs;
  refs.push_back(
      {key::server_internal, key::internal_listener, e.server_internal, e.internal_listener});
  for (std::size_t i = 0; i < e.listeners.size(); ++i) {
    const auto base = detail::listener_path(i);
    refs.push_back({base + "." + lk::url, base, e.listeners[i].url, e.listeners[i]});
  }
  std::vector<std::pair<const listener_ref*, listen_address>> bound;
  for (const auto& ref : refs) {
    if (ref.url.empty() && &ref != &refs.front()) {
      out.push_back({ref.url_path, "required: the address to listen on, e.g. tls://0.0.0.0:8883"});
      continue;
    }
    auto addr = mqtt::broker::parse_listen_url(ref.url);
    if (!addr) {
      out.push_back({ref.url_path, std::move(addr.error())});
      continue;
    }
    if (addr->port == 0) {
      // The kernel would pick a port no client knows.
      out.push_back(
          {ref.url_path, "invalid port '0' in " + quote(ref.url) + " (must be 1 to 65535)"});
      continue;
    }
    bool clash = false;
    for (const auto& [other, other_addr] : bound) {
      if (same_endpoint(*addr, other_addr)) {
        constexpr std::string_view prefix = "modules.eventBus.";
        out.push_back({ref.url_path, quote(ref.url) + " listens on the address and port of " +
                                         other->url_path.substr(prefix.size()) + " " +
                                         quote(other->url)});
        clash = true;
        break;
      }
    }
    check_listener_settings(cfg, ref, *addr, out, warnings);
    if (!clash) bound.emplace_back(&ref, std::move(*addr));
  }
  for (const auto& [path, file] :
       {std::pair{key::password_file, &e.password_file}, std::pair{key::acl_file, &e.acl_file}}) {
    if (file->empty()) continue;
    if (auto problem = unreadable(*file)) out.push_back({path, std::move(*problem)});
  }
}

// mqttMode 2 runs no embedded broker: its settings are ignored, as mqttServerInternal is.
void ignored_without_broker(const eventbus_config& e, std::vector<config_issue>* warnings) {
  if (warnings == nullptr) return;
  const std::string why = "ignored: mqttMode 2 runs no embedded broker";
  if (e.internal_listener != listener_config{}) warnings->push_back({key::internal_listener, why});
  if (!e.listeners.empty()) warnings->push_back({key::listeners, why});
  if (!e.password_file.empty()) warnings->push_back({key::password_file, why});
  if (!e.acl_file.empty()) warnings->push_back({key::acl_file, why});
}

}  // namespace

std::vector<config_issue> validate(const daemon_config& cfg) {
  return detail::check(cfg, nullptr);
}

std::vector<config_issue> detail::check(const daemon_config& cfg,
                                        std::vector<config_issue>* warnings) {
  std::vector<config_issue> out;
  const auto add = [&](const char* path, std::string message) {
    out.push_back({path, std::move(message)});
  };
  const auto positive = [&](const char* path, std::size_t value) {
    if (value == 0) add(path, detail::positive_message(0));
  };
  const auto& e = cfg.eventbus;
  // The embedded broker runs in modes 0 and 1, and alone when the eventbus is disabled
  // (broker-only mode): its keys are checked in every case, as they may all be in use. The
  // eventbus keys are not checked when it is disabled, as in edgecore.
  const bool internal = !e.enable || e.mode == mqtt_mode::internal || e.mode == mqtt_mode::both;
  const bool external = e.enable && (e.mode == mqtt_mode::both || e.mode == mqtt_mode::external);
  if (e.enable) {
    if (e.mode != mqtt_mode::internal && e.mode != mqtt_mode::both &&
        e.mode != mqtt_mode::external) {
      add(key::mode, detail::mode_message(static_cast<std::int64_t>(e.mode)));
    }
    if (e.qos > 2) add(key::qos, "must be 0, 1 or 2, got " + std::to_string(e.qos));
  }
  if (e.session_queue_size == 0) add(key::session_queue_size, detail::positive_message(0));
  if (e.max_packet_size < min_packet_size || e.max_packet_size > max_mqtt_packet_size) {
    add(key::max_packet_size, "must be between 64 and 268435455 (the largest MQTT packet), got " +
                                  std::to_string(e.max_packet_size));
  }
  if (e.max_connections == 0) add(key::max_connections, detail::positive_message(0));
  if (e.max_inflight == 0 || e.max_inflight > 65535) {
    add(key::max_inflight,
        "must be between 1 and 65535 (MQTT packet ids), got " + std::to_string(e.max_inflight));
  }
  if (e.connect_timeout.count() <= 0) {
    add(key::connect_timeout, detail::positive_message(e.connect_timeout.count() / 1000));
  }
  if (e.enable) {
    if (e.external_buffer_size == 0) add(key::external_buffer_size, detail::positive_message(0));
    if (e.reconnect_min.count() <= 0) {
      add(key::reconnect_min, detail::positive_message(e.reconnect_min.count()));
    } else if (e.reconnect_min > e.reconnect_max) {
      add(key::reconnect_min, "must not exceed mqttReconnectMaxMilliseconds (" +
                                  std::to_string(e.reconnect_max.count()) + "), got " +
                                  std::to_string(e.reconnect_min.count()));
    }
    if (e.keepalive_seconds != 0 && e.keepalive_seconds < 5) {
      add(key::keepalive, detail::keepalive_message(e.keepalive_seconds));
    }
  }
  if (internal) {
    check_listeners(cfg, out, warnings);
  } else if (e.enable && e.mode == mqtt_mode::external) {
    ignored_without_broker(e, warnings);
  }
  if (external) {
    if (auto problem = check_external_url(e.server_external)) {
      add(key::server_external, std::move(*problem));
    }
    if (!e.sub_client_id.empty() && e.sub_client_id == e.pub_client_id) {
      add(key::pub_client_id, "must differ from mqttSubClientID " + quote(e.sub_client_id) +
                                  ": the broker would disconnect one client whenever the other "
                                  "connects");
    }
    if (e.tls.enable) {
      const std::array files{std::pair{key::tls_ca_file, &e.tls.ca_file},
                             std::pair{key::tls_cert_file, &e.tls.cert_file},
                             std::pair{key::tls_key_file, &e.tls.private_key_file}};
      for (const auto& [path, file] : files) {
        if (auto problem = unreadable(*file)) add(path, std::move(*problem));
      }
    }
  }
  // The module sockets serve the bus, which runs whether or not the eventbus module does.
  if (!e.module_socket.empty()) {
    if (auto problem = check_socket_path(e.module_socket)) {
      add(key::module_socket, std::move(*problem));
    }
  }
  if (!e.module_stream_socket.empty()) {
    if (auto problem = check_socket_path(e.module_stream_socket)) {
      add(key::module_stream_socket, std::move(*problem));
    } else if (e.module_stream_socket == e.module_socket) {
      add(key::module_stream_socket,
          "must differ from moduleSocket " + quote(e.module_socket) + ": one file cannot be both");
    }
  }
  if (e.module_socket_max_connections == 0) {
    add(key::module_socket_max_connections, detail::positive_message(0));
  }
  if (e.module_socket_max_message_bytes < min_module_message_bytes ||
      e.module_socket_max_message_bytes > max_module_message_bytes) {
    add(key::module_socket_max_message_bytes,
        "must be between " + std::to_string(min_module_message_bytes) + " and " +
            std::to_string(max_module_message_bytes) + ", got " +
            std::to_string(e.module_socket_max_message_bytes));
  }
  const bool packet_size_valid =
      e.max_packet_size >= min_packet_size && e.max_packet_size <= max_mqtt_packet_size;
  const bool message_bytes_valid = e.module_socket_max_message_bytes >= min_module_message_bytes &&
                                   e.module_socket_max_message_bytes <= max_module_message_bytes;
  // Memory and the embedded broker's bounds.
  if (e.max_memory_bytes != 0 && e.max_memory_bytes < min_memory_bytes) {
    add(key::max_memory_bytes, "must be 0 (unlimited) or at least " +
                                   std::to_string(min_memory_bytes) + " (16 MiB), got " +
                                   std::to_string(e.max_memory_bytes));
  }
  if (packet_size_valid && e.session_queue_bytes < e.max_packet_size) {
    add(key::session_queue_bytes, "must be at least mqttMaxPacketSize (" +
                                      std::to_string(e.max_packet_size) +
                                      "), or the largest message could never be queued, got " +
                                      std::to_string(e.session_queue_bytes));
  }
  if (e.slow_subscriber_timeout.count() <= 0) {
    add(key::slow_subscriber_timeout, detail::positive_message(e.slow_subscriber_timeout.count()));
  }
  if (e.packet_timeout.count() <= 0) {
    add(key::packet_timeout, detail::positive_message(e.packet_timeout.count() / 1000));
  }
  positive(key::max_retained_messages, e.max_retained_messages);
  if (packet_size_valid && e.max_retained_bytes < e.max_packet_size) {
    add(key::max_retained_bytes, "must be at least mqttMaxPacketSize (" +
                                     std::to_string(e.max_packet_size) + "), got " +
                                     std::to_string(e.max_retained_bytes));
  }
  positive(key::max_subscriptions_per_client, e.max_subscriptions_per_client);
  if (e.max_topic_length == 0 || e.max_topic_length > 65535) {
    add(key::max_topic_length,
        "must be between 1 and 65535 (the MQTT limit), got " + std::to_string(e.max_topic_length));
  }
  positive(key::max_topic_levels, e.max_topic_levels);
  positive(key::max_persistent_sessions, e.max_persistent_sessions);
  // Routing, the external buffer and the store: the eventbus only.
  if (e.enable) {
    if (packet_size_valid && e.external_buffer_bytes < e.max_packet_size) {
      add(key::external_buffer_bytes, "must be at least mqttMaxPacketSize (" +
                                          std::to_string(e.max_packet_size) + "), got " +
                                          std::to_string(e.external_buffer_bytes));
    }
    positive(key::max_runtime_subscriptions, e.max_runtime_subscriptions);
    positive(key::max_runtime_subscription_bytes, e.max_runtime_subscription_bytes);
    positive(key::store_queue_size, e.store_queue_size);
    positive(key::store_queue_bytes, e.store_queue_bytes);
    // Past about 44 MiB packets no socket limit can hold the worst case; docs/CONFIG.md says so.
    if (packet_size_valid && message_bytes_valid &&
        module_message_bytes_for(e.max_packet_size) <= max_module_message_bytes &&
        e.module_socket_max_message_bytes < module_message_bytes_for(e.max_packet_size)) {
      add(key::module_socket_max_message_bytes,
          "must be at least " + std::to_string(module_message_bytes_for(e.max_packet_size)) +
              " (6 x mqttMaxPacketSize + 64 KiB), so that every message the broker accepts "
              "reaches a remote module once encoded, got " +
              std::to_string(e.module_socket_max_message_bytes));
    }
  }
  if (e.module_inbox_bytes < min_module_message_bytes) {
    add(key::module_inbox_bytes, "must be at least " + std::to_string(min_module_message_bytes) +
                                     ", got " + std::to_string(e.module_inbox_bytes));
  }
  if (e.group_backlog_bytes < min_module_message_bytes) {
    add(key::group_backlog_bytes, "must be at least " + std::to_string(min_module_message_bytes) +
                                      ", got " + std::to_string(e.group_backlog_bytes));
  }
  if (message_bytes_valid && e.module_socket_outbound_bytes < e.module_socket_max_message_bytes) {
    add(key::module_socket_outbound_bytes, "must be at least moduleSocketMaxMessageBytes (" +
                                               std::to_string(e.module_socket_max_message_bytes) +
                                               "), got " +
                                               std::to_string(e.module_socket_outbound_bytes));
  }
  if (e.group_backlog_size > max_group_backlog) {
    add(key::group_backlog_size, "must be at most " + std::to_string(max_group_backlog) +
                                     " (0 keeps none), got " +
                                     std::to_string(e.group_backlog_size));
  }
  if (cfg.node_name.empty()) {
    add(key::node_name, "must not be empty: it is the node name used in topics");
  } else if (auto problem = node_name_problem(cfg.node_name)) {
    // edgecore refuses the same names (ValidateModuleEdged); a name with '/', '+' or '#' would
    // also break the topics it goes into.
    add(key::node_name, "invalid node name '" + log::escape(cfg.node_name) + "': " + *problem);
  }
  if (cfg.data_source.empty()) {
    add(key::data_source, "must not be empty: it names the SQLite file holding sub_topics");
  }
  return out;
}

}  // namespace ebus::config
