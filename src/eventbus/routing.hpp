#pragma once
// MQTT -> bus: the beehive message KubeEdge builds for an intercepted MQTT message (spec §2.4,
// current era). Topics at or under `$hw/events/device` and `$hw/events/node` go to group `twin`
// with the topic as padded URL-safe base64 and operation `response`; every other topic goes to
// group `hub` with the raw topic and operation `upload`. Source is `bus`, route group `user`,
// and the payload travels as text.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bus/message.hpp"

namespace ebus::eventbus {

inline constexpr std::string_view twin_group = "twin";
inline constexpr std::string_view hub_group = "hub";

/// The target group of a concrete topic (segment boundaries, as KubeEdge's v1.11+ regexes).
[[nodiscard]] std::string_view target_group(std::string_view topic) noexcept;

/// The twin resources (base64url of the topic) of the topics routed last, so that a device's
/// messages do not encode the same topic again each time: slots chosen by the topic's hash, each
/// holding the last topic that fell there. Bounded: `slots` topics of at most `max_topic_bytes`;
/// a longer one is encoded every time.
class resource_cache {
 public:
  static constexpr std::size_t slots = 64;
  static constexpr std::size_t max_topic_bytes = 256;

  /// base64_url(topic), from the cache when the topic's slot holds it.
  [[nodiscard]] std::string resource_of(std::string_view topic);

 private:
  struct slot {
    std::string topic;
    std::string resource;
  };
  std::array<slot, slots> slots_{};
};

/// The bus message for `topic` and `payload`, with a fresh id and the given timestamp (ms).
[[nodiscard]] bus::message to_bus_message(std::string_view topic, std::string_view payload,
                                          std::int64_t timestamp_ms);
/// An MQTT message on its way to the bus: the group it goes to and the message.
struct routed_message {
  std::string_view group;  ///< twin_group or hub_group
  bus::message message;
};
/// to_bus_message() and target_group() with the topic looked at once, taking the twin
/// resource from `cache` and the payload's storage: the EventBus's path for every message.
[[nodiscard]] routed_message route_to_bus(std::string_view topic, std::string payload,
                                          std::int64_t timestamp_ms, resource_cache& cache);

}  // namespace ebus::eventbus
