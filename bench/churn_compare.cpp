// Connection churn and large subscription sets: the embedded broker (broker_server, at the
// daemon's defaults, memory budget included) and Debian's mosquitto (one loopback listener, every
// limit at its default), each run on a freshly started broker, alternating eventbus run r and
// mosquitto run r.
//
//   churn_compare churn [--seconds S] [--concurrency C] [--runs R] [--json FILE]
//   churn_compare subscriptions [--counts 10000,100000] [--messages M] [--runs R] [--json FILE]
//   (both also take --window W, --mosquitto PATH, --server PATH)
//
// churn: what KubeEdge's mapper template does for every data point. C loops (default 16) each
// connect over TCP, CONNECT (clean session, a client id never used before), wait for the CONNACK,
// PUBLISH one 64-byte QoS 0 message on their device topic
// ($ke/events/device/dev-<loop>/data/update), DISCONNECT and close, for S seconds (default 5).
// One subscriber on $ke/events/device/+/data/update counts the data points; each payload carries
// a sequence number, so it sees losses and duplicates.
//
// subscriptions: N subscriptions (each of --counts) held by 100 subscriber clients, subscription
// j by client j % 100, one filter per SUBSCRIBE, all sent at once: 70 % exact (dev/<j>/temp), 20 %
// single-level wildcards (dev/+/x<j>) and 10 % multi-level (dev/<j>/#). subscribe_seconds runs
// from the first SUBSCRIBE to the last SUBACK; RSS is read then. One publisher then publishes M
// (default 200,000) 64-byte QoS 0 messages on topics that match one or two subscriptions each
// (see layout::message), four deliveries per three messages, and every delivery is checked
// against the subscription layout: lost, duplicated, or not expected at all.
//
// Pacing: a publisher waits while any subscriber that should receive its messages is W (default
// 1000, mosquitto's max_queued_messages) or more messages behind, counting from the highest
// sequence number that subscriber has received, so holes do not hold it back; when nothing has
// arrived for 250 ms what is outstanding is taken as lost and the window starts again. Every wait
// is bounded: a stuck broker ends the run with a note. churn closes each connection only after
// the broker has closed its end, with SO_LINGER 0 (see churn_loop), so no TIME_WAIT piles up.
//
// The broker runs on one CPU and this load generator, one thread on epoll with non-blocking
// sockets, on another. Broker CPU is utime + stime from /proc (clock ticks); the load generator's
// own CPU comes from getrusage. On loopback the kernel does a packet's TCP work in the context of
// the process that sends it, so in churn much of the connection setup and teardown is charged to
// whichever side sent the packet: compare broker_us_per_cycle between brokers, not against the
// load generator's. Results: a table on stdout, and with --json one JSON line per run
// (groups "churn" and "subscriptions"). Exit status: 1 when a run failed (the last line says
// which) or on an error, 0 otherwise: losses are reported, not judged.
#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <sched.h>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <utility>
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

constexpr std::size_t subscriber_clients = 100;
constexpr std::size_t batch_bytes = std::size_t{16} * 1024;
constexpr auto io_limit = 10s;       // one connection or the publisher made no progress
constexpr auto stall_limit = 2s;     // nothing arrived at the end: the rest is lost
constexpr auto quiet_limit = 250ms;  // nothing arrived while paced: what is outstanding is lost

double seconds_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// --- options --------------------------------------------------------------------------------

struct options {
  double seconds = 5;
  std::size_t concurrency = 16;
  std::size_t runs = 3;
  std::size_t window = 1000;
  std::vector<std::size_t> counts = {10000, 100000};
  std::size_t messages = 200000;
  std::string json;
  std::string mosquitto = "/usr/sbin/mosquitto";
  std::string server = std::string(EBUS_BENCH_DIR) + "/broker_server";
};

std::vector<std::size_t> parse_counts(const std::string& text) {
  std::vector<std::size_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ','))
    out.push_back(std::stoul(item));
  return out;
}

// --- payloads -------------------------------------------------------------------------------

// --- CPUs, brokers, results -------------------------------------------------------------------

// The first two CPUs this process may use: the broker's and the load generator's.
struct cpu_plan {
  std::optional<int> broker;
  std::optional<int> loadgen;
  std::string note;
};

cpu_plan plan_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  cpu_plan plan;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) {
    plan.note = "not pinned: sched_getaffinity failed";
    return plan;
  }
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  if (cpus.size() < 2) {
    plan.note = "not pinned: one CPU";
    return plan;
  }
  plan.broker = cpus[0];
  plan.loadgen = cpus[1];
  plan.note = "broker on CPU " + std::to_string(cpus[0]) + ", load generator on CPU " +
              std::to_string(cpus[1]);
  return plan;
}

void pin_self(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) throw std::runtime_error("cannot pin");
}

enum class broker_kind { eventbus, mosquitto };

const char* name_of(broker_kind k) {
  return k == broker_kind::eventbus ? "eventbus" : "mosquitto";
}

// A fresh broker on a free port, on the broker CPU (it inherits this thread's affinity at spawn),
// stopped on destruction.
class broker_process {
 public:
  broker_process(broker_kind kind, const options& o, const cpu_plan& cpus)
      : dir_("ebus-churn-compare"), port_(free_port()) {
    std::vector<std::string> argv;
    if (kind == broker_kind::eventbus) {
      argv = {o.server, std::to_string(port_)};
    } else {
      const auto conf = (dir_.path / "mosquitto.conf").string();
      write_mosquitto_config(conf, port_);
      argv = {o.mosquitto, "-c", conf};
    }
    if (cpus.broker) pin_self(*cpus.broker);
    pid_ = spawn(argv);
    if (cpus.loadgen) pin_self(*cpus.loadgen);
    mqtt_close(mqtt_connect(port_, "churn-ready"));  // waits until it accepts
  }
  broker_process(const broker_process&) = delete;
  broker_process& operator=(const broker_process&) = delete;
  ~broker_process() { stop_process(pid_); }

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  temp_dir dir_;
  std::uint16_t port_;
  pid_t pid_ = 0;
};

using metrics = result_metrics;

void append_json(const std::string& path, const std::string& group, const std::string& scenario,
                 broker_kind broker, std::size_t run, const metrics& m, const std::string& note) {
  append_result(path, group, scenario, name_of(broker), run, m, note);
}

std::optional<double> metric(const metrics& m, std::string_view name) {
  for (const auto& [k, v] : m) {
    if (k == name) return v;
  }
  return std::nullopt;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Medians per broker of the metrics named in `columns`, and the ratio eventbus/mosquitto.
void print_summary(const std::string& scenario, const std::vector<std::string>& columns,
                   const std::vector<metrics>& ours, const std::vector<metrics>& theirs) {
  std::printf("\n%s, medians:\n", scenario.c_str());
  for (const auto& c : columns) {
    auto collect = [&c](const std::vector<metrics>& runs) -> std::optional<double> {
      std::vector<double> v;
      for (const auto& m : runs) {
        if (auto x = metric(m, c)) v.push_back(*x);
      }
      if (v.empty()) return std::nullopt;
      return median(v);
    };
    auto text = [](std::optional<double> x) {
      char out[32] = "-";
      if (x) std::snprintf(out, sizeof out, "%.2f", *x);
      return std::string(out);
    };
    const auto a = collect(ours);
    const auto b = collect(theirs);
    char ratio[32] = "n/a";
    if (a && b && *b > 0) std::snprintf(ratio, sizeof ratio, "%.2fx", *a / *b);
    std::printf("  %-20s eventbus %12s  mosquitto %12s  ratio %s\n", c.c_str(), text(a).c_str(),
                text(b).c_str(), ratio);
  }
}

// The exit status; the last line of output names the runs that failed, if any.
int report_failures(const std::vector<std::string>& failures) {
  if (failures.empty()) return 0;
  std::string line = "FAILED:";
  for (const auto& f : failures)
    line += (line.size() > 7 ? "; " : " ") + f;
  std::printf("\n%s\n", line.c_str());
  return 1;
}

// --- epoll ------------------------------------------------------------------------------------

class poller {
 public:
  poller() : fd_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (fd_ < 0) throw std::runtime_error("epoll_create1 failed");
  }
  poller(const poller&) = delete;
  poller& operator=(const poller&) = delete;
  ~poller() { ::close(fd_); }

  void add(int fd, std::uint32_t events, std::uint64_t tag) {
    control(EPOLL_CTL_ADD, fd, events, tag);
  }
  void modify(int fd, std::uint32_t events, std::uint64_t tag) {
    control(EPOLL_CTL_MOD, fd, events, tag);
  }
  /// Ready events; `timeout` in milliseconds.
  std::span<const epoll_event> wait(int timeout) {
    const int n = ::epoll_wait(fd_, events_.data(), static_cast<int>(events_.size()), timeout);
    if (n < 0) {
      if (errno == EINTR) return {};
      throw std::runtime_error("epoll_wait failed");
    }
    return {events_.data(), static_cast<std::size_t>(n)};
  }

 private:
  void control(int op, int fd, std::uint32_t events, std::uint64_t tag) {
    epoll_event e{};
    e.events = events;
    e.data.u64 = tag;
    if (::epoll_ctl(fd_, op, fd, &e) != 0) {
      throw std::runtime_error(std::string("epoll_ctl failed: ") + std::strerror(errno));
    }
  }
  int fd_;
  std::array<epoll_event, 256> events_{};
};

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// Reads what is there into `dec`. False once the peer closed or the connection failed.
bool read_available(int fd, codec::decoder& dec, std::size_t chunk) {
  for (;;) {
    auto space = dec.prepare(chunk);
    const auto n = ::recv(fd, space.data(), space.size(), 0);
    if (n > 0) {
      dec.commit(static_cast<std::size_t>(n));
      if (static_cast<std::size_t>(n) < space.size()) return true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
}

// Connects and subscribes with blocking calls, then leaves the socket non-blocking.
int subscribed_client(std::uint16_t port, const std::string& id, const std::string& filter) {
  const int fd = mqtt_connect(port, id);
  std::string out;
  codec::encode(codec::subscribe{1, {{filter, codec::qos_level::at_most_once}}}, out);
  send_all(fd, out);
  codec::decoder dec;
  const auto ack = read_packet(fd, dec);
  const auto* s = std::get_if<codec::suback>(&ack);
  if (s == nullptr || s->return_codes.empty() ||
      s->return_codes[0] == codec::suback_return_code::failure) {
    ::close(fd);
    throw std::runtime_error("SUBSCRIBE " + filter + " refused");
  }
  set_nonblocking(fd);
  return fd;
}

// Counts one note text per kind, for the run's note.
class error_counts {
 public:
  void add(const std::string& what) { ++counts_[what]; }
  [[nodiscard]] bool empty() const { return counts_.empty(); }
  [[nodiscard]] std::string text() const {
    std::string out;
    for (const auto& [what, n] : counts_)
      out += (out.empty() ? "" : "; ") + what + " x" + std::to_string(n);
    return out;
  }

 private:
  std::map<std::string, std::size_t> counts_;
};

// --- churn ------------------------------------------------------------------------------------

const std::string churn_filter = "$ke/events/device/+/data/update";

std::string device_topic(std::size_t loop) {
  return "$ke/events/device/dev-" + std::to_string(loop) + "/data/update";
}

// What the subscriber received, by sequence number.
struct churn_receipts {
  std::vector<std::uint8_t> seen;
  std::uint64_t unique = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t foreign = 0;
  std::uint64_t high = 0;  // one past the highest sequence number received
  steady::time_point last_arrival = steady::now();

  void record(std::uint64_t seq) {
    last_arrival = steady::now();
    if (seq >= seen.size()) {
      ++foreign;
      return;
    }
    if (seen[seq] != 0) {
      ++duplicates;
      return;
    }
    seen[seq] = 1;
    ++unique;
    high = std::max(high, seq + 1);
  }
};

// One connect/publish/disconnect loop. The client closes only after the broker has closed its
// end in answer to DISCONNECT, and then with SO_LINGER 0: the close sends a RST to a socket that
// is already in FIN_WAIT_2, so neither side keeps a TIME_WAIT entry and a few seconds of churn at
// tens of thousands of connections per second cannot exhaust the ephemeral ports.
struct churn_loop {
  enum class phase { idle, connecting, awaiting_connack, awaiting_window, awaiting_close };
  int fd = -1;
  phase state = phase::idle;
  std::uint64_t cycle = 0;
  steady::time_point since;
  std::unique_ptr<codec::decoder> dec;
};

struct churn_result {
  std::uint64_t cycles = 0;
  std::uint64_t published = 0;
  std::uint64_t received = 0;
  std::uint64_t duplicates = 0;
  double active_s = 0;
  double broker_cpu_s = 0;
  double loadgen_cpu_s = 0;
  std::uint64_t window_restarts = 0;
  error_counts errors;
};

churn_result churn_once(const broker_process& broker, const options& o) {
  churn_result r;
  churn_receipts got;
  const int sub = subscribed_client(broker.port(), "churn-sub", churn_filter);
  codec::decoder sub_dec;
  poller poll;
  const std::uint64_t sub_tag = o.concurrency;
  poll.add(sub, EPOLLIN, sub_tag);

  std::vector<churn_loop> loops(o.concurrency);
  std::vector<std::string> topics;
  for (std::size_t i = 0; i < loops.size(); ++i)
    topics.push_back(device_topic(i));
  std::string payload = sequenced_payload();
  std::string out;
  std::uint64_t floor = 0;  // the pacer's restart point
  std::size_t waiting = 0;  // loops in awaiting_window
  bool running = true;
  auto last_cycle_end = steady::now();

  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(broker.port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  auto finish = [&](churn_loop& l, const char* error) {
    ::close(l.fd);  // SO_LINGER 0: a RST, no TIME_WAIT
    l.fd = -1;
    if (l.state == churn_loop::phase::awaiting_window) --waiting;
    l.state = churn_loop::phase::idle;
    if (error != nullptr) {
      r.errors.add(error);
    } else {
      ++r.cycles;
      last_cycle_end = steady::now();
    }
  };
  auto send_small = [](int fd, const std::string& bytes) {
    // A fresh socket's buffer takes these few bytes whole.
    return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  };
  auto on_connected = [&](churn_loop& l, std::size_t index, bool registered) {
    const int one = 1;
    ::setsockopt(l.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    out.clear();
    codec::encode(codec::connect{.keep_alive = 60,
                                 .client_id = "churn-" + std::to_string(index) + "-" +
                                              std::to_string(l.cycle)},
                  out);
    if (!send_small(l.fd, out)) return finish(l, "CONNECT not sent");
    if (registered) {
      poll.modify(l.fd, EPOLLIN, index);
    } else {
      poll.add(l.fd, EPOLLIN, index);
    }
    l.state = churn_loop::phase::awaiting_connack;
    l.since = steady::now();
  };
  auto start = [&](churn_loop& l, std::size_t index) {
    ++l.cycle;
    l.dec = std::make_unique<codec::decoder>();
    l.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l.fd < 0) throw std::runtime_error("socket failed: " + std::string(std::strerror(errno)));
    const linger abort_on_close{1, 0};
    ::setsockopt(l.fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
    l.since = steady::now();
    if (::connect(l.fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0) {
      on_connected(l, index, false);
    } else if (errno == EINPROGRESS) {
      l.state = churn_loop::phase::connecting;
      poll.add(l.fd, EPOLLOUT, index);
    } else {
      r.errors.add(std::string("connect: ") + std::strerror(errno));
      ::close(l.fd);
      l.fd = -1;
    }
  };
  auto read_subscriber = [&] {
    const bool open = read_available(sub, sub_dec, std::size_t{64} * 1024);
    for (;;) {
      auto p = sub_dec.next();
      if (!p) throw std::runtime_error("subscriber: undecodable packet");
      if (!*p) break;
      if (const auto* m = std::get_if<codec::publish>(&**p)) {
        if (const auto seq = read_sequence(m->payload)) {
          got.record(*seq);
        } else {
          ++got.foreign;
        }
      }
    }
    if (!open) throw std::runtime_error("subscriber: connection closed by the broker");
  };
  auto window_open = [&] { return r.published < std::max(got.high, floor) + o.window; };
  auto publish = [&](churn_loop& l, std::size_t index) {
    if (l.state == churn_loop::phase::awaiting_window) --waiting;
    if (got.seen.size() <= r.published) got.seen.resize(got.seen.size() * 2 + 1024, 0);
    write_sequence(payload, r.published++);
    out.clear();
    codec::encode_publish(out, topics[index], payload, codec::qos_level::at_most_once, false, false,
                          0);
    codec::encode(codec::disconnect{}, out);
    if (!send_small(l.fd, out)) return finish(l, "PUBLISH not sent");
    l.state = churn_loop::phase::awaiting_close;
    l.since = steady::now();
  };
  auto on_readable = [&](churn_loop& l, std::size_t index) {
    const bool open = read_available(l.fd, *l.dec, 256);
    if (l.state == churn_loop::phase::awaiting_close) {
      if (!open) finish(l, nullptr);  // the broker closed first: the cycle is complete
      return;
    }
    auto p = l.dec->next();
    if (!p) return finish(l, "undecodable reply");
    if (!*p) {
      if (!open) finish(l, "closed before CONNACK");
      return;
    }
    const auto* ack = std::get_if<codec::connack>(&**p);
    if (ack == nullptr || ack->return_code != codec::connect_return_code::accepted) {
      return finish(l, "CONNECT refused");
    }
    if (!open) return finish(l, "closed after CONNACK");
    if (window_open()) return publish(l, index);
    l.state = churn_loop::phase::awaiting_window;
    l.since = steady::now();
    ++waiting;
  };

  const double broker_cpu0 = process_cpu_seconds(broker.pid());
  const double own_cpu0 = own_cpu_seconds();
  const auto t0 = steady::now();
  const auto stop_at =
      t0 + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(o.seconds));
  last_cycle_end = t0;
  auto last_tick = t0;
  got.last_arrival = t0;
  for (std::size_t i = 0; i < loops.size(); ++i)
    start(loops[i], i);

  for (;;) {
    const auto now = steady::now();
    if (running && now >= stop_at) running = false;
    const bool busy =
        std::any_of(loops.begin(), loops.end(), [](const churn_loop& l) { return l.fd >= 0; });
    if (!running && !busy) break;
    for (const auto& e : poll.wait(20)) {
      if (e.data.u64 == sub_tag) {
        read_subscriber();
        continue;
      }
      const auto index = static_cast<std::size_t>(e.data.u64);
      auto& l = loops[index];
      if (l.state == churn_loop::phase::connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(l.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          finish(l, (std::string("connect: ") + std::strerror(err)).c_str());
        } else {
          on_connected(l, index, true);
        }
      } else if (l.state == churn_loop::phase::awaiting_connack ||
                 l.state == churn_loop::phase::awaiting_close) {
        on_readable(l, index);
      } else if (l.state == churn_loop::phase::awaiting_window) {
        // The broker closed a connection that was waiting to publish.
        codec::decoder ignored;
        if (!read_available(l.fd, ignored, 256)) finish(l, "closed before PUBLISH");
      }
    }
    if (waiting > 0) {
      if (!window_open() && steady::now() - got.last_arrival > quiet_limit) {
        floor = r.published;  // what is outstanding is lost
        ++r.window_restarts;
      }
      for (std::size_t i = 0; i < loops.size() && window_open(); ++i) {
        if (loops[i].state == churn_loop::phase::awaiting_window) publish(loops[i], i);
      }
    }
    if (steady::now() - last_tick > 100ms) {
      last_tick = steady::now();
      for (auto& l : loops) {
        if (l.fd >= 0 && l.state != churn_loop::phase::awaiting_window &&
            last_tick - l.since > io_limit) {
          finish(l, "no answer from the broker for 10 s");
        }
      }
    }
    for (std::size_t i = 0; running && i < loops.size(); ++i) {
      if (loops[i].state == churn_loop::phase::idle) start(loops[i], i);
    }
  }

  // Every published message arrives, or nothing has arrived for stall_limit.
  while (got.unique < r.published && steady::now() - got.last_arrival < stall_limit) {
    if (!poll.wait(20).empty()) read_subscriber();  // only the subscriber is left
  }
  r.broker_cpu_s = process_cpu_seconds(broker.pid()) - broker_cpu0;
  r.loadgen_cpu_s = own_cpu_seconds() - own_cpu0;
  r.active_s = seconds_between(t0, last_cycle_end);
  r.received = got.unique;
  r.duplicates = got.duplicates;
  if (got.foreign != 0) r.errors.add("messages not from this run");
  mqtt_close(sub);
  return r;
}

int run_churn(const options& o, const cpu_plan& cpus) {
  const std::string scenario =
      std::to_string(o.concurrency) + " loops connect/publish/disconnect QoS0 64 B";
  std::printf("churn: %s, %.0f s per run, window %zu; %s\n\n", scenario.c_str(), o.seconds,
              o.window, cpus.note.c_str());
  std::printf("%-10s %4s %10s %10s %12s %12s %10s %10s %6s %6s\n", "broker", "run", "cycles",
              "cycles/s", "brk us/cyc", "gen us/msg", "published", "received", "lost", "dup");
  std::fflush(stdout);
  std::vector<metrics> per_broker[2];
  std::vector<std::string> failures;
  for (std::size_t run = 1; run <= o.runs; ++run) {
    for (const auto kind : {broker_kind::eventbus, broker_kind::mosquitto}) {
      churn_result r;
      try {
        const broker_process broker(kind, o, cpus);
        r = churn_once(broker, o);
      } catch (const std::exception& e) {
        std::printf("%-10s %4zu failed: %s\n", name_of(kind), run, e.what());
        failures.push_back(std::string(name_of(kind)) + " run " + std::to_string(run) + ": " +
                           e.what());
        continue;
      }
      const auto lost = r.published - std::min(r.published, r.received);
      const auto cycles = static_cast<double>(r.cycles);
      const metrics m = {
          {"cycles_per_s", r.active_s > 0 ? cycles / r.active_s : 0},
          {"broker_us_per_cycle", r.cycles > 0 ? r.broker_cpu_s * 1e6 / cycles : 0},
          {"loadgen_us_per_msg",
           r.received > 0 ? r.loadgen_cpu_s * 1e6 / static_cast<double>(r.received) : 0},
          {"lost", static_cast<double>(lost)},
          {"cycles", cycles},
          {"sent", static_cast<double>(r.published)},
          {"delivered", static_cast<double>(r.received)},
          {"duplicates", static_cast<double>(r.duplicates)},
      };
      std::string note = cpus.note;
      if (r.window_restarts != 0) {
        note += "; window restarted " + std::to_string(r.window_restarts) + " times";
      }
      if (!r.errors.empty()) note += "; " + r.errors.text();
      std::printf(
          "%-10s %4zu %10.0f %10.0f %12.2f %12.2f %10llu %10llu %6llu %6llu\n", name_of(kind), run,
          cycles, *metric(m, "cycles_per_s"), *metric(m, "broker_us_per_cycle"),
          *metric(m, "loadgen_us_per_msg"), static_cast<unsigned long long>(r.published),
          static_cast<unsigned long long>(r.received), static_cast<unsigned long long>(lost),
          static_cast<unsigned long long>(r.duplicates));
      if (!r.errors.empty()) std::printf("           %s\n", r.errors.text().c_str());
      std::fflush(stdout);
      append_json(o.json, "churn", scenario, kind, run, m, note);
      per_broker[kind == broker_kind::eventbus ? 0 : 1].push_back(m);
    }
  }
  print_summary(scenario, {"cycles_per_s", "broker_us_per_cycle", "loadgen_us_per_msg", "lost"},
                per_broker[0], per_broker[1]);
  return report_failures(failures);
}

// --- subscriptions ----------------------------------------------------------------------------

// Subscription j of S: exact dev/<j>/temp for j < 70 % of S, dev/+/x<j> up to 90 %, dev/<j>/#
// for the rest; held by client j % 100.
struct layout {
  std::size_t total;
  std::size_t exact;
  std::size_t single;
  std::size_t multi;

  explicit layout(std::size_t s)
      : total(s), exact(s * 7 / 10), single(s * 2 / 10), multi(s - exact - single) {}

  [[nodiscard]] std::string filter(std::size_t j) const {
    const auto n = std::to_string(j);
    if (j < exact) return "dev/" + n + "/temp";
    if (j < exact + single) return "dev/+/x" + n;
    return "dev/" + n + "/#";
  }
  static std::size_t client_of(std::size_t j) { return j % subscriber_clients; }

  // Message k: its topic, and the clients that hold the subscriptions it matches. Three kinds
  // in turn: dev/<exact j>/temp matches that exact filter only (no dev/<j>/# exists for it);
  // dev/<multi b>/x<single c> matches dev/+/x<c> and dev/<b>/#, held by two different clients,
  // so a broker that sends overlapping matches to one client once or twice cannot blur the
  // count; dev/<multi b>/temp matches dev/<b>/# only (no exact filter exists for b).
  void message(std::uint64_t k, std::string& topic, std::vector<std::size_t>& clients) const {
    const std::size_t step = static_cast<std::size_t>(k / 3);
    clients.clear();
    switch (k % 3) {
      case 0: {
        const std::size_t a = step % exact;
        topic = "dev/" + std::to_string(a) + "/temp";
        clients.push_back(client_of(a));
        break;
      }
      case 1: {
        const std::size_t b = exact + single + step % multi;
        std::size_t c = exact + step % single;
        for (std::size_t t = 1; client_of(c) == client_of(b); ++t)
          c = exact + (step + t) % single;
        topic = "dev/" + std::to_string(b) + "/x" + std::to_string(c);
        clients.push_back(client_of(b));
        clients.push_back(client_of(c));
        break;
      }
      default: {
        const std::size_t b = exact + single + (step * 7) % multi;
        topic = "dev/" + std::to_string(b) + "/temp";
        clients.push_back(client_of(b));
        break;
      }
    }
  }
};

// One subscriber client: the sequence numbers it should get, in publishing order, and which of
// them it got.
struct sub_client {
  int fd = -1;
  codec::decoder dec;
  std::string out;  // SUBSCRIBEs not yet written
  std::size_t out_off = 0;
  std::size_t subacks = 0;
  std::size_t refused = 0;
  std::vector<std::uint32_t> expected;
  std::vector<std::uint8_t> got;
  std::size_t next = 0;   // index into `expected` after the highest one received
  std::size_t floor = 0;  // the pacer's restart point
  bool over = false;      // window or more behind

  [[nodiscard]] std::size_t behind() const { return expected.size() - std::max(next, floor); }
};

struct subs_result {
  double subscribe_s = 0;
  std::uint64_t refused = 0;
  memory_usage memory;
  std::uint64_t published = 0;
  std::uint64_t expected = 0;
  std::uint64_t delivered = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t unexpected = 0;
  double active_s = 0;
  double broker_cpu_s = 0;
  double loadgen_cpu_s = 0;
  std::uint64_t window_restarts = 0;
  error_counts errors;
};

// Writes what `c` has pending; false when the connection failed.
bool flush_out(int fd, std::string& out, std::size_t& off) {
  while (off < out.size()) {
    const auto n = ::send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
  out.clear();
  off = 0;
  return true;
}

subs_result subscriptions_once(const broker_process& broker, const options& o, std::size_t count) {
  subs_result r;
  const layout lay(count);
  std::vector<sub_client> clients(subscriber_clients);
  poller poll;
  const std::uint64_t pub_tag = subscriber_clients;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    clients[i].fd = mqtt_connect(broker.port(), "subs-" + std::to_string(i));
    set_nonblocking(clients[i].fd);
    poll.add(clients[i].fd, EPOLLIN | EPOLLOUT, i);
  }
  const int pub = mqtt_connect(broker.port(), "subs-pub");
  set_nonblocking(pub);
  poll.add(pub, 0, pub_tag);  // EPOLLOUT only while a batch waits
  for (std::size_t j = 0; j < count; ++j) {
    auto& c = clients[layout::client_of(j)];
    const auto id = static_cast<std::uint16_t>(c.subacks + 1);  // at most 65535 per client
    ++c.subacks;
    codec::encode(codec::subscribe{id, {{lay.filter(j), codec::qos_level::at_most_once}}}, c.out);
  }
  for (auto& c : clients)
    c.subacks = 0;

  std::size_t over = 0;  // clients window or more behind
  auto refresh = [&](sub_client& c) {
    const bool now_over = c.behind() >= o.window;
    if (now_over != c.over) {
      c.over = now_over;
      if (now_over) {
        ++over;
      } else {
        --over;
      }
    }
  };
  auto on_publish = [&](sub_client& c, std::string_view payload) {
    const auto seq = read_sequence(payload);
    if (!seq) {
      ++r.unexpected;
      return;
    }
    const auto s = static_cast<std::uint32_t>(*seq);
    std::size_t i = c.next;
    if (i >= c.expected.size() || c.expected[i] != s) {
      const auto it = std::lower_bound(c.expected.begin(), c.expected.end(), s);
      if (it == c.expected.end() || *it != s) {
        ++r.unexpected;
        return;
      }
      i = static_cast<std::size_t>(it - c.expected.begin());
    }
    if (c.got[i] != 0) {
      ++r.duplicates;
    } else {
      c.got[i] = 1;
      ++r.delivered;
    }
    c.next = std::max(c.next, i + 1);
    refresh(c);
  };
  std::size_t subacks_missing = count;
  auto last_arrival = steady::now();
  auto on_readable = [&](sub_client& c) {
    const bool open = read_available(c.fd, c.dec, std::size_t{64} * 1024);
    for (;;) {
      auto p = c.dec.next();
      if (!p) throw std::runtime_error("subscriber: undecodable packet");
      if (!*p) break;
      if (const auto* m = std::get_if<codec::publish>(&**p)) {
        on_publish(c, m->payload);
      } else if (const auto* s = std::get_if<codec::suback>(&**p)) {
        for (const auto rc : s->return_codes) {
          --subacks_missing;
          if (rc == codec::suback_return_code::failure) ++r.refused;
        }
      }
      last_arrival = steady::now();
    }
    if (!open) throw std::runtime_error("subscriber: connection closed by the broker");
  };

  // Subscribing: every SUBSCRIBE written at once, as fast as the broker reads them.
  const auto t_sub = steady::now();
  while (subacks_missing > 0) {
    if (steady::now() - last_arrival > io_limit) {
      throw std::runtime_error(std::to_string(subacks_missing) + " SUBACKs missing after 10 s");
    }
    for (const auto& e : poll.wait(20)) {
      if (e.data.u64 == pub_tag) continue;
      auto& c = clients[e.data.u64];
      if ((e.events & EPOLLOUT) != 0 && !c.out.empty()) {
        if (!flush_out(c.fd, c.out, c.out_off)) throw std::runtime_error("SUBSCRIBE not sent");
        if (c.out.empty()) poll.modify(c.fd, EPOLLIN, e.data.u64);
      }
      if ((e.events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) on_readable(c);
    }
  }
  r.subscribe_s = seconds_between(t_sub, steady::now());
  r.memory = process_memory(broker.pid());

  // Publishing.
  std::string topic;
  std::vector<std::size_t> to;
  std::string payload = sequenced_payload();
  std::string batch;
  std::size_t batch_off = 0;
  bool pub_writable = true;
  auto pub_progress = steady::now();
  const double broker_cpu0 = process_cpu_seconds(broker.pid());
  const double own_cpu0 = own_cpu_seconds();
  const auto t0 = steady::now();
  last_arrival = t0;
  while (r.published < o.messages || !batch.empty()) {
    // Fill a batch while no subscriber is a window behind.
    while (batch.size() < batch_bytes && r.published < o.messages && over == 0) {
      const auto k = r.published++;
      lay.message(k, topic, to);
      for (const auto ci : to) {
        auto& c = clients[ci];
        c.expected.push_back(static_cast<std::uint32_t>(k));
        c.got.push_back(0);
        r.expected += 1;
        refresh(c);
      }
      write_sequence(payload, k);
      codec::encode_publish(batch, topic, payload, codec::qos_level::at_most_once, false, false, 0);
    }
    if (pub_writable && !batch.empty()) {
      const auto before = batch_off;
      if (!flush_out(pub, batch, batch_off)) throw std::runtime_error("publisher: send failed");
      if (batch_off != before || batch.empty()) pub_progress = steady::now();
      if (!batch.empty()) {
        pub_writable = false;
        poll.modify(pub, EPOLLOUT, pub_tag);
      }
    }
    const bool can_fill = batch.empty() && over == 0 && r.published < o.messages;
    for (const auto& e : poll.wait(can_fill ? 0 : 10)) {
      if (e.data.u64 == pub_tag) {
        pub_writable = true;
        poll.modify(pub, 0, pub_tag);
        continue;
      }
      on_readable(clients[e.data.u64]);
    }
    const auto now = steady::now();
    if (!batch.empty() && now - pub_progress > io_limit) {
      r.errors.add("the broker read nothing from the publisher for 10 s");
      break;
    }
    if (over > 0 && now - last_arrival > quiet_limit) {
      // Nothing arrives for the subscribers a window behind: the rest of their window is lost.
      for (auto& c : clients) {
        c.floor = c.expected.size();
        refresh(c);
      }
      ++r.window_restarts;
      last_arrival = now;
    }
  }
  // Every expected delivery arrives, or nothing has arrived for stall_limit.
  while (r.delivered < r.expected && steady::now() - last_arrival < stall_limit) {
    for (const auto& e : poll.wait(20)) {
      if (e.data.u64 != pub_tag) on_readable(clients[e.data.u64]);
    }
  }
  r.broker_cpu_s = process_cpu_seconds(broker.pid()) - broker_cpu0;
  r.loadgen_cpu_s = own_cpu_seconds() - own_cpu0;
  r.active_s = seconds_between(t0, last_arrival);
  mqtt_close(pub);
  for (auto& c : clients)
    mqtt_close(c.fd);
  return r;
}

int run_subscriptions(const options& o, const cpu_plan& cpus) {
  std::printf(
      "subscriptions: held by %zu clients (70 %% exact, 20 %% dev/+/x<i>, 10 %% dev/<i>/#), "
      "then %zu QoS0 64 B messages, window %zu; %s\n\n",
      subscriber_clients, o.messages, o.window, cpus.note.c_str());
  std::printf("%-8s %-10s %4s %9s %8s %10s %10s %10s %10s %7s %6s %6s\n", "subs", "broker", "run",
              "sub s", "RSS MiB", "msgs/s", "brk us/msg", "gen us/msg", "delivered", "lost", "dup",
              "unexp");
  std::fflush(stdout);
  std::vector<std::string> failures;
  for (const auto count : o.counts) {
    const std::string scenario = std::to_string(count) + " subscriptions";
    std::vector<metrics> per_broker[2];
    for (std::size_t run = 1; run <= o.runs; ++run) {
      for (const auto kind : {broker_kind::eventbus, broker_kind::mosquitto}) {
        subs_result r;
        try {
          const broker_process broker(kind, o, cpus);
          r = subscriptions_once(broker, o, count);
        } catch (const std::exception& e) {
          std::printf("%-8zu %-10s %4zu failed: %s\n", count, name_of(kind), run, e.what());
          failures.push_back(scenario + ", " + name_of(kind) + " run " + std::to_string(run) +
                             ": " + e.what());
          continue;
        }
        const auto lost = r.expected - std::min(r.expected, r.delivered);
        const auto published = static_cast<double>(r.published);
        const metrics m = {
            {"subscriptions", static_cast<double>(count)},
            {"subscribe_seconds", r.subscribe_s},
            {"msgs_per_s", r.active_s > 0 ? published / r.active_s : 0},
            {"broker_us_per_msg", r.published > 0 ? r.broker_cpu_s * 1e6 / published : 0},
            {"loadgen_us_per_msg",
             r.delivered > 0 ? r.loadgen_cpu_s * 1e6 / static_cast<double>(r.delivered) : 0},
            {"sent", published},
            {"expected", static_cast<double>(r.expected)},
            {"delivered", static_cast<double>(r.delivered)},
            {"lost", static_cast<double>(lost)},
            {"duplicates", static_cast<double>(r.duplicates)},
            {"unexpected", static_cast<double>(r.unexpected)},
            {"refused", static_cast<double>(r.refused)},
            {"rss_kib", static_cast<double>(r.memory.vm_rss_kib)},
            {"anon_kib", static_cast<double>(r.memory.rss_anon_kib)},
        };
        std::string note = cpus.note;
        if (r.refused != 0) note += "; " + std::to_string(r.refused) + " subscriptions refused";
        if (r.window_restarts != 0) {
          note += "; window restarted " + std::to_string(r.window_restarts) + " times";
        }
        if (!r.errors.empty()) note += "; " + r.errors.text();
        std::printf(
            "%-8zu %-10s %4zu %9.3f %8.1f %10.0f %10.2f %10.2f %10llu %7llu %6llu %6llu\n", count,
            name_of(kind), run, r.subscribe_s, static_cast<double>(r.memory.vm_rss_kib) / 1024.0,
            *metric(m, "msgs_per_s"), *metric(m, "broker_us_per_msg"),
            *metric(m, "loadgen_us_per_msg"), static_cast<unsigned long long>(r.delivered),
            static_cast<unsigned long long>(lost), static_cast<unsigned long long>(r.duplicates),
            static_cast<unsigned long long>(r.unexpected));
        if (note != cpus.note) std::printf("         %s\n", note.c_str());
        std::fflush(stdout);
        append_json(o.json, "subscriptions", scenario, kind, run, m, note);
        per_broker[kind == broker_kind::eventbus ? 0 : 1].push_back(m);
      }
    }
    print_summary(scenario,
                  {"subscribe_seconds", "rss_kib", "msgs_per_s", "broker_us_per_msg", "lost"},
                  per_broker[0], per_broker[1]);
    std::printf("\n");
  }
  return report_failures(failures);
}

constexpr const char* usage =
    "usage: churn_compare churn [--seconds S] [--concurrency C] [--runs R] [--json FILE]\n"
    "       churn_compare subscriptions [--counts 10000,100000] [--messages M] [--runs R]\n"
    "                     [--json FILE]\n"
    "       (both: [--window W] [--mosquitto PATH] [--server PATH])\n";

int run(int argc, char** argv) {
  if (argc < 2 ||
      (std::string_view(argv[1]) != "churn" && std::string_view(argv[1]) != "subscriptions")) {
    std::fputs(usage, stderr);
    return 2;
  }
  const std::string command = argv[1];
  options o;
  parse_options(argc - 1, argv + 1, [&](const std::string& key, const std::string& value) {
    if (key == "--seconds") {
      o.seconds = std::stod(value);
    } else if (key == "--concurrency") {
      o.concurrency = std::stoul(value);
    } else if (key == "--runs") {
      o.runs = std::stoul(value);
    } else if (key == "--window") {
      o.window = std::stoul(value);
    } else if (key == "--counts") {
      o.counts = parse_counts(value);
    } else if (key == "--messages") {
      o.messages = std::stoul(value);
    } else if (key == "--json") {
      o.json = value;
    } else if (key == "--mosquitto") {
      o.mosquitto = value;
    } else if (key == "--server") {
      o.server = value;
    } else {
      return false;
    }
    return true;
  });
  if (o.seconds <= 0 || o.concurrency == 0 || o.runs == 0 || o.window == 0 || o.messages == 0 ||
      o.messages > 0xffffffffu) {
    throw std::runtime_error(
        "--seconds, --concurrency, --runs, --window and --messages must be "
        "positive (--messages below 2^32)");
  }
  for (const auto c : o.counts) {
    if (c < 1000 || c % subscriber_clients != 0) {
      throw std::runtime_error("--counts: each at least 1000 and a multiple of 100");
    }
  }
  raise_open_file_limit();
  const cpu_plan cpus = plan_cpus();
  if (cpus.loadgen) pin_self(*cpus.loadgen);
  return command == "churn" ? run_churn(o, cpus) : run_subscriptions(o, cpus);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "churn_compare: %s\n", e.what());
    return 1;
  }
}
