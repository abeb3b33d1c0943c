// Matching runs for every PUBLISH, so it must not allocate. This file replaces the global
// operator new of the test executable with one that counts calls.
#include <atomic>
#include <cstdlib>
#include <new>
#include <string_view>

#include <gtest/gtest.h>

#include "mqtt/topic/retained_store.hpp"
#include "mqtt/topic/subscription_tree.hpp"

namespace {
std::atomic<std::size_t> allocations{0};
}  // namespace

// GCC 12 with sanitizers inlines these pairs and then warns that free() releases memory from
// operator new, which is exactly what a replacement is allowed to do.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

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
  const std::size_t before = allocations.load();
  for (const std::string_view name :
       {"$hw/events/device/ns/dev/twin/update", "a/b/c", "a//c", "x/y", "$SYS/x"}) {
    t.match(name, [&](const int&, const int&, const topic_filter&) { ++visits; });
  }
  EXPECT_EQ(allocations.load() - before, 0U);
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
  const std::size_t before = allocations.load();
  s.match(plus, [&](const topic_name&, const int&) { ++visits; });
  s.match(hash, [&](const topic_name&, const int&) { ++visits; });
  EXPECT_EQ(allocations.load() - before, 0U);
  EXPECT_EQ(visits, 2U + 3U);
}

}  // namespace
}  // namespace ebus::mqtt::topic
