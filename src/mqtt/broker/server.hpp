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

#include "common/asio.hpp"
#include "common/clock.hpp"
#include "common/expected.hpp"
#include "mqtt/broker/broker.hpp"

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
};

class server {
 public:
  /// Receives one line naming what failed; called at most once, on the loop.
  using failure_handler = std::function<void(const std::string& what)>;

  /// Pause after an accept error that signals a shortage of descriptors or memory.
  static constexpr auto accept_pause = std::chrono::milliseconds(100);

  server(asio::any_io_executor executor, clock& clk, broker_options options);
  server(const server&) = delete;
  server& operator=(const server&) = delete;
  ~server();

  /// Binds and listens on options().listen_url and starts accepting. The error says what
  /// failed (bad URL, address in use, ...).
  expected<void, std::string> start();

  /// Stops accepting and closes every connection (wills of connected clients are published).
  void stop();

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

  /// The bound address (the real port when the URL asked for port 0).
  [[nodiscard]] asio::ip::tcp::endpoint local_endpoint() const;
  /// The bound address as a URL: tcp://127.0.0.1:1884, tcp://[::1]:1884.
  [[nodiscard]] std::string local_url() const;

  [[nodiscard]] broker& core() noexcept { return core_; }
  [[nodiscard]] const server_stats& stats() const noexcept { return stats_; }
  [[nodiscard]] std::size_t connection_count() const noexcept { return connections_.size(); }

 private:
  friend class connection;
  awaitable<void> accept_loop();
  void on_closed(connection* c);
  void refuse(asio::ip::tcp::socket& socket, std::string_view reason);
  void note_accept_error(const std::error_code& ec);
  void report_failure(const std::string& what);

  asio::any_io_executor executor_;
  clock& clock_;
  broker core_;
  std::shared_ptr<spdlog::logger> log_;
  asio::ip::tcp::acceptor acceptor_;
  std::unordered_map<connection*, std::shared_ptr<connection>> connections_;
  failure_handler on_failure_;
  server_stats stats_;
  std::size_t reserve_ = 0;
  std::optional<std::size_t> fd_ceiling_;
  // Rate limits of the two warnings that connection churn can repeat.
  std::uint64_t refused_unlogged_ = 0;
  std::optional<clock::time_point> refusals_quiet_until_;
  std::uint64_t accept_errors_unlogged_ = 0;
  std::optional<clock::time_point> accept_errors_quiet_until_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool failed_ = false;
  bool stopped_ = false;
};

}  // namespace ebus::mqtt::broker
