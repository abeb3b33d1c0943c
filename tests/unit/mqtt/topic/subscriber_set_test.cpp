#include "mqtt/topic/subscriber_set.hpp"

#include <cstddef>
#include <map>
#include <memory>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace ebus::mqtt::topic {
namespace {

using set = subscriber_set<int, int>;

std::map<int, int> contents(const set& s) {
  std::map<int, int> out;
  for (const auto& [key, value] : s)
    out.emplace(key, value);
  return out;
}

TEST(subscriber_set, one_subscriber_is_added_replaced_and_removed) {
  set s;
  EXPECT_TRUE(s.empty());
  EXPECT_TRUE(s.insert_or_assign(7, 1));
  EXPECT_FALSE(s.insert_or_assign(7, 2));  // a repeated SUBSCRIBE replaces the value
  EXPECT_EQ(contents(s), (std::map<int, int>{{7, 2}}));
  EXPECT_FALSE(s.erase(8));
  EXPECT_TRUE(s.erase(7));
  EXPECT_FALSE(s.erase(7));
  EXPECT_TRUE(s.empty());
  EXPECT_FALSE(s.indexed());
}

TEST(subscriber_set, a_crowd_is_indexed_and_the_index_goes_when_it_thins_out) {
  set s;
  for (int k = 0; k < static_cast<int>(set::index_from); ++k)
    s.insert_or_assign(k, k);
  EXPECT_FALSE(s.indexed());
  s.insert_or_assign(1000, 0);
  EXPECT_TRUE(s.indexed());
  // Found through the index: replaced, not added again.
  EXPECT_FALSE(s.insert_or_assign(3, 30));
  EXPECT_EQ(s.size(), set::index_from + 1);
  EXPECT_EQ(contents(s).at(3), 30);
  for (int k = 0; s.size() > set::index_from / 2 + 1; ++k)
    ASSERT_TRUE(s.erase(k));
  EXPECT_TRUE(s.indexed());  // hysteresis: kept until half the threshold
  ASSERT_TRUE(s.erase(1000));
  EXPECT_FALSE(s.indexed());
  EXPECT_EQ(s.size(), set::index_from / 2);
}

TEST(subscriber_set, storage_follows_a_crowd_that_leaves) {
  set s;
  for (int k = 0; k < 10000; ++k)
    s.insert_or_assign(k, 0);
  for (int k = 0; k < 9990; ++k)
    ASSERT_TRUE(s.erase(k));
  EXPECT_EQ(s.size(), 10u);
  EXPECT_LE(s.capacity(), 4 * set::index_from);
  EXPECT_EQ(contents(s).size(), 10u);
  EXPECT_EQ(contents(s).begin()->first, 9990);
}

TEST(subscriber_set, holds_move_only_values_and_string_keys) {
  subscriber_set<std::string, std::unique_ptr<int>> s;
  for (int k = 0; k < 40; ++k)
    s.insert_or_assign("client-" + std::to_string(k), std::make_unique<int>(k));
  EXPECT_TRUE(s.erase("client-0"));
  int sum = 0;
  for (const auto& [key, value] : s)
    sum += *value;
  EXPECT_EQ(sum, 40 * 39 / 2);
}

// Random adds, replacements and removals across the index threshold, checked against a map.
TEST(subscriber_set, agrees_with_a_map_through_random_changes) {
  std::mt19937 rng(12345);
  set s;
  std::map<int, int> model;
  for (int step = 0; step < 200000; ++step) {
    // Key ranges that keep the set below, around and above the threshold in turn.
    const int range = step / 20000 % 2 == 0 ? 12 : 60;
    const int key = static_cast<int>(rng() % static_cast<unsigned>(range));
    if (rng() % 3 != 0) {
      const int value = static_cast<int>(rng() % 3);
      EXPECT_EQ(s.insert_or_assign(key, value), model.count(key) == 0);
      model[key] = value;
    } else {
      EXPECT_EQ(s.erase(key), model.erase(key) == 1);
    }
    ASSERT_EQ(s.size(), model.size()) << "step " << step;
    if (step % 997 == 0) {
      ASSERT_EQ(contents(s), model) << "step " << step;
    }
  }
  EXPECT_EQ(contents(s), model);
}

}  // namespace
}  // namespace ebus::mqtt::topic
