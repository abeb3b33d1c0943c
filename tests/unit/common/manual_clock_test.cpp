#include "ebus_test/manual_clock.hpp"

#include <vector>

#include <gtest/gtest.h>

namespace ebus::test {
namespace {

using namespace std::chrono_literals;

TEST(manual_clock, runs_wakeups_in_deadline_order_when_advanced) {
  manual_clock clk;
  const auto t0 = clk.now();
  std::vector<int> fired;
  clk.call_at(t0 + 3s, [&] { fired.push_back(3); });
  clk.call_at(t0 + 1s, [&] { fired.push_back(1); });
  clk.advance(500ms);
  EXPECT_TRUE(fired.empty());
  clk.advance(5s);
  EXPECT_EQ(fired, (std::vector<int>{1, 3}));
  EXPECT_EQ(clk.now(), t0 + 5500ms);
}

TEST(manual_clock, wakeup_sees_its_own_deadline_as_now) {
  manual_clock clk;
  const auto t0 = clk.now();
  clock::time_point seen{};
  clk.call_at(t0 + 2s, [&] { seen = clk.now(); });
  clk.advance(10s);
  EXPECT_EQ(seen, t0 + 2s);
}

}  // namespace
}  // namespace ebus::test
