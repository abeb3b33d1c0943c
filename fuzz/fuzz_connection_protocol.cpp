// Fuzz target for connection_protocol: the input is a script of steps that a connection's
// transport could take, carried out against the object the way connection.cpp does (bytes go
// through the real decoder, deadlines fire when the simulated time passes them).
//
// Each step starts with one byte: bits 0-2 pick the step, bits 3-7 are its argument `a`.
//   0 bytes     a = count (0 means the next byte is the count); that many bytes arrive
//   1 time      the next two bytes (big endian) are milliseconds, times 2^(a & 7)
//   2 close     the server closes; bit 0 of a: the session is still linked (else taken over)
//   3 hold      bit 0 of a: subscribers hold the publisher back (else it resumes)
//   4 finish    the connection ends; bit 0 of a: the session is still linked
//   5 verdict   how the broker answers the next CONNECT: a = 0 accepts, else CONNACK a % 6
// Steps are read until the input ends; then the connection finishes.
//
// Besides crashes and sanitizer reports it traps when a rule is broken: a packet handled after
// a close, a second CONNECT admitted, a deadline asked for in the past, a keep-alive or CONNECT
// timeout that passes without a close, a will published after DISCONNECT or twice, a session
// released that the broker took back or released twice.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "mqtt/broker/connection_protocol.hpp"
#include "mqtt/codec/decoder.hpp"

namespace {

using namespace ebus::mqtt;
using broker::close_cause;
using broker::connection_protocol;
using broker::protocol_action;
using broker::protocol_actions;
using kind = protocol_action::kind;
using time_point = connection_protocol::time_point;
using std::chrono::milliseconds;

void require(bool condition) {
  if (!condition) __builtin_trap();
}

constexpr connection_protocol::options options{.connect_timeout = milliseconds(10'000),
                                               .packet_timeout = milliseconds(30'000),
                                               .slow_subscriber_timeout = milliseconds(2'000)};

class transport {
 public:
  transport() { apply(protocol_.start(now_)); }

  void bytes(std::string_view in) {
    if (stopped()) return;
    decoder_.feed(in);
    protocol_.on_bytes(now_);
    last_bytes_ = now_;
    // Like connection::reader(): whole packets first, then the partial-packet bookkeeping.
    while (!stopped()) {
      auto r = decoder_.next();
      if (!r) {
        const auto actions = protocol_.on_decode_error(r.error());
        require(!actions.empty() || protocol_.current() >= connection_protocol::state::closing);
        apply(actions);
        return;
      }
      if (!*r) break;
      packet(**r);
    }
    if (stopped()) return;
    if (decoder_.buffered() == 0) {
      protocol_.on_buffer_empty();
    } else if (!protocol_.partial_pending()) {
      apply(protocol_.on_partial_packet(now_));
    }
  }

  void advance(milliseconds d) {
    const time_point target = now_ + d;
    while (deadline_ && *deadline_ <= target && !stopped()) {
      now_ = std::max(now_, *deadline_);
      deadline_.reset();
      apply(protocol_.on_deadline(now_, held_));
    }
    now_ = target;
    check_timeouts();
  }

  void server_close(bool linked) {
    if (stopped()) return;
    if (!linked) taken_over_ = true;
    protocol_.close(linked && !taken_over_);
    closing_ = true;
    deadline_.reset();
  }

  void hold(bool on) {
    if (stopped() || !protocol_.connected()) return;
    const bool resumed = held_ && !on;
    held_ = on;
    if (resumed) {
      last_bytes_ = now_;
      apply(protocol_.on_resumed(now_));
    }
  }

  void verdict(std::uint8_t v) { refusal_ = v % 6; }

  void finish(bool linked) {
    if (finished_) return;
    if (!linked) taken_over_ = true;
    const auto actions = protocol_.finish(linked && !taken_over_);
    finished_ = true;
    apply(actions);
    require(protocol_.finish(linked).empty());  // once
    require(!protocol_.has_will());
  }

 private:
  [[nodiscard]] bool stopped() const { return closing_ || finished_; }

  void packet(const codec::packet& p) {
    const auto a = protocol_.on_packet(p);
    const bool is_connect = std::holds_alternative<codec::connect>(p);
    switch (a.what) {
      case kind::connect: {
        require(is_connect && !accepted_);
        const auto& c = std::get<codec::connect>(p);
        const auto code = static_cast<codec::connect_return_code>(refusal_);
        if (code == codec::connect_return_code::accepted) {
          accepted_ = true;
          linked_session_ = true;
          keep_alive_ = c.keep_alive;
          will_armed_ = c.will.has_value();
        }
        if (code == codec::connect_return_code::accepted) last_bytes_ = now_;
        apply(protocol_.on_connect_result(code, c.will, now_));
        require(protocol_.connected() == (code == codec::connect_return_code::accepted));
        return;
      }
      case kind::handle:
        require(accepted_ && !is_connect);
        return;
      case kind::write_pingresp:
        require(accepted_ && std::holds_alternative<codec::pingreq>(p));
        return;
      case kind::close:
        if (a.cause == close_cause::disconnect) {
          require(std::holds_alternative<codec::disconnect>(p));
          will_armed_ = false;
          require(!protocol_.has_will());
        }
        if (a.cause == close_cause::second_connect) require(is_connect && accepted_);
        if (a.cause == close_cause::first_not_connect) require(!is_connect && !accepted_);
        apply(a);
        return;
      default:
        require(false);  // packets never ask for anything else
    }
  }

  void apply(const protocol_actions& actions) {
    for (const auto& a : actions)
      apply(a);
  }

  void apply(const protocol_action& a) {
    switch (a.what) {
      case kind::none:
      case kind::handle:
      case kind::connect:
      case kind::write_pingresp:
        require(false);  // answers to packets only
        break;
      case kind::write_connack:
        require(!accepted_ && a.code != codec::connect_return_code::accepted);
        break;
      case kind::close:
      case kind::close_after_flush:
        closing_ = true;
        deadline_.reset();
        require(protocol_.current() >= connection_protocol::state::closing);
        break;
      case kind::set_deadline:
        require(!stopped());
        require(a.at > now_);  // a deadline in the past would spin the loop
        deadline_ = a.at;
        break;
      case kind::clear_deadline:
        require(!stopped());
        deadline_.reset();
        break;
      case kind::publish_will:
        require(finished_ && will_armed_ && !will_published_);
        require(protocol_.take_will().has_value());
        will_published_ = true;
        break;
      case kind::release_session:
        require(finished_ && accepted_ && linked_session_ && !taken_over_);
        linked_session_ = false;
        break;
    }
  }

  // Liveness: a rule whose time has passed has closed the connection.
  void check_timeouts() const {
    if (stopped() || held_) return;
    if (!accepted_) {
      require(now_ < time_point{} + options.connect_timeout);
    } else if (keep_alive_ != 0) {
      require(now_ < last_bytes_ + milliseconds(std::int64_t{keep_alive_} * 1500));
    }
  }

  connection_protocol protocol_{options};
  codec::decoder decoder_{{.max_packet_size = 4096}};
  time_point now_{};
  time_point last_bytes_{};
  std::optional<time_point> deadline_;
  std::uint8_t refusal_ = 0;
  std::uint16_t keep_alive_ = 0;
  bool accepted_ = false;
  bool linked_session_ = false;
  bool taken_over_ = false;
  bool will_armed_ = false;
  bool will_published_ = false;
  bool held_ = false;
  bool closing_ = false;
  bool finished_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  transport t;
  std::size_t i = 0;
  const auto next = [&]() -> std::optional<std::uint8_t> {
    if (i >= size) return std::nullopt;
    return data[i++];
  };
  while (const auto step = next()) {
    const std::uint8_t a = *step >> 3;
    switch (*step & 0x07u) {
      case 0: {
        std::size_t n = a;
        if (n == 0) n = next().value_or(0);
        n = std::min(n, size - i);
        t.bytes(std::string_view(reinterpret_cast<const char*>(data + i), n));
        i += n;
        break;
      }
      case 1: {
        const std::uint32_t hi = next().value_or(0);
        const std::uint32_t lo = next().value_or(0);
        t.advance(milliseconds(std::int64_t{(hi << 8) | lo} << (a & 7u)));
        break;
      }
      case 2:
        t.server_close((a & 1u) != 0);
        break;
      case 3:
        t.hold((a & 1u) != 0);
        break;
      case 4:
        t.finish((a & 1u) != 0);
        break;
      case 5:
        t.verdict(a);
        break;
      default:
        break;
    }
  }
  t.finish(true);
  return 0;
}
