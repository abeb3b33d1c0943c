// Opening a library at run time and resolving its functions (common/shared_library.hpp), with
// libc as the library that is always there.
#include "common/shared_library.hpp"

#include <cstring>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ebus {
namespace {

using ::testing::HasSubstr;

TEST(shared_library, a_missing_library_is_an_error_naming_it) {
  const auto handle = open_shared_library("libebus-no-such-library.so.7");
  ASSERT_FALSE(handle.has_value());
  EXPECT_THAT(handle.error(), HasSubstr("cannot load libebus-no-such-library.so.7: "));
}

TEST(shared_library, resolves_a_function_to_a_callable_pointer) {
  const auto handle = open_shared_library("libc.so.6");
  ASSERT_TRUE(handle.has_value()) << handle.error();
  decltype(&std::strlen) length = nullptr;
  std::string error;
  ASSERT_TRUE(resolve(length, *handle, "libc.so.6", "strlen", error)) << error;
  EXPECT_EQ(length("four"), 4U);
  EXPECT_TRUE(error.empty());
}

TEST(shared_library, a_missing_function_fails_and_the_first_missing_one_is_named) {
  const auto handle = open_shared_library("libc.so.6");
  ASSERT_TRUE(handle.has_value()) << handle.error();
  decltype(&std::strlen) first = nullptr;
  decltype(&std::strlen) second = nullptr;
  std::string error;
  EXPECT_FALSE(resolve(first, *handle, "libc.so.6", "ebus_no_such_function", error));
  EXPECT_FALSE(resolve(second, *handle, "libc.so.6", "ebus_another_missing_one", error));
  EXPECT_EQ(error, "libc.so.6 has no ebus_no_such_function");
  EXPECT_EQ(first, nullptr);
}

struct string_functions {
  decltype(&std::strlen) length = nullptr;
  decltype(&std::strlen) missing = nullptr;
};

TEST(shared_library, a_function_table_loads_whole_or_names_what_is_missing) {
  const auto whole = load_function_table<string_functions>(
      "libc.so.6", [](string_functions& t, auto&& one) { one(t.length, "strlen"); });
  ASSERT_TRUE(whole.has_value()) << whole.error();
  EXPECT_EQ(whole->length("three"), 5U);

  const auto partial =
      load_function_table<string_functions>("libc.so.6", [](string_functions& t, auto&& one) {
        one(t.length, "strlen");
        one(t.missing, "ebus_no_such_function");
      });
  ASSERT_FALSE(partial.has_value());
  EXPECT_EQ(partial.error(), "libc.so.6 has no ebus_no_such_function");

  const auto absent = load_function_table<string_functions>("libebus-no-such-library.so.7",
                                                            [](string_functions&, auto&&) {});
  ASSERT_FALSE(absent.has_value());
  EXPECT_THAT(absent.error(), HasSubstr("cannot load libebus-no-such-library.so.7"));
}

}  // namespace
}  // namespace ebus
