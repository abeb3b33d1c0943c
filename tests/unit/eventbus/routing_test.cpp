// MQTT -> bus messages as KubeEdge builds them (spec §2.4 and its test vectors).
#include "eventbus/routing.hpp"

#include <gtest/gtest.h>

#include "bus/message_json.hpp"

namespace ebus::eventbus {
namespace {

struct vector_case {
  const char* topic;
  const char* resource;
};

// KubeEdge's own vectors: Go base64.URLEncoding of the topic, padded.
constexpr vector_case twin_vectors[] = {
    {"$hw/events/device/default/led1/twin/update",
     "JGh3L2V2ZW50cy9kZXZpY2UvZGVmYXVsdC9sZWQxL3R3aW4vdXBkYXRl"},
    {"$hw/events/device/led1/twin/update", "JGh3L2V2ZW50cy9kZXZpY2UvbGVkMS90d2luL3VwZGF0ZQ=="},
    {"$hw/events/device/default/led1/state/update",
     "JGh3L2V2ZW50cy9kZXZpY2UvZGVmYXVsdC9sZWQxL3N0YXRlL3VwZGF0ZQ=="},
    {"$hw/events/node/edge-node/membership/get",
     "JGh3L2V2ZW50cy9ub2RlL2VkZ2Utbm9kZS9tZW1iZXJzaGlwL2dldA=="},
};

TEST(routing, twin_topics_carry_the_padded_url_safe_base64_topic_and_operation_response) {
  for (const auto& v : twin_vectors) {
    const auto m = to_bus_message(v.topic, R"({"event_id":"1"})", 1700000000123);
    EXPECT_EQ(target_group(v.topic), "twin") << v.topic;
    EXPECT_EQ(m.route.source, "bus");
    EXPECT_EQ(m.route.group, "user");
    EXPECT_EQ(m.route.operation, "response");
    EXPECT_EQ(m.route.resource, v.resource) << v.topic;
    EXPECT_TRUE(m.route.destination.empty());
    EXPECT_EQ(m.content, bus::content::text(R"({"event_id":"1"})"));
  }
}

TEST(routing, other_topics_go_to_hub_with_the_raw_topic_and_operation_upload) {
  for (const char* topic : {"SYS/dis/upload_records", "$hw/events/upload/temp", "default/test",
                            "a/user/b", "$hw/events/devices/x", "$hw/events/nodes"}) {
    const auto m = to_bus_message(topic, "42", 1);
    EXPECT_EQ(target_group(topic), "hub") << topic;
    EXPECT_EQ(m.route.source, "bus");
    EXPECT_EQ(m.route.group, "user");
    EXPECT_EQ(m.route.operation, "upload");
    EXPECT_EQ(m.route.resource, topic);
  }
}

TEST(routing, twin_rule_needs_a_segment_boundary) {
  EXPECT_EQ(target_group("$hw/events/device"), "twin");
  EXPECT_EQ(target_group("$hw/events/node"), "twin");
  EXPECT_EQ(target_group("$hw/events/device/"), "twin");
  EXPECT_EQ(target_group("$hw/events/devicex/a"), "hub");
  EXPECT_EQ(target_group("$hw/events/nodex"), "hub");
  EXPECT_EQ(target_group("x$hw/events/device/a"), "hub");
}

TEST(routing, header_has_a_fresh_uuid_the_given_timestamp_and_no_parent) {
  const auto a = to_bus_message("$hw/events/upload/x", "", 1700000000123);
  const auto b = to_bus_message("$hw/events/upload/x", "", 1700000000123);
  EXPECT_EQ(a.header.id.size(), 36U);
  EXPECT_NE(a.header.id, b.header.id);
  EXPECT_EQ(a.header.timestamp, 1700000000123);
  EXPECT_TRUE(a.header.parent_id.empty());
  EXPECT_FALSE(a.header.sync);
}

TEST(routing, encodes_as_kubeedge_does_with_the_payload_as_a_json_string) {
  auto m = to_bus_message("$hw/events/device/default/led1/twin/update",
                          R"({"twin":{"power":{"actual":{"value":"on"}}}})", 1700000000123);
  m.header.id = "00000000-0000-4000-8000-000000000000";
  EXPECT_EQ(
      bus::to_json(m),
      R"({"header":{"msg_id":"00000000-0000-4000-8000-000000000000","timestamp":1700000000123},)"
      R"("route":{"source":"bus","group":"user","operation":"response",)"
      R"("resource":"JGh3L2V2ZW50cy9kZXZpY2UvZGVmYXVsdC9sZWQxL3R3aW4vdXBkYXRl"},)"
      R"("content":"{\"twin\":{\"power\":{\"actual\":{\"value\":\"on\"}}}}"})");
}

TEST(routing, binary_payload_is_kept_byte_for_byte_as_text_content) {
  const std::string payload("a\0b\xff", 4);
  const auto m = to_bus_message("SYS/dis/upload_records", payload, 1);
  EXPECT_EQ(m.content.type(), bus::content::kind::text);
  EXPECT_EQ(m.content.bytes(), payload);
}

}  // namespace
}  // namespace ebus::eventbus
