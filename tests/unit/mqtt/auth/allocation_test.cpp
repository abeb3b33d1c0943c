// acl::allows(read) runs for every delivered message, so it must not allocate. The test
// executable counts allocations (ebus_test_allocation_counter).
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "ebus_test/allocation_counter.hpp"
#include "mqtt/auth/acl.hpp"

using ebus::test::allocations;

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
  const std::size_t before = allocations();
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
  EXPECT_EQ(allocations() - before, 0U);
  EXPECT_GT(granted, 0U);  // the calls did real work
}

}  // namespace
}  // namespace ebus::mqtt::auth
