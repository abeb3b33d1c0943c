#pragma once
// The module bus: beehive's channel context (KubeEdge beehive pkg/core/context) on one event
// loop, with the gaps closed:
//  - FIFO per sender->receiver pair (beehive spawns a goroutine per group send and loses order);
//  - bounded inboxes that never block: a full inbox refuses the message with queue_full and
//    counts it, where beehive blocks the sender or piles up goroutines;
//  - unknown modules and empty groups fail at once with no_route instead of waiting out a timeout;
//  - a declared group keeps a bounded backlog while it has no member and hands it, in order, to
//    the first module that joins (beehive drops such messages);
//  - a request is registered before it is delivered, so a fast response can never be lost, and a
//    response is queued for its requester instead of being dropped when nobody waits at that
//    instant; a response after the deadline is dropped and counted;
//  - shutdown and module removal fail pending requests at once with a clear error.
//
// Thread safety: distinct objects safe; shared objects unsafe. Every member function must be
// called on the loop thread (the executor given at construction). Other threads post().

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bus/bounded_queue.hpp"
#include "bus/bus_error.hpp"
#include "bus/message.hpp"
#include "common/asio.hpp"
#include "common/clock.hpp"
#include "common/expected.hpp"

namespace spdlog {
class logger;
}

namespace ebus::bus {

struct bus_options {
  std::size_t inbox_capacity = 1024;                           ///< beehive ChannelSizeDefault
  clock::duration default_timeout = std::chrono::seconds(30);  ///< beehive MessageTimeoutDefault
  std::size_t group_backlog = 0;  ///< messages kept per declared group with no member; 0: none
};

/// Totals since construction. Every refused or lost message is counted somewhere here.
struct bus_stats {
  std::uint64_t delivered = 0;       ///< messages queued into an inbox or taken by a remote sink
  std::uint64_t queue_full = 0;      ///< messages refused because the destination was full
  std::uint64_t no_route = 0;        ///< sends to an unknown module or an undeclared empty group
  std::uint64_t backlogged = 0;      ///< messages kept in a group backlog for a later member
  std::uint64_t timeouts = 0;        ///< sync requests that reached their deadline
  std::uint64_t late_responses = 0;  ///< responses that matched no pending request
  std::uint64_t cancelled = 0;       ///< sync requests failed by shutdown or module removal
};

/// Delivery into a module outside this process (a remote module on a socket). Called on the loop
/// thread with each message for that module; returns bus_errc::queue_full (or another error)
/// when the message cannot be taken now, an empty error_code when it was taken.
using remote_sink = std::function<std::error_code(message&&)>;

struct module_info {
  std::string name;
  std::vector<std::string> groups;
  bool remote = false;
  std::size_t queued = 0;     ///< messages waiting in the inbox (local modules)
  std::uint64_t refused = 0;  ///< messages refused because the inbox was full
};

class bus {
 public:
  using duration = clock::duration;

  bus(asio::any_io_executor executor, clock& clk, bus_options options = {});
  bus(const bus&) = delete;
  bus& operator=(const bus&) = delete;
  ~bus();

  // --- registry ------------------------------------------------------------------------------

  /// Registers a local module with an inbox; joins `group` when not empty (beehive AddModule +
  /// AddModuleGroup). Fails with duplicate_module, or cancelled after shutdown().
  expected<void, std::error_code> add_module(std::string name, std::string group = {});

  /// Registers a module living outside the process; its messages go to `sink`.
  expected<void, std::error_code> add_remote_module(std::string name, std::string group,
                                                    remote_sink sink);

  /// Adds a registered module to one more group. Fails with no_route for an unknown module.
  /// A module that joins a group with a backlog receives the backlog first (see declare_group).
  expected<void, std::error_code> join_group(std::string_view module, std::string group);

  /// Makes `group` keep up to options().group_backlog messages while it has no member, instead
  /// of refusing them with no_route. The first module to join it (add_module,
  /// add_remote_module, join_group) receives them right away, in order, each through its inbox
  /// or sink as any other message; what it cannot take is refused and counted as queue_full.
  /// Idempotent; does nothing when group_backlog is 0 or after shutdown().
  void declare_group(std::string group);

  /// Unregisters a module: its queued messages are discarded, a receive() waiting on it completes
  /// with `cancelled`, and pending requests addressed to it fail with `module_removed`.
  void remove_module(std::string_view name);

  [[nodiscard]] bool has_module(std::string_view name) const;
  [[nodiscard]] std::vector<module_info> modules() const;
  [[nodiscard]] std::vector<std::string> group_members(std::string_view group) const;
  [[nodiscard]] std::vector<std::string> groups() const;
  /// Messages waiting in `group`'s backlog; 0 for a group that was not declared.
  [[nodiscard]] std::size_t backlog_size(std::string_view group) const;

  // --- messaging -----------------------------------------------------------------------------

  /// Queues `msg` for `module` (beehive Send), never blocking.
  /// Errors: no_route, queue_full, cancelled.
  expected<void, std::error_code> send(std::string_view module, message msg);

  /// Queues a copy of `msg` for every member of `group` (beehive SendToGroup), never blocking.
  /// Returns how many members took it; members with a full inbox are skipped and counted.
  /// A declared group with no member keeps `msg` in its backlog and returns 0.
  /// Errors: no_route (no such group or no member, not declared), queue_full (backlog full), or
  /// the first error when no member took it.
  expected<std::size_t, std::error_code> send_to_group(std::string_view group, message msg);

  /// Takes the oldest message of `module`'s inbox, waiting until one arrives (beehive Receive).
  /// Errors: no_route (unknown or remote module), cancelled (module removed or bus shut down).
  awaitable<expected<message, std::error_code>> receive(std::string_view module);

  /// Takes the oldest message without waiting; nullopt when the inbox is empty or unknown.
  std::optional<message> try_receive(std::string_view module);

  /// Sends a request to `module` and waits for the response whose parent_msg_id is the request's
  /// id (beehive SendSync). Sets header.sync; assigns an id when the message has none.
  /// `timeout` <= 0 means the default (30 s). Errors: no_route, queue_full, timeout,
  /// module_removed, cancelled, duplicate_request.
  awaitable<expected<message, std::error_code>> send_sync(std::string_view module, message msg,
                                                          duration timeout = {});

  /// Sends a request to every member of `group` and waits for one response per member, in
  /// arrival order (beehive SendToGroupSync). Fails at once with queue_full if any member cannot
  /// take the request, and with module_removed when a member leaves the bus before answering.
  /// An empty group fails with no_route even when declared: a request cannot wait for a member
  /// that may never come. Errors as send_sync.
  awaitable<expected<std::vector<message>, std::error_code>> send_to_group_sync(
      std::string_view group, message msg, duration timeout = {});

  /// Hands a response to the request it answers (matched by parent_msg_id; beehive SendResp).
  /// `responder`, the answering module's name, lets a group request that is still waiting for
  /// other members fail at once when one of them leaves, without failing it for a member that
  /// has already answered.
  /// Errors: invalid_message (no parent id), no_pending_request (late or unknown; counted).
  expected<void, std::error_code> send_resp(message response, std::string_view responder = {});

  /// Fails every pending request with `cancelled`, closes every inbox, discards every backlog
  /// and refuses further work.
  void shutdown();

  [[nodiscard]] const bus_stats& stats() const noexcept { return stats_; }
  [[nodiscard]] std::size_t pending_requests() const noexcept { return pending_.size(); }
  [[nodiscard]] const bus_options& options() const noexcept { return options_; }

 private:
  struct mailbox;
  struct pending_request;
  struct backlog {
    explicit backlog(std::size_t capacity) : queue(capacity) {}
    bounded_queue<message> queue;
    std::uint64_t refused = 0;
    std::uint64_t refused_since_warning = 0;
    std::optional<clock::time_point> quiet_until;  // rate limit of the backlog_full warning
  };
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  template <class T>
  using string_map = std::unordered_map<std::string, T, string_hash, std::equal_to<>>;
  using mailbox_ptr = std::shared_ptr<mailbox>;
  using request_ptr = std::shared_ptr<pending_request>;

  expected<void, std::error_code> register_module(std::string name, std::string group,
                                                  remote_sink sink);
  std::error_code deliver(mailbox& mb, message&& msg);
  void close(mailbox& mb);
  expected<request_ptr, std::error_code> begin_request(message& msg, duration timeout,
                                                       std::vector<std::string> awaiting);
  void complete(pending_request& req, std::error_code ec);
  static awaitable<void> wait(const request_ptr& req);
  void schedule_wake(clock::time_point at);
  void on_wake(clock::time_point armed);
  void warn_full(mailbox& mb);
  expected<std::size_t, std::error_code> keep(std::string_view group, backlog& bl, message&& msg);
  void hand_over(const std::string& group, backlog& bl, mailbox& mb);

  asio::any_io_executor executor_;
  clock& clock_;
  bus_options options_;
  std::shared_ptr<spdlog::logger> log_;
  string_map<mailbox_ptr> modules_;
  string_map<std::vector<mailbox_ptr>> groups_;
  string_map<backlog> backlogs_;  // declared groups
  string_map<request_ptr> pending_;
  std::multimap<clock::time_point, std::string> deadlines_;
  std::optional<clock::time_point> armed_;  // earliest outstanding wake-up
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool stopped_ = false;
  bus_stats stats_;
};

}  // namespace ebus::bus
