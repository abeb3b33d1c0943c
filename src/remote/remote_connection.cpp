#include "remote/remote_connection.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <limits>
#include <map>
#include <sys/socket.h>
#include <system_error>
#include <vector>

#include <spdlog/spdlog.h>

#include "bus/message_json.hpp"
#include "common/log.hpp"
#include "remote/sizing.hpp"
#include "remote/socket_server.hpp"

namespace ebus::remote {

using asio::use_awaitable;
using asio::experimental::as_tuple;

namespace {
constexpr std::size_t read_chunk = 64 * 1024;
constexpr std::size_t write_batch_messages = 64;
constexpr std::size_t write_batch_bytes = 256 * 1024;
// A module that asked for batched packets: messages per write, and bytes per packet (a message
// larger than that goes alone).
constexpr std::size_t packed_write_messages = 1024;
constexpr std::size_t packed_packet_bytes = 64 * 1024;
constexpr std::size_t max_tracked_requests = 4096;
constexpr auto warning_interval = std::chrono::seconds(10);
// Content larger than this is encoded on the server's encoder thread: a 1 MB payload of control
// bytes takes milliseconds to write as JSON (six bytes out for each), longer than the MQTT
// clients served by the same loop should wait for their PINGRESP.
constexpr std::size_t inline_encode_limit = 64 * 1024;

/// The content's bytes once in JSON when each text byte takes `per_text_byte` (1: the least,
/// max_json_expansion: the most); bytes are written as base64.
std::size_t encoded_content_bytes(const bus::content& c, std::size_t per_text_byte) {
  const std::size_t n = c.bytes().size();
  return c.type() == bus::content::kind::binary ? (n + 2) / 3 * 4 : per_text_byte * n;
}

/// At least as large as to_json(m).size(): every string at its most, and the keys, timestamp and
/// punctuation within the constant.
std::size_t encoded_size_bound(const bus::message& m) {
  const auto& h = m.header;
  const auto& r = m.route;
  const std::size_t strings = h.id.size() + h.parent_id.size() + h.resource_version.size() +
                              h.type.size() + r.source.size() + r.destination.size() +
                              r.group.size() + r.operation.size() + r.resource.size();
  return max_json_expansion * strings + encoded_content_bytes(m.content, max_json_expansion) + 512;
}

/// `m` as the client gets it: its JSON and the '\n' beehive writes after each message, in one
/// buffer (one iovec a packet).
std::string encode_line(const bus::message& m) {
  std::string text;
  bus::encode_json(m, text);
  text.push_back('\n');
  return text;
}

/// The JSON bytes of a line from encode_line(): what limits and accounting count.
std::size_t json_bytes(const std::string& line) noexcept {
  return line.size() - 1;
}

/// What an error message about `m` needs: its id and resource (beehive NewErrorMessage).
bus::message stub_of(const bus::message& m) {
  bus::message s;
  s.header.id = m.header.id;
  s.route.resource = m.route.resource;
  return s;
}

std::string peer_of(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return "unknown";
  return "pid:" + std::to_string(cred.pid);
}

/// Raises the send buffer so that messages up to the server's limit fit into one packet, and
/// returns the largest JSON message the socket can then send: the kernel may cap the buffer, and
/// limits one packet's memory (the server's probe found that).
std::size_t packet_send_limit(remote_connection::packet_socket& s, const socket_server& server) {
  const auto sized =
      size_packet_send_buffer(s.native_handle(), server.options().max_message_bytes + 1);
  const std::size_t buffer_limit = sized.packet_limit > 0 ? sized.packet_limit - 1 : 0;
  return std::min(buffer_limit, server.packet_limit());
}

std::string too_large_reason(std::size_t bytes, std::size_t limit, std::size_t max_message_bytes,
                             bool packet) {
  if (packet && limit < max_message_bytes && bytes <= max_message_bytes) {
    return fmt::format(
        "{} bytes exceed the SEQPACKET per-packet limit of {}; use the stream socket", bytes,
        limit);
  }
  return fmt::format("{} bytes exceed max_message_bytes ({})", bytes, max_message_bytes);
}
}  // namespace

remote_connection::remote_connection(packet_socket socket, bus::bus& b, socket_server& owner)
    : socket_(std::move(socket)),
      bus_(b),
      server_(owner),
      log_(log::get("remote")),
      max_out_(packet_send_limit(std::get<packet_socket>(socket_), owner)),
      wake_signal_(std::get<packet_socket>(socket_).get_executor(),
                   std::chrono::steady_clock::time_point::max()),
      peer_(peer_of(std::get<packet_socket>(socket_).native_handle())) {}

remote_connection::remote_connection(stream_socket socket, bus::bus& b, socket_server& owner)
    : socket_(std::move(socket)),
      bus_(b),
      server_(owner),
      log_(log::get("remote")),
      max_out_(owner.options().max_message_bytes),
      wake_signal_(std::get<stream_socket>(socket_).get_executor(),
                   std::chrono::steady_clock::time_point::max()),
      peer_(peer_of(std::get<stream_socket>(socket_).native_handle())) {}

remote_connection::~remote_connection() = default;

void remote_connection::spawn(awaitable<void> task, const char* name) {
  asio::co_spawn(wake_signal_.get_executor(), std::move(task),
                 [self = shared_from_this(), name](const std::exception_ptr& e) {
                   if (!e) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& ex) {
                     self->log_->error("connection_failure module={} peer={} task={} error={}",
                                       self->name_, self->peer_, name, ex.what());
                   }
                   self->close("internal error");
                 });
}

void remote_connection::start() {
  if (auto* s = std::get_if<packet_socket>(&socket_)) {
    spawn(read_packets(*s), "reader");
  } else {
    spawn(read_lines(std::get<stream_socket>(socket_)), "reader");
  }
  spawn(writer(), "writer");
}

void remote_connection::wake() {
  if (!writer_waiting_) return;  // the writer looks at the queue again before it waits
  writer_waiting_ = false;
  wake_signal_.cancel();
}

void remote_connection::close(std::string_view reason) {
  if (closed_) return;
  const auto keep = shared_from_this();  // the server drops its reference below
  closed_ = true;
  if (registered_) {
    bus_.remove_module(name_);
    log_->info("disconnected module={} peer={} reason=\"{}\"", name_, peer_, reason);
  } else {
    log_->debug("connection_closed peer={} reason=\"{}\"", peer_, reason);
  }
  queue_.clear();
  for (auto& o : batch_)
    o.charge.reset();  // the write in progress still needs the text, not the budget
  queued_bytes_ = 0;
  requests_.clear();
  request_order_.clear();
  std::visit(
      [](auto& s) {
        std::error_code ignored;
        s.shutdown(asio::socket_base::shutdown_both, ignored);
        s.close(ignored);
      },
      socket_);
  wake_signal_.cancel();
  server_.on_closed(this);
}

// --- reading ---------------------------------------------------------------------------------

awaitable<void> remote_connection::read_packets(packet_socket& socket) {
  const std::size_t limit = server_.options().max_message_bytes;
  // One byte more than the limit tells an oversized packet from one that just fits. Left
  // uninitialised: pages the kernel never writes into are never touched.
  const auto buffer = std::make_unique_for_overwrite<char[]>(limit + 1);
  for (;;) {
    if (closed_ || close_after_flush_) co_return;
    asio::socket_base::message_flags flags = 0;
    auto [ec, n] = co_await socket.async_receive(asio::buffer(buffer.get(), limit + 1), flags,
                                                 as_tuple(use_awaitable));
    if (closed_) co_return;
    if (ec) {
      close(ec == asio::error::eof ? "peer closed" : ec.message());
      co_return;
    }
    if (n == 0) {  // SEQPACKET reports the peer's close as an empty read
      close("peer closed");
      co_return;
    }
    const auto text = packet_message(std::string_view(buffer.get(), n));
    if ((flags & MSG_TRUNC) != 0 || text.size() > limit) {
      protocol_error("message larger than max_message_bytes (" + std::to_string(limit) + ")");
      co_return;
    }
    if (!batch_packets_) {
      if (!handle(text)) co_return;
      continue;
    }
    // A batching module's packet may hold several messages, one per line.
    std::string_view rest = text;
    for (auto line = take_line(rest); !line.empty(); line = take_line(rest)) {
      if (!handle(line)) co_return;
    }
  }
}

awaitable<void> remote_connection::read_lines(stream_socket& socket) {
  const std::size_t limit = server_.options().max_message_bytes;
  line_splitter lines(limit);
  std::vector<char> chunk(read_chunk);
  for (;;) {
    if (closed_ || close_after_flush_) co_return;
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(chunk), as_tuple(use_awaitable));
    if (closed_) co_return;
    if (ec) {
      close(ec == asio::error::eof ? "peer closed" : ec.message());
      co_return;
    }
    lines.append(std::string_view(chunk.data(), n));
    for (;;) {
      const auto line = lines.next();
      if (!line) {
        protocol_error("line longer than max_message_bytes (" + std::to_string(limit) + ")");
        co_return;
      }
      if (!*line) break;
      if (!handle(**line)) co_return;
    }
  }
}

bool remote_connection::handle(std::string_view text) {
  auto m = bus::from_json(text);
  if (!m) {
    protocol_error("not a beehive message: " + m.error().reason);
    return false;
  }
  ++server_.stats_.messages_in;
  if (!registered_) return on_registration(std::move(*m));
  on_message(std::move(*m));
  return !closed_;
}

bool remote_connection::on_registration(bus::message&& m) {
  auto r = parse_registration(m);
  if (!r) {
    refuse(m, std::move(r.error()));
    return false;
  }
  if (bus_.has_module(r->name)) {
    refuse(m, "module name in use: " + r->name);
    return false;
  }
  name_ = r->name;  // the sink sets it as destination, the backlog hand-over included
  auto added = bus_.add_remote_module(
      name_, r->group,
      [weak = weak_from_this()](bus::message&& msg) -> std::error_code {
        const auto self = weak.lock();
        if (!self) return bus::make_error_code(bus::bus_errc::no_route);
        return self->deliver(std::move(msg));
      },
      [weak = weak_from_this()] {
        const auto self = weak.lock();
        return self && self->crowded();
      });
  if (!added) {
    name_.clear();
    refuse(m, "registration failed: " + error_reason(added.error()));
    return false;
  }
  registered_ = true;
  batch_packets_ = r->batch && std::holds_alternative<packet_socket>(socket_);
  ++server_.stats_.registered;

  std::vector<std::string> modules;
  for (const auto& info : bus_.modules())
    modules.push_back(info.name);
  std::map<std::string, std::vector<std::string>> groups;
  for (auto& g : bus_.groups())
    groups.emplace(g, bus_.group_members(g));
  auto reply = bus::new_response(m, bus::content::json(registration_content(modules, groups)));
  reply.route.destination = name_;
  // Ahead of anything the bus may already have queued: the client reads its registration reply
  // first.
  auto text = encode_line(reply);
  auto charge = forced_charge(json_bytes(text));
  enqueue(std::move(text), std::move(charge), true);
  log_->info("registered module={} group={} peer={}{}", name_, r->group, peer_,
             batch_packets_ ? " batch=true" : "");
  return true;
}

void remote_connection::refuse(const bus::message& request, std::string reason) {
  log_->info("registration_refused peer={} module=\"{}\" reason=\"{}\"", peer_,
             log::escape(request.route.source), log::escape(reason));
  auto text = encode_line(bus::new_error(request, reason));
  auto charge = forced_charge(json_bytes(text));
  enqueue(std::move(text), std::move(charge));
  ++server_.stats_.errors_returned;
  close_reason_ = "registration refused: " + reason;
  close_after_flush_ = true;
  wake();
}

void remote_connection::protocol_error(std::string_view what) {
  ++server_.stats_.closed_protocol;
  log_->warn("protocol_error module={} peer={} detail=\"{}\"", name_, peer_, what);
  close(what);
}

void remote_connection::on_message(bus::message&& m) {
  if (m.route.source.empty()) m.route.source = name_;
  if (!m.header.parent_id.empty() && requests_.erase(m.header.parent_id) > 0) {
    on_response(std::move(m));
    return;
  }
  if (m.header.sync) {
    if (m.header.id.empty()) m.header.id = bus::new_uuid();  // so that the answer can name it
    auto to = parse_destination(m.route.destination);
    if (!to) {
      queue_error(m, error_reason(bus::bus_errc::no_route));
      return;
    }
    // Each answer needs room in the queue anyway; the cap also bounds what one client can keep
    // pending in the bus.
    if (requests_in_flight_ >= server_.options().outbound_capacity) {
      queue_error(m, error_reason(bus::bus_errc::queue_full));
      return;
    }
    ++requests_in_flight_;
    asio::co_spawn(wake_signal_.get_executor(),
                   forward_request(weak_from_this(), bus_, std::move(*to), std::move(m),
                                   server_.options().sync_timeout),
                   [log = log_](const std::exception_ptr& e) {
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       log->error("request_failure error={}", ex.what());
                     }
                   });
    return;
  }
  // A response whose request this connection no longer remembers (it forgets the oldest ids):
  // responses carry no destination (beehive NewRespByMessage).
  if (m.route.destination.empty() && !m.header.parent_id.empty()) {
    on_response(std::move(m));
    return;
  }
  auto to = parse_destination(m.route.destination);
  if (!to) {
    queue_error(m, error_reason(bus::bus_errc::no_route));
    return;
  }
  const auto stub = stub_of(m);
  std::error_code ec;
  if (to->type == destination::kind::module) {
    if (auto sent = bus_.send(to->name, std::move(m)); !sent) ec = sent.error();
  } else {
    if (auto sent = bus_.send_to_group(to->name, std::move(m)); !sent) ec = sent.error();
  }
  if (ec && !closed_) queue_error(stub, error_reason(ec));
}

void remote_connection::on_response(bus::message&& m) {
  const auto stub = stub_of(m);
  if (auto r = bus_.send_resp(std::move(m), name_); !r) queue_error(stub, error_reason(r.error()));
}

awaitable<void> remote_connection::forward_request(std::weak_ptr<remote_connection> weak,
                                                   bus::bus& b, destination to,
                                                   bus::message request,
                                                   std::chrono::milliseconds timeout) {
  const auto stub = stub_of(request);
  std::vector<bus::message> replies;
  std::error_code error;
  if (to.type == destination::kind::module) {
    auto r = co_await b.send_sync(to.name, std::move(request), timeout);
    if (r) {
      replies.push_back(std::move(*r));
    } else {
      error = r.error();
    }
  } else {
    auto r = co_await b.send_to_group_sync(to.name, std::move(request), timeout);
    if (r) {
      replies = std::move(*r);
    } else {
      error = r.error();
    }
  }
  const auto self = weak.lock();
  if (!self) co_return;
  --self->requests_in_flight_;
  if (self->closed_) co_return;  // the client left; the answer has nowhere to go
  if (error) {
    self->queue_error(stub, error_reason(error));
    co_return;
  }
  for (auto& reply : replies)
    self->queue_reply(std::move(reply));
}

// --- writing ---------------------------------------------------------------------------------

std::error_code remote_connection::deliver(bus::message&& m) {
  if (closed_) return bus::make_error_code(bus::bus_errc::no_route);
  const auto& o = server_.options();
  if (queued() >= o.outbound_capacity || queued_bytes_ >= o.outbound_bytes) {
    // `m` stays as it was: a group backlog being handed over keeps it for resume().
    resume_wanted_ = true;
    return bus::make_error_code(bus::bus_errc::queue_full);
  }
  m.route.destination = name_;
  if (m.content.type() != bus::content::kind::json &&
      m.content.bytes().size() > inline_encode_limit) {
    return deliver_encoded_later(std::move(m));
  }
  std::string text = encode_line(m);
  const std::size_t bytes = json_bytes(text);
  if (bytes > max_out_) {
    undeliverable(stats_.too_large, server_.stats_.too_large,
                  too_large_reason(bytes, max_out_, o.max_message_bytes,
                                   std::holds_alternative<packet_socket>(socket_)));
    return bus::make_error_code(bus::bus_errc::too_large);
  }
  budget_charge charge;
  if (!budget_charge::try_make(o.budget, bytes, charge)) {
    undeliverable(stats_.memory_budget, server_.stats_.memory_budget,
                  fmt::format("memory budget exhausted: {} bytes, {} of {} in use", bytes,
                              o.budget->used(), o.budget->limit()));
    return bus::make_error_code(bus::bus_errc::memory_budget);
  }
  if (m.header.sync && !m.header.id.empty()) track_request(m.header.id);
  enqueue(std::move(text), std::move(charge));
  return {};
}

std::error_code remote_connection::deliver_encoded_later(bus::message&& m) {
  const auto& o = server_.options();
  // The content alone is a lower bound of the encoding: what is surely too large is refused now.
  const std::size_t least = encoded_content_bytes(m.content, 1);
  if (least > max_out_) {
    undeliverable(stats_.too_large, server_.stats_.too_large,
                  too_large_reason(least, max_out_, o.max_message_bytes,
                                   std::holds_alternative<packet_socket>(socket_)));
    return bus::make_error_code(bus::bus_errc::too_large);
  }
  // Counted and charged at the most the encoding can take, corrected once it is known.
  const std::size_t bound = encoded_size_bound(m);
  budget_charge charge;
  if (!budget_charge::try_make(o.budget, bound, charge)) {
    undeliverable(stats_.memory_budget, server_.stats_.memory_budget,
                  fmt::format("memory budget exhausted: up to {} bytes, {} of {} in use", bound,
                              o.budget->used(), o.budget->limit()));
    return bus::make_error_code(bus::bus_errc::memory_budget);
  }
  if (m.header.sync && !m.header.id.empty()) track_request(m.header.id);
  auto job = std::make_shared<encoding>();
  queued_bytes_ += bound;
  queue_.push_back({{}, std::move(charge), bound, job});
  asio::post(server_.encoder(),
             [job, m = std::move(m), weak = weak_from_this(), loop = server_.executor_]() mutable {
               job->text = encode_line(m);
               m = {};  // freed here, not on the loop
               asio::post(loop, [weak = std::move(weak), job = std::move(job)] {
                 if (const auto self = weak.lock()) self->encoded(*job);
               });
             });
  return {};
}

void remote_connection::encoded(encoding& job) {
  if (closed_) return;
  // Entries waiting for their encoding are never in batch_: the writer stops in front of them.
  const auto it = std::find_if(queue_.begin(), queue_.end(),
                               [&](const outgoing& e) { return e.job.get() == &job; });
  if (it == queue_.end()) return;
  std::string text = std::move(job.text);
  const std::size_t bytes = json_bytes(text);
  queued_bytes_ -= it->bytes;
  if (bytes > max_out_) {
    const auto& o = server_.options();
    undeliverable(stats_.too_large, server_.stats_.too_large,
                  too_large_reason(bytes, max_out_, o.max_message_bytes,
                                   std::holds_alternative<packet_socket>(socket_)));
    queue_.erase(it);
  } else {
    it->charge.resize(bytes);  // smaller than the bound it was charged at
    it->bytes = bytes;
    it->text = std::move(text);
    it->job.reset();
    queued_bytes_ += it->bytes;
  }
  wake();
  resume_bus();
}

void remote_connection::enqueue(std::string text, budget_charge charge, bool front) {
  const std::size_t bytes = json_bytes(text);
  queued_bytes_ += bytes;
  if (front) {
    queue_.push_front({std::move(text), std::move(charge), bytes, nullptr});
  } else {
    queue_.push_back({std::move(text), std::move(charge), bytes, nullptr});
  }
  wake();
}

budget_charge remote_connection::forced_charge(std::size_t bytes) {
  memory_budget* budget = server_.options().budget;
  if (budget == nullptr) return {};
  budget->force_charge(bytes);
  return {budget, bytes};
}

void remote_connection::undeliverable(std::uint64_t& counter, std::uint64_t& total,
                                      std::string_view reason) {
  ++counter;
  ++total;
  ++undeliverable_since_warning_;
  const auto now = std::chrono::steady_clock::now();
  if (quiet_until_ && now < *quiet_until_) return;
  log_->warn(
      "message_undeliverable module={} peer={} reason=\"{}\" count={} too_large_total={} "
      "memory_budget_total={} dropped_total={}",
      name_, peer_, reason, undeliverable_since_warning_, stats_.too_large, stats_.memory_budget,
      stats_.dropped);
  undeliverable_since_warning_ = 0;
  quiet_until_ = now + warning_interval;
}

void remote_connection::resume_bus() {
  if ((!resume_wanted_ && !relief_wanted_) || !registered_ || closed_) return;
  bool tell = false;
  if (resume_wanted_ && within(2)) {
    resume_wanted_ = false;
    tell = true;
  }
  if (relief_wanted_ && within(4)) {
    relief_wanted_ = false;
    tell = true;
  }
  if (tell) bus_.resume(name_);
}

bool remote_connection::crowded() noexcept {
  if (!within(2)) relief_wanted_ = true;
  return relief_wanted_ && !closed_;
}

bool remote_connection::within(std::size_t part) const noexcept {
  const auto& o = server_.options();
  return queued() <= o.outbound_capacity / part && queued_bytes_ <= o.outbound_bytes / part;
}

connection_info remote_connection::info() const {
  return {name_,    peer_, std::holds_alternative<packet_socket>(socket_), queued(), queued_bytes_,
          max_out_, stats_};
}

void remote_connection::track_request(const std::string& id) {
  requests_.insert(id);
  request_order_.push_back(id);
  while (request_order_.size() > max_tracked_requests) {
    requests_.erase(request_order_.front());
    request_order_.pop_front();
  }
}

bool remote_connection::queue_reply(bus::message&& m) {
  m.route.destination = name_;
  std::string text = encode_line(m);
  const std::size_t bytes = json_bytes(text);
  const auto& o = server_.options();
  std::string reason;
  budget_charge charge;
  if (bytes > max_out_) {
    reason = too_large_reason(bytes, max_out_, o.max_message_bytes,
                              std::holds_alternative<packet_socket>(socket_));
  } else if (queued() >= o.outbound_capacity || queued_bytes_ >= o.outbound_bytes) {
    reason = fmt::format("outbound queue full ({} messages, {} bytes)", queued(), queued_bytes_);
  } else if (!budget_charge::try_make(o.budget, bytes, charge)) {
    reason = fmt::format("memory budget exhausted: {} bytes", bytes);
  }
  if (!reason.empty()) {
    undeliverable(
        stats_.dropped, server_.stats_.messages_dropped,
        fmt::format("{} to {} dropped: {}", m.route.operation, m.header.parent_id, reason));
    return false;
  }
  enqueue(std::move(text), std::move(charge));
  return true;
}

void remote_connection::queue_error(const bus::message& about, std::string reason) {
  if (queue_reply(bus::new_error(about, std::move(reason)))) ++server_.stats_.errors_returned;
}

void remote_connection::pack(const std::vector<outgoing>& messages) {
  if (!batch_packets_) {
    for (const auto& o : messages)
      packets_out_.add(o.text);
    return;
  }
  // Lines fill a packet up to packed_packet_bytes (and the client's limit); the client splits
  // them again.
  const std::size_t packet_bytes = std::min(max_out_, packed_packet_bytes);
  std::size_t bytes = 0;
  std::size_t parts = 0;
  for (const auto& o : messages) {
    if (parts == 0 || parts == packet_sender::max_parts || bytes + o.text.size() > packet_bytes) {
      packets_out_.add(o.text);
      bytes = o.text.size();
      parts = 1;
    } else {
      packets_out_.append(o.text);
      bytes += o.text.size();
      ++parts;
    }
  }
}

awaitable<void> remote_connection::writer() {
  std::vector<asio::const_buffer> buffers;
  for (;;) {
    if (closed_) co_return;
    if (queue_.empty() || queue_.front().job) {  // nothing, or the next is still encoding
      if (close_after_flush_ && queue_.empty()) {
        close(close_reason_);
        co_return;
      }
      writer_waiting_ = true;
      co_await wake_signal_.async_wait(as_tuple(use_awaitable));
      writer_waiting_ = false;  // also woken by close()
      // One more turn of the loop: the acknowledgements that the publishes of this turn queued
      // go to their clients first (their writers were woken after this one), and the
      // messages routed meanwhile join this batch.
      co_await asio::post(wake_signal_.get_executor(), use_awaitable);
      continue;
    }
    // Taken out of the queue while written: the queue may change meanwhile (push_front).
    batch_.clear();
    std::size_t bytes = 0;
    std::size_t batch_bytes = 0;  // as counted in queued_bytes_
    const std::size_t max_messages = batch_packets_ ? packed_write_messages : write_batch_messages;
    while (!queue_.empty() && !queue_.front().job && batch_.size() < max_messages &&
           (batch_.empty() || bytes + queue_.front().text.size() <= write_batch_bytes)) {
      bytes += queue_.front().text.size();
      batch_bytes += queue_.front().bytes;
      batch_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    in_flight_ = batch_.size();
    std::error_code ec;
    if (auto* packets = std::get_if<packet_socket>(&socket_)) {
      // One packet per message (the packet boundary is the message boundary), many packets
      // per system call; for a module that asked for it, many messages per packet.
      packets_out_.clear();
      pack(batch_);
      while (!packets_out_.finished() && !closed_) {
        const std::size_t first = packets_out_.done();
        const auto r = packets_out_.send(packets->native_handle());
        std::size_t messages = 0;
        for (std::size_t i = first; i < first + r.sent; ++i)
          messages += packets_out_.parts(i);
        stats_.messages_out += messages;
        server_.stats_.messages_out += messages;
        if (r.error == 0) break;
        if (r.error == EAGAIN) {
          auto [e] =
              co_await packets->async_wait(asio::socket_base::wait_write, as_tuple(use_awaitable));
          if (e) {
            ec = e;
            break;
          }
          continue;
        }
        if (packet_sender::refused(r.error)) {
          // The client loses this packet's messages only.
          const std::size_t lost = packets_out_.done() - 1;
          for (std::size_t k = 0; k < packets_out_.parts(lost); ++k) {
            undeliverable(
                stats_.dropped, server_.stats_.messages_dropped,
                fmt::format("the kernel refused a SEQPACKET packet of {} bytes: {}; use "
                            "the stream socket",
                            packets_out_.bytes(lost), std::system_category().message(r.error)));
          }
          continue;
        }
        ec = std::error_code(r.error, std::system_category());
        break;
      }
    } else {
      buffers.clear();
      for (const auto& o : batch_)
        buffers.push_back(asio::buffer(o.text));
      auto [e, n] = co_await asio::async_write(std::get<stream_socket>(socket_), buffers,
                                               as_tuple(use_awaitable));
      ec = e;
      if (!ec) {
        stats_.messages_out += batch_.size();
        server_.stats_.messages_out += batch_.size();
      }
    }
    in_flight_ = 0;
    if (closed_) co_return;  // close() released the budget and the byte count
    queued_bytes_ -= batch_bytes;
    batch_.clear();  // releases their budget
    if (ec) {
      close("write failed: " + ec.message());
      co_return;
    }
    resume_bus();
  }
}

}  // namespace ebus::remote
