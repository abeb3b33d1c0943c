// Resident memory of the embedded broker (broker_server, at the defaults of broker_options) and
// of Debian's mosquitto (one loopback listener, every limit at its default), in the same run,
// each scenario on a freshly started broker:
//
//   (a) one client publishes N retained messages of B bytes (QoS 0) on distinct topics
//       (default 20,000 x 64 KiB), then a PINGREQ; RSS is read once the PINGRESP is back
//   (b) C connections (default 1,000) each CONNECT, then send the first half of a PUBLISH of
//       P bytes (default 512 KiB) and stop there; RSS is read 2 s after the last byte went out
//
//   (c) for each count C in --idle (default 10000,50000): C clients CONNECT (keep-alive 120 s,
//       distinct client ids) and then send nothing; memory is read 2 s after the last CONNACK.
//       Bytes per connection = RssAnon growth / C (the kernel's socket buffers are not the
//       process's memory and are not counted by either broker). A count that RLIMIT_NOFILE
//       cannot hold is not run; the most it holds (in thousands) runs in its place
//   (d) the whole daemon (apps/eventbus) idle at its default configuration (internal broker,
//       module sockets, SQLite store), against an idle mosquitto: Pss and private memory from
//       /proc/<pid>/smaps_rollup, RssAnon from /proc/<pid>/status
//
//   memory_compare [--retained N] [--retained-bytes B] [--connections C] [--packet-bytes P]
//                  [--idle C1,C2,...] [--only abcd] [--json FILE] [--mosquitto PATH]
//                  [--server PATH] [--daemon PATH]
//
// --only picks scenarios by letter (default all); --json appends one JSON line per broker and
// scenario (group "memory"). Up to 50,000 connections need as many descriptors in each process
// and more source ports than one address has: the bench raises RLIMIT_NOFILE (as root, past the
// hard limit) and spreads the clients over source addresses 127.0.0.2, 127.0.0.3, ...
//
// Memory comes from /proc/<pid>/status of the broker: VmRSS and RssAnon after the scenario, and
// the peaks, sampled every 10 ms (VmHWM for RSS, which also catches what falls between samples).
// (a) then subscribes to 10 of the topics, spread over the range, to show how many retained
// messages the broker really kept. Only 127.0.0.1; every wait is bounded.
#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <variant>
#include <vector>

#include "load_client.hpp"
#include "mqtt/codec/decoder.hpp"
#include "mqtt/codec/encoder.hpp"

namespace {

using namespace ebus::bench;
namespace codec = ebus::mqtt::codec;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto io_timeout = 20s;  // one blocking send or receive
constexpr auto phase_limit = 20s;
constexpr auto settle = 2s;
constexpr std::size_t retained_sample = 10;

double mib(std::uint64_t kib) {
  return static_cast<double>(kib) / 1024.0;
}

// Samples a process's memory every 10 ms on its own thread and keeps the peaks.
class memory_sampler {
 public:
  explicit memory_sampler(pid_t pid) : pid_(pid) {
    thread_ = std::thread([this] {
      while (!done_.load()) {
        sample();
        std::this_thread::sleep_for(10ms);
      }
    });
  }
  memory_sampler(const memory_sampler&) = delete;
  memory_sampler& operator=(const memory_sampler&) = delete;
  ~memory_sampler() { stop(); }

  void stop() {
    if (thread_.joinable()) {
      done_.store(true);
      thread_.join();
      sample();
    }
  }
  [[nodiscard]] std::uint64_t peak_rss_kib() const { return peak_rss_.load(); }
  [[nodiscard]] std::uint64_t peak_anon_kib() const { return peak_anon_.load(); }

 private:
  void sample() {
    const auto m = process_memory(pid_);
    peak_rss_.store(std::max({peak_rss_.load(), m.vm_rss_kib, m.vm_hwm_kib}));
    peak_anon_.store(std::max(peak_anon_.load(), m.rss_anon_kib));
  }

  pid_t pid_;
  std::atomic<bool> done_{false};
  std::atomic<std::uint64_t> peak_rss_{0};
  std::atomic<std::uint64_t> peak_anon_{0};
  std::thread thread_;
};

void set_receive_timeout(int fd, std::chrono::seconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count());
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

struct measurement {
  memory_usage before;
  memory_usage after;
  std::uint64_t peak_rss_kib = 0;
  std::uint64_t peak_anon_kib = 0;
  double seconds = 0;
  std::size_t connections = 0;  // (c): connections the broker accepted
  std::string note;
};

// Waits `settle`, then reads the broker's memory after a scenario and the sampled peaks.
void settle_and_read(measurement& m, pid_t pid, memory_sampler& sampler, steady::time_point start) {
  std::this_thread::sleep_for(settle);
  m.seconds = std::chrono::duration<double>(steady::now() - start).count();
  m.after = process_memory(pid);
  sampler.stop();
  m.peak_rss_kib = sampler.peak_rss_kib();
  m.peak_anon_kib = sampler.peak_anon_kib();
}

// --- (a) retained messages -----------------------------------------------------------------------

std::string retained_topic(std::size_t i) {
  return "mem/retained/" + std::to_string(i);
}

// Publishes the retained messages; returns how many went out before the connection failed.
std::size_t publish_retained(std::uint16_t port, std::size_t count, std::size_t bytes,
                             std::string& note) {
  const int fd = mqtt_connect(port, "mem-retain");
  set_send_timeout(fd, io_timeout);
  set_receive_timeout(fd, io_timeout);
  const std::string payload(bytes, 'r');
  std::string batch;
  std::size_t sent = 0;
  try {
    for (std::size_t i = 0; i < count; ++i) {
      codec::encode_publish(batch, retained_topic(i), payload, codec::qos_level::at_most_once, true,
                            false, 0);
      if (batch.size() >= std::size_t{256} * 1024 || i + 1 == count) {
        send_all(fd, batch);
        batch.clear();
        sent = i + 1;
      }
    }
    // The broker handles one connection's packets in order: the PINGRESP comes after every
    // PUBLISH before it was processed.
    codec::encode(codec::pingreq{}, batch);
    send_all(fd, batch);
    codec::decoder dec;
    while (!std::holds_alternative<codec::pingresp>(read_packet(fd, dec))) {
    }
  } catch (const std::exception& e) {
    note = "publisher failed after " + std::to_string(sent) + " messages: " + e.what();
  }
  mqtt_close(fd);
  return sent;
}

// How many of `retained_sample` topics spread over [0, count) have a retained message.
std::size_t retained_present(std::uint16_t port, std::size_t count) {
  const int fd = mqtt_connect(port, "mem-check");
  set_send_timeout(fd, io_timeout);
  set_receive_timeout(fd, 1s);
  codec::subscribe sub{1, {}};
  const std::size_t n = std::min(retained_sample, count);
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = n == 1 ? 0 : k * (count - 1) / (n - 1);
    sub.subscriptions.push_back({retained_topic(i), codec::qos_level::at_most_once});
  }
  std::string out;
  codec::encode(sub, out);
  std::size_t found = 0;
  try {
    send_all(fd, out);
    codec::decoder dec;
    const auto deadline = steady::now() + 3s;
    while (found < n && steady::now() < deadline) {
      const auto p = read_packet(fd, dec);
      if (const auto* m = std::get_if<codec::publish>(&p); m != nullptr && m->retain) ++found;
    }
  } catch (const std::exception&) {
    // receive timeout: nothing more is coming
  }
  mqtt_close(fd);
  return found;
}

measurement retained_scenario(std::uint16_t port, pid_t pid, std::size_t count, std::size_t bytes) {
  measurement m;
  m.before = process_memory(pid);
  memory_sampler sampler(pid);
  const auto start = steady::now();
  const auto sent = publish_retained(port, count, bytes, m.note);
  m.seconds = std::chrono::duration<double>(steady::now() - start).count();
  m.after = process_memory(pid);
  sampler.stop();
  m.peak_rss_kib = sampler.peak_rss_kib();
  m.peak_anon_kib = sampler.peak_anon_kib();
  const auto present = retained_present(port, sent);
  if (!m.note.empty()) m.note += "; ";
  m.note += "retained kept: " + std::to_string(present) + " of " +
            std::to_string(std::min(retained_sample, sent)) + " sampled topics";
  return m;
}

// --- (b) connections with half a packet ---------------------------------------------------------

measurement half_packet_scenario(std::uint16_t port, pid_t pid, std::size_t connections,
                                 std::size_t packet_bytes) {
  measurement m;
  m.before = process_memory(pid);
  // A QoS 0 PUBLISH of exactly packet_bytes: type byte, remaining length, topic, payload.
  const std::string topic = "mem/big";
  std::string packet;
  std::size_t payload = packet_bytes - 1 - 4 - 2 - topic.size();
  for (int attempt = 0; attempt < 2; ++attempt) {  // the length field may take fewer bytes
    packet.clear();
    codec::encode_publish(packet, topic, std::string(payload, 'b'), codec::qos_level::at_most_once,
                          false, false, 0);
    payload += packet_bytes - packet.size();
  }
  const std::size_t half = packet.size() / 2;

  memory_sampler sampler(pid);
  const auto start = steady::now();
  std::vector<int> fds;
  std::string refused;
  for (std::size_t i = 0; i < connections; ++i) {
    try {
      fds.push_back(mqtt_connect(port, "mem-half-" + std::to_string(i)));
    } catch (const std::exception& e) {
      refused = "connection " + std::to_string(i) + " failed: " + e.what();
      break;
    }
  }
  for (const int fd : fds)
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);

  // Writes the first half on every connection, as far as the broker reads it.
  std::vector<std::size_t> done(fds.size(), 0);
  std::size_t failed = 0;
  std::size_t finished = 0;
  const auto deadline = steady::now() + phase_limit;
  std::vector<pollfd> polls;
  std::vector<std::size_t> index;
  while (finished + failed < fds.size() && steady::now() < deadline) {
    polls.clear();
    index.clear();
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (done[i] < half) {
        polls.push_back({fds[i], POLLOUT, 0});
        index.push_back(i);
      }
    }
    if (::poll(polls.data(), polls.size(), 100) <= 0) continue;
    for (std::size_t k = 0; k < polls.size(); ++k) {
      if (polls[k].revents == 0) continue;
      const std::size_t i = index[k];
      const auto n = ::send(fds[i], packet.data() + done[i], half - done[i], MSG_NOSIGNAL);
      if (n > 0) {
        done[i] += static_cast<std::size_t>(n);
        if (done[i] == half) ++finished;
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        done[i] = half;  // closed by the broker
        ++failed;
      }
    }
  }
  settle_and_read(m, pid, sampler, start);

  // Connections the broker has closed by now.
  std::size_t closed = 0;
  for (const int fd : fds) {
    pollfd p{fd, POLLIN, 0};
    char byte = 0;
    if (::poll(&p, 1, 0) > 0 && ::recv(fd, &byte, 1, MSG_DONTWAIT) <= 0) ++closed;
  }
  std::uint64_t bytes = 0;
  for (const auto d : done)
    bytes += d;
  m.note =
      std::to_string(fds.size()) + " connected, " + std::to_string(finished) + " sent their half, ";
  char written[48];
  std::snprintf(written, sizeof written, "%.1f MiB written",
                static_cast<double>(bytes) / 1048576.0);
  m.note += written;
  m.note += ", closed by the broker: " + std::to_string(failed + closed);
  if (!refused.empty()) m.note += "; " + refused;
  for (const int fd : fds)
    ::close(fd);
  return m;
}

// --- (c) idle connections -----------------------------------------------------------------------

// Pss and private memory from /proc/<pid>/smaps_rollup, in KiB.
struct smaps_rollup {
  std::uint64_t pss_kib = 0;
  std::uint64_t private_kib = 0;  // Private_Clean + Private_Dirty
};

smaps_rollup read_smaps_rollup(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  smaps_rollup r;
  std::string line;
  auto field = [&line](std::string_view key) -> std::uint64_t {
    return line.compare(0, key.size(), key) == 0 ? std::stoull(line.substr(key.size())) : 0;
  };
  while (std::getline(in, line)) {
    r.pss_kib += field("Pss:");
    r.private_kib += field("Private_Clean:") + field("Private_Dirty:");
  }
  return r;
}

// A blocking connection to 127.0.0.1:port from source address 127.0.0.<source>, the port chosen
// at connect time (IP_BIND_ADDRESS_NO_PORT), so that each source address has its own range.
int dial_from(std::uint16_t port, std::uint8_t source) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed: " + std::string(std::strerror(errno)));
  const int one = 1;
  ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  from.sin_addr.s_addr = htonl(INADDR_LOOPBACK + source - 1);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("connect failed: " + why);
  }
  return fd;
}

measurement idle_scenario(std::uint16_t port, pid_t pid, std::size_t connections) {
  constexpr std::size_t per_source = 20000;  // well inside one address's ephemeral port range
  constexpr std::size_t in_flight = 256;     // CONNECTs sent before their CONNACKs are read
  measurement m;
  m.before = process_memory(pid);
  memory_sampler sampler(pid);
  const auto start = steady::now();
  std::vector<int> fds;
  fds.reserve(connections);
  std::string failure;
  std::string out;
  std::size_t acknowledged = 0;
  auto read_connack = [&](int fd) {
    codec::decoder dec;
    const auto ack = read_packet(fd, dec);
    const auto* c = std::get_if<codec::connack>(&ack);
    if (c == nullptr || c->return_code != codec::connect_return_code::accepted) {
      throw std::runtime_error("CONNECT refused");
    }
    ++acknowledged;
  };
  try {
    for (std::size_t i = 0; i < connections; ++i) {
      const int fd = dial_from(port, static_cast<std::uint8_t>(2 + i / per_source));
      set_receive_timeout(fd, io_timeout);
      fds.push_back(fd);
      out.clear();
      codec::encode(codec::connect{.keep_alive = 120, .client_id = "idle-" + std::to_string(i)},
                    out);
      send_all(fd, out);
      if (fds.size() > in_flight) read_connack(fds[fds.size() - 1 - in_flight]);
    }
    for (std::size_t k = fds.size() > in_flight ? fds.size() - in_flight : 0; k < fds.size(); ++k)
      read_connack(fds[k]);
  } catch (const std::exception& e) {
    failure = "after " + std::to_string(fds.size()) + " connections: " + e.what();
  }
  settle_and_read(m, pid, sampler, start);
  m.connections = acknowledged;
  m.note = std::to_string(acknowledged) + " of " + std::to_string(connections) + " connected";
  if (!failure.empty()) m.note += "; " + failure;
  for (const int fd : fds)
    ::close(fd);
  return m;
}

// --- (d) an idle daemon -------------------------------------------------------------------------

std::string daemon_config(const std::filesystem::path& dir, std::uint16_t port) {
  const auto path = dir / "edgecore.yaml";
  std::ofstream c(path);
  c << "database:\n  dataSource: " << (dir / "edgecore.db").string()
    << "\nmodules:\n  eventBus:\n    mqttMode: 0\n    mqttServerInternal: tcp://127.0.0.1:" << port
    << "\n    moduleSocket: " << (dir / "eventbus.sock").string()
    << "\n    moduleStreamSocket: " << (dir / "eventbus-stream.sock").string() << "\n";
  if (!c) throw std::runtime_error("cannot write " + path.string());
  return path.string();
}

// --- running a broker ---------------------------------------------------------------------------

struct broker_process {
  pid_t pid = 0;
  std::uint16_t port = 0;
  broker_process(const broker_process&) = delete;
  broker_process& operator=(const broker_process&) = delete;
  broker_process(std::vector<std::string> argv, std::uint16_t p)
      : pid(spawn(std::move(argv))), port(p) {
    mqtt_close(mqtt_connect(port, "mem-ready"));  // waits until it accepts
  }
  ~broker_process() { stop_process(pid); }
};

void print_row(const char* scenario, const char* broker, const measurement& m) {
  std::printf("%-34s %-10s %9.1f %10.1f %10.1f %10.1f %10.1f %7.1f\n", scenario, broker,
              mib(m.before.vm_rss_kib), mib(m.after.vm_rss_kib), mib(m.after.rss_anon_kib),
              mib(m.peak_rss_kib), mib(m.peak_anon_kib), m.seconds);
}

std::string ratio(std::uint64_t ours, std::uint64_t theirs) {
  if (theirs == 0) return "n/a";
  char text[32];
  std::snprintf(text, sizeof text, "%.2fx",
                static_cast<double>(ours) / static_cast<double>(theirs));
  return text;
}

int run(int argc, char** argv) {
  std::size_t retained = 20000;
  std::size_t retained_bytes = std::size_t{64} * 1024;
  std::size_t connections = 1000;
  std::size_t packet_bytes = std::size_t{512} * 1024;
  std::string mosquitto = "/usr/sbin/mosquitto";
  std::string server = std::string(EBUS_BENCH_DIR) + "/broker_server";
  std::string daemon = std::string(EBUS_BENCH_DIR) + "/../apps/eventbus/eventbus";
  std::vector<std::size_t> idle = {10000, 50000};
  std::string only = "abcd";
  std::string json;
  parse_options(argc, argv, [&](const std::string& key, const std::string& value) {
    if (key == "--retained") {
      retained = std::stoul(value);
    } else if (key == "--retained-bytes") {
      retained_bytes = std::stoul(value);
    } else if (key == "--connections") {
      connections = std::stoul(value);
    } else if (key == "--packet-bytes") {
      packet_bytes = std::stoul(value);
    } else if (key == "--mosquitto") {
      mosquitto = value;
    } else if (key == "--server") {
      server = value;
    } else if (key == "--daemon") {
      daemon = value;
    } else if (key == "--idle") {
      idle.clear();
      for (std::size_t at = 0; at < value.size();) {
        const auto comma = std::min(value.find(',', at), value.size());
        idle.push_back(std::stoul(value.substr(at, comma - at)));
        at = comma + 1;
      }
    } else if (key == "--only") {
      only = value;
    } else if (key == "--json") {
      json = value;
    } else {
      return false;
    }
    return true;
  });

  if (retained == 0 || connections == 0 || packet_bytes < 64) {
    throw std::runtime_error("--retained and --connections must be positive, --packet-bytes >= 64");
  }
  auto wanted = [&](char scenario) { return only.find(scenario) != std::string::npos; };
  // Our sockets plus the broker's (it inherits the limit). Root may raise the hard limit.
  std::size_t most = connections;
  if (wanted('c')) {
    for (const auto c : idle)
      most = std::max(most, c);
  }
  if (rlimit lim{}; ::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_max < most + 1024) {
    lim.rlim_max = lim.rlim_cur = most + 1024;
    (void)::setrlimit(RLIMIT_NOFILE, &lim);  // fails unless privileged: checked below
  }
  const auto files = raise_open_file_limit();

  temp_dir dir("ebus-memory-compare");
  const auto conf = (dir.path / "mosquitto.conf").string();
  auto start_mosquitto = [&] {
    const auto port = free_port();
    write_mosquitto_config(conf, port);
    return std::make_unique<broker_process>(std::vector<std::string>{mosquitto, "-c", conf}, port);
  };
  // `clients` past the broker's default max_connections (10,000) raise that limit, as a user
  // holding that many devices would.
  auto start_eventbus = [&](std::size_t clients = 0) {
    constexpr std::size_t default_max_connections = 10000;
    const auto port = free_port();
    std::vector<std::string> command{server, std::to_string(port)};
    if (clients > default_max_connections) {
      command.insert(command.end(), {"--max-connections", std::to_string(clients)});
    }
    return std::make_unique<broker_process>(std::move(command), port);
  };

  std::printf(
      "Resident memory of each broker, a fresh process per scenario and broker; eventbus at "
      "broker_options\ndefaults, mosquitto with one listener and default limits. MiB; peak = "
      "highest sample (10 ms)\nor VmHWM.\n\n");
  std::printf("%-34s %-10s %9s %10s %10s %10s %10s %7s\n", "scenario", "broker", "RSS start",
              "RSS after", "anon after", "peak RSS", "peak anon", "secs");

  char name_a[96];
  std::snprintf(name_a, sizeof name_a, "(a) %zu retained x %zu KiB", retained,
                retained_bytes / 1024);
  char name_b[96];
  std::snprintf(name_b, sizeof name_b, "(b) %zu conns x half of %zu KiB", connections,
                packet_bytes / 1024);

  auto record = [&](const std::string& scenario, const char* broker, const measurement& m,
                    std::optional<smaps_rollup> rollup) {
    result_metrics metrics = {
        {"rss_kib", static_cast<double>(m.after.vm_rss_kib)},
        {"anon_kib", static_cast<double>(m.after.rss_anon_kib)},
        {"peak_rss_kib", static_cast<double>(m.peak_rss_kib)},
        {"peak_anon_kib", static_cast<double>(m.peak_anon_kib)},
    };
    if (m.connections > 0) {
      const auto per_connection = [&](std::uint64_t after_kib, std::uint64_t before_kib) {
        return (static_cast<double>(after_kib) - static_cast<double>(before_kib)) * 1024.0 /
               static_cast<double>(m.connections);
      };
      metrics.emplace_back("connections", static_cast<double>(m.connections));
      metrics.emplace_back("bytes_per_connection",
                           per_connection(m.after.rss_anon_kib, m.before.rss_anon_kib));
      metrics.emplace_back("rss_bytes_per_connection",
                           per_connection(m.after.vm_rss_kib, m.before.vm_rss_kib));
    }
    if (rollup) {
      metrics.emplace_back("pss_kib", static_cast<double>(rollup->pss_kib));
      metrics.emplace_back("private_kib", static_cast<double>(rollup->private_kib));
    }
    append_result(json, "memory", scenario, broker, 1, metrics, m.note);
  };

  std::vector<std::string> notes;
  auto report = [&](const char* name, const measurement& ours, const measurement& theirs) {
    print_row(name, "eventbus", ours);
    print_row("", "mosquitto", theirs);
    std::printf("%-34s ratio eventbus/mosquitto: peak RSS %s, peak anon %s, RSS after %s\n", "",
                ratio(ours.peak_rss_kib, theirs.peak_rss_kib).c_str(),
                ratio(ours.peak_anon_kib, theirs.peak_anon_kib).c_str(),
                ratio(ours.after.vm_rss_kib, theirs.after.vm_rss_kib).c_str());
    std::fflush(stdout);
    notes.push_back(std::string(name) + ", eventbus: " + ours.note);
    notes.push_back(std::string(name) + ", mosquitto: " + theirs.note);
    record(name, "eventbus", ours, std::nullopt);
    record(name, "mosquitto", theirs, std::nullopt);
  };

  if (wanted('a')) {
    measurement theirs;
    measurement ours;
    {
      const auto b = start_mosquitto();
      theirs = retained_scenario(b->port, b->pid, retained, retained_bytes);
    }
    {
      const auto b = start_eventbus();
      ours = retained_scenario(b->port, b->pid, retained, retained_bytes);
    }
    report(name_a, ours, theirs);
  }
  if (wanted('b')) {
    if (files < connections + 64) {
      throw std::runtime_error("RLIMIT_NOFILE hard limit " + std::to_string(files) +
                               " is too low for " + std::to_string(connections) + " connections");
    }
    measurement theirs;
    measurement ours;
    {
      const auto b = start_eventbus();
      ours = half_packet_scenario(b->port, b->pid, connections, packet_bytes);
    }
    {
      const auto b = start_mosquitto();
      theirs = half_packet_scenario(b->port, b->pid, connections, packet_bytes);
    }
    report(name_b, ours, theirs);
  }
  std::vector<std::string> per_connection;
  auto run_idle = [&](std::size_t count) {
    measurement theirs;
    measurement ours;
    {
      const auto b = start_eventbus(count);
      ours = idle_scenario(b->port, b->pid, count);
    }
    {
      const auto b = start_mosquitto();
      theirs = idle_scenario(b->port, b->pid, count);
    }
    report(("(c) idle connections " + std::to_string(count)).c_str(), ours, theirs);
    auto per = [](const measurement& m) {
      return m.connections == 0 ? 0.0
                                : (static_cast<double>(m.after.rss_anon_kib) -
                                   static_cast<double>(m.before.rss_anon_kib)) *
                                      1024.0 / static_cast<double>(m.connections);
    };
    char line[160];
    std::snprintf(line, sizeof line,
                  "%zu idle connections: eventbus %.0f B, mosquitto %.0f B (%.2fx)", count,
                  per(ours), per(theirs), per(theirs) > 0 ? per(ours) / per(theirs) : 0.0);
    per_connection.emplace_back(line);
  };
  // A count past the descriptor limit cannot run; the most the limit allows (whole thousands,
  // room left for the processes' other descriptors) runs after the others instead, so that the
  // report still shows how the cost holds beyond the smaller counts. The row asked for stays
  // "not run".
  std::size_t largest_run = 0;
  std::size_t largest_allowed = 0;
  for (const auto count : wanted('c') ? idle : std::vector<std::size_t>{}) {
    if (files < count + 64) {
      const std::string name = "idle connections " + std::to_string(count);
      const std::string why = name + ": not run, RLIMIT_NOFILE " + std::to_string(files) +
                              " too low (raising the hard limit needs CAP_SYS_RESOURCE)";
      notes.push_back(why);
      append_result(json, "memory", "(c) " + name, "eventbus", 1, {}, why);  // a note, no row
      largest_allowed = files > 1024 ? (files - 1024) / 1000 * 1000 : 0;
      continue;
    }
    run_idle(count);
    largest_run = std::max(largest_run, count);
  }
  if (largest_allowed > largest_run) {
    notes.push_back("idle connections " + std::to_string(largest_allowed) +
                    ": the most RLIMIT_NOFILE " + std::to_string(files) +
                    " allows, run in place of the counts above it");
    run_idle(largest_allowed);
  }
  if (wanted('d')) {
    measurement theirs;
    measurement ours;
    smaps_rollup our_rollup;
    smaps_rollup their_rollup;
    {
      const auto port = free_port();
      const auto conf_path = daemon_config(dir.path, port);
      broker_process b({daemon, "--config", conf_path}, port);
      std::this_thread::sleep_for(settle);
      ours.before = ours.after = process_memory(b.pid);
      ours.peak_rss_kib = ours.after.vm_hwm_kib;
      our_rollup = read_smaps_rollup(b.pid);
    }
    {
      const auto b = start_mosquitto();
      std::this_thread::sleep_for(settle);
      theirs.before = theirs.after = process_memory(b->pid);
      theirs.peak_rss_kib = theirs.after.vm_hwm_kib;
      their_rollup = read_smaps_rollup(b->pid);
    }
    print_row("(d) idle daemon", "eventbus", ours);
    print_row("", "mosquitto", theirs);
    std::printf("%-34s Pss / private: eventbus %.1f / %.1f MiB, mosquitto %.1f / %.1f MiB\n", "",
                mib(our_rollup.pss_kib), mib(our_rollup.private_kib), mib(their_rollup.pss_kib),
                mib(their_rollup.private_kib));
    record("idle daemon", "eventbus", ours, our_rollup);
    record("idle daemon", "mosquitto", theirs, their_rollup);
  }
  if (!per_connection.empty()) {
    std::printf("\nRssAnon growth per idle connection:\n");
    for (const auto& l : per_connection)
      std::printf("  %s\n", l.c_str());
  }

  std::printf(
      "\nretained payload sent in (a): %.1f MiB; half packets in (b): %.1f MiB (when run)\n",
      static_cast<double>(retained) * static_cast<double>(retained_bytes) / 1048576.0,
      static_cast<double>(connections) * (static_cast<double>(packet_bytes) / 2.0) / 1048576.0);
  std::printf("\nNOTES:\n");
  for (const auto& n : notes)
    std::printf("  %s\n", n.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "memory_compare: %s\n", e.what());
    return 1;
  }
}
