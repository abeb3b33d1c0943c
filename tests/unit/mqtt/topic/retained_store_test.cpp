#include "mqtt/topic/retained_store.hpp"

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace ebus::mqtt::topic {
namespace {

using store = retained_store<int>;
using strings = std::vector<std::string>;

topic_name name(std::string_view text) {
  auto parsed = parse_name(text);
  EXPECT_TRUE(parsed) << text;
  return std::move(parsed).value();
}

topic_filter filter(std::string_view text) {
  auto parsed = parse_filter(text);
  EXPECT_TRUE(parsed) << text;
  return std::move(parsed).value();
}

/// The names `filter_text` matches, sorted.
strings matched(const store& s, std::string_view filter_text) {
  strings out;
  s.match(filter(filter_text), [&](const topic_name& n, const int&) { out.push_back(n.str()); });
  std::sort(out.begin(), out.end());
  return out;
}

store with(std::initializer_list<std::string_view> names) {
  store s;
  int value = 0;
  for (const std::string_view n : names) {
    s.store(name(n), value++);
  }
  return s;
}

TEST(retained_store, store_find_replace_and_erase) {
  // [MQTT-3.3.1-5] one retained message per topic name; a new one replaces the old
  store s;
  EXPECT_TRUE(s.store(name("a/b"), 1));
  EXPECT_FALSE(s.store(name("a/b"), 2));
  EXPECT_EQ(s.size(), 1U);
  ASSERT_NE(s.find("a/b"), nullptr);
  EXPECT_EQ(*s.find("a/b"), 2);
  EXPECT_EQ(s.find("a"), nullptr);
  EXPECT_EQ(s.find("a/b/c"), nullptr);
  // [MQTT-3.3.1-10] a retained PUBLISH with an empty payload removes it
  EXPECT_TRUE(s.erase("a/b"));
  EXPECT_FALSE(s.erase("a/b"));
  EXPECT_EQ(s.find("a/b"), nullptr);
  EXPECT_TRUE(s.empty());
}

TEST(retained_store, erase_of_an_unknown_name_returns_false) {
  store s = with({"a/b/c"});
  EXPECT_FALSE(s.erase("a/b"));  // an inner node, no value
  EXPECT_FALSE(s.erase("a/b/c/d"));
  EXPECT_FALSE(s.erase("x"));
  EXPECT_EQ(s.size(), 1U);
}

TEST(retained_store, erase_prunes_empty_nodes_but_keeps_shared_ones) {
  store s = with({"a/b/c", "a", "a/x"});
  EXPECT_EQ(s.node_count(), 4U);  // a, a/b, a/b/c, a/x
  EXPECT_TRUE(s.erase("a/b/c"));
  EXPECT_EQ(s.node_count(), 2U);
  EXPECT_EQ(matched(s, "#"), (strings{"a", "a/x"}));
  EXPECT_EQ(matched(s, "a/+/+"), strings{});
  EXPECT_TRUE(s.erase("a"));
  EXPECT_EQ(s.node_count(), 2U);  // "a/x" still needs "a"
  EXPECT_EQ(matched(s, "a/#"), strings{"a/x"});
  EXPECT_TRUE(s.erase("a/x"));
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.node_count(), 0U);
  EXPECT_EQ(matched(s, "#"), strings{});
  EXPECT_TRUE(s.store(name("a/b/c"), 1));  // the pruned path can be rebuilt
  EXPECT_EQ(matched(s, "a/b/c"), strings{"a/b/c"});
}

TEST(retained_store, literal_filter_finds_only_its_name) {
  const store s = with({"a/b", "a/b/c", "a", "a//b"});
  EXPECT_EQ(matched(s, "a/b"), strings{"a/b"});
  EXPECT_EQ(matched(s, "a//b"), strings{"a//b"});
  EXPECT_EQ(matched(s, "a/c"), strings{});
}

TEST(retained_store, plus_finds_exactly_one_level_including_an_empty_one) {
  const store s = with({"a/b", "a/", "a", "a/b/c", "a//c", "b/x"});
  EXPECT_EQ(matched(s, "a/+"), (strings{"a/", "a/b"}));
  EXPECT_EQ(matched(s, "+/+/c"), (strings{"a//c", "a/b/c"}));
  EXPECT_EQ(matched(s, "+"), strings{"a"});
}

TEST(retained_store, hash_finds_the_parent_level_and_all_below) {
  // [MQTT-4.7.1-2]
  const store s = with({"a", "a/b", "a/b/c", "a/", "ab", "b/a"});
  EXPECT_EQ(matched(s, "a/#"), (strings{"a", "a/", "a/b", "a/b/c"}));
  EXPECT_EQ(matched(s, "a/b/#"), (strings{"a/b", "a/b/c"}));
  EXPECT_EQ(matched(s, "+/#"), (strings{"a", "a/", "a/b", "a/b/c", "ab", "b/a"}));
  EXPECT_EQ(matched(s, "#"), (strings{"a", "a/", "a/b", "a/b/c", "ab", "b/a"}));
}

TEST(retained_store, wildcard_first_level_does_not_find_dollar_topics) {
  // [MQTT-4.7.2-1]
  const store s = with({"$SYS/uptime", "$SYS", "$", "a/$b", "x/y"});
  EXPECT_EQ(matched(s, "#"), (strings{"a/$b", "x/y"}));
  EXPECT_EQ(matched(s, "+"), strings{});
  EXPECT_EQ(matched(s, "+/uptime"), strings{});
  EXPECT_EQ(matched(s, "+/+"), (strings{"a/$b", "x/y"}));
  EXPECT_EQ(matched(s, "$SYS/#"), (strings{"$SYS", "$SYS/uptime"}));
  EXPECT_EQ(matched(s, "$SYS/+"), strings{"$SYS/uptime"});
  EXPECT_EQ(matched(s, "$"), strings{"$"});
}

TEST(retained_store, visits_the_stored_value) {
  store s;
  s.store(name("a/b"), 7);
  int seen = 0;
  s.match(filter("a/+"), [&](const topic_name& n, const int& value) {
    EXPECT_EQ(n.str(), "a/b");
    seen = value;
  });
  EXPECT_EQ(seen, 7);
}

TEST(retained_store, works_with_move_only_values_and_moves) {
  retained_store<std::unique_ptr<int>> a;
  a.store(name("x"), std::make_unique<int>(1));
  retained_store<std::unique_ptr<int>> b(std::move(a));
  EXPECT_EQ(b.size(), 1U);
  ASSERT_NE(b.find("x"), nullptr);
  EXPECT_EQ(**b.find("x"), 1);
  retained_store<std::unique_ptr<int>> c;
  c.store(name("y"), nullptr);
  c = std::move(b);
  EXPECT_EQ(c.find("y"), nullptr);
  EXPECT_NE(c.find("x"), nullptr);
}

TEST(retained_store, deepest_names_need_no_recursion) {
  const std::string slashes(max_topic_length, '/');
  store s;
  s.store(name(slashes), 1);
  s.store(name(slashes.substr(1) + "a"), 2);
  EXPECT_EQ(matched(s, "#").size(), 2U);
  EXPECT_EQ(matched(s, slashes), strings{slashes});
  EXPECT_EQ(s.node_count(), 65536U + 1U);
  EXPECT_TRUE(s.erase(slashes));
  EXPECT_EQ(s.size(), 1U);
  EXPECT_EQ(s.node_count(), 65535U);
}

TEST(retained_store, wide_nodes_spill_the_walk_stack) {
  store s;
  for (int i = 0; i < 500; ++i) {
    s.store(name("w/" + std::to_string(i) + "/v"), i);
  }
  EXPECT_EQ(matched(s, "w/+/v").size(), 500U);
  EXPECT_EQ(matched(s, "#").size(), 500U);
  EXPECT_EQ(matched(s, "w/+/+/#").size(), 500U);
}

/// Every name a walk of `filter_text` visits, `limit` at a time, sorted; `between` runs between
/// slices (it may change the store).
template <class Between>
strings walked(store& s, std::string_view filter_text, std::size_t limit, Between between) {
  strings out;
  auto w = s.begin_walk(filter(filter_text));
  for (;;) {
    std::size_t this_slice = 0;
    const bool more = w.resume(limit, [&](const topic_name& n, const int&) {
      out.push_back(n.str());
      ++this_slice;
    });
    EXPECT_LE(this_slice, limit);
    if (!more) break;
    between();
  }
  EXPECT_TRUE(w.done());
  std::sort(out.begin(), out.end());
  return out;
}

strings walked(store& s, std::string_view filter_text, std::size_t limit) {
  return walked(s, filter_text, limit, [] {});
}

TEST(retained_store_walk, in_slices_finds_what_match_finds) {
  store s;
  for (int i = 0; i < 300; ++i) {
    s.store(name("a/" + std::to_string(i % 7) + "/" + std::to_string(i)), i);
  }
  s.store(name("$SYS/x"), 0);
  s.store(name("a"), 0);
  for (const std::string_view f : {"#", "a/#", "a/+/+", "+/3/#", "a/1/15", "b/#", "+", "$SYS/#"}) {
    for (const std::size_t limit : {std::size_t{1}, std::size_t{7}, std::size_t{1000}}) {
      EXPECT_EQ(walked(s, f, limit), matched(s, f)) << f << " limit " << limit;
    }
  }
}

TEST(retained_store_walk, a_filter_matching_little_still_stops_after_bounded_work) {
  store s;
  for (int i = 0; i < 1000; ++i) {
    s.store(name("w/" + std::to_string(i) + "/v"), i);
  }
  auto w = s.begin_walk(filter("w/+/none"));
  int slices = 0;
  while (w.resume(10, [](const topic_name&, const int&) { ADD_FAILURE() << "nothing matches"; })) {
    ++slices;
  }
  EXPECT_GT(slices, 10);  // 1002 nodes to expand, at most 40 per call
}

TEST(retained_store_walk, skips_what_changed_after_it_began_and_survives_pruning) {
  store s;
  for (int i = 0; i < 200; ++i) {
    s.store(name("t/" + std::to_string(i) + "/leaf"), i);
  }
  std::set<std::string> changed;  // erased, replaced or added since the walk began
  std::set<std::string> visited;
  auto w = s.begin_walk(filter("t/#"));
  for (int step = 0;; ++step) {
    const bool more = w.resume(5, [&](const topic_name& n, const int& v) {
      EXPECT_FALSE(changed.contains(n.str())) << n.str() << " changed before its visit";
      EXPECT_NE(v, -1);
      EXPECT_TRUE(visited.insert(n.str()).second) << n.str() << " visited twice";
    });
    if (!more) break;
    // Between slices: erase names (pruning nodes the walk may hold), replace some, add new ones.
    for (const auto& changed_name :
         {"t/" + std::to_string(199 - step) + "/leaf", "t/" + std::to_string(step) + "/leaf",
          "t/new" + std::to_string(step) + "/leaf"}) {
      changed.insert(changed_name);
    }
    s.erase("t/" + std::to_string(199 - step) + "/leaf");
    s.store(name("t/" + std::to_string(step) + "/leaf"), -1);
    s.store(name("t/new" + std::to_string(step) + "/leaf"), -1);
  }
  // Everything stored before the walk and unchanged at its end was visited.
  for (int i = 0; i < 200; ++i) {
    const std::string n = "t/" + std::to_string(i) + "/leaf";
    if (!changed.contains(n)) {
      EXPECT_TRUE(visited.contains(n)) << n;
    }
  }
  EXPECT_GT(visited.size(), 0U);
}

TEST(retained_store_walk, closing_early_frees_detached_nodes) {
  store s;
  for (int i = 0; i < 50; ++i) {
    s.store(name("d/" + std::to_string(i) + "/x/y"), i);
  }
  {
    auto w = s.begin_walk(filter("#"));
    ASSERT_TRUE(w.resume(3, [](const topic_name&, const int&) {}));
    for (int i = 0; i < 50; ++i) {
      s.erase("d/" + std::to_string(i) + "/x/y");
    }
    EXPECT_EQ(s.size(), 0U);
    EXPECT_EQ(s.node_count(), 0U);
  }  // the walk's pins go: detached nodes are freed (ASan reports a leak or a use otherwise)
  s.store(name("d/1/x/y"), 1);
  EXPECT_EQ(matched(s, "#"), strings{"d/1/x/y"});
}

}  // namespace
}  // namespace ebus::mqtt::topic
