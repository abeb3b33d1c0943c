// Throughput matrix and end-to-end latency of the embedded broker (broker_server, at the
// daemon's defaults) against Debian's mosquitto (one loopback listener, every limit at its
// default), each started fresh for every run, driven by the same load generator:
//
//   scenario_compare throughput [--messages N] [--runs R] [--window W] [--json FILE]
//                               [--only SUBSTRING] [--broker-cpus LIST] [--mosquitto PATH]
//                               [--server PATH]
//   scenario_compare latency [--rates 5000,50000] [--seconds S] [--runs R] [--json FILE]
//                            [--only SUBSTRING] [--broker-cpus LIST] [--subscriber-cpu same|any]
//                            [--timer-slack-us US] [--mosquitto PATH] [--server PATH]
//
// For r in 1..R, each scenario runs on eventbus, then on mosquitto (--mosquitto none: eventbus
// alone, to compare two --server builds or to profile one). --only keeps the scenarios whose
// name contains SUBSTRING ("QoS2", "100->100", "4 KB", "50000/s").
//
// throughput: {1->1, 8->1 (one subscriber on perf/+/data), 1->8, 100->100 (publisher i to its own
// subscriber on perf/i/data)} x {QoS 0, 1, 2} x {64 B, 4 KB}. Publish and subscription QoS are
// equal. Each publisher stays at most W messages (1000: mosquitto's max_queued_messages) ahead
// of every subscriber it feeds, counted from the highest sequence number that subscriber has
// received from it, so that a hole does not stall it; once nothing has arrived for 250 ms, what
// it sent is taken as lost and its window restarts (burst_compare's pacer). QoS 2 publishers keep
// at most 20 messages unreleased (paho's and mosquitto's client default: mosquitto acknowledges,
// then drops, a QoS 2 publish beyond its max_inflight_messages). Losses and duplicates are
// counted per subscriber from the per-publisher sequence numbers in the payloads. --messages N
// sets the messages published per run (all publishers together) in every scenario; by default
// each scenario has its own count (throughput_matrix()). The whole load generator is one
// thread: non-blocking sockets in one epoll loop, publishes written in batches of up to 64 KiB,
// every read up to 64 KiB, acknowledgements written once per read. msgs_per_s counts distinct
// deliveries from the first send to the last delivery; a run ends when everything sent is
// delivered and acknowledged, 500 ms after the last progress once all is sent, or 2 s after
// the last progress at all (with a note).
//
// latency: 1->1, 64 B, QoS 0 and QoS 1, at each rate. The publisher sends on a fixed schedule,
// sleeping with clock_nanosleep on absolute deadlines and writing every message that is due in
// one write when it wakes late (at the default timer slack of 50 us, 2 or 3 at 50000/s); each
// payload carries its send time (CLOCK_MONOTONIC). The subscriber is a second thread, on the
// load generator's CPU (same, the default: as cheap as any, and it leaves the broker's CPU
// alone) or on any CPU (any), and stamps each read once. The first 0.5 s are not counted, in
// the latencies or in the CPU figures.
//
// The broker may use the CPUs of --broker-cpus (default 0; the child inherits the affinity set
// around its start), the load generator stays on the last CPU this process may use; with one
// CPU nothing is pinned. Results: a table on stdout and, with --json, one JSON object per
// measured run appended to FILE (group "throughput" or "latency"; the CPUs are in "note").
// Broker CPU is utime + stime from /proc (clock ticks), the load generator's from getrusage;
// *_cpu_util is that CPU time over the run's duration, in CPUs.
//
// Exit status: 2 when eventbus lost or duplicated a message, or a run failed; 1 on an error.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
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

constexpr std::int64_t ns_per_s = 1'000'000'000;
constexpr std::int64_t ns_per_ms = 1'000'000;

std::int64_t mono_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * ns_per_s + ts.tv_nsec;
}

// --- CPUs ----------------------------------------------------------------------------------------

std::vector<int> own_allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) throw std::runtime_error("sched_getaffinity");
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

// "0", "0,1", "0-3,6".
std::vector<int> parse_cpu_list(std::string_view text) {
  std::vector<int> cpus;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string item(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const auto dash = item.find('-');
    const int first = std::stoi(item.substr(0, dash));
    const int last = dash == std::string::npos ? first : std::stoi(item.substr(dash + 1));
    if (first < 0 || last < first || last >= CPU_SETSIZE) {
      throw std::runtime_error("bad CPU list item '" + item + "'");
    }
    for (int c = first; c <= last; ++c)
      cpus.push_back(c);
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  if (cpus.empty()) throw std::runtime_error("empty CPU list");
  return cpus;
}

std::string cpu_list_text(const std::vector<int>& cpus) {
  std::string s;
  for (const int c : cpus) {
    if (!s.empty()) s += ',';
    s += std::to_string(c);
  }
  return s;
}

// Affinity of the calling thread.
void pin_this_thread(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (const int c : cpus)
    CPU_SET(c, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) {
    throw std::runtime_error("cannot pin to CPUs " + cpu_list_text(cpus));
  }
}

struct placement {
  bool pinned = false;
  std::vector<int> all;     // CPUs this process may use
  std::vector<int> broker;  // CPUs the broker may use
  int loadgen = -1;         // the load generator's CPU
  std::string note;
};

placement plan_cpus(const std::string& broker_cpus) {
  const auto allowed = own_allowed_cpus();
  placement p;
  p.all = allowed;
  if (allowed.size() < 2) {
    p.note = "one CPU: nothing pinned";
    return p;
  }
  p.pinned = true;
  p.broker = parse_cpu_list(broker_cpus);
  for (const int c : p.broker) {
    if (!std::binary_search(allowed.begin(), allowed.end(), c)) {
      throw std::runtime_error("--broker-cpus: CPU " + std::to_string(c) + " is not available");
    }
  }
  p.loadgen = allowed.back();
  p.note = "broker CPUs " + cpu_list_text(p.broker) + ", load generator CPU " +
           std::to_string(p.loadgen);
  if (std::binary_search(p.broker.begin(), p.broker.end(), p.loadgen)) p.note += " (shared)";
  return p;
}

// --- the brokers ---------------------------------------------------------------------------------

enum class broker_kind { eventbus, mosquitto };

const char* name_of(broker_kind k) {
  return k == broker_kind::eventbus ? "eventbus" : "mosquitto";
}

struct programs {
  std::string server = std::string(EBUS_BENCH_DIR) + "/broker_server";
  std::string mosquitto = "/usr/sbin/mosquitto";  ///< "none": eventbus alone (A/B, profiling)
};

std::vector<broker_kind> brokers_to_run(const programs& prog) {
  if (prog.mosquitto == "none") return {broker_kind::eventbus};
  return {broker_kind::eventbus, broker_kind::mosquitto};
}

// A fresh broker on a free port, on the placement's broker CPUs: this thread takes those CPUs
// while it starts the child, which inherits them, and then goes back to its own.
class broker_process {
 public:
  broker_process(broker_kind kind, const programs& prog, const placement& where,
                 const std::filesystem::path& dir)
      : port_(free_port()) {
    std::vector<std::string> argv;
    const std::string stem = (dir / (std::string(name_of(kind)) + "-" + std::to_string(port_)));
    if (kind == broker_kind::mosquitto) {
      write_mosquitto_config(stem + ".conf", port_);
      argv = {prog.mosquitto, "-c", stem + ".conf"};
    } else {
      argv = {prog.server, std::to_string(port_)};
    }
    if (where.pinned) pin_this_thread(where.broker);
    try {
      pid_ = spawn(argv, stem + ".log");
    } catch (...) {
      if (where.pinned) pin_this_thread({where.loadgen});
      throw;
    }
    if (where.pinned) pin_this_thread({where.loadgen});
  }
  broker_process(const broker_process&) = delete;
  broker_process& operator=(const broker_process&) = delete;
  /// SIGTERM; SIGKILL after 5 s, so that a hung broker cannot hang the bench.
  ~broker_process() {
    if (reaped_) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 500; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] pid_t pid() const { return pid_; }

  /// Empty while the broker runs; how it ended otherwise.
  std::string exit_status() {
    if (!reaped_) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) != pid_) return {};
      reaped_ = true;
      status_ = WIFSIGNALED(st) ? "broker killed by signal " + std::to_string(WTERMSIG(st))
                                : "broker exited with status " + std::to_string(WEXITSTATUS(st));
    }
    return status_;
  }

 private:
  std::uint16_t port_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string status_;
};

// --- results ------------------------------------------------------------------------------------

using metrics = result_metrics;

double metric(const metrics& m, std::string_view name) {
  for (const auto& [k, v] : m)
    if (k == name) return v;
  return std::nan("");
}

// One JSON object per line, appended (bench/load_client.hpp: append_result).
class json_sink {
 public:
  explicit json_sink(std::string path) : path_(std::move(path)) {}
  void write(std::string_view group, std::string_view scenario, std::string_view broker, int run,
             const metrics& m, std::string_view note) {
    append_result(path_, group, scenario, broker, static_cast<std::size_t>(run), m, note);
  }

 private:
  std::string path_;
};

// The note for a run that lost or duplicated messages or failed: counts, `detail`, the errors.
std::string trouble_note(const std::string& scenario, broker_kind kind, int run, std::uint64_t lost,
                         std::uint64_t of, std::uint64_t duplicates,
                         const std::vector<std::string>& errors, const std::string& detail) {
  std::string line = scenario + ", " + name_of(kind) + " run " + std::to_string(run) + ": lost " +
                     std::to_string(lost) + " of " + std::to_string(of) + ", duplicates " +
                     std::to_string(duplicates) + detail;
  for (const auto& e : errors)
    line += "; " + e;
  return line;
}

double median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string ratio_text(double ours, double theirs) {
  if (!(ours > 0) || !(theirs > 0)) return "n/a";
  char text[32];
  std::snprintf(text, sizeof text, "%.2fx", ours / theirs);
  return text;
}

// --- payloads
// --------------------------------------------------------------------------------------

// Bytes 0-7: sequence number, 8-11: publisher index, 12-19: send time (latency only), all in host
// order (the load generator reads what it wrote); the rest is filler.
constexpr std::size_t header_bytes = 20;

void stamp_payload(std::string& p, std::uint64_t seq, std::uint32_t publisher, std::int64_t ns) {
  std::memcpy(p.data(), &seq, sizeof seq);
  std::memcpy(p.data() + 8, &publisher, sizeof publisher);
  std::memcpy(p.data() + 12, &ns, sizeof ns);
}

struct payload_header {
  std::uint64_t seq = 0;
  std::uint32_t publisher = 0;
  std::int64_t sent_ns = 0;
};

payload_header read_payload(std::string_view p) {
  payload_header h;
  std::memcpy(&h.seq, p.data(), sizeof h.seq);
  std::memcpy(&h.publisher, p.data() + 8, sizeof h.publisher);
  std::memcpy(&h.sent_ns, p.data() + 12, sizeof h.sent_ns);
  return h;
}

std::string topic_of(std::size_t publisher) {
  return "perf/" + std::to_string(publisher) + "/data";
}

// --- a non-blocking connection in the epoll loop -----------------------------------------------

constexpr std::size_t read_chunk = std::size_t{64} * 1024;

// send, recv and epoll_wait calls of the calling thread, for the load generator's own cost.
thread_local std::uint64_t io_calls = 0;

struct link {
  int fd = -1;
  codec::decoder dec;
  std::string out;  // bytes not yet written, from out_off
  std::size_t out_off = 0;
  bool polling_out = false;

  link() = default;
  link(const link&) = delete;
  link& operator=(const link&) = delete;
  ~link() {
    if (fd >= 0) {
      std::string bye;
      codec::encode(codec::disconnect{}, bye);
      (void)::send(fd, bye.data(), bye.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
    }
  }

  [[nodiscard]] bool idle() const { return out_off == out.size(); }
};

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

void watch(int ep, link& l, std::uint64_t tag, bool out) {
  epoll_event ev{};
  ev.events = EPOLLIN | (out ? EPOLLOUT : 0u);
  ev.data.u64 = tag;
  if (::epoll_ctl(ep, EPOLL_CTL_MOD, l.fd, &ev) != 0) throw std::runtime_error("epoll_ctl");
  l.polling_out = out;
}

// Writes what `l.out` holds, as far as the socket takes it; asks for EPOLLOUT for the rest.
void flush(int ep, link& l, std::uint64_t tag) {
  while (l.out_off < l.out.size()) {
    const auto n = ::send(l.fd, l.out.data() + l.out_off, l.out.size() - l.out_off, MSG_NOSIGNAL);
    ++io_calls;
    if (n > 0) {
      l.out_off += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!l.polling_out) watch(ep, l, tag, true);
      return;
    }
    throw std::runtime_error(std::string("send failed: ") + std::strerror(errno));
  }
  l.out.clear();
  l.out_off = 0;
  if (l.polling_out) watch(ep, l, tag, false);
}

// One read of up to 64 KiB into the decoder; false when nothing was there.
bool read_some(link& l) {
  for (;;) {
    auto space = l.dec.prepare(read_chunk);
    const auto n = ::recv(l.fd, space.data(), space.size(), 0);
    ++io_calls;
    if (n > 0) {
      l.dec.commit(static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0) throw std::runtime_error("connection closed by the broker");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    throw std::runtime_error(std::string("receive failed: ") + std::strerror(errno));
  }
}

std::optional<codec::packet> next_packet(link& l) {
  auto r = l.dec.next();
  if (!r) throw std::runtime_error("decode error: " + std::string(l.dec.error_detail()));
  if (!*r) return std::nullopt;
  return std::move(**r);
}

// CONNECT, then SUBSCRIBE and its SUBACK when `filter` is given, blocking; then non-blocking.
void open_link(link& l, std::uint16_t port, const std::string& id, const std::string& filter,
               codec::qos_level qos) {
  l.fd = mqtt_connect(port, id);
  set_send_timeout(l.fd, std::chrono::seconds(10));
  if (!filter.empty()) {
    std::string out;
    codec::encode(codec::subscribe{1, {{filter, qos}}}, out);
    send_all(l.fd, out);
    auto ack = read_packet(l.fd, l.dec);
    const auto* s = std::get_if<codec::suback>(&ack);
    if (s == nullptr || s->return_codes.empty() ||
        s->return_codes[0] == codec::suback_return_code::failure) {
      throw std::runtime_error("SUBSCRIBE " + filter + " refused");
    }
  }
  set_nonblocking(l.fd);
}

// ================================================================================================
// throughput
// ================================================================================================

enum class shape { one_to_one, fan_in, fan_out, pairs };

struct throughput_scenario {
  std::string name;
  shape form = shape::one_to_one;
  codec::qos_level qos = codec::qos_level::at_most_once;
  std::size_t payload = 64;
  std::uint64_t messages = 0;  // published per run, all publishers together
};

constexpr auto quiet_limit_ns = 250 * ns_per_ms;  // nothing arrived: the window's tail is lost
constexpr auto drain_limit_ns = 500 * ns_per_ms;  // all sent, nothing arrives any more
constexpr auto stall_limit_ns = 2 * ns_per_s;     // nothing moved at all: the run ends
constexpr std::size_t batch_bytes = std::size_t{64} * 1024;
// QoS 1 publishes not yet acknowledged, under the 65535 packet identifiers; the window bounds
// them long before in practice.
constexpr std::uint64_t max_unacked = 60000;
constexpr std::uint64_t qos2_unreleased = 20;

struct publisher_state {
  link l;
  std::string topic;
  std::string payload;
  std::uint32_t index = 0;
  std::uint64_t share = 0;  // messages to publish
  std::uint64_t next = 0;   // next sequence number; also the count sent
  std::uint64_t acked = 0;  // PUBACK (QoS 1) or PUBCOMP (QoS 2)
  std::uint64_t floor = 0;  // window restarted from here
  std::uint16_t id = 0;
  std::int64_t blocked_since = 0;                          // window-blocked since (0: not)
  std::vector<std::pair<std::size_t, std::size_t>> feeds;  // (subscriber, its slot for us)
};

struct subscriber_state {
  link l;
  std::vector<int> slot;                // per publisher: index into high/seen, -1 if not ours
  std::vector<std::uint64_t> high;      // per slot: one past the highest sequence received
  std::vector<std::vector<bool>> seen;  // per slot, per sequence
  std::vector<std::uint64_t> share;     // per slot
};

struct throughput_outcome {
  std::uint64_t sent = 0;
  std::uint64_t expected = 0;  // deliveries the messages sent should make
  std::uint64_t delivered = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t out_of_order = 0;
  std::uint64_t foreign = 0;
  std::uint64_t acked = 0;
  std::uint64_t window_restarts = 0;
  double active_s = 0;
  double broker_cpu_s = 0;
  double loadgen_cpu_s = 0;
  std::uint64_t io_calls = 0;  // the load generator's send, recv and epoll_wait calls
  std::vector<std::string> errors;

  [[nodiscard]] std::uint64_t lost() const { return expected - std::min(expected, delivered); }
};

class throughput_run {
 public:
  throughput_run(const throughput_scenario& s, std::size_t window) : s_(s), window_(window) {
    std::size_t pubs = 1;
    std::size_t subs = 1;
    switch (s.form) {
      case shape::one_to_one:
        break;
      case shape::fan_in:
        pubs = 8;
        break;
      case shape::fan_out:
        subs = 8;
        break;
      case shape::pairs:
        pubs = subs = 100;
        break;
    }
    pubs_ = std::vector<publisher_state>(pubs);  // links do not move: no resize()
    subs_ = std::vector<subscriber_state>(subs);
    for (std::size_t i = 0; i < pubs; ++i) {
      auto& p = pubs_[i];
      p.index = static_cast<std::uint32_t>(i);
      p.topic = topic_of(i);
      p.payload.assign(std::max(s.payload, header_bytes), 'p');
      p.share = s.messages / pubs + (i < s.messages % pubs ? 1 : 0);
    }
    auto feed = [&](std::size_t pub, std::size_t sub) {
      auto& st = subs_[sub];
      if (st.slot.empty()) st.slot.assign(pubs, -1);
      st.slot[pub] = static_cast<int>(st.high.size());
      st.high.push_back(0);
      st.seen.emplace_back(pubs_[pub].share, false);
      st.share.push_back(pubs_[pub].share);
      pubs_[pub].feeds.emplace_back(sub, static_cast<std::size_t>(st.slot[pub]));
    };
    for (std::size_t i = 0; i < pubs; ++i) {
      if (s.form == shape::pairs) {
        feed(i, i);
      } else {
        for (std::size_t j = 0; j < subs; ++j)
          feed(i, j);
      }
    }
    const bool acked = s.qos != codec::qos_level::at_most_once;
    unacked_limit_ = s.qos == codec::qos_level::exactly_once ? qos2_unreleased
                     : acked                                 ? max_unacked
                                                             : ~std::uint64_t{0};
    const std::size_t packet =
        codec::publish_size(pubs_[0].topic.size(), pubs_[0].payload.size(), s.qos);
    batch_msgs_ = std::max<std::size_t>(1, batch_bytes / packet);
    refill_ = std::clamp<std::uint64_t>(window_ / 4, 1, batch_msgs_);
  }

  throughput_outcome drive(broker_process& broker) {
    throughput_outcome r;
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) throw std::runtime_error("epoll_create1");
    try {
      connect_all(broker.port(), ep);
      loop(broker, ep, r);
    } catch (const std::exception& e) {
      r.errors.emplace_back(e.what());
    }
    ::close(ep);
    if (auto st = broker.exit_status(); !st.empty()) r.errors.push_back(st);
    return r;
  }

 private:
  static std::uint64_t pub_tag(std::size_t i) { return i * 2; }
  static std::uint64_t sub_tag(std::size_t j) { return j * 2 + 1; }

  void connect_all(std::uint16_t port, int ep) {
    for (std::size_t j = 0; j < subs_.size(); ++j) {
      std::string filter = s_.form == shape::fan_in  ? "perf/+/data"
                           : s_.form == shape::pairs ? topic_of(j)
                                                     : topic_of(0);
      open_link(subs_[j].l, port, "sc-sub-" + std::to_string(j), filter, s_.qos);
      add(ep, subs_[j].l, sub_tag(j));
    }
    for (std::size_t i = 0; i < pubs_.size(); ++i) {
      open_link(pubs_[i].l, port, "sc-pub-" + std::to_string(i), {}, s_.qos);
      add(ep, pubs_[i].l, pub_tag(i));
    }
  }

  static void add(int ep, link& l, std::uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, l.fd, &ev) != 0) throw std::runtime_error("epoll_ctl");
  }

  // One past the last message the window lets publisher `p` send: every subscriber it feeds
  // has received, or seen missing, up to W before it.
  [[nodiscard]] std::uint64_t window_end(const publisher_state& p) const {
    std::uint64_t end = ~std::uint64_t{0};
    for (const auto& [sub, slot] : p.feeds)
      end = std::min(end, std::max(subs_[sub].high[slot], p.floor) + window_);
    return std::min(end, p.share);
  }

  // Writes the batches publisher i may write now, until its window, its unacknowledged limit
  // or the socket is full. The window is refilled a quarter at a time, so that a publisher
  // writes batches instead of a message per freed slot; an unacknowledged slot is reused at
  // once, as a client library does. (mosquitto does not set TCP_NODELAY: its PUBCOMPs wait for
  // our ACK, which our next PUBLISH carries; a publisher that waited for 5 free slots would
  // wait for the 40 ms delayed ACK instead, about 200 messages/s.)
  void fill(int ep, std::size_t i, std::int64_t now) {
    while (fill_once(ep, i, now)) {
    }
  }

  bool fill_once(int ep, std::size_t i, std::int64_t now) {
    auto& p = pubs_[i];
    if (p.next >= p.share || !p.l.idle()) return false;
    const std::uint64_t win = window_end(p);
    const std::uint64_t acks = p.acked + unacked_limit_;
    const std::uint64_t window_room = win > p.next ? win - p.next : 0;
    if (acks <= p.next) {
      p.blocked_since = 0;
      return false;
    }
    if (window_room < std::min(refill_, p.share - p.next)) {
      if (p.blocked_since == 0) p.blocked_since = now;
      // The whole tail of the window was dropped: nothing will move it on.
      if (now - std::max(p.blocked_since, last_arrival_) > quiet_limit_ns) {
        p.floor = p.next;
        ++restarts_;
        p.blocked_since = 0;
      }
      return false;
    }
    const std::uint64_t room = std::min(window_room, acks - p.next);
    p.blocked_since = 0;
    const std::uint64_t end = p.next + std::min<std::uint64_t>(room, batch_msgs_);
    const bool acked = s_.qos != codec::qos_level::at_most_once;
    for (; p.next < end; ++p.next) {
      stamp_payload(p.payload, p.next, p.index, 0);
      std::uint16_t id = 0;
      if (acked) id = p.id = static_cast<std::uint16_t>(p.id == 65535 ? 1 : p.id + 1);
      codec::encode_publish(p.l.out, p.topic, p.payload, s_.qos, false, false, id);
    }
    flush(ep, p.l, pub_tag(i));
    return true;
  }

  void on_publisher(int ep, std::size_t i, std::int64_t now) {
    auto& p = pubs_[i];
    if (!read_some(p.l)) return;
    while (auto pk = next_packet(p.l)) {
      if (std::holds_alternative<codec::puback>(*pk) ||
          std::holds_alternative<codec::pubcomp>(*pk)) {
        ++p.acked;
        last_progress_ = now;
      } else if (const auto* rec = std::get_if<codec::pubrec>(&*pk)) {
        codec::encode(codec::pubrel{rec->packet_id}, p.l.out);
      }
    }
    if (!p.l.out.empty() && !p.l.polling_out) flush(ep, p.l, pub_tag(i));
  }

  void on_subscriber(int ep, std::size_t j, std::int64_t now) {
    auto& s = subs_[j];
    if (!read_some(s.l)) return;
    while (auto pk = next_packet(s.l)) {
      if (auto* m = std::get_if<codec::publish>(&*pk)) {
        record(s, *m, now);
        if (m->qos == codec::qos_level::at_least_once) {
          codec::encode(codec::puback{m->packet_id}, s.l.out);
        } else if (m->qos == codec::qos_level::exactly_once) {
          codec::encode(codec::pubrec{m->packet_id}, s.l.out);
        }
      } else if (const auto* rel = std::get_if<codec::pubrel>(&*pk)) {
        codec::encode(codec::pubcomp{rel->packet_id}, s.l.out);
      }
    }
    if (!s.l.out.empty() && !s.l.polling_out) flush(ep, s.l, sub_tag(j));
  }

  void record(subscriber_state& s, const codec::publish& m, std::int64_t now) {
    if (m.payload.size() != pubs_[0].payload.size()) {
      ++foreign_;
      return;
    }
    const auto h = read_payload(m.payload);
    if (h.publisher >= pubs_.size() || s.slot[h.publisher] < 0) {
      ++foreign_;
      return;
    }
    const auto slot = static_cast<std::size_t>(s.slot[h.publisher]);
    if (h.seq >= s.share[slot]) {
      ++foreign_;
      return;
    }
    if (s.seen[slot][h.seq]) {
      ++duplicates_;
    } else {
      s.seen[slot][h.seq] = true;
      if (h.seq < s.high[slot]) ++out_of_order_;
      ++delivered_;
    }
    s.high[slot] = std::max(s.high[slot], h.seq + 1);
    last_arrival_ = last_progress_ = now;
  }

  void loop(broker_process& broker, int ep, throughput_outcome& r) {
    const double cpu_before = process_cpu_seconds(broker.pid());
    const double own_before = own_cpu_seconds();
    const std::uint64_t io_before = io_calls;
    const std::int64_t start = mono_ns();
    last_progress_ = last_arrival_ = start;
    try {
      run_until_done(broker, ep, r);
    } catch (const std::exception& e) {
      r.errors.emplace_back(e.what());
    }
    r.broker_cpu_s = process_cpu_seconds(broker.pid()) - cpu_before;
    r.loadgen_cpu_s = own_cpu_seconds() - own_before;
    r.io_calls = io_calls - io_before;
    for (const auto& p : pubs_) {
      r.sent += p.next;
      r.expected += p.next * p.feeds.size();
      r.acked += p.acked;
    }
    r.delivered = delivered_;
    r.duplicates = duplicates_;
    r.out_of_order = out_of_order_;
    r.foreign = foreign_;
    r.window_restarts = restarts_;
    r.active_s = static_cast<double>(last_arrival_ - start) * 1e-9;
    if (foreign_ != 0) r.errors.push_back(std::to_string(foreign_) + " messages not from this run");
  }

  // Until everything sent has been delivered and acknowledged, or nothing arrives any more.
  void run_until_done(broker_process& broker, int ep, throughput_outcome& r) {
    std::vector<epoll_event> events(pubs_.size() + subs_.size());
    std::int64_t all_sent_at = 0;
    std::int64_t checked_at = mono_ns();
    for (;;) {
      std::int64_t now = mono_ns();
      for (std::size_t i = 0; i < pubs_.size(); ++i)
        fill(ep, i, now);
      const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 5);
      ++io_calls;
      if (n < 0 && errno != EINTR) throw std::runtime_error("epoll_wait failed");
      now = mono_ns();
      for (int e = 0; e < n; ++e) {
        const auto& ev = events[static_cast<std::size_t>(e)];
        const auto tag = ev.data.u64;
        const auto idx = static_cast<std::size_t>(tag / 2);
        auto& l = tag % 2 == 0 ? pubs_[idx].l : subs_[idx].l;
        if ((ev.events & EPOLLOUT) != 0) flush(ep, l, tag);
        if ((ev.events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) {
          if (tag % 2 == 0) {
            on_publisher(ep, idx, now);
          } else {
            on_subscriber(ep, idx, now);
          }
        }
      }

      std::uint64_t sent = 0;
      std::uint64_t expected = 0;
      std::uint64_t acked = 0;
      bool all_sent = true;
      for (const auto& p : pubs_) {
        sent += p.next;
        expected += p.next * p.feeds.size();
        acked += p.acked;
        all_sent = all_sent && p.next == p.share && p.l.idle();
      }
      const bool acks_done = s_.qos == codec::qos_level::at_most_once || acked >= sent;
      if (all_sent && all_sent_at == 0) all_sent_at = now;
      if (all_sent && delivered_ >= expected && acks_done) return;
      if (all_sent && now - std::max(all_sent_at, last_progress_) > drain_limit_ns) return;
      if (now - last_progress_ > stall_limit_ns) {
        r.errors.push_back("nothing arrived for 2 s with " + std::to_string(sent) + " of " +
                           std::to_string(s_.messages) + " sent: run ended");
        return;
      }
      if (now - checked_at > 100 * ns_per_ms) {
        if (!broker.exit_status().empty()) return;
        checked_at = now;
      }
    }
  }

  const throughput_scenario& s_;
  std::uint64_t window_;
  std::uint64_t unacked_limit_ = 0;
  std::size_t batch_msgs_ = 1;
  std::uint64_t refill_ = 1;
  std::vector<publisher_state> pubs_;
  std::vector<subscriber_state> subs_;
  std::uint64_t delivered_ = 0;
  std::uint64_t duplicates_ = 0;
  std::uint64_t out_of_order_ = 0;
  std::uint64_t foreign_ = 0;
  std::uint64_t restarts_ = 0;
  std::int64_t last_arrival_ = 0;
  std::int64_t last_progress_ = 0;
};

// Messages published per run, sized on a 2-core VM so that mosquitto's run takes about 2-3 s and
// eventbus's at least about 0.15 s (0.3-1 s for most), the matrix with 3 runs 3-7 minutes
// depending on what else the machine runs.
std::vector<throughput_scenario> throughput_matrix() {
  using q = codec::qos_level;
  struct form_row {
    const char* name;
    shape form;
    std::uint64_t small[3];  // 64 B, QoS 0, 1, 2
    std::uint64_t large[3];  // 4 KB
  };
  const form_row forms[] = {
      {"1->1", shape::one_to_one, {400000, 90000, 30000}, {100000, 60000, 15000}},
      {"8->1", shape::fan_in, {400000, 60000, 60000}, {180000, 50000, 60000}},
      {"1->8", shape::fan_out, {75000, 40000, 18000}, {40000, 20000, 15000}},
      {"100->100", shape::pairs, {240000, 150000, 70000}, {120000, 64000, 40000}},
  };

  std::vector<throughput_scenario> out;
  for (const auto& f : forms) {
    for (const std::size_t payload : {std::size_t{64}, std::size_t{4096}}) {
      for (const q qos : {q::at_most_once, q::at_least_once, q::exactly_once}) {
        const auto level = static_cast<std::size_t>(qos);
        throughput_scenario s;
        s.form = f.form;
        s.qos = qos;
        s.payload = payload;
        s.messages = payload == 64 ? f.small[level] : f.large[level];
        s.name = std::string(f.name) + " QoS" + std::to_string(level) +
                 (payload == 64 ? " 64 B" : " 4 KB");
        out.push_back(std::move(s));
      }
    }
  }
  return out;
}

int run_throughput(int argc, char** argv) {
  std::optional<std::uint64_t> messages;
  int runs = 3;
  std::size_t window = 1000;
  std::string json_path;
  std::string only;
  std::string broker_cpus = "0";
  programs prog;
  parse_options(argc, argv, [&](const std::string& key, const std::string& value) {
    if (key == "--messages") {
      messages = std::stoull(value);
    } else if (key == "--runs") {
      runs = std::stoi(value);
    } else if (key == "--window") {
      window = std::stoul(value);
    } else if (key == "--json") {
      json_path = value;
    } else if (key == "--only") {
      only = value;
    } else if (key == "--broker-cpus") {
      broker_cpus = value;
    } else if (key == "--mosquitto") {
      prog.mosquitto = value;
    } else if (key == "--server") {
      prog.server = value;
    } else {
      return false;
    }
    return true;
  });
  if (messages == 0u || runs <= 0 || window == 0) {
    throw std::runtime_error("--messages, --runs and --window must be positive");
  }
  raise_open_file_limit();
  const placement where = plan_cpus(broker_cpus);
  if (where.pinned) pin_this_thread({where.loadgen});
  json_sink json(json_path);
  temp_dir dir("ebus-scenario-compare");

  std::vector<throughput_scenario> matrix;
  for (auto& s : throughput_matrix()) {
    if (!only.empty() && s.name.find(only) == std::string::npos) continue;
    if (messages) s.messages = *messages;
    matrix.push_back(std::move(s));
  }
  const std::string note_base = where.note + "; window " + std::to_string(window) +
                                "; QoS 2 publishers at most 20 unreleased";
  std::printf(
      "eventbus: broker_server at the daemon defaults; mosquitto: %s, one listener, defaults\n"
      "%s; %d run(s) each, alternating, a fresh broker per run\n"
      "msgs/s: distinct messages delivered per second, first send to last delivery; us/msg: CPU "
      "per delivered message\n\n",
      prog.mosquitto.c_str(), note_base.c_str(), runs);
  std::printf("%-22s %-9s %3s %9s %9s %7s %5s %10s %9s %9s\n", "scenario", "broker", "run", "sent",
              "delivered", "lost", "dup", "msgs/s", "broker_us", "loadgen_us");
  std::fflush(stdout);

  struct summary {
    std::string name;
    std::map<std::string, std::vector<metrics>> by_broker;
  };
  std::vector<summary> summaries;
  bool failed = false;
  std::vector<std::string> notes;
  const auto started = mono_ns();
  for (const auto& s : matrix) {
    summary sum{s.name, {}};
    for (int r = 1; r <= runs; ++r) {
      for (const auto kind : brokers_to_run(prog)) {
        throughput_outcome o;
        {
          broker_process broker(kind, prog, where, dir.path);
          throughput_run run(s, window);
          o = run.drive(broker);
        }
        const double delivered = static_cast<double>(o.delivered);
        const metrics m = {
            {"sent", static_cast<double>(o.sent)},
            {"expected", static_cast<double>(o.expected)},
            {"delivered", delivered},
            {"lost", static_cast<double>(o.lost())},
            {"duplicates", static_cast<double>(o.duplicates)},
            {"out_of_order", static_cast<double>(o.out_of_order)},
            {"msgs_per_s", o.active_s > 0 ? delivered / o.active_s : 0},
            {"broker_us_per_msg", o.delivered > 0 ? o.broker_cpu_s * 1e6 / delivered : 0},
            {"loadgen_us_per_msg", o.delivered > 0 ? o.loadgen_cpu_s * 1e6 / delivered : 0},
            {"seconds", o.active_s},
            // Share of one CPU: a load generator near 1 would be the bottleneck.
            {"broker_cpu_util", o.active_s > 0 ? o.broker_cpu_s / o.active_s : 0},
            {"loadgen_cpu_util", o.active_s > 0 ? o.loadgen_cpu_s / o.active_s : 0},
            {"loadgen_syscalls_per_msg",
             o.delivered > 0 ? static_cast<double>(o.io_calls) / delivered : 0},
            {"window_restarts", static_cast<double>(o.window_restarts)},
            {"payload_bytes", static_cast<double>(s.payload)},
        };
        std::string note = note_base;
        for (const auto& e : o.errors)
          note += "; " + e;
        if (o.window_restarts != 0) {
          note += "; window restarted " + std::to_string(o.window_restarts) +
                  " times after 250 ms with nothing arriving";
        }
        json.write("throughput", s.name, name_of(kind), r, m, note);
        std::printf("%-22s %-9s %3d %9llu %9llu %7llu %5llu %10.0f %9.2f %9.2f\n", s.name.c_str(),
                    name_of(kind), r, static_cast<unsigned long long>(o.sent),
                    static_cast<unsigned long long>(o.delivered),
                    static_cast<unsigned long long>(o.lost()),
                    static_cast<unsigned long long>(o.duplicates), metric(m, "msgs_per_s"),
                    metric(m, "broker_us_per_msg"), metric(m, "loadgen_us_per_msg"));
        std::fflush(stdout);
        if (o.lost() != 0 || o.duplicates != 0 || !o.errors.empty()) {
          std::string detail;
          if (s.qos != codec::qos_level::at_most_once) {
            detail += ", broker acknowledged " + std::to_string(o.acked) + " of " +
                      std::to_string(o.sent) + " to the publishers";
          }
          if (o.window_restarts != 0) {
            detail += ", window restarted " + std::to_string(o.window_restarts) + " times";
          }
          notes.push_back(
              trouble_note(s.name, kind, r, o.lost(), o.expected, o.duplicates, o.errors, detail));
          if (kind == broker_kind::eventbus) failed = true;
        }
        sum.by_broker[name_of(kind)].push_back(m);
      }
    }
    summaries.push_back(std::move(sum));
  }
  const double took = static_cast<double>(mono_ns() - started) * 1e-9;

  std::printf("\nmedians over %d run(s); ratio = eventbus / mosquitto\n", runs);
  std::printf("%-22s %11s %11s %7s %9s %9s %7s %9s %9s %11s\n", "scenario", "eb msgs/s",
              "mq msgs/s", "ratio", "eb us/msg", "mq us/msg", "ratio", "eb lg_us", "mq lg_us",
              "lost eb/mq");
  for (const auto& sum : summaries) {
    // A broker that did not run (--mosquitto none) has no runs: its figures read 0.
    auto runs_of = [&](const char* broker) -> const std::vector<metrics>& {
      static const std::vector<metrics> none;
      const auto it = sum.by_broker.find(broker);
      return it == sum.by_broker.end() ? none : it->second;
    };
    auto med = [&](const char* broker, const char* name) {
      std::vector<double> v;
      for (const auto& m : runs_of(broker))
        v.push_back(metric(m, name));
      return v.empty() ? 0.0 : median(v);
    };
    auto total = [&](const char* broker, const char* name) {
      double t = 0;
      for (const auto& m : runs_of(broker))
        t += metric(m, name);
      return t;
    };
    const double eb = med("eventbus", "msgs_per_s");
    const double mq = med("mosquitto", "msgs_per_s");
    const double ebc = med("eventbus", "broker_us_per_msg");
    const double mqc = med("mosquitto", "broker_us_per_msg");
    char lost[32];
    std::snprintf(lost, sizeof lost, "%.0f/%.0f", total("eventbus", "lost"),
                  total("mosquitto", "lost"));
    std::printf("%-22s %11.0f %11.0f %7s %9.2f %9.2f %7s %9.2f %9.2f %11s\n", sum.name.c_str(), eb,
                mq, ratio_text(eb, mq).c_str(), ebc, mqc, ratio_text(ebc, mqc).c_str(),
                med("eventbus", "loadgen_us_per_msg"), med("mosquitto", "loadgen_us_per_msg"),
                lost);
  }
  std::printf("\n%zu scenario(s) in %.0f s. Broker CPU from /proc in %ld ms ticks.\n",
              matrix.size(), took, 1000 / ::sysconf(_SC_CLK_TCK));
  if (!notes.empty()) {
    std::printf("\nNOTES:\n");
    for (const auto& n : notes)
      std::printf("  %s\n", n.c_str());
  }
  if (failed) std::printf("\nFAIL: eventbus lost or duplicated messages, or a run failed\n");
  return failed ? 2 : 0;
}

// ================================================================================================
// latency
// ================================================================================================

constexpr std::int64_t warmup_ns = 500 * ns_per_ms;
constexpr std::size_t latency_payload = 64;

struct latency_outcome {
  std::uint64_t sent = 0;      // counted (after the warm-up)
  std::uint64_t received = 0;  // counted, distinct
  std::uint64_t duplicates = 0;
  std::uint64_t writes = 0;
  std::vector<std::int64_t> latencies_ns;
  double broker_cpu_s = 0;
  double loadgen_cpu_s = 0;
  std::vector<std::string> errors;

  [[nodiscard]] std::uint64_t lost() const { return sent - std::min(sent, received); }
};

// Writes all of `bytes` to a non-blocking socket, waiting in poll() at most 10 s for room.
void write_all(int fd, const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    const auto n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 10000) == 0) throw std::runtime_error("no room to write for 10 s");
      continue;
    }
    throw std::runtime_error(std::string("send failed: ") + std::strerror(errno));
  }
}

// The subscriber's thread: reads up to 64 KiB at a time (a blocking read with a 20 ms timeout),
// stamps each read once, acknowledges what one read brought in one write.
class latency_subscriber {
 public:
  /// Connects and subscribes; start() starts the thread.
  latency_subscriber(std::uint16_t port, codec::qos_level qos, std::uint64_t total)
      : seen_(total, false) {
    open_link(l_, port, "sc-lat-sub", topic_of(0), qos);
    // A blocking read wakes the thread once per arrival, one call instead of poll() + recv();
    // the timeout lets it see stop().
    ::fcntl(l_.fd, F_SETFL, ::fcntl(l_.fd, F_GETFL) & ~O_NONBLOCK);
    timeval tv{0, 20000};
    ::setsockopt(l_.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    latencies_.reserve(total);
  }
  latency_subscriber(const latency_subscriber&) = delete;
  latency_subscriber& operator=(const latency_subscriber&) = delete;
  ~latency_subscriber() { stop(); }

  /// Counts the messages sent from `count_from_ns` on.
  void start(std::int64_t count_from_ns, const std::vector<int>& cpus) {
    count_from_ns_ = count_from_ns;
    thread_ = std::thread([this, cpus] {
      try {
        pin_this_thread(cpus);
        loop();
      } catch (const std::exception& e) {
        if (!stop_.load()) error_ = e.what();
      }
      done_.store(true);
    });
  }

  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] std::uint64_t counted() const { return counted_.load(std::memory_order_acquire); }
  [[nodiscard]] std::int64_t last_arrival() const { return last_arrival_.load(); }
  /// The thread ended: it failed, or was stopped.
  [[nodiscard]] bool done() const { return done_.load(); }
  // After stop():
  [[nodiscard]] std::vector<std::int64_t>& latencies() { return latencies_; }
  [[nodiscard]] std::uint64_t duplicates() const { return duplicates_; }
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  void loop() {
    while (!stop_.load(std::memory_order_relaxed)) {
      if (read_some(l_)) {
        const std::int64_t now = mono_ns();
        std::uint64_t counted = 0;
        while (auto pk = next_packet(l_)) {
          if (auto* m = std::get_if<codec::publish>(&*pk)) {
            if (m->payload.size() == latency_payload) {
              const auto h = read_payload(m->payload);
              if (h.seq < seen_.size() && seen_[h.seq]) {
                ++duplicates_;
              } else if (h.seq < seen_.size()) {
                seen_[h.seq] = true;
                if (h.sent_ns >= count_from_ns_) {
                  latencies_.push_back(now - h.sent_ns);
                  ++counted;
                }
              }
            }
            if (m->qos == codec::qos_level::at_least_once) {
              codec::encode(codec::puback{m->packet_id}, l_.out);
            }
          }
        }
        if (!l_.out.empty()) {
          write_all(l_.fd, l_.out);
          l_.out.clear();
        }
        counted_.fetch_add(counted, std::memory_order_release);
        last_arrival_.store(now);
      }
    }
  }

  link l_;
  std::vector<bool> seen_;
  std::int64_t count_from_ns_ = 0;
  std::vector<std::int64_t> latencies_;
  std::uint64_t duplicates_ = 0;
  std::atomic<std::uint64_t> counted_{0};
  std::atomic<std::int64_t> last_arrival_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  std::string error_;
  std::thread thread_;
};

latency_outcome latency_once(broker_process& broker, codec::qos_level qos, std::uint64_t rate,
                             double seconds, const std::vector<int>& sub_cpus) {
  latency_outcome r;
  const auto total = static_cast<std::uint64_t>(static_cast<double>(rate) * (0.5 + seconds) + 0.5);
  latency_subscriber sub(broker.port(), qos, total);
  link pub;
  open_link(pub, broker.port(), "sc-lat-pub", {}, qos);
  const std::int64_t start = mono_ns() + 5 * ns_per_ms;  // once the subscriber's thread runs
  const std::int64_t count_from = start + warmup_ns;
  sub.start(count_from, sub_cpus);
  const bool acked = qos != codec::qos_level::at_most_once;
  // CPU is counted from the end of the warm-up.
  double cpu_before = 0;
  double own_before = 0;
  const std::string topic = topic_of(0);
  std::string payload(latency_payload, 'p');
  std::string batch;
  std::uint16_t id = 0;
  std::int64_t acks_read_at = 0;
  try {
    std::uint64_t next = 0;
    while (next < total && !sub.done()) {
      const std::int64_t deadline =
          start + static_cast<std::int64_t>(next * static_cast<std::uint64_t>(ns_per_s) / rate);
      timespec ts{static_cast<time_t>(deadline / ns_per_s), static_cast<long>(deadline % ns_per_s)};
      while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
      }
      const std::int64_t now = mono_ns();
      if (now >= count_from && r.sent == 0) {
        cpu_before = process_cpu_seconds(broker.pid());
        own_before = own_cpu_seconds();
      }
      // Everything due by now, in one write.
      const auto due = static_cast<std::uint64_t>(now - start) * rate / ns_per_s + 1;
      const std::uint64_t end = std::min(total, std::max(due, next + 1));
      batch.clear();
      for (; next < end; ++next) {
        stamp_payload(payload, next, 0, now);
        if (acked) id = static_cast<std::uint16_t>(id == 65535 ? 1 : id + 1);
        codec::encode_publish(batch, topic, payload, qos, false, false, acked ? id : 0);
        if (now >= count_from) ++r.sent;
      }
      write_all(pub.fd, batch);
      ++r.writes;
      if (acked && now - acks_read_at > ns_per_ms) {
        // PUBACKs only need draining; the socket buffer holds many.
        while (read_some(pub)) {
          while (next_packet(pub)) {
          }
        }
        acks_read_at = now;
      }
    }
  } catch (const std::exception& e) {
    r.errors.emplace_back(e.what());
  }
  // Until everything counted has arrived, or nothing arrives any more.
  const std::int64_t sent_end = mono_ns();
  while (!sub.done() && sub.counted() < r.sent) {
    const std::int64_t now = mono_ns();
    if (now - std::max(sent_end, sub.last_arrival()) > ns_per_s) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r.broker_cpu_s = process_cpu_seconds(broker.pid()) - cpu_before;
  r.loadgen_cpu_s = own_cpu_seconds() - own_before;
  sub.stop();
  if (!sub.error().empty()) r.errors.push_back("subscriber: " + sub.error());
  r.received = sub.counted();
  r.duplicates = sub.duplicates();
  r.latencies_ns = std::move(sub.latencies());
  if (auto st = broker.exit_status(); !st.empty()) r.errors.push_back(st);
  return r;
}

double percentile_us(std::vector<std::int64_t>& sorted, double q) {
  if (sorted.empty()) return std::nan("");
  const auto at = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size()))) - 1;
  return static_cast<double>(sorted[std::min(at, sorted.size() - 1)]) / 1000.0;
}

int run_latency(int argc, char** argv) {
  std::vector<std::uint64_t> rates = {5000, 50000};
  double seconds = 5;
  int runs = 3;
  std::string json_path;
  std::string only;
  std::string broker_cpus = "0";
  std::string subscriber_cpu = "same";
  std::optional<unsigned long> timer_slack_us;
  programs prog;
  parse_options(argc, argv, [&](const std::string& key, const std::string& value) {
    if (key == "--rates") {
      rates.clear();
      std::string_view rest = value;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        rates.push_back(std::stoull(std::string(rest.substr(0, comma))));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      }
    } else if (key == "--seconds") {
      seconds = std::stod(value);
    } else if (key == "--runs") {
      runs = std::stoi(value);
    } else if (key == "--json") {
      json_path = value;
    } else if (key == "--only") {
      only = value;
    } else if (key == "--broker-cpus") {
      broker_cpus = value;
    } else if (key == "--subscriber-cpu") {
      subscriber_cpu = value;
    } else if (key == "--timer-slack-us") {
      timer_slack_us = std::stoul(value);
    } else if (key == "--mosquitto") {
      prog.mosquitto = value;
    } else if (key == "--server") {
      prog.server = value;
    } else {
      return false;
    }
    return true;
  });
  if (rates.empty() || std::find(rates.begin(), rates.end(), 0u) != rates.end() || !(seconds > 0) ||
      runs <= 0) {
    throw std::runtime_error("--rates, --seconds and --runs must be positive");
  }
  if (subscriber_cpu != "same" && subscriber_cpu != "any") {
    throw std::runtime_error("--subscriber-cpu: same or any");
  }
  const placement where = plan_cpus(broker_cpus);
  if (where.pinned) pin_this_thread({where.loadgen});
  // A sleep may end up to the timer slack after its deadline (50 us by default): the publisher
  // then writes the 2 or 3 messages due at 50000/s in one write, at a third of the wake-ups.
  if (timer_slack_us) {
    if (::prctl(PR_SET_TIMERSLACK, std::max<unsigned long>(1, *timer_slack_us * 1000), 0UL, 0UL,
                0UL) != 0) {
      throw std::runtime_error("cannot set the timer slack");
    }
  }
  const unsigned long slack_ns = static_cast<unsigned long>(::prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
  // Threads inherit the affinity of the thread that starts them: "any" has to undo the pinning.
  std::vector<int> sub_cpus =
      where.pinned && subscriber_cpu == "same" ? std::vector<int>{where.loadgen} : where.all;
  json_sink json(json_path);
  temp_dir dir("ebus-scenario-latency");

  const std::string note_base =
      where.note + "; subscriber thread " +
      (subscriber_cpu == "same" ? "on the load generator's CPU" : "on any CPU") +
      "; publisher timer slack " + std::to_string(slack_ns / 1000) + " us";
  std::printf(
      "1->1, 64 B, fixed rate, 0.5 s warm-up then %.1f s counted; %s; %d run(s) each, "
      "alternating, a fresh broker per run\n\n",
      seconds, note_base.c_str(), runs);
  std::printf("%-26s %-9s %3s %8s %8s %6s %8s %8s %9s %9s %9s\n", "scenario", "broker", "run",
              "sent", "received", "lost", "p50_us", "p99_us", "max_us", "broker_us", "loadgen_us");
  std::fflush(stdout);

  bool failed = false;
  std::vector<std::string> notes;
  struct row {
    std::string name;
    std::map<std::string, std::vector<metrics>> by_broker;
  };
  std::vector<row> rows;
  const auto started = mono_ns();
  for (const auto rate : rates) {
    for (const auto qos : {codec::qos_level::at_most_once, codec::qos_level::at_least_once}) {
      const std::string name = "1->1 QoS" + std::to_string(static_cast<int>(qos)) + " 64 B " +
                               std::to_string(rate) + "/s";
      if (!only.empty() && name.find(only) == std::string::npos) continue;
      row sum{name, {}};
      for (int r = 1; r <= runs; ++r) {
        for (const auto kind : brokers_to_run(prog)) {
          latency_outcome o;
          {
            broker_process broker(kind, prog, where, dir.path);
            try {
              o = latency_once(broker, qos, rate, seconds, sub_cpus);
            } catch (const std::exception& e) {
              o.errors.emplace_back(e.what());
            }
          }
          auto& lat = o.latencies_ns;
          std::sort(lat.begin(), lat.end());
          const double received = static_cast<double>(o.received);
          const metrics m = {
              {"sent", static_cast<double>(o.sent)},
              {"delivered", received},
              {"lost", static_cast<double>(o.lost())},
              {"duplicates", static_cast<double>(o.duplicates)},
              {"p50_us", percentile_us(lat, 0.50)},
              {"p99_us", percentile_us(lat, 0.99)},
              {"max_us", lat.empty() ? std::nan("") : static_cast<double>(lat.back()) / 1000.0},
              {"rate_per_s", static_cast<double>(rate)},
              {"writes", static_cast<double>(o.writes)},
              {"broker_us_per_msg", o.received > 0 ? o.broker_cpu_s * 1e6 / received : 0},
              {"loadgen_us_per_msg", o.received > 0 ? o.loadgen_cpu_s * 1e6 / received : 0},
          };
          std::string note = note_base;
          for (const auto& e : o.errors)
            note += "; " + e;
          json.write("latency", name, name_of(kind), r, m, note);
          std::printf("%-26s %-9s %3d %8llu %8llu %6llu %8.1f %8.1f %9.1f %9.2f %9.2f\n",
                      name.c_str(), name_of(kind), r, static_cast<unsigned long long>(o.sent),
                      static_cast<unsigned long long>(o.received),
                      static_cast<unsigned long long>(o.lost()), metric(m, "p50_us"),
                      metric(m, "p99_us"), metric(m, "max_us"), metric(m, "broker_us_per_msg"),
                      metric(m, "loadgen_us_per_msg"));
          std::fflush(stdout);
          if (o.lost() != 0 || o.duplicates != 0 || !o.errors.empty()) {
            notes.push_back(
                trouble_note(name, kind, r, o.lost(), o.sent, o.duplicates, o.errors, {}));
            if (kind == broker_kind::eventbus) failed = true;
          }
          sum.by_broker[name_of(kind)].push_back(m);
        }
      }
      rows.push_back(std::move(sum));
    }
  }
  const double took = static_cast<double>(mono_ns() - started) * 1e-9;

  std::printf("\nmedians over %d run(s)\n", runs);
  std::printf("%-26s %-9s %8s %8s %9s %6s\n", "scenario", "broker", "p50_us", "p99_us", "max_us",
              "lost");
  for (const auto& sum : rows) {
    for (const auto& [broker, ms] : sum.by_broker) {
      auto med = [&ms](const char* name) {
        std::vector<double> v;
        for (const auto& m : ms)
          v.push_back(metric(m, name));
        return median(v);
      };
      double lost = 0;
      for (const auto& m : ms)
        lost += metric(m, "lost");
      std::printf("%-26s %-9s %8.1f %8.1f %9.1f %6.0f\n", sum.name.c_str(), broker.c_str(),
                  med("p50_us"), med("p99_us"), med("max_us"), lost);
    }
  }
  std::printf("\n%zu scenario(s) in %.0f s.\n", rows.size(), took);
  if (!notes.empty()) {
    std::printf("\nNOTES:\n");
    for (const auto& n : notes)
      std::printf("  %s\n", n.c_str());
  }
  if (failed) std::printf("\nFAIL: eventbus lost or duplicated messages, or a run failed\n");
  return failed ? 2 : 0;
}

constexpr const char* usage =
    "usage: scenario_compare throughput [--messages N] [--runs R] [--window W] [--json FILE]\n"
    "                        [--only SUBSTRING] [--broker-cpus LIST] [--mosquitto PATH] "
    "[--server PATH]\n"
    "       scenario_compare latency [--rates 5000,50000] [--seconds S] [--runs R] [--json FILE]\n"
    "                        [--only SUBSTRING] [--broker-cpus LIST] [--subscriber-cpu same|any]\n"
    "                        [--timer-slack-us US]\n"
    "                        [--mosquitto PATH] [--server PATH]\n";

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    // The options follow the subcommand: parse them as if they began the command line.
    if (mode == "throughput") return run_throughput(argc - 1, argv + 1);
    if (mode == "latency") return run_latency(argc - 1, argv + 1);
    std::fputs(usage, stderr);
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "scenario_compare: %s\n", e.what());
    return 1;
  }
}
