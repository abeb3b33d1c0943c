#pragma once
// bus -> MQTT: what a message addressed to the eventbus module asks for (spec §3.1, current
// era). Parsing is separate from acting so that every malformed input is rejected with a
// reason before anything is published, subscribed or stored.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "bus/message.hpp"
#include "common/expected.hpp"

namespace ebus::eventbus {

namespace operation {
inline constexpr std::string_view subscribe = "subscribe";
inline constexpr std::string_view unsubscribe = "unsubscribe";
inline constexpr std::string_view message = "message";
inline constexpr std::string_view publish = "publish";
inline constexpr std::string_view get_result = "get_result";
/// Extension: a sync request answered with the run-time subscriptions (docs/REMOTE.md).
inline constexpr std::string_view query = "query";
}  // namespace operation

/// The resource of the one query eventbus answers.
inline constexpr std::string_view subscriptions_resource = "subscriptions";

/// Start intercepting `filter` (and subscribe it on the external broker), persistently.
struct subscribe_command {
  std::string filter;
};
/// Stop intercepting `filter`, persistently.
struct unsubscribe_command {
  std::string filter;
};
/// Publish `payload` on `topic` (operations publish, message and get_result).
struct publish_command {
  std::string topic;
  std::string payload;
};

using command = std::variant<subscribe_command, unsubscribe_command, publish_command>;

/// Why a message was not turned into a command.
struct rejection {
  enum class kind : std::uint8_t {
    unknown_operation,  ///< not one of ours (e.g. edgehub's `connect` broadcast to group bus)
    invalid,            ///< one of ours with bad input
  };
  kind type = kind::invalid;
  std::string reason;
};

/// Bounds on what a bus message may ask for, checked before the topic is parsed.
struct command_limits {
  std::size_t max_topic_length = 65535;  ///< bytes of a topic name or filter
  std::size_t max_topic_levels = 128;    ///< levels ('/'-separated parts) of a topic or filter
};

/// Interprets `m`. `node_name` fills the get_result topic. `m` is consumed (content moved out).
/// Topics and filters in the reasons are escaped and cut (printable.hpp).
[[nodiscard]] expected<command, rejection> parse_command(bus::message&& m,
                                                         std::string_view node_name,
                                                         const command_limits& limits = {});

}  // namespace ebus::eventbus
