// eventbus-ctl against the daemon binary, each test with its own daemon, sockets and database in a
// temporary directory: watching groups, publishing, managing subscriptions, raw sends, and what
// the user sees when there is no daemon.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ebus_test/process.hpp"
#include "node_harness.hpp"

namespace ebus::test {
namespace {

using namespace std::chrono_literals;

const std::string daemon_path = built_program("apps/eventbus/eventbus");
const std::string ctl_path = built_program("apps/eventbus-ctl/eventbus-ctl");

const std::string device_twin_topic = "$hw/events/device/default/led1/twin/update";
const std::string device_twin_resource = "JGh3L2V2ZW50cy9kZXZpY2UvZGVmYXVsdC9sZWQxL3R3aW4vdXBkYXRl";

/// The JSON documents among `output`'s lines (the ctl's notes on stderr are skipped).
std::vector<nlohmann::json> json_lines(const std::string& output) {
  std::vector<nlohmann::json> docs;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with('{')) docs.push_back(nlohmann::json::parse(line, nullptr, false));
  }
  return docs;
}

class ctl : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    const auto config = dir_.path() / "edgecore.yaml";
    std::ofstream(config) << "database:\n  dataSource: " << (dir_.path() / "edgecore.db").string()
                          << "\nmodules:\n  eventBus:\n    mqttServerInternal: tcp://127.0.0.1:"
                          << port_ << "\n    moduleSocket: " << socket_path()
                          << "\n    moduleStreamSocket: " << stream_socket_path() << "\n";
    daemon_ = std::make_unique<process>(
        std::vector<std::string>{daemon_path, "--config", config.string()});
    ASSERT_TRUE(daemon_->wait_for_output("ready")) << daemon_->output();
    ASSERT_TRUE(std::filesystem::exists(socket_path())) << daemon_->output();
  }

  void TearDown() override {
    if (!daemon_) return;
    daemon_->signal(SIGTERM);
    EXPECT_EQ(daemon_->wait(), 0) << daemon_->output();
  }

  std::string socket_path() const { return (dir_.path() / "eventbus.sock").string(); }
  std::string stream_socket_path() const { return (dir_.path() / "eventbus-stream.sock").string(); }

  /// Runs eventbus-ctl on the test daemon's socket to its end: (status, output).
  std::pair<int, std::string> run_ctl(std::vector<std::string> args) {
    auto result = ebus::test::run_ctl(socket_path(), std::move(args));
    EXPECT_NE(result.first, -1) << result.second;  // it finished
    return result;
  }

  /// `eventbus-ctl watch --group <group>`, registered.
  std::unique_ptr<process> watch(const std::string& group) {
    auto p = std::make_unique<process>(
        std::vector<std::string>{ctl_path, "watch", "--group", group, "--socket", socket_path()});
    EXPECT_TRUE(p->wait_for_output("watching as")) << p->output();
    return p;
  }

  void mosquitto_pub(const std::string& topic, const std::string& payload) {
    process pub(
        {"mosquitto_pub", "-p", std::to_string(port_), "-t", topic, "-q", "1", "-m", payload});
    ASSERT_EQ(pub.wait(), 0) << pub.output();
  }

  /// A mosquitto_sub that has its SUBACK and exits after one message.
  std::unique_ptr<process> mosquitto_sub(const std::string& topic) {
    auto sub = std::make_unique<process>(
        std::vector<std::string>{"stdbuf", "-oL", "mosquitto_sub", "-p", std::to_string(port_),
                                 "-t", topic, "-q", "1", "-v", "-d", "-C", "1", "-W", "10"});
    EXPECT_TRUE(sub->wait_for_output("SUBACK")) << sub->output();
    return sub;
  }

  temp_dir dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<process> daemon_;
};

TEST_F(ctl, watch_twin_prints_a_device_twin_update_as_kubeedge_builds_it) {
  auto w = watch("twin");
  const std::string payload = R"({"event_id":"e1","twin":{"power":{"actual":{"value":"on"}}}})";
  mosquitto_pub(device_twin_topic, payload);
  ASSERT_TRUE(w->wait_for_output(device_twin_resource)) << w->output();
  w->signal(SIGINT);
  ASSERT_EQ(w->wait(), 0) << w->output();

  const auto docs = json_lines(w->output());
  ASSERT_EQ(docs.size(), 1U) << w->output();
  const auto& m = docs[0];
  EXPECT_EQ(m["route"]["source"], "bus");
  EXPECT_EQ(m["route"]["group"], "user");
  EXPECT_EQ(m["route"]["operation"], "response");
  EXPECT_EQ(m["route"]["resource"], device_twin_resource);
  EXPECT_EQ(m["content"], payload);
  EXPECT_EQ(m["header"]["msg_id"].get<std::string>().size(), 36U);
}

TEST_F(ctl, watch_stops_with_status_zero_on_sigterm_and_one_when_the_daemon_goes_away) {
  auto by_signal = watch("hub");
  by_signal->signal(SIGTERM);
  EXPECT_EQ(by_signal->wait(), 0) << by_signal->output();

  auto orphan = watch("hub");
  daemon_->signal(SIGTERM);
  ASSERT_EQ(daemon_->wait(), 0) << daemon_->output();
  daemon_.reset();
  EXPECT_EQ(orphan->wait(), 1) << orphan->output();
  EXPECT_NE(orphan->output().find("closed the connection"), std::string::npos) << orphan->output();
}

TEST_F(ctl, publish_reaches_an_mqtt_subscriber) {
  auto sub = mosquitto_sub("t/x");
  const auto [status, out] = run_ctl({"publish", "t/x", "hello"});
  EXPECT_EQ(status, 0) << out;
  ASSERT_EQ(sub->wait(), 0) << sub->output();
  EXPECT_NE(sub->output().find("t/x hello"), std::string::npos) << sub->output();
}

TEST_F(ctl, subscribe_forwards_the_topic_to_hub_topics_lists_it_and_unsubscribe_removes_it) {
  auto hub = watch("hub");
  auto [status, out] = run_ctl({"subscribe", "default/test"});
  ASSERT_EQ(status, 0) << out;
  mosquitto_pub("default/test", "Hello World!");
  ASSERT_TRUE(hub->wait_for_output("Hello World!")) << hub->output();

  std::tie(status, out) = run_ctl({"topics"});
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "default/test\n");

  std::tie(status, out) = run_ctl({"unsubscribe", "default/test"});
  ASSERT_EQ(status, 0) << out;
  std::tie(status, out) = run_ctl({"topics"});
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "");

  // Not forwarded any more: a fixed hub topic published afterwards arrives alone.
  mosquitto_pub("default/test", "not forwarded");
  mosquitto_pub("app/user/marker", "marker");
  ASSERT_TRUE(hub->wait_for_output("marker")) << hub->output();
  hub->signal(SIGINT);
  ASSERT_EQ(hub->wait(), 0) << hub->output();

  const auto docs = json_lines(hub->output());
  ASSERT_EQ(docs.size(), 2U) << hub->output();
  EXPECT_EQ(docs[0]["route"]["operation"], "upload");
  EXPECT_EQ(docs[0]["route"]["resource"], "default/test");
  EXPECT_EQ(docs[0]["content"], "Hello World!");
  EXPECT_EQ(docs[1]["route"]["resource"], "app/user/marker");
}

TEST_F(ctl, topics_works_over_the_stream_socket) {
  ASSERT_EQ(run_ctl({"subscribe", "sensors/+/data"}).first, 0);
  process p({ctl_path, "topics", "--stream", "--socket", stream_socket_path()});
  ASSERT_EQ(p.wait(), 0) << p.output();
  EXPECT_EQ(p.output(), "sensors/+/data\n");
}

TEST_F(ctl, send_sync_prints_the_response_as_one_json_line) {
  ASSERT_EQ(run_ctl({"subscribe", "default/test"}).first, 0);
  const auto [status, out] = run_ctl(
      {"send", "--to", "eventbus", "--op", "query", "--resource", "subscriptions", "--sync"});
  EXPECT_EQ(status, 0) << out;
  const auto docs = json_lines(out);
  ASSERT_EQ(docs.size(), 1U) << out;
  EXPECT_EQ(docs[0]["route"]["operation"], "response");
  EXPECT_EQ(docs[0]["content"], nlohmann::json::array({"default/test"}));
}

TEST_F(ctl, send_sync_to_a_missing_module_prints_the_error_at_once_and_exits_1) {
  // no_route in the answer (checked below) means it failed at once, not at the timeout.
  const auto [status, out] =
      run_ctl({"send", "--to", "nosuch", "--op", "get", "--resource", "x", "--sync"});
  EXPECT_EQ(status, 1) << out;
  const auto docs = json_lines(out);
  ASSERT_EQ(docs.size(), 1U) << out;
  EXPECT_EQ(docs[0]["route"]["operation"], "error");
  EXPECT_EQ(docs[0]["content"], "no_route");
}

TEST_F(ctl, send_delivers_json_content_and_text_to_a_group) {
  auto w = watch("watchers");
  auto [status, out] = run_ctl({"send", "--group", "watchers", "--op", "update", "--resource",
                                "r/1", "--content", R"({"b":2,"a":[1]})"});
  ASSERT_EQ(status, 0) << out;
  std::tie(status, out) = run_ctl({"send", "--group", "watchers", "--op", "update", "--resource",
                                   "r/2", "--text", "plain words"});
  ASSERT_EQ(status, 0) << out;
  ASSERT_TRUE(w->wait_for_output("plain words")) << w->output();
  const auto docs = json_lines(w->output());
  ASSERT_EQ(docs.size(), 2U) << w->output();
  EXPECT_EQ(docs[0]["route"]["resource"], "r/1");
  EXPECT_EQ(docs[0]["route"]["group"], "user");
  EXPECT_EQ(docs[0]["content"], nlohmann::json::parse(R"({"a":[1],"b":2})"));
  EXPECT_EQ(docs[1]["content"], "plain words");
}

TEST_F(ctl, a_module_name_in_use_is_refused_with_status_2) {
  process first({ctl_path, "watch", "--module", "dup", "--socket", socket_path()});
  ASSERT_TRUE(first.wait_for_output("watching as dup")) << first.output();
  const auto [status, out] = run_ctl({"topics", "--module", "dup"});
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find("registration refused"), std::string::npos) << out;
}

TEST(ctl_without_daemon, every_command_exits_2_and_says_the_daemon_is_not_running) {
  temp_dir dir;
  const auto missing = (dir.path() / "eventbus.sock").string();
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"topics"}, {"watch", "--group", "twin"}, {"publish", "t", "p"}}) {
    std::vector<std::string> argv{ctl_path};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--socket", missing});
    process p(argv);
    const auto status = p.wait();
    EXPECT_EQ(status, 2) << p.output();
    EXPECT_NE(p.output().find("cannot connect to " + missing), std::string::npos) << p.output();
    EXPECT_NE(p.output().find("is the eventbus daemon running?"), std::string::npos) << p.output();
  }
}

TEST(ctl_without_daemon, help_lists_the_subcommands_and_examples) {
  process p({ctl_path, "--help"});
  ASSERT_EQ(p.wait(), 0) << p.output();
  for (const char* word : {"watch", "publish", "subscribe", "unsubscribe", "topics", "send",
                           "Examples:", "eventbus-ctl watch --group twin"}) {
    EXPECT_NE(p.output().find(word), std::string::npos) << word << "\n" << p.output();
  }
  process pub({ctl_path, "publish", "--help"});
  ASSERT_EQ(pub.wait(), 0) << pub.output();
  EXPECT_NE(pub.output().find("mqttQOS"), std::string::npos) << pub.output();
  EXPECT_EQ(pub.output().find("--qos"), std::string::npos) << pub.output();
}

TEST(ctl_without_daemon, send_refuses_content_that_is_not_json) {
  process p({ctl_path, "send", "--to", "x", "--op", "o", "--resource", "r", "--content", "{no"});
  const auto status = p.wait();
  EXPECT_NE(status, 0) << p.output();
  EXPECT_NE(p.output().find("not valid JSON"), std::string::npos) << p.output();
}

}  // namespace
}  // namespace ebus::test
