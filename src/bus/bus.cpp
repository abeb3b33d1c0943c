#include "bus/bus.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "common/log.hpp"

namespace ebus::bus {

namespace {
constexpr auto full_warning_interval = std::chrono::seconds(10);

std::error_code err(bus_errc e) {
  return make_error_code(e);
}
}  // namespace

struct bus::mailbox {
  mailbox(std::string n, const asio::any_io_executor& ex, std::size_t capacity, remote_sink s)
      : name(std::move(n)),
        queue(capacity),
        signal(ex, clock::time_point::max()),
        remote(std::move(s)) {}

  std::string name;
  std::vector<std::string> groups;
  bounded_queue<message> queue;
  asio::steady_timer signal;  // cancelled to wake a receive() waiting for a message
  remote_sink remote;         // set for remote modules, which have no local queue
  std::size_t waiters = 0;
  bool wake_posted = false;  // a cancel_one() is in flight; further pushes need not signal
  bool closed = false;
  std::uint64_t refused = 0;
  std::uint64_t refused_since_warning = 0;
  std::optional<clock::time_point> quiet_until;  // rate limit of the queue_full warning
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
  return register_module(std::move(name), std::move(group), nullptr);
}

expected<void, std::error_code> bus::add_remote_module(std::string name, std::string group,
                                                       remote_sink sink) {
  if (!sink) return fail(err(bus_errc::invalid_message));
  return register_module(std::move(name), std::move(group), std::move(sink));
}

expected<void, std::error_code> bus::register_module(std::string name, std::string group,
                                                     remote_sink sink) {
  if (stopped_) return fail(err(bus_errc::cancelled));
  if (name.empty()) return fail(err(bus_errc::invalid_message));
  if (modules_.contains(name)) return fail(err(bus_errc::duplicate_module));
  auto mb = std::make_shared<mailbox>(name, executor_, options_.inbox_capacity, std::move(sink));
  modules_.emplace(name, std::move(mb));
  log_->debug("module_added name={} group={}", name, group);
  if (!group.empty()) return join_group(name, std::move(group));
  return {};
}

expected<void, std::error_code> bus::join_group(std::string_view module, std::string group) {
  const auto it = modules_.find(module);
  if (it == modules_.end()) return fail(err(bus_errc::no_route));
  const mailbox_ptr mb = it->second;  // a remote sink may remove the module during hand_over()
  if (std::find(mb->groups.begin(), mb->groups.end(), group) != mb->groups.end()) return {};
  // The backlog goes first, while the module is not yet a member: a message sent to the group
  // meanwhile is kept behind it instead of overtaking it.
  if (const auto bl = backlogs_.find(group); bl != backlogs_.end() && !bl->second.queue.empty()) {
    hand_over(group, bl->second, *mb);
    if (mb->closed) return {};  // removed, or the bus shut down, while taking it
  }
  mb->groups.push_back(group);
  auto& members = groups_[std::move(group)];
  members.push_back(mb);
  return {};
}

void bus::declare_group(std::string group) {
  if (stopped_ || options_.group_backlog == 0) return;
  backlogs_.try_emplace(std::move(group), options_.group_backlog);
}

void bus::remove_module(std::string_view name) {
  const auto it = modules_.find(name);
  if (it == modules_.end()) return;
  mailbox_ptr mb = it->second;
  modules_.erase(it);
  for (const auto& g : mb->groups) {
    const auto git = groups_.find(g);
    if (git == groups_.end()) continue;
    std::erase(git->second, mb);
    if (git->second.empty()) groups_.erase(git);
  }
  close(*mb);

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
  log_->debug("module_removed name={} failed_requests={}", mb->name, orphans.size());
}

bool bus::has_module(std::string_view name) const {
  return modules_.contains(name);
}

std::vector<module_info> bus::modules() const {
  std::vector<module_info> out;
  out.reserve(modules_.size());
  for (const auto& [name, mb] : modules_) {
    out.push_back({name, mb->groups, static_cast<bool>(mb->remote), mb->queue.size(), mb->refused});
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

std::vector<std::string> bus::groups() const {
  std::vector<std::string> out;
  for (const auto& [name, members] : groups_)
    out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

// --- delivery --------------------------------------------------------------------------------

std::error_code bus::deliver(mailbox& mb, message&& msg) {
  if (mb.remote) {
    if (auto ec = mb.remote(std::move(msg))) {
      if (ec == bus_errc::queue_full) {
        ++stats_.queue_full;
        ++mb.refused;
        warn_full(mb);
      }
      return ec;
    }
  } else if (!mb.queue.push(std::move(msg))) {
    ++stats_.queue_full;
    ++mb.refused;
    warn_full(mb);
    return err(bus_errc::queue_full);
  } else if (mb.waiters > 0 && !mb.wake_posted) {
    // One wake-up per burst: the woken receiver drains the queue before it waits again.
    mb.wake_posted = true;
    mb.signal.cancel_one();
  }
  ++stats_.delivered;
  return {};
}

void bus::warn_full(mailbox& mb) {
  ++mb.refused_since_warning;
  const auto now = clock_.now();
  if (mb.quiet_until && now < *mb.quiet_until) return;
  log_->warn("inbox_full module={} capacity={} refused={} refused_total={}", mb.name,
             mb.queue.capacity(), mb.refused_since_warning, mb.refused);
  mb.refused_since_warning = 0;
  mb.quiet_until = now + full_warning_interval;
}

expected<std::size_t, std::error_code> bus::keep(std::string_view group, backlog& bl,
                                                 message&& msg) {
  const bool was_empty = bl.queue.empty();
  if (bl.queue.push(std::move(msg))) {
    ++stats_.backlogged;
    if (was_empty) log_->debug("group_backlog_started group={}", group);
    return std::size_t{0};
  }
  ++stats_.queue_full;
  ++bl.refused;
  ++bl.refused_since_warning;
  const auto now = clock_.now();
  if (!bl.quiet_until || now >= *bl.quiet_until) {
    log_->warn("group_backlog_full group={} capacity={} refused={} refused_total={}", group,
               bl.queue.capacity(), bl.refused_since_warning, bl.refused);
    bl.refused_since_warning = 0;
    bl.quiet_until = now + full_warning_interval;
  }
  return fail(err(bus_errc::queue_full));
}

void bus::hand_over(const std::string& group, backlog& bl, mailbox& mb) {
  std::size_t handed = 0;
  // One at a time, checking after each: a remote sink may remove its module or shut the bus
  // down (destroying `bl`) while it takes a message. What it never saw stays kept.
  while (!stopped_ && !mb.closed && !bl.queue.empty()) {
    (void)deliver(mb, bl.queue.pop());  // a refusal is counted there, like any other
    ++handed;
  }
  if (stopped_) return;
  if (bl.queue.empty()) bl.queue = bounded_queue<message>(bl.queue.capacity());  // free storage
  log_->debug("group_backlog_handed_over group={} module={} messages={} left={}", group, mb.name,
              handed, bl.queue.size());
}

void bus::close(mailbox& mb) {
  mb.closed = true;
  mb.queue.clear();
  mb.signal.cancel();  // every waiting receive() wakes, sees `closed`, fails with cancelled
}

expected<void, std::error_code> bus::send(std::string_view module, message msg) {
  if (stopped_) return fail(err(bus_errc::cancelled));
  const auto it = modules_.find(module);
  if (it == modules_.end()) {
    ++stats_.no_route;
    log_->debug("no_route module={} operation={}", module, msg.route.operation);
    return fail(err(bus_errc::no_route));
  }
  if (auto ec = deliver(*it->second, std::move(msg))) return fail(ec);
  return {};
}

expected<std::size_t, std::error_code> bus::send_to_group(std::string_view group, message msg) {
  if (stopped_) return fail(err(bus_errc::cancelled));
  const auto it = groups_.find(group);
  if (it == groups_.end() || it->second.empty()) {
    if (const auto bl = backlogs_.find(group); bl != backlogs_.end()) {
      return keep(group, bl->second, std::move(msg));
    }
    ++stats_.no_route;
    log_->debug("no_route group={} operation={}", group, msg.route.operation);
    return fail(err(bus_errc::no_route));
  }
  // A remote sink may unregister a module while we deliver: then work on a copy of the list.
  // Local inboxes cannot, so the common case (local members only) copies nothing.
  const auto& current = it->second;
  const bool any_remote = std::any_of(current.begin(), current.end(),
                                      [](const mailbox_ptr& mb) { return mb->remote != nullptr; });
  std::vector<mailbox_ptr> copy;
  if (any_remote) copy = current;
  const std::vector<mailbox_ptr>& members = any_remote ? copy : current;
  std::size_t taken = 0;
  std::error_code first_error;
  for (std::size_t i = 0; i < members.size(); ++i) {
    const bool last = i + 1 == members.size();
    auto ec = last ? deliver(*members[i], std::move(msg)) : deliver(*members[i], message(msg));
    if (ec) {
      if (!first_error) first_error = ec;
    } else {
      ++taken;
    }
  }
  if (taken == 0) return fail(first_error);
  return taken;
}

awaitable<expected<message, std::error_code>> bus::receive(std::string_view module) {
  if (stopped_) co_return fail(err(bus_errc::cancelled));
  const auto it = modules_.find(module);
  if (it == modules_.end() || it->second->remote) co_return fail(err(bus_errc::no_route));
  const mailbox_ptr mb = it->second;  // keeps the inbox alive while this coroutine waits
  for (;;) {
    if (!mb->queue.empty()) {
      message m = mb->queue.pop();
      if (!mb->queue.empty() && mb->waiters > 0 && !mb->wake_posted) {
        mb->wake_posted = true;  // pass the wake-up on to the next waiting receiver
        mb->signal.cancel_one();
      }
      co_return m;
    }
    if (mb->closed) co_return fail(err(bus_errc::cancelled));
    ++mb->waiters;
    co_await mb->signal.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    --mb->waiters;
    mb->wake_posted = false;
  }
}

std::optional<message> bus::try_receive(std::string_view module) {
  const auto it = modules_.find(module);
  if (it == modules_.end() || it->second->queue.empty()) return std::nullopt;
  return it->second->queue.pop();
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
    log_->debug("late_response parent_msg_id={} source={}", response.header.parent_id,
                response.route.source);
    return fail(err(bus_errc::no_pending_request));
  }
  const request_ptr req = it->second;
  if (!responder.empty()) {
    if (const auto who = std::find(req->awaiting.begin(), req->awaiting.end(), responder);
        who != req->awaiting.end()) {
      req->awaiting.erase(who);
    }
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
    log_->debug("request_timeout msg_id={} waiting_for={} answered={}/{}", req->id,
                req->awaiting.empty() ? std::string() : req->awaiting.front(), req->replies.size(),
                req->awaited);
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
}

}  // namespace ebus::bus
