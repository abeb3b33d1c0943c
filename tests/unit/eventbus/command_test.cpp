// bus -> MQTT: the operations eventbus accepts and the reasons it rejects (spec §3.1).
#include "eventbus/command.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace ebus::eventbus {
namespace {

bus::message request(std::string operation, std::string resource, bus::content c) {
  bus::message m = bus::new_message();
  bus::build_router(m, "router_eventbus", "user", std::move(resource), std::move(operation));
  m.content = std::move(c);
  return m;
}

template <class T>
T expect_command(bus::message m, std::string_view node = "edge-node") {
  auto c = parse_command(std::move(m), node);
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().reason);
  if (!c) return T{};
  EXPECT_TRUE(std::holds_alternative<T>(*c));
  return std::holds_alternative<T>(*c) ? std::get<T>(std::move(*c)) : T{};
}

rejection expect_rejection(bus::message m) {
  auto c = parse_command(std::move(m), "edge-node");
  EXPECT_FALSE(c.has_value());
  return c ? rejection{} : c.error();
}

TEST(command, subscribe_and_unsubscribe_take_the_resource_as_filter) {
  EXPECT_EQ(expect_command<subscribe_command>(request("subscribe", "default/test", {})).filter,
            "default/test");
  EXPECT_EQ(expect_command<unsubscribe_command>(request("unsubscribe", "a/+/#", {})).filter,
            "a/+/#");
}

TEST(command, subscribe_with_an_invalid_filter_is_rejected_with_the_filter_named) {
  for (const char* bad : {"", "a/#/b", "a+/b", "x#"}) {
    const auto r = expect_rejection(request("subscribe", bad, {}));
    EXPECT_EQ(r.type, rejection::kind::invalid) << bad;
    EXPECT_NE(r.reason.find("topic filter"), std::string::npos) << r.reason;
  }
}

TEST(command, publish_takes_text_or_bytes_as_the_payload) {
  auto p = expect_command<publish_command>(
      request("publish", "$hw/events/device/d/twin/update/result", bus::content::text("{}")));
  EXPECT_EQ(p.topic, "$hw/events/device/d/twin/update/result");
  EXPECT_EQ(p.payload, "{}");
  const std::string bytes("\x00\x01\xfe", 3);
  p = expect_command<publish_command>(request("publish", "t", bus::content::binary(bytes)));
  EXPECT_EQ(p.payload, bytes);
}

TEST(command, publish_rejects_other_content_and_wildcard_topics) {
  auto r = expect_rejection(request("publish", "t", bus::content::json(nlohmann::json{{"a", 1}})));
  EXPECT_EQ(r.type, rejection::kind::invalid);
  EXPECT_NE(r.reason.find("bytes or a string"), std::string::npos) << r.reason;
  r = expect_rejection(request("publish", "t", {}));
  EXPECT_NE(r.reason.find("null"), std::string::npos) << r.reason;
  r = expect_rejection(request("publish", "a/+", bus::content::text("x")));
  EXPECT_NE(r.reason.find("'a/+'"), std::string::npos) << r.reason;
  r = expect_rejection(request("publish", "", bus::content::text("x")));
  EXPECT_EQ(r.type, rejection::kind::invalid);
}

TEST(command, message_publishes_the_inner_object_as_go_json_on_its_topic) {
  const auto content = nlohmann::json::parse(
      R"({"message":{"topic":"dev/cmd","z":1,"a":"<b>","n":{"y":2.5,"x":null}},"other":true})");
  const auto p =
      expect_command<publish_command>(request("message", "", bus::content::json(content)));
  EXPECT_EQ(p.topic, "dev/cmd");
  EXPECT_EQ(p.payload, R"({"a":"\u003cb\u003e","n":{"x":null,"y":2.5},"topic":"dev/cmd","z":1})");
}

TEST(command, message_rejects_each_malformed_shape_with_its_reason) {
  struct bad_case {
    bus::content content;
    const char* reason;
  };
  const bad_case cases[] = {
      {bus::content::text(R"({"message":{"topic":"t"}})"), "must be an object, got a string"},
      {bus::content::json(nlohmann::json::array()), "must be an object"},
      {bus::content::json({{"x", 1}}), "'message' must be an object, got nothing"},
      {bus::content::json({{"message", "t"}}), "'message' must be an object, got a string"},
      {bus::content::json({{"message", {{"a", 1}}}}),
       "message.topic must be a string, got nothing"},
      {bus::content::json({{"message", {{"topic", 5}}}}), "got a number"},
      {bus::content::json({{"message", {{"topic", "a/#"}}}}), "topic 'a/#' is invalid"},
  };
  for (const auto& c : cases) {
    const auto r = expect_rejection(request("message", "", c.content));
    EXPECT_EQ(r.type, rejection::kind::invalid);
    EXPECT_NE(r.reason.find(c.reason), std::string::npos) << r.reason;
  }
}

TEST(command, get_result_for_auth_info_publishes_the_json_of_the_content_to_the_node_topic) {
  auto p = expect_command<publish_command>(
      request("get_result", "auth_info", bus::content::json({{"token", "t1"}, {"a", 1}})), "n1");
  EXPECT_EQ(p.topic, "$hw/events/node/n1/authInfo/get/result");
  EXPECT_EQ(p.payload, R"({"a":1,"token":"t1"})");
  p = expect_command<publish_command>(
      request("get_result", "auth_info", bus::content::text("a\"<")), "n1");
  EXPECT_EQ(p.payload, R"("a\"\u003c")");
  p = expect_command<publish_command>(
      request("get_result", "auth_info", bus::content::binary("hi")), "n1");
  EXPECT_EQ(p.payload, R"("aGk=")");
  p = expect_command<publish_command>(request("get_result", "auth_info", {}), "n1");
  EXPECT_EQ(p.payload, "null");
}

TEST(command, get_result_for_another_resource_is_rejected) {
  const auto r = expect_rejection(request("get_result", "other", bus::content::text("x")));
  EXPECT_EQ(r.type, rejection::kind::invalid);
  EXPECT_NE(r.reason.find("auth_info"), std::string::npos) << r.reason;
}

TEST(command, other_operations_are_reported_as_unknown_not_invalid) {
  for (const char* op : {"connect", "insert", "", "response"}) {
    const auto r = expect_rejection(request(op, "node/connection", bus::content::text("x")));
    EXPECT_EQ(r.type, rejection::kind::unknown_operation) << op;
  }
}

}  // namespace
}  // namespace ebus::eventbus
