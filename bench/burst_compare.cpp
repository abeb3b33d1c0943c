// Does a burst lose messages? The embedded broker (broker_server, at the defaults of
// broker_options) and Debian's mosquitto (one loopback listener, every limit at its default:
// max_queued_messages 1000, max_inflight_messages 20), driven in the same run by the same client,
// one broker after the other for each scenario:
//
//   1 -> 1      QoS 1, the publisher at most W messages ahead of what the subscriber received
//   1 -> 1      QoS 2, the same
//   8 -> 1      QoS 0 and QoS 1, one subscriber on burst/+, each publisher at most W ahead
//   1 -> 1      QoS 1 burst: B messages as fast as the publisher can write them, no window
//               at all, while the subscriber reads at full speed (repeated R times)
//
//   burst_compare [--messages N] [--window W] [--inflight I] [--burst B] [--bursts R]
//                 [--mosquitto PATH] [--server PATH]
//
// W is 1000 by default: mosquitto's default queue, not a window tuned to our defaults. QoS 1
// publishers have no other limit: they write as fast as the window lets them, reading their
// PUBACKs on a second thread. QoS 2 publishers keep at most 20 publishes unreleased (paho's and
// mosquitto's client default), because mosquitto acknowledges, then silently drops, a QoS 2
// publish from an MQTT 3.1.1 client that already has 20 unreleased (its receive quota,
// max_inflight_messages). --inflight I sets that limit for QoS 1 and QoS 2 alike (0: none). A
// burst has no window and no limit. Payloads are 64 bytes starting with the publisher's sequence
// number, so the subscriber counts what it received once, twice (duplicates) and late (out of
// order); the rest is lost. "Ahead of what the subscriber received" counts from the highest
// sequence number received, so holes (messages the broker dropped) do not hold the publisher
// back; see `pacer` for a window whose whole tail was dropped. Broker CPU is utime + stime of
// the broker process from /proc.
//
// Exit status: 2 when eventbus lost a QoS 1 or QoS 2 message or duplicated a QoS 2 one
// (mosquitto's losses are only reported); 1 on an error; 0 otherwise.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <variant>
#include <vector>

#include "load_client.hpp"
#include "mqtt/broker/broker_options.hpp"
#include "mqtt/codec/decoder.hpp"
#include "mqtt/codec/encoder.hpp"

namespace {

using namespace ebus::bench;
namespace codec = ebus::mqtt::codec;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t default_window = 1000;
constexpr std::size_t batch_bytes = std::size_t{8} * 1024;
// QoS 1/2 publishes not yet acknowledged, below the 65535 packet identifiers (never reached in
// practice: it only guards against reusing an identifier still in flight).
constexpr std::uint64_t max_unacked = 60000;
constexpr auto stall_limit = 2s;     // nothing moved for this long: the rest is lost
constexpr auto quiet_limit = 250ms;  // nothing arrived for this long: what is in flight is lost
constexpr std::size_t default_qos2_inflight = 20;
constexpr auto socket_timeout = 10s;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
      .count();
}

// --- payload and topic ------------------------------------------------------------------------

constexpr std::string_view topic_prefix = "burst/";

// Publisher index and sequence number of one of our messages; nullopt for anything else.
std::optional<std::pair<std::size_t, std::uint64_t>> parse_message(std::string_view topic,
                                                                   std::string_view payload) {
  if (!topic.starts_with(topic_prefix) || topic.size() == topic_prefix.size()) {
    return std::nullopt;
  }
  std::size_t index = 0;
  for (std::size_t i = topic_prefix.size(); i < topic.size(); ++i) {
    if (topic[i] < '0' || topic[i] > '9') return std::nullopt;
    index = index * 10 + static_cast<std::size_t>(topic[i] - '0');
  }
  const auto seq = read_sequence(payload);
  if (!seq) return std::nullopt;
  return std::pair{index, *seq};
}

// --- the subscriber ------------------------------------------------------------------------------

// What the subscriber received from each publisher. Written by the subscriber's reader thread
// only; the publishers read high() for their pacing, the main thread the totals.
class tracker {
 public:
  tracker(std::size_t publishers, std::size_t per_publisher)
      : per_publisher_(per_publisher), pubs_(publishers) {
    for (auto& p : pubs_)
      p.seen.assign(per_publisher, 0);
  }

  void record(std::size_t pub, std::uint64_t seq) {
    if (pub >= pubs_.size() || seq >= per_publisher_) {
      foreign_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    auto& p = pubs_[pub];
    const auto high = p.high.load(std::memory_order_relaxed);
    if (p.seen[seq] != 0) {
      duplicates_.fetch_add(1, std::memory_order_relaxed);
    } else {
      p.seen[seq] = 1;
      if (seq < high) out_of_order_.fetch_add(1, std::memory_order_relaxed);
      unique_.fetch_add(1, std::memory_order_relaxed);
    }
    if (seq >= high) p.high.store(seq + 1, std::memory_order_release);
    last_ns_.store(now_ns(), std::memory_order_release);
  }

  /// One past the highest sequence number received from `pub`: what it has been received, or
  /// seen missing, up to.
  [[nodiscard]] std::uint64_t high(std::size_t pub) const {
    return pubs_[pub].high.load(std::memory_order_acquire);
  }
  [[nodiscard]] std::uint64_t unique() const { return unique_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t duplicates() const { return duplicates_.load(); }
  [[nodiscard]] std::uint64_t out_of_order() const { return out_of_order_.load(); }
  [[nodiscard]] std::uint64_t foreign() const { return foreign_.load(); }
  [[nodiscard]] std::int64_t last_ns() const { return last_ns_.load(std::memory_order_acquire); }

 private:
  struct publisher_state {
    std::vector<std::uint8_t> seen;
    std::atomic<std::uint64_t> high{0};
  };
  std::size_t per_publisher_;
  std::vector<publisher_state> pubs_;
  std::atomic<std::uint64_t> unique_{0};
  std::atomic<std::uint64_t> duplicates_{0};
  std::atomic<std::uint64_t> out_of_order_{0};
  std::atomic<std::uint64_t> foreign_{0};
  std::atomic<std::int64_t> last_ns_{0};
};

// One subscriber reading as fast as it can on its own thread, acknowledging QoS 1 (PUBACK) and
// QoS 2 (PUBREC, then PUBCOMP for each PUBREL).
class subscriber {
 public:
  subscriber(std::uint16_t port, const std::string& filter, codec::qos_level qos, tracker& t)
      : tracker_(t), fd_(mqtt_connect(port, "burst-sub")) {
    set_send_timeout(fd_, socket_timeout);
    std::string out;
    codec::encode(codec::subscribe{1, {{filter, qos}}}, out);
    send_all(fd_, out);
    auto ack = read_packet(fd_, dec_);
    const auto* s = std::get_if<codec::suback>(&ack);
    if (s == nullptr || s->return_codes.empty() ||
        s->return_codes[0] == codec::suback_return_code::failure) {
      ::close(fd_);
      throw std::runtime_error("SUBSCRIBE refused");
    }
    reader_ = std::thread([this] { read_loop(); });
  }
  subscriber(const subscriber&) = delete;
  subscriber& operator=(const subscriber&) = delete;
  ~subscriber() {
    stopping_.store(true);
    ::shutdown(fd_, SHUT_RDWR);
    reader_.join();
    ::close(fd_);
  }

  /// Why the reader stopped before it was told to; empty if it did not. After the destructor
  /// has run only, or when read under the caller's own synchronisation.
  [[nodiscard]] std::string error() {
    std::lock_guard lock(mutex_);
    return error_;
  }

 private:
  void read_loop() {
    std::string acks;
    try {
      for (;;) {
        for (;;) {
          auto r = dec_.next();
          if (!r) throw std::runtime_error("decode error");
          if (!*r) break;
          if (const auto* m = std::get_if<codec::publish>(&**r)) {
            if (const auto id = parse_message(m->topic, m->payload)) {
              tracker_.record(id->first, id->second);
            }
            if (m->qos == codec::qos_level::at_least_once) {
              codec::encode(codec::puback{m->packet_id}, acks);
            } else if (m->qos == codec::qos_level::exactly_once) {
              codec::encode(codec::pubrec{m->packet_id}, acks);
            }
          } else if (const auto* rel = std::get_if<codec::pubrel>(&**r)) {
            codec::encode(codec::pubcomp{rel->packet_id}, acks);
          }
        }
        if (!acks.empty()) {
          send_all(fd_, acks);
          acks.clear();
        }
        auto space = dec_.prepare(std::size_t{64} * 1024);
        const auto got = ::recv(fd_, space.data(), space.size(), 0);
        if (got <= 0) {
          if (!stopping_.load()) fail("subscriber: connection closed by the broker");
          return;
        }
        dec_.commit(static_cast<std::size_t>(got));
      }
    } catch (const std::exception& e) {
      if (!stopping_.load()) fail(std::string("subscriber: ") + e.what());
    }
  }

  void fail(std::string why) {
    std::lock_guard lock(mutex_);
    error_ = std::move(why);
  }

  tracker& tracker_;
  int fd_;
  codec::decoder dec_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::string error_;
  std::thread reader_;
};

// --- the publishers --------------------------------------------------------------------------

// A publisher's connection. The publishing thread is the only writer; a second thread reads
// the acknowledgements, so that the broker can always write them, and leaves the PUBRELs that
// QoS 2 needs for the writer to send.
class publisher_link {
 public:
  publisher_link(std::uint16_t port, std::size_t index)
      : fd_(mqtt_connect(port, "burst-pub-" + std::to_string(index))) {
    set_send_timeout(fd_, socket_timeout);
    reader_ = std::thread([this] { read_loop(); });
  }
  publisher_link(const publisher_link&) = delete;
  publisher_link& operator=(const publisher_link&) = delete;
  ~publisher_link() {
    stopping_.store(true);
    mqtt_close_socket();
    reader_.join();
    ::close(fd_);
  }

  /// Sends `batch` (cleared) and the PUBRELs the reader left.
  void flush(std::string& batch) {
    {
      std::lock_guard lock(mutex_);
      if (!pending_.empty()) {
        batch += pending_;
        pending_.clear();
      }
    }
    if (!batch.empty()) send_all(fd_, batch);
    batch.clear();
  }

  /// Publishes acknowledged: PUBACK (QoS 1) or PUBCOMP (QoS 2).
  [[nodiscard]] std::uint64_t acked() const { return acked_.load(std::memory_order_acquire); }
  [[nodiscard]] std::string error() {
    std::lock_guard lock(mutex_);
    return error_;
  }

 private:
  void mqtt_close_socket() {
    std::string out;
    codec::encode(codec::disconnect{}, out);
    try {
      send_all(fd_, out);
    } catch (const std::exception&) {
    }
    ::shutdown(fd_, SHUT_RDWR);
  }

  void read_loop() {
    std::string rels;
    try {
      for (;;) {
        for (;;) {
          auto r = dec_.next();
          if (!r) throw std::runtime_error("decode error");
          if (!*r) break;
          if (std::holds_alternative<codec::puback>(**r) ||
              std::holds_alternative<codec::pubcomp>(**r)) {
            acked_.fetch_add(1, std::memory_order_release);
          } else if (const auto* rec = std::get_if<codec::pubrec>(&**r)) {
            codec::encode(codec::pubrel{rec->packet_id}, rels);
          }
        }
        if (!rels.empty()) {
          std::lock_guard lock(mutex_);
          pending_ += rels;
          rels.clear();
        }
        auto space = dec_.prepare(std::size_t{16} * 1024);
        const auto got = ::recv(fd_, space.data(), space.size(), 0);
        if (got <= 0) {
          if (!stopping_.load()) fail("publisher: connection closed by the broker");
          return;
        }
        dec_.commit(static_cast<std::size_t>(got));
      }
    } catch (const std::exception& e) {
      if (!stopping_.load()) fail(std::string("publisher: ") + e.what());
    }
  }

  void fail(std::string why) {
    std::lock_guard lock(mutex_);
    error_ = std::move(why);
  }

  int fd_;
  codec::decoder dec_;
  std::atomic<std::uint64_t> acked_{0};
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::string pending_;  // PUBRELs to send
  std::string error_;
  std::thread reader_;
};

// --- one scenario against one broker -----------------------------------------------------------

struct scenario {
  std::string name;
  std::size_t publishers = 1;
  codec::qos_level qos = codec::qos_level::at_most_once;
  std::size_t messages = 0;             // all publishers together, per repeat
  std::optional<std::size_t> window;    // per publisher; nullopt: none (a burst)
  std::optional<std::size_t> inflight;  // QoS 1/2 unacknowledged per publisher; nullopt: no limit
  std::size_t repeats = 1;
};

struct outcome {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;  // distinct messages
  std::uint64_t duplicates = 0;
  std::uint64_t out_of_order = 0;
  std::uint64_t acked = 0;  // QoS 1/2: acknowledged by the broker to the publishers
  double active_s = 0;      // from the first send to the last message received
  double cpu_s = 0;         // broker process
  std::uint64_t window_restarts = 0;
  std::size_t pacing_given_up = 0;
  std::vector<std::string> errors;

  void add(const outcome& o) {
    sent += o.sent;
    received += o.received;
    duplicates += o.duplicates;
    out_of_order += o.out_of_order;
    acked += o.acked;
    active_s += o.active_s;
    cpu_s += o.cpu_s;
    window_restarts += o.window_restarts;
    pacing_given_up += o.pacing_given_up;
    errors.insert(errors.end(), o.errors.begin(), o.errors.end());
  }
  [[nodiscard]] std::uint64_t lost() const { return sent - std::min(sent, received); }
  [[nodiscard]] double msgs_per_s() const {
    return active_s > 0 ? static_cast<double>(received) / active_s : 0;
  }
  [[nodiscard]] double cpu_us_per_msg() const {
    return received > 0 ? cpu_s * 1e6 / static_cast<double>(received) : 0;
  }
};

// Calls `step` (which flushes what is pending) until `ready()`; false once `progress()` has not
// changed for stall_limit.
template <class Ready, class Progress, class Step>
bool wait_until(Ready ready, Progress progress, Step step) {
  auto last = progress();
  auto moved = steady::now();
  while (!ready()) {
    step();
    std::this_thread::sleep_for(50us);
    const auto p = progress();
    if (p != last) {
      last = p;
      moved = steady::now();
    } else if (steady::now() - moved > stall_limit) {
      return false;
    }
  }
  return true;
}

// Keeps one publisher at most `window` messages ahead of what the subscriber has received from
// it. A message the broker dropped never arrives, and when the whole tail of the window was
// dropped nothing would ever move the window on; so, once nothing at all has arrived for
// quiet_limit, what was sent is taken as lost and the window restarts from there. Once nothing
// from this publisher has arrived for stall_limit, pacing stops and the rest goes out unpaced,
// so that the loss shows in the result instead of a hang.
class pacer {
 public:
  pacer(const tracker& seen, std::size_t publisher, std::size_t window)
      : seen_(seen), publisher_(publisher), window_(window), last_high_(seen.high(publisher)) {}

  /// Waits, calling `flush`, until message `k` may be sent.
  template <class Flush>
  void admit(std::uint64_t k, Flush flush) {
    if (given_up_ || !ahead(k)) return;
    flush();
    const auto wait_start = steady::now();
    while (ahead(k)) {
      std::this_thread::sleep_for(50us);
      flush();
      const auto now = steady::now();
      if (const auto h = seen_.high(publisher_); h != last_high_) {
        last_high_ = h;
        moved_at_ = now;
      }
      if (now - moved_at_ > stall_limit) {
        given_up_ = true;
        return;
      }
      const auto last_arrival =
          std::max(wait_start, steady::time_point(std::chrono::nanoseconds(seen_.last_ns())));
      if (now - last_arrival > quiet_limit) {
        floor_ = k;
        ++restarts_;
        return;
      }
    }
  }
  [[nodiscard]] bool given_up() const { return given_up_; }
  [[nodiscard]] std::uint64_t restarts() const { return restarts_; }

 private:
  [[nodiscard]] bool ahead(std::uint64_t k) const {
    return k >= std::max(seen_.high(publisher_), floor_) + window_;
  }

  const tracker& seen_;
  std::size_t publisher_;
  std::uint64_t window_;
  std::uint64_t floor_ = 0;
  std::uint64_t last_high_;
  steady::time_point moved_at_ = steady::now();
  std::uint64_t restarts_ = 0;
  bool given_up_ = false;
};

outcome drive_once(std::uint16_t port, pid_t broker, const scenario& s) {
  const std::size_t per_publisher = s.messages / s.publishers + 1;
  tracker seen(s.publishers, per_publisher);
  const std::string filter = std::string(topic_prefix) + (s.publishers == 1 ? "0" : "+");
  subscriber sub(port, filter, s.qos, seen);
  std::vector<std::unique_ptr<publisher_link>> links;
  for (std::size_t i = 0; i < s.publishers; ++i)
    links.push_back(std::make_unique<publisher_link>(port, i));

  std::atomic<bool> go{false};
  std::vector<std::uint64_t> sent(s.publishers, 0);
  std::vector<std::uint64_t> restarts(s.publishers, 0);
  std::vector<bool> gave_up(s.publishers, false);
  std::vector<std::string> failures(s.publishers);
  std::vector<std::thread> threads;
  const bool acked = s.qos != codec::qos_level::at_most_once;
  const std::uint64_t unacked_limit =
      std::min<std::uint64_t>(s.inflight.value_or(max_unacked), max_unacked);
  for (std::size_t i = 0; i < s.publishers; ++i) {
    const std::size_t share = s.messages / s.publishers + (i < s.messages % s.publishers ? 1 : 0);
    threads.emplace_back([&, i, share] {
      auto& link = *links[i];
      const std::string topic = std::string(topic_prefix) + std::to_string(i);
      std::string payload = sequenced_payload();
      std::string batch;
      std::uint16_t id = 0;
      std::optional<pacer> pace;
      if (s.window) pace.emplace(seen, i, *s.window);
      auto flush = [&] { link.flush(batch); };
      while (!go.load(std::memory_order_acquire))
        std::this_thread::yield();
      try {
        for (std::uint64_t k = 0; k < share; ++k) {
          if (pace) pace->admit(k, flush);
          if (acked && k >= link.acked() + unacked_limit) {
            flush();
            if (!wait_until([&] { return k < link.acked() + unacked_limit; },
                            [&] { return link.acked(); }, flush)) {
              throw std::runtime_error("publisher: no acknowledgement for 2 s");
            }
          }
          write_sequence(payload, k);
          if (acked) {
            id = static_cast<std::uint16_t>(id == 65535 ? 1 : id + 1);
            codec::encode_publish(batch, topic, payload, s.qos, false, false, id);
          } else {
            codec::encode_publish(batch, topic, payload, s.qos, false, false, 0);
          }
          sent[i] = k + 1;
          if (batch.size() >= batch_bytes) flush();
        }
        flush();
        if (acked) {
          (void)wait_until([&] { return link.acked() >= sent[i]; }, [&] { return link.acked(); },
                           flush);
        }
      } catch (const std::exception& e) {
        failures[i] = e.what();
      }
      if (pace) {
        restarts[i] = pace->restarts();
        gave_up[i] = pace->given_up();
      }
    });
  }

  const double cpu_before = process_cpu_seconds(broker);
  const std::int64_t start_ns = now_ns();
  go.store(true, std::memory_order_release);
  for (auto& t : threads)
    t.join();
  std::uint64_t total_sent = 0;
  for (const auto n : sent)
    total_sent += n;
  // Everything sent is received, or nothing arrives any more.
  (void)wait_until([&] { return seen.unique() >= total_sent; }, [&] { return seen.unique(); },
                   [] {});
  const double cpu_after = process_cpu_seconds(broker);

  outcome r;
  r.sent = total_sent;
  r.received = seen.unique();
  r.duplicates = seen.duplicates();
  r.out_of_order = seen.out_of_order();
  for (const auto& l : links)
    r.acked += l->acked();
  const auto last = seen.last_ns();
  r.active_s = last > start_ns ? static_cast<double>(last - start_ns) * 1e-9 : 0;
  r.cpu_s = cpu_after - cpu_before;
  for (const auto n : restarts)
    r.window_restarts += n;
  r.pacing_given_up = static_cast<std::size_t>(std::count(gave_up.begin(), gave_up.end(), true));
  for (std::size_t i = 0; i < s.publishers; ++i) {
    if (!failures[i].empty()) r.errors.push_back(failures[i]);
    if (auto e = links[i]->error(); !e.empty()) r.errors.push_back(e);
  }
  if (auto e = sub.error(); !e.empty()) r.errors.push_back(e);
  if (seen.foreign() != 0) {
    r.errors.push_back(std::to_string(seen.foreign()) + " messages not from this run");
  }
  return r;
}

outcome drive(std::uint16_t port, pid_t broker, const scenario& s) {
  outcome total;
  for (std::size_t k = 0; k < s.repeats; ++k) {
    try {
      total.add(drive_once(port, broker, s));
    } catch (const std::exception& e) {
      total.errors.emplace_back(e.what());
    }
  }
  return total;
}

// --- output -------------------------------------------------------------------------------------

void print_row(const char* scenario_name, const char* broker, const outcome& o) {
  std::printf("%-24s %-10s %9llu %9llu %8llu %6llu %6llu %10.0f %10.2f\n", scenario_name, broker,
              static_cast<unsigned long long>(o.sent), static_cast<unsigned long long>(o.received),
              static_cast<unsigned long long>(o.lost()),
              static_cast<unsigned long long>(o.duplicates),
              static_cast<unsigned long long>(o.out_of_order), o.msgs_per_s(), o.cpu_us_per_msg());
}

std::string ratio(double ours, double theirs) {
  if (theirs <= 0 || ours <= 0) return "n/a";
  char text[32];
  std::snprintf(text, sizeof text, "%.2fx", ours / theirs);
  return text;
}

std::string describe(const std::optional<std::size_t>& limit) {
  return limit ? "at most " + std::to_string(*limit) : std::string("no limit");
}

const char* policy_name(ebus::mqtt::broker::overflow_policy p) {
  switch (p) {
    case ebus::mqtt::broker::overflow_policy::drop_newest:
      return "drop_newest";
    case ebus::mqtt::broker::overflow_policy::drop_oldest:
      return "drop_oldest";
    case ebus::mqtt::broker::overflow_policy::disconnect:
      return "disconnect";
  }
  return "?";
}

struct reaper {
  pid_t pid;
  explicit reaper(pid_t p) : pid(p) {}
  reaper(const reaper&) = delete;
  reaper& operator=(const reaper&) = delete;
  ~reaper() { stop_process(pid); }
};

int run(int argc, char** argv) {
  std::optional<std::size_t> messages;
  std::size_t window = default_window;
  std::optional<std::size_t> inflight;
  std::size_t burst = 10000;
  std::size_t bursts = 3;
  std::string mosquitto = "/usr/sbin/mosquitto";
  std::string server = std::string(EBUS_BENCH_DIR) + "/broker_server";
  parse_options(argc, argv, [&](const std::string& key, const std::string& value) {
    if (key == "--messages") {
      messages = std::stoul(value);
    } else if (key == "--window") {
      window = std::stoul(value);
    } else if (key == "--inflight") {
      inflight = std::stoul(value);
    } else if (key == "--burst") {
      burst = std::stoul(value);
    } else if (key == "--bursts") {
      bursts = std::stoul(value);
    } else if (key == "--mosquitto") {
      mosquitto = value;
    } else if (key == "--server") {
      server = value;
    } else {
      return false;
    }
    return true;
  });

  if (messages == 0u || window == 0 || burst == 0 || bursts == 0) {
    throw std::runtime_error("--messages, --window, --burst and --bursts must be positive");
  }
  // nullopt: no limit.
  auto limit_for = [&inflight](codec::qos_level qos) -> std::optional<std::size_t> {
    if (inflight) return *inflight == 0 ? std::nullopt : inflight;
    if (qos == codec::qos_level::exactly_once) return default_qos2_inflight;
    return std::nullopt;
  };

  using q = codec::qos_level;
  const std::string w = std::to_string(window);
  const std::vector<scenario> scenarios = {
      {"1->1 QoS1 window " + w, 1, q::at_least_once, messages.value_or(200000), window,
       limit_for(q::at_least_once), 1},
      {"1->1 QoS2 window " + w, 1, q::exactly_once, messages.value_or(100000), window,
       limit_for(q::exactly_once), 1},
      {"8->1 QoS0 window " + w, 8, q::at_most_once, messages.value_or(800000), window, std::nullopt,
       1},
      {"8->1 QoS1 window " + w, 8, q::at_least_once, messages.value_or(400000), window,
       limit_for(q::at_least_once), 1},
      {"1->1 QoS1 burst " + std::to_string(burst), 1, q::at_least_once, burst, std::nullopt,
       std::nullopt, bursts},
  };

  temp_dir dir("ebus-burst-compare");
  const std::uint16_t mport = free_port();
  const auto conf = (dir.path / "mosquitto.conf").string();
  write_mosquitto_config(conf, mport);
  const reaper mosquitto_guard{spawn({mosquitto, "-c", conf})};
  const std::uint16_t eport = free_port();
  const reaper server_guard{spawn({server, std::to_string(eport)})};

  const ebus::mqtt::broker::broker_options defaults;
  std::printf(
      "eventbus:  broker_server at broker_options defaults: session_queue_size %zu, max_inflight "
      "%zu, overflow %s\n"
      "mosquitto: %s, one listener, defaults: max_queued_messages 1000, "
      "max_inflight_messages 20\n"
      "payload %zu bytes with per-publisher sequence numbers; window = how far each publisher "
      "may run ahead\nof what the subscriber has received from it; unacknowledged publishes per "
      "publisher: QoS 1 %s,\nQoS 2 %s; a burst has no window and no limit (%zu bursts of %zu)\n\n",
      defaults.session_queue_size, defaults.max_inflight, policy_name(defaults.overflow),
      mosquitto.c_str(), sequenced_payload_size, describe(limit_for(q::at_least_once)).c_str(),
      describe(limit_for(q::exactly_once)).c_str(), bursts, burst);
  std::printf("%-24s %-10s %9s %9s %8s %6s %6s %10s %10s\n", "scenario", "broker", "sent",
              "received", "lost", "dup", "ooo", "msgs/s", "cpu us/msg");
  std::fflush(stdout);

  bool failed = false;
  std::vector<std::string> notes;
  for (std::size_t n = 0; n < scenarios.size(); ++n) {
    const auto& s = scenarios[n];
    outcome ours;
    outcome theirs;
    // Alternate which broker goes first, so that neither always runs on a warmer machine.
    if (n % 2 == 0) {
      theirs = drive(mport, mosquitto_guard.pid, s);
      ours = drive(eport, server_guard.pid, s);
    } else {
      ours = drive(eport, server_guard.pid, s);
      theirs = drive(mport, mosquitto_guard.pid, s);
    }
    print_row(s.name.c_str(), "eventbus", ours);
    print_row("", "mosquitto", theirs);
    std::printf("%-24s ratio eventbus/mosquitto: throughput %s, cpu per message %s\n", "",
                ratio(ours.msgs_per_s(), theirs.msgs_per_s()).c_str(),
                ratio(ours.cpu_us_per_msg(), theirs.cpu_us_per_msg()).c_str());
    std::fflush(stdout);

    const bool qos12 = s.qos != q::at_most_once;
    const bool bad = (qos12 && ours.lost() != 0) ||
                     (s.qos == q::exactly_once && ours.duplicates != 0) || !ours.errors.empty();
    failed = failed || bad;
    for (const auto& [who, o] : {std::pair{"eventbus", &ours}, std::pair{"mosquitto", &theirs}}) {
      if (o->lost() == 0 && o->duplicates == 0 && o->errors.empty()) continue;
      std::string note = s.name + ", " + who + ": lost " + std::to_string(o->lost()) + " of " +
                         std::to_string(o->sent);
      if (qos12) note += ", broker acknowledged " + std::to_string(o->acked) + " to publishers";
      if (o->window_restarts != 0) {
        note += ", window restarted " + std::to_string(o->window_restarts) +
                " times after 250 ms with nothing arriving";
      }
      if (o->pacing_given_up != 0) {
        note += ", " + std::to_string(o->pacing_given_up) +
                " publisher(s) saw nothing arrive for 2 s and stopped pacing";
      }
      for (const auto& e : o->errors)
        note += "; " + e;
      notes.push_back(note);
    }
  }

  std::printf(
      "\nthroughput ratio > 1: eventbus faster; cpu ratio < 1: eventbus cheaper. msgs/s and "
      "cpu us/msg count\ndistinct messages received; a row with loss compares unequal work. "
      "Load generator and brokers\nshare the machine's %u cores; broker CPU comes from /proc in "
      "%ld ms ticks.\n",
      std::thread::hardware_concurrency(), 1000 / ::sysconf(_SC_CLK_TCK));
  if (!notes.empty()) {
    std::printf("\nNOTES:\n");
    for (const auto& note : notes)
      std::printf("  %s\n", note.c_str());
  }
  if (failed) {
    std::printf("\nFAIL: eventbus lost or duplicated QoS 1/2 messages (or a client failed)\n");
  }
  return failed ? 2 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "burst_compare: %s\n", e.what());
    return 1;
  }
}
