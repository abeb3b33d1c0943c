#include "mqtt/topic/subscription_tree.hpp"

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace ebus::mqtt::topic {
namespace {

using tree = subscription_tree<int, int>;

topic_filter filter(std::string_view text) {
  auto parsed = parse_filter(text);
  EXPECT_TRUE(parsed) << text;
  return std::move(parsed).value();
}

/// (key, filter, value) of every visited subscription, sorted.
using hit = std::tuple<int, std::string, int>;
std::vector<hit> hits(const tree& t, std::string_view name) {
  std::vector<hit> out;
  t.match(name, [&](const int& key, const int& value, const topic_filter& f) {
    out.emplace_back(key, f.str(), value);
  });
  std::sort(out.begin(), out.end());
  return out;
}

/// The filters that matched, sorted.
std::vector<std::string> matched_filters(const tree& t, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& [key, f, value] : hits(t, name)) {
    out.push_back(f);
  }
  std::sort(out.begin(), out.end());
  return out;
}

using strings = std::vector<std::string>;

TEST(subscription_tree, starts_empty_and_matches_nothing) {
  const tree t;
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.size(), 0U);
  EXPECT_TRUE(hits(t, "a").empty());
  EXPECT_TRUE(hits(t, "$SYS/x").empty());
}

TEST(subscription_tree, literal_filter_matches_only_its_own_name) {
  tree t;
  EXPECT_TRUE(t.insert(filter("a/b/c"), 1, 10));
  EXPECT_EQ(hits(t, "a/b/c"), (std::vector<hit>{{1, "a/b/c", 10}}));
  EXPECT_TRUE(hits(t, "a/b").empty());
  EXPECT_TRUE(hits(t, "a/b/c/d").empty());
  EXPECT_TRUE(hits(t, "a/b/c/").empty());
  EXPECT_TRUE(hits(t, "a/b/x").empty());
}

TEST(subscription_tree, plus_matches_exactly_one_level_including_an_empty_one) {
  // [MQTT-4.7.1-3]
  tree t;
  t.insert(filter("a/+/c"), 1, 0);
  EXPECT_EQ(matched_filters(t, "a/b/c"), strings{"a/+/c"});
  EXPECT_EQ(matched_filters(t, "a//c"), strings{"a/+/c"});
  EXPECT_TRUE(hits(t, "a/c").empty());
  EXPECT_TRUE(hits(t, "a/b/b/c").empty());
}

TEST(subscription_tree, trailing_plus_does_not_match_the_parent_level) {
  tree t;
  t.insert(filter("a/+"), 1, 0);
  EXPECT_TRUE(hits(t, "a").empty());
  EXPECT_EQ(matched_filters(t, "a/"), strings{"a/+"});
}

TEST(subscription_tree, hash_matches_the_parent_level_and_all_below) {
  // [MQTT-4.7.1-2] "a/#" matches "a" as well as "a/b" and "a/b/c"
  tree t;
  t.insert(filter("a/#"), 1, 0);
  for (const std::string_view name : {"a", "a/", "a/b", "a/b/c", "a//"}) {
    EXPECT_EQ(matched_filters(t, name), strings{"a/#"}) << name;
  }
  EXPECT_TRUE(hits(t, "b").empty());
  EXPECT_TRUE(hits(t, "ab").empty());
  EXPECT_TRUE(hits(t, "/a").empty());
}

TEST(subscription_tree, hash_alone_matches_every_name_without_a_dollar) {
  tree t;
  t.insert(filter("#"), 1, 0);
  for (const std::string_view name : {"a", "/", "a/b/c", "//", "a/$b"}) {
    EXPECT_EQ(matched_filters(t, name), strings{"#"}) << name;
  }
}

TEST(subscription_tree, empty_levels_are_levels) {
  tree t;
  t.insert(filter("a//b"), 1, 0);
  t.insert(filter("/a"), 2, 0);
  t.insert(filter("/"), 3, 0);
  t.insert(filter("/#"), 4, 0);
  EXPECT_EQ(matched_filters(t, "a//b"), strings{"a//b"});
  EXPECT_TRUE(hits(t, "a/b").empty());
  EXPECT_EQ(matched_filters(t, "/a"), (strings{"/#", "/a"}));
  EXPECT_TRUE(hits(t, "a").empty());
  EXPECT_EQ(matched_filters(t, "/"), (strings{"/", "/#"}));
}

TEST(subscription_tree, hash_at_root_does_not_match_dollar_topics) {
  // [MQTT-4.7.2-1]
  tree t;
  t.insert(filter("#"), 1, 0);
  EXPECT_TRUE(hits(t, "$SYS").empty());
  EXPECT_TRUE(hits(t, "$SYS/broker/uptime").empty());
  EXPECT_TRUE(hits(t, "$").empty());
}

TEST(subscription_tree, plus_at_root_does_not_match_dollar_topics) {
  // [MQTT-4.7.2-1]
  tree t;
  t.insert(filter("+/monitor/Clients"), 1, 0);
  t.insert(filter("+"), 2, 0);
  t.insert(filter("+/#"), 3, 0);
  EXPECT_TRUE(hits(t, "$SYS/monitor/Clients").empty());
  EXPECT_TRUE(hits(t, "$SYS").empty());
  EXPECT_EQ(matched_filters(t, "x/monitor/Clients"), (strings{"+/#", "+/monitor/Clients"}));
}

TEST(subscription_tree, dollar_topics_match_filters_that_start_with_the_same_literal) {
  // [MQTT-4.7.2-1] only wildcards in the first level are excluded
  tree t;
  t.insert(filter("$SYS/#"), 1, 0);
  t.insert(filter("$SYS/monitor/+"), 2, 0);
  t.insert(filter("$hw/events/device/+/+/twin/+"), 3, 0);
  EXPECT_EQ(matched_filters(t, "$SYS/monitor/Clients"), (strings{"$SYS/#", "$SYS/monitor/+"}));
  EXPECT_EQ(matched_filters(t, "$SYS"), strings{"$SYS/#"});
  EXPECT_EQ(matched_filters(t, "$hw/events/device/default/dev1/twin/update"),
            strings{"$hw/events/device/+/+/twin/+"});
}

TEST(subscription_tree, dollar_below_the_first_level_is_ordinary) {
  tree t;
  t.insert(filter("+/$x"), 1, 0);
  t.insert(filter("a/+"), 2, 0);
  t.insert(filter("#"), 3, 0);
  EXPECT_EQ(matched_filters(t, "a/$x"), (strings{"#", "+/$x", "a/+"}));
  EXPECT_EQ(matched_filters(t, "/$x"), (strings{"#", "+/$x"}));
}

TEST(subscription_tree, overlapping_filters_visit_a_key_once_per_filter) {
  // [MQTT-3.3.5-1] the broker sees every matching subscription and chooses what to deliver
  tree t;
  t.insert(filter("a/b"), 1, 0);
  t.insert(filter("a/+"), 1, 1);
  t.insert(filter("a/#"), 1, 2);
  t.insert(filter("#"), 1, 1);
  t.insert(filter("+/+"), 2, 0);
  EXPECT_EQ(
      hits(t, "a/b"),
      (std::vector<hit>{{1, "#", 1}, {1, "a/#", 2}, {1, "a/+", 1}, {1, "a/b", 0}, {2, "+/+", 0}}));
  EXPECT_EQ(t.size(), 5U);
}

TEST(subscription_tree, several_keys_share_one_filter) {
  tree t;
  EXPECT_TRUE(t.insert(filter("a/+"), 1, 0));
  EXPECT_TRUE(t.insert(filter("a/+"), 2, 1));
  EXPECT_TRUE(t.insert(filter("a/+"), 3, 2));
  EXPECT_EQ(hits(t, "a/x"), (std::vector<hit>{{1, "a/+", 0}, {2, "a/+", 1}, {3, "a/+", 2}}));
  EXPECT_EQ(t.size(), 3U);
}

TEST(subscription_tree, reinsert_replaces_the_value) {
  // [MQTT-3.8.4-3] a SUBSCRIBE with an existing filter replaces that subscription
  tree t;
  EXPECT_TRUE(t.insert(filter("a/#"), 1, 0));
  EXPECT_FALSE(t.insert(filter("a/#"), 1, 2));
  EXPECT_EQ(t.size(), 1U);
  EXPECT_EQ(hits(t, "a/b"), (std::vector<hit>{{1, "a/#", 2}}));
}

TEST(subscription_tree, erase_removes_only_that_key_and_filter) {
  // [MQTT-3.10.4-1] the filter is compared character by character, wildcards included
  tree t;
  t.insert(filter("a/+"), 1, 0);
  t.insert(filter("a/+"), 2, 0);
  t.insert(filter("a/b"), 1, 0);
  t.insert(filter("a/#"), 1, 0);
  EXPECT_TRUE(t.erase(filter("a/+"), 1));
  EXPECT_EQ(hits(t, "a/b"), (std::vector<hit>{{1, "a/#", 0}, {1, "a/b", 0}, {2, "a/+", 0}}));
  EXPECT_EQ(t.size(), 3U);
}

TEST(subscription_tree, erase_of_an_unknown_subscription_returns_false) {
  tree t;
  t.insert(filter("a/b"), 1, 0);
  t.insert(filter("a/#"), 1, 0);
  EXPECT_FALSE(t.erase(filter("a/b"), 2));    // other key
  EXPECT_FALSE(t.erase(filter("a/+"), 1));    // filter that matches, but is not the same
  EXPECT_FALSE(t.erase(filter("a"), 1));      // prefix of a subscribed filter
  EXPECT_FALSE(t.erase(filter("a/b/c"), 1));  // deeper than any node
  EXPECT_FALSE(t.erase(filter("#"), 1));
  EXPECT_FALSE(t.erase(filter("x/#"), 1));
  EXPECT_EQ(t.size(), 2U);
  EXPECT_TRUE(t.erase(filter("a/b"), 1));
  EXPECT_FALSE(t.erase(filter("a/b"), 1));  // already gone
  EXPECT_EQ(t.size(), 1U);
}

TEST(subscription_tree, erase_prunes_empty_nodes_but_keeps_shared_ones) {
  tree t;
  t.insert(filter("a/b/c/d"), 1, 0);
  t.insert(filter("a/b"), 2, 0);
  t.insert(filter("a/+/c/#"), 3, 0);
  EXPECT_EQ(t.node_count(), 6U);  // a, a/b, a/b/c, a/b/c/d, a/+, a/+/c
  EXPECT_TRUE(t.erase(filter("a/b/c/d"), 1));
  EXPECT_EQ(t.node_count(), 4U);  // "a/b" still needs a and a/b; the '+' branch is untouched
  EXPECT_EQ(matched_filters(t, "a/b"), strings{"a/b"});
  EXPECT_EQ(matched_filters(t, "a/b/c/d"), strings{"a/+/c/#"});
  EXPECT_TRUE(t.erase(filter("a/+/c/#"), 3));
  EXPECT_EQ(t.node_count(), 2U);
  EXPECT_TRUE(t.erase(filter("a/b"), 2));
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.node_count(), 0U);
  EXPECT_TRUE(hits(t, "a/b").empty());
  EXPECT_TRUE(hits(t, "a/b/c/d").empty());
}

TEST(subscription_tree, pruned_branches_can_be_subscribed_again) {
  tree t;
  for (int round = 0; round < 3; ++round) {
    EXPECT_TRUE(t.insert(filter("x/+/y/#"), 1, round));
    EXPECT_TRUE(t.insert(filter("x/a/y"), 2, round));
    EXPECT_EQ(hits(t, "x/a/y"), (std::vector<hit>{{1, "x/+/y/#", round}, {2, "x/a/y", round}}));
    EXPECT_TRUE(t.erase(filter("x/a/y"), 2));
    EXPECT_TRUE(t.erase(filter("x/+/y/#"), 1));
    EXPECT_TRUE(t.empty());
    EXPECT_EQ(t.node_count(), 0U);
  }
}

TEST(subscription_tree, hash_and_exact_at_the_same_node_are_separate) {
  tree t;
  t.insert(filter("a"), 1, 0);
  t.insert(filter("a/#"), 1, 0);
  EXPECT_EQ(matched_filters(t, "a"), (strings{"a", "a/#"}));
  EXPECT_TRUE(t.erase(filter("a/#"), 1));
  EXPECT_EQ(t.node_count(), 1U);
  EXPECT_EQ(matched_filters(t, "a"), strings{"a"});
  EXPECT_TRUE(hits(t, "a/b").empty());
}

TEST(subscription_tree, kubeedge_default_subscriptions) {
  // The fixed interest list of the KubeEdge eventbus.
  tree t;
  t.insert(filter("$hw/events/upload/#"), 1, 0);
  t.insert(filter("$hw/events/device/+/+/state/update"), 2, 0);
  t.insert(filter("$hw/events/device/+/+/twin/+"), 3, 0);
  t.insert(filter("$hw/events/node/+/membership/get"), 4, 0);
  t.insert(filter("SYS/dis/upload_records"), 5, 0);
  t.insert(filter("+/user/#"), 6, 0);
  EXPECT_EQ(matched_filters(t, "$hw/events/upload"), strings{"$hw/events/upload/#"});
  EXPECT_EQ(matched_filters(t, "$hw/events/device/default/dev1/twin/update"),
            strings{"$hw/events/device/+/+/twin/+"});
  EXPECT_TRUE(hits(t, "$hw/events/device/default/dev1/twin/update/result").empty());
  EXPECT_EQ(matched_filters(t, "$hw/events/node/n1/membership/get"),
            strings{"$hw/events/node/+/membership/get"});
  EXPECT_EQ(matched_filters(t, "SYS/dis/upload_records"), strings{"SYS/dis/upload_records"});
  EXPECT_EQ(matched_filters(t, "a/user/b/c"), strings{"+/user/#"});
  EXPECT_TRUE(hits(t, "$hw/user/x").empty());  // [MQTT-4.7.2-1]; KubeEdge's own tree differs
}

TEST(subscription_tree, works_with_string_keys_and_move_only_values) {
  subscription_tree<std::string, std::unique_ptr<int>> t;
  EXPECT_TRUE(t.insert(filter("a/+"), "client-1", std::make_unique<int>(1)));
  EXPECT_FALSE(t.insert(filter("a/+"), "client-1", std::make_unique<int>(2)));
  int seen = 0;
  t.match("a/b",
          [&](const std::string& key, const std::unique_ptr<int>& value, const topic_filter& f) {
            EXPECT_EQ(key, "client-1");
            EXPECT_EQ(f.str(), "a/+");
            seen = *value;
          });
  EXPECT_EQ(seen, 2);
  EXPECT_TRUE(t.erase(filter("a/+"), std::string("client-1")));
}

TEST(subscription_tree, move_transfers_all_subscriptions) {
  tree a;
  a.insert(filter("a/#"), 1, 0);
  a.insert(filter("b"), 2, 0);
  tree b(std::move(a));
  EXPECT_EQ(b.size(), 2U);
  EXPECT_EQ(matched_filters(b, "a/x"), strings{"a/#"});
  tree c;
  c.insert(filter("c"), 3, 0);
  c = std::move(b);
  EXPECT_EQ(c.size(), 2U);
  EXPECT_EQ(matched_filters(c, "b"), strings{"b"});
  EXPECT_TRUE(hits(c, "c").empty());
}

TEST(subscription_tree, deepest_filters_need_no_recursion) {
  // 65,535 bytes of '/' are 65,536 empty levels; match, erase and destruction are iterative.
  const std::string slashes(max_topic_length, '/');
  std::string pluses = "+";
  while (pluses.size() + 2 <= max_topic_length)
    pluses += "/+";
  tree t;
  t.insert(filter(slashes), 1, 0);
  t.insert(filter(pluses), 2, 0);
  t.insert(filter(slashes.substr(1) + "#"), 3, 0);
  EXPECT_EQ(matched_filters(t, slashes), (strings{slashes.substr(1) + "#", slashes}));
  const std::string as = [&] {
    std::string s(pluses);
    std::replace(s.begin(), s.end(), '+', 'a');
    return s;
  }();
  EXPECT_EQ(matched_filters(t, as), strings{pluses});
  EXPECT_EQ(t.node_count(), 65536U + 32768U);
  EXPECT_TRUE(t.erase(filter(slashes), 1));
  EXPECT_EQ(t.size(), 2U);
  EXPECT_EQ(t.node_count(), 65534U + 32768U);  // the '#' filter keeps 65,534 of the '/' nodes
}

TEST(subscription_tree, many_pending_plus_branches_are_all_followed) {
  // Every node on the path of "a/a/.../a" has a '+' child, so the walk has up to 100 '+'
  // branches pending at once, more than fit in its inline stack.
  tree t;
  std::string name = "a";
  for (int i = 1; i < 100; ++i) {
    name += "/a";
  }
  t.insert(filter(name), 1, 0);
  t.insert(filter("+/#"), 2, 0);
  for (std::size_t levels = 1; levels < 100; ++levels) {
    t.insert(filter(name.substr(0, levels * 2 - 1) + "/+/#"), 3, static_cast<int>(levels));
  }
  const auto found = hits(t, name);
  EXPECT_EQ(found.size(), 101U);
  EXPECT_EQ(
      std::count_if(found.begin(), found.end(), [](const hit& h) { return std::get<0>(h) == 3; }),
      99);
}

}  // namespace
}  // namespace ebus::mqtt::topic
