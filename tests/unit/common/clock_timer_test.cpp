// clock::timer, the re-armable wake-up of one owner: on the manual clock (the default built on
// call_at) and on asio_clock (a steady_timer). Only deadlines already due are used with Asio, so
// nothing waits.
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "common/asio_clock.hpp"
#include "ebus_test/manual_clock.hpp"

namespace ebus::test {
namespace {

using namespace std::chrono_literals;

TEST(clock_timer, on_a_manual_clock_fires_once_at_its_deadline) {
  manual_clock clk;
  int fired = 0;
  auto t = clk.make_timer([&] { ++fired; });
  t->arm(clk.now() + 2s);
  clk.advance(1999ms);
  EXPECT_EQ(fired, 0);
  clk.advance(1ms);
  EXPECT_EQ(fired, 1);
  clk.advance(1h);
  EXPECT_EQ(fired, 1);
}

TEST(clock_timer, on_a_manual_clock_rearming_replaces_the_deadline) {
  manual_clock clk;
  const auto t0 = clk.now();
  std::vector<clock::time_point> fired;
  auto t = clk.make_timer([&] { fired.push_back(clk.now()); });
  t->arm(t0 + 5s);
  t->arm(t0 + 1s);  // earlier
  t->arm(t0 + 3s);  // later again: only this one counts
  clk.advance(10s);
  EXPECT_EQ(fired, (std::vector<clock::time_point>{t0 + 3s}));
}

TEST(clock_timer, on_a_manual_clock_cancel_and_destruction_drop_the_wakeup) {
  manual_clock clk;
  int fired = 0;
  auto cancelled = clk.make_timer([&] { ++fired; });
  cancelled->arm(clk.now() + 1s);
  cancelled->cancel();
  auto destroyed = clk.make_timer([&] { ++fired; });
  destroyed->arm(clk.now() + 1s);
  destroyed.reset();
  clk.advance(2s);
  EXPECT_EQ(fired, 0);
  cancelled->arm(clk.now() + 1s);  // usable again after a cancel
  clk.advance(1s);
  EXPECT_EQ(fired, 1);
}

TEST(clock_timer, on_a_manual_clock_the_owner_may_destroy_it_while_it_fires) {
  manual_clock clk;
  std::unique_ptr<clock::timer> t;
  int fired = 0;
  t = clk.make_timer([&] {
    ++fired;
    t.reset();
  });
  t->arm(clk.now() + 1s);
  clk.advance(1s);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(t, nullptr);
}

TEST(clock_timer, on_asio_clock_a_due_deadline_fires_when_the_loop_runs) {
  asio::io_context io{1};
  asio_clock clk(io.get_executor());
  int fired = 0;
  auto t = clk.make_timer([&] { ++fired; });
  t->arm(clk.now());
  io.run();
  EXPECT_EQ(fired, 1);
}

TEST(clock_timer, on_asio_clock_cancel_leaves_no_work_behind) {
  // A cancelled far deadline does not keep the loop running: run() returns at once.
  asio::io_context io{1};
  asio_clock clk(io.get_executor());
  int fired = 0;
  auto t = clk.make_timer([&] { ++fired; });
  t->arm(clk.now() + 24h);
  t->cancel();
  io.run();
  EXPECT_EQ(fired, 0);

  // Re-armed from far to due: fires once, the far wait is gone.
  io.restart();
  t->arm(clk.now() + 24h);
  t->arm(clk.now());
  io.run();
  EXPECT_EQ(fired, 1);
}

TEST(clock_timer, on_asio_clock_destruction_drops_a_wakeup_already_due) {
  asio::io_context io{1};
  asio_clock clk(io.get_executor());
  int fired = 0;
  auto t = clk.make_timer([&] { ++fired; });
  t->arm(clk.now());
  t.reset();
  io.run();
  EXPECT_EQ(fired, 0);
}

}  // namespace
}  // namespace ebus::test
