#pragma once
// The sub_topics table as the event loop sees it: writes are handed to the store thread
// (store/topic_writer.hpp), which batches them into few transactions, and each write's outcome
// comes back on the loop, in the order the writes were made.
//
//  - add() / remove() queue one write and call `done` on the loop once it is durable (committed
//    and fsynced) or has failed; they refuse at once, without calling `done`, when the store
//    queue is full or closed.
//  - barrier() calls its function on the loop once every write made before it has been reported:
//    how a query answer, or a sync confirmation, can mean "on disk".
//  - close() writes what it can within shutdown_timeout, then reports every write left as
//    failed, on the loop thread, before it returns.
//
// Outcomes are posted to the loop executor: give it in the options, or bind() it before the
// first write is made (eventbus_module::run() binds its own executor).
//
// Thread safety: loop thread only (open() at start-up, before the loop runs).

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/asio.hpp"
#include "common/expected.hpp"
#include "store/topic_writer.hpp"

namespace ebus::eventbus {

struct persisted_options {
  /// Store queue bounds, batch size and shutdown bound (see store::writer_options).
  store::writer_options writer{};
  /// How long a write waits for a lock that edgecore holds on the file.
  std::chrono::milliseconds busy_timeout = store::topic_store::default_busy_timeout;
  /// Where outcomes are delivered; may be left empty and bound later with bind().
  asio::any_io_executor loop{};
};

class persisted_topics {
 public:
  struct opened;
  /// The outcome of one write: nothing, or why it is not in the table.
  using result = expected<void, std::string>;
  using result_handler = std::function<void(const result&)>;

  /// Opens the database at `path`, reads the stored topics and starts the store thread (start-up
  /// only, before the loop runs). The error names the path and the reason.
  static expected<opened, std::string> open(const std::string& path,
                                            persisted_options options = {});

  persisted_topics(const persisted_topics&) = delete;
  persisted_topics& operator=(const persisted_topics&) = delete;
  ~persisted_topics();  // close()

  /// Sets the loop executor outcomes are posted to, if none was given. Idempotent.
  void bind(asio::any_io_executor loop);

  /// Queues INSERT OR REPLACE / DELETE of `topic`. `done` runs on the loop once the write has
  /// committed or failed. Fails at once (and `done` never runs) when the queue is full or the
  /// store closed; the error says which.
  result add(std::string topic, result_handler done);
  result remove(std::string topic, result_handler done);

  /// Runs `done` once every write queued before this call has been reported; at once when none
  /// is outstanding.
  void barrier(std::function<void()> done);

  /// Writes made and not yet reported on the loop.
  [[nodiscard]] std::size_t unconfirmed() const noexcept { return waiting_.size(); }
  [[nodiscard]] store::writer_stats stats() const;

  /// Stops accepting writes, flushes within the shutdown timeout (logging what it does), joins
  /// the store thread and reports every outcome still due. Idempotent.
  void close();

 private:
  struct shared;
  struct waiting_write {
    std::uint64_t seq;
    result_handler done;
  };

  explicit persisted_topics(std::shared_ptr<shared> state);
  result submit(store::topic_write w, result_handler done);
  void deliver();

  std::shared_ptr<shared> shared_;  // the store thread reports into it
  std::unique_ptr<store::topic_writer> writer_;
  std::deque<waiting_write> waiting_;
  std::deque<std::pair<std::uint64_t, std::function<void()>>> barriers_;
  std::uint64_t last_seq_ = 0;  // of the last write accepted
  bool closed_ = false;
};

struct persisted_topics::opened {
  std::unique_ptr<persisted_topics> store;
  std::vector<std::string> topics;
};

}  // namespace ebus::eventbus
