#pragma once
// The version-neutral message the broker routes. One immutable copy is shared by every
// subscriber queue, the retained store and the EventBus hook.

#include <memory>
#include <string>

#include "mqtt/codec/packet.hpp"

namespace ebus::mqtt::broker {

struct application_message {
  std::string topic;
  std::string payload;
  codec::qos_level qos = codec::qos_level::at_most_once;
  bool retain = false;
};

using message_ptr = std::shared_ptr<const application_message>;

}  // namespace ebus::mqtt::broker
