#include "eventbus/routing.hpp"

#include <functional>
#include <string>

#include "bus/message_json.hpp"

namespace ebus::eventbus {
namespace {

/// `topic` equals `prefix` or continues it with '/' (regex `^prefix(/.*)?$`).
bool at_or_under(std::string_view topic, std::string_view prefix) noexcept {
  return topic.starts_with(prefix) &&
         (topic.size() == prefix.size() || topic[prefix.size()] == '/');
}

constexpr std::string_view bus_source = "bus";
constexpr std::string_view user_group = "user";

}  // namespace

std::string_view target_group(std::string_view topic) noexcept {
  if (at_or_under(topic, "$hw/events/device") || at_or_under(topic, "$hw/events/node")) {
    return twin_group;
  }
  return hub_group;
}

namespace {

template <class Resource>
bus::message build(std::string_view topic, std::string_view payload, std::int64_t timestamp_ms,
                   Resource&& twin_resource) {
  bus::message m;
  m.header.id = bus::new_uuid();
  m.header.timestamp = timestamp_ms;
  m.route.source = bus_source;
  m.route.group = user_group;
  if (target_group(topic) == twin_group) {
    m.route.operation = bus::operation::response;
    m.route.resource = twin_resource(topic);
  } else {
    m.route.operation = bus::operation::upload;
    m.route.resource = topic;
  }
  m.content = bus::content::text(std::string(payload));
  return m;
}

}  // namespace

std::string resource_cache::resource_of(std::string_view topic) {
  if (topic.size() > max_topic_bytes) return bus::base64_url(topic);
  slot& s = slots_[std::hash<std::string_view>{}(topic) % slots];
  if (s.topic != topic) {
    s.topic = topic;
    s.resource = bus::base64_url(topic);
  }
  return s.resource;
}

bus::message to_bus_message(std::string_view topic, std::string_view payload,
                            std::int64_t timestamp_ms) {
  return build(topic, payload, timestamp_ms, [](std::string_view t) { return bus::base64_url(t); });
}

bus::message to_bus_message(std::string_view topic, std::string_view payload,
                            std::int64_t timestamp_ms, resource_cache& cache) {
  return build(topic, payload, timestamp_ms,
               [&cache](std::string_view t) { return cache.resource_of(t); });
}

}  // namespace ebus::eventbus
