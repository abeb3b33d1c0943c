#pragma once
// The message-level rules of the module sockets (docs/REMOTE.md): registration of a remote
// module, where its messages go, and the reasons written into error messages. No I/O, no bus:
// the bus's registry is passed in as plain data.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "bus/message.hpp"
#include "common/expected.hpp"

namespace ebus::remote {

/// Longest module or group name a remote module may use.
inline constexpr std::size_t max_name_length = 128;

/// Prefix of a `route.destination` that names a group instead of a module (our extension).
inline constexpr std::string_view group_prefix = "group:";

/// A valid registration request: the module to add and the group it joins.
struct registration {
  std::string name;
  std::string group;
  /// The module takes several messages per SEQPACKET packet, one per line (our extension,
  /// `"batch":true` in the content; docs/REMOTE.md#batched-packets).
  bool batch = false;
};

/// True for 1 to max_name_length characters from `A-Za-z0-9._-`.
[[nodiscard]] bool valid_name(std::string_view name) noexcept;

/// Checks that `m` registers a module as beehive's client does: header.sync true, resource
/// "module", operation "add", `route.source` a valid name, content "", null or an object whose
/// optional "group" is "" or a valid name and whose optional "batch" is a boolean. The group
/// defaults to the module's name. The error is the reason written back to the client, e.g. "invalid
/// module name \"a b\"". Whether the name is free is for the caller to check.
[[nodiscard]] expected<registration, std::string> parse_registration(const bus::message& m);

/// Content of the registration response: {"modules":[sorted names],"groups":{group:[sorted
/// members]}}.
[[nodiscard]] nlohmann::json registration_content(
    std::vector<std::string> modules,
    const std::map<std::string, std::vector<std::string>>& groups);

/// Where a message from a remote module goes.
struct destination {
  enum class kind : std::uint8_t { module, group };
  kind type = kind::module;
  std::string name;
};

/// Parses `route.destination`: a module name, or `group:<name>`. Fails with the reason for an
/// empty destination or an empty group name.
[[nodiscard]] expected<destination, std::string> parse_destination(std::string_view text);

/// The content of the error message for a bus error: the bus_errc name ("no_route",
/// "queue_full", "timeout", ...); the error's message for any other category.
[[nodiscard]] std::string error_reason(std::error_code ec);

}  // namespace ebus::remote
