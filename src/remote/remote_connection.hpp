#pragma once
// One client of the module sockets: a reader coroutine decodes its messages (registration first,
// then sends, requests and responses, docs/REMOTE.md), a writer coroutine writes what the bus
// delivers to the remote module from a queue bounded in messages and bytes, each message's
// encoded bytes charged to the memory budget until written. The bus's remote_sink only queues,
// so a client that stops reading fills its own queue and senders get queue_full; the loop never
// waits on a client. Once the queue drains below half after a queue_full, the connection calls
// bus::resume(), so a group backlog handed to it goes on at the client's pace. A message over
// the client's per-message limit once encoded is refused (too_large), counted and logged. Requests
// the client sends with header.sync run as coroutines of their own, holding only a weak reference,
// so the reader keeps reading and a close never waits for them; at most outbound_capacity of them
// at a time, more are answered with queue_full.
//
// Thread safety: loop thread only.

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <variant>

#include "bus/bus.hpp"
#include "common/asio.hpp"
#include "common/memory_budget.hpp"
#include "remote/frame.hpp"
#include "remote/packet_io.hpp"
#include "remote/registration.hpp"
#include "remote/socket_server.hpp"

namespace spdlog {
class logger;
}

namespace ebus::remote {

class remote_connection final : public std::enable_shared_from_this<remote_connection> {
 public:
  using packet_socket = asio::generic::seq_packet_protocol::socket;
  using stream_socket = asio::local::stream_protocol::socket;

  remote_connection(packet_socket socket, bus::bus& b, socket_server& owner);
  remote_connection(stream_socket socket, bus::bus& b, socket_server& owner);
  remote_connection(const remote_connection&) = delete;
  remote_connection& operator=(const remote_connection&) = delete;
  ~remote_connection();

  /// Spawns the reader and writer coroutines.
  void start();

  /// Unregisters the module (requests waiting for it fail with module_removed), closes the
  /// socket and tells the server, all before returning. The coroutines finish on their own.
  void close(std::string_view reason);

  /// The registered module name; empty before registration.
  [[nodiscard]] const std::string& module() const noexcept { return name_; }

  [[nodiscard]] connection_info info() const;

 private:
  struct encoding;
  awaitable<void> read_packets(packet_socket& socket);
  awaitable<void> read_lines(stream_socket& socket);
  awaitable<void> writer();
  static awaitable<void> forward_request(std::weak_ptr<remote_connection> weak, bus::bus& b,
                                         destination to, bus::message request,
                                         std::chrono::milliseconds timeout);

  /// Handles one message from the client; false when the connection must stop reading.
  bool handle(std::string_view text);
  bool on_registration(bus::message&& m);
  void on_message(bus::message&& m);
  void on_response(bus::message&& m);
  /// The remote_sink: queues a message for the client; never blocks.
  std::error_code deliver(bus::message&& m);
  /// deliver() for large content: queued now, in order, and encoded off the loop; the writer
  /// stops in front of it until encoded() has its text.
  std::error_code deliver_encoded_later(bus::message&& m);
  void encoded(encoding& job);
  /// Queues a response or error message for the client; false when it was dropped (and
  /// counted) because it does not fit: the client is not reading.
  bool queue_reply(bus::message&& m);
  void queue_error(const bus::message& about, std::string reason);
  void protocol_error(std::string_view what);
  void refuse(const bus::message& request, std::string reason);
  void track_request(const std::string& id);
  /// Appends (or, `front`, prepends) an encoded message holding `charge`, and wakes the writer.
  void enqueue(std::string text, budget_charge charge, bool front = false);
  /// A charge for bytes that must be queued whatever the budget says (small protocol replies).
  budget_charge forced_charge(std::size_t bytes);
  /// Counts and (rate-limited) logs a message the client will never get, with the reason.
  /// `counter` (this connection's) and `total` (the server's) are the counters it goes into.
  void undeliverable(std::uint64_t& counter, std::uint64_t& total, std::string_view reason);
  void resume_bus();
  /// The bus's remote_load: whether the queue is over half its limits, or has been since and
  /// is not down to a quarter yet (then resume_bus() tells the bus when it is).
  bool crowded() noexcept;
  /// Whether the outbound queue holds at most 1/`part` of its limits, in messages and bytes.
  [[nodiscard]] bool within(std::size_t part) const noexcept;
  void wake();
  void spawn(awaitable<void> task, const char* name);
  [[nodiscard]] std::size_t queued() const noexcept { return queue_.size() + in_flight_; }

  std::variant<packet_socket, stream_socket> socket_;
  bus::bus& bus_;
  socket_server& server_;
  std::shared_ptr<spdlog::logger> log_;
  std::size_t max_out_;  // largest JSON message this client can be sent
  asio::steady_timer wake_signal_;
  std::string peer_;  // for the log: the client's process id
  std::string name_;
  // A message being encoded on the server's encoder thread; its text comes back on the loop.
  struct encoding {
    std::string text;
  };
  struct outgoing {
    std::string text;  // encoded message and its '\n'
    budget_charge charge;
    std::size_t bytes = 0;          // as counted in queued_bytes_: the text, or a bound of it
    std::shared_ptr<encoding> job;  // set while the text is being encoded
  };
  /// Adds `messages` to packets_out_: one packet each, or lines sharing packets for a module
  /// registered with "batch".
  void pack(const std::vector<outgoing>& messages);
  std::deque<outgoing> queue_;
  std::vector<outgoing> batch_;   // taken from queue_ by the write in progress
  packet_sender packets_out_;     // SEQPACKET: batch_ as packets
  std::size_t in_flight_ = 0;     // messages in batch_ not written yet
  std::size_t queued_bytes_ = 0;  // `bytes` of queue_ and batch_
  connection_stats stats_;
  std::uint64_t undeliverable_since_warning_ = 0;
  std::optional<std::chrono::steady_clock::time_point> quiet_until_;  // undeliverable warning
  std::size_t requests_in_flight_ = 0;  // the client's sync requests waiting in the bus
  // Ids of requests the bus delivered to this module: a message whose parent_msg_id is one of
  // them is a response. Bounded; the oldest ids are forgotten first.
  std::unordered_set<std::string> requests_;
  std::deque<std::string> request_order_;
  std::string close_reason_;
  bool registered_ = false;
  bool batch_packets_ = false;      // registered with "batch": several messages per packet
  bool close_after_flush_ = false;  // registration refused: write the error, then close
  bool closed_ = false;
  bool writer_waiting_ = false;
  bool resume_wanted_ = false;  // refused a message with queue_full: call bus::resume() later
  bool relief_wanted_ = false;  // crowded() said so: call bus::resume() at a quarter
};

}  // namespace ebus::remote
