// clock::alarm, the re-armable wake-up an owner embeds, and clock::timer, the alarm that runs a
// function: on the manual clock and on asio_clock (the clock's heap of alarms under one Asio
// timer). Only deadlines already due are used with Asio, so nothing waits.
#include <algorithm>
#include <memory>
#include <random>
#include <string>
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

// An owner that embeds its alarm, as a connection does.
class alarmed_owner final : public clock::alarm {
 public:
  alarmed_owner(clock& c, std::vector<std::string>& log, std::string name)
      : clock::alarm(c), log_(log), name_(std::move(name)) {}
  std::unique_ptr<alarmed_owner>* self = nullptr;  // reset when it rings, if set

 private:
  void on_alarm() override {
    log_.push_back(name_);
    if (self != nullptr) self->reset();  // the owner goes away inside its own alarm
  }
  std::vector<std::string>& log_;
  std::string name_;
};

TEST(clock_timer, on_a_manual_clock_alarms_and_wakeups_run_in_deadline_order) {
  manual_clock clk;
  const auto t0 = clk.now();
  std::vector<std::string> log;
  alarmed_owner a(clk, log, "alarm 2s");
  auto b = std::make_unique<alarmed_owner>(clk, log, "alarm 4s, destroys itself");
  b->self = &b;
  a.arm(t0 + 2s);
  b->arm(t0 + 4s);
  clk.call_at(t0 + 3s, [&] { log.emplace_back("wake-up 3s"); });
  clk.call_at(t0 + 1s, [&] { log.emplace_back("wake-up 1s"); });
  EXPECT_TRUE(a.armed());
  EXPECT_EQ(clk.scheduled(), 4U);
  clk.advance(10s);
  EXPECT_EQ(log, (std::vector<std::string>{"wake-up 1s", "alarm 2s", "wake-up 3s",
                                           "alarm 4s, destroys itself"}));
  EXPECT_EQ(b, nullptr);
  EXPECT_FALSE(a.armed());
  EXPECT_EQ(clk.scheduled(), 0U);
}

TEST(clock_timer, an_alarm_may_outlive_its_clock) {
  std::vector<std::string> log;
  auto clk = std::make_unique<manual_clock>();
  alarmed_owner a(*clk, log, "never");
  a.arm(clk->now() + 1s);
  clk.reset();  // disarms it: destroying it later touches no clock
  EXPECT_FALSE(a.armed());
  EXPECT_TRUE(log.empty());
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

namespace ebus::test {
namespace {

// asio_clock keeps its timers in one heap under one Asio timer: with every deadline already
// due, a run of the loop fires them in deadline order, re-armed ones at their last deadline,
// cancelled and destroyed ones not at all.
TEST(clock_timer, on_asio_clock_many_timers_fire_in_deadline_order) {
  asio::io_context io{1};
  asio_clock clk(io.get_executor());
  const auto base = clk.now() - 1h;
  std::vector<int> fired;
  std::vector<std::unique_ptr<clock::timer>> timers;
  std::mt19937 rng(5);
  std::vector<int> order(64);
  for (int i = 0; i < 64; ++i)
    order[static_cast<std::size_t>(i)] = i;
  std::shuffle(order.begin(), order.end(), rng);
  for (int i = 0; i < 64; ++i) {
    timers.push_back(clk.make_timer([&fired, i] { fired.push_back(i); }));
  }
  for (const int i : order)
    timers[static_cast<std::size_t>(i)]->arm(base + std::chrono::seconds(64 - i));  // 63 first
  timers[10]->arm(base + 1h);  // re-armed later, still due: last
  timers[20]->cancel();
  timers[30].reset();
  EXPECT_EQ(clk.armed_alarms(), 62U);
  io.run();
  std::vector<int> expected;
  for (int i = 63; i >= 0; --i) {
    if (i != 10 && i != 20 && i != 30) expected.push_back(i);
  }
  expected.push_back(10);
  EXPECT_EQ(fired, expected);
  EXPECT_EQ(clk.armed_alarms(), 0U);
}

TEST(clock_timer, on_asio_clock_a_firing_timer_may_rearm_itself_and_destroy_another) {
  asio::io_context io{1};
  asio_clock clk(io.get_executor());
  int first = 0;
  int second = 0;
  std::unique_ptr<clock::timer> other = clk.make_timer([&] { ++second; });
  std::unique_ptr<clock::timer> t;
  t = clk.make_timer([&] {
    if (++first == 1) {
      t->arm(clk.now());  // again, due at once
      other.reset();      // armed and due, but gone before its turn
    } else {
      t.reset();
    }
  });
  t->arm(clk.now() - 2s);
  other->arm(clk.now() - 1s);
  io.run();
  EXPECT_EQ(first, 2);
  EXPECT_EQ(second, 0);
  EXPECT_EQ(t, nullptr);
}

TEST(clock_timer, on_asio_clock_cancel_all_lets_the_loop_finish) {
  asio::io_context io{1};
  asio_clock clk(io.get_executor());
  int fired = 0;
  auto a = clk.make_timer([&] { ++fired; });
  auto b = clk.make_timer([&] { ++fired; });
  a->arm(clk.now() + 24h);
  b->arm(clk.now() + 48h);
  clk.cancel_all();
  EXPECT_EQ(clk.armed_alarms(), 0U);
  io.run();  // returns at once: nothing is armed
  EXPECT_EQ(fired, 0);
  b->arm(clk.now());  // still usable
  io.restart();
  io.run();
  EXPECT_EQ(fired, 1);
}

}  // namespace
}  // namespace ebus::test
