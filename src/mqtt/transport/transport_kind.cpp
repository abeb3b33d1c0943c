#include "mqtt/transport/transport_kind.hpp"

namespace ebus::mqtt::transport {

std::optional<transport_kind> parse_transport_kind(std::string_view name) noexcept {
  if (name == "tcp") return transport_kind::tcp;
  if (name == "tls") return transport_kind::tls;
  if (name == "ws") return transport_kind::ws;
  if (name == "wss") return transport_kind::wss;
  return std::nullopt;
}

std::string_view name_of(transport_kind kind) noexcept {
  switch (kind) {
    case transport_kind::tcp:
      break;
    case transport_kind::tls:
      return "tls";
    case transport_kind::ws:
      return "ws";
    case transport_kind::wss:
      return "wss";
  }
  return "tcp";
}

}  // namespace ebus::mqtt::transport
