// Beehive message JSON decoder: any input either decodes or is refused with a reason; what
// decodes re-encodes to JSON that decodes to the same message (encode is a fixed point).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "bus/message_json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto decoded = ebus::bus::from_json(text);
  if (!decoded) {
    if (decoded.error().reason.empty()) std::abort();
    return 0;
  }
  const std::string once = ebus::bus::to_json(*decoded);
  const auto again = ebus::bus::from_json(once);
  if (!again) std::abort();
  if (ebus::bus::to_json(*again) != once) std::abort();
  return 0;
}
