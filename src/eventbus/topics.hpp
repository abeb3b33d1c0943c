#pragma once
// Topics the EventBus owns (KubeEdge edge/pkg/eventbus/common/util, spec §2.1 and §3.1).

#include <array>
#include <string>
#include <string_view>

namespace ebus::eventbus {

/// Filters intercepted from the start, in the order they are subscribed on the external broker:
/// the current list (KubeEdge v1.17+, device ids `<namespace>/<name>`), then the v1.1-era
/// single-level device forms so that mappers using bare device names keep working.
inline constexpr std::array<std::string_view, 8> fixed_topics = {
    "$hw/events/upload/#",
    "$hw/events/device/+/+/state/update",
    "$hw/events/device/+/+/twin/+",
    "$hw/events/node/+/membership/get",
    "SYS/dis/upload_records",
    "+/user/#",
    "$hw/events/device/+/state/update",
    "$hw/events/device/+/twin/+",
};

/// Where `get_result` with resource `auth_info` is published.
[[nodiscard]] inline std::string auth_info_result_topic(std::string_view node_name) {
  std::string topic = "$hw/events/node/";
  topic.append(node_name).append("/authInfo/get/result");
  return topic;
}

}  // namespace ebus::eventbus
