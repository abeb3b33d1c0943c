#pragma once
// The load generator's side of the benchmarks that compare eventbus with mosquitto: plain
// blocking MQTT clients on our codec, so that both brokers get exactly the same byte stream,
// and child-process helpers.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include "mqtt/codec/decoder.hpp"
#include "mqtt/codec/packet.hpp"

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
/// Starts argv[0] from PATH with stdout to /dev/null.
pid_t spawn(std::vector<std::string> argv);
/// SIGTERM and wait.
void stop_process(pid_t pid);

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

}  // namespace ebus::bench
