#pragma once
// One libmosquitto client driven by our event loop. No libmosquitto thread: the socket is watched
// with a posix::stream_descriptor (read always, write while mosquitto_want_write()), a timer runs
// mosquitto_loop_misc() for keep-alive, and a refused or lost connection is retried with a capped
// exponential backoff. Every timer (retry, connect timeout, the misc call) and the rate limit of
// warnings come from the ebus::clock given to create(); libmosquitto still measures the keep-alive
// on its own monotonic clock, each time mosquitto_loop_misc() runs. The same mosquitto object lives
// as long as this connection, so libmosquitto's queue of unacknowledged QoS 1 publishes survives
// reconnects: it sends them again (DUP set) right after the next CONNACK.
//
// A host name is resolved here, off the loop (getaddrinfo blocks for as long as DNS takes), on a
// thread of its own whose answer is posted back to the loop; libmosquitto is only ever given a
// numeric address (or a Unix socket path, with port 0, which is how it tells the two apart), so it
// never resolves anything itself. Each attempt takes the next address of the last answer; when
// none is left (and after every accepted connection) the name is resolved again. With TLS the
// configured name, not the address, is what the certificate is verified against and what goes
// out as SNI.
//
// Events: `connected` and `lost` run after the libmosquitto call that detected them has returned.
// `message`, `published` and `subscribed` run inside that call (libmosquitto's callbacks); they
// may call publish/subscribe/unsubscribe on any connection, but must not destroy one.
//
// Thread safety: loop thread only.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/asio.hpp"
#include "common/clock.hpp"
#include "common/expected.hpp"

struct mosquitto;
struct mosquitto_message;

namespace spdlog {
class logger;
}

namespace ebus::mqtt::client {

/// Resolves a host name to numeric addresses ("127.0.0.1", "::1"), in the order to try them, or
/// says why it cannot. Runs on a thread of its own and may block.
using host_resolver =
    std::function<expected<std::vector<std::string>, std::string>(const std::string& host)>;

/// getaddrinfo() for TCP, IPv4 and IPv6, in the resolver's order, without duplicates.
expected<std::vector<std::string>, std::string> resolve_with_getaddrinfo(const std::string& host);

struct connection_settings {
  std::string name{};  ///< "sub" or "pub", for the logs
  std::string client_id{};
  /// A host name or address; with unix_socket, the path of the broker's socket.
  std::string host{};
  std::uint16_t port = 1883;  ///< unused with unix_socket
  /// Connect to a Unix domain socket at `host`: nothing is resolved, and TLS does not apply.
  bool unix_socket = false;
  std::string username{};  ///< sent only when non-empty
  std::string password{};  ///< sent only when username and password are non-empty
  bool tls = false;
  /// With tls: verify the server against ca_file and present cert_file/key_file (when given).
  /// Without: encrypted, not verified.
  bool tls_verify = false;
  std::string ca_file{};
  std::string cert_file{};
  std::string key_file{};
  std::uint16_t keepalive_seconds = 30;
  /// From the start of an attempt to its CONNACK.
  std::chrono::milliseconds connect_timeout{30000};
  std::chrono::milliseconds reconnect_min{500};
  std::chrono::milliseconds reconnect_max{30000};
  /// Used when `host` is a name; empty: resolve_with_getaddrinfo.
  host_resolver resolve{};
};

struct connection_handlers {
  std::function<void()> connected{};  ///< CONNACK accepted
  std::function<void()> lost{};       ///< an accepted connection ended (not after disconnect())
  std::function<void(std::string_view topic, std::string_view payload)> message{};
  std::function<void(int mid)> published{};  ///< PUBACK for publish `mid`
  /// SUBACK for subscribe `mid`; `granted` holds one QoS (or 0x80 for a refusal) per filter.
  std::function<void(int mid, std::span<const int> granted)> subscribed{};
};

class mosquitto_connection {
 public:
  /// Creates the libmosquitto client and applies credentials and TLS settings; TLS files are
  /// loaded once here so that a bad file fails now, with a reason, not on every reconnect.
  /// `clk` runs on the executor's loop and must outlive the connection.
  [[nodiscard]] static expected<std::unique_ptr<mosquitto_connection>, std::string> create(
      asio::any_io_executor executor, clock& clk, connection_settings settings,
      connection_handlers handlers);

  mosquitto_connection(const mosquitto_connection&) = delete;
  mosquitto_connection& operator=(const mosquitto_connection&) = delete;
  /// Closes the socket without DISCONNECT when still open; no handler runs afterwards.
  ~mosquitto_connection();

  /// Makes the first connection attempt now; later ones follow on their own.
  void start();
  /// No further attempts; an attempt under way may still complete.
  void stop_reconnecting();
  /// Stops reconnecting and sends DISCONNECT when a connection is open.
  void disconnect();

  /// True between an accepted CONNACK and the loss of that connection.
  [[nodiscard]] bool connected() const noexcept { return connected_; }
  /// Attempts that failed since the last accepted CONNACK (a name that did not resolve included).
  [[nodiscard]] std::uint64_t failed_attempts() const noexcept { return failures_; }
  /// Connection attempts begun since start(), a name resolution that found nothing included;
  /// never reset.
  [[nodiscard]] std::uint64_t attempts() const noexcept { return begun_; }
  /// True while an attempt is under way: resolving, connecting or waiting for the CONNACK. False
  /// when connected, while waiting for the next attempt, and once reconnecting has stopped.
  [[nodiscard]] bool connecting() const noexcept {
    return started_ && reconnect_ && !connected_ && !retry_at_;
  }
  [[nodiscard]] const connection_settings& settings() const noexcept { return settings_; }

  /// Stops (true) or resumes (false) reading from the broker while connected, so that what a
  /// full receiver cannot take waits in the socket and TCP holds the broker back. Until the
  /// CONNACK of a connection, reads go on whatever this says. Packets libmosquitto has read
  /// already (the rest of a TLS record) may still be delivered. A pause longer than the
  /// keepalive would leave the PINGRESP unread and cost the connection: keep it shorter.
  void pause_reading(bool paused);
  [[nodiscard]] bool reading_paused() const noexcept { return paused_; }

  /// mosquitto_publish at QoS 1, retain false. Returns libmosquitto's code; `mid` is set when the
  /// message was queued, which includes MOSQ_ERR_NO_CONN (libmosquitto keeps it for the next
  /// connection).
  int publish(std::string_view topic, std::string_view payload, int& mid);
  /// mosquitto_subscribe at QoS 1; returns libmosquitto's code.
  int subscribe(const std::string& filter, int& mid);
  /// mosquitto_unsubscribe; returns libmosquitto's code.
  int unsubscribe(const std::string& filter);

  /// Text for a libmosquitto return code.
  [[nodiscard]] static std::string describe(int rc);

 private:
  mosquitto_connection(asio::any_io_executor executor, clock& clk, connection_settings settings,
                       connection_handlers handlers);

  expected<void, std::string> configure();
  expected<void, std::string> configure_tls();

  void attempt();
  void connect_to(const std::string& address);
  void resolve();
  void on_resolved(expected<std::vector<std::string>, std::string> result);
  void schedule_retry(std::string_view event, const std::string& reason);
  void on_ready(bool readable, std::error_code ec, std::uint64_t generation);
  void read_available();
  void note(int rc);
  void after_io();
  void sync_socket();
  void release_socket();
  void arm();
  [[nodiscard]] bool reads_held() const noexcept { return paused_ && connected_; }
  void schedule_misc();
  void on_retry_due();
  void on_connect_timeout();
  void on_misc_due();
  void handle_connack();
  void handle_close();

  static void on_connect_cb(struct mosquitto* m, void* self, int rc);
  static void on_disconnect_cb(struct mosquitto* m, void* self, int rc);
  static void on_publish_cb(struct mosquitto* m, void* self, int mid);
  static void on_message_cb(struct mosquitto* m, void* self, const struct mosquitto_message* msg);
  static void on_subscribe_cb(struct mosquitto* m, void* self, int mid, int count,
                              const int* granted);
  static void on_log_cb(struct mosquitto* m, void* self, int level, const char* text);

  /// Shared with a resolver thread: it posts its answer only while `open` holds, under `mutex`,
  /// so that it never touches an executor whose connection is gone.
  struct resolver_channel {
    std::mutex mutex;
    bool open = true;
  };

  connection_settings settings_;
  connection_handlers handlers_;
  std::shared_ptr<spdlog::logger> log_;
  struct mosquitto* mosq_ = nullptr;
  asio::posix::stream_descriptor descriptor_;
  clock& clock_;
  // A timer's wake-up may come early or after a cancel: each acts only when its deadline is set
  // and has passed.
  std::unique_ptr<clock::timer> retry_timer_;
  std::unique_ptr<clock::timer> misc_timer_;
  std::unique_ptr<clock::timer> connect_timer_;
  std::optional<clock::time_point> retry_at_;          // set while waiting for the next attempt
  std::optional<clock::time_point> misc_at_;           // the next mosquitto_loop_misc()
  std::optional<clock::time_point> connect_deadline_;  // for the attempt timed_attempt_
  std::string topic_;  // NUL-terminated copy of the topic being published, reused
  std::chrono::milliseconds backoff_;
  std::uint64_t generation_ = 0;     // bumped whenever the descriptor is released
  std::uint64_t attempt_id_ = 0;     // identifies the attempt a connect timeout belongs to
  std::uint64_t timed_attempt_ = 0;  // the attempt connect_deadline_ is for
  std::uint64_t begun_ = 0;          // attempts begun
  std::uint64_t failures_ = 0;       // attempts failed since the last CONNACK
  std::string last_warning_;
  clock::time_point last_warning_at_{};
  std::uint64_t quiet_failures_ = 0;  // failures logged at debug since the last warning
  std::string refusal_;               // CONNACK return code text of the current attempt
  int close_rc_ = 0;
  int close_errno_ = 0;
  int loop_rc_ = 0;  // last failure of a mosquitto_loop_*() call in this wake-up
  int loop_errno_ = 0;
  bool started_ = false;
  bool reconnect_ = true;
  bool connected_ = false;
  bool connack_seen_ = false;  // set in the callback, handled in after_io()
  bool close_seen_ = false;
  bool read_waiting_ = false;
  bool paused_ = false;  // pause_reading()
  bool write_waiting_ = false;
  asio::any_io_executor executor_;
  bool numeric_host_ = false;  // an IPv4 or IPv6 address: nothing to resolve
  std::string broker_;         // host:port, or the socket path, for the logs
  bool resolving_ = false;
  std::vector<std::string> addresses_;  // the last answer for the host name
  std::size_t next_address_ = 0;        // the one the next attempt takes
  std::string address_;                 // the one of the current attempt, for the logs
  std::shared_ptr<resolver_channel> resolver_ = std::make_shared<resolver_channel>();
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // handlers hold a weak_ptr
};

}  // namespace ebus::mqtt::client
