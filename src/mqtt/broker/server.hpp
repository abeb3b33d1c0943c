#pragma once
// The embedded broker as a network service: listener, connections, and the broker core.
//
// Accepting: errors that concern one connection or a passing shortage (descriptors, memory) are
// retried, the shortage after a pause of accept_pause, with one warning per 10 s; any other
// error, or an exception, ends the listener and is reported once to the failure handler (the
// daemon then stops and exits non-zero so that its supervisor restarts it). A connection over
// max_connections, or one whose descriptor lands in the reserve (reserve_descriptors()), is
// answered CONNACK 0x03 (server unavailable) and closed; refusals are logged once per 10 s with
// their count.
//
// Thread safety: loop thread only (the executor given at construction).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "common/asio.hpp"
#include "common/clock.hpp"
#include "common/expected.hpp"
#include "common/ref_ptr.hpp"
#include "mqtt/auth/password_file.hpp"
#include "mqtt/broker/broker.hpp"
#include "mqtt/broker/connection_protocol.hpp"
#include "mqtt/broker/peer_address.hpp"
#include "mqtt/broker/stream.hpp"

namespace spdlog {
class logger;
}

namespace ebus::mqtt::broker {

class connection;

/// What the accept loop does after an accept error.
enum class accept_action : std::uint8_t {
  retry,     ///< the error concerns that one connection (ECONNABORTED, EPROTO, ...): go on
  back_off,  ///< a passing shortage (EMFILE, ENFILE, ENOBUFS, ENOMEM): pause, then go on
  fail,      ///< the listener itself is broken (EBADF, EINVAL, ...): stop accepting
};
[[nodiscard]] accept_action classify_accept_error(const std::error_code& ec) noexcept;

/// The listener's own totals since construction (the broker's are in broker_stats).
struct server_stats {
  std::uint64_t refused_max_connections = 0;  ///< answered CONNACK 0x03: max_connections reached
  std::uint64_t refused_fd_reserve = 0;       ///< answered CONNACK 0x03: descriptor in the reserve
  std::uint64_t accept_errors = 0;            ///< accept errors retried (backed off or not)
  std::uint64_t login_failures = 0;  ///< CONNACK 0x04/0x05: bad login, or anonymous not allowed
};

/// One listening address and how its clients are served.
struct listener_options {
  /// tcp:// or mqtt://, tls:// ssl:// or mqtts://, ws://, wss:// (docs/BROKER.md).
  std::string url = "tcp://127.0.0.1:1884";
  /// Clients that send no username are accepted.
  bool allow_anonymous = true;
  tls_server_settings tls;  ///< tls and wss
  /// tls and wss: the client certificate's CN is the username; no password is asked.
  bool use_identity_as_username = false;
  std::string ws_path = "/mqtt";  ///< ws and wss: the HTTP path of the upgrade
};

class server {
 public:
  /// Receives one line naming what failed; called at most once, on the loop.
  using failure_handler = std::function<void(const std::string& what)>;

  /// Pause after an accept error that signals a shortage of descriptors or memory.
  static constexpr auto accept_pause = std::chrono::milliseconds(100);

  /// Without listeners: one plain TCP listener on options.listen_url, anonymous clients
  /// allowed.
  server(asio::any_io_executor executor, clock& clk, broker_options options,
         std::vector<listener_options> listeners = {});
  server(const server&) = delete;
  server& operator=(const server&) = delete;
  ~server();

  /// Binds and listens on every listener and starts accepting. The error names the listener
  /// and says what failed (bad URL, address in use, unreadable certificate, ...); nothing
  /// listens then.
  expected<void, std::string> start();

  /// Stops accepting and closes every connection (wills of connected clients are published).
  void stop();

  /// Users and their password hashes (mosquitto_passwd's format); null: none, and a username
  /// is taken as given. Replaced as a whole on reload; later CONNECTs use the new file.
  void set_password_file(std::shared_ptr<const auth::password_file> passwords);
  /// The ACL (mosquitto's acl_file format); null: every client may do everything.
  void set_acl(std::shared_ptr<const auth::acl> acl) { core_.access().acl = std::move(acl); }
  /// Loads each TLS listener's certificate, key and CAs again; connections keep the context
  /// they were accepted with, new ones get the new one. On an error nothing changes, and the
  /// error names the listener.
  expected<void, std::string> reload_certificates();

  /// Decides a CONNECT's login on `l`: the username may be replaced (by the certificate's
  /// name) and the password is dropped. Not `accepted`: the CONNACK code to refuse with, and
  /// `why` says why (for the log). A password is hashed on the login thread, never on the loop
  /// (PBKDF2 takes 50 µs at mosquitto_passwd's 101 iterations, far more at the counts a file
  /// may ask for); the caller's coroutine resumes on the loop.
  /// `s`: the connection's stream (TLS, WebSocket); null for plain TCP.
  awaitable<codec::connect_return_code> authenticate(codec::connect& c, const listener_options& l,
                                                     const stream* s, std::string& why);

  /// Counts a refused login and logs it, at most once per 10 s with the count since.
  void note_login_failure(const peer_address& peer, const codec::connect& c,
                          codec::connect_return_code code, const std::string& why);

  /// Where a failure of the accept loop is reported; without one it is logged (critical).
  void on_failure(failure_handler handler) { on_failure_ = std::move(handler); }

  /// Keeps the last `count` descriptors below the soft RLIMIT_NOFILE (read by start()) for the
  /// rest of the process: a connection accepted on a descriptor at or above limit - count is
  /// refused. Since the kernel hands out the lowest free descriptor, MQTT connections then never
  /// hold any of those. 0 (the default): no reserve.
  void reserve_descriptors(std::size_t count) noexcept { reserve_ = count; }
  /// Descriptors available to MQTT connections: numbers below this are accepted; none when no
  /// reserve is kept or the limit is unlimited. 0 when the reserve takes the whole limit.
  [[nodiscard]] std::optional<std::size_t> descriptor_ceiling() const noexcept {
    return fd_ceiling_;
  }

  /// The first listener's bound address (the real port when the URL asked for port 0).
  [[nodiscard]] asio::ip::tcp::endpoint local_endpoint() const;
  /// The first listener's bound address as a URL: tcp://127.0.0.1:1884, tcp://[::1]:1884.
  [[nodiscard]] std::string local_url() const;
  /// Every listener's bound address as a URL, in configuration order (tls://..., ws://...).
  [[nodiscard]] std::vector<std::string> local_urls() const;

  [[nodiscard]] broker& core() noexcept { return core_; }
  [[nodiscard]] const server_stats& stats() const noexcept { return stats_; }
  [[nodiscard]] std::size_t connection_count() const noexcept { return connections_.size(); }
  /// Connections that hold read, write or closing state now; the others are idle and hold none
  /// (connection.hpp). One pass over the connections: for tests and statistics.
  [[nodiscard]] std::size_t busy_connection_count() const noexcept;

 private:
  friend class connection;
  struct listener;
  expected<void, std::string> bind(listener& l);
  /// The stream of a TLS or WebSocket listener's connection; takes `fd` (an accepted socket)
  /// over, also on failure.
  expected<std::unique_ptr<stream>, std::error_code> make_stream(listener& l, int fd);
  [[nodiscard]] transport::websocket_options websocket_options_of(const listener& l) const;
  awaitable<void> accept_loop(listener& l);
  void on_closed(connection* c);
  void refuse(listener& l, int fd, std::string_view reason);
  void note_accept_error(const std::error_code& ec);
  void report_failure(const std::string& what);
  struct login_job {
    std::shared_ptr<const auth::password_file> passwords;
    std::string user;
    std::optional<std::string> password;
  };
  awaitable<auth::login_result> on_login_thread(std::shared_ptr<login_job> job);
  /// Where connections read to when they hold no buffer of their own (loop thread only: a
  /// connection decodes what it read before it next suspends, and keeps only an unfinished
  /// packet's start).
  [[nodiscard]] asio::mutable_buffer read_buffer() noexcept {
    if (!read_buffer_) read_buffer_ = std::make_unique_for_overwrite<char[]>(read_buffer_size);
    return {read_buffer_.get(), read_buffer_size};
  }
  static constexpr std::size_t read_buffer_size = std::size_t{64} * 1024;

  asio::any_io_executor executor_;
  clock& clock_;
  broker core_;
  // What every connection's protocol object reads: the timeouts (core_'s options), and this
  // server, which a connection finds there rather than in a pointer of its own.
  struct connection_settings : connection_protocol::options {
    server* owner = nullptr;
  };
  connection_settings protocol_options_;
  std::shared_ptr<spdlog::logger> log_;
  std::vector<std::unique_ptr<listener>> listeners_;
  std::shared_ptr<readiness_set> readiness_;      // plain TCP connections' sockets
  std::vector<ref_ptr<connection>> connections_;  // each knows its slot
  failure_handler on_failure_;
  std::shared_ptr<const auth::password_file> passwords_;
  std::unique_ptr<asio::thread_pool> login_thread_;  // hashes passwords; made with the first file
  server_stats stats_;
  std::unique_ptr<char[]> read_buffer_;
  std::size_t reserve_ = 0;
  std::optional<std::size_t> fd_ceiling_;
  // Rate limits of the two warnings that connection churn can repeat.
  std::uint64_t refused_unlogged_ = 0;
  std::optional<clock::time_point> refusals_quiet_until_;
  std::uint64_t login_failures_unlogged_ = 0;
  std::optional<clock::time_point> login_failures_quiet_until_;
  std::uint64_t accept_errors_unlogged_ = 0;
  std::optional<clock::time_point> accept_errors_quiet_until_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool failed_ = false;
  bool stopped_ = false;
};

}  // namespace ebus::mqtt::broker
