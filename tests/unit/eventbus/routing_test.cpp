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
  EXPECT_EQ(target_group("$hw/events/"), "hub");
  EXPECT_EQ(target_group("$hw/events"), "hub");
  EXPECT_EQ(target_group("$hw/events/dev"), "hub");
  EXPECT_EQ(target_group("$hw/events/nod/x"), "hub");
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

TEST(routing, the_resource_cache_gives_each_topic_its_own_encoding_whatever_it_holds) {
  resource_cache cache;
  for (const auto& v : twin_vectors) {
    EXPECT_EQ(cache.resource_of(v.topic), v.resource);
    EXPECT_EQ(cache.resource_of(v.topic), v.resource) << "from the cache";
  }
  // Many more topics than slots, so that slots are taken over, in two rounds; and topics too
  // long to be kept, which are encoded every time.
  const std::string long_tail(resource_cache::max_topic_bytes, 'x');
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 1000; ++i) {
      const std::string topic =
          "$hw/events/device/default/dev-" + std::to_string(i) + "/twin/update";
      ASSERT_EQ(cache.resource_of(topic), bus::base64_url(topic)) << topic;
      const std::string long_topic = topic + long_tail;
      ASSERT_EQ(cache.resource_of(long_topic), bus::base64_url(long_topic));
    }
  }
  const auto cached = route_to_bus(twin_vectors[0].topic, "p", 7, cache);
  const auto fresh = to_bus_message(twin_vectors[0].topic, "p", 7);
  EXPECT_EQ(cached.group, twin_group);
  EXPECT_EQ(cached.message.route, fresh.route);
  EXPECT_EQ(cached.message.content, fresh.content);
  EXPECT_EQ(route_to_bus("$hw/events/upload/x", "p", 7, cache).group, hub_group);
}

}  // namespace
}  // namespace ebus::eventbus
