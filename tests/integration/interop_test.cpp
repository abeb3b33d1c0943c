// Real MQTT clients against the embedded broker on 127.0.0.1: Debian's mosquitto_pub and
// mosquitto_sub, and python3-paho-mqtt. Every QoS, retained messages, persistent sessions.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ebus_test/broker_harness.hpp"
#include "ebus_test/process.hpp"

namespace ebus::test {
namespace {

class interop : public ::testing::Test {
 protected:
  std::string port() const { return std::to_string(broker.port()); }

  // Runs a mosquitto_sub that prints "<retain> <topic> <payload>" lines; returns once the
  // subscription is acknowledged, so that publishes made after it are not missed.
  std::unique_ptr<process> subscriber(const std::vector<std::string>& extra) {
    // stdbuf: mosquitto_sub's stdout is a pipe here; line buffering shows SUBACK at once.
    std::vector<std::string> argv{
        "stdbuf", "-oL", "mosquitto_sub", "-p", port(), "-F", "%r %t %p", "-W", "10", "-d"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = std::make_unique<process>(argv);
    EXPECT_TRUE(p->wait_for_output("SUBACK")) << p->output();
    return p;
  }

  int publish(const std::vector<std::string>& extra) {
    std::vector<std::string> argv{"mosquitto_pub", "-p", port()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process p(argv);
    const auto status = p.wait();
    EXPECT_TRUE(status.has_value());
    return status.value_or(-1);
  }

  nlohmann::json paho(const std::string& scenario) {
    process p({"/usr/bin/python3",
               std::string(EBUS_SOURCE_DIR) + "/tests/integration/paho_client.py", port(),
               scenario});
    const auto status = p.wait(std::chrono::seconds(30));
    EXPECT_EQ(status, 0) << p.output();
    const auto& out = p.output();
    const auto start = out.rfind("\n{");
    return nlohmann::json::parse(out.substr(start == std::string::npos ? 0 : start + 1), nullptr,
                                 false);
  }

  broker_harness broker;
};

TEST_F(interop, mosquitto_clients_exchange_messages_at_every_qos) {
  for (const char* qos : {"0", "1", "2"}) {
    auto sub = subscriber({"-t", "interop/qos", "-q", qos, "-C", "1"});
    ASSERT_EQ(publish({"-t", "interop/qos", "-q", qos, "-m", std::string("at-qos-") + qos}), 0);
    ASSERT_EQ(sub->wait(), 0) << sub->output();
    EXPECT_NE(sub->output().find(std::string("0 interop/qos at-qos-") + qos), std::string::npos)
        << sub->output();
  }
}

TEST_F(interop, mosquitto_sub_gets_a_retained_message_with_the_retain_flag) {
  ASSERT_EQ(publish({"-t", "interop/retained", "-r", "-q", "1", "-m", "kept"}), 0);
  auto sub = subscriber({"-t", "interop/#", "-C", "1"});
  ASSERT_EQ(sub->wait(), 0) << sub->output();
  EXPECT_NE(sub->output().find("1 interop/retained kept"), std::string::npos) << sub->output();
  // An empty retained publish deletes it: a new subscriber then gets nothing.
  ASSERT_EQ(publish({"-t", "interop/retained", "-r", "-n"}), 0);
  process late({"mosquitto_sub", "-p", port(), "-t", "interop/#", "-C", "1", "-W", "1"});
  late.wait();
  EXPECT_EQ(late.output().find("kept"), std::string::npos) << late.output();
}

TEST_F(interop, persistent_mosquitto_sub_receives_what_was_published_while_offline) {
  auto first = subscriber({"-t", "interop/offline", "-q", "1", "-c", "-i", "keeper", "-E"});
  ASSERT_EQ(first->wait(), 0) << first->output();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(publish({"-t", "interop/offline", "-q", "1", "-m", "m" + std::to_string(i)}), 0);
  }
  process again({"mosquitto_sub", "-p", port(), "-t", "interop/offline", "-q", "1", "-c", "-i",
                 "keeper", "-C", "3", "-W", "10", "-F", "%p"});
  ASSERT_EQ(again.wait(), 0) << again.output();
  EXPECT_NE(again.output().find("m0\nm1\nm2"), std::string::npos) << again.output();
}

TEST_F(interop, paho_exchanges_messages_at_every_qos) {
  const auto r = paho("every_qos");
  ASSERT_FALSE(r.is_discarded());
  const auto& m = r.at("messages");
  ASSERT_EQ(m.size(), 3u) << r.dump();
  for (int q = 0; q < 3; ++q) {
    EXPECT_EQ(m[q].at("topic"), "paho/qos/" + std::to_string(q));
    EXPECT_EQ(m[q].at("payload"), "m" + std::to_string(q));
    EXPECT_EQ(m[q].at("qos"), q);  // min(publish QoS, subscription QoS 2)
    EXPECT_EQ(m[q].at("retain"), false);
  }
}

TEST_F(interop, paho_gets_retained_message_flagged_as_retained) {
  const auto r = paho("retained");
  ASSERT_FALSE(r.is_discarded());
  ASSERT_EQ(r.at("messages").size(), 1u) << r.dump();
  EXPECT_EQ(r["messages"][0].at("payload"), "kept");
  EXPECT_EQ(r["messages"][0].at("retain"), true);
}

TEST_F(interop, paho_persistent_session_resumes_with_queued_messages_in_order) {
  const auto r = paho("persistent_session");
  ASSERT_FALSE(r.is_discarded());
  EXPECT_EQ(r.at("session_present"), true) << r.dump();
  EXPECT_EQ(r.at("payloads"),
            nlohmann::json({"queued-0", "queued-1", "queued-2", "queued-3", "queued-4"}));
}

}  // namespace
}  // namespace ebus::test
