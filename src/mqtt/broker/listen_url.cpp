#include "mqtt/broker/listen_url.hpp"

#include <array>
#include <charconv>
#include <optional>
#include <utility>

namespace ebus::mqtt::broker {
namespace {

constexpr std::array<std::pair<std::string_view, listen_transport>, 7> schemes{{
    {"tcp", listen_transport::tcp},
    {"mqtt", listen_transport::tcp},
    {"tls", listen_transport::tls},
    {"ssl", listen_transport::tls},
    {"mqtts", listen_transport::tls},
    {"ws", listen_transport::ws},
    {"wss", listen_transport::wss},
}};

std::optional<listen_transport> transport_of(std::string_view scheme) {
  for (const auto& [name, transport] : schemes) {
    if (name == scheme) return transport;
  }
  return std::nullopt;
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

}  // namespace

expected<listen_address, std::string> parse_listen_url(std::string_view url) {
  // First, and without quoting the URL: it may hold a password.
  if (url.find('@') != std::string_view::npos) {
    return fail(std::string("user information in the URL is not supported"));
  }
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) {
    return fail(quote(url) + " is not a URL of the form tcp://host:port");
  }
  listen_address out;
  out.scheme = std::string(url.substr(0, sep));
  const auto transport = transport_of(out.scheme);
  if (!transport) {
    return fail("unsupported scheme " + quote(out.scheme) + " in " + quote(url) +
                " (supported: tcp, mqtt, tls, ssl, mqtts, ws, wss)");
  }
  out.transport = *transport;
  std::string_view rest = url.substr(sep + 3);
  if (const auto end = rest.find_first_of("?#"); end != std::string_view::npos) {
    return fail("unexpected query or fragment in " + quote(url));
  }
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/") {
      return fail("unexpected path " + quote(rest.substr(slash)) + " in " + quote(url) +
                  ": a listen URL has none; a ws:// or wss:// listener takes its HTTP path from "
                  "the listener's `path` key");
    }
    rest = rest.substr(0, slash);
  }
  std::string_view host;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {  // [::1]:1884
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return fail("unclosed '[' in " + quote(url));
    host = rest.substr(1, close - 1);
    const std::string_view after = rest.substr(close + 1);
    if (after.empty()) return fail("missing port in " + quote(url));
    if (after.front() != ':') return fail("invalid port " + quote(after) + " in " + quote(url));
    port = after.substr(1);
  } else {
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) return fail("missing port in " + quote(url));
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      // "tcp://::1" would otherwise read as host ":" port 1 (RFC 3986 section 3.2.2).
      return fail("IPv6 address without brackets in " + quote(url) + " (write " + out.scheme +
                  "://[::1]:1884)");
    }
  }
  if (host.empty()) return fail("missing host in " + quote(url));
  if (has_space_or_control(host)) return fail("invalid host " + quote(host) + " in " + quote(url));
  if (port.empty()) return fail("missing port in " + quote(url));
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || end != port.data() + port.size() || value > 65535) {
    return fail("invalid port " + quote(port) + " in " + quote(url));
  }
  out.host = std::string(host);
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

}  // namespace ebus::mqtt::broker
