#pragma once
// The store thread: one worker that owns the topic_store and applies sub_topics writes in
// batches, so that SQLite never runs on the event loop and a burst of writes costs a few
// transactions instead of one each.
//
//  - submit() queues one write and returns its sequence number (1, 2, ...), never blocking. The
//    queue is bounded in operations and in bytes, counting writes not yet finished (queued or in
//    the transaction under way); a write that does not fit is refused with the reason.
//  - The worker takes every queued write, up to max_batch, and applies them in ONE transaction
//    (topic_store::apply: all or nothing). Then it reports the batch to `on_done`: the sequence
//    numbers it covered and whether it committed (durable: fsynced), failed (rolled back, nothing
//    of it written) or was abandoned at shutdown (never tried). Reports come in sequence order,
//    on the worker thread.
//  - close() stops accepting writes, lets the worker finish the backlog until shutdown_timeout
//    has passed, abandons what is left (a wait for a lock is cut short too), joins the thread and
//    logs what it did (logger "store"): writes pending, flushed, failed, abandoned.
//
// Thread safety: submit(), stats() and close() may be called from any thread; on_done and the
// test hooks run on the worker thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/expected.hpp"
#include "store/topic_store.hpp"

namespace spdlog {
class logger;
}

namespace ebus::store {

struct writer_options {
  /// Writes accepted and not yet finished (committed, failed or abandoned).
  std::size_t max_pending = 10000;
  /// Their bytes: topic bytes plus write_overhead for each.
  std::size_t max_pending_bytes = std::size_t{4} * 1024 * 1024;
  /// Writes per transaction at most: bounds how long one transaction holds the file's write
  /// lock, which edgecore shares.
  std::size_t max_batch = 1000;
  /// How long close() lets the backlog be written before abandoning the rest.
  std::chrono::milliseconds shutdown_timeout{5000};

  // Test hooks. `now` must be callable from any thread; default std::chrono::steady_clock.
  std::function<std::chrono::steady_clock::time_point()> now{};
  /// Runs on the worker before each transaction with the number of writes in it.
  std::function<void(std::size_t writes)> before_batch{};
};

/// What became of the writes with sequence numbers first_seq..last_seq.
struct batch_outcome {
  enum class status : std::uint8_t { committed, failed, abandoned };
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  status result = status::committed;
  std::string error;  ///< failed / abandoned: why
};

/// Totals since construction.
struct writer_stats {
  std::uint64_t accepted = 0;             ///< writes queued by submit()
  std::uint64_t refused = 0;              ///< writes refused: queue full or closed
  std::uint64_t committed = 0;            ///< writes committed
  std::uint64_t failed = 0;               ///< writes in a transaction that failed (rolled back)
  std::uint64_t abandoned = 0;            ///< writes dropped by close() after shutdown_timeout
  std::uint64_t transactions = 0;         ///< transactions committed
  std::uint64_t failed_transactions = 0;  ///< transactions rolled back
  std::size_t pending = 0;                ///< writes not yet finished, now
  std::size_t pending_bytes = 0;
  std::size_t peak_pending = 0;
  std::size_t largest_batch = 0;
};

/// What close() did with the writes pending when it was called.
struct close_summary {
  std::size_t pending = 0;    ///< writes not yet finished when close() began
  std::uint64_t flushed = 0;  ///< of those (and any finished meanwhile), committed
  std::uint64_t failed = 0;
  std::uint64_t abandoned = 0;
};

class topic_writer {
 public:
  /// Accounting size of one write besides its topic bytes.
  static constexpr std::size_t write_overhead = 64;

  using completion = std::function<void(batch_outcome)>;

  /// Starts the worker, which owns `db` from now on.
  topic_writer(topic_store db, writer_options options, completion on_done);
  topic_writer(const topic_writer&) = delete;
  topic_writer& operator=(const topic_writer&) = delete;
  ~topic_writer();  // close()

  /// Queues `w`; its sequence number, or why it was refused (queue full, closed).
  expected<std::uint64_t, std::string> submit(topic_write w);

  /// Refuses further writes and starts the shutdown deadline; does not wait. Idempotent.
  void begin_close();
  /// begin_close(), then waits for the worker to finish (bounded by shutdown_timeout plus the
  /// transaction under way) and logs the summary. Idempotent: later calls return the first
  /// summary.
  close_summary close();

  [[nodiscard]] writer_stats stats() const;
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  void run();
  [[nodiscard]] std::chrono::steady_clock::time_point now() const;
  [[nodiscard]] bool past_deadline() const;
  void note_failure(const std::string& error, std::size_t writes);

  topic_store db_;  // worker thread only
  writer_options options_;
  completion on_done_;
  std::string path_;
  std::shared_ptr<spdlog::logger> log_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<topic_write> queue_;  // not yet taken by the worker
  std::uint64_t next_seq_ = 1;     // of the next submit()
  std::uint64_t head_seq_ = 1;     // of queue_.front()
  writer_stats stats_;
  bool closing_ = false;
  writer_stats at_close_;  // stats_ when close began
  std::optional<close_summary> summary_;
  std::chrono::steady_clock::time_point last_failure_log_{};
  std::uint64_t failures_since_log_ = 0;

  // Read by the busy handler without the mutex.
  std::atomic<bool> deadline_set_{false};
  std::atomic<std::chrono::steady_clock::rep> deadline_{0};

  std::mutex join_mutex_;
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace ebus::store
