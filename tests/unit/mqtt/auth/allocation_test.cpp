// acl::allows(read) runs for every delivered message, so it must not allocate. This file replaces
// the global operator new of the test executable with one that counts calls.
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "mqtt/auth/acl.hpp"

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

namespace ebus::mqtt::auth {
namespace {

TEST(acl, allows_does_not_allocate) {
  const auto a = acl::parse(
      "topic read public/#\n"
      "user a-user-name-longer-than-any-small-string-buffer\n"
      "topic readwrite $hw/events/device/+/twin/#\n"
      "topic deny $hw/events/device/secret/#\n"
      "pattern readwrite devices/%c/#\n"
      "pattern read users/%u/inbox/+\n"
      "pattern deny users/%u/private/#\n");
  ASSERT_TRUE(a);
  // Long values, so that a std::string made of them could not use the small-string buffer.
  const std::string long_user = "a-user-name-longer-than-any-small-string-buffer";
  const std::string long_client = "a-client-id-longer-than-any-small-string-buffer";
  const client_identity who{long_client, std::string_view(long_user)};
  const client_identity anonymous{long_client, std::nullopt};
  const client_identity unsafe{"c/1", std::string_view("a+b")};

  std::size_t granted = 0;
  const std::size_t before = allocations.load();
  for (const client_identity* id : {&who, &anonymous, &unsafe}) {
    for (const std::string_view topic :
         {"public/x", "$hw/events/device/dev1/twin/update", "$hw/events/device/secret/twin/x",
          "devices/a-client-id-longer-than-any-small-string-buffer/state",
          "users/a-user-name-longer-than-any-small-string-buffer/inbox/1", "other/topic"}) {
      granted += a->allows(acl_access::read, topic, *id) ? 1 : 0;
      granted += a->allows(acl_access::write, topic, *id) ? 1 : 0;
    }
    granted += a->allows(acl_access::subscribe, "$hw/events/device/+/twin/#", *id) ? 1 : 0;
  }
  EXPECT_EQ(allocations.load() - before, 0U);
  EXPECT_GT(granted, 0U);  // the calls did real work
}

}  // namespace
}  // namespace ebus::mqtt::auth
