#include "bus/message.hpp"

#include <regex>
#include <set>

#include <gtest/gtest.h>

#include "common/clock.hpp"

namespace ebus::bus {
namespace {

TEST(uuid, is_lowercase_version4_with_rfc4122_variant) {
  const std::regex shape("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  for (int i = 0; i < 1000; ++i) {
    const auto id = new_uuid();
    ASSERT_TRUE(std::regex_match(id, shape)) << id;
  }
}

TEST(uuid, ids_do_not_repeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 100000; ++i)
    ASSERT_TRUE(seen.insert(new_uuid()).second);
}

TEST(new_message, has_fresh_id_parent_and_current_millisecond_timestamp) {
  const auto before = unix_millis();
  const auto m = new_message("parent-1");
  const auto after = unix_millis();
  EXPECT_EQ(m.header.id.size(), 36u);
  EXPECT_EQ(m.header.parent_id, "parent-1");
  EXPECT_GE(m.header.timestamp, before);
  EXPECT_LE(m.header.timestamp, after);
  EXPECT_EQ(m.route, route{});
  EXPECT_TRUE(m.content.is_null());
}

TEST(new_response, copies_source_group_resource_and_type_unswapped) {
  auto req = new_message();
  build_router(req, "twin", "bus", "res", "query");
  req.header.type = "unixpacket";
  req.route.destination = "eventbus";
  const auto resp = new_response(req, content::text("ok"));
  EXPECT_NE(resp.header.id, req.header.id);
  EXPECT_EQ(resp.header.parent_id, req.header.id);
  EXPECT_EQ(resp.header.type, "unixpacket");
  EXPECT_EQ(resp.route.source, "twin");
  EXPECT_EQ(resp.route.group, "bus");
  EXPECT_EQ(resp.route.resource, "res");
  EXPECT_EQ(resp.route.operation, "response");
  EXPECT_TRUE(resp.route.destination.empty());
  EXPECT_EQ(resp.content.bytes(), "ok");
}

TEST(new_error, uses_request_id_as_parent_and_clears_source_and_group) {
  auto req = new_message("grandparent");
  build_router(req, "twin", "bus", "res", "query");
  const auto e = new_error(req, "boom");
  EXPECT_EQ(e.header.parent_id, req.header.id);  // the v1.1 bug used req.parent_id
  EXPECT_EQ(e.route.operation, "error");
  EXPECT_EQ(e.route.resource, "res");
  EXPECT_TRUE(e.route.source.empty());
  EXPECT_TRUE(e.route.group.empty());
  EXPECT_EQ(e.content.type(), content::kind::text);
  EXPECT_EQ(e.content.bytes(), "boom");
}

TEST(clone, keeps_everything_but_the_id) {
  auto m = new_message("p");
  build_router(m, "a", "b", "c", "d");
  m.content = content::binary("\x01\x02");
  const auto c = clone(m);
  EXPECT_NE(c.header.id, m.header.id);
  EXPECT_EQ(c.header.parent_id, "p");
  EXPECT_EQ(c.header.timestamp, m.header.timestamp);
  EXPECT_EQ(c.route, m.route);
  EXPECT_EQ(c.content, m.content);
}

TEST(content, data_follows_get_content_data) {
  EXPECT_EQ(content::text("abc").data(), "abc");
  EXPECT_EQ(content::binary(std::string("\x00\xff", 2)).data(), std::string("\x00\xff", 2));
  EXPECT_EQ(content::json(nlohmann::json{{"b", 1}, {"a", "<"}}).data(), R"({"a":"\u003c","b":1})");
  EXPECT_EQ(content{}.data(), "null");
}

TEST(content, json_string_and_null_normalise_like_go_interface_values) {
  EXPECT_EQ(content::json("x").type(), content::kind::text);
  EXPECT_EQ(content::json(nullptr).type(), content::kind::null);
  EXPECT_EQ(content::json(42).type(), content::kind::json);
}

}  // namespace
}  // namespace ebus::bus
