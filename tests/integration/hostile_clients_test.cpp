// Hostile clients against the daemon binary at its default configuration, with only the memory
// budget set small (32 MiB; retained messages get at most half) so that a breach would show: a
// retained flood, half-sent packets on many connections, one client with a huge SUBSCRIBE, many
// persistent sessions, a large offline queue. Each test checks that the daemon stays alive, keeps
// serving a normal client, and that its resident memory stays within the budget plus a fixed
// overhead (read from /proc; skipped under AddressSanitizer, whose shadow memory and quarantine
// make RSS meaningless).
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ebus_test/mqtt_peer.hpp"
#include "ebus_test/process.hpp"
#include "mqtt/codec/encoder.hpp"
#include "node_harness.hpp"

namespace ebus::test {
namespace {

using namespace std::chrono_literals;
using mqtt::codec::qos_level;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool rss_is_meaningful = false;
#else
constexpr bool rss_is_meaningful = true;
#endif

const std::string daemon_path = built_program("apps/eventbus/eventbus");
constexpr std::size_t budget = std::size_t{32} * 1024 * 1024;
// What a running daemon holds besides what clients make it keep: code, heap fragmentation,
// per-connection buffers (bounded by the connection count), allocator caches.
constexpr std::size_t fixed_overhead = std::size_t{48} * 1024 * 1024;

/// A field of /proc/<pid>/status in bytes ("VmRSS", "RssAnon"); 0 when unreadable.
std::size_t status_bytes(int pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(field + ":")) {
      std::istringstream fields(line.substr(field.size() + 1));
      std::size_t kib = 0;
      fields >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

mqtt::codec::publish make_publish(std::string topic, std::string payload, qos_level qos,
                                  std::uint16_t id = 0, bool retain = false) {
  mqtt::codec::publish p;
  p.topic = std::move(topic);
  p.payload = std::move(payload);
  p.qos = qos;
  p.packet_id = id;
  p.retain = retain;
  return p;
}

mqtt::codec::connect make_connect(std::string id, bool clean = true) {
  mqtt::codec::connect c;
  c.client_id = std::move(id);
  c.clean_session = clean;
  c.keep_alive = 60;
  return c;
}

class hostile : public ::testing::Test {
 protected:
  /// Starts the daemon with the small budget and `extra` YAML keys under modules.eventBus.
  void start(const std::string& extra = {}) {
    port_ = free_port();
    const auto config = dir_.path() / "edgecore.yaml";
    std::ofstream(config) << "database:\n  dataSource: " << (dir_.path() / "edgecore.db").string()
                          << "\nmodules:\n  eventBus:\n    mqttServerInternal: tcp://127.0.0.1:"
                          << port_ << "\n    moduleSocket: " << (dir_.path() / "bus.sock").string()
                          << "\n    moduleStreamSocket: "
                          << (dir_.path() / "bus-stream.sock").string()
                          << "\n    maxMemoryBytes: " << budget << "\n"
                          << extra;
    // Warnings only: they are rate-limited, so the pipe to this test never fills.
    daemon_ = std::make_unique<process>(
        std::vector<std::string>{daemon_path, "--config", config.string(), "--log-level", "warn"});
    connect_probe();
    baseline_ = status_bytes(daemon_->pid(), "VmRSS");
  }

  void connect_probe() {
    for (int i = 0; i < 100 && !probe_; ++i) {
      try {
        auto p = std::make_unique<mqtt_peer>(port_);
        if (auto ack = p->connect(make_connect("probe"));
            ack && ack->return_code == mqtt::codec::connect_return_code::accepted) {
          probe_ = std::move(p);
        }
      } catch (const std::exception&) {
        std::this_thread::sleep_for(50ms);  // not listening yet
      }
    }
    ASSERT_TRUE(probe_) << daemon_->output();
    ASSERT_EQ(probe_->subscribe("probe/echo", qos_level::at_least_once, 1),
              mqtt::codec::suback_return_code::success_maximum_qos_1);
  }

  /// The daemon answers a normal client: a QoS 1 message comes back to its own subscription.
  ::testing::AssertionResult serves_a_normal_client() {
    const std::string payload = "still-here-" + std::to_string(++probes_);
    probe_->send(make_publish("probe/echo", payload, qos_level::at_least_once, 7));
    bool acked = false;
    bool echoed = false;
    while (!acked || !echoed) {
      auto p = probe_->receive(10s);
      if (!p) return ::testing::AssertionFailure() << "no answer\n" << daemon_->output();
      if (std::holds_alternative<mqtt::codec::puback>(*p)) acked = true;
      if (auto* pub = std::get_if<mqtt::codec::publish>(&*p); pub && pub->payload == payload) {
        echoed = true;
        probe_->send(mqtt::codec::puback{pub->packet_id});
      }
    }
    return ::testing::AssertionSuccess();
  }

  void expect_memory_bounded(const char* what) {
    const auto rss = status_bytes(daemon_->pid(), "VmRSS");
    ASSERT_GT(rss, 0u) << "daemon gone\n" << daemon_->output();
    std::cout << what << ": RSS " << rss / 1024 << " KiB (baseline " << baseline_ / 1024
              << " KiB, RssAnon " << status_bytes(daemon_->pid(), "RssAnon") / 1024 << " KiB)\n";
    if constexpr (rss_is_meaningful) {
      EXPECT_LE(rss, baseline_ + budget + fixed_overhead) << what;
    }
  }

  void TearDown() override {
    if (!daemon_) return;
    probe_.reset();
    daemon_->signal(SIGTERM);
    EXPECT_EQ(daemon_->wait(30s), 0) << daemon_->output();
  }

  temp_dir dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<process> daemon_;
  std::unique_ptr<mqtt_peer> probe_;
  std::size_t baseline_ = 0;
  int probes_ = 0;
};

TEST_F(hostile, retained_flood_of_large_messages_on_distinct_topics) {
  start();
  mqtt_peer flood(port_);
  ASSERT_TRUE(flood.connect(make_connect("flood")));
  const std::string payload(64 * 1024, 'r');
  for (int i = 0; i < 2000; ++i) {  // 125 MiB, about four times the budget
    flood.send(
        make_publish("flood/" + std::to_string(i), payload, qos_level::at_most_once, 0, true));
  }
  flood.send(mqtt::codec::pingreq{});
  ASSERT_TRUE(flood.receive_as<mqtt::codec::pingresp>(30s)) << "all of it was read";
  EXPECT_TRUE(serves_a_normal_client());
  expect_memory_bounded("retained flood");
  EXPECT_NE(daemon_->output().find("retained_refused"), std::string::npos) << daemon_->output();
}

TEST_F(hostile, half_sent_large_packets_on_many_connections_are_refused_then_timed_out) {
  start("    mqttPacketTimeoutSeconds: 2\n");
  std::string wire;
  mqtt::codec::encode(make_publish("t", std::string(512 * 1024, 'h'), qos_level::at_most_once),
                      wire);
  const std::string_view half = std::string_view(wire).substr(0, wire.size() / 2);
  std::vector<std::unique_ptr<mqtt_peer>> peers;
  for (int i = 0; i < 300; ++i) {  // 75 MiB of half packets, more than twice the budget
    auto p = std::make_unique<mqtt_peer>(port_);
    ASSERT_TRUE(p->connect(make_connect("half-" + std::to_string(i))));
    p->send_raw(half);
    peers.push_back(std::move(p));
  }
  EXPECT_TRUE(serves_a_normal_client());
  expect_memory_bounded("half-sent packets");
  // The packet timeout closes every one of them, whatever the budget did first.
  int closed = 0;
  for (auto& p : peers)
    closed += p->closed_within(10s) ? 1 : 0;
  EXPECT_EQ(closed, 300);
  EXPECT_TRUE(serves_a_normal_client());
}

TEST_F(hostile, one_subscribe_with_sixty_thousand_filters) {
  start();
  mqtt_peer greedy(port_);
  ASSERT_TRUE(greedy.connect(make_connect("greedy")));
  mqtt::codec::subscribe s;
  s.packet_id = 1;
  for (int i = 0; i < 60000; ++i)
    s.subscriptions.push_back({"g/" + std::to_string(i), qos_level::at_most_once});
  greedy.send(s);
  const auto ack = greedy.receive_as<mqtt::codec::suback>(30s);
  ASSERT_TRUE(ack);
  ASSERT_EQ(ack->return_codes.size(), 60000u);
  const auto granted = std::count(ack->return_codes.begin(), ack->return_codes.end(),
                                  mqtt::codec::suback_return_code::success_maximum_qos_0);
  EXPECT_EQ(granted, 1000) << "mqttMaxSubscriptionsPerClient";
  EXPECT_TRUE(serves_a_normal_client());
  expect_memory_bounded("huge subscribe");
}

TEST_F(hostile, many_persistent_sessions_stop_at_the_cap) {
  start("    mqttMaxPersistentSessions: 500\n");
  int refused = 0;
  for (int i = 0; i < 800; ++i) {
    mqtt_peer p(port_);
    const auto ack = p.connect(make_connect("persist-" + std::to_string(i), false));
    ASSERT_TRUE(ack);
    if (ack->return_code == mqtt::codec::connect_return_code::server_unavailable) ++refused;
  }
  EXPECT_EQ(refused, 300);
  EXPECT_TRUE(serves_a_normal_client());
  expect_memory_bounded("persistent sessions");
}

TEST_F(hostile, a_large_offline_queue_stays_within_its_bounds) {
  start();
  {
    mqtt_peer sub(port_);
    ASSERT_TRUE(sub.connect(make_connect("offline", false)));
    ASSERT_TRUE(sub.subscribe("off/#", qos_level::at_least_once, 1));
  }  // gone, session kept
  mqtt_peer pub(port_);
  ASSERT_TRUE(pub.connect(make_connect("feeder")));
  const std::string payload(16 * 1024, 'o');
  for (int i = 0; i < 5000; ++i) {  // 78 MiB for one offline subscriber
    pub.send(make_publish("off/t", payload, qos_level::at_least_once,
                          static_cast<std::uint16_t>(i % 65535 + 1)));
    if (i % 500 == 499) (void)daemon_->output();
  }
  int acks = 0;
  while (acks < 5000 && pub.receive_as<mqtt::codec::puback>(30s))
    ++acks;
  EXPECT_EQ(acks, 5000);
  EXPECT_TRUE(serves_a_normal_client());
  expect_memory_bounded("offline queue");
  // The subscriber comes back to what its queue kept: the oldest messages, within the limits.
  mqtt_peer back(port_);
  const auto ack = back.connect(make_connect("offline", false));
  ASSERT_TRUE(ack);
  EXPECT_TRUE(ack->session_present);
  int got = 0;
  while (auto p = back.receive_publish(2s)) {
    back.send(mqtt::codec::puback{p->packet_id});
    ++got;
  }
  EXPECT_GT(got, 0);
  EXPECT_LE(got, 200) << "mqttSessionQueueSize, at most twice over";
}

}  // namespace
}  // namespace ebus::test
