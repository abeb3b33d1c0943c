#pragma once
// Reads an edgecore-style YAML file into daemon_config: the current layout
// (`modules.eventBus`, `modules.edged.hostnameOverride`, `database.dataSource`) and the v1.1-era
// layout (`mqtt.*`, `edgehub.controller.node-id`). The file is applied on top of the defaults;
// keys match case-insensitively, as Go's JSON decoding does for edgecore. Validation collects
// every problem with its key path instead of stopping at the first.

#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"
#include "config/config.hpp"

namespace ebus::config {

/// One problem with a key: `path` is the dotted key path as written in the file
/// (e.g. "modules.eventBus.mqttMode"), `message` says what is wrong and what is accepted.
struct config_issue {
  std::string path;
  std::string message;

  friend bool operator==(const config_issue&, const config_issue&) = default;
};

struct loaded_config {
  daemon_config config;
  std::vector<config_issue> warnings;  ///< unknown keys, ignored or deprecated keys
};

/// Parses and validates YAML text. Errors: YAML syntax (path "" with line and column), wrong
/// value types, and every validation failure (see validate()).
expected<loaded_config, std::vector<config_issue>> parse_config(std::string_view yaml);

/// Reads and parses a file; an unreadable file is one error with path "" naming the file.
expected<loaded_config, std::vector<config_issue>> load_config(const std::string& file);

/// The checks applied after parsing: mode and QoS in 0..2, queue sizes > 0, listen / broker URL
/// schemes and ports, TLS files readable when TLS is enabled and the external broker is used,
/// reconnect bounds ordered, module socket paths and limits (docs/CONFIG.md lists every rule).
/// A disabled eventbus is not checked, except node name, data source, module sockets and group
/// backlog (they serve the bus, which runs regardless). Paths are those of the current layout;
/// parse_config() reports them as the file spells them. Empty when the configuration is valid.
std::vector<config_issue> validate(const daemon_config& cfg);

/// The configuration with no file: defaults plus the host name as node name.
daemon_config default_config();

/// The full default file (`--defaultconfig`): every key with its default and a comment.
std::string default_config_yaml();
/// A minimal file (`--minconfig`): the keys a user usually sets.
std::string min_config_yaml();

}  // namespace ebus::config
