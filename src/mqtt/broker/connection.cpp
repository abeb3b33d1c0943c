#include "mqtt/broker/connection.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>

#include "common/log.hpp"
#include "mqtt/broker/server.hpp"
#include "mqtt/codec/encoder.hpp"

namespace ebus::mqtt::broker {

using asio::use_awaitable;
using asio::experimental::as_tuple;
using codec::qos_level;
using kind = protocol_action::kind;

namespace {
constexpr std::size_t read_chunk = std::size_t{16} * 1024;
constexpr std::size_t write_batch = std::size_t{64} * 1024;
constexpr std::size_t everyday_control = std::size_t{16} * 1024;

// Before the session fills `out`: room for what it holds (its queued bytes bound their
// encoding), up to one batch. One allocation for a burst instead of a dozen doublings, and none
// when there is nothing to send, as when a CONNACK goes out.
void reserve_for(std::string& out, const session& s) {
  const std::size_t want = std::min(write_batch, s.queued_bytes());
  if (out.capacity() < want) out.reserve(want);
}

spdlog::level::level_enum line_level(broker& b) {
  return b.connection_line_at_info() ? spdlog::level::info : spdlog::level::debug;
}

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
}  // namespace

connection::connection(std::unique_ptr<stream> transport, broker& core, server& owner,
                       const listener_options& listener)
    : connection(std::move(transport), -1, core, owner, listener) {}

connection::connection(int fd, broker& core, server& owner, const listener_options& listener)
    : connection(nullptr, fd, core, owner, listener) {}

connection::connection(std::unique_ptr<stream> transport, int fd, broker& core, server& owner,
                       const listener_options& listener)
    : clock::alarm(core.time_source()),
      stream_(std::move(transport)),
      protocol_(owner.protocol_options_),
      tcp_(fd) {
  active().listener = &listener;
  const int socket = native_handle();
  peer_ = peer_address::of_socket(socket);
  const int one = 1;
  ::setsockopt(socket, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

inline server& connection::owner() const noexcept {
  return *static_cast<const server::connection_settings&>(protocol_.settings()).owner;
}

inline broker& connection::core() const noexcept {
  return owner().core();
}

inline clock::time_point connection::now() const noexcept {
  return core().time_source().now();
}

connection::~connection() {
  set_buffers_charge(0);
  if (tcp_.fd() >= 0) owner().readiness_->remove(tcp_.fd());  // tcp_ closes it
}

int connection::native_handle() const noexcept {
  return stream_ ? stream_->native_handle() : tcp_.fd();
}

const char* connection::transport_name() const noexcept {
  return stream_ ? stream_->name() : "tcp";
}

awaitable<std::error_code> connection::wait_readable() {
  return socket_wait::wait(active().read_wait);
}

awaitable<stream::read_result> connection::read_some(asio::mutable_buffer into) {
  if (stream_) return stream_->read_some(into);
  return tcp_.read_some(into, active().read_wait);
}

awaitable<std::error_code> connection::write(stream::write_batch batch) {
  if (stream_) return stream_->write(batch);
  return tcp_.write(batch, active().write_wait);
}

void connection::cancel_io() noexcept {
  if (stream_) {
    stream_->cancel();
    return;
  }
  if (active_) {
    socket_wait::complete(active_->read_wait, asio::error::operation_aborted);
    socket_wait::complete(active_->write_wait, asio::error::operation_aborted);
  }
  if (take_readable_wait()) on_readable(asio::error::operation_aborted);
}

void connection::close_io() noexcept {
  if (stream_) {
    stream_->close();
    return;
  }
  tcp_.close(*owner().readiness_);
  cancel_io();
}

void connection::on_ready(bool readable, bool writable) noexcept {
  if (readable) {
    if (active_) socket_wait::complete(active_->read_wait, {});
    if (take_readable_wait()) on_readable({});
  }
  if (writable && active_) socket_wait::complete(active_->write_wait, {});
}

void connection::set_buffers_charge(std::size_t bytes) noexcept {
  if (!active_) return;  // no buffers, nothing charged
  for (auto* budget : {core().options().budget, core().receive_share()}) {
    if (budget != nullptr) budget->adjust(active_->buffers_charged, bytes);
  }
  active_->buffers_charged = static_cast<std::uint32_t>(bytes);
}

const std::string& connection::close_reason() const noexcept {
  static const std::string none;
  return active_ ? active_->close_reason : none;
}

std::string_view connection::client_id() const noexcept {
  if (session_ != nullptr) return session_->client_id();
  return active_ ? active_->client_id.view() : std::string_view();
}

std::optional<std::string_view> connection::username() const noexcept {
  if (session_ != nullptr) return session_->username();
  if (active_ && active_->username) return *active_->username;
  return std::nullopt;
}

void connection::let_go_of_session() {
  if (session_ == nullptr) return;
  auto& a = active();  // a connection that lets go of its session is ending
  a.client_id = session_->shared_client_id();
  if (const auto user = session_->username()) a.username.emplace(*user);
  session_ = nullptr;
}

void connection::release_if_idle() noexcept {
  if (!active_ || reader_state_ != reader_state::parked_on_socket || writer_running_ || closing_ ||
      finished_ || !protocol_.connected() || held_back() || active_->decoder ||
      !active_->out.control.empty() || !active_->out.staged.empty()) {
    return;
  }
  set_buffers_charge(0);
  active_.reset();
}

spdlog::logger& connection::logger() const noexcept {
  return *owner().log_;  // the same "mqtt.broker" logger
}

void connection::spawn(awaitable<void> task, const char* name) {
  asio::co_spawn(owner().executor_, std::move(task),
                 [self = hold(), name](const std::exception_ptr& e) {
                   if (!e) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& ex) {
                     self->logger().error("connection_failure peer={} task={} error={}",
                                          self->peer_, name, ex.what());
                   }
                   self->finish("internal error");
                 });
}

void connection::start() {
  apply(protocol_.start(now()));  // the CONNECT timeout bounds the handshake too
  reader_state_ = reader_state::running;
  spawn(reader(), "reader");
}

void connection::wake() {
  if (!opened_ || finished_) return;  // nothing is written before the handshake is done
  if (!writer_running_) {
    // Posted, not run here: messages published in this turn of the loop go out in one batch.
    writer_running_ = true;
    asio::post(owner().executor_, [self = hold()] { self->spawn(self->writer(), "writer"); });
    return;
  }
  // The writer is on its way or a write is in flight: encode what the session may send into the
  // next batch now, so a burst to a subscriber that keeps up waits as bytes, not in (and over)
  // its bounded session queue.
  if (session_ != nullptr && protocol_.connected() && !closing_ &&
      out().staged.size() < write_batch) {
    auto& staged = active_->out.staged;
    reserve_for(staged, *session_);
    session_->fill(staged, write_batch);
  }
}

codec::decoder& connection::decoder() {
  auto& d = active().decoder;
  if (!d) {
    d.emplace(codec::decoder_options{.max_packet_size = core().options().max_packet_size,
                                     .level = level_});
  }
  return *d;
}

void connection::park_until_readable() {
  if (active_ && active_->decoder) {  // drained: nothing is buffered
    level_ = active_->decoder->level();
    active_->decoder.reset();
  }
  reader_state_ = reader_state::parked_on_socket;
  // Edge-triggered: correct because read_ready() has just found the socket drained.
  awaiting_readable_ = true;
  release_if_idle();
}

void connection::on_readable(std::error_code ec) noexcept {
  // Inline from the readiness dispatch: the reader resumes on a later turn of the loop.
  asio::post(owner().executor_, [self = hold(), ec] {
    self->reader_state_ = reader_state::running;
    if (ec || self->closing_) {
      self->finish(self->closing_ ? self->close_reason() : ec.message());
      return;
    }
    self->spawn(self->reader(), "reader");
  });
}

void connection::park_until_subscribers_drain() {
  // Other connections read into the shared buffer meanwhile.
  if (active_->decoder) active_->decoder->keep_rest();
  active_->flow->wait_until = now() + core().options().slow_subscriber_timeout;
  rearm();
  reader_state_ = reader_state::parked_on_subscribers;
}

void connection::resume_reader() {
  if (reader_state_ != reader_state::parked_on_subscribers) return;
  reader_state_ = reader_state::running;
  auto& flow = *active_->flow;  // a wait for subscribers keeps the activity block
  flow.wait_until = clock::time_point::max();
  rearm();
  if (held_back() && !closing_) {
    // Timed out: the subscribers still over their limit are slow from now on (the session
    // decides that by the same timeout) and nobody waits for them.
    flow.blocking = 0;
    ++flow.generation;
  }
  if (!closing_) apply(protocol_.on_resumed(now()));
  asio::post(owner().executor_, [self = hold()] { self->spawn(self->reader(), "reader"); });
}

bool connection::session_linked() const {
  return session_ != nullptr && core().is_linked(session_, this);
}

void connection::close(std::string_view reason) {
  if (closing_ || finished_) return;
  protocol_.close(session_linked());
  // After a takeover the broker has already moved the session to the new connection.
  if (!protocol_.session_attached()) let_go_of_session();
  stop(reason);
}

void connection::stop(std::string_view reason) {
  if (closing_ || finished_) return;
  closing_ = true;
  active().close_reason = reason;
  logger().debug("closing client_id=\"{}\" peer={} reason=\"{}\"", log::escape(client_id()), peer_,
                 reason);
  cancel_io();      // a reader parked on the socket wakes and finishes the connection
  rearm();          // closing: the deadline is void
  resume_reader();  // so does one held back by subscribers
}

void connection::apply(const protocol_actions& actions) {
  for (const auto& a : actions)
    apply(a);
}

void connection::apply(const protocol_action& a) {
  switch (a.what) {
    case kind::none:
    case kind::handle:
    case kind::connect:
      return;  // packets: the caller handles them
    case kind::write_connack:
      queue_control(codec::connack{false, a.code});
      return;
    case kind::write_pingresp:
      queue_control(codec::pingresp{});  // [MQTT-3.12.4-1]
      return;
    case kind::close:
      if (a.cause == close_cause::packet_timeout) {
        ++core().mutable_stats().packet_timeouts;
        if (core().connection_warning_allowed()) {
          logger().warn(
              "packet_timeout client_id=\"{}\" peer={} buffered={} timeout_ms={} "
              "closed_total={}",
              log::escape(client_id()), peer_,
              active_ && active_->decoder ? active_->decoder->buffered() : 0,
              core().options().packet_timeout.count(), core().stats().packet_timeouts);
        }
      } else if (is_protocol_error(a.cause)) {
        ++core().mutable_stats().protocol_errors;
        if (a.cause == close_cause::server_packet) {
          logger().warn("protocol_error client_id=\"{}\" peer={} detail=\"{}: {}\"",
                        log::escape(client_id()), peer_, protocol_error_detail(a.cause),
                        codec::name_of(a.packet));
        } else {
          logger().warn("protocol_error client_id=\"{}\" peer={} detail=\"{}\"",
                        log::escape(client_id()), peer_, protocol_error_detail(a.cause));
        }
      }
      stop(describe(a.cause));
      return;
    case kind::close_after_flush:
      close_after_flush_ = true;
      closing_ = true;
      return;
    case kind::set_deadline:  // the protocol keeps it: deadline()
    case kind::clear_deadline:
      rearm();
      return;
    case kind::publish_will:
      publish_will();
      return;
    case kind::release_session:
      if (session_ != nullptr) {
        session& s = *session_;
        let_go_of_session();  // before the broker may discard it
        core().disconnect(s, *this);
      }
      return;
  }
}

void connection::rearm() {
  const auto at = std::min(deadline(), hold_until());
  if (at == clock::time_point::max()) {
    clock::alarm::cancel();
  } else {
    clock::alarm::arm(at);
  }
}

void connection::on_alarm() {
  const auto keep = hold();  // what follows may finish the connection
  const auto t = now();
  if (hold_until() <= t) resume_reader();  // ends the wait, and sets the hold back
  if (deadline() <= t) on_deadline();      // sets the next one, or closes
  rearm();
}

void connection::on_deadline() {
  if (finished_ || closing_) return;
  apply(protocol_.on_deadline(now(), held_back()));
}

awaitable<void> connection::reader() {
  if (!opened_) co_await open();
  bool just_read = false;  // read_ready() returned bytes and the loop has not run since
  // The start of an unfinished packet up to this size is copied in front of the next read into
  // the server's buffer; a larger one is completed in the connection's own buffer. So is one
  // that a whole read did not finish (a large packet, or one sent a few bytes at a time): each
  // read would copy its start twice again.
  constexpr std::size_t carried_at_most = server::read_buffer_size / 4;
  bool decoded_since_read = false;
  for (;;) {
    if (close_after_flush_ || finished_) co_return;  // the writer finishes once the answer is out
    if (closing_) {
      finish(close_reason());
      co_return;
    }
    if (held_back()) {
      park_until_subscribers_drain();  // resume_reader() starts the reader again
      co_return;
    }
    // Packets already buffered go first: after a wait, the rest of a read is still here.
    auto r = decoder().next();
    if (!r) {
      on_decode_error(r.error());
      continue;  // closing now, or refusing with a CONNACK first
    }
    if (*r) {
      const auto verdict = protocol_.on_packet(**r);
      if (verdict.what == kind::connect) {
        // The login may wait for the login thread; packets behind the CONNECT wait with it.
        auto& c = std::get<codec::connect>(**r);
        std::string why;
        decoder().keep_rest();
        const auto login = co_await owner().authenticate(c, *active_->listener, stream_.get(), why);
        if (!closing_) (void)on_connect(std::move(c), login, why);
      } else {
        (void)handle(std::move(**r), verdict);  // a packet that ends it also sets closing_
      }
      decoded_since_read = true;
      continue;
    }
    decoder().keep_rest();
    if (just_read) {
      // A publisher that keeps the socket full must not keep the loop: other connections,
      // writers and timers get their turn between two reads, as after an Asio read. This holds
      // whether the read ended between packets or inside one: a stream of packets that straddle
      // reads would otherwise fill its subscribers' queues before their writers run.
      just_read = false;
      co_await asio::post(owner().executor_, use_awaitable);
      continue;  // the connection may be closing now
    }
    const std::size_t pending = decoder().buffered();
    if (pending == 0) {
      protocol_.on_buffer_empty();
    } else if (!protocol_.partial_pending()) {
      apply(protocol_.on_partial_packet(now()));
      if (closing_) continue;
    }
    if (own_socket() && (pending == 0 || (pending <= carried_at_most && decoded_since_read))) {
      // Read into the server's buffer, behind the start of the packet the last read ended in:
      // an idle connection holds no receive buffer (and once the socket is drained, no
      // coroutine either), a busy one only that start, and every read may fill the buffer.
      const auto into = owner().read_buffer();
      if (pending == 0) {
        decoder().release();
      } else {
        std::memcpy(into.data(), decoder().pending().data(), pending);
      }
      const auto [ec, n] = tcp_.read_ready(into + pending);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        if (pending == 0) {
          park_until_readable();
          co_return;
        }
        // Inside a packet: the decoder keeps its start while the rest is awaited.
        if (const auto waited = co_await wait_readable(); waited || closing_) {
          finish(closing_ ? close_reason() : waited.message());
          co_return;
        }
        continue;
      }
      if (ec) {
        finish(ec == asio::error::eof ? "peer closed" : ec.message());
        co_return;
      }
      decoder().borrow({static_cast<const char*>(into.data()), pending + n});
      protocol_.on_bytes(now());
      just_read = true;
      decoded_since_read = false;
      continue;
    }
    auto space = decoder().prepare(read_chunk);
    if (!charge_buffers()) continue;
    auto [ec, n] = co_await read_some(asio::buffer(space.data(), space.size()));
    if (ec || closing_) {
      finish(closing_ ? close_reason() : (ec == asio::error::eof ? "peer closed" : ec.message()));
      co_return;
    }
    decoder().commit(n);
    protocol_.on_bytes(now());
    just_read = true;
    decoded_since_read = false;
  }
}

awaitable<void> connection::open() {
  std::error_code ec;
  if (stream_) ec = co_await stream_->open();
  if (ec || closing_) {
    if (!closing_) {
      const auto total = ++core().mutable_stats().handshake_failures;
      if (core().connection_warning_allowed()) {
        logger().info("handshake_failed transport={} peer={} error=\"{}\" failed_total={}",
                      transport_name(), peer_, log::escape(ec.message()), total);
      }
    }
    finish(closing_ ? close_reason() : transport_name() + std::string(" handshake failed"));
    co_return;
  }
  opened_ = true;
  wake();  // whatever was queued during the handshake
}

bool connection::charge_buffers() {
  // Everyday buffers (one read, a few acknowledgements) are part of a connection's fixed cost;
  // what a large packet or unread acknowledgements make them grow to is charged, first to the
  // connection buffers' share of the budget, then to the budget.
  auto& a = active();
  const std::size_t control = a.out.control.capacity() + a.out.out_control.capacity();
  const std::size_t received = a.decoder ? a.decoder->capacity() : 0;
  const std::size_t extra =
      (received > 2 * read_chunk ? received : 0) + (control > everyday_control ? control : 0);
  auto* budget = core().options().budget;
  auto* share = core().receive_share();
  if (extra > a.buffers_charged && budget != nullptr && share != nullptr) {
    const std::size_t growth = extra - a.buffers_charged;
    if (!share->fits(growth) || !budget->fits(growth)) {
      ++core().mutable_stats().budget_disconnects;
      if (core().connection_warning_allowed()) {
        logger().warn(
            "connection_closed reason=memory_budget client_id=\"{}\" peer={} buffer={} "
            "receive_buffers={} receive_share={} used={} limit={} closed_total={}",
            log::escape(client_id()), peer_, received, share->used(), share->limit(),
            budget->used(), budget->limit(), core().stats().budget_disconnects);
      }
      close("memory budget spent on this connection's buffers");
      return false;
    }
  }
  set_buffers_charge(extra);
  return true;
}

awaitable<void> connection::writer() {
  for (;;) {
    if (finished_) {
      writer_running_ = false;
      co_return;
    }
    // Control packets first: a SUBACK precedes the retained messages it releases.
    auto& b = out();
    b.out_control.clear();
    b.out_control.swap(b.control);
    b.out_data.clear();
    b.out_data.swap(b.staged);
    if (session_ != nullptr && protocol_.connected() && !closing_) {
      reserve_for(b.out_data, *session_);
      session_->fill(b.out_data, write_batch);
    }
    if (b.out_control.empty() && b.out_data.empty()) {
      writer_running_ = false;
      if (close_after_flush_) {
        finish("refused");
        co_return;
      }
      if (closing_) co_return;
      // Idle: the buffers go, so that a quiet connection holds nothing for the bursts it once
      // had (one allocation per burst when traffic resumes, next to a system call).
      b = write_buffers{};
      if (session_ != nullptr) session_->release_idle_memory();
      release_if_idle();
      co_return;  // wake() starts it again
    }
    const auto ec = co_await write({asio::buffer(b.out_control), asio::buffer(b.out_data)});
    if (ec) {
      writer_running_ = false;
      finish("write failed: " + ec.message());
      co_return;
    }
  }
}

void connection::queue_control(const codec::packet& p) {
  auto& control = out().control;
  const std::size_t capacity = control.capacity();
  codec::encode(p, control);
  if (control.size() > core().options().max_control_backlog) {
    close("client does not read its acknowledgements");
    return;
  }
  // Only growth has something new to charge (every read charges the buffers again anyway).
  if (control.capacity() > capacity && !charge_buffers()) return;
  wake();
}

void connection::on_decode_error(std::error_code ec) {
  const auto actions = protocol_.on_decode_error(ec);
  if (const auto* refusal = actions.find(kind::write_connack)) {
    ++core().mutable_stats().connections_refused;
    logger().log(line_level(core()), "connect_refused peer={} rc={} reason=\"{}\"", peer_,
                 static_cast<int>(refusal->code), decoder().error_detail());
  } else if (!actions.empty()) {
    ++core().mutable_stats().protocol_errors;
    logger().warn("protocol_error client_id=\"{}\" peer={} error=\"{}\" detail=\"{}\"",
                  log::escape(client_id()), peer_, ec.message(), decoder().error_detail());
  }
  apply(actions);
}

void connection::protocol_error(std::string_view what) {
  ++core().mutable_stats().protocol_errors;
  logger().warn("protocol_error client_id=\"{}\" peer={} detail=\"{}\"", log::escape(client_id()),
                peer_, what);
  close("protocol error");
}

bool connection::handle(codec::packet&& p, const protocol_action& verdict) {
  if (verdict.what == kind::handle) return handle_session_packet(p);
  apply(verdict);
  return !closing_;
}

bool connection::handle_session_packet(codec::packet& p) {
  return std::visit(
      overloaded{[this](codec::publish& pub) {
                   on_publish(std::move(pub));
                   return true;
                 },
                 [this](codec::puback& a) {
                   if (session_ != nullptr && session_->on_puback(a.packet_id)) wake();
                   return true;
                 },
                 [this](codec::pubrec& a) {
                   if (session_ != nullptr && session_->on_pubrec(a.packet_id, out().control))
                     wake();
                   return true;
                 },
                 [this](codec::pubcomp& a) {
                   if (session_ != nullptr && session_->on_pubcomp(a.packet_id)) wake();
                   return true;
                 },
                 [this](codec::pubrel& r) {
                   if (session_ != nullptr) session_->release_qos2(r.packet_id);
                   queue_control(codec::pubcomp{r.packet_id});  // [MQTT-4.3.3-2]
                   return true;
                 },
                 [this](codec::subscribe& s) {
                   if (session_ == nullptr) return true;
                   auto codes = core().subscribe(*session_, s.subscriptions);
                   if (decoder().level() == codec::protocol_level::v3_1 &&
                       std::find(codes.begin(), codes.end(), codec::suback_return_code::failure) !=
                           codes.end()) {
                     protocol_error("invalid topic filter (MQTT 3.1 has no SUBACK failure code)");
                     return false;
                   }
                   // SUBACK goes out before the retained messages the subscription queued.
                   queue_control(codec::suback{s.packet_id, std::move(codes)});
                   return true;
                 },
                 [this](codec::unsubscribe& u) {
                   if (session_ != nullptr) core().unsubscribe(*session_, u.filters);
                   queue_control(codec::unsuback{u.packet_id});  // [MQTT-3.10.4-4]
                   return true;
                 },
                 [](auto&) { return true; }},  // connection_protocol admits no other packet
      p);
}

bool connection::on_connect(codec::connect&& c, codec::connect_return_code login,
                            const std::string& why) {
  if (login != codec::connect_return_code::accepted) {
    ++core().mutable_stats().connections_refused;
    owner().note_login_failure(peer_, c, login, why);
    const auto actions = protocol_.on_connect_result(login, std::move(c.will), now());
    queue_control(codec::connack{false, login});
    apply(actions);
    return false;
  }
  std::string resend;
  auto result = core().connect(c, *this, resend);
  const bool accepted = result.ack.return_code == codec::connect_return_code::accepted;
  if (accepted) {
    // Before anything that may close the connection: finish() must find the session.
    session_ = result.s;
  }
  const auto actions =
      protocol_.on_connect_result(result.ack.return_code, std::move(c.will), now());
  queue_control(result.ack);
  if (!accepted) {
    logger().log(line_level(core()), "connect_refused peer={} client_id=\"{}\" rc={}", peer_,
                 log::escape(c.client_id), static_cast<int>(result.ack.return_code));
    apply(actions);
    return false;
  }
  if (!resend.empty()) out().control += resend;
  apply(actions);  // keep-alive replaces the CONNECT timeout
  logger().log(
      line_level(core()),
      "connected client_id=\"{}\" peer={} clean_session={} keep_alive={} session_present={}",
      log::escape(client_id()), peer_, c.clean_session, c.keep_alive, result.ack.session_present);
  return true;
}

void connection::on_publish(codec::publish&& p) {
  const auto qos = p.qos;
  const auto id = p.packet_id;
  // A QoS 2 retransmission before PUBREL is only acknowledged, never delivered again.
  const bool deliver =
      qos != qos_level::exactly_once || (session_ != nullptr && session_->receive_qos2(id));
  if (deliver) {
    auto msg = core().make_message(std::move(p.topic), std::move(p.payload), qos, p.retain);
    if (!msg) {
      if (qos == qos_level::at_most_once) return;  // counted by make_message
      // Not acknowledged: the client keeps the message and sends it again on its next
      // connection, when there may be room [MQTT-4.4.0-1].
      if (qos == qos_level::exactly_once) session_->release_qos2(id);
      ++core().mutable_stats().budget_disconnects;
      if (core().connection_warning_allowed()) {
        logger().warn(
            "connection_closed reason=memory_budget client_id=\"{}\" peer={} qos={} "
            "detail=\"message not acknowledged; the client resends it\" closed_total={}",
            log::escape(client_id()), peer_, static_cast<int>(qos),
            core().stats().budget_disconnects);
      }
      close("memory budget spent: QoS 1/2 message not acknowledged");
      return;
    }
    // A refused topic (over the limits) is still acknowledged, as 3.1.1 allows for a message
    // the server will not deliver; it is counted and logged by the broker.
    auto& flow = active().flow;
    if (!flow) {
      flow = std::make_shared<flow_waiter>();
      // Called from inside the session that drained, maybe while another connection decodes
      // from the shared read buffer: the reader resumes on a later turn of the loop, never
      // inline. The flow record goes before this connection does: with its activity block.
      flow->on_clear = [this] { resume_reader(); };
    }
    (void)core().publish(*msg, flow, session_);
  }
  switch (qos) {
    case qos_level::at_most_once:
      break;
    case qos_level::at_least_once:
      queue_control(codec::puback{id});  // [MQTT-4.3.2-2]
      break;
    case qos_level::exactly_once:
      queue_control(codec::pubrec{id});  // [MQTT-4.3.3-2]
      break;
  }
}

void connection::publish_will() {
  auto will = protocol_.take_will();
  if (!will) return;
  auto& access = core().access();
  if (access.acl && !access.allows(auth::acl_access::write, will->topic, client_id(), username())) {
    ++access.denied_publishes;
    logger().log(line_level(core()), "will_denied client_id=\"{}\" topic=\"{}\" reason=acl",
                 log::escape(client_id()), log::escape(will->topic));
    return;
  }
  // Intercepted like a PUBLISH.
  logger().log(line_level(core()), "will client_id=\"{}\" topic=\"{}\"", log::escape(client_id()),
               log::escape(will->topic));
  if (auto msg = core().make_message(std::move(will->topic), std::move(will->payload), will->qos,
                                     will->retain)) {
    (void)core().publish(*msg);
  }
}

void connection::finish(std::string_view reason) {
  if (finished_) return;
  finished_ = true;
  closing_ = true;
  const bool linked = session_linked();
  if (!linked) let_go_of_session();
  apply(protocol_.finish(linked));  // the will, then the session back to the broker
  let_go_of_session();
  if (protocol_.accepted()) {
    logger().log(line_level(core()), "disconnected client_id=\"{}\" peer={} reason=\"{}\"",
                 log::escape(client_id()), peer_, reason);
  } else {
    logger().debug("connection_closed peer={} reason=\"{}\"", peer_, reason);
  }
  close_io();  // a reader parked on the socket wakes, finds the connection finished
  auto* flow = active_ ? active_->flow.get() : nullptr;
  if (flow != nullptr) flow->wait_until = clock::time_point::max();
  rearm();
  if (flow != nullptr) flow->on_clear = nullptr;
  set_buffers_charge(0);
  owner().on_closed(this);
}

}  // namespace ebus::mqtt::broker
