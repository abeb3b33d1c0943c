// The module socket protocol (docs/REMOTE.md) as an independent client speaks it: a Python
// stdlib client (beehive_client.py) against the daemon binary, over SEQPACKET and stream sockets.
// Registration, sync requests, malformed and oversized input, the connection limit, a module
// that vanishes with a request pending, and the group backlog.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ebus_test/process.hpp"
#include "node_harness.hpp"

namespace ebus::test {
namespace {

using namespace std::chrono_literals;

const std::string daemon_path = built_program("apps/eventbus/eventbus");
const std::string client_script = EBUS_BEEHIVE_CLIENT;

const std::string device_twin_topic = "$hw/events/device/default/led1/twin/update";
const std::string device_twin_resource = "JGh3L2V2ZW50cy9kZXZpY2UvZGVmYXVsdC9sZWQxL3R3aW4vdXBkYXRl";

/// The text after "<key> " on the first output line that starts with it; nullopt if none.
std::optional<std::string> line_value(const std::string& output, const std::string& key) {
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(key + " ")) return line.substr(key.size() + 1);
  }
  return std::nullopt;
}

class module_sockets : public ::testing::TestWithParam<bool> {
 protected:
  /// Starts the daemon with its sockets in a temporary directory and `extra` lines appended to
  /// modules.eventBus (indented by four spaces).
  void start(const std::string& extra = {}) {
    port_ = free_port();
    const auto config = dir_.path() / "edgecore.yaml";
    std::ofstream(config) << "database:\n  dataSource: " << (dir_.path() / "edgecore.db").string()
                          << "\nmodules:\n  eventBus:\n    mqttServerInternal: tcp://127.0.0.1:"
                          << port_ << "\n    moduleSocket: " << packet_path()
                          << "\n    moduleStreamSocket: " << stream_path() << "\n"
                          << extra;
    daemon_ = std::make_unique<process>(
        std::vector<std::string>{daemon_path, "--config", config.string()});
    ASSERT_TRUE(daemon_->wait_for_output("ready")) << daemon_->output();
  }

  void TearDown() override {
    if (!daemon_) return;
    daemon_->signal(SIGTERM);
    EXPECT_EQ(daemon_->wait(), 0) << daemon_->output();
  }

  bool stream() const { return GetParam(); }
  std::string packet_path() const { return (dir_.path() / "eventbus.sock").string(); }
  std::string stream_path() const { return (dir_.path() / "eventbus-stream.sock").string(); }
  std::string socket_path() const { return stream() ? stream_path() : packet_path(); }

  std::vector<std::string> client_argv(const std::string& command,
                                       const std::vector<std::string>& args) const {
    std::vector<std::string> argv{"/usr/bin/python3", client_script};
    if (stream()) argv.emplace_back("--stream");
    argv.push_back(command);
    argv.push_back(socket_path());
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  /// Runs one beehive_client.py scenario to its end and returns its output.
  std::string client(const std::string& command, const std::vector<std::string>& args = {}) {
    process p(client_argv(command, args));
    const auto status = p.wait(25s);
    EXPECT_EQ(status, 0) << command << ":\n" << p.output() << "\ndaemon:\n" << daemon_->output();
    return p.output();
  }

  std::pair<int, std::string> run_ctl(std::vector<std::string> args) {
    auto result = ebus::test::run_ctl(packet_path(), std::move(args), 25s);
    EXPECT_NE(result.first, -1) << result.second;  // it finished
    return result;
  }

  temp_dir dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<process> daemon_;
};

TEST_P(module_sockets, registration_reply_lists_the_modules_and_groups) {
  start();
  const auto out = client("register", {"py-twin", "twin"});
  EXPECT_EQ(line_value(out, "operation"), "response") << out;
  EXPECT_EQ(line_value(out, "go-order"), "True") << out;
  const auto content = line_value(out, "registered");
  ASSERT_TRUE(content) << out;
  const auto reply = nlohmann::json::parse(*content, nullptr, false);
  ASSERT_TRUE(reply.is_object()) << out;
  const auto& modules = reply["modules"];
  EXPECT_NE(std::find(modules.begin(), modules.end(), "eventbus"), modules.end()) << out;
  EXPECT_NE(std::find(modules.begin(), modules.end(), "py-twin"), modules.end()) << out;
  EXPECT_EQ(reply["groups"]["twin"], nlohmann::json::array({"py-twin"})) << out;
  EXPECT_TRUE(reply["groups"].contains("bus")) << out;
}

TEST_P(module_sockets, a_module_without_a_group_joins_a_group_named_after_itself) {
  start();
  const auto out = client("register", {"py-alone"});
  const auto reply =
      nlohmann::json::parse(line_value(out, "registered").value_or(""), nullptr, false);
  ASSERT_TRUE(reply.is_object()) << out;
  EXPECT_EQ(reply["groups"]["py-alone"], nlohmann::json::array({"py-alone"})) << out;
}

TEST_P(module_sockets, an_invalid_module_name_is_refused_and_the_connection_closed) {
  start();
  const auto out = client("register", {"no spaces allowed"});
  EXPECT_TRUE(line_value(out, "refused")) << out;
  EXPECT_NE(out.find("closed"), std::string::npos) << out;
}

TEST_P(module_sockets, sync_query_to_eventbus_returns_its_subscriptions) {
  start();
  ASSERT_EQ(run_ctl({"subscribe", "default/test"}).first, 0);
  const auto out = client("sync-roundtrip");
  EXPECT_EQ(line_value(out, "response"), R"(response ["default/test"])") << out;
}

TEST_P(module_sockets, malformed_json_closes_the_connection_and_the_daemon_serves_the_next) {
  start();
  const auto out = client("malformed", {"json"});
  EXPECT_NE(out.find("closed\n"), std::string::npos) << out;
  EXPECT_EQ(line_value(out, "second"), "response") << out;
}

TEST_P(module_sockets, json_that_is_not_a_beehive_message_closes_the_connection) {
  start();
  const auto out = client("malformed", {"envelope"});
  EXPECT_NE(out.find("closed\n"), std::string::npos) << out;
  EXPECT_EQ(line_value(out, "second"), "response") << out;
}

TEST_P(module_sockets, a_message_over_the_size_limit_closes_the_connection) {
  start("    mqttMaxPacketSize: 64\n    moduleSocketMaxMessageBytes: 70000\n");
  const auto out = client("oversized", {"100000"});
  EXPECT_NE(out.find("closed\n"), std::string::npos) << out;
  EXPECT_EQ(line_value(out, "second"), "response") << out;
}

TEST_P(module_sockets, a_connection_over_the_limit_gets_an_error_and_is_closed) {
  start("    moduleSocketMaxConnections: 2\n");
  const auto out = client("connection-limit", {"2"});
  const auto first = line_value(out, "extra");
  ASSERT_TRUE(first) << out;
  EXPECT_TRUE(first->starts_with("error ")) << out;
  EXPECT_NE(out.find("extra closed\n"), std::string::npos) << out;
  EXPECT_EQ(line_value(out, "first"), "response") << out;
}

TEST_P(module_sockets, a_module_that_vanishes_with_a_request_pending_fails_it_at_once) {
  start();
  process module(client_argv("vanish-on-request", {"py-vanish"}));
  ASSERT_TRUE(module.wait_for_output("registered")) << module.output();
  // module_removed (not timeout) in the answer means it failed when the module went away.
  const auto [status, out] = run_ctl({"send", "--to", "py-vanish", "--op", "get", "--resource",
                                      "twin/x", "--sync", "--timeout", "20000"});
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find(R"("operation":"error")"), std::string::npos) << out;
  EXPECT_NE(out.find("module_removed"), std::string::npos) << out;
  ASSERT_EQ(module.wait(), 0) << module.output();
  EXPECT_NE(module.output().find("request get twin/x"), std::string::npos) << module.output();
  EXPECT_NE(module.output().find("vanished"), std::string::npos) << module.output();
}

TEST_P(module_sockets, twin_messages_published_with_no_twin_member_are_delivered_on_join) {
  start();
  for (const char* payload : {R"({"event_id":"b1"})", R"({"event_id":"b2"})"}) {
    process pub({"mosquitto_pub", "-p", std::to_string(port_), "-t", device_twin_topic, "-q", "1",
                 "-m", payload});
    ASSERT_EQ(pub.wait(), 0) << pub.output();
  }
  const auto out = client("receive", {"py-twin", "twin", "2"});
  std::vector<nlohmann::json> got;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("message ")) got.push_back(nlohmann::json::parse(line.substr(8)));
  }
  ASSERT_EQ(got.size(), 2U) << out;
  for (const auto& m : got) {
    EXPECT_EQ(m["route"]["source"], "bus");
    EXPECT_EQ(m["route"]["operation"], "response");
    EXPECT_EQ(m["route"]["resource"], device_twin_resource);
    EXPECT_EQ(m["route"]["destination"], "py-twin");
  }
  EXPECT_EQ(got[0]["content"], R"({"event_id":"b1"})");
  EXPECT_EQ(got[1]["content"], R"({"event_id":"b2"})");
}

TEST_P(module_sockets, a_module_registered_with_batch_gets_many_messages_per_packet_in_order) {
  start();
  // 40 device messages kept for group twin, then handed over to the module as it joins: the
  // hand-over goes 16 messages per turn, so SEQPACKET packets carry several each.
  process pub({"/bin/sh", "-c",
               "seq 1 40 | mosquitto_pub -l -q 1 -p " + std::to_string(port_) + " -t '" +
                   device_twin_topic + "'"});
  ASSERT_EQ(pub.wait(20s), 0) << pub.output();
  const auto out = client("receive-batched", {"py-twin", "twin", "40"});
  std::vector<std::string> contents;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("message ")) {
      contents.push_back(nlohmann::json::parse(line.substr(8))["content"].get<std::string>());
    }
  }
  ASSERT_EQ(contents.size(), 40U) << out;
  for (std::size_t i = 0; i < contents.size(); ++i)
    EXPECT_EQ(contents[i], std::to_string(i + 1)) << out;
  // Two requests in one packet (one line each) are both answered.
  EXPECT_TRUE(line_value(out, "responses")) << out;
  if (!stream()) {
    const auto most = line_value(out, "most-per-packet");
    ASSERT_TRUE(most) << out;
    EXPECT_GT(std::stoi(*most), 1) << out;
  }
}

INSTANTIATE_TEST_SUITE_P(sockets, module_sockets, ::testing::Values(false, true),
                         [](const auto& param_info) {
                           return param_info.param ? "stream" : "seqpacket";
                         });

}  // namespace
}  // namespace ebus::test
