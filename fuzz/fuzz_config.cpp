// Configuration loader: any input either loads or is refused with at least one reason, each
// with a message; what loads passes validate() again; the loader's own guard never fires.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/config_loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto loaded = ebus::config::parse_config(text);
  if (!loaded) {
    if (loaded.error().empty()) std::abort();
    for (const auto& issue : loaded.error()) {
      if (issue.message.empty()) std::abort();
      if (issue.message.starts_with("internal error")) std::abort();
    }
    return 0;
  }
  if (!ebus::config::validate(loaded->config).empty()) std::abort();
  for (const auto& warning : loaded->warnings) {
    if (warning.message.empty()) std::abort();
  }
  return 0;
}
