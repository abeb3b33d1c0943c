#include "mqtt/codec/packet.hpp"

namespace ebus::mqtt::codec {

static_assert(std::variant_size_v<packet> == 14);
static_assert(std::is_same_v<std::variant_alternative_t<0, packet>, connect>);
static_assert(std::is_same_v<std::variant_alternative_t<13, packet>, disconnect>);

packet_type type_of(const packet& p) noexcept {
  return static_cast<packet_type>(p.index() + 1);
}

std::string_view name_of(packet_type type) noexcept {
  switch (type) {
    case packet_type::connect:
      return "connect";
    case packet_type::connack:
      return "connack";
    case packet_type::publish:
      return "publish";
    case packet_type::puback:
      return "puback";
    case packet_type::pubrec:
      return "pubrec";
    case packet_type::pubrel:
      return "pubrel";
    case packet_type::pubcomp:
      return "pubcomp";
    case packet_type::subscribe:
      return "subscribe";
    case packet_type::suback:
      return "suback";
    case packet_type::unsubscribe:
      return "unsubscribe";
    case packet_type::unsuback:
      return "unsuback";
    case packet_type::pingreq:
      return "pingreq";
    case packet_type::pingresp:
      return "pingresp";
    case packet_type::disconnect:
      return "disconnect";
  }
  return "unknown";
}

}  // namespace ebus::mqtt::codec
