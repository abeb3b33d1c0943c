#pragma once
// The load generator's side of the benchmarks that compare eventbus with mosquitto: plain
// blocking MQTT clients on our codec, so that both brokers get exactly the same byte stream,
// the same clients over TLS and WebSocket (client_link), and child-process helpers.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <utility>
#include <vector>

#include "mqtt/codec/decoder.hpp"
#include "mqtt/codec/packet.hpp"
#include "mqtt/transport/tls_client.hpp"
#include "mqtt/transport/transport_kind.hpp"
#include "mqtt/transport/websocket_client.hpp"

namespace ebus::bench {

/// A TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_port();
/// Connects to 127.0.0.1:port with TCP_NODELAY, retrying while the broker starts (5 s).
int dial(std::uint16_t port);
/// Writes all of `bytes`; throws when the connection fails.
void send_all(int fd, const std::string& bytes);
/// Reads until `dec` yields one packet; throws on a decode error or a closed connection.
mqtt::codec::packet read_packet(int fd, mqtt::codec::decoder& dec);
/// dial() + CONNECT (clean session, keep-alive 60) + accepted CONNACK; throws otherwise.
int mqtt_connect(std::uint16_t port, const std::string& client_id);
/// DISCONNECT (best effort) and close.
void mqtt_close(int fd);
/// utime + stime of a process, from /proc (clock-tick resolution).
double process_cpu_seconds(pid_t pid);
/// Starts argv[0] from PATH with stdout to /dev/null, and stderr to `stderr_path` (appended)
/// when one is given.
pid_t spawn(std::vector<std::string> argv, const std::string& stderr_path = {});
/// SIGTERM and wait.
void stop_process(pid_t pid);

/// utime + stime of this process, all threads, from getrusage.
double own_cpu_seconds();

/// Memory of a process from /proc/<pid>/status, in KiB (0 where a field is missing).
struct memory_usage {
  std::uint64_t vm_rss_kib = 0;    ///< VmRSS: resident now
  std::uint64_t rss_anon_kib = 0;  ///< RssAnon: resident anonymous memory (heap, stacks)
  std::uint64_t vm_hwm_kib = 0;    ///< VmHWM: peak resident since the process started
};
memory_usage process_memory(pid_t pid);
/// Raises this process's RLIMIT_NOFILE soft limit to its hard limit (children started afterwards
/// inherit it); returns the new soft limit.
std::uint64_t raise_open_file_limit();
/// Writes a mosquitto configuration with one listener on 127.0.0.1:port and every limit at its
/// default (max_queued_messages 1000, max_inflight_messages 20, no memory_limit).
void write_mosquitto_config(const std::string& path, std::uint16_t port);
/// Sets SO_SNDTIMEO, so that a send to a broker that stopped reading fails instead of hanging.
void set_send_timeout(int fd, std::chrono::milliseconds timeout);

/// The payload that lets a subscriber count what it lost: 64 bytes, the publisher's sequence
/// number in the first 16 as decimal digits.
inline constexpr std::size_t sequenced_payload_size = 64;
/// A payload with sequence number 0; write_sequence() sets it.
std::string sequenced_payload();
void write_sequence(std::string& payload, std::uint64_t seq);
/// The sequence number of a sequenced payload; nullopt for any other payload.
std::optional<std::uint64_t> read_sequence(std::string_view payload);

/// One measured run's figures, by name (docs/PERFORMANCE.md's metric names); NaN is written null.
using result_metrics = std::vector<std::pair<std::string, double>>;
/// Appends one run as a JSON line {group, scenario, broker, run, metrics, note} to `path` (the
/// format bench/performance_report.py reads); nothing when `path` is empty. Throws when it
/// cannot write.
void append_result(const std::string& path, std::string_view group, std::string_view scenario,
                   std::string_view broker, std::size_t run, const result_metrics& metrics,
                   std::string_view note = {});

/// Reads "--key value" pairs, calling `take(key, value)` for each; `take` returns false for a key
/// it does not know. Throws for an unknown key or a key without a value.
void parse_options(
    int argc, char** argv,
    const std::function<bool(const std::string& key, const std::string& value)>& take);

/// A fresh directory under the system's temporary directory, removed with its contents.
struct temp_dir {
  explicit temp_dir(std::string_view prefix);
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir();
  std::filesystem::path path;
};

// --- clients over TLS and WebSocket ------------------------------------------------------------

/// What a client speaks on its socket; the names are the listen URL schemes.
using mqtt::transport::name_of;
using mqtt::transport::transport_kind;
using mqtt::transport::uses_tls;
using mqtt::transport::uses_websocket;
/// "tcp", "tls", "ws" or "wss"; throws for anything else.
[[nodiscard]] transport_kind parse_transport(std::string_view name);

/// An OpenSSL client context (TLS 1.2 at least), shared by the links that use it. Creating one
/// ignores SIGPIPE for the process: OpenSSL writes with write(2), and a broker that closes must
/// come back as an error, not kill the benchmark.
class tls_client_context {
 public:
  /// `ca_file`: the broker's certificate must chain to it and name 127.0.0.1. Empty: it is not
  /// checked at all (the broker does the same work either way; checking costs the client only).
  explicit tls_client_context(const std::string& ca_file);
  tls_client_context(const tls_client_context&) = delete;
  tls_client_context& operator=(const tls_client_context&) = delete;
  ~tls_client_context() = default;
  [[nodiscard]] ssl_ctx_st* native() const noexcept { return ctx_.get(); }

 private:
  mqtt::transport::tls_context_ptr ctx_;
};

/// One client connection to 127.0.0.1:port carrying MQTT over TCP, TLS, WebSocket or WebSocket
/// over TLS, with its own decoder. The socket is non-blocking underneath: the calls that wait do
/// so in poll() and throw after io_timeout without progress, so that a stuck broker ends the run
/// instead of hanging it. Everything the protocol layers cost is paid once per call, never per
/// byte: send() wraps what it is given into one WebSocket frame (masked a word at a time) and
/// one TLS write, and receive() reads up to 64 KiB at once.
///
/// Thread safety: one thread at a time (an OpenSSL connection is not shared between threads),
/// except shutdown().
class client_link {
 public:
  static constexpr auto io_timeout = std::chrono::seconds(10);

  /// dial(), then the TLS handshake (tls, wss: `tls` is required) and the WebSocket upgrade
  /// (ws, wss: GET /mqtt, Sec-WebSocket-Protocol: mqtt).
  client_link(std::uint16_t port, transport_kind kind, const tls_client_context* tls = nullptr);
  client_link(const client_link&) = delete;
  client_link& operator=(const client_link&) = delete;
  /// Closes the socket: no TLS close_notify and no WebSocket close frame.
  ~client_link();

  /// CONNECT (clean session, keep-alive 60) and an accepted CONNACK; throws otherwise.
  void mqtt_connect(const std::string& client_id);
  /// Writes MQTT bytes, blocking while the socket is full. A TLS record holds 16 KiB: callers
  /// that batch stay a little under it, so that a batch and its frame header make one record.
  void send(std::string_view mqtt);
  /// Reads what has arrived, up to about 64 KiB, waiting for bytes when `wait`, and hands the
  /// MQTT bytes to the decoder. False only when `wait` is false and nothing was there. Throws
  /// once the broker closed.
  bool receive(bool wait);
  /// The next packet already received; nullopt when none is complete. Throws on a decode error.
  std::optional<mqtt::codec::packet> next_buffered();
  /// The next packet, reading as needed.
  mqtt::codec::packet read_packet();
  /// Shuts the socket down both ways, so that a receive() waiting on another thread throws.
  void shutdown() noexcept;
  /// tls, wss: the protocol and cipher suite agreed, "TLSv1.3 TLS_AES_256_GCM_SHA384"; else "".
  [[nodiscard]] std::string tls_description() const;

 private:
  std::size_t read_wire(char* into, std::size_t size, bool wait);
  void write_wire(const char* data, std::size_t size);
  void wait_ready(short events);
  void start_tls(const tls_client_context& tls);
  void upgrade_to_websocket(std::uint16_t port);
  void unwrap_frames();

  transport_kind kind_;
  int fd_ = -1;
  mqtt::transport::tls_session_ptr ssl_;
  mqtt::codec::decoder dec_;
  std::optional<mqtt::transport::websocket_client> ws_;
  // ws, wss: bytes read and not yet unwrapped, in in_[in_begin_, in_end_).
  std::unique_ptr<char[]> in_;
  std::size_t in_capacity_ = 0;
  std::size_t in_begin_ = 0;
  std::size_t in_end_ = 0;
  std::string frame_out_;
  std::string replies_;  // pongs
};

}  // namespace ebus::bench
