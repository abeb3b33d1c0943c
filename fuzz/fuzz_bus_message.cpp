// Beehive message JSON decoder: any input either decodes or is refused with a reason; what
// decodes re-encodes to JSON that decodes to the same message (encode is a fixed point).
// Differential: the streaming decoder gives exactly what decoding a whole JSON tree and then
// reading its fields gives (the message, or the same refusal reason).
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bus/message_json.hpp"

namespace {

constexpr int max_depth = 128;

// Reads an optional string member; false (and the reason) when it has another type.
bool read_string(const nlohmann::json& obj, const char* key, std::string& out, std::string& reason,
                 const char* where) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_string()) {
    reason = std::string(where) + "." + key + ": expected a string";
    return false;
  }
  out = it->get<std::string>();
  return true;
}

// The reference: the whole document as a tree, then its fields, checked in field order.
// Returns the message, or the refusal reason in `reason`.
std::optional<ebus::bus::message> reference_decode(std::string_view text, std::string& reason) {
  bool too_deep = false;
  auto doc = nlohmann::json::parse(
      text,
      [&too_deep](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
        if (depth > max_depth) too_deep = true;
        return !too_deep;
      },
      /*allow_exceptions=*/false);
  if (too_deep) {
    reason = "content nested deeper than the limit";
    return std::nullopt;
  }
  if (doc.is_discarded()) {
    reason = "not a valid JSON document";
    return std::nullopt;
  }
  if (!doc.is_object()) {
    reason = "message: expected a JSON object";
    return std::nullopt;
  }
  ebus::bus::message m;
  if (const auto h = doc.find("header"); h != doc.end() && !h->is_null()) {
    if (!h->is_object()) {
      reason = "header: expected an object";
      return std::nullopt;
    }
    if (!read_string(*h, "msg_id", m.header.id, reason, "header") ||
        !read_string(*h, "parent_msg_id", m.header.parent_id, reason, "header") ||
        !read_string(*h, "resourceversion", m.header.resource_version, reason, "header") ||
        !read_string(*h, "type", m.header.type, reason, "header")) {
      return std::nullopt;
    }
    if (const auto ts = h->find("timestamp"); ts != h->end() && !ts->is_null()) {
      if (!ts->is_number_integer()) {
        reason = "header.timestamp: expected an integer (milliseconds)";
        return std::nullopt;
      }
      if (ts->is_number_unsigned() && ts->get<std::uint64_t>() > INT64_MAX) {
        reason = "header.timestamp: out of range";
        return std::nullopt;
      }
      m.header.timestamp = ts->get<std::int64_t>();
    }
    if (const auto s = h->find("sync"); s != h->end() && !s->is_null()) {
      if (!s->is_boolean()) {
        reason = "header.sync: expected a boolean";
        return std::nullopt;
      }
      m.header.sync = s->get<bool>();
    }
  }
  if (const auto r = doc.find("route"); r != doc.end() && !r->is_null()) {
    if (!r->is_object()) {
      reason = "route: expected an object";
      return std::nullopt;
    }
    if (!read_string(*r, "source", m.route.source, reason, "route") ||
        !read_string(*r, "destination", m.route.destination, reason, "route") ||
        !read_string(*r, "group", m.route.group, reason, "route") ||
        !read_string(*r, "operation", m.route.operation, reason, "route") ||
        !read_string(*r, "resource", m.route.resource, reason, "route")) {
      return std::nullopt;
    }
  }
  if (const auto c = doc.find("content"); c != doc.end()) {
    m.content = ebus::bus::content::json(std::move(*c));
  }
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto decoded = ebus::bus::from_json(text);

  std::string reference_reason;
  const auto reference = reference_decode(text, reference_reason);
  if (decoded.has_value() != reference.has_value()) std::abort();
  if (!decoded) {
    if (decoded.error().reason.empty()) std::abort();
    if (decoded.error().reason != reference_reason) std::abort();
    return 0;
  }
  if (!(*decoded == *reference)) std::abort();

  const std::string once = ebus::bus::to_json(*decoded);
  const auto again = ebus::bus::from_json(once);
  if (!again) std::abort();
  if (ebus::bus::to_json(*again) != once) std::abort();
  return 0;
}
