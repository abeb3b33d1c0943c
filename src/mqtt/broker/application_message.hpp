#pragma once
// The version-neutral message the broker routes. One immutable copy is shared by every
// subscriber queue, the retained store and the EventBus hook; its bytes are charged to the
// memory budget once, for as long as any of them holds it.

#include <cstddef>
#include <memory>
#include <string>

#include "common/memory_budget.hpp"
#include "mqtt/codec/packet.hpp"

namespace ebus::mqtt::broker {

struct application_message {
  std::string topic;
  std::string payload;
  codec::qos_level qos = codec::qos_level::at_most_once;
  bool retain = false;
  budget_charge charge{};  ///< released with the last reference
};

using message_ptr = std::shared_ptr<const application_message>;

/// Bytes a shared message holds: its strings, the object and the shared_ptr control block.
[[nodiscard]] inline std::size_t footprint(std::size_t topic_size,
                                           std::size_t payload_size) noexcept {
  return topic_size + payload_size + sizeof(application_message) + 32;
}

}  // namespace ebus::mqtt::broker
