#include "eventbus/routing.hpp"

#include <cstring>
#include <string>

#include "bus/message_json.hpp"
#include "common/string_hash.hpp"

namespace ebus::eventbus {
namespace {

/// `topic` equals `prefix` or continues it with '/' (regex `^prefix(/.*)?$`). The prefix is a
/// literal, so the comparison is a fixed-size one the compiler inlines (this runs per message).
template <std::size_t N>
bool at_or_under(std::string_view topic, const char (&prefix)[N]) noexcept {
  constexpr std::size_t n = N - 1;
  return topic.size() >= n && std::memcmp(topic.data(), prefix, n) == 0 &&
         (topic.size() == n || topic[n] == '/');
}

constexpr std::string_view bus_source = "bus";
constexpr std::string_view user_group = "user";

bool twin_topic(std::string_view topic) noexcept {
  constexpr std::string_view events = "$hw/events/";
  if (topic.size() <= events.size() ||
      std::memcmp(topic.data(), events.data(), events.size()) != 0) {
    return false;
  }
  const std::string_view rest = topic.substr(events.size());
  return at_or_under(rest, "device") || at_or_under(rest, "node");
}

}  // namespace

std::string_view target_group(std::string_view topic) noexcept {
  return twin_topic(topic) ? twin_group : hub_group;
}

namespace {

template <class Resource>
bus::message build(std::string_view topic, std::string&& payload, std::int64_t timestamp_ms,
                   bool twin, Resource&& twin_resource) {
  // Every member built in place: no default construction and assignment per field.
  return bus::message{
      .header = {.id = bus::new_uuid(),
                 .parent_id = {},
                 .timestamp = timestamp_ms,
                 .resource_version = {},
                 .sync = false,
                 .type = {}},
      .route = {.source = std::string(bus_source),
                .destination = {},
                .group = std::string(user_group),
                .operation = std::string(twin ? bus::operation::response : bus::operation::upload),
                .resource = twin ? twin_resource(topic) : std::string(topic)},
      .content = bus::content::text(std::move(payload))};
}

}  // namespace

std::string resource_cache::resource_of(std::string_view topic) {
  if (topic.size() > max_topic_bytes) return bus::base64_url(topic);
  // Seeded per process: a client cannot pick topics that all fall into one slot.
  slot& s = slots_[string_hash{}(topic) % slots];
  if (s.topic != topic) {
    s.topic = topic;
    s.resource = bus::base64_url(topic);
  }
  return s.resource;
}

bus::message to_bus_message(std::string_view topic, std::string_view payload,
                            std::int64_t timestamp_ms) {
  return build(topic, std::string(payload), timestamp_ms, twin_topic(topic),
               [](std::string_view t) { return bus::base64_url(t); });
}

routed_message route_to_bus(std::string_view topic, std::string payload, std::int64_t timestamp_ms,
                            resource_cache& cache) {
  const bool twin = twin_topic(topic);
  return {.group = twin ? twin_group : hub_group,
          .message = build(topic, std::move(payload), timestamp_ms, twin,
                           [&cache](std::string_view t) { return cache.resource_of(t); })};
}

}  // namespace ebus::eventbus
