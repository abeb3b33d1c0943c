#pragma once
// Reads an edgecore-style YAML file into daemon_config: the current layout
// (`modules.eventBus`, `modules.edged.hostnameOverride`, `database.dataSource`) and the v1.1-era
// layout (`mqtt.*`, `edgehub.controller.node-id`). The file is applied on top of the defaults;
// keys match case-insensitively, as Go's JSON decoding does for edgecore. Validation collects
// every problem with its key path instead of stopping at the first.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
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

/// A file that cannot be used: its errors (the elements) and the warnings found alongside them,
/// so that a misspelt key is shown even when it is what made the file fail.
struct config_errors : std::vector<config_issue> {
  config_errors() = default;
  config_errors(std::vector<config_issue> errors)  // NOLINT(google-explicit-constructor)
      : std::vector<config_issue>(std::move(errors)) {}
  std::vector<config_issue> warnings;
};

/// Parses and validates YAML text. Errors: YAML syntax (path "" with line and column), wrong
/// value types, and every validation failure (see validate()).
expected<loaded_config, config_errors> parse_config(std::string_view yaml);

/// Reads and parses a file; an unreadable file is one error with path "" naming the file.
expected<loaded_config, config_errors> load_config(const std::string& file);

/// The checks applied after parsing: mode and QoS in 0..2, queue sizes > 0, listen / broker URL
/// schemes and ports, TLS files readable when TLS is enabled and the external broker is used,
/// reconnect bounds ordered, module socket paths and limits, the node name an RFC 1123 subdomain
/// (docs/CONFIG.md lists every rule). With the eventbus disabled only the embedded broker runs
/// (broker-only mode): its keys are checked, the routing and external-broker keys are not. Node
/// name, data source, module sockets and group backlog are checked in every case. Paths are
/// those of the current layout; parse_config() reports them as the file spells them. Empty when
/// the configuration is valid.
std::vector<config_issue> validate(const daemon_config& cfg);

/// Why `name` cannot be a node name, as Kubernetes' node name validation (which edgecore applies
/// to hostnameOverride) puts it: it must be a lowercase RFC 1123 subdomain, at most 253
/// characters. nullopt when it can.
std::optional<std::string> node_name_problem(std::string_view name);

/// The node name edgecore derives from a host name: white space around it trimmed, lower-cased,
/// and "default-edge-node" when the result is empty or not a valid node name.
std::string node_name_from_host(std::string_view host);

/// The configuration with no file: defaults plus the node name derived from the host name.
daemon_config default_config();

/// The full default file (`--defaultconfig`): every key with its default and a comment.
std::string default_config_yaml();
/// A minimal file (`--minconfig`): the keys a user usually sets, with `enable: false` as in
/// edgecore's minimal file.
std::string min_config_yaml();

}  // namespace ebus::config
