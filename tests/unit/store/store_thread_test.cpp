#include "store/store_thread.hpp"

#include <atomic>
#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace ebus::store {
namespace {

TEST(store_thread, runs_jobs_in_the_order_posted) {
  std::vector<int> order;  // touched only by the worker until stop() has joined it
  store_thread t;
  for (int i = 0; i < 1000; ++i)
    ASSERT_TRUE(t.post([&order, i] { order.push_back(i); }));
  t.stop();
  ASSERT_EQ(order.size(), 1000U);
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(order[static_cast<std::size_t>(i)], i);
}

TEST(store_thread, keeps_each_posters_order_when_threads_post_concurrently) {
  constexpr int posters = 4;
  constexpr int per_poster = 250;
  std::vector<std::vector<int>> seen(posters);
  store_thread t;
  std::vector<std::thread> threads;
  for (int p = 0; p < posters; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < per_poster; ++i)
        ASSERT_TRUE(t.post([&seen, p, i] { seen[static_cast<std::size_t>(p)].push_back(i); }));
    });
  }
  for (auto& th : threads)
    th.join();
  t.stop();
  for (const auto& s : seen) {
    ASSERT_EQ(s.size(), static_cast<std::size_t>(per_poster));
    for (int i = 0; i < per_poster; ++i)
      EXPECT_EQ(s[static_cast<std::size_t>(i)], i);
  }
}

TEST(store_thread, stop_runs_every_job_posted_before_it) {
  int ran = 0;
  store_thread t;
  // Holds the worker until stop() has begun (posts start failing), so the other jobs are
  // still queued when stop() is called.
  ASSERT_TRUE(t.post([&t] {
    while (t.post([] {}))
      std::this_thread::yield();
  }));
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(t.post([&ran] { ++ran; }));
  t.stop();
  EXPECT_EQ(ran, 100);
}

TEST(store_thread, destructor_drains_the_queue) {
  int ran = 0;
  {
    store_thread t;
    for (int i = 0; i < 10; ++i)
      t.post([&ran] { ++ran; });
  }
  EXPECT_EQ(ran, 10);
}

TEST(store_thread, post_after_stop_is_refused_and_stop_is_idempotent) {
  bool ran = false;
  store_thread t;
  t.stop();
  EXPECT_FALSE(t.post([&ran] { ran = true; }));
  t.stop();
  EXPECT_FALSE(ran);
}

TEST(store_thread, stop_from_a_job_refuses_later_posts_and_drains) {
  std::vector<int> order;
  store_thread t;
  std::promise<bool> refused;
  ASSERT_TRUE(t.post([&] {
    t.stop();
    refused.set_value(!t.post([] {}));
  }));
  // Posted before the job above ran or after: either it runs, or the post is refused.
  const bool second_queued = t.post([&order] { order.push_back(2); });
  EXPECT_TRUE(refused.get_future().get());
  t.stop();
  EXPECT_EQ(order.size(), second_queued ? 1U : 0U);
}

TEST(store_thread, a_throwing_job_does_not_stop_the_next_ones) {
  std::vector<int> order;
  store_thread t;
  t.post([&order] { order.push_back(1); });
  t.post([] { throw std::runtime_error("disk on fire"); });
  t.post([] { throw 42; });
  t.post([&order] { order.push_back(2); });
  t.stop();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(store_thread, runs_jobs_on_a_thread_other_than_the_callers) {
  std::thread::id first;
  std::thread::id second;
  store_thread t;
  t.post([&first] { first = std::this_thread::get_id(); });
  t.post([&second] { second = std::this_thread::get_id(); });
  t.stop();
  EXPECT_NE(first, std::thread::id{});
  EXPECT_NE(first, std::this_thread::get_id());
  EXPECT_EQ(first, second);  // one worker: SQLite's connection stays on one thread
}

}  // namespace
}  // namespace ebus::store
