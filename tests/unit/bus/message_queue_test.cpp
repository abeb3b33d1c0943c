// The bounds of an inbox or a backlog: messages, bytes and the memory budget.
#include "bus/message_queue.hpp"

#include <gtest/gtest.h>

namespace ebus::bus {
namespace {

message named(std::string resource) {
  message m;
  m.route.resource = std::move(resource);
  return m;
}

TEST(message_queue, refuses_by_count_then_by_bytes_and_leaves_the_message_untouched) {
  message_queue q(3, 100, nullptr);
  EXPECT_EQ(q.push(named("a"), 40), refusal::none);
  EXPECT_EQ(q.push(named("b"), 40), refusal::none);
  auto c = named("c");
  EXPECT_EQ(q.push(std::move(c), 40), refusal::bytes);  // 120 > 100
  EXPECT_EQ(c.route.resource, "c");
  EXPECT_EQ(q.push(named("d"), 20), refusal::none);  // exactly 100
  EXPECT_EQ(q.push(named("e"), 0), refusal::messages);
  EXPECT_EQ(q.bytes(), 100u);
  EXPECT_EQ(q.pop().msg.route.resource, "a");
  EXPECT_EQ(q.bytes(), 60u);
}

TEST(message_queue, an_empty_queue_takes_one_message_larger_than_its_byte_limit) {
  message_queue q(10, 100, nullptr);
  EXPECT_EQ(q.push(named("big"), 1000), refusal::none);
  EXPECT_EQ(q.room_for(1), refusal::bytes);
  (void)q.pop();
  EXPECT_EQ(q.room_for(1), refusal::none);
}

TEST(message_queue, charges_the_budget_and_releases_exactly_what_it_charged) {
  memory_budget budget(250);
  {
    message_queue q(10, 1000, &budget);
    EXPECT_EQ(q.push(named("a"), 100), refusal::none);
    EXPECT_EQ(q.push(named("b"), 100), refusal::none);
    EXPECT_EQ(q.push(named("c"), 100), refusal::budget);
    EXPECT_EQ(budget.used(), 200u);
    EXPECT_EQ(budget.refusals(), 1u);
    {
      auto e = q.pop();
      EXPECT_EQ(e.charge.bytes(), 100u);
      EXPECT_EQ(budget.used(), 200u);  // held by the entry until it goes
    }
    EXPECT_EQ(budget.used(), 100u);
    EXPECT_EQ(q.push(named("c"), 100), refusal::none);
  }
  EXPECT_EQ(budget.used(), 0u);  // the queue's destruction released the rest
}

TEST(message_queue, an_entry_moves_between_queues_with_its_charge) {
  memory_budget budget(150);
  message_queue from(10, 1000, &budget);
  message_queue to(1, 1000, &budget);
  ASSERT_EQ(from.push(named("a"), 100), refusal::none);
  ASSERT_EQ(from.push(named("b"), 10), refusal::none);
  EXPECT_EQ(to.push(from.pop()), refusal::none);  // not charged twice: the budget holds 110
  EXPECT_EQ(budget.used(), 110u);
  auto b = from.pop();
  EXPECT_EQ(to.push(std::move(b)), refusal::messages);
  from.push_front(std::move(b));  // back where it was
  EXPECT_EQ(from.front().msg.route.resource, "b");
  EXPECT_EQ(from.bytes(), 10u);
  from.clear();
  to.clear();
  EXPECT_EQ(budget.used(), 0u);
}

}  // namespace
}  // namespace ebus::bus
