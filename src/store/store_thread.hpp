#pragma once
// One worker thread that runs jobs in the order posted, so that SQLite (and other blocking
// work) never runs on the event loop. stop() runs every job already posted, then joins.
//
// Thread safety: post() may be called from any thread.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace ebus::store {

class store_thread {
 public:
  store_thread();
  store_thread(const store_thread&) = delete;
  store_thread& operator=(const store_thread&) = delete;
  ~store_thread();  // stop()

  /// Queues `job`; false (job dropped) after stop().
  bool post(std::function<void()> job);

  /// Refuses further posts, runs every job already queued, then joins the thread. Idempotent.
  /// Called from a job it cannot join its own thread: it only refuses further posts, and the
  /// thread ends once the queue is empty.
  void stop();

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::mutex join_mutex_;  // two threads calling stop() must not both join
  std::thread thread_;
  std::thread::id worker_id_;  // lets stop() called from a job skip joining its own thread
};

}  // namespace ebus::store
