#pragma once
// One named spdlog logger per subsystem ("bus", "mqtt.broker", "store", ...), all writing to one
// synchronous stderr sink: no logging thread on a 2-core edge box.

#include <memory>
#include <string_view>

#include <spdlog/spdlog.h>

namespace ebus::log {

/// Returns the logger for `subsystem`, creating it on first use with the global level.
[[nodiscard]] std::shared_ptr<spdlog::logger> get(std::string_view subsystem);

/// Sets the level of every existing and future logger. Accepts spdlog level names
/// (trace, debug, info, warn, error, critical, off); returns false for an unknown name.
bool set_level(std::string_view level);

}  // namespace ebus::log
