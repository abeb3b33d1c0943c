#include "bus/bounded_queue.hpp"

#include <memory>

#include <gtest/gtest.h>

namespace ebus::bus {
namespace {

TEST(bounded_queue, keeps_fifo_order_across_growth_and_wraparound) {
  bounded_queue<int> q(1000);
  int next_in = 0;
  int next_out = 0;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 7; ++i)
      ASSERT_TRUE(q.push(next_in++));
    for (int i = 0; i < 5; ++i)
      ASSERT_EQ(q.pop(), next_out++);
  }
  while (!q.empty())
    ASSERT_EQ(q.pop(), next_out++);
  EXPECT_EQ(next_in, next_out);
}

TEST(bounded_queue, refuses_at_capacity_and_leaves_value_intact) {
  bounded_queue<std::unique_ptr<int>> q(2);
  ASSERT_TRUE(q.push(std::make_unique<int>(1)));
  ASSERT_TRUE(q.push(std::make_unique<int>(2)));
  EXPECT_TRUE(q.full());
  auto extra = std::make_unique<int>(3);
  EXPECT_FALSE(q.push(std::move(extra)));
  ASSERT_NE(extra, nullptr);  // a refused push does not consume the value
  EXPECT_EQ(*extra, 3);
  EXPECT_EQ(*q.pop(), 1);
  EXPECT_TRUE(q.push(std::move(extra)));
  EXPECT_EQ(*q.pop(), 2);
  EXPECT_EQ(*q.pop(), 3);
  EXPECT_TRUE(q.empty());
}

TEST(bounded_queue, clear_empties_the_queue) {
  bounded_queue<int> q(10);
  for (int i = 0; i < 10; ++i)
    q.push(int{i});
  q.clear();
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(q.push(42));
  EXPECT_EQ(q.pop(), 42);
}

TEST(bounded_queue, push_front_puts_an_element_back_in_front_even_when_full) {
  bounded_queue<int> q(2);
  ASSERT_TRUE(q.push(1));
  ASSERT_TRUE(q.push(2));
  const int first = q.pop();
  ASSERT_TRUE(q.push(3));  // full again
  q.push_front(int{first});
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.front(), 1);
  EXPECT_EQ(q.pop(), 1);
  EXPECT_EQ(q.pop(), 2);
  EXPECT_EQ(q.pop(), 3);
}

}  // namespace
}  // namespace ebus::bus
