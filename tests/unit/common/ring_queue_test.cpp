// ring_queue: FIFO order through wrap-around and growth, erase from anywhere, and no memory held
// before the first push or after release(); checked against std::deque on random operations.
#include "common/ring_queue.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace ebus::test {
namespace {

TEST(ring_queue, holds_no_storage_until_the_first_push_and_after_release) {
  ring_queue<std::string> q;
  EXPECT_EQ(q.capacity(), 0U);
  q.push_back("a");
  q.push_back("b");
  EXPECT_GT(q.capacity(), 0U);
  q.release();  // not empty: kept
  q.pop_front();
  q.pop_front();
  EXPECT_TRUE(q.empty());
  EXPECT_GT(q.capacity(), 0U);  // kept for the next burst
  q.release();
  EXPECT_EQ(q.capacity(), 0U);
  q.push_back("c");
  q.erase(q.begin());
  q.release();
  EXPECT_EQ(q.capacity(), 0U);
  q.push_back("d");
  q.clear();
  EXPECT_EQ(q.capacity(), 0U);
}

TEST(ring_queue, matches_a_deque_on_random_operations) {
  std::mt19937 rng(11);
  ring_queue<std::unique_ptr<int>> q;  // move-only, and leaks would show under ASan
  std::deque<int> model;
  int next = 0;
  for (int step = 0; step < 20000; ++step) {
    const auto op = rng() % 11;
    if (op == 10) {
      q.push_front(std::make_unique<int>(next));
      model.push_front(next++);
    } else if (op < 5 || model.empty()) {
      q.push_back(std::make_unique<int>(next));
      model.push_back(next++);
    } else if (op < 8) {
      ASSERT_EQ(*q.front(), model.front());
      q.pop_front();
      model.pop_front();
    } else if (op < 9) {
      const std::size_t at = rng() % model.size();
      auto it = q.begin();
      std::advance(it, static_cast<std::ptrdiff_t>(at));
      auto after = q.erase(it);
      model.erase(model.begin() + static_cast<std::ptrdiff_t>(at));
      if (at < model.size()) {
        ASSERT_EQ(**after, model[at]);
      } else {
        ASSERT_TRUE(after == q.end());
      }
    } else {
      const int wanted = model[rng() % model.size()];
      const auto it =
          std::find_if(q.begin(), q.end(), [wanted](const auto& p) { return *p == wanted; });
      ASSERT_TRUE(it != q.end());
      ASSERT_EQ(**it, wanted);
    }
    ASSERT_EQ(q.size(), model.size());
    if (!model.empty()) {
      ASSERT_EQ(*q.back(), model.back());
    }
    if (model.empty() && rng() % 2 == 0) q.release();
  }
  std::size_t k = 0;
  for (const auto& p : q) {
    ASSERT_EQ(*p, model[k++]);
  }
  q.clear();
  EXPECT_EQ(q.capacity(), 0U);
}

TEST(ring_queue, a_move_leaves_the_source_empty) {
  ring_queue<int> a;
  for (int i = 0; i < 10; ++i)
    a.push_back(i);
  ring_queue<int> b(std::move(a));
  EXPECT_EQ(b.size(), 10U);
  EXPECT_EQ(a.size(), 0U);  // NOLINT(bugprone-use-after-move): the moved-from state is the point
  EXPECT_EQ(a.capacity(), 0U);
  a = std::move(b);
  EXPECT_EQ(a.front(), 0);
  EXPECT_EQ(a.back(), 9);
}

TEST(ring_queue, totals_live_in_the_storage_and_survive_growth) {
  struct totals {
    std::size_t bytes = 0;
    std::uint32_t count = 0;
  };
  ring_queue<std::string, totals> q;
  EXPECT_EQ(q.totals().bytes, 0U);  // no storage: zero
  const auto push = [&](const std::string& s) {
    q.push_back(s);
    q.mutable_totals().bytes += s.size();
    ++q.mutable_totals().count;
  };
  for (int i = 0; i < 100; ++i)  // several doublings
    push(std::string(static_cast<std::size_t>(i % 7) + 1, 'x'));
  std::size_t expected = 0;
  for (const auto& s : q)
    expected += s.size();
  EXPECT_EQ(q.totals().bytes, expected);
  EXPECT_EQ(q.totals().count, 100U);
  while (!q.empty()) {
    q.mutable_totals().bytes -= q.front().size();
    --q.mutable_totals().count;
    q.pop_front();
  }
  EXPECT_EQ(q.totals().bytes, 0U);
  q.release();
  EXPECT_EQ(q.capacity(), 0U);
  EXPECT_EQ(q.totals().count, 0U);
  // The queue object stays one pointer: the totals are in its storage.
  static_assert(sizeof(ring_queue<std::string, totals>) == sizeof(void*));
}

}  // namespace
}  // namespace ebus::test
