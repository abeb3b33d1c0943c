#pragma once
// One named spdlog logger per subsystem ("bus", "mqtt.broker", "store", ...), all writing to one
// synchronous stderr sink: no logging thread on a 2-core edge box.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace ebus::log {

/// Returns the logger for `subsystem`, creating it on first use with the global level.
[[nodiscard]] std::shared_ptr<spdlog::logger> get(std::string_view subsystem);

/// Sets the level of every existing and future logger. Accepts spdlog level names
/// (trace, debug, info, warn, error, critical, off); returns false for an unknown name.
bool set_level(std::string_view level);

/// A client-supplied string made safe for one log line: control bytes, quotes, backslashes and
/// bytes >= 0x7f are written as \n, \", \\ or \xNN, and the text is cut after `max_bytes`
/// input bytes with a note of the full length, so a hostile client id or topic can neither forge
/// a line nor flood the log.
[[nodiscard]] std::string escape(std::string_view text, std::size_t max_bytes = 256);

}  // namespace ebus::log
