// Randomized differential tests: subscription_tree and retained_store must agree with the
// reference matcher topic::matches() on many generated filters and names. The seed is fixed, so
// every run checks the same cases.
#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "mqtt/topic/retained_store.hpp"
#include "mqtt/topic/subscription_tree.hpp"

namespace ebus::mqtt::topic {
namespace {

// A small alphabet, so that generated filters and names collide and overlap often.
constexpr std::array<std::string_view, 5> name_levels = {"a", "b", "", "$a", "$"};

class generator {
 public:
  explicit generator(std::uint32_t seed) : rng_(seed) {}

  std::size_t below(std::size_t n) { return rng_() % n; }

  std::string name() {
    std::string out;
    const std::size_t levels = 1 + below(4);
    for (std::size_t i = 0; i < levels; ++i) {
      if (i > 0) out += '/';
      out += name_levels[below(name_levels.size())];
    }
    return out.empty() ? "/" : out;  // one empty level is not a topic [MQTT-4.7.3-1]
  }

  std::string filter() {
    std::string out;
    const std::size_t levels = 1 + below(4);
    for (std::size_t i = 0; i < levels; ++i) {
      if (i > 0) out += '/';
      const std::size_t pick = below(8);
      if (pick == 0 && i + 1 == levels) {
        out += '#';
      } else if (pick <= 2) {
        out += '+';
      } else {
        out += name_levels[below(name_levels.size())];
      }
    }
    return out.empty() ? "/" : out;
  }

 private:
  std::mt19937 rng_;
};

using subscription = std::pair<std::string, int>;  // (filter, key)

TEST(differential, subscription_tree_agrees_with_matches) {
  generator gen(20240601);
  subscription_tree<int, int> tree;
  std::map<subscription, int> model;  // (filter, key) -> value
  int value = 0;
  std::size_t checked_hits = 0;
  std::size_t checked_misses = 0;

  for (int round = 0; round < 40; ++round) {
    // Change the subscriptions: mostly inserts (some replacing), some erases.
    for (int op = 0; op < 25; ++op) {
      const std::string text = gen.filter();
      const auto f = parse_filter(text);
      ASSERT_TRUE(f) << text;
      const int key = static_cast<int>(gen.below(4));
      if (gen.below(3) == 0) {
        EXPECT_EQ(tree.erase(*f, key), model.erase({text, key}) == 1) << text;
      } else {
        ++value;
        const bool is_new = model.insert_or_assign({text, key}, value).second;
        EXPECT_EQ(tree.insert(*f, key, value), is_new) << text;
      }
    }
    ASSERT_EQ(tree.size(), model.size());

    for (int probe = 0; probe < 50; ++probe) {
      const std::string name = gen.name();
      std::vector<std::tuple<std::string, int, int>> expected;
      for (const auto& [sub, v] : model) {
        if (matches(sub.first, name)) expected.emplace_back(sub.first, sub.second, v);
      }
      std::vector<std::tuple<std::string, int, int>> actual;
      tree.match(name, [&](const int& key, const int& v, const topic_filter& f) {
        actual.emplace_back(f.str(), key, v);
      });
      std::sort(actual.begin(), actual.end());
      ASSERT_EQ(actual, expected) << "name: " << name;
      ASSERT_EQ(tree.matches_any(name), !expected.empty()) << "name: " << name;
      checked_hits += actual.size();
      if (expected.empty()) ++checked_misses;
    }
  }
  EXPECT_GT(checked_hits, 1000U);   // the generator does produce matches
  EXPECT_GT(checked_misses, 100U);  // and names that match nothing

  for (const auto& [sub, v] : model) {
    EXPECT_TRUE(tree.erase(*parse_filter(sub.first), sub.second));
  }
  EXPECT_TRUE(tree.empty());
  EXPECT_EQ(tree.node_count(), 0U);  // every node was pruned
}

TEST(differential, retained_store_agrees_with_matches) {
  generator gen(7);
  retained_store<int> store;
  std::map<std::string, int> model;
  std::size_t checked_hits = 0;

  for (int round = 0; round < 40; ++round) {
    for (int op = 0; op < 10; ++op) {
      const std::string text = gen.name();
      if (gen.below(3) == 0) {
        EXPECT_EQ(store.erase(text), model.erase(text) == 1) << text;
      } else {
        const auto n = parse_name(text);
        ASSERT_TRUE(n) << text;
        const bool is_new = model.insert_or_assign(text, round).second;
        EXPECT_EQ(store.store(*n, round), is_new) << text;
      }
    }
    ASSERT_EQ(store.size(), model.size());

    for (int probe = 0; probe < 50; ++probe) {
      const std::string text = gen.filter();
      const auto f = parse_filter(text);
      ASSERT_TRUE(f) << text;
      std::vector<std::pair<std::string, int>> expected;
      for (const auto& [n, v] : model) {
        if (matches(text, n)) expected.emplace_back(n, v);
      }
      std::vector<std::pair<std::string, int>> actual;
      store.match(*f, [&](const topic_name& n, const int& v) { actual.emplace_back(n.str(), v); });
      std::sort(actual.begin(), actual.end());
      ASSERT_EQ(actual, expected) << "filter: " << text;
      checked_hits += actual.size();
    }
  }
  EXPECT_GT(checked_hits, 1000U);

  for (const auto& [n, v] : model) {
    EXPECT_TRUE(store.erase(n));
  }
  EXPECT_TRUE(store.empty());
  EXPECT_EQ(store.node_count(), 0U);
}

}  // namespace
}  // namespace ebus::mqtt::topic
