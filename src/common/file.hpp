#pragma once
// Reading a whole configuration-like file (the config, the password and ACL files) with a size
// bound, so that a wrong path (/dev/zero, a huge log) cannot exhaust memory.

#include <cstddef>
#include <string>

#include "common/expected.hpp"

namespace ebus {

/// The content of the file at `path`. The error names the path: "cannot read '<path>': <reason>"
/// (a directory included) or "'<path>' is larger than <max_bytes> bytes".
[[nodiscard]] expected<std::string, std::string> read_text_file(const std::string& path,
                                                                std::size_t max_bytes);

}  // namespace ebus
