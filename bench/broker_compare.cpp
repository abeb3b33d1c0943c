// Side-by-side throughput of the embedded broker and Debian's mosquitto, in one run on one
// machine: 1 publisher -> 1 subscriber, 64-byte payloads, QoS 0 and QoS 1. Reports messages/s
// seen by the subscriber and the broker process's CPU time per delivered message, and the
// ratios eventbus / mosquitto.
//
//   broker_compare [--messages N] [--mosquitto PATH] [--server PATH]
//
// The load generator is a plain blocking client built on our codec; both brokers get exactly
// the same byte stream.
#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "load_client.hpp"
#include "mqtt/codec/decoder.hpp"
#include "mqtt/codec/encoder.hpp"

extern char** environ;

namespace {

using namespace ebus::bench;
namespace codec = ebus::mqtt::codec;
using steady = std::chrono::steady_clock;

struct result {
  double msgs_per_s = 0;
  double cpu_us_per_msg = 0;
  std::size_t received = 0;
};

result run_load(std::uint16_t port, pid_t broker_pid, codec::qos_level qos, std::size_t count) {
  const std::string topic = "bench/" + std::to_string(static_cast<int>(qos));
  const int sub = mqtt_connect(port, "bench-sub");
  codec::decoder sub_dec;
  {
    std::string out;
    codec::encode(codec::subscribe{1, {{topic, qos}}}, out);
    send_all(sub, out);
    (void)read_packet(sub, sub_dec);  // SUBACK
  }
  const int pub = mqtt_connect(port, "bench-pub");
  const std::string payload(64, 'p');

  std::atomic<std::size_t> received{0};
  steady::time_point first_recv{};
  steady::time_point last_recv{};
  std::thread reader([&] {
    std::string acks;
    try {
      while (received < count) {
        auto p = read_packet(sub, sub_dec);
        auto* m = std::get_if<codec::publish>(&p);
        if (m == nullptr) continue;
        if (received == 0) first_recv = steady::now();
        last_recv = steady::now();
        ++received;
        if (m->qos == codec::qos_level::at_least_once) {
          acks.clear();
          codec::encode(codec::puback{m->packet_id}, acks);
          send_all(sub, acks);
        }
      }
    } catch (const std::exception&) {
    }
  });

  const double cpu_before = process_cpu_seconds(broker_pid);
  const auto start = steady::now();
  codec::decoder pub_dec;
  std::string batch;
  std::size_t unacked = 0;
  std::uint16_t id = 0;
  // QoS 1 stays within what the subscriber session holds by default (queue 100 + in flight 20).
  const std::size_t window = qos == codec::qos_level::at_most_once ? 500 : 100;
  const auto give_up = start + std::chrono::seconds(60);
  std::exception_ptr failure;
  try {
    for (std::size_t i = 0; i < count; ++i) {
      // Lossless pacing: never more than `window` messages ahead of the subscriber, so the run
      // measures sustained delivery, not how much a broker buffers for a subscriber that lags.
      while (i >= received + window && steady::now() < give_up) {
        if (!batch.empty()) {
          send_all(pub, batch);
          batch.clear();
        }
        std::this_thread::yield();
      }
      if (qos == codec::qos_level::at_most_once) {
        codec::encode_publish(batch, topic, payload, qos, false, false, 0);
      } else {
        id = static_cast<std::uint16_t>(id == 65535 ? 1 : id + 1);
        codec::encode_publish(batch, topic, payload, qos, false, false, id);
        ++unacked;
      }
      if (batch.size() >= 16 * 1024 || i + 1 == count) {
        send_all(pub, batch);
        batch.clear();
      }
      // QoS 1: at most 20 unacknowledged (mosquitto's default max_inflight_messages).
      if (unacked >= 20 && !batch.empty()) {
        send_all(pub, batch);
        batch.clear();
      }
      while (unacked >= 20 || (i + 1 == count && unacked > 0)) {
        auto p = read_packet(pub, pub_dec);
        if (std::holds_alternative<codec::puback>(p)) --unacked;
      }
    }
  } catch (...) {
    failure = std::current_exception();
  }
  const auto deadline = steady::now() + std::chrono::seconds(30);
  while (!failure && received < count && steady::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const double cpu_after = process_cpu_seconds(broker_pid);
  ::shutdown(sub, SHUT_RDWR);
  reader.join();
  if (failure) std::rethrow_exception(failure);
  if (received < count) {
    std::fprintf(stderr, "port %u: %zu of %zu messages received\n", port, received.load(), count);
  }
  ::close(sub);
  ::close(pub);

  result r;
  r.received = received;
  const auto end = received == count ? last_recv : steady::now();
  const double secs = std::chrono::duration<double>(end - start).count();
  r.msgs_per_s = static_cast<double>(received) / secs;
  r.cpu_us_per_msg =
      received == 0 ? 0 : (cpu_after - cpu_before) * 1e6 / static_cast<double>(received);
  return r;
}

}  // namespace

int run(int argc, char** argv);

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "broker_compare: %s\n", e.what());
    return 1;
  }
}

int run(int argc, char** argv) {
  std::size_t count = 200000;
  std::string mosquitto = "/usr/sbin/mosquitto";
  std::string server = std::string(EBUS_BENCH_DIR) + "/broker_server";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    if (key == "--messages") count = std::stoul(argv[i + 1]);
    if (key == "--mosquitto") mosquitto = argv[i + 1];
    if (key == "--server") server = argv[i + 1];
  }

  const std::uint16_t mport = free_port();
  const std::string conf = "/tmp/ebus-bench-mosquitto-" + std::to_string(::getpid()) + ".conf";
  {
    std::ofstream c(conf);
    c << "listener " << mport << " 127.0.0.1\nallow_anonymous true\nlog_type none\n";
  }
  const pid_t mpid = spawn({mosquitto, "-c", conf});
  const std::uint16_t eport = free_port();
  const pid_t epid = spawn({server, std::to_string(eport)});

  std::printf("%-6s %-10s %14s %16s %10s\n", "qos", "broker", "msgs/s", "cpu us/msg", "received");
  for (auto qos : {codec::qos_level::at_most_once, codec::qos_level::at_least_once}) {
    const std::size_t n = qos == codec::qos_level::at_most_once ? count : count / 4;
    const auto theirs = run_load(mport, mpid, qos, n);
    const auto ours = run_load(eport, epid, qos, n);
    const int q = static_cast<int>(qos);
    std::printf("%-6d %-10s %14.0f %16.2f %10zu\n", q, "eventbus", ours.msgs_per_s,
                ours.cpu_us_per_msg, ours.received);
    std::printf("%-6d %-10s %14.0f %16.2f %10zu\n", q, "mosquitto", theirs.msgs_per_s,
                theirs.cpu_us_per_msg, theirs.received);
    std::printf("%-6d ratio eventbus/mosquitto: throughput %.2fx, cpu per message %.2fx\n", q,
                ours.msgs_per_s / theirs.msgs_per_s, ours.cpu_us_per_msg / theirs.cpu_us_per_msg);
  }
  stop_process(epid);
  stop_process(mpid);
  std::remove(conf.c_str());
  return 0;
}
