// Beehive message JSON decoder: any input either decodes or is refused with a reason; what
// decodes re-encodes to JSON that decodes to the same message (encode is a fixed point).
// Differential: from_json (simdjson for well-formed messages) gives exactly what
// decode_json_tree (a whole nlohmann document, then its fields) gives: the message, or the same
// refusal reason.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "bus/message_json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto decoded = ebus::bus::from_json(text);

  const auto reference = ebus::bus::decode_json_tree(text);
  if (decoded.has_value() != reference.has_value()) std::abort();
  if (!decoded) {
    if (decoded.error().reason.empty()) std::abort();
    if (decoded.error().reason != reference.error().reason) std::abort();
    return 0;
  }
  if (!(*decoded == *reference)) std::abort();

  const std::string once = ebus::bus::to_json(*decoded);
  const auto again = ebus::bus::from_json(once);
  if (!again) std::abort();
  if (ebus::bus::to_json(*again) != once) std::abort();
  return 0;
}
