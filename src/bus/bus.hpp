#pragma once
// The module bus: beehive's channel context (KubeEdge beehive pkg/core/context) on one event
// loop, with the gaps closed:
//  - FIFO per sender->receiver pair (beehive spawns a goroutine per group send and loses order);
//  - inboxes bounded in messages and bytes, charged to the daemon's memory budget, that never
//    block: a full inbox refuses the message with queue_full (memory_budget when the budget is
//    used up) and counts it, where beehive blocks the sender or piles up goroutines;
//  - unknown modules and empty groups fail at once with no_route instead of waiting out a timeout;
//  - a declared group keeps a bounded backlog while it has no member and hands it, in order, to
//    the first module that joins (beehive drops such messages): a slice per turn of the loop,
//    and only as fast as the module takes it, so neither the loop nor memory suffers;
//  - a request is registered before it is delivered, so a fast response can never be lost, and a
//    response is queued for its requester instead of being dropped when nobody waits at that
//    instant; a response after the deadline is dropped and counted;
//  - shutdown and module removal fail pending requests at once with a clear error.
//
// Thread safety: distinct objects safe; shared objects unsafe. Every member function must be
// called on the loop thread (the executor given at construction). Other threads post().

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bus/bus_error.hpp"
#include "bus/message.hpp"
#include "bus/message_queue.hpp"
#include "common/asio.hpp"
#include "common/clock.hpp"
#include "common/expected.hpp"
#include "common/memory_budget.hpp"
#include "common/string_hash.hpp"

namespace spdlog {
class logger;
}

namespace ebus::bus {

struct bus_options {
  std::size_t inbox_capacity = 1024;                           ///< beehive ChannelSizeDefault
  clock::duration default_timeout = std::chrono::seconds(30);  ///< beehive MessageTimeoutDefault
  std::size_t group_backlog = 0;  ///< messages kept per declared group with no member; 0: none
  /// Bytes (approximate_size) a local module's inbox may hold; see message_queue.hpp.
  std::size_t inbox_bytes = std::size_t{16} * 1024 * 1024;
  /// Bytes (approximate_size) a declared group's backlog may hold.
  std::size_t group_backlog_bytes = std::size_t{32} * 1024 * 1024;
  /// The daemon's memory budget, charged for every message kept in an inbox or a backlog; null:
  /// none. Must outlive the bus.
  memory_budget* budget = nullptr;
  /// At most this many messages, and about this many bytes, of a backlog are handed to a joining
  /// module per turn of the loop (at least one message). Small slices keep the loop turns short, so
  /// MQTT clients are answered between them.
  std::size_t hand_over_slice = 16;
  std::size_t hand_over_slice_bytes = std::size_t{128} * 1024;
};

/// Totals since construction. Every refused or lost message is counted somewhere here.
struct bus_stats {
  std::uint64_t delivered = 0;       ///< messages queued into an inbox or taken by a remote sink
  std::uint64_t queue_full = 0;      ///< refused: the inbox, outbound queue or group backlog was
                                     ///< at its message or byte limit
  std::uint64_t memory_budget = 0;   ///< refused: the memory budget was used up
  std::uint64_t too_large = 0;       ///< refused by a remote module's sink as too large to send
  std::uint64_t no_route = 0;        ///< sends to an unknown module or an undeclared empty group
  std::uint64_t backlogged = 0;      ///< messages kept in a group backlog for a later member
  std::uint64_t timeouts = 0;        ///< sync requests that reached their deadline
  std::uint64_t late_responses = 0;  ///< responses that matched no pending request, or came
                                     ///< from a module the request was not waiting for
  std::uint64_t cancelled = 0;       ///< sync requests failed by shutdown or module removal
};

/// Delivery into a module outside this process (a remote module on a socket). Called on the loop
/// thread with each message for that module; returns an empty error_code when the message was
/// taken, else the reason: bus_errc::queue_full when it cannot be taken now (then the sink must
/// leave the message as it was, and call bus::resume() once it has room again, so that a group
/// backlog being handed to it goes on), memory_budget, too_large or another error when it is
/// refused for good.
using remote_sink = std::function<std::error_code(message&&)>;

/// Whether a remote module's queue is over half its limits, for crowded(). A module that has
/// answered true calls bus::resume() once its queue is down to a quarter of them.
using remote_load = std::function<bool()>;

struct module_info {
  std::string name;
  std::vector<std::string> groups;
  bool remote = false;
  std::size_t queued = 0;              ///< messages waiting in the inbox (local modules)
  std::size_t queued_bytes = 0;        ///< their approximate_size() in total
  std::uint64_t refused = 0;           ///< messages refused: inbox or sink full, budget, too large
  std::vector<std::string> receiving;  ///< groups whose backlog is being handed to it
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

  /// Registers a module living outside the process; its messages go to `sink`, and `load` says
  /// whether its queue is crowded (none: never).
  expected<void, std::error_code> add_remote_module(std::string name, std::string group,
                                                    remote_sink sink, remote_load load = {});

  /// Adds a registered module to one more group. Fails with no_route for an unknown module.
  /// A module that joins a group with a backlog receives the backlog first (see declare_group).
  expected<void, std::error_code> join_group(std::string_view module, std::string group);

  /// Makes `group` keep up to options().group_backlog messages (and group_backlog_bytes) while
  /// it has no member, instead of refusing them with no_route. The first module to join it
  /// (add_module, add_remote_module, join_group) becomes a member at once and receives the
  /// backlog in order, after join_group() returns: a slice per turn of the loop (hand_over_slice
  /// messages or hand_over_slice_bytes), and only while its inbox has room for the next one (a
  /// remote module: until its sink says queue_full, then again from resume()). Group messages
  /// for it meanwhile are appended to the backlog, behind the older ones; a group request
  /// reaches it directly. A message its sink refuses for good (too_large, memory_budget) is
  /// counted and dropped. If it leaves first, the rest stays for the next module that joins.
  /// Idempotent; does nothing when group_backlog is 0 or after shutdown().
  void declare_group(std::string group);

  /// Tells the bus that remote module `module`'s sink has room again after a queue_full, or is
  /// back down to a quarter of its limits after its load said crowded: a backlog hand-over
  /// paused for it goes on, and a watch() on its groups is checked (in a later turn of the
  /// loop). Cheap; does nothing when nothing waits for it.
  void resume(std::string_view module);

  // --- flow control --------------------------------------------------------------------------
  //
  // A sender that can wait (the EventBus holding back the MQTT publisher of a device message)
  // asks crowded() after a send, and if so watch()es the group: the relief listener is called
  // once the group's members have drained.

  /// True when a member of `group` has its queue over half its limits (a local inbox in messages
  /// or bytes; a remote module as its remote_load says), or the group's backlog being handed to
  /// a member is. False for a group without members: nothing would drain it.
  [[nodiscard]] bool crowded(std::string_view group) const;

  /// Calls the relief listener with `group`, once, when crowded(group) is false again: checked
  /// in a later turn of the loop after a member drained to a quarter of its limits (a local
  /// inbox by taking, a remote module by calling resume()), a backlog slice was handed over,
  /// or a module left. Idempotent while the group is watched; nothing after shutdown().
  void watch(std::string_view group);

  /// The function watch() calls; replaces any earlier one.
  void set_relief_listener(std::function<void(const std::string& group)> fn) {
    relief_listener_ = std::move(fn);
  }

  /// Unregisters a module: its queued messages are discarded, a receive() waiting on it completes
  /// with `cancelled`, and pending requests addressed to it fail with `module_removed`.
  void remove_module(std::string_view name);

  [[nodiscard]] bool has_module(std::string_view name) const;
  [[nodiscard]] std::vector<module_info> modules() const;
  [[nodiscard]] std::vector<std::string> group_members(std::string_view group) const;
  [[nodiscard]] std::vector<std::string> groups() const;
  /// Messages waiting in `group`'s backlog; 0 for a group that was not declared.
  [[nodiscard]] std::size_t backlog_size(std::string_view group) const;
  /// Their approximate_size() in total.
  [[nodiscard]] std::size_t backlog_bytes(std::string_view group) const;
  /// True while `group`'s backlog is being handed to a module.
  [[nodiscard]] bool handing_over(std::string_view group) const;

  // --- messaging -----------------------------------------------------------------------------

  /// Queues `msg` for `module` (beehive Send), never blocking.
  /// Errors: no_route, queue_full, memory_budget, too_large (remote), cancelled.
  expected<void, std::error_code> send(std::string_view module, message msg);

  /// Queues a copy of `msg` for every member of `group` (beehive SendToGroup), never blocking.
  /// Returns how many members took it; members with a full inbox are skipped and counted.
  /// A declared group with no member keeps `msg` in its backlog and returns 0; a member still
  /// receiving the group's backlog takes it behind the backlog (the backlog keeps it for it).
  /// Errors: no_route (no such group or no member, not declared), queue_full (backlog full),
  /// memory_budget, or the first error when no member took it. `msg` is taken (moved from)
  /// whatever the result: by reference, so that the hot path moves it once less.
  expected<std::size_t, std::error_code> send_to_group(std::string_view group, message&& msg);
  /// The same, and sets `crowded_after` to crowded(group) as the send left it, at the cost of
  /// no second lookup of the group.
  expected<std::size_t, std::error_code> send_to_group(std::string_view group, message&& msg,
                                                       bool& crowded_after);

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
  /// `responder`, the answering module's name, counts one answer per module: a request takes
  /// an answer only from a module it still waits for (a member answering twice does not complete
  /// a group request), and a group request still waiting for other members fails at once when
  /// one of them leaves, without failing it for a member that has already answered. An empty
  /// `responder` (a caller that cannot name itself) counts as an answer from any module.
  /// Errors: invalid_message (no parent id), no_pending_request (late, unknown, or from a module
  /// the request is not waiting for; counted).
  expected<void, std::error_code> send_resp(message response, std::string_view responder = {});

  /// Fails every pending request with `cancelled`, closes every inbox, discards every backlog
  /// (a hand-over in progress stops) and refuses further work.
  void shutdown();

  [[nodiscard]] const bus_stats& stats() const noexcept { return stats_; }
  [[nodiscard]] std::size_t pending_requests() const noexcept { return pending_.size(); }
  [[nodiscard]] const bus_options& options() const noexcept { return options_; }

 private:
  struct mailbox;
  struct pending_request;
  /// Rate limit of one warning: at most one line per interval, with the count since the last.
  struct warning_limit {
    std::uint64_t since_last = 0;
    std::optional<clock::time_point> quiet_until;
  };
  struct backlog {
    backlog(std::size_t capacity, std::size_t bytes, memory_budget* budget)
        : queue(capacity, bytes, budget) {}
    message_queue queue;
    std::shared_ptr<mailbox> receiver;  // the module it is being handed to, if any
    bool slice_posted = false;          // a hand_over_slice() is on its way
    bool paused = false;                // waiting for the receiver to make room
    std::uint64_t handed = 0;           // messages handed to the receiver so far
    std::uint64_t refused = 0;
    warning_limit warning;
  };
  template <class T>
  using string_map = std::unordered_map<std::string, T, string_hash, std::equal_to<>>;
  using mailbox_ptr = std::shared_ptr<mailbox>;
  using request_ptr = std::shared_ptr<pending_request>;

  expected<void, std::error_code> register_module(std::string name, std::string group,
                                                  remote_sink sink, remote_load load);
  /// crowded() of a group with these members and this backlog (null: none declared).
  [[nodiscard]] static bool crowded(std::span<const mailbox_ptr> members, const backlog* bl);
  /// Checks the watched groups in a later turn of the loop (one check for many calls).
  void post_relief_check();
  void check_relief();
  std::error_code deliver(mailbox& mb, message&& msg);
  /// Counts and (rate-limited) logs a message `mb` did not take; returns `ec`.
  std::error_code refused(mailbox& mb, std::error_code ec, std::size_t bytes, refusal why);
  /// Wakes a receive() waiting on `mb` after a push.
  static void notify(mailbox& mb);
  /// Takes the oldest message of a local inbox; resumes a hand-over paused for room.
  std::optional<message> take(mailbox& mb);
  void close(mailbox& mb);
  expected<request_ptr, std::error_code> begin_request(message& msg, duration timeout,
                                                       std::vector<std::string> awaiting);
  void complete(pending_request& req, std::error_code ec);
  static awaitable<void> wait(const request_ptr& req);
  void schedule_wake(clock::time_point at);
  void on_wake(clock::time_point armed);
  /// Counts one event for `w`; the count since the last line when a line is due now.
  std::optional<std::uint64_t> due(warning_limit& w);
  expected<std::size_t, std::error_code> keep(std::string_view group, backlog& bl, message&& msg);
  void post_slice(const std::string& group, backlog& bl);
  void hand_over_slice(const std::string& group);
  void finish_hand_over(const std::string& group, backlog& bl);
  void stop_hand_over(const std::string& group, backlog& bl);

  // What send_to_group() found for a group, and the receiving side for a module: the EventBus
  // sends to the same two groups all day and a module receives under one name, and hashing the
  // name for each lookup (twice for a group: members and backlog) costs more than the rest of a
  // send. Forgotten whenever a module, a group member or a backlog is added or removed.
  struct group_route {
    std::string name;
    std::vector<mailbox_ptr>* members = nullptr;  // null: no member
    backlog* bl = nullptr;                        // null: not declared
    bool known = false;
  };
  struct module_route {
    std::string name;
    mailbox* mb = nullptr;  // null: no such module
    bool known = false;
  };
  group_route& route_to_group(std::string_view group);
  /// The module's mailbox, or null when there is none.
  mailbox* find_module(std::string_view module);
  void forget_routes() noexcept;

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
  std::vector<std::string> watched_;  // groups watch()ed and not relieved yet (a handful)
  std::function<void(const std::string&)> relief_listener_;
  bool relief_posted_ = false;
  bool stopped_ = false;
  bus_stats stats_;
  std::array<group_route, 2> group_routes_;
  std::size_t next_group_route_ = 0;  // the one replaced next
  module_route module_route_;
};

}  // namespace ebus::bus
