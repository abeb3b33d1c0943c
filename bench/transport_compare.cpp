// The embedded broker (broker_server) and Debian's mosquitto side by side over each listener
// kind, tcp, tls, ws and wss, in one run on one machine, each broker with the same single
// listener on 127.0.0.1 and a fresh process for every row:
//
//   throughput   1 publisher -> 1 subscriber, 64-byte payloads, QoS 0 and QoS 1: messages/s
//                seen by the subscriber, broker CPU per delivered message, and the load
//                generator's own CPU per message
//   connections  TCP connect + TLS handshake (tls, wss) + WebSocket upgrade (ws, wss) +
//                CONNECT/CONNACK + DISCONNECT and close, from 2 client threads: connections/s,
//                broker CPU per connection, the load generator's CPU per connection
//
//   transport_compare [--messages N] [--connections N] [--transports tcp,tls,ws,wss]
//                     [--window W] [--mosquitto PATH] [--server PATH] [--mosquitto-conf LINE]
//
// --messages is the QoS 0 count (QoS 1 sends a quarter of it, as broker_compare does);
// --connections the count per TLS row (plain rows make 5 times as many, so that their far
// cheaper connections still add up to enough broker CPU ticks to read). --mosquitto-conf adds a
// line to every mosquitto configuration (may be repeated), e.g. "set_tcp_nodelay true" to see
// what Nagle's algorithm, on by default there, costs the connection rows.
//
// The publisher runs at most W messages ahead of what the subscriber received, 1000 by default
// (mosquitto's default queue, not a window tuned to our defaults); once there, it waits until
// half of that has arrived, so it writes in batches rather than a message at a time. QoS 1
// publishers have no other limit: their PUBACKs are read between batches. The subscriber
// acknowledges what each read brought in one write. Both brokers get the same client code
// (load_client's client_link): batches of up to 15 KiB, each one WebSocket frame and one TLS
// record.
//
// Certificates: a throwaway CA and a server certificate for IP 127.0.0.1 (EC P-256), made with
// the openssl CLI in a temporary directory; both brokers serve the same pair. The throughput
// clients check the certificate against the CA; the connection clients do not, since checking
// costs the client only and the broker does the same work either way. Neither resumes sessions:
// every connection is a full handshake.
//
// Broker CPU is utime + stime of the broker process from /proc/<pid>/stat (clock ticks); the load
// generator's is this process's getrusage. Nothing is pinned: brokers and load generator share
// the machine's cores.
//
// Exit status: 2 when eventbus lost a message or a client failed against it (mosquitto's
// losses and failures are only reported); 1 on an error; 0 otherwise.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <variant>
#include <vector>

#include "load_client.hpp"
#include "mqtt/codec/encoder.hpp"

namespace {

using namespace ebus::bench;
namespace codec = ebus::mqtt::codec;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t payload_size = 64;
constexpr std::size_t default_window = 1000;
// Flushed at this size: a batch and its frame header fit one 16 KiB TLS record.
constexpr std::size_t batch_bytes = std::size_t{15} * 1024;
constexpr std::size_t connection_threads = 2;
constexpr std::size_t plain_connection_factor = 5;
constexpr std::size_t max_connection_failures = 10;
constexpr auto quiet_limit = 250ms;  // nothing arrived for this long: what is in flight is lost
constexpr auto stall_limit = 2s;     // at the end: nothing arrived for this long, stop waiting

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
      .count();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// --- certificates --------------------------------------------------------------------------------

struct tls_files {
  std::string ca;    ///< the CA's certificate: what clients trust
  std::string cert;  ///< the server certificate, issued by the CA, for IP 127.0.0.1
  std::string key;   ///< its key
};

void run_openssl(std::vector<std::string> args, const std::string& log) {
  args.insert(args.begin(), "openssl");
  const pid_t pid = spawn(args, log);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("openssl " + args[1] + " failed: " + read_text(log));
  }
}

tls_files make_certificates(const temp_dir& dir) {
  const auto at = [&dir](const char* name) { return (dir.path / name).string(); };
  tls_files f{at("ca.pem"), at("server.pem"), at("server.key")};
  const std::string log = at("openssl.log");
  const std::string ca_key = at("ca.key");
  run_openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-days", "1", "-subj", "/CN=eventbus benchmark CA", "-keyout", ca_key, "-out", f.ca},
              log);
  run_openssl({"req",
               "-newkey",
               "ec",
               "-pkeyopt",
               "ec_paramgen_curve:P-256",
               "-nodes",
               "-days",
               "1",
               "-subj",
               "/CN=localhost",
               "-addext",
               "subjectAltName=IP:127.0.0.1",
               "-addext",
               "basicConstraints=critical,CA:FALSE",
               "-CA",
               f.ca,
               "-CAkey",
               ca_key,
               "-keyout",
               f.key,
               "-out",
               f.cert},
              log);
  return f;
}

// --- the brokers
// ----------------------------------------------------------------------------------

enum class broker_kind : std::uint8_t { eventbus, mosquitto };

struct settings {
  std::string server;
  std::string mosquitto;
  std::vector<std::string> mosquitto_conf;  // extra lines
  std::size_t window = default_window;
  tls_files files;
};

// One broker process with one listener; stopped when destroyed.
class running_broker {
 public:
  running_broker(broker_kind kind, transport_kind transport, const settings& s, const temp_dir& dir)
      : port_(free_port()) {
    static int serial = 0;
    const std::string base = (dir.path / ("broker-" + std::to_string(++serial))).string();
    log_ = base + ".log";
    const bool tls = uses_tls(transport);
    if (kind == broker_kind::eventbus) {
      std::vector<std::string> argv = {
          s.server, std::to_string(port_), "--url",
          std::string(name_of(transport)) + "://127.0.0.1:" + std::to_string(port_)};
      if (tls) argv.insert(argv.end(), {"--cert", s.files.cert, "--key", s.files.key});
      pid_ = spawn(argv, log_);
      return;
    }
    const std::string conf = base + ".conf";
    std::ofstream c(conf);
    // As root mosquitto switches to the "mosquitto" user, which cannot read our private
    // temporary directory; log_type none keeps logging out of the numbers.
    if (::geteuid() == 0) c << "user root\n";
    c << "log_type none\nallow_anonymous true\n";
    for (const auto& line : s.mosquitto_conf)
      c << line << "\n";
    c << "listener " << port_ << " 127.0.0.1\n";
    if (uses_websocket(transport)) {
      // libwebsockets binds 127.0.0.1 only with IPv6 off; without it, it listens on every
      // address.
      c << "protocol websockets\nsocket_domain ipv4\n";
    }
    if (tls) c << "certfile " << s.files.cert << "\nkeyfile " << s.files.key << "\n";
    if (uses_websocket(transport)) {
      // 2.0.11 refuses to start when every listener is a WebSocket one ("Unable to start any
      // listening sockets"): one plain listener that no client uses.
      c << "listener " << free_port() << " 127.0.0.1\n";
    }
    c.close();
    if (!c) throw std::runtime_error("cannot write " + conf);
    pid_ = spawn({s.mosquitto, "-c", conf}, log_);
  }
  running_broker(const running_broker&) = delete;
  running_broker& operator=(const running_broker&) = delete;
  ~running_broker() { stop_process(pid_); }

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  /// What the broker wrote to stderr, for an error message.
  [[nodiscard]] std::string log() const { return read_text(log_); }

 private:
  std::uint16_t port_;
  pid_t pid_ = 0;
  std::string log_;
};

// --- throughput
// -----------------------------------------------------------------------------------

// What the subscriber has received: written by its reader thread after each read, read by the
// publisher for its window and by the end of the run.
class progress {
 public:
  void add(std::size_t n) {
    const std::size_t total = received_.fetch_add(n) + n;
    last_ns_.store(now_ns());
    if (total >= wake_at_.load()) {
      std::lock_guard lock(mutex_);
      wake_.notify_one();
    }
  }
  [[nodiscard]] std::size_t received() const { return received_.load(); }
  [[nodiscard]] std::int64_t last_ns() const { return last_ns_.load(); }

  /// Waits until received() reaches `target`; false once nothing has arrived for `quiet`.
  bool wait_for(std::size_t target, std::chrono::nanoseconds quiet) {
    const std::int64_t start = now_ns();
    wake_at_.store(target);
    std::unique_lock lock(mutex_);
    bool reached = true;
    while (received_.load() < target) {
      wake_.wait_for(lock, 5ms);  // the timeout only bounds how late a stall is noticed
      const std::int64_t since = now_ns() - std::max(start, last_ns_.load());
      if (received_.load() < target && since > quiet.count()) {
        reached = false;
        break;
      }
    }
    wake_at_.store(std::numeric_limits<std::size_t>::max());
    return reached;
  }

 private:
  std::atomic<std::size_t> received_{0};
  std::atomic<std::int64_t> last_ns_{0};
  std::atomic<std::size_t> wake_at_{std::numeric_limits<std::size_t>::max()};
  std::mutex mutex_;
  std::condition_variable wake_;
};

struct flow_result {
  std::size_t sent = 0;
  std::size_t received = 0;
  double seconds = 0;     // first send to last message received
  double broker_cpu = 0;  // seconds
  double own_cpu = 0;     // seconds, this process
  std::size_t window_restarts = 0;
  std::string tls;
  std::vector<std::string> errors;

  [[nodiscard]] double msgs_per_s() const {
    return seconds > 0 ? static_cast<double>(received) / seconds : 0;
  }
  [[nodiscard]] double broker_us() const { return per(broker_cpu); }
  [[nodiscard]] double own_us() const { return per(own_cpu); }

 private:
  [[nodiscard]] double per(double cpu) const {
    return received > 0 ? cpu * 1e6 / static_cast<double>(received) : 0;
  }
};

flow_result run_flow(const running_broker& broker, transport_kind transport,
                     const tls_client_context* tls, codec::qos_level qos, std::size_t count,
                     std::size_t window) {
  flow_result r;
  const bool qos1 = qos == codec::qos_level::at_least_once;
  const std::string topic = "bench/" + std::to_string(static_cast<int>(qos));
  client_link sub(broker.port(), transport, tls);
  sub.mqtt_connect("bench-sub");
  {
    std::string out;
    codec::encode(codec::subscribe{1, {{topic, qos}}}, out);
    sub.send(out);
    auto ack = sub.read_packet();
    const auto* s = std::get_if<codec::suback>(&ack);
    if (s == nullptr || s->return_codes.empty() ||
        s->return_codes[0] == codec::suback_return_code::failure) {
      throw std::runtime_error("SUBSCRIBE refused");
    }
  }
  client_link pub(broker.port(), transport, tls);
  pub.mqtt_connect("bench-pub");
  r.tls = sub.tls_description();

  progress seen;
  std::atomic<bool> stopping{false};
  std::string reader_error;
  std::thread reader([&] {
    std::string acks;
    try {
      for (;;) {
        sub.receive(true);
        std::size_t n = 0;
        while (auto p = sub.next_buffered()) {
          if (const auto* m = std::get_if<codec::publish>(&*p)) {
            ++n;
            if (m->qos == codec::qos_level::at_least_once) {
              codec::encode(codec::puback{m->packet_id}, acks);
            }
          }
        }
        if (!acks.empty()) {
          sub.send(acks);
          acks.clear();
        }
        if (n != 0) seen.add(n);
      }
    } catch (const std::exception& e) {
      if (!stopping.load()) reader_error = std::string("subscriber: ") + e.what();
    }
  });

  const std::string payload(payload_size, 'p');
  std::string batch;
  batch.reserve(batch_bytes + 256);
  std::size_t acked = 0;
  std::size_t lost_allowance = 0;  // taken as lost at the last window restart
  std::uint16_t id = 0;
  const auto drain_acks = [&] {
    for (;;) {
      while (auto p = pub.next_buffered()) {
        if (std::holds_alternative<codec::puback>(*p)) ++acked;
      }
      if (!pub.receive(false)) return;
    }
  };
  const auto flush = [&] {
    if (!batch.empty()) {
      pub.send(batch);
      batch.clear();
    }
    if (qos1) drain_acks();
  };

  const double broker_before = process_cpu_seconds(broker.pid());
  const double own_before = own_cpu_seconds();
  const std::int64_t start_ns = now_ns();
  try {
    for (std::size_t i = 0; i < count; ++i) {
      if (r.sent - lost_allowance >= seen.received() + window) {
        flush();
        if (!seen.wait_for(r.sent - lost_allowance - window / 2, quiet_limit)) {
          // What is in flight will not come: a lossy broker must not stall the run.
          lost_allowance = r.sent - std::min(r.sent, seen.received());
          ++r.window_restarts;
        }
      }
      if (qos1) {
        id = static_cast<std::uint16_t>(id == 65535 ? 1 : id + 1);
        codec::encode_publish(batch, topic, payload, qos, false, false, id);
      } else {
        codec::encode_publish(batch, topic, payload, qos, false, false, 0);
      }
      ++r.sent;
      if (batch.size() >= batch_bytes) flush();
    }
    flush();
    while (qos1 && acked < r.sent) {
      pub.receive(true);
      drain_acks();
    }
  } catch (const std::exception& e) {
    r.errors.push_back(std::string("publisher: ") + e.what());
  }
  (void)seen.wait_for(r.sent, stall_limit);
  const double broker_after = process_cpu_seconds(broker.pid());
  const double own_after = own_cpu_seconds();
  stopping.store(true);
  sub.shutdown();
  reader.join();
  if (!reader_error.empty()) r.errors.push_back(reader_error);

  r.received = seen.received();
  const std::int64_t last = seen.last_ns();
  r.seconds = last > start_ns ? static_cast<double>(last - start_ns) * 1e-9 : 0;
  r.broker_cpu = broker_after - broker_before;
  r.own_cpu = own_after - own_before;
  return r;
}

// --- connections ---------------------------------------------------------------------------------

struct connect_result {
  std::size_t done = 0;
  std::size_t failed = 0;
  double seconds = 0;
  double broker_cpu = 0;
  double own_cpu = 0;
  std::string tls;
  std::vector<std::string> errors;

  [[nodiscard]] double per_s() const {
    return seconds > 0 ? static_cast<double>(done) / seconds : 0;
  }
  [[nodiscard]] double broker_us() const { return per(broker_cpu); }
  [[nodiscard]] double own_us() const { return per(own_cpu); }

 private:
  [[nodiscard]] double per(double cpu) const {
    return done > 0 ? cpu * 1e6 / static_cast<double>(done) : 0;
  }
};

connect_result run_connections(const running_broker& broker, transport_kind transport,
                               const tls_client_context* tls, std::size_t count) {
  connect_result r;
  std::string disconnect;
  codec::encode(codec::disconnect{}, disconnect);
  {
    // Also waits for the broker to listen.
    client_link first(broker.port(), transport, tls);
    first.mqtt_connect("bench-first");
    first.send(disconnect);
    r.tls = first.tls_description();
  }

  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> done{0};
  std::atomic<std::size_t> failed{0};
  std::mutex errors_mutex;
  const double broker_before = process_cpu_seconds(broker.pid());
  const double own_before = own_cpu_seconds();
  const auto start = steady::now();
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < connection_threads; ++t) {
    threads.emplace_back([&] {
      for (std::size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
        try {
          client_link c(broker.port(), transport, tls);
          c.mqtt_connect("bench-" + std::to_string(i));
          c.send(disconnect);
          done.fetch_add(1);
        } catch (const std::exception& e) {
          if (failed.fetch_add(1) + 1 >= max_connection_failures) next.store(count);
          std::lock_guard lock(errors_mutex);
          if (r.errors.size() < 3) r.errors.emplace_back(e.what());
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  r.seconds = std::chrono::duration<double>(steady::now() - start).count();
  r.broker_cpu = process_cpu_seconds(broker.pid()) - broker_before;
  r.own_cpu = own_cpu_seconds() - own_before;
  r.done = done.load();
  r.failed = failed.load();
  return r;
}

// --- output
// ----------------------------------------------------------------------------------------

std::string ratio(double ours, double theirs) {
  if (theirs <= 0 || ours <= 0) return "n/a";
  char text[32];
  std::snprintf(text, sizeof text, "%.2fx", ours / theirs);
  return text;
}

// Runs `body` against a fresh broker of each kind, alternating which goes first so that neither
// always runs on a warmer machine. An error ends up in the result's errors, and every error in
// the notes.
template <class Result, class Body>
std::pair<Result, Result> against_both(std::size_t row, transport_kind transport, const settings& s,
                                       const temp_dir& dir, std::vector<std::string>& notes,
                                       const std::string& what, Body body) {
  Result ours;
  Result theirs;
  const auto one = [&](broker_kind kind, Result& out) {
    const char* name = kind == broker_kind::eventbus ? "eventbus" : "mosquitto";
    try {
      const running_broker broker(kind, transport, s, dir);
      try {
        out = body(broker);
      } catch (const std::exception& e) {
        std::string log = broker.log();
        if (!log.empty()) log = "; its stderr: " + log;
        throw std::runtime_error(e.what() + log);
      }
    } catch (const std::exception& e) {
      out.errors.emplace_back(e.what());
    }
    for (const auto& e : out.errors)
      notes.push_back(what + ", " + name + ": " + e);
  };
  if (row % 2 == 0) {
    one(broker_kind::mosquitto, theirs);
    one(broker_kind::eventbus, ours);
  } else {
    one(broker_kind::eventbus, ours);
    one(broker_kind::mosquitto, theirs);
  }
  return {ours, theirs};
}

std::vector<transport_kind> parse_transports(const std::string& list) {
  std::vector<transport_kind> out;
  std::size_t at = 0;
  while (at <= list.size()) {
    const std::size_t comma = std::min(list.find(',', at), list.size());
    out.push_back(parse_transport(std::string_view(list).substr(at, comma - at)));
    at = comma + 1;
  }
  return out;
}

int run(int argc, char** argv) {
  std::size_t messages = 200000;
  std::size_t connections = 1000;
  std::string transports = "tcp,tls,ws,wss";
  settings s;
  s.mosquitto = "/usr/sbin/mosquitto";
  s.server = std::string(EBUS_BENCH_DIR) + "/broker_server";
  parse_options(argc, argv, [&](const std::string& key, const std::string& value) {
    if (key == "--messages") {
      messages = std::stoul(value);
    } else if (key == "--connections") {
      connections = std::stoul(value);
    } else if (key == "--transports") {
      transports = value;
    } else if (key == "--window") {
      s.window = std::stoul(value);
    } else if (key == "--mosquitto-conf") {
      s.mosquitto_conf.push_back(value);
    } else if (key == "--mosquitto") {
      s.mosquitto = value;
    } else if (key == "--server") {
      s.server = value;
    } else {
      return false;
    }
    return true;
  });
  if (messages < 4 || connections == 0 || s.window < 2) {
    throw std::runtime_error(
        "--messages must be at least 4, --window at least 2 and --connections positive");
  }
  const auto kinds = parse_transports(transports);

  temp_dir dir("ebus-transport-compare");
  s.files = make_certificates(dir);
  const tls_client_context checking(s.files.ca);
  const tls_client_context trusting("");
  std::vector<std::string> notes;
  std::vector<std::string> tls_seen;
  const auto note_tls = [&tls_seen](const std::string& who, const std::string& tls) {
    if (tls.empty()) return;
    const std::string line = who + ": " + tls;
    if (std::find(tls_seen.begin(), tls_seen.end(), line) == tls_seen.end()) {
      tls_seen.push_back(line);
    }
  };

  std::printf(
      "eventbus: %s (broker_options defaults); mosquitto: %s (defaults); one listener on "
      "127.0.0.1 each, a fresh\nbroker per row. %zu-byte payloads, 1 publisher -> 1 "
      "subscriber, QoS 0: %zu messages, QoS 1: %zu; publisher at\nmost %zu messages ahead of "
      "the subscriber. Machine: %u cores, nothing pinned; broker CPU from /proc in\n%ld ms "
      "ticks. Ratios are eventbus / mosquitto: throughput > 1 and CPU < 1 favour eventbus.\n"
      "msgs/s and us/msg count distinct messages received: a row with loss compares unequal "
      "work.\n",
      s.server.c_str(), s.mosquitto.c_str(), payload_size, messages, messages / 4, s.window,
      std::thread::hardware_concurrency(), 1000 / ::sysconf(_SC_CLK_TCK));
  for (const auto& line : s.mosquitto_conf)
    std::printf("mosquitto configuration adds: %s\n", line.c_str());
  std::printf("\n");
  std::printf(
      "| transport | QoS | msgs/s eventbus | msgs/s mosquitto | ratio | broker us/msg eventbus "
      "| broker us/msg mosquitto | ratio | load gen us/msg (eb / mq) | lost (eb / mq) |\n"
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::fflush(stdout);
  std::size_t row = 0;
  bool eventbus_failed = false;
  for (const auto transport : kinds) {
    const tls_client_context* tls = uses_tls(transport) ? &checking : nullptr;
    for (const auto qos : {codec::qos_level::at_most_once, codec::qos_level::at_least_once}) {
      const std::size_t n = qos == codec::qos_level::at_most_once ? messages : messages / 4;
      const std::string what =
          std::string(name_of(transport)) + " QoS " + std::to_string(static_cast<int>(qos));
      const auto [ours, theirs] = against_both<flow_result>(
          row++, transport, s, dir, notes, what,
          [&](const running_broker& b) { return run_flow(b, transport, tls, qos, n, s.window); });
      note_tls("eventbus", ours.tls);
      note_tls("mosquitto", theirs.tls);
      eventbus_failed = eventbus_failed || !ours.errors.empty() || ours.received < ours.sent;
      for (const auto& [who, o] : {std::pair{"eventbus", &ours}, std::pair{"mosquitto", &theirs}}) {
        if (o->window_restarts != 0) {
          notes.push_back(what + ", " + who + ": the window restarted " +
                          std::to_string(o->window_restarts) +
                          " times after 250 ms with nothing arriving");
        }
      }
      std::printf("| %s | %d | %.0f | %.0f | %s | %.2f | %.2f | %s | %.2f / %.2f | %zu / %zu |\n",
                  std::string(name_of(transport)).c_str(), static_cast<int>(qos), ours.msgs_per_s(),
                  theirs.msgs_per_s(), ratio(ours.msgs_per_s(), theirs.msgs_per_s()).c_str(),
                  ours.broker_us(), theirs.broker_us(),
                  ratio(ours.broker_us(), theirs.broker_us()).c_str(), ours.own_us(),
                  theirs.own_us(), ours.sent - std::min(ours.sent, ours.received),
                  theirs.sent - std::min(theirs.sent, theirs.received));
      std::fflush(stdout);
    }
  }

  std::printf(
      "\nConnections: TCP connect + TLS handshake (tls, wss) + WebSocket upgrade (ws, wss) + "
      "CONNECT/CONNACK +\nDISCONNECT and close, %zu client threads, no session resumption; %zu "
      "per TLS row, %zu per plain row.\n\n",
      connection_threads, connections, connections * plain_connection_factor);
  std::printf(
      "| transport | conn/s eventbus | conn/s mosquitto | ratio | broker us/conn eventbus | "
      "broker us/conn mosquitto | ratio | load gen us/conn (eb / mq) | failed (eb / mq) |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::fflush(stdout);
  for (const auto transport : kinds) {
    const tls_client_context* tls = uses_tls(transport) ? &trusting : nullptr;
    const std::size_t n = uses_tls(transport) ? connections : connections * plain_connection_factor;
    const std::string what = std::string(name_of(transport)) + " connections";
    const auto [ours, theirs] = against_both<connect_result>(
        row++, transport, s, dir, notes, what,
        [&](const running_broker& b) { return run_connections(b, transport, tls, n); });
    note_tls("eventbus", ours.tls);
    note_tls("mosquitto", theirs.tls);
    eventbus_failed = eventbus_failed || !ours.errors.empty() || ours.failed != 0;
    std::printf("| %s | %.0f | %.0f | %s | %.1f | %.1f | %s | %.1f / %.1f | %zu / %zu |\n",
                std::string(name_of(transport)).c_str(), ours.per_s(), theirs.per_s(),
                ratio(ours.per_s(), theirs.per_s()).c_str(), ours.broker_us(), theirs.broker_us(),
                ratio(ours.broker_us(), theirs.broker_us()).c_str(), ours.own_us(), theirs.own_us(),
                ours.failed, theirs.failed);
    std::fflush(stdout);
  }

  if (!tls_seen.empty()) {
    std::printf("\nTLS agreed:");
    for (const auto& t : tls_seen)
      std::printf(" %s;", t.c_str());
    std::printf("\n");
  }
  if (!notes.empty()) {
    std::printf("\nNOTES:\n");
    for (const auto& n : notes)
      std::printf("  %s\n", n.c_str());
  }
  if (eventbus_failed) std::printf("\nFAIL: eventbus lost messages or a client failed\n");
  return eventbus_failed ? 2 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "transport_compare: %s\n", e.what());
    return 1;
  }
}
