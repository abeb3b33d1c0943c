#include "store/store_thread.hpp"

#include <exception>
#include <utility>

#include "common/log.hpp"

namespace ebus::store {

store_thread::store_thread() : thread_([this] { run(); }), worker_id_(thread_.get_id()) {}

store_thread::~store_thread() {
  stop();
}

bool store_thread::post(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

void store_thread::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (std::this_thread::get_id() == worker_id_) return;
  std::lock_guard lock(join_mutex_);
  if (thread_.joinable()) thread_.join();
}

void store_thread::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and everything posted before has run
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    try {
      if (job) job();
    } catch (const std::exception& e) {
      log::get("store")->error("job_failed error={}", e.what());
    } catch (...) {
      log::get("store")->error("job_failed error=unknown exception");
    }
    // Destroyed before relocking: a captured object's destructor may post().
    job = nullptr;
    lock.lock();
  }
}

}  // namespace ebus::store
