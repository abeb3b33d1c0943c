// keyed_set: owned objects found by the key they carry, in an open-addressing table that
// grows, shrinks and closes the gaps erasing leaves.
#include "common/keyed_set.hpp"

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ebus {
namespace {

struct item {
  explicit item(std::string k, int* destroyed = nullptr) : key(std::move(k)), gone(destroyed) {}
  item(const item&) = delete;
  item& operator=(const item&) = delete;
  ~item() {
    if (gone != nullptr) ++*gone;
  }
  std::string key;
  int* gone;
};
struct key_of {
  std::string_view operator()(const item& i) const noexcept { return i.key; }
};
using set = keyed_set<item, key_of>;

std::string key(int i) {
  return "client-" + std::to_string(i);
}

TEST(keyed_set, finds_what_it_holds_and_nothing_else) {
  set s;
  EXPECT_EQ(s.find("client-1"), nullptr);  // empty: no table yet
  EXPECT_EQ(s.capacity(), 0U);
  for (int i = 0; i < 1000; ++i) {
    item& added = s.insert(std::make_unique<item>(key(i)));
    EXPECT_EQ(added.key, key(i));
  }
  EXPECT_EQ(s.size(), 1000U);
  for (int i = 0; i < 1000; ++i) {
    const item* found = s.find(key(i));
    ASSERT_NE(found, nullptr) << key(i);
    EXPECT_EQ(found->key, key(i));
  }
  EXPECT_FALSE(s.contains(key(1000)));
  EXPECT_FALSE(s.contains(""));
  // At most 3/4 full.
  EXPECT_GE(s.capacity() * 3, s.size() * 4);
}

TEST(keyed_set, erasing_in_any_order_keeps_the_rest_reachable) {
  // A small table near its fullest makes long runs that wrap around its end: every erase must
  // move the right followers back, or a later find stops at the hole.
  for (unsigned seed = 0; seed < 20; ++seed) {
    set s;
    std::vector<int> keys(12);
    for (int i = 0; i < 12; ++i) {
      keys[static_cast<std::size_t>(i)] = i;
      s.insert(std::make_unique<item>(key(i + static_cast<int>(seed) * 100)));
    }
    ASSERT_EQ(s.capacity(), 16U);
    std::shuffle(keys.begin(), keys.end(), std::mt19937(seed));
    for (std::size_t n = 0; n < keys.size(); ++n) {
      const std::string gone = key(keys[n] + static_cast<int>(seed) * 100);
      s.erase(*s.find(gone));
      EXPECT_FALSE(s.contains(gone));
      for (std::size_t k = n + 1; k < keys.size(); ++k) {
        const std::string kept = key(keys[k] + static_cast<int>(seed) * 100);
        EXPECT_TRUE(s.contains(kept)) << "seed " << seed << " lost " << kept;
      }
    }
    EXPECT_TRUE(s.empty());
  }
}

TEST(keyed_set, shrinks_when_most_objects_have_gone) {
  set s;
  for (int i = 0; i < 4000; ++i)
    s.insert(std::make_unique<item>(key(i)));
  const std::size_t full = s.capacity();
  for (int i = 10; i < 4000; ++i)
    s.erase(*s.find(key(i)));
  EXPECT_LT(s.capacity(), full / 16);
  for (int i = 0; i < 10; ++i)
    EXPECT_TRUE(s.contains(key(i)));
}

TEST(keyed_set, owns_its_objects) {
  int destroyed = 0;
  {
    set s;
    for (int i = 0; i < 5; ++i)
      s.insert(std::make_unique<item>(key(i), &destroyed));
    s.erase(*s.find(key(2)));
    EXPECT_EQ(destroyed, 1);
    int visited = 0;
    s.for_each([&](item& i) {
      EXPECT_NE(i.key, key(2));
      ++visited;
    });
    EXPECT_EQ(visited, 4);
    s.clear();
    EXPECT_EQ(destroyed, 5);
    EXPECT_TRUE(s.empty());
    s.insert(std::make_unique<item>(key(7), &destroyed));  // usable after clear()
  }
  EXPECT_EQ(destroyed, 6);  // the destructor frees what is left
}

}  // namespace
}  // namespace ebus
