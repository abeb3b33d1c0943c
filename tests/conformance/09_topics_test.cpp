// Topic names and filters on the wire.
//
// Topics starting with '$' are not matched by a filter starting with '#' or '+', neither live
// nor from the retained store, but are matched by a filter that names the '$' level. '#' also
// matches the parent level; '+' matches exactly one level, which may be empty. Matching is exact:
// case, spaces and a leading '/' all count. A PUBLISH whose topic contains a wildcard closes the
// connection, and only that one.
#include <set>

#include <gtest/gtest.h>

#include "conformance.hpp"

namespace ebus::test::conformance {
namespace {

/// Subscribes one client to each filter (client i gets filters[i]), publishes each topic at
/// QoS 1, and returns, per filter, the topics it received.
std::vector<std::set<std::string>> deliveries(const std::vector<std::string>& filters,
                                              const std::vector<std::string>& topics) {
  broker_harness h;
  std::vector<std::unique_ptr<mqtt_peer>> subs;
  for (std::size_t i = 0; i < filters.size(); ++i) {
    subs.push_back(connect_peer(h.port(), "sub" + std::to_string(i)));
    EXPECT_TRUE(subscribed(*subs.back(), filters[i], qos1)) << filters[i];
  }
  auto pub = connect_peer(h.port(), "pub");
  std::uint16_t id = 1;
  for (const auto& t : topics)
    EXPECT_TRUE(published(*pub, make_publish(t, t, qos1, id++))) << t;
  std::vector<std::set<std::string>> out;
  for (auto& s : subs) {
    std::set<std::string> got;
    for (const auto& p : receive_acked(*s, topics.size(), quiet))
      got.insert(p.topic);
    out.push_back(std::move(got));
  }
  return out;
}

using topics_t = std::set<std::string>;

TEST(topics, dollar_topics_are_not_matched_by_a_leading_wildcard) {
  // [MQTT-4.7.2-1]
  const auto got = deliveries({"#", "+/uptime", "+/#", "$SYS/#", "$SYS/+"},
                              {"$SYS/uptime", "$hw/events/upload", "normal/uptime"});
  EXPECT_EQ(got[0], (topics_t{"normal/uptime"}));
  EXPECT_EQ(got[1], (topics_t{"normal/uptime"}));
  EXPECT_EQ(got[2], (topics_t{"normal/uptime"}));
  EXPECT_EQ(got[3], (topics_t{"$SYS/uptime"}));
  EXPECT_EQ(got[4], (topics_t{"$SYS/uptime"}));
}

TEST(topics, retained_dollar_topics_are_not_matched_by_a_leading_wildcard) {
  // [MQTT-4.7.2-1] applies to retained messages sent on subscription too.
  broker_harness h;
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(published(*pub, make_publish("$SYS/version", "1", qos1, 1, true)));
  ASSERT_TRUE(published(*pub, make_publish("plain", "2", qos1, 2, true)));
  auto all = connect_peer(h.port(), "all");
  ASSERT_TRUE(subscribed(*all, "#", qos1));
  const auto got = receive_acked(*all, 2, quiet);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].topic, "plain");
  auto sys = connect_peer(h.port(), "sys");
  ASSERT_TRUE(subscribed(*sys, "$SYS/#", qos1));
  const auto sys_got = receive_acked(*sys, 2, quiet);
  ASSERT_EQ(sys_got.size(), 1U);
  EXPECT_EQ(sys_got[0].topic, "$SYS/version");
}

TEST(topics, hash_matches_the_parent_level_and_every_level_below) {
  // [MQTT-4.7.1-2]
  const auto got = deliveries(
      {"sport/#", "#"}, {"sport", "sport/tennis", "sport/tennis/player1", "sports", "/sport"});
  EXPECT_EQ(got[0], (topics_t{"sport", "sport/tennis", "sport/tennis/player1"}));
  EXPECT_EQ(got[1],
            (topics_t{"sport", "sport/tennis", "sport/tennis/player1", "sports", "/sport"}));
}

TEST(topics, plus_matches_exactly_one_level_including_an_empty_one) {
  // [MQTT-4.7.1-3]; section 4.7.1.3: "+" matches "/finance"'s empty first level, "/+" matches
  // "/finance", and "+/+" matches "/finance" too.
  const auto got = deliveries({"a/+/c", "+", "/+", "+/+", "a/+"},
                              {"a/b/c", "a//c", "a/b/c/d", "a/c", "finance", "/finance", "a/"});
  EXPECT_EQ(got[0], (topics_t{"a/b/c", "a//c"}));
  EXPECT_EQ(got[1], (topics_t{"finance"}));
  EXPECT_EQ(got[2], (topics_t{"/finance"}));
  EXPECT_EQ(got[3], (topics_t{"/finance", "a/c", "a/"}));
  EXPECT_EQ(got[4], (topics_t{"a/c", "a/"}));
}

TEST(topics, matching_is_exact_case_spaces_and_leading_slash_count) {
  // [MQTT-4.7.3-4]: no normalization of names or filters.
  const auto got = deliveries({"Home/Room", "home/room", "home room", "/home/room"},
                              {"Home/Room", "home/room", "home room", "/home/room", "home/room/"});
  EXPECT_EQ(got[0], (topics_t{"Home/Room"}));
  EXPECT_EQ(got[1], (topics_t{"home/room"}));
  EXPECT_EQ(got[2], (topics_t{"home room"}));
  EXPECT_EQ(got[3], (topics_t{"/home/room"}));
}

TEST(topics, publish_with_a_wildcard_in_its_topic_closes_only_that_connection) {
  // [MQTT-3.3.2-2] [MQTT-4.7.1-1]
  for (const std::string topic : {"a/+", "a/#", "+", "#", "a+b"}) {
    SCOPED_TRACE(topic);
    broker_harness h;
    auto observer = connect_peer(h.port(), "observer");
    ASSERT_TRUE(subscribed(*observer, "#", qos0));
    auto bad = connect_peer(h.port(), "bad");
    bad->send(make_publish(topic, "x", qos1, 1));
    EXPECT_FALSE(bad->receive_as<codec::puback>(quiet));
    EXPECT_TRUE(bad->closed_within(close_bound));
    EXPECT_TRUE(round_trip(*observer, "topics/observer"));
  }
}

}  // namespace
}  // namespace ebus::test::conformance
