#pragma once
// MQTT -> bus: the beehive message KubeEdge builds for an intercepted MQTT message (spec §2.4,
// current era). Topics at or under `$hw/events/device` and `$hw/events/node` go to group `twin`
// with the topic as padded URL-safe base64 and operation `response`; every other topic goes to
// group `hub` with the raw topic and operation `upload`. Source is `bus`, route group `user`,
// and the payload travels as text.

#include <cstdint>
#include <string_view>

#include "bus/message.hpp"

namespace ebus::eventbus {

inline constexpr std::string_view twin_group = "twin";
inline constexpr std::string_view hub_group = "hub";

/// The target group of a concrete topic (segment boundaries, as KubeEdge's v1.11+ regexes).
[[nodiscard]] std::string_view target_group(std::string_view topic) noexcept;

/// The bus message for `topic` and `payload`, with a fresh id and the given timestamp (ms).
[[nodiscard]] bus::message to_bus_message(std::string_view topic, std::string_view payload,
                                          std::int64_t timestamp_ms);

}  // namespace ebus::eventbus
