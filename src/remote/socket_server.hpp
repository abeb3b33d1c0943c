#pragma once
// The module sockets (docs/REMOTE.md): a SEQPACKET socket (beehive's "unixpacket") and a stream
// socket on which other processes register as remote modules of the bus and then send and
// receive beehive messages. Each accepted connection is a remote_connection.
//
// Thread safety: loop thread only (the executor given at construction, which is the bus's). The
// bus must outlive the server; stop() (or the destructor) unregisters every remote module.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <unordered_map>
#include <vector>

#include "bus/bus.hpp"
#include "common/asio.hpp"
#include "common/expected.hpp"
#include "common/memory_budget.hpp"

namespace spdlog {
class logger;
}

namespace ebus::remote {

class remote_connection;

struct socket_options {
  std::string seqpacket_path;        ///< SOCK_SEQPACKET socket file; "" = off
  std::string stream_path;           ///< SOCK_STREAM socket file; "" = off
  std::size_t max_connections = 64;  ///< both sockets together; one more is refused
  /// Largest message accepted or sent (JSON bytes, without the '\n'); a larger one received
  /// closes the connection, a larger one to send is refused to the sender (too_large), counted
  /// and logged. required_message_bytes() (sizing.hpp) says what MQTT messages need. On the
  /// SEQPACKET socket the kernel's per-packet limit may be lower (packet_limit()).
  std::size_t max_message_bytes = 4 * 1024 * 1024;
  std::size_t outbound_capacity = 1024;  ///< messages queued to one client
  /// Bytes of encoded messages queued to one client, those being written included. A client
  /// takes a message while below both bounds, so it holds at most this plus one message.
  std::size_t outbound_bytes = std::size_t{16} * 1024 * 1024;
  /// Charged with every queued message's encoded bytes; null: none. Must outlive the server.
  memory_budget* budget = nullptr;
  std::chrono::milliseconds sync_timeout{30000};  ///< requests sent on behalf of a client
  /// Peers allowed to connect, by the credentials the kernel gives (SO_PEERCRED): a peer whose
  /// user id or group id is listed is served, others are refused. Unset: no check (the file
  /// mode alone decides). The daemon always sets it, with root and its own user included.
  struct peer_policy {
    std::vector<std::uint32_t> uids;
    std::vector<std::uint32_t> gids;
  };
  std::optional<peer_policy> allowed_peers;
  /// Mode the socket files are created with. 0600: root and the daemon's user only. Other
  /// users can connect only to a file they may write, so allowing more peers needs 0666, with
  /// allowed_peers deciding who is served.
  mode_t file_mode = 0600;
};

/// Totals since construction.
struct socket_stats {
  std::uint64_t accepted = 0;         ///< connections taken on (within max_connections)
  std::uint64_t refused = 0;          ///< connections refused over max_connections
  std::uint64_t refused_peer = 0;     ///< connections refused: peer user and group not allowed
  std::uint64_t registered = 0;       ///< successful registrations
  std::uint64_t closed_protocol = 0;  ///< connections closed for malformed or oversized input
  std::uint64_t messages_in = 0;      ///< messages decoded from clients
  std::uint64_t messages_out = 0;     ///< messages written to clients
  std::uint64_t errors_returned = 0;  ///< error messages queued to clients
  /// Messages to a client dropped after the bus handed them over: responses and error messages
  /// that found its queue full or were too large, and packets the kernel refused.
  std::uint64_t messages_dropped = 0;
  /// Messages the bus offered a client that were over its per-message limit once encoded
  /// (max_message_bytes, or packet_limit() on SEQPACKET): refused with too_large, live or from
  /// a group backlog.
  std::uint64_t too_large = 0;
  /// Messages the bus offered a client that the memory budget had no room for (memory_budget).
  std::uint64_t memory_budget = 0;
};

/// One client's own counters since it connected (the totals are in socket_stats).
struct connection_stats {
  std::uint64_t messages_out = 0;   ///< messages written to it
  std::uint64_t too_large = 0;      ///< refused as over its per-message limit
  std::uint64_t memory_budget = 0;  ///< refused for the memory budget
  std::uint64_t dropped = 0;        ///< replies dropped, packets the kernel refused
};

struct connection_info {
  std::string module;  ///< "" before registration
  std::string peer;    ///< "pid:<n>"
  bool seqpacket = false;
  std::size_t queued = 0;        ///< messages waiting to be written, or being written
  std::size_t queued_bytes = 0;  ///< their encoded bytes
  std::size_t max_message = 0;   ///< largest message it can be sent
  connection_stats stats;
};

class socket_server {
 public:
  socket_server(asio::any_io_executor executor, bus::bus& b, socket_options options);
  socket_server(const socket_server&) = delete;
  socket_server& operator=(const socket_server&) = delete;
  ~socket_server();

  /// Creates the parent directory if missing, replaces a stale socket file, binds, listens with
  /// mode 0600 and starts accepting on each configured path. The error names the path and what
  /// failed; then nothing is left listening.
  expected<void, std::string> start();

  /// Stops accepting, closes every connection (its module is unregistered at once, so requests
  /// waiting for it fail with module_removed) and removes the socket files. Idempotent.
  void stop();

  /// Where an accept loop that ends on an error other than a passing one (descriptors, memory:
  /// retried after a pause) or on an exception is reported, once, with a line naming the path;
  /// without a handler it is logged (critical). Called on the loop.
  void on_failure(std::function<void(const std::string&)> handler) {
    on_failure_ = std::move(handler);
  }

  [[nodiscard]] const socket_stats& stats() const noexcept { return stats_; }
  [[nodiscard]] std::size_t connection_count() const noexcept { return connections_.size(); }
  /// Every connection, in no particular order.
  [[nodiscard]] std::vector<connection_info> connections() const;
  /// The largest message (without its '\n') one SEQPACKET packet can carry to a client, at most
  /// max_message_bytes: set by start(), which logs it (the kernel's send-buffer cap, raised with
  /// SO_SNDBUFFORCE where allowed, and its limit on one packet's memory).
  [[nodiscard]] std::size_t packet_limit() const noexcept { return packet_limit_; }
  [[nodiscard]] const socket_options& options() const noexcept { return options_; }
  /// Where connections encode large messages, off the loop (one thread, shared).
  [[nodiscard]] asio::thread_pool::executor_type encoder() noexcept {
    return encoder_.get_executor();
  }

 private:
  friend class remote_connection;
  using packet_acceptor = asio::basic_socket_acceptor<asio::generic::seq_packet_protocol>;
  using stream_acceptor = asio::local::stream_protocol::acceptor;

  expected<void, std::string> listen(const std::string& path, bool packet);
  template <class Acceptor>
  awaitable<void> accept_loop(Acceptor& acceptor, std::string path);
  void refuse(int fd);
  /// Why the peer on `fd` may not connect (allowed_peers), or "" when it may.
  [[nodiscard]] std::string check_peer(int fd) const;
  void refuse_peer(int fd, const std::string& why);
  /// Finds and logs packet_limit_.
  void size_packets();
  void spawn_accept_loop(awaitable<void> loop, const std::string& path);
  void on_closed(remote_connection* c);
  void remove_files();
  void note_accept_error(const std::string& path, const std::error_code& ec);
  void report_failure(const std::string& line);

  struct socket_file {
    std::string path;
    std::uint64_t device = 0;
    std::uint64_t inode = 0;  // 0: unknown, remove whatever is there
  };

  asio::any_io_executor executor_;
  bus::bus& bus_;
  socket_options options_;
  std::shared_ptr<spdlog::logger> log_;
  std::optional<packet_acceptor> packet_acceptor_;
  std::optional<stream_acceptor> stream_acceptor_;
  std::vector<socket_file> bound_;  // removed by stop()
  std::unordered_map<remote_connection*, std::shared_ptr<remote_connection>> connections_;
  std::uint64_t refused_since_warning_ = 0;
  std::optional<std::chrono::steady_clock::time_point> quiet_until_;  // refusal warning limit
  std::uint64_t refused_peer_since_warning_ = 0;
  std::optional<std::chrono::steady_clock::time_point> peer_quiet_until_;
  std::function<void(const std::string&)> on_failure_;
  std::uint64_t accept_errors_ = 0;  // since the last accept warning
  std::optional<std::chrono::steady_clock::time_point> accept_quiet_until_;
  bool failed_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::size_t packet_limit_ = 0;
  bool started_ = false;
  bool stopped_ = false;
  socket_stats stats_;
  asio::thread_pool encoder_{1};  // last: joined before anything else of the server goes
};

}  // namespace ebus::remote
