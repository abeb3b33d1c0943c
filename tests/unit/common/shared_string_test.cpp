// shared_string: one copy of an immutable text among its holders, freed with the last one.
#include "common/shared_string.hpp"

#include <string>
#include <utility>

#include <gtest/gtest.h>

namespace ebus {
namespace {

TEST(shared_string, copies_share_one_text_until_the_last_goes) {
  const std::string text(40, 'x');  // longer than std::string keeps inline
  auto a = std::make_unique<shared_string>(text);
  shared_string b = *a;
  EXPECT_EQ(b.view().data(), a->view().data());  // the same bytes, not a copy
  EXPECT_EQ(a->use_count(), 2U);
  a.reset();
  EXPECT_EQ(b.use_count(), 1U);
  EXPECT_EQ(b, text);  // still readable through the remaining holder
  EXPECT_EQ(b.size(), 40U);
}

TEST(shared_string, moves_and_assignments_keep_the_count_right) {
  shared_string a("client-1");
  shared_string b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): a moved-from string is empty
  EXPECT_EQ(b.use_count(), 1U);
  shared_string c("other");
  c = b;
  EXPECT_EQ(c, "client-1");
  EXPECT_EQ(b.use_count(), 2U);
  c = shared_string();
  EXPECT_EQ(b.use_count(), 1U);
  const shared_string& same = b;
  b = same;  // self-assignment keeps the text
  EXPECT_EQ(b, "client-1");
  EXPECT_EQ(b.use_count(), 1U);
}

TEST(shared_string, the_empty_text_holds_no_memory) {
  const shared_string e{std::string_view{}};
  EXPECT_TRUE(e.empty());
  EXPECT_EQ(e.use_count(), 0U);
  EXPECT_EQ(e.view(), "");
  EXPECT_EQ(sizeof(shared_string), sizeof(void*));
}

}  // namespace
}  // namespace ebus
