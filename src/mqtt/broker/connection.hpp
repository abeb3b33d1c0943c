#pragma once
// One client's connection, the transport only: a reader coroutine decodes packets, a writer
// coroutine writes control packets and pulls PUBLISHes from the session only when the socket
// has taken the previous batch, and one clock alarm wakes the connection at the deadline its
// protocol object asks for. Neither coroutine outlives its work: on plain TCP the reader stops
// once the socket is drained and the server's readiness set starts it again (readiness_set.hpp);
// the writer stops when nothing is left to write and wake() starts it again. An idle connection
// therefore holds no coroutine frame, no buffer and no activity block (see `activity`). The
// connection-level rules (CONNECT first and once, CONNECT timeout, packet timeout, keep-alive,
// will, takeover) are decided by connection_protocol, which this class feeds and obeys; session
// packets go to the session and the broker core directly. Time comes from the broker's clock, never
// from std::chrono, so tests drive it by hand.
//
// A client that stops reading only fills its own bounded session queue. A publisher whose
// messages push a subscriber's queue over its limit stops being read (the rest of its packets
// wait in the kernel and in its own socket) until that queue drains, or at most
// slow_subscriber_timeout.
//
// Thread safety: loop thread only.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/asio.hpp"
#include "common/clock.hpp"
#include "common/ref_ptr.hpp"
#include "mqtt/broker/broker.hpp"
#include "mqtt/broker/connection_protocol.hpp"
#include "mqtt/broker/peer_address.hpp"
#include "mqtt/broker/readiness_set.hpp"
#include "mqtt/broker/stream.hpp"
#include "mqtt/broker/tcp_socket.hpp"
#include "mqtt/codec/decoder.hpp"

namespace spdlog {
class logger;
}

namespace ebus::mqtt::broker {

class server;
struct listener_options;

class connection final : public client_link, private readiness_set::watcher, private clock::alarm {
 public:
  /// A connection over `transport` (TLS, WebSocket). `listener` outlives the connection (the
  /// server owns both).
  connection(std::unique_ptr<stream> transport, broker& core, server& owner,
             const listener_options& listener);
  /// A plain TCP connection on its own socket `fd` (connected, non-blocking), which the server
  /// then adds to its readiness set with this connection as the watcher.
  connection(int fd, broker& core, server& owner, const listener_options& listener);
  ~connection() override;

  /// Arms the CONNECT timeout and spawns the reader and writer coroutines.
  void start();

  void wake() override;
  void close(std::string_view reason) override;

  /// Owners (the server's list, running coroutines, posted work) hold ref_ptrs; the last one
  /// to let go destroys the connection.
  void add_ref() noexcept { ++refs_; }
  void release() noexcept {
    if (--refs_ == 0) delete this;
  }

  /// The session's client id; after the connection let go of its session, the id it had.
  [[nodiscard]] std::string_view client_id() const noexcept;
  /// Holds no read, write or closing state (see `activity`).
  [[nodiscard]] bool idle() const noexcept { return !active_; }

 private:
  friend class server;  // keeps slot_, adds the socket to its readiness set

  connection(std::unique_ptr<stream> transport, int fd, broker& core, server& owner,
             const listener_options& listener);

  /// Runs the stream's opening exchange once, then decodes and handles packets until the socket
  /// is drained, subscribers hold this publisher back, or the connection ends.
  awaitable<void> reader();
  awaitable<void> open();
  /// Writes until nothing is left, then ends; wake() starts it again.
  awaitable<void> writer();
  /// Stops the reader until the socket has bytes (plain TCP, after read_ready() found none).
  void park_until_readable();
  /// The wait of park_until_readable() ended: bytes, or operation_aborted (closing).
  void on_readable(std::error_code ec) noexcept;
  /// Plain TCP: the readiness set's news of the socket (inline from its dispatch: posts only).
  void on_ready(bool readable, bool writable) noexcept override;

  // The transport. Plain TCP is the connection's own socket (tcp_): an idle connection pays 4
  // bytes for it, and waits in its activity block while it reads or writes. TLS and WebSocket
  // are a stream object (stream_).
  [[nodiscard]] bool own_socket() const noexcept { return !stream_; }
  /// Ends park_until_readable()'s wait; false when none was pending (it is told only once).
  bool take_readable_wait() noexcept {
    const bool waiting = awaiting_readable_;
    awaiting_readable_ = false;
    return waiting;
  }
  awaitable<stream::read_result> read_some(asio::mutable_buffer into);
  /// Own socket only: waits until it is readable, or the wait is cancelled.
  awaitable<std::error_code> wait_readable();
  awaitable<std::error_code> write(stream::write_batch batch);
  /// Makes the pending read and write complete with operation_aborted.
  void cancel_io() noexcept;
  /// Closes the socket; no more I/O.
  void close_io() noexcept;
  [[nodiscard]] int native_handle() const noexcept;
  [[nodiscard]] const char* transport_name() const noexcept;
  /// Stops the reader until no subscriber holds this publisher back, or
  /// slow_subscriber_timeout.
  void park_until_subscribers_drain();
  /// Ends park_until_subscribers_drain() (drained, timed out or closing): restarts the reader on
  /// a later turn of the loop.
  void resume_reader();
  /// Charges the receive and acknowledgement buffers beyond their everyday size to the memory
  /// budget; false (and the connection closing) when the budget is spent.
  bool charge_buffers();
  void set_buffers_charge(std::size_t bytes) noexcept;
  [[nodiscard]] const std::string& close_reason() const noexcept;

  /// Carries out what the protocol object decided.
  void apply(const protocol_actions& actions);
  void apply(const protocol_action& a);
  /// The alarm rang: ends what is due of the protocol's deadline and a wait for subscribers.
  void on_alarm() override;
  /// The protocol's deadline; none once closing (a deadline then changes nothing).
  [[nodiscard]] clock::time_point deadline() const noexcept {
    return closing_ || finished_ ? clock::time_point::max() : protocol_.deadline();
  }
  /// Sets the alarm to the earlier of the two deadlines.
  void rearm();
  /// The deadline the protocol asked for has come.
  void on_deadline();
  [[nodiscard]] clock::time_point now() const noexcept;
  /// The server that accepted the connection.
  [[nodiscard]] server& owner() const noexcept;
  [[nodiscard]] broker& core() const noexcept;
  [[nodiscard]] spdlog::logger& logger() const noexcept;
  /// True while subscribers over their limit hold this publisher back.
  [[nodiscard]] bool held_back() const noexcept {
    return active_ && active_->flow && active_->flow->blocking > 0;
  }
  /// When a wait for subscribers ends at the latest; max() when none runs.
  [[nodiscard]] clock::time_point hold_until() const noexcept {
    return active_ && active_->flow ? active_->flow->wait_until : clock::time_point::max();
  }
  /// True while the broker links this connection's session to it (false after a takeover).
  [[nodiscard]] bool session_linked() const;

  /// Returns false when the connection must stop reading.
  /// A packet other than CONNECT, with what the protocol object decided about it.
  bool handle(codec::packet&& p, const protocol_action& verdict);
  /// A session packet: PUBLISH, its acknowledgements, SUBSCRIBE, UNSUBSCRIBE.
  bool handle_session_packet(codec::packet& p);
  /// The CONNECT, once the server has decided its login (`why`: the reason of a refusal).
  bool on_connect(codec::connect&& c, codec::connect_return_code login, const std::string& why);
  void on_publish(codec::publish&& p);
  void on_decode_error(std::error_code ec);
  void protocol_error(std::string_view what);
  void publish_will();
  void queue_control(const codec::packet& p);
  /// The I/O half of closing: logs, stops the reader and the writer, voids the deadline.
  void stop(std::string_view reason);
  void finish(std::string_view reason);
  void spawn(awaitable<void> task, const char* name);

  /// A reference for work that must find the connection alive.
  [[nodiscard]] ref_ptr<connection> hold() noexcept { return ref_ptr<connection>(this); }

  // First: it fills the alarm's (the last base's) tail padding.
  std::uint32_t slot_ = 0;          // in the server's list
  std::unique_ptr<stream> stream_;  // TLS, WebSocket; null for plain TCP (tcp_)
  connection_protocol protocol_;    // its settings lead to the server (owner())
  // What the connection writes.
  struct write_buffers {
    std::string control;      // acknowledgements and other control packets not yet written
    std::string staged;       // PUBLISHes taken from the session while a write is in flight
    std::string out_control;  // the batch being written: control packets,
    std::string out_data;     // then PUBLISHes
  };
  // What a connection holds only while it reads, writes, waits for subscribers or closes. Most
  // connections are idle most of the time (parked on their socket, nothing to write), and an
  // idle connection holds none of it: release_if_idle() frees it, the next byte, message or
  // close makes it again.
  struct activity {
    // Until the CONNECT: the listener that accepted the connection (its login settings). The
    // block stays until then.
    const listener_options* listener = nullptr;
    // Only while reading: a connection parked on its socket holds nothing buffered, so its
    // decoder goes, and the protocol level it learned from the CONNECT is kept in level_.
    std::optional<codec::decoder> decoder;
    // Their storage goes when the writer has nothing left to write.
    write_buffers out;
    // Made by a PUBLISH: only publishers are held back by slow subscribers. The one alarm (a
    // base) serves two deadlines: the protocol's, and flow->wait_until.
    std::shared_ptr<flow_waiter> flow;
    std::string close_reason;  // once closing
    // Once the session is no longer this connection's (takeover, end): its id and username,
    // for the log lines and the will that follow.
    shared_string client_id;
    std::optional<std::string> username;
    // Buffer bytes charged to the memory budget and to the connection buffers' share of it.
    std::uint32_t buffers_charged = 0;
    // Plain TCP: a read or a write waiting for the socket.
    std::unique_ptr<socket_wait> read_wait;
    std::unique_ptr<socket_wait> write_wait;
  };
  activity& active() {
    if (!active_) active_ = std::make_unique<activity>();
    return *active_;
  }
  /// Frees the activity block once the connection is idle: parked on its socket, nothing to
  /// write, nobody holding it back, not closing.
  void release_if_idle() noexcept;
  /// The decoder, made when reading starts again after a wait on the socket.
  codec::decoder& decoder();
  write_buffers& out() { return active().out; }
  std::unique_ptr<activity> active_;
  session* session_ = nullptr;  // once connected; the client id and username are its
  /// The login's username (the certificate's name with use_identity_as_username).
  [[nodiscard]] std::optional<std::string_view> username() const noexcept;
  /// The session stops being this connection's: keeps what the rest of its life logs.
  void let_go_of_session();
  peer_address peer_;
  std::uint32_t refs_ = 0;  // see add_ref(); next to peer_ (20 bytes) to fill its padding
  tcp_socket tcp_;          // plain TCP: the socket; none otherwise
  enum class reader_state : std::uint8_t {
    idle,                   // not started, or ended
    running,                // a coroutine runs or is about to
    parked_on_socket,       // a readiness wait restarts it
    parked_on_subscribers,  // resume_reader() restarts it
  };
  reader_state reader_state_ = reader_state::idle;
  codec::protocol_level level_ = codec::protocol_level::v3_1_1;  // while the decoder is gone
  // One byte of flags: with the fields above and peer_, refs_ and tcp_ they fill 32 bytes.
  bool writer_running_ : 1 = false;     // a writer coroutine runs or is about to
  bool awaiting_readable_ : 1 = false;  // park_until_readable() waits for the next edge
  bool opened_ : 1 = false;             // the stream's opening exchange is done
  bool closing_ : 1 = false;            // no more packets are handled; the socket closes soon
  bool close_after_flush_ : 1 = false;
  bool finished_ : 1 = false;
};

}  // namespace ebus::mqtt::broker
