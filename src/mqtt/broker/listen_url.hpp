#pragma once
// Listen URLs of the embedded broker: tcp://host:port and mqtt://host:port (KubeEdge's
// mqttServerInternal). Pure parsing; the reason names what is wrong for config errors.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/expected.hpp"

namespace ebus::mqtt::broker {

struct listen_address {
  std::string scheme;  ///< "tcp" or "mqtt"
  std::string host;    ///< address or host name; brackets of IPv6 literals removed
  std::uint16_t port = 0;
};

/// Parses `url`. Unsupported schemes (tls, ssl, ws, ...) are errors for now, with a reason
/// that names the scheme.
[[nodiscard]] expected<listen_address, std::string> parse_listen_url(std::string_view url);

}  // namespace ebus::mqtt::broker
