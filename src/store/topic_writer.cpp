#include "store/topic_writer.hpp"

#include <algorithm>
#include <exception>
#include <utility>
#include <vector>

#include "common/log.hpp"

namespace ebus::store {
namespace {

// A failing database fails every batch: say so at most this often, with the count.
constexpr auto failure_log_interval = std::chrono::seconds(10);

}  // namespace

topic_writer::topic_writer(topic_store db, writer_options options, completion on_done)
    : db_(std::move(db)),
      options_(std::move(options)),
      on_done_(std::move(on_done)),
      path_(db_.path()),
      log_(log::get("store")) {
  if (options_.max_batch == 0) options_.max_batch = 1;
  db_.set_give_up([this] { return past_deadline(); });
  thread_ = std::thread([this] { run(); });
}

topic_writer::~topic_writer() {
  close();
}

std::chrono::steady_clock::time_point topic_writer::now() const {
  return options_.now ? options_.now() : std::chrono::steady_clock::now();
}

bool topic_writer::past_deadline() const {
  if (!deadline_set_.load(std::memory_order_acquire)) return false;
  return now().time_since_epoch().count() >= deadline_.load(std::memory_order_acquire);
}

expected<std::uint64_t, std::string> topic_writer::submit(topic_write w) {
  const std::size_t bytes = w.topic.size() + write_overhead;
  std::uint64_t seq = 0;
  {
    std::lock_guard lock(mutex_);
    if (closing_) {
      ++stats_.refused;
      return fail(std::string("the store is closed (shutting down)"));
    }
    if (stats_.pending >= options_.max_pending ||
        bytes > options_.max_pending_bytes -
                    std::min(options_.max_pending_bytes, stats_.pending_bytes)) {
      ++stats_.refused;
      return fail("store queue full: " + std::to_string(stats_.pending) + " writes / " +
                  std::to_string(stats_.pending_bytes) + " bytes waiting (limits " +
                  std::to_string(options_.max_pending) + " / " +
                  std::to_string(options_.max_pending_bytes) + ")");
    }
    seq = next_seq_++;
    queue_.push_back(std::move(w));
    ++stats_.accepted;
    ++stats_.pending;
    stats_.pending_bytes += bytes;
    stats_.peak_pending = std::max(stats_.peak_pending, stats_.pending);
  }
  wake_.notify_one();
  return seq;
}

void topic_writer::begin_close() {
  {
    std::lock_guard lock(mutex_);
    if (closing_) return;
    closing_ = true;
    at_close_ = stats_;
    deadline_.store((now() + options_.shutdown_timeout).time_since_epoch().count(),
                    std::memory_order_release);
    deadline_set_.store(true, std::memory_order_release);
    if (stats_.pending != 0) {
      log_->info("closing path=\"{}\" pending={} bytes={} timeout_ms={}", path_, stats_.pending,
                 stats_.pending_bytes, options_.shutdown_timeout.count());
    }
  }
  wake_.notify_one();
}

close_summary topic_writer::close() {
  begin_close();
  std::lock_guard join_lock(join_mutex_);
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  if (summary_) return *summary_;
  close_summary s;
  s.pending = at_close_.pending;
  s.flushed = stats_.committed - at_close_.committed;
  s.failed = stats_.failed - at_close_.failed;
  s.abandoned = stats_.abandoned - at_close_.abandoned;
  summary_ = s;
  if (s.failed != 0 || s.abandoned != 0) {
    log_->warn(
        "closed path=\"{}\" pending={} flushed={} failed={} abandoned={}: the failed and "
        "abandoned subscription changes are not in sub_topics",
        path_, s.pending, s.flushed, s.failed, s.abandoned);
  } else if (s.pending != 0) {
    log_->info("closed path=\"{}\" pending={} flushed={}", path_, s.pending, s.flushed);
  }
  return s;
}

writer_stats topic_writer::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void topic_writer::note_failure(const std::string& error, std::size_t writes) {
  ++failures_since_log_;
  const auto t = std::chrono::steady_clock::now();
  if (last_failure_log_ != std::chrono::steady_clock::time_point{} &&
      t - last_failure_log_ < failure_log_interval) {
    return;
  }
  last_failure_log_ = t;
  log_->error("write_failed writes={} error=\"{}\" failed_transactions={} (since last report: {})",
              writes, error, stats_.failed_transactions, failures_since_log_);
  failures_since_log_ = 0;
}

void topic_writer::run() {
  std::vector<topic_write> batch;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return closing_ || !queue_.empty(); });
    if (queue_.empty()) return;  // closing, and everything accepted has been reported

    batch_outcome out;
    out.first_seq = head_seq_;
    std::size_t bytes = 0;
    if (closing_ && past_deadline()) {
      // Shutdown took too long: report the rest without trying it.
      out.last_seq = head_seq_ + queue_.size() - 1;
      out.result = batch_outcome::status::abandoned;
      out.error = "abandoned at shutdown: not written within the shutdown timeout of " +
                  std::to_string(options_.shutdown_timeout.count()) + " ms";
      for (const auto& w : queue_)
        bytes += w.topic.size() + write_overhead;
      stats_.abandoned += queue_.size();
      stats_.pending -= queue_.size();
      stats_.pending_bytes -= bytes;
      head_seq_ += queue_.size();
      queue_.clear();
    } else {
      const std::size_t n = std::min(queue_.size(), options_.max_batch);
      batch.clear();
      batch.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        bytes += queue_.front().topic.size() + write_overhead;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      head_seq_ += n;
      out.last_seq = out.first_seq + n - 1;
      lock.unlock();

      if (options_.before_batch) options_.before_batch(n);
      auto applied = db_.apply(batch);

      lock.lock();
      stats_.largest_batch = std::max(stats_.largest_batch, n);
      stats_.pending -= n;
      stats_.pending_bytes -= bytes;
      if (applied) {
        stats_.committed += n;
        ++stats_.transactions;
      } else {
        out.result = batch_outcome::status::failed;
        out.error = std::move(applied.error());
        stats_.failed += n;
        ++stats_.failed_transactions;
        note_failure(out.error, n);
      }
    }
    lock.unlock();
    try {
      if (on_done_) on_done_(std::move(out));
    } catch (const std::exception& e) {
      log_->error("completion_failed error=\"{}\"", e.what());
    }
    lock.lock();
  }
}

}  // namespace ebus::store
