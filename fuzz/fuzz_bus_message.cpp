// Beehive message JSON decoder: any input either decodes or is refused with a reason; what
// decodes re-encodes to JSON that decodes to the same message (encode is a fixed point).
// Differential: from_json (the one-pass envelope reader for the common shape, simdjson for other
// well-formed messages) gives exactly what decode_json_tree (a whole nlohmann document, then its
// fields) gives: the message, or the same refusal reason. What the envelope reader takes whole
// is checked on its own too, so that a fallback cannot hide its mistakes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "bus/envelope_reader.hpp"
#include "bus/message_json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto decoded = ebus::bus::from_json(text);

  const auto reference = ebus::bus::decode_json_tree(text);
  ebus::bus::message read;
  std::string_view json_content;
  if (ebus::bus::read_envelope(text, read, json_content) == ebus::bus::envelope::decoded) {
    if (!reference || !(read == *reference)) std::abort();
  }
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
