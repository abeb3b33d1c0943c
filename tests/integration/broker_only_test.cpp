// Broker-only mode: with modules.eventBus.enable false, the eventbus binary runs only its
// embedded broker, in place of the mosquitto that KubeEdge deploys on every edge node for
// edgecore's default mqttMode 2. A stock edgecore's two clients (Paho, "hub-client-sub-<time>" and
// "hub-client-pub-<time>", clean session, the fixed subscriptions at QoS 1) and a device exchange
// their messages through it; nothing is routed, kept or warned about.
#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <tuple>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ebus_test/process.hpp"
#include "node_harness.hpp"

namespace ebus::test {
namespace {

const std::string daemon_path = built_program("apps/eventbus/eventbus");

// What a spdlog line at warning level or above looks like in the daemon's output.
bool has_warning(const std::string& out) {
  return out.find(" warning [") != std::string::npos || out.find(" error [") != std::string::npos ||
         out.find(" critical [") != std::string::npos;
}

class broker_only : public ::testing::Test {
 protected:
  void SetUp() override { port = free_port(); }

  // Only what differs from the defaults for a test: the broker on a free port instead of 1883,
  // and files in the temporary directory instead of system paths. Without module sockets the
  // daemon is nothing but the broker, as mosquitto was.
  std::string write_config(bool module_sockets) {
    const auto path = dir.path() / "eventbus.yaml";
    const auto socket = [&](const char* name) {
      return module_sockets ? (dir.path() / name).string() : std::string("\"\"");
    };
    std::ofstream(path) << "database:\n"
                        << "  dataSource: " << (dir.path() / "edgecore.db").string() << "\n"
                        << "modules:\n"
                        << "  edged:\n"
                        << "    hostnameOverride: edge-node\n"
                        << "  eventBus:\n"
                        << "    enable: false\n"
                        << "    mqttMode: 2\n"
                        << "    mqttServerInternal: tcp://127.0.0.1:" << port << "\n"
                        << "    moduleSocket: " << socket("bus.sock") << "\n"
                        << "    moduleStreamSocket: " << socket("bus-stream.sock") << "\n";
    return path.string();
  }

  temp_dir dir;
  std::uint16_t port = 0;
};

TEST_F(broker_only, a_stock_edgecore_in_mode_2_and_a_device_talk_through_it) {
  process d({daemon_path, "--config", write_config(false)});
  ASSERT_TRUE(d.wait_for_output("ready")) << d.output();
  EXPECT_NE(d.output().find("ready mode=broker-only"), std::string::npos) << d.output();
  EXPECT_NE(d.output().find("mqtt=tcp://127.0.0.1:" + std::to_string(port)), std::string::npos)
      << d.output();

  process clients({"/usr/bin/python3", EBUS_EDGECORE_CLIENTS, std::to_string(port), "edge-node"});
  const auto status = clients.wait(std::chrono::seconds(60));
  ASSERT_EQ(status, 0) << clients.output() << "\n" << d.output();
  const auto& out = clients.output();
  const auto start = out.rfind("\n{");
  const auto seen =
      nlohmann::json::parse(out.substr(start == std::string::npos ? 0 : start + 1), nullptr, false);
  ASSERT_TRUE(seen.is_object()) << out;

  // Every fixed subscription granted at QoS 1.
  EXPECT_EQ(seen["granted"], nlohmann::json::array({1, 1, 1, 1, 1, 1})) << seen.dump();

  // Device -> edgecore: each message once, exact topic and payload, at the QoS it was sent with.
  std::vector<std::tuple<std::string, std::string, int>> hub;
  for (const auto& m : seen["hub"]) {
    hub.emplace_back(m["topic"].get<std::string>(), m["payload"].get<std::string>(),
                     m["qos"].get<int>());
    EXPECT_FALSE(m["retain"].get<bool>()) << m.dump();
  }
  std::sort(hub.begin(), hub.end());
  const std::vector<std::tuple<std::string, std::string, int>> expected_hub = {
      {"$hw/events/device/default/led1/state/update", R"({"state":"online"})", 0},
      {"$hw/events/device/default/led1/twin/update", R"({"event_id":"t1","twin":{}})", 1},
      {"$hw/events/node/edge-node/membership/get", R"({"event_id":"m1"})", 1},
      {"$hw/events/upload/last", "end", 1},
      {"$hw/events/upload/temperature", "21.5", 0},
      {"SYS/dis/upload_records", "records", 1},
      {"app/user/metrics", "cpu=3", 1},
  };
  EXPECT_EQ(hub, expected_hub) << seen.dump();

  // edgecore -> device: the answers, QoS 1 as published, not retained.
  std::vector<std::pair<std::string, std::string>> device;
  for (const auto& m : seen["device"]) {
    device.emplace_back(m["topic"].get<std::string>(), m["payload"].get<std::string>());
    EXPECT_EQ(m["qos"].get<int>(), 1) << m.dump();
  }
  std::sort(device.begin(), device.end());
  const std::vector<std::pair<std::string, std::string>> expected_device = {
      {"$hw/events/device/default/led1/twin/update/result", R"({"event_id":"t1","twin":{}})"},
      {"$hw/events/node/edge-node/membership/updated", R"({"added_devices":[]})"},
  };
  EXPECT_EQ(device, expected_device) << seen.dump();

  // The broker saw edgecore's own client ids.
  const auto stamp = seen["stamp"].get<std::string>();
  EXPECT_EQ(stamp.size(), 10U);

  d.signal(SIGTERM);
  ASSERT_EQ(d.wait(), 0) << d.output();
  const auto& log = d.output();
  // No routing: nothing kept for absent twin / hub modules, nothing warned about, no database.
  EXPECT_EQ(log.find("backlog"), std::string::npos) << log;
  EXPECT_EQ(log.find("undelivered"), std::string::npos) << log;
  EXPECT_FALSE(has_warning(log)) << log;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "edgecore.db")) << log;
}

TEST_F(broker_only, the_module_bus_still_serves_remote_modules_but_no_eventbus_is_on_it) {
  process d({daemon_path, "--config", write_config(true)});
  ASSERT_TRUE(d.wait_for_output("ready")) << d.output();
  process ctl({built_program("apps/eventbus-ctl/eventbus-ctl"), "topics", "--socket",
               (dir.path() / "bus.sock").string()});
  const auto status = ctl.wait(std::chrono::seconds(20));
  ASSERT_TRUE(status.has_value()) << ctl.output();
  EXPECT_NE(*status, 0) << ctl.output();
  // Registered on the bus (the socket answered), then told that no module eventbus exists.
  EXPECT_NE(ctl.output().find("no_route"), std::string::npos) << ctl.output();
  d.signal(SIGTERM);
  ASSERT_EQ(d.wait(), 0) << d.output();
  // Nothing about the EventBus's groups; the sockets' own notices (a host's SEQPACKET limit) may
  // appear.
  const auto& log = d.output();
  EXPECT_EQ(log.find("backlog"), std::string::npos) << log;
  EXPECT_EQ(log.find("group=twin"), std::string::npos) << log;
  EXPECT_EQ(log.find("group=hub"), std::string::npos) << log;
  EXPECT_NE(log.find("modules=0"), std::string::npos) << log;
}

}  // namespace
}  // namespace ebus::test
