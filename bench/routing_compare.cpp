// MQTT -> bus routing rate of an eventbus node, side by side with Debian's mosquitto in the same
// role, in one run on one machine.
//
//   routing_compare [--messages N] [--window W] [--mosquitto PATH|none]
//                   [--twin in-process|remote|remote-batched]
//                   [--runs R] [--json FILE]
//                   [--publishers P] [--qos 0|1]
//
// eventbus: a whole node (daemon::app, mode internal) runs in-process on its own loop thread,
// with a counting module "twin" (group twin) standing in for devicetwin; with --twin remote that
// module is a remote module on the SEQPACKET module socket instead, as a separate process would
// be (the node's loop then also encodes each message as JSON and writes it to the socket); with
// --twin remote-batched it registers with "batch": true, so many messages share a packet. P device
// connections (dev-0 .. dev-<P-1>) publish on $hw/events/device/default/dev-<i>/twin/update; the
// module counts what reaches it. CPU is the loop thread's own CPU clock, so the load generator is
// not counted. With --twin remote each run first measures the machine's SEQPACKET floor: bare
// packets of a routed message's size between two threads that do nothing else, the most a
// one-message-per-packet row can reach on this machine at this time (its speed drifts).
//
// mosquitto: the same P publishers to a mosquitto on a free loopback port and ONE subscriber on
// $hw/events/device/+/+/twin/+ with the same QoS (what a mode-2 edgecore's sub client is),
// reading as fast as it can. CPU is the mosquitto process's utime + stime from /proc.
// --mosquitto none leaves it out; --publishers and --qos keep only the scenarios named (for a
// profile of one scenario; threads are named eb-loop, eb-twin, pub and mq-sub).
//
// Each payload carries its publisher's sequence number, so the subscriber sees holes as they
// happen. Publishers are paced to stay at most `window` messages (default 1000, all publishers
// together) ahead of what the counting side has counted or seen missing, so the run measures
// sustained routing, not buffering, and a broker that drops does not stall the run. A full window
// is checked every 200 us and reopens once a quarter of it is free, so that the publishers send
// batches, not the one message the last count made room for, and the generator's own CPU (shown
// per message under each row) stays small next to the broker's. Any loss is
// reported; the program exits with status 2 when eventbus lost a message (mosquitto
// runs with its default settings, whose max_queued_messages 1000 can drop under QoS 1 fan-in).
#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

#include "bus/bus.hpp"
#include "bus/message_json.hpp"
#include "bus/module.hpp"
#include "common/asio.hpp"
#include "common/heap.hpp"
#include "common/log.hpp"
#include "config/config.hpp"
#include "daemon/app.hpp"
#include "eventbus/eventbus_module.hpp"
#include "eventbus/routing.hpp"
#include "load_client.hpp"
#include "mqtt/broker/server.hpp"
#include "mqtt/codec/decoder.hpp"
#include "mqtt/codec/encoder.hpp"
#include "remote/client.hpp"
#include "remote/packet_io.hpp"
#include "remote/sizing.hpp"

extern char** environ;

namespace {

using namespace ebus::bench;
namespace codec = ebus::mqtt::codec;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Messages the publishers, together, may be ahead of what the counting side has counted (or
// seen missing).
constexpr std::size_t default_window = 1000;
constexpr std::size_t puback_window = 100;  // unacknowledged QoS 1 publishes per publisher
constexpr std::size_t batch_bytes = 8 * 1024;
constexpr auto stall_limit = 3s;  // no progress for this long: the rest is lost

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
      .count();
}

// CPU time so far of a thread of this process (CLOCK_THREAD_CPUTIME_ID: the calling one).
double thread_cpu_seconds(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// CPU microseconds per message; 0 when none came.
double us_per_msg(double cpu_seconds, std::size_t messages) {
  return messages == 0 ? 0.0 : cpu_seconds * 1e6 / static_cast<double>(messages);
}

// Threads are named so that a profile (perf report --comm) tells the node's loop from the load.
void name_thread(const char* name) {
  ::pthread_setname_np(::pthread_self(), name);
}

// --- what counts the routed messages ------------------------------------------------------------

// Shared by the counting side (writer) and the publishers and main thread (readers).
struct progress {
  std::atomic<std::uint64_t> counted{0};  // cumulative
  std::atomic<std::uint64_t> gaps{0};     // messages known lost: holes in a publisher's sequence
  std::atomic<std::uint64_t> reordered{0};
  std::atomic<std::int64_t> last_ns{0};  // steady clock of the last counted batch
};

// The payload: 64 bytes of JSON whose value is the publisher's sequence number, in 16 digits at
// a fixed offset, so that a subscriber can see holes without a JSON parser.
constexpr std::string_view payload_head = R"({"twin":{"temperature":{"actual":{"value":")";
constexpr std::string_view payload_tail = R"("}}}})";
constexpr std::size_t seq_digits = 16;
constexpr std::size_t payload_size = payload_head.size() + seq_digits + payload_tail.size();
static_assert(payload_size == 64);

void write_seq(std::string& payload, std::uint64_t seq) {
  for (std::size_t i = payload_head.size() + seq_digits; i > payload_head.size(); --i) {
    payload[i - 1] = static_cast<char>('0' + seq % 10);
    seq /= 10;
  }
}

std::string make_payload() {
  std::string p(payload_head);
  p.append(seq_digits, '0');
  p.append(payload_tail);
  return p;
}

constexpr std::string_view topic_head = "$hw/events/device/default/dev-";

std::string device_topic(std::size_t i) {
  return std::string(topic_head) + std::to_string(i) + "/twin/update";
}

// Publisher index and sequence number of one of our messages; nullopt for anything else.
std::optional<std::pair<std::size_t, std::uint64_t>> parse_message(std::string_view topic,
                                                                   std::string_view payload) {
  if (!topic.starts_with(topic_head) || payload.size() != payload_size) return std::nullopt;
  std::size_t index = 0;
  std::size_t i = topic_head.size();
  for (; i < topic.size() && topic[i] >= '0' && topic[i] <= '9'; ++i)
    index = index * 10 + static_cast<std::size_t>(topic[i] - '0');
  if (i == topic_head.size() || i == topic.size() || topic[i] != '/') return std::nullopt;
  std::uint64_t seq = 0;
  for (std::size_t k = payload_head.size(); k < payload_head.size() + seq_digits; ++k) {
    if (payload[k] < '0' || payload[k] > '9') return std::nullopt;
    seq = seq * 10 + static_cast<std::uint64_t>(payload[k] - '0');
  }
  return std::pair{index, seq};
}

// Stands in for devicetwin: counts every message of its inbox.
class counting_module final : public ebus::bus::module {
 public:
  explicit counting_module(progress& p) : progress_(p) {}
  [[nodiscard]] std::string name() const override { return "twin"; }
  [[nodiscard]] std::string group() const override { return "twin"; }

  ebus::awaitable<void> run(ebus::bus::bus& b) override {
    const std::string self = name();
    for (;;) {
      auto m = co_await b.receive(self);
      if (!m) co_return;
      std::uint64_t n = 1;
      while (b.try_receive(self)) {
        ++n;
      }
      progress_.counted.fetch_add(n, std::memory_order_relaxed);
      progress_.last_ns.store(now_ns(), std::memory_order_release);
    }
  }

 private:
  progress& progress_;
};

// An eventbus node on its own loop thread.
class node {
 public:
  /// With `remote_socket`, the twin module is not in the process: the node listens for remote
  /// modules on that SEQPACKET socket path instead.
  node(const std::filesystem::path& dir, const std::string& remote_socket) {
    ebus::config::daemon_config cfg;
    cfg.node_name = "bench-node";
    cfg.data_source = (dir / "edgecore.db").string();
    cfg.eventbus.mode = ebus::config::mqtt_mode::internal;
    cfg.eventbus.server_internal = "tcp://127.0.0.1:0";
    cfg.eventbus.module_socket = remote_socket;
    cfg.eventbus.module_stream_socket.clear();
    app_ = std::make_unique<ebus::daemon::app>(io_, std::move(cfg));
    if (remote_socket.empty()) app_->add_module(std::make_unique<counting_module>(progress_));
    if (auto started = app_->start(); !started) throw std::runtime_error(started.error());
    port_ = app_->internal_broker()->local_endpoint().port();
    work_.emplace(io_.get_executor());
    thread_ = std::thread([this] {
      name_thread("eb-loop");
      io_.run();
    });
    if (::pthread_getcpuclockid(thread_.native_handle(), &cpu_clock_) != 0) {
      throw std::runtime_error("pthread_getcpuclockid failed");
    }
  }
  node(const node&) = delete;
  node& operator=(const node&) = delete;
  ~node() {
    asio::post(io_, [this] { app_->stop(2s, [this] { work_.reset(); }); });
    thread_.join();
  }

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] progress& counter() noexcept { return progress_; }

  // CPU time of the loop thread so far, read from any thread.
  [[nodiscard]] double loop_cpu_seconds() const { return thread_cpu_seconds(cpu_clock_); }

  // The node's own totals, read on the loop.
  struct totals {
    std::uint64_t to_twin = 0;
    std::uint64_t no_member = 0;
    std::uint64_t refused = 0;
    std::uint64_t queue_full = 0;
  };
  totals stats() {
    std::promise<totals> p;
    auto f = p.get_future();
    asio::post(io_, [&] {
      const auto& es = app_->eventbus()->stats();
      p.set_value({es.to_twin, es.no_member, es.refused, app_->message_bus().stats().queue_full});
    });
    return f.get();
  }

 private:
  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::unique_ptr<ebus::daemon::app> app_;
  progress progress_;
  std::uint16_t port_ = 0;
  std::thread thread_;
  clockid_t cpu_clock_{};
};

// Stands in for devicetwin as a separate process would: a remote module "twin" on the module
// socket, counting every message it reads (JSON decoding included), on its own thread.
class remote_counter {
 public:
  remote_counter(const std::string& socket, ebus::remote::packet_framing framing, progress& p)
      : progress_(p) {
    auto c = ebus::remote::bus_client::connect(socket, "twin", "twin", false,
                                               std::chrono::seconds(5), framing);
    if (!c) throw std::runtime_error(c.error());
    client_.emplace(std::move(*c));
    thread_ = std::thread([this] {
      name_thread("eb-twin");
      run();
    });
    if (::pthread_getcpuclockid(thread_.native_handle(), &cpu_clock_) != 0) {
      throw std::runtime_error("pthread_getcpuclockid failed");
    }
  }
  remote_counter(const remote_counter&) = delete;
  remote_counter& operator=(const remote_counter&) = delete;
  ~remote_counter() {
    done_.store(true);
    thread_.join();
  }

  // CPU time of the module's thread so far (receiving and decoding), read from any thread.
  [[nodiscard]] double cpu_seconds() const { return thread_cpu_seconds(cpu_clock_); }

 private:
  void run() {
    ebus::bus::message m;  // decoded again for every message, as a module handling one at a time
    while (!done_.load()) {
      const auto got = client_->receive_into(m, 50ms);
      if (!got) return;  // the node went away
      if (!*got) continue;
      progress_.counted.fetch_add(1, std::memory_order_relaxed);
      progress_.last_ns.store(now_ns(), std::memory_order_release);
    }
  }

  progress& progress_;
  std::optional<ebus::remote::bus_client> client_;
  std::atomic<bool> done_{false};
  std::thread thread_;
  clockid_t cpu_clock_{};
};

// Stands in for a mode-2 edgecore's sub client: one subscriber reading as fast as it can.
class subscriber {
 public:
  subscriber(std::uint16_t port, codec::qos_level qos) : fd_(mqtt_connect(port, "bench-sub")) {
    std::string out;
    codec::encode(codec::subscribe{1, {{"$hw/events/device/+/+/twin/+", qos}}}, out);
    send_all(fd_, out);
    auto ack = read_packet(fd_, dec_);
    const auto* s = std::get_if<codec::suback>(&ack);
    if (s == nullptr || s->return_codes.empty() ||
        s->return_codes[0] == codec::suback_return_code::failure) {
      throw std::runtime_error("SUBSCRIBE refused");
    }
    reader_ = std::thread([this] {
      name_thread("mq-sub");
      read_loop();
    });
    if (::pthread_getcpuclockid(reader_.native_handle(), &cpu_clock_) != 0) {
      throw std::runtime_error("pthread_getcpuclockid failed");
    }
  }
  subscriber(const subscriber&) = delete;
  subscriber& operator=(const subscriber&) = delete;
  ~subscriber() {
    ::shutdown(fd_, SHUT_RDWR);
    reader_.join();
    ::close(fd_);
  }
  [[nodiscard]] progress& counter() noexcept { return progress_; }
  // CPU time of the subscriber's thread so far (receiving, decoding, acknowledging).
  [[nodiscard]] double cpu_seconds() const { return thread_cpu_seconds(cpu_clock_); }

 private:
  void read_loop() {
    std::string acks;
    try {
      for (;;) {
        std::uint64_t n = 0;
        for (;;) {
          auto r = dec_.next();
          if (!r) throw std::runtime_error("decode error");
          if (!*r) break;
          const auto* m = std::get_if<codec::publish>(&**r);
          if (m == nullptr) continue;
          ++n;
          if (const auto id = parse_message(m->topic, m->payload); id && id->first < 1024) {
            if (next_.size() <= id->first) next_.resize(id->first + 1, 0);
            auto& expected = next_[id->first];
            if (id->second > expected) {
              progress_.gaps.fetch_add(id->second - expected, std::memory_order_relaxed);
            } else if (id->second < expected) {
              progress_.reordered.fetch_add(1, std::memory_order_relaxed);
            }
            expected = std::max(expected, id->second + 1);
          }
          if (m->qos == codec::qos_level::at_least_once) {
            codec::encode(codec::puback{m->packet_id}, acks);
          }
        }
        if (n > 0) {
          progress_.counted.fetch_add(n, std::memory_order_relaxed);
          progress_.last_ns.store(now_ns(), std::memory_order_release);
        }
        if (!acks.empty()) {
          send_all(fd_, acks);
          acks.clear();
        }
        auto space = dec_.prepare(64 * 1024);
        const auto got = ::recv(fd_, space.data(), space.size(), 0);
        if (got <= 0) return;
        dec_.commit(static_cast<std::size_t>(got));
      }
    } catch (const std::exception&) {
    }
  }

  int fd_;
  codec::decoder dec_;
  std::vector<std::uint64_t> next_;  // next sequence number expected from each publisher
  progress progress_;
  std::thread reader_;
  clockid_t cpu_clock_{};
};

// --- the machine's floor for the remote rows ----------------------------------------------------

// Bare SEQPACKET packets between two threads that do nothing else: what this machine allows the
// remote rows at most, one message per packet, whatever the node and the module do per message.
struct packet_floor {
  double packets_per_s = 0;
  double sender_us_per_packet = 0;    // sendmmsg, as the node's writer
  double receiver_us_per_packet = 0;  // recvmmsg, as bus_client
};

// `count` packets of `packet_bytes`, written 64 at a time (the node's write batch) through a
// send buffer sized as the daemon sizes it, paced as the publishers are (at most `window` ahead
// of the receiver; reopened once a quarter is free), received through a packet_receiver.
packet_floor measure_packet_floor(std::size_t packet_bytes, std::size_t count, std::size_t window) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::runtime_error(std::string("socketpair: ") + std::strerror(errno));
  }
  struct closer {
    int* fds;
    ~closer() {
      ::close(fds[0]);
      ::close(fds[1]);
    }
  } guard{fds};
  // As the daemon sizes a connection's buffer at its default moduleSocketMaxMessageBytes.
  (void)ebus::remote::size_packet_send_buffer(
      fds[0], ebus::config::eventbus_config{}.module_socket_max_message_bytes + 1);
  auto receiver = ebus::remote::packet_receiver::create();
  if (!receiver)
    throw std::runtime_error("packet_receiver: " + std::string(std::strerror(receiver.error())));

  std::atomic<std::size_t> received{0};
  std::atomic<bool> reader_done{false};
  double receiver_cpu = 0;
  steady::time_point reader_end;  // both written before reader_done
  std::thread reader([&] {
    name_thread("floor-recv");
    std::size_t n = 0;
    while (n < count) {
      const auto got = receiver->receive(fds[1]);
      if (!got) break;
      if (*got == 0) {
        pollfd p{fds[1], POLLIN, 0};
        if (::poll(&p, 1, 1000) == 0) break;  // the sender stopped
        continue;
      }
      bool closed = false;
      while (const auto packet = receiver->next()) {
        closed = closed || packet->empty();
        if (!closed) ++n;
      }
      received.store(n, std::memory_order_relaxed);
      if (closed) break;
    }
    receiver_cpu = thread_cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
    reader_end = steady::now();
    reader_done.store(true);
  });
  // However the sending ends, the reader sees the end of the stream and is joined.
  struct joiner {
    std::thread& t;
    int fd;
    ~joiner() {
      ::shutdown(fd, SHUT_RDWR);
      t.join();
    }
  } join_reader{reader, fds[0]};

  const std::string packet(packet_bytes, 'x');
  ebus::remote::packet_sender sender;
  const double cpu_before = thread_cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
  const auto start = steady::now();
  std::size_t sent = 0;
  while (sent < count && !reader_done.load()) {
    if (sent >= received.load(std::memory_order_relaxed) + window) {
      while (sent + window / 4 >= received.load(std::memory_order_relaxed) + window &&
             !reader_done.load()) {
        std::this_thread::sleep_for(200us);
      }
    }
    sender.clear();
    const std::size_t batch = std::min<std::size_t>(64, count - sent);
    for (std::size_t k = 0; k < batch; ++k)
      sender.add(packet);
    while (!sender.finished() && !reader_done.load()) {
      const auto r = sender.send(fds[0]);
      if (r.error == EAGAIN) {
        pollfd p{fds[0], POLLOUT, 0};
        (void)::poll(&p, 1, 100);
      } else if (r.error != 0) {
        throw std::runtime_error(std::string("SEQPACKET floor: sendmmsg: ") +
                                 std::strerror(r.error));
      }
    }
    sent += batch;
  }
  const double sender_cpu = thread_cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu_before;
  while (!reader_done.load())
    std::this_thread::sleep_for(200us);
  const double seconds = std::chrono::duration<double>(reader_end - start).count();
  if (received.load() != count) {
    throw std::runtime_error("SEQPACKET floor: " + std::to_string(received.load()) + " of " +
                             std::to_string(count) + " packets arrived");
  }
  return {static_cast<double>(count) / seconds, us_per_msg(sender_cpu, count),
          us_per_msg(receiver_cpu, count)};
}

// The size of a packet the node writes for one of our device messages: its JSON and the '\n'.
std::size_t routed_packet_bytes() {
  auto m = ebus::eventbus::to_bus_message(device_topic(0), make_payload(), 0);
  m.header.timestamp = 1700000000000;  // as many digits as a timestamp of these years
  m.route.destination = "twin";
  std::string text;
  ebus::bus::encode_json(m, text);
  return text.size() + 1;
}

// --- the load ----------------------------------------------------------------------------------

struct scenario {
  std::size_t publishers;
  codec::qos_level qos;
  std::size_t messages;
  std::size_t window;
};

struct outcome {
  std::size_t sent = 0;
  std::size_t counted = 0;
  std::uint64_t gaps = 0;       // subscriber only: holes in the publishers' sequences
  std::uint64_t reordered = 0;  // subscriber only
  double msgs_per_s = 0;
  double cpu_us_per_msg = 0;
  double loadgen_us_per_msg = 0;            // the publishers' threads
  std::optional<std::uint64_t> stalled_at;  // counted when the pacing gave up waiting
};

// Drives `s` against `port` while `seen` counts what arrives; `cpu` reads the measured CPU time.
outcome drive(std::uint16_t port, const scenario& s, progress& seen,
              const std::function<double()>& cpu) {
  std::vector<int> fds;
  for (std::size_t i = 0; i < s.publishers; ++i)
    fds.push_back(mqtt_connect(port, "dev-" + std::to_string(i)));

  const std::uint64_t base_counted = seen.counted.load();
  const std::uint64_t base_gaps = seen.gaps.load();
  const std::uint64_t base_reordered = seen.reordered.load();
  // Messages counted, or known lost (holes in a sequence); pacing and the end wait follow it.
  auto accounted = [&] {
    return seen.counted.load() - base_counted + seen.gaps.load() - base_gaps;
  };
  std::atomic<std::uint64_t> sent{0};
  std::atomic<bool> go{false};
  std::atomic<bool> gave_up{false};
  std::atomic<std::uint64_t> stalled_at{0};
  std::atomic<double> loadgen_seconds{0};
  std::vector<std::exception_ptr> failures(s.publishers);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < s.publishers; ++i) {
    const std::size_t share = s.messages / s.publishers + (i < s.messages % s.publishers ? 1 : 0);
    threads.emplace_back([&, i, share] {
      name_thread("pub");
      const int fd = fds[i];
      const std::string topic = device_topic(i);
      std::string payload = make_payload();
      codec::decoder dec;
      std::string batch;
      std::size_t unacked = 0;
      std::uint16_t id = 0;
      const bool qos1 = s.qos == codec::qos_level::at_least_once;
      auto flush = [&] {
        if (!batch.empty()) send_all(fd, batch);
        batch.clear();
      };
      while (!go.load(std::memory_order_acquire))
        std::this_thread::yield();
      try {
        for (std::size_t k = 0; k < share; ++k) {
          // Lossless pacing against the counting side; a count that stops moving means loss,
          // and the rest is sent unpaced so that the loss shows in the result.
          if (sent.load(std::memory_order_relaxed) >= accounted() + s.window &&
              !gave_up.load(std::memory_order_relaxed)) {
            flush();
            auto last = accounted();
            auto moved = steady::now();
            // Resumes once a quarter of the window is free again, so that a wake-up sends a
            // batch, not the one message the last count made room for.
            while (sent.load(std::memory_order_relaxed) + s.window / 4 >= accounted() + s.window) {
              std::this_thread::sleep_for(200us);
              const auto c = accounted();
              if (c != last) {
                last = c;
                moved = steady::now();
              } else if (steady::now() - moved > stall_limit || gave_up.load()) {
                if (!gave_up.exchange(true)) stalled_at = c;
                break;
              }
            }
          }
          write_seq(payload, k);
          if (qos1) {
            id = static_cast<std::uint16_t>(id == 65535 ? 1 : id + 1);
            codec::encode_publish(batch, topic, payload, s.qos, false, false, id);
            ++unacked;
          } else {
            codec::encode_publish(batch, topic, payload, s.qos, false, false, 0);
          }
          sent.fetch_add(1, std::memory_order_relaxed);
          if (batch.size() >= batch_bytes || k + 1 == share) flush();
          if (qos1 && unacked >= puback_window) {
            flush();
            while (unacked > puback_window / 2) {
              if (std::holds_alternative<codec::puback>(read_packet(fd, dec))) --unacked;
            }
          }
        }
        flush();
        while (unacked > 0) {
          if (std::holds_alternative<codec::puback>(read_packet(fd, dec))) --unacked;
        }
      } catch (...) {
        failures[i] = std::current_exception();
      }
      loadgen_seconds += thread_cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
    });
  }

  const double cpu_before = cpu();
  const std::int64_t start_ns = now_ns();
  go.store(true, std::memory_order_release);

  // Wait for everything to be counted, or for the count to stop moving.
  auto last = accounted();
  auto moved = steady::now();
  while (accounted() < s.messages) {
    std::this_thread::sleep_for(1ms);
    const auto c = accounted();
    if (c != last) {
      last = c;
      moved = steady::now();
    } else if (steady::now() - moved > stall_limit) {
      break;
    }
  }
  const double cpu_after = cpu();
  for (auto& t : threads)
    t.join();
  for (const int fd : fds)
    mqtt_close(fd);
  for (auto& f : failures) {
    if (f) std::rethrow_exception(f);
  }

  outcome r;
  r.sent = sent.load();
  r.counted = seen.counted.load() - base_counted;
  r.gaps = seen.gaps.load() - base_gaps;
  r.reordered = seen.reordered.load() - base_reordered;
  if (gave_up.load()) r.stalled_at = stalled_at.load();
  // From the first send to the last message counted.
  const double secs =
      static_cast<double>(seen.last_ns.load(std::memory_order_acquire) - start_ns) * 1e-9;
  r.msgs_per_s = r.counted > 0 && secs > 0 ? static_cast<double>(r.counted) / secs : 0;
  r.cpu_us_per_msg = us_per_msg(cpu_after - cpu_before, r.counted);
  r.loadgen_us_per_msg = us_per_msg(loadgen_seconds.load(), r.counted);
  return r;
}

int run(int argc, char** argv) {
  std::optional<std::size_t> messages;
  std::optional<std::size_t> window;
  std::string mosquitto = "/usr/sbin/mosquitto";
  bool remote = false;
  bool batched = false;
  std::optional<std::size_t> only_publishers;
  std::optional<codec::qos_level> only_qos;
  std::size_t runs = 1;
  std::string json;
  parse_options(argc, argv, [&](const std::string& key, const std::string& value) {
    if (key == "--runs") {
      runs = std::stoul(value);
      return true;
    }
    if (key == "--json") {
      json = value;
      return true;
    }
    if (key == "--messages") {
      messages = std::stoul(value);
    } else if (key == "--window") {
      window = std::stoul(value);
    } else if (key == "--mosquitto") {
      mosquitto = value;
    } else if (key == "--publishers") {
      only_publishers = std::stoul(value);
    } else if (key == "--qos") {
      if (value != "0" && value != "1") throw std::runtime_error("--qos takes 0 or 1");
      only_qos = value == "0" ? codec::qos_level::at_most_once : codec::qos_level::at_least_once;
    } else if (key == "--twin") {
      if (value != "in-process" && value != "remote" && value != "remote-batched") {
        throw std::runtime_error("--twin takes in-process, remote or remote-batched");
      }
      remote = value != "in-process";
      batched = value == "remote-batched";
    } else {
      return false;
    }
    return true;
  });

  const std::size_t n0 = messages.value_or(200000);
  const std::size_t n1 = messages.value_or(100000);
  const std::size_t w = window.value_or(default_window);
  if (n0 == 0 || w == 0) throw std::runtime_error("--messages and --window must be positive");

  ebus::log::set_level("warn");
  temp_dir dir("ebus-routing-compare");
  const std::uint16_t mport = free_port();
  const auto conf = dir.path / "mosquitto.conf";
  {
    std::ofstream c(conf);
    c << "listener " << mport << " 127.0.0.1\nallow_anonymous true\nlog_type none\n";
  }
  // "none": eventbus alone (for profiling the node).
  const bool compare = mosquitto != "none";
  const pid_t mpid = compare ? spawn({mosquitto, "-c", conf.string()}) : 0;
  struct reaper {
    pid_t pid;
    ~reaper() {
      if (pid > 0) stop_process(pid);
    }
  } mosquitto_guard{mpid};
  const std::string socket = remote ? (dir.path / "eventbus.sock").string() : std::string();
  node eb(dir.path, socket);
  std::optional<remote_counter> remote_twin;
  if (remote) {
    remote_twin.emplace(
        socket,
        batched ? ebus::remote::packet_framing::batched : ebus::remote::packet_framing::one_message,
        eb.counter());
  }

  std::vector<scenario> scenarios = {
      {1, codec::qos_level::at_most_once, n0, w},
      {8, codec::qos_level::at_most_once, n0, w},
      {1, codec::qos_level::at_least_once, n1, w},
      {8, codec::qos_level::at_least_once, n1, w},
  };
  std::erase_if(scenarios, [&](const scenario& s) {
    return (only_publishers && s.publishers != *only_publishers) ||
           (only_qos && s.qos != *only_qos);
  });
  if (scenarios.empty()) throw std::runtime_error("no scenario has those publishers and QoS");
  std::printf("payload %zu bytes, topic $hw/events/device/default/dev-<i>/twin/update\n",
              make_payload().size());
  std::printf("eventbus twin module: %s\n",
              !remote   ? "in-process"
              : batched ? "remote, over the SEQPACKET module socket, batched packets (another "
                          "thread)"
                        : "remote, over the SEQPACKET module socket (another thread)");
  std::printf(
      "N = %zu (QoS 0), %zu (QoS 1); publishers, together, paced to stay at most %zu messages\n"
      "ahead of the counting side; each QoS 1 publisher keeps up to %zu PUBACKs outstanding\n\n",
      n0, n1, w, puback_window);
  std::printf("%-10s %12s %12s %12s %12s %10s %10s  %s\n", "scenario", "eb msgs/s", "eb us/msg",
              "mq msgs/s", "mq us/msg", "thr ratio", "cpu ratio", "loss (eb, mq)");

  // One JSON line per broker, scenario and run (group "routing"), for the performance report.
  // counter_us: CPU of the counting side's own thread (the remote twin, mosquitto's subscriber);
  // none for an in-process twin, whose CPU is the loop's.
  auto record = [&](const std::string& name, const char* broker, std::size_t run, const outcome& o,
                    std::size_t lost_messages, std::optional<double> counter_us) {
    ebus::bench::result_metrics metrics{{"msgs_per_s", o.msgs_per_s},
                                        {"broker_us_per_msg", o.cpu_us_per_msg},
                                        {"loadgen_us_per_msg", o.loadgen_us_per_msg}};
    if (counter_us) metrics.emplace_back("counter_us_per_msg", *counter_us);
    metrics.insert(metrics.end(), {{"sent", static_cast<double>(o.sent)},
                                   {"delivered", static_cast<double>(o.counted)},
                                   {"lost", static_cast<double>(lost_messages)}});
    append_result(json, "routing", name, broker, run, metrics,
                  std::string(broker) == "eventbus"
                      ? (!remote   ? "twin module in-process; CPU of the node loop thread"
                         : batched ? "twin module remote over SEQPACKET, batched packets; CPU of "
                                     "the node loop thread"
                                   : "twin module remote over SEQPACKET; CPU of the node loop "
                                     "thread")
                      : "one subscriber on the wildcard filter; CPU of the mosquitto process");
  };

  bool lost = false;
  std::vector<std::string> notes;
  const std::size_t floor_bytes = remote && !batched ? routed_packet_bytes() : 0;
  for (std::size_t run = 1; run <= runs; ++run) {
    if (floor_bytes != 0) {
      const auto f = measure_packet_floor(floor_bytes, n1, w);
      std::printf(
          "%-10s %12.0f %12.2f %12s %12s  (SEQPACKET floor: bare %zu-byte packets between "
          "two threads; sender CPU, receiver %.2f us)\n",
          "floor", f.packets_per_s, f.sender_us_per_packet, "-", "-", floor_bytes,
          f.receiver_us_per_packet);
      append_result(json, "routing", "SEQPACKET floor", "eventbus", run,
                    {{"msgs_per_s", f.packets_per_s},
                     {"broker_us_per_msg", f.sender_us_per_packet},
                     {"counter_us_per_msg", f.receiver_us_per_packet}},
                    "SEQPACKET floor: bare " + std::to_string(floor_bytes) +
                        "-byte packets (a routed message's size) between two threads that do "
                        "nothing else, sendmmsg 64 at a time and recvmmsg, same window; "
                        "broker_us_per_msg is the sender's CPU, counter_us_per_msg the "
                        "receiver's: the most a one-message-per-packet row can reach here");
    }
    for (const auto& s : scenarios) {
      const auto before = eb.stats();
      const double twin_before = remote_twin ? remote_twin->cpu_seconds() : 0;
      const auto ours = drive(eb.port(), s, eb.counter(), [&eb] { return eb.loop_cpu_seconds(); });
      const double twin_cpu = remote_twin ? remote_twin->cpu_seconds() - twin_before : 0;
      const auto after = eb.stats();
      outcome theirs;
      double sub_cpu = 0;
      if (compare) {
        subscriber sub(mport, s.qos);
        const double sub_before = sub.cpu_seconds();
        theirs = drive(mport, s, sub.counter(), [mpid] { return process_cpu_seconds(mpid); });
        sub_cpu = sub.cpu_seconds() - sub_before;
      }
      const int q = static_cast<int>(s.qos);
      const std::string name = "P=" + std::to_string(s.publishers) + " QoS" + std::to_string(q);
      const std::size_t eb_lost = s.messages - std::min(s.messages, ours.counted);
      const std::size_t mq_lost = compare ? s.messages - std::min(s.messages, theirs.counted) : 0;
      auto loss = [&s](std::size_t n) {
        if (n == 0) return std::string("0");
        char pct[32];
        std::snprintf(pct, sizeof pct, " (%.1f%%)",
                      100.0 * static_cast<double>(n) / static_cast<double>(s.messages));
        return std::to_string(n) + pct;
      };
      if (compare) {
        std::printf("%-10s %12.0f %12.2f %12.0f %12.2f %9.2fx %9.2fx  %s, %s\n", name.c_str(),
                    ours.msgs_per_s, ours.cpu_us_per_msg, theirs.msgs_per_s, theirs.cpu_us_per_msg,
                    ours.msgs_per_s / theirs.msgs_per_s,
                    ours.cpu_us_per_msg / theirs.cpu_us_per_msg, loss(eb_lost).c_str(),
                    loss(mq_lost).c_str());
      } else {
        std::printf("%-10s %12.0f %12.2f %12s %12s %10s %10s  %s, -\n", name.c_str(),
                    ours.msgs_per_s, ours.cpu_us_per_msg, "-", "-", "-", "-",
                    loss(eb_lost).c_str());
      }
      const std::optional<double> twin_us =
          remote_twin ? std::optional(us_per_msg(twin_cpu, ours.counted)) : std::nullopt;
      const double sub_us = us_per_msg(sub_cpu, theirs.counted);
      auto cell = [](std::optional<double> v) {
        char text[32] = "-";
        if (v) std::snprintf(text, sizeof text, "%.2f", *v);
        return std::string(text);
      };
      const std::optional<double> mq_loadgen =
          compare ? std::optional(theirs.loadgen_us_per_msg) : std::nullopt;
      const std::optional<double> mq_sub = compare ? std::optional(sub_us) : std::nullopt;
      std::printf("%-10s %12s %12s %12s %12s  (load generator)\n", "", "",
                  cell(ours.loadgen_us_per_msg).c_str(), "", cell(mq_loadgen).c_str());
      if (twin_us || compare) {
        std::printf("%-10s %12s %12s %12s %12s  (counting side: %s)\n", "", "",
                    cell(twin_us).c_str(), "", cell(mq_sub).c_str(),
                    remote_twin ? "remote twin thread; subscriber thread" : "subscriber thread");
      }
      std::fflush(stdout);
      auto stall = [](const outcome& o) {
        if (!o.stalled_at) return std::string();
        return "; nothing arrived for 3 s at " + std::to_string(*o.stalled_at) +
               ", pacing given up from there";
      };
      const auto to_twin = after.to_twin - before.to_twin;
      if (eb_lost != 0 || ours.sent != s.messages || ours.stalled_at || to_twin != ours.counted) {
        notes.push_back(name + ": eventbus module counted " + std::to_string(ours.counted) +
                        " of " + std::to_string(ours.sent) + " sent (eventbus to_twin " +
                        std::to_string(to_twin) + ", no_member " +
                        std::to_string(after.no_member - before.no_member) + ", refused " +
                        std::to_string(after.refused - before.refused) + ", bus queue_full " +
                        std::to_string(after.queue_full - before.queue_full) + ")" + stall(ours));
      }
      if (compare && (mq_lost != 0 || theirs.sent != s.messages || theirs.stalled_at)) {
        notes.push_back(name + ": mosquitto subscriber counted " + std::to_string(theirs.counted) +
                        " of " + std::to_string(theirs.sent) + " sent (" +
                        std::to_string(theirs.gaps) + " seen missing from the sequences, " +
                        std::to_string(theirs.reordered) + " out of order)" + stall(theirs));
      }
      record(name, "eventbus", run, ours, eb_lost, twin_us);
      if (compare) record(name, "mosquitto", run, theirs, mq_lost, sub_us);
      lost = lost || eb_lost != 0;
    }
  }

  std::printf(
      "\nthr ratio = eventbus msgs/s / mosquitto msgs/s (>1: eventbus faster);\n"
      "cpu ratio = eventbus us/msg / mosquitto us/msg (<1: eventbus cheaper).\n"
      "eb us/msg: CPU of the node's loop thread only (broker, routing, bus, counting module;\n"
      "  remote: JSON encoding and socket writes). Below it, each side's load generator (the\n"
      "  publishers' threads) and counting side: a remote twin's own thread (receive, decode),\n"
      "  mosquitto's subscriber thread.\n"
      "mq us/msg: CPU of the mosquitto process (routing to and writing for its subscriber).\n"
      "msgs/s and us/msg count delivered messages only; a row with loss compares unequal work.\n"
      "Caveats: load generator, subscriber and broker share the machine's %u cores; mosquitto's\n"
      "CPU comes from /proc in %ld ms ticks; the mosquitto side also runs a subscriber client\n"
      "that the eventbus side does not need.\n",
      std::thread::hardware_concurrency(), 1000 / ::sysconf(_SC_CLK_TCK));
  if (!notes.empty()) {
    std::printf("\n%s:\n", lost ? "LOSS (eventbus)" : "NOTES");
    for (const auto& n : notes)
      std::printf("  %s\n", n.c_str());
  }
  return lost ? 2 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  ebus::tune_heap();  // the node runs in this process: the daemon's heap policy
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "routing_compare: %s\n", e.what());
    return 1;
  }
}
