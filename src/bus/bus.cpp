#include "bus/bus.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "common/log.hpp"

namespace ebus::bus {

namespace {
constexpr auto warning_interval = std::chrono::seconds(10);

std::error_code err(bus_errc e) {
  return make_error_code(e);
}

std::size_t budget_used(const memory_budget* b) {
  return b == nullptr ? 0 : b->used();
}
std::size_t budget_limit(const memory_budget* b) {
  return b == nullptr ? 0 : b->limit();
}
}  // namespace

struct bus::mailbox {
  mailbox(std::string n, const asio::any_io_executor& ex, const bus_options& o, remote_sink s,
          remote_load l)
      : name(std::move(n)),
        queue(o.inbox_capacity, o.inbox_bytes, o.budget),
        signal(ex, clock::time_point::max()),
        remote(std::move(s)),
        load(std::move(l)) {}

  std::string name;
  std::vector<std::string> groups;
  std::vector<std::string> receiving;  // groups whose backlog is being handed to it
  message_queue queue;
  asio::steady_timer signal;  // cancelled to wake a receive() waiting for a message
  remote_sink remote;         // set for remote modules, which have no local queue
  remote_load load;           // whether the remote module's own queue is crowded
  std::size_t waiters = 0;
  bool wake_posted = false;  // a cancel_one() is in flight; further pushes need not signal
  bool closed = false;
  std::uint64_t refused = 0;
  warning_limit warning;  // of the refusal warning
};

struct bus::pending_request {
  explicit pending_request(const asio::any_io_executor& ex)
      : signal(ex, clock::time_point::max()) {}

  std::string id;
  // Modules that have not answered yet. A responder that names itself is taken off; one that
  // leaves the bus while still listed fails the request at once.
  std::vector<std::string> awaiting;
  std::size_t awaited = 1;
  std::vector<message> replies;
  std::multimap<clock::time_point, std::string>::iterator deadline;
  std::error_code error;
  bool done = false;
  asio::steady_timer signal;  // cancelled when the request completes
};

bus::bus(asio::any_io_executor executor, clock& clk, bus_options options)
    : executor_(std::move(executor)), clock_(clk), options_(options), log_(log::get("bus")) {
  if (options_.inbox_capacity == 0) options_.inbox_capacity = 1;
  if (options_.hand_over_slice == 0) options_.hand_over_slice = 1;
  if (options_.default_timeout <= duration::zero()) {
    options_.default_timeout = std::chrono::seconds(30);
  }
}

bus::~bus() {
  *alive_ = false;
  shutdown();
}

// --- registry --------------------------------------------------------------------------------

expected<void, std::error_code> bus::add_module(std::string name, std::string group) {
  return register_module(std::move(name), std::move(group), nullptr, nullptr);
}

expected<void, std::error_code> bus::add_remote_module(std::string name, std::string group,
                                                       remote_sink sink, remote_load load) {
  if (!sink) return fail(err(bus_errc::invalid_message));
  return register_module(std::move(name), std::move(group), std::move(sink), std::move(load));
}

expected<void, std::error_code> bus::register_module(std::string name, std::string group,
                                                     remote_sink sink, remote_load load) {
  if (stopped_) return fail(err(bus_errc::cancelled));
  if (name.empty()) return fail(err(bus_errc::invalid_message));
  if (modules_.contains(name)) return fail(err(bus_errc::duplicate_module));
  auto mb = std::make_shared<mailbox>(name, executor_, options_, std::move(sink), std::move(load));
  modules_.emplace(name, std::move(mb));
  forget_routes();
  log_->debug("module_added name={} group={}", log::escape(name), log::escape(group));
  if (!group.empty()) return join_group(name, std::move(group));
  return {};
}

expected<void, std::error_code> bus::join_group(std::string_view module, std::string group) {
  const auto it = modules_.find(module);
  if (it == modules_.end()) return fail(err(bus_errc::no_route));
  const mailbox_ptr& mb = it->second;
  if (std::find(mb->groups.begin(), mb->groups.end(), group) != mb->groups.end()) return {};
  mb->groups.push_back(group);
  groups_[group].push_back(mb);
  forget_routes();
  // The backlog goes first, in slices from the loop: group messages for the module meanwhile
  // are appended to it instead of overtaking it (send_to_group).
  if (const auto bl = backlogs_.find(group);
      bl != backlogs_.end() && !bl->second.queue.empty() && !bl->second.receiver) {
    backlog& b = bl->second;
    b.receiver = mb;
    b.handed = 0;
    mb->receiving.push_back(group);
    log_->info("group_backlog_hand_over group={} module={} messages={} bytes={}",
               log::escape(group), log::escape(mb->name), b.queue.size(), b.queue.bytes());
    post_slice(bl->first, b);
  }
  return {};
}

void bus::declare_group(std::string group) {
  if (stopped_ || options_.group_backlog == 0) return;
  backlogs_.try_emplace(std::move(group), options_.group_backlog, options_.group_backlog_bytes,
                        options_.budget);
  forget_routes();
}

void bus::resume(std::string_view module) {
  const auto it = modules_.find(module);
  if (it == modules_.end()) return;
  for (const auto& g : it->second->receiving) {
    if (const auto bl = backlogs_.find(g); bl != backlogs_.end() && bl->second.paused) {
      post_slice(bl->first, bl->second);
    }
  }
  post_relief_check();
}

bus::group_route& bus::route_to_group(std::string_view group) {
  for (auto& r : group_routes_) {
    if (r.known && r.name == group) return r;
  }
  group_route& r = group_routes_[next_group_route_];
  next_group_route_ = (next_group_route_ + 1) % group_routes_.size();
  r.name.assign(group);
  const auto it = groups_.find(group);
  r.members = it != groups_.end() ? &it->second : nullptr;
  const auto bl = backlogs_.find(group);
  r.bl = bl != backlogs_.end() ? &bl->second : nullptr;
  r.known = true;
  return r;
}

bus::mailbox* bus::find_module(std::string_view module) {
  if (!module_route_.known || module_route_.name != module) {
    const auto it = modules_.find(module);
    module_route_.name.assign(module);
    module_route_.mb = it != modules_.end() ? it->second.get() : nullptr;
    module_route_.known = true;
  }
  return module_route_.mb;
}

void bus::forget_routes() noexcept {
  for (auto& r : group_routes_)
    r.known = false;
  module_route_.known = false;
}

// --- flow control ----------------------------------------------------------------------------

bool bus::crowded(std::span<const mailbox_ptr> members, const backlog* bl) {
  if (members.empty()) return false;
  if (bl != nullptr && bl->receiver && !bl->queue.within(2)) return true;
  return std::any_of(members.begin(), members.end(), [](const mailbox_ptr& mb) {
    if (mb->closed) return false;
    return mb->remote ? mb->load && mb->load() : !mb->queue.within(2);
  });
}

bool bus::crowded(std::string_view group) const {
  const auto it = groups_.find(group);
  if (it == groups_.end()) return false;
  const auto bl = backlogs_.find(group);
  return crowded(it->second, bl != backlogs_.end() ? &bl->second : nullptr);
}

void bus::watch(std::string_view group) {
  if (stopped_ || std::find(watched_.begin(), watched_.end(), group) != watched_.end()) return;
  watched_.emplace_back(group);
}

void bus::post_relief_check() {
  if (watched_.empty() || relief_posted_) return;
  relief_posted_ = true;
  asio::post(executor_, [alive = std::weak_ptr<bool>(alive_), this] {
    if (const auto token = alive.lock(); token && *token) check_relief();
  });
}

void bus::check_relief() {
  relief_posted_ = false;
  if (stopped_) return;
  std::vector<std::string> relieved;
  std::erase_if(watched_, [&](const std::string& g) {
    if (crowded(g)) return false;
    relieved.push_back(g);
    return true;
  });
  // The listener may watch() again: it runs once the list is settled.
  for (const auto& g : relieved) {
    if (relief_listener_) relief_listener_(g);
  }
}

void bus::remove_module(std::string_view name) {
  const auto it = modules_.find(name);
  if (it == modules_.end()) return;
  mailbox_ptr mb = it->second;
  modules_.erase(it);
  forget_routes();  // the module, and maybe groups it was the last member of
  for (const auto& g : mb->receiving) {
    if (const auto bl = backlogs_.find(g); bl != backlogs_.end()) stop_hand_over(g, bl->second);
  }
  mb->receiving.clear();
  for (const auto& g : mb->groups) {
    const auto git = groups_.find(g);
    if (git == groups_.end()) continue;
    std::erase(git->second, mb);
    if (git->second.empty()) groups_.erase(git);
  }
  close(*mb);
  post_relief_check();  // it may have been the member its groups were crowded by

  // Requests addressed to the module can never be answered now: fail them instead of letting
  // them run into their timeout.
  std::vector<request_ptr> orphans;
  for (const auto& [id, req] : pending_) {
    if (std::find(req->awaiting.begin(), req->awaiting.end(), mb->name) != req->awaiting.end()) {
      orphans.push_back(req);
    }
  }
  for (const auto& req : orphans) {
    ++stats_.cancelled;
    complete(*req, err(bus_errc::module_removed));
  }
  log_->debug("module_removed name={} failed_requests={}", log::escape(mb->name), orphans.size());
}

bool bus::has_module(std::string_view name) const {
  return modules_.contains(name);
}

std::vector<module_info> bus::modules() const {
  std::vector<module_info> out;
  out.reserve(modules_.size());
  for (const auto& [name, mb] : modules_) {
    out.push_back({name, mb->groups, static_cast<bool>(mb->remote), mb->queue.size(),
                   mb->queue.bytes(), mb->refused, mb->receiving});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::vector<std::string> bus::group_members(std::string_view group) const {
  std::vector<std::string> out;
  if (const auto it = groups_.find(group); it != groups_.end()) {
    for (const auto& mb : it->second)
      out.push_back(mb->name);
  }
  return out;
}

std::size_t bus::backlog_size(std::string_view group) const {
  const auto it = backlogs_.find(group);
  return it == backlogs_.end() ? 0 : it->second.queue.size();
}

std::size_t bus::backlog_bytes(std::string_view group) const {
  const auto it = backlogs_.find(group);
  return it == backlogs_.end() ? 0 : it->second.queue.bytes();
}

bool bus::handing_over(std::string_view group) const {
  const auto it = backlogs_.find(group);
  return it != backlogs_.end() && it->second.receiver != nullptr;
}

std::vector<std::string> bus::groups() const {
  std::vector<std::string> out;
  for (const auto& [name, members] : groups_)
    out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

// --- delivery --------------------------------------------------------------------------------

std::error_code bus::deliver(mailbox& mb, message&& msg) {
  if (mb.closed) return err(bus_errc::no_route);  // removed while a group send went on
  if (mb.remote) {
    if (auto ec = mb.remote(std::move(msg))) return refused(mb, ec, 0, refusal::none);
  } else {
    const std::size_t bytes = approximate_size(msg);
    if (const auto r = mb.queue.push(std::move(msg), bytes); r != refusal::none) {
      return refused(mb, err(r == refusal::budget ? bus_errc::memory_budget : bus_errc::queue_full),
                     bytes, r);
    }
    notify(mb);
  }
  ++stats_.delivered;
  return {};
}

void bus::notify(mailbox& mb) {
  if (mb.waiters > 0 && !mb.wake_posted) {
    // One wake-up per burst: the woken receiver drains the queue before it waits again.
    mb.wake_posted = true;
    mb.signal.cancel_one();
  }
}

std::optional<std::uint64_t> bus::due(warning_limit& w) {
  ++w.since_last;
  const auto now = clock_.now();
  if (w.quiet_until && now < *w.quiet_until) return std::nullopt;
  w.quiet_until = now + warning_interval;
  return std::exchange(w.since_last, 0);
}

std::error_code bus::refused(mailbox& mb, std::error_code ec, std::size_t bytes, refusal why) {
  ++mb.refused;
  if (ec == bus_errc::queue_full) {
    ++stats_.queue_full;
  } else if (ec == bus_errc::memory_budget) {
    ++stats_.memory_budget;
  } else if (ec == bus_errc::too_large) {
    ++stats_.too_large;
  } else {
    return ec;  // the module is going away (no_route); nothing more to say
  }
  const auto count = due(mb.warning);
  if (!count) return ec;
  if (mb.remote) {
    // The connection logs the details (sizes, limits) itself.
    log_->warn("remote_module_refused module={} reason=\"{}\" refused={} refused_total={}",
               log::escape(mb.name), ec.message(), *count, mb.refused);
  } else if (ec == bus_errc::memory_budget) {
    log_->warn(
        "inbox_refused module={} reason=\"memory budget exhausted\" bytes={} budget_used={} "
        "budget_limit={} refused={} refused_total={}",
        log::escape(mb.name), bytes, budget_used(options_.budget), budget_limit(options_.budget),
        *count, mb.refused);
  } else {
    log_->warn(
        "inbox_full module={} limit={} messages={}/{} bytes={}/{} message_bytes={} refused={} "
        "refused_total={}",
        log::escape(mb.name), describe(why), mb.queue.size(), mb.queue.capacity(), mb.queue.bytes(),
        mb.queue.byte_limit(), bytes, *count, mb.refused);
  }
  return ec;
}

std::optional<message> bus::take(mailbox& mb) {
  std::optional<message> m;
  if (mb.queue.empty()) return m;
  mb.queue.pop_into(m);  // its charge is released here
  if (!watched_.empty() && mb.queue.within(4)) post_relief_check();
  // A hand-over paused for room goes on once the inbox is half empty.
  if (!mb.receiving.empty() && mb.queue.within(2)) {
    for (const auto& g : mb.receiving) {
      if (const auto bl = backlogs_.find(g); bl != backlogs_.end() && bl->second.paused) {
        post_slice(bl->first, bl->second);
      }
    }
  }
  return m;
}

expected<std::size_t, std::error_code> bus::keep(std::string_view group, backlog& bl,
                                                 message&& msg) {
  const bool was_empty = bl.queue.empty();
  const std::size_t bytes = approximate_size(msg);
  const auto r = bl.queue.push(std::move(msg), bytes);
  if (r == refusal::none) {
    ++stats_.backlogged;
    if (was_empty) log_->debug("group_backlog_started group={}", log::escape(group));
    return std::size_t{0};
  }
  ++bl.refused;
  const bool budget = r == refusal::budget;
  ++(budget ? stats_.memory_budget : stats_.queue_full);
  if (const auto count = due(bl.warning)) {
    if (budget) {
      log_->warn(
          "group_backlog_refused group={} reason=\"memory budget exhausted\" bytes={} "
          "budget_used={} budget_limit={} refused={} refused_total={}",
          log::escape(group), bytes, budget_used(options_.budget), budget_limit(options_.budget),
          *count, bl.refused);
    } else {
      log_->warn(
          "group_backlog_full group={} limit={} messages={}/{} bytes={}/{} message_bytes={} "
          "refused={} refused_total={}",
          log::escape(group), describe(r), bl.queue.size(), bl.queue.capacity(), bl.queue.bytes(),
          bl.queue.byte_limit(), bytes, *count, bl.refused);
    }
  }
  return fail(err(budget ? bus_errc::memory_budget : bus_errc::queue_full));
}

void bus::post_slice(const std::string& group, backlog& bl) {
  bl.paused = false;
  if (bl.slice_posted) return;
  bl.slice_posted = true;
  asio::post(executor_, [alive = std::weak_ptr<bool>(alive_), this, group] {
    if (const auto token = alive.lock(); token && *token) hand_over_slice(group);
  });
}

void bus::hand_over_slice(const std::string& group) {
  if (stopped_) return;
  const auto it = backlogs_.find(group);
  if (it == backlogs_.end()) return;
  backlog& bl = it->second;
  bl.slice_posted = false;
  post_relief_check();  // the slice is handed over by the time the check runs
  const mailbox_ptr mb = bl.receiver;
  if (!mb || bl.paused) return;  // it left (the rest waits for the next member), or is full
  std::size_t messages = 0;
  std::size_t bytes = 0;
  while (!bl.queue.empty()) {
    if (messages >= options_.hand_over_slice ||
        (messages > 0 && bytes >= options_.hand_over_slice_bytes)) {
      post_slice(group, bl);  // the rest in a later turn: other work runs in between
      return;
    }
    const std::size_t n = bl.queue.front().bytes;
    if (!mb->remote) {
      // Only what the inbox has room for; take() resumes once the module has caught up.
      if (mb->queue.room_for(n) != refusal::none) {
        bl.paused = true;
        return;
      }
      (void)mb->queue.push(bl.queue.pop());  // its budget charge moves along with it
      notify(*mb);
      ++stats_.delivered;
      ++bl.handed;
    } else {
      auto e = bl.queue.pop();
      e.charge.reset();  // the sink charges what it keeps, in its own form
      const auto ec = mb->remote(std::move(e.msg));
      if (stopped_) return;  // the sink shut the bus down: `bl` is gone
      if (ec == bus_errc::queue_full) {
        // Not a refusal: the module is slower than the backlog. The message goes back in
        // front (its bytes are still held) until the sink calls resume().
        if (options_.budget != nullptr) {
          options_.budget->force_charge(e.bytes);
          e.charge = budget_charge(options_.budget, e.bytes);
        }
        bl.queue.push_front(std::move(e));
        if (bl.receiver == mb) bl.paused = true;
        return;
      }
      if (ec) {
        (void)refused(*mb, ec, e.bytes, refusal::none);  // dropped for good, counted and logged
      } else {
        ++stats_.delivered;
        ++bl.handed;
      }
      if (bl.receiver != mb) return;  // removed while taking it: the rest stays kept
    }
    ++messages;
    bytes += n;
  }
  finish_hand_over(group, bl);
}

void bus::finish_hand_over(const std::string& group, backlog& bl) {
  const mailbox_ptr mb = std::move(bl.receiver);
  bl.receiver.reset();
  bl.paused = false;
  std::erase(mb->receiving, group);
  bl.queue.clear();  // frees the storage
  log_->info("group_backlog_handed_over group={} module={} messages={}", log::escape(group),
             log::escape(mb->name), bl.handed);
}

void bus::stop_hand_over(const std::string& group, backlog& bl) {
  log_->info("group_backlog_hand_over_stopped group={} module={} handed={} left={}",
             log::escape(group), log::escape(bl.receiver ? bl.receiver->name : std::string()),
             bl.handed, bl.queue.size());
  bl.receiver.reset();
  bl.paused = false;
}

void bus::close(mailbox& mb) {
  mb.closed = true;
  mb.queue.clear();
  mb.signal.cancel();  // every waiting receive() wakes, sees `closed`, fails with cancelled
}

expected<void, std::error_code> bus::send(std::string_view module, message msg) {
  if (stopped_) return fail(err(bus_errc::cancelled));
  mailbox* mb = find_module(module);
  if (mb == nullptr) {
    ++stats_.no_route;
    log_->debug("no_route module={} operation={}", log::escape(module),
                log::escape(msg.route.operation));
    return fail(err(bus_errc::no_route));
  }
  if (auto ec = deliver(*mb, std::move(msg))) return fail(ec);
  return {};
}

expected<std::size_t, std::error_code> bus::send_to_group(std::string_view group, message&& msg) {
  bool crowded_after = false;
  return send_to_group(group, std::move(msg), crowded_after);
}

expected<std::size_t, std::error_code> bus::send_to_group(std::string_view group, message&& msg,
                                                          bool& crowded_after) {
  crowded_after = false;
  if (stopped_) return fail(err(bus_errc::cancelled));
  const group_route& route = route_to_group(group);
  backlog* const bl = route.bl;
  if (route.members == nullptr || route.members->empty()) {
    if (bl != nullptr) return keep(group, *bl, std::move(msg));
    ++stats_.no_route;
    log_->debug("no_route group={} operation={}", log::escape(group),
                log::escape(msg.route.operation));
    return fail(err(bus_errc::no_route));
  }
  // A remote sink may unregister a module, or shut the bus down, while we deliver: then work on
  // a copy of the list. Local inboxes cannot, so the common case (local members only) copies
  // nothing, and a group of one remote member (a remote devicetwin) holds that one only.
  const auto& current = *route.members;
  const bool any_remote = std::any_of(current.begin(), current.end(),
                                      [](const mailbox_ptr& mb) { return mb->remote != nullptr; });
  mailbox_ptr only;
  std::vector<mailbox_ptr> copy;
  std::span<const mailbox_ptr> members = current;
  if (any_remote && current.size() == 1) {
    only = current.front();
    members = {&only, 1};
  } else if (any_remote) {
    copy = current;
    members = copy;
  }
  std::size_t taken = 0;
  std::error_code first_error;
  for (std::size_t i = 0; i < members.size() && !stopped_; ++i) {
    // The last member takes `msg` itself, the others a copy.
    const bool last = i + 1 == members.size();
    std::optional<message> duplicate;
    if (!last) duplicate.emplace(msg);
    message& m = last ? msg : *duplicate;
    std::error_code ec;
    if (bl != nullptr && bl->receiver == members[i]) {
      // Still receiving the backlog: this message goes behind it.
      if (auto kept = keep(group, *bl, std::move(m)); !kept) ec = kept.error();
    } else {
      ec = deliver(*members[i], std::move(m));
    }
    if (ec) {
      if (!first_error) first_error = ec;
    } else {
      ++taken;
    }
  }
  if (stopped_ && taken == 0) return fail(err(bus_errc::cancelled));
  crowded_after = !stopped_ && crowded(members, bl);
  if (taken == 0) return fail(first_error);
  return taken;
}

awaitable<expected<message, std::error_code>> bus::receive(std::string_view module) {
  if (stopped_) co_return fail(err(bus_errc::cancelled));
  const auto it = modules_.find(module);
  if (it == modules_.end() || it->second->remote) co_return fail(err(bus_errc::no_route));
  const mailbox_ptr mb = it->second;  // keeps the inbox alive while this coroutine waits
  for (;;) {
    if (auto m = take(*mb)) {
      if (!mb->queue.empty() && mb->waiters > 0 && !mb->wake_posted) {
        mb->wake_posted = true;  // pass the wake-up on to the next waiting receiver
        mb->signal.cancel_one();
      }
      co_return std::move(*m);
    }
    if (mb->closed) co_return fail(err(bus_errc::cancelled));
    ++mb->waiters;
    co_await mb->signal.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    --mb->waiters;
    mb->wake_posted = false;
  }
}

std::optional<message> bus::try_receive(std::string_view module) {
  mailbox* mb = find_module(module);
  if (mb == nullptr) return std::nullopt;
  return take(*mb);
}

// --- requests --------------------------------------------------------------------------------

expected<bus::request_ptr, std::error_code> bus::begin_request(message& msg, duration timeout,
                                                               std::vector<std::string> awaiting) {
  if (stopped_) return fail(err(bus_errc::cancelled));
  if (msg.header.id.empty()) msg.header.id = new_uuid();
  if (pending_.contains(msg.header.id)) return fail(err(bus_errc::duplicate_request));
  msg.header.sync = true;
  if (timeout <= duration::zero()) timeout = options_.default_timeout;

  auto req = std::make_shared<pending_request>(executor_);
  req->id = msg.header.id;
  req->awaiting = std::move(awaiting);
  req->awaited = req->awaiting.size();
  const auto deadline = clock_.now() + timeout;
  req->deadline = deadlines_.emplace(deadline, req->id);
  // Registered before delivery: a response can never arrive before its request is known.
  pending_.emplace(req->id, req);
  schedule_wake(deadline);
  return req;
}

void bus::complete(pending_request& req, std::error_code ec) {
  if (req.done) return;
  req.done = true;
  req.error = ec;
  deadlines_.erase(req.deadline);
  const std::string id = req.id;  // `req` may be owned only by pending_
  req.signal.cancel();
  pending_.erase(id);
}

awaitable<void> bus::wait(const request_ptr& req) {
  while (!req->done) {
    co_await req->signal.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  }
}

awaitable<expected<message, std::error_code>> bus::send_sync(std::string_view module, message msg,
                                                             duration timeout) {
  auto req = begin_request(msg, timeout, {std::string(module)});
  if (!req) co_return fail(req.error());
  const request_ptr r = std::move(*req);
  if (auto sent = send(module, std::move(msg)); !sent) {
    complete(*r, sent.error());
    co_return fail(sent.error());
  }
  co_await wait(r);
  if (r->error) co_return fail(r->error);
  co_return std::move(r->replies.front());
}

awaitable<expected<std::vector<message>, std::error_code>> bus::send_to_group_sync(
    std::string_view group, message msg, duration timeout) {
  if (stopped_) co_return fail(err(bus_errc::cancelled));
  const auto it = groups_.find(group);
  if (it == groups_.end() || it->second.empty()) {
    ++stats_.no_route;
    co_return fail(err(bus_errc::no_route));
  }
  const std::vector<mailbox_ptr> members = it->second;
  std::vector<std::string> names;
  names.reserve(members.size());
  for (const auto& mb : members)
    names.push_back(mb->name);
  auto req = begin_request(msg, timeout, std::move(names));
  if (!req) co_return fail(req.error());
  const request_ptr r = std::move(*req);
  for (std::size_t i = 0; i < members.size(); ++i) {
    const bool last = i + 1 == members.size();
    if (auto ec =
            last ? deliver(*members[i], std::move(msg)) : deliver(*members[i], message(msg))) {
      // One member can never answer: fail now rather than at the deadline. Answers from the
      // members already reached arrive later and are counted as late.
      complete(*r, ec);
      co_return fail(ec);
    }
  }
  co_await wait(r);
  if (r->error) co_return fail(r->error);
  co_return std::move(r->replies);
}

expected<void, std::error_code> bus::send_resp(message response, std::string_view responder) {
  if (response.header.parent_id.empty()) return fail(err(bus_errc::invalid_message));
  const auto it = pending_.find(response.header.parent_id);
  if (it == pending_.end()) {
    ++stats_.late_responses;
    log_->debug("late_response parent_msg_id={} source={}", log::escape(response.header.parent_id),
                log::escape(response.route.source));
    return fail(err(bus_errc::no_pending_request));
  }
  const request_ptr req = it->second;
  if (!responder.empty()) {
    const auto who = std::find(req->awaiting.begin(), req->awaiting.end(), responder);
    if (who == req->awaiting.end()) {
      // A second answer from one member, or one from a module the request never went to: it
      // must not stand in for a member that has not answered.
      ++stats_.late_responses;
      log_->debug("unexpected_response parent_msg_id={} responder={}",
                  log::escape(response.header.parent_id), log::escape(responder));
      return fail(err(bus_errc::no_pending_request));
    }
    req->awaiting.erase(who);
  }
  req->replies.push_back(std::move(response));
  if (req->replies.size() >= req->awaited) complete(*req, {});
  return {};
}

// --- deadlines -------------------------------------------------------------------------------

void bus::schedule_wake(clock::time_point at) {
  if (armed_ && *armed_ <= at) return;  // an earlier wake-up will re-arm for this deadline
  armed_ = at;
  clock_.call_at(at, [alive = std::weak_ptr<bool>(alive_), this, at] {
    if (const auto token = alive.lock(); token && *token) on_wake(at);
  });
}

void bus::on_wake(clock::time_point armed) {
  if (armed_ && *armed_ == armed) armed_.reset();
  const auto now = clock_.now();
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const auto it = pending_.find(deadlines_.begin()->second);
    if (it == pending_.end()) {  // cannot happen: complete() erases both; stay safe regardless
      deadlines_.erase(deadlines_.begin());
      continue;
    }
    const request_ptr req = it->second;
    ++stats_.timeouts;
    log_->debug("request_timeout msg_id={} waiting_for={} answered={}/{}", log::escape(req->id),
                log::escape(req->awaiting.empty() ? std::string() : req->awaiting.front()),
                req->replies.size(), req->awaited);
    complete(*req, err(bus_errc::timeout));
  }
  if (!deadlines_.empty()) schedule_wake(deadlines_.begin()->first);
}

void bus::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  while (!pending_.empty()) {
    const request_ptr req = pending_.begin()->second;
    ++stats_.cancelled;
    complete(*req, err(bus_errc::cancelled));
  }
  for (auto& [name, mb] : modules_)
    close(*mb);
  modules_.clear();
  groups_.clear();
  backlogs_.clear();
  forget_routes();
  watched_.clear();
}

}  // namespace ebus::bus
