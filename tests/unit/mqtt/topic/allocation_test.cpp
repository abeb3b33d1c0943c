// Matching runs for every PUBLISH, so it must not allocate. The test executable
// counts allocations (ebus_test_allocation_counter).
#include <string_view>

#include <gtest/gtest.h>

#include "ebus_test/allocation_counter.hpp"
#include "mqtt/topic/retained_store.hpp"
#include "mqtt/topic/subscription_tree.hpp"

using ebus::test::allocations;

namespace ebus::mqtt::topic {
namespace {

topic_filter filter(std::string_view text) {
  return parse_filter(text).value();
}

TEST(subscription_tree, match_does_not_allocate) {
  subscription_tree<int, int> t;
  for (const std::string_view f :
       {"#", "$hw/events/device/+/+/twin/+", "$hw/events/device/ns/dev/twin/update",
        "$hw/events/device/ns/dev/#", "$hw/#", "+/+/+/+/+/+/+", "a/+/c", "a//c"}) {
    t.insert(filter(f), 1, 0);
  }
  std::size_t visits = 0;
  const std::size_t before = allocations();
  for (const std::string_view name :
       {"$hw/events/device/ns/dev/twin/update", "a/b/c", "a//c", "x/y", "$SYS/x"}) {
    t.match(name, [&](const int&, const int&, const topic_filter&) { ++visits; });
  }
  EXPECT_EQ(allocations() - before, 0U);
  EXPECT_EQ(visits, 4U + 2U + 3U + 1U + 0U);
}

TEST(retained_store, match_does_not_allocate_for_narrow_filters) {
  retained_store<int> s;
  for (const std::string_view n : {"a/b/c", "a/x/c", "a", "$SYS/x"}) {
    s.store(parse_name(n).value(), 0);
  }
  const topic_filter plus = filter("a/+/c");
  const topic_filter hash = filter("#");
  std::size_t visits = 0;
  const std::size_t before = allocations();
  s.match(plus, [&](const topic_name&, const int&) { ++visits; });
  s.match(hash, [&](const topic_name&, const int&) { ++visits; });
  EXPECT_EQ(allocations() - before, 0U);
  EXPECT_EQ(visits, 2U + 3U);
}

}  // namespace
}  // namespace ebus::mqtt::topic
