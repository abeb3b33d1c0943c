#pragma once
// The sub_topics table behind a store thread: subscriptions made at run time survive restarts,
// and SQLite never runs on the event loop.
//
// Thread safety: loop thread (add, remove); open() and close() from the thread that owns the
// object, not concurrently with add/remove.

#include <memory>
#include <string>
#include <vector>

#include "common/expected.hpp"

namespace ebus::store {
class store_thread;
class topic_store;
}  // namespace ebus::store

namespace ebus::eventbus {

class persisted_topics {
 public:
  struct opened;

  /// Opens the database at `path` on a new store thread and reads the stored topics; waits for
  /// both (start-up only, before the loop runs). The error names the path and the reason.
  static expected<opened, std::string> open(const std::string& path);

  persisted_topics(const persisted_topics&) = delete;
  persisted_topics& operator=(const persisted_topics&) = delete;
  ~persisted_topics();  // close()

  /// Queues INSERT OR REPLACE / DELETE; failures are logged by the store thread.
  void add(std::string topic);
  void remove(std::string topic);

  /// Runs every queued write, then closes the database. Idempotent.
  void close();

 private:
  persisted_topics();

  std::unique_ptr<store::store_thread> thread_;
  std::unique_ptr<store::topic_store> store_;  // used on the store thread only
};

struct persisted_topics::opened {
  std::unique_ptr<persisted_topics> store;
  std::vector<std::string> topics;
};

}  // namespace ebus::eventbus
