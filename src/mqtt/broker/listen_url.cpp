#include "mqtt/broker/listen_url.hpp"

#include <charconv>

namespace ebus::mqtt::broker {

expected<listen_address, std::string> parse_listen_url(std::string_view url) {
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) {
    return fail("'" + std::string(url) + "' is not a URL of the form tcp://host:port");
  }
  listen_address out;
  out.scheme = std::string(url.substr(0, sep));
  if (out.scheme != "tcp" && out.scheme != "mqtt") {
    return fail("unsupported scheme '" + out.scheme + "' in '" + std::string(url) +
                "' (supported: tcp, mqtt)");
  }
  std::string_view rest = url.substr(sep + 3);
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/") {
      return fail("unexpected path in '" + std::string(url) + "'");
    }
    rest = rest.substr(0, slash);
  }
  std::string_view host;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {  // [::1]:1884
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return fail("unclosed '[' in '" + std::string(url) + "'");
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else {
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      return fail("missing port in '" + std::string(url) + "'");
    }
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      // "tcp://::1" would otherwise read as host ":" port 1 (RFC 3986 section 3.2.2).
      return fail("IPv6 address without brackets in '" + std::string(url) +
                  "' (write tcp://[::1]:1884)");
    }
  }
  if (host.empty()) return fail("missing host in '" + std::string(url) + "'");
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value > 65535) {
    return fail("invalid port '" + std::string(port) + "' in '" + std::string(url) + "'");
  }
  out.host = std::string(host);
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

}  // namespace ebus::mqtt::broker
