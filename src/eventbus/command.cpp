#include "eventbus/command.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "bus/message_json.hpp"
#include "common/log.hpp"
#include "eventbus/topics.hpp"
#include "mqtt/topic/topic.hpp"

namespace ebus::eventbus {
namespace {

constexpr std::string_view auth_info_resource = "auth_info";

auto invalid(std::string reason) {
  return fail(rejection{rejection::kind::invalid, std::move(reason)});
}

std::string_view kind_name(bus::content::kind k) {
  switch (k) {
    case bus::content::kind::null:
      return "null";
    case bus::content::kind::text:
      return "a string";
    case bus::content::kind::binary:
      return "bytes";
    case bus::content::kind::json:
      break;
  }
  return "a JSON value";
}

std::string_view json_type(const nlohmann::json& v) {
  if (v.is_object()) return "an object";
  if (v.is_array()) return "an array";
  if (v.is_string()) return "a string";
  if (v.is_number()) return "a number";
  if (v.is_boolean()) return "a boolean";
  return "null";
}

// Length and levels first: a huge topic is refused before anything walks it.
expected<void, rejection> check_bounds(std::string_view what, std::string_view topic,
                                       const command_limits& limits) {
  if (topic.size() > limits.max_topic_length) {
    return invalid(fmt::format("{} '{}' is too long: {} bytes, the limit is {}", what,
                               log::escape(topic), topic.size(), limits.max_topic_length));
  }
  const auto levels = static_cast<std::size_t>(std::count(topic.begin(), topic.end(), '/')) + 1;
  if (levels > limits.max_topic_levels) {
    return invalid(fmt::format("{} '{}' has too many levels: {}, the limit is {}", what,
                               log::escape(topic), levels, limits.max_topic_levels));
  }
  return {};
}

expected<command, rejection> parse_filter_command(bus::message& m, bool subscribe,
                                                  const command_limits& limits) {
  std::string& filter = m.route.resource;
  if (auto ok = check_bounds("topic filter", filter, limits); !ok) {
    return fail(std::move(ok.error()));
  }
  if (auto parsed = mqtt::topic::parse_filter(filter); !parsed) {
    return invalid(fmt::format("topic filter '{}' is invalid: {}", log::escape(filter),
                               parsed.error().message()));
  }
  if (subscribe) return subscribe_command{std::move(filter)};
  return unsubscribe_command{std::move(filter)};
}

expected<void, rejection> check_topic_name(std::string_view topic, const command_limits& limits) {
  if (auto ok = check_bounds("topic", topic, limits); !ok) return fail(std::move(ok.error()));
  if (auto parsed = mqtt::topic::parse_name(topic); !parsed) {
    return invalid(
        fmt::format("topic '{}' is invalid: {}", log::escape(topic), parsed.error().message()));
  }
  return {};
}

expected<command, rejection> parse_publish(bus::message& m, const command_limits& limits) {
  const auto k = m.content.type();
  if (k != bus::content::kind::text && k != bus::content::kind::binary) {
    return invalid(fmt::format("publish content must be bytes or a string, got {}", kind_name(k)));
  }
  if (auto ok = check_topic_name(m.route.resource, limits); !ok) {
    return fail(std::move(ok.error()));
  }
  return publish_command{std::move(m.route.resource), m.content.bytes()};
}

// Content {"message": {"topic": "...", ...}}: the inner object is published as JSON, encoded
// as Go encodes a map (sorted keys), on its own topic.
expected<command, rejection> parse_message(const bus::message& m, const command_limits& limits) {
  if (m.content.type() != bus::content::kind::json || !m.content.json_value().is_object()) {
    return invalid(
        fmt::format("message content must be an object, got {}", kind_name(m.content.type())));
  }
  const auto& outer = m.content.json_value();
  const auto body = outer.find("message");
  if (body == outer.end() || !body->is_object()) {
    return invalid(fmt::format("message content key 'message' must be an object, got {}",
                               body == outer.end() ? "nothing" : json_type(*body)));
  }
  const auto topic = body->find("topic");
  if (topic == body->end() || !topic->is_string()) {
    return invalid(fmt::format("message.topic must be a string, got {}",
                               topic == body->end() ? "nothing" : json_type(*topic)));
  }
  const auto& name = topic->get_ref<const std::string&>();
  if (auto ok = check_topic_name(name, limits); !ok) return fail(std::move(ok.error()));
  publish_command out{name, {}};
  bus::append_go_json(out.payload, *body);
  return out;
}

// The content is published as its JSON encoding: a string becomes a quoted JSON string, bytes a
// quoted base64 string (Go's json.Marshal of the content value).
expected<command, rejection> parse_get_result(const bus::message& m, std::string_view node_name) {
  if (m.route.resource != auth_info_resource) {
    return invalid(fmt::format("get_result resource must be 'auth_info', got '{}'",
                               log::escape(m.route.resource)));
  }
  publish_command out{auth_info_result_topic(node_name), {}};
  switch (m.content.type()) {
    case bus::content::kind::null:
      out.payload = "null";
      break;
    case bus::content::kind::text:
      bus::append_go_string(out.payload, m.content.bytes());
      break;
    case bus::content::kind::binary:
      out.payload.push_back('"');
      bus::append_base64(out.payload, m.content.bytes());
      out.payload.push_back('"');
      break;
    case bus::content::kind::json:
      bus::append_go_json(out.payload, m.content.json_value());
      break;
  }
  return out;
}

}  // namespace

expected<command, rejection> parse_command(bus::message&& m, std::string_view node_name,
                                           const command_limits& limits) {
  const std::string_view op = m.route.operation;
  if (op == operation::subscribe) return parse_filter_command(m, true, limits);
  if (op == operation::unsubscribe) return parse_filter_command(m, false, limits);
  if (op == operation::publish) return parse_publish(m, limits);
  if (op == operation::message) return parse_message(m, limits);
  if (op == operation::get_result) return parse_get_result(m, node_name);
  return fail(rejection{rejection::kind::unknown_operation,
                        fmt::format("operation '{}' is not handled by eventbus", log::escape(op))});
}

}  // namespace ebus::eventbus
