#pragma once
// The rules of one MQTT connection that need no session and no routing, as a Sans-I/O object:
// CONNECT first and only once [MQTT-3.1.0-1] [MQTT-3.1.0-2], the refusals a CONNECT gets before
// the broker sees it, the CONNECT timeout, the packet timeout (a packet must be complete some
// time after its first byte), keep-alive at one and a half times the client's value
// [MQTT-3.1.2-24], the will (published on every end but DISCONNECT [MQTT-3.1.2-8]
// [MQTT-3.14.4-3]) and what a takeover leaves to this connection (its will, not its session).
//
// It is fed decoded packets, decode errors, read events and the current time, and answers with
// actions that the transport (connection.hpp) carries out: write a packet, close now or once
// written, arm or clear its one deadline, publish the will, release the session. It owns no
// socket, timer or clock, so every rule is tested with plain values and fuzzed as packet
// sequences with time steps.
//
// Session packets (PUBLISH and its acknowledgements, SUBSCRIBE, UNSUBSCRIBE) are only admitted
// (action handle): the transport hands them to the session and the broker at once, so the
// PUBLISH path costs a state check here, no allocation and no clock read.
//
// Thread safety: distinct objects safe; shared objects unsafe.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>

#include "common/clock.hpp"
#include "mqtt/codec/packet.hpp"

namespace ebus::mqtt::broker {

/// Why the protocol ends a connection.
enum class close_cause : std::uint8_t {
  connect_timeout,    ///< no CONNECT within connect_timeout
  packet_timeout,     ///< a packet not complete within packet_timeout of its first byte
  keepalive_expired,  ///< silent for 1.5 x keep-alive [MQTT-3.1.2-24]
  first_not_connect,  ///< protocol error [MQTT-3.1.0-1]
  second_connect,     ///< protocol error [MQTT-3.1.0-2]
  server_packet,      ///< protocol error: a packet only a server sends (CONNACK, SUBACK, ...)
  malformed,          ///< the decoder refused the bytes
  refused,            ///< CONNECT refused; its CONNACK goes out first
  disconnect,         ///< the client sent DISCONNECT
  server,             ///< the server's own reason: takeover, limits, shutdown (close())
};

/// The reason logged when the connection closes ("keep-alive expired [MQTT-3.1.2-24]").
[[nodiscard]] std::string_view describe(close_cause cause) noexcept;
/// The rule a protocol error broke, for the warning; empty for other causes.
[[nodiscard]] std::string_view protocol_error_detail(close_cause cause) noexcept;
[[nodiscard]] constexpr bool is_protocol_error(close_cause cause) noexcept {
  return cause == close_cause::first_not_connect || cause == close_cause::second_connect ||
         cause == close_cause::server_packet;
}

/// One thing the transport must do.
struct protocol_action {
  enum class kind : std::uint8_t {
    none,               ///< nothing to do (a packet read after a close was decided)
    handle,             ///< a session packet: hand it to the session and the broker
    connect,            ///< the CONNECT goes to the broker; then call on_connect_result()
    write_connack,      ///< write CONNACK `code` (a refusal before the broker saw the CONNECT)
    write_pingresp,     ///< [MQTT-3.12.4-1]
    close,              ///< stop reading and close now, for `cause`; the deadline is void
    close_after_flush,  ///< stop reading; close once the queued packets are written
    set_deadline,       ///< call on_deadline() at `at`, replacing the previous deadline
    clear_deadline,     ///< no deadline until the next set_deadline
    publish_will,       ///< take_will() and publish it as a PUBLISH from this client
    release_session,    ///< hand the session back to the broker (broker::disconnect)
  };
  kind what = kind::none;
  close_cause cause = close_cause::server;  ///< close, close_after_flush
  codec::connect_return_code code = codec::connect_return_code::accepted;  ///< write_connack
  codec::packet_type packet = codec::packet_type::connect;  ///< close: the offending packet
  clock::time_point at{};                                   ///< set_deadline

  friend bool operator==(const protocol_action&, const protocol_action&) = default;
};

/// A few actions, in the order they must be carried out. A fixed array: no allocation.
class protocol_actions {
 public:
  static constexpr std::size_t capacity = 3;

  protocol_actions() = default;
  explicit protocol_actions(const protocol_action& a) noexcept { push(a); }

  void push(const protocol_action& a) noexcept { items_[size_++] = a; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] const protocol_action* begin() const noexcept { return items_.data(); }
  [[nodiscard]] const protocol_action* end() const noexcept { return items_.data() + size_; }
  [[nodiscard]] const protocol_action& operator[](std::size_t i) const noexcept {
    return items_[i];
  }
  /// The first action of kind `k`, or null.
  [[nodiscard]] const protocol_action* find(protocol_action::kind k) const noexcept {
    for (const auto& a : *this) {
      if (a.what == k) return &a;
    }
    return nullptr;
  }

 private:
  std::array<protocol_action, capacity> items_{};
  std::uint8_t size_ = 0;
};

class connection_protocol {
 public:
  using time_point = clock::time_point;
  using duration = clock::duration;

  enum class state : std::uint8_t {
    awaiting_connect,  ///< nothing but CONNECT is accepted
    connected,         ///< the broker accepted the CONNECT
    closing,           ///< a close was decided; nothing more is read or handled
    finished,          ///< finish() ran
  };

  struct options {
    duration connect_timeout = std::chrono::seconds(10);
    duration packet_timeout = std::chrono::seconds(30);
    /// While subscribers hold this publisher back, deadlines are looked at again this often:
    /// the client is not silent, it is not being read.
    duration slow_subscriber_timeout = std::chrono::seconds(2);
  };

  /// `o` outlives the protocol object: the server keeps one for all its connections.
  explicit connection_protocol(const options& o) noexcept : options_(&o) {}
  explicit connection_protocol(options&&) = delete;  // would dangle

  /// The connection was accepted at `now`: the CONNECT timeout starts.
  [[nodiscard]] protocol_actions start(time_point now) noexcept;

  /// Bytes arrived at `now`. Keep-alive counts any bytes as activity, whole packets or not;
  /// before the CONNECT is accepted they do not move the CONNECT timeout.
  void on_bytes(time_point now) noexcept {
    if (state_ != state::awaiting_connect) since_ = now;
  }

  /// The decoder holds no part of a packet: no packet timeout runs.
  void on_buffer_empty() noexcept { partial_since_ = no_partial; }
  /// True while a packet timeout runs; the transport asks before reading the clock.
  [[nodiscard]] bool partial_pending() const noexcept { return partial_since_ != no_partial; }
  /// The decoder holds the first bytes of a packet at `now`: its timeout starts unless one
  /// runs already.
  [[nodiscard]] protocol_actions on_partial_packet(time_point now) noexcept;

  /// A decoded packet. Returns handle (a session packet), connect (call on_connect_result()
  /// next), write_pingresp, or close; none once closing.
  [[nodiscard]] protocol_action on_packet(const codec::packet& p) noexcept {
    // PUBLISH and its acknowledgements on an open connection, the hot path, are decided here,
    // inline: the variant's alternatives follow packet_type, publish (3) to pubcomp (7).
    const auto type = p.index() + 1;
    if (state_ == state::connected &&
        type >= static_cast<std::size_t>(codec::packet_type::publish) &&
        type <= static_cast<std::size_t>(codec::packet_type::pubcomp)) {
      return {.what = protocol_action::kind::handle};
    }
    return on_other_packet(p);
  }

  /// The broker's answer, at `now`, to the CONNECT of the last connect action, with that
  /// CONNECT's will. Accepted: the session is this connection's and keep-alive starts;
  /// refused: close_after_flush (the transport writes the broker's CONNACK first).
  [[nodiscard]] protocol_actions on_connect_result(codec::connect_return_code code,
                                                   std::optional<codec::will_message> will,
                                                   time_point now);

  /// The decoder failed. MQTT 3.1.1 answers two refusals of a CONNECT with a CONNACK before
  /// closing: 0x01 for a protocol level it does not speak [MQTT-3.1.2-2] and 0x02 for a client
  /// id it must refuse [MQTT-3.1.3-9]; every other error only closes (3.1.1 has no DISCONNECT
  /// from the server).
  [[nodiscard]] protocol_actions on_decode_error(std::error_code ec) noexcept;

  /// The deadline came (or a wake-up, possibly early). `held`: the transport is not reading
  /// because subscribers hold this publisher back.
  [[nodiscard]] protocol_actions on_deadline(time_point now, bool held) noexcept;

  /// Reading resumes after subscribers held it back: time spent held is not the client's, for
  /// keep-alive nor for the packet timeout. Re-arms when the deadline set while held comes
  /// later than keep-alive from now.
  [[nodiscard]] protocol_actions on_resumed(time_point now) noexcept;

  /// The server closes for its own reason (takeover, overflow policy, limits, shutdown).
  /// `session_linked`: the broker still links the session to this connection (false after a
  /// takeover moved it). No action: the will waits for finish().
  void close(bool session_linked) noexcept;

  /// The connection is over. publish_will unless the client sent DISCONNECT, then
  /// release_session while the session is still this connection's.
  [[nodiscard]] protocol_actions finish(bool session_linked) noexcept;

  /// The will, once publish_will asked for it.
  [[nodiscard]] std::optional<codec::will_message> take_will() noexcept {
    if (!will_) return std::nullopt;
    std::optional<codec::will_message> w(std::move(*will_));
    will_.reset();
    return w;
  }

  [[nodiscard]] state current() const noexcept { return state_; }
  [[nodiscard]] bool connected() const noexcept { return state_ == state::connected; }
  /// The broker accepted the CONNECT at some point (the connection may be ending since).
  [[nodiscard]] bool accepted() const noexcept { return accepted_; }
  /// The session the broker gave this connection is still its own.
  [[nodiscard]] bool session_attached() const noexcept { return session_attached_; }
  [[nodiscard]] bool has_will() const noexcept { return will_ != nullptr; }
  /// 1.5 x the CONNECT's keep-alive; zero when off or not connected.
  [[nodiscard]] duration keepalive_limit() const noexcept {
    return accepted_ ? std::chrono::milliseconds(std::uint32_t{keep_alive_} * 1500) : duration{};
  }
  /// The deadline last asked for; time_point::max() when none.
  [[nodiscard]] time_point deadline() const noexcept { return armed_; }
  /// The options given at construction.
  [[nodiscard]] const options& settings() const noexcept { return *options_; }

 private:
  [[nodiscard]] protocol_action on_other_packet(const codec::packet& p) noexcept;
  /// The earliest rule that can end the connection.
  [[nodiscard]] time_point next_due() const noexcept;
  /// set_deadline(next_due()), or clear_deadline when nothing is due.
  [[nodiscard]] protocol_action rearm() noexcept;
  [[nodiscard]] protocol_action close_for(close_cause cause) noexcept;

  // Every connection holds one of these: the timeouts are the server's, shared, and "no partial
  // packet" is a sentinel rather than an optional.
  static constexpr time_point no_partial = time_point::max();

  // Awaiting the CONNECT: when the connection started (the CONNECT timeout counts from it).
  // Accepted: the last bytes read (keep-alive counts from them).
  time_point since_{};
  time_point partial_since_ = no_partial;
  time_point armed_ = time_point::max();
  std::unique_ptr<codec::will_message> will_;  // on the heap: most clients set none
  const options* options_;
  // Seconds, of the CONNECT handed to the broker; in force once accepted. 0: off.
  std::uint16_t keep_alive_ = 0;
  state state_ = state::awaiting_connect;
  bool session_attached_ = false;
  bool accepted_ = false;
};

}  // namespace ebus::mqtt::broker
