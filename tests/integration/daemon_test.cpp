// The eventbus binary as a user runs it: starts on its defaults, says when it is ready, and
// stops cleanly on SIGTERM and SIGINT.
#include <csignal>

#include <gtest/gtest.h>

#include "ebus_test/process.hpp"

namespace ebus::test {
namespace {

const std::string daemon_path = built_program("apps/eventbus/eventbus");

TEST(daemon, starts_with_no_arguments_logs_ready_and_exits_zero_on_sigterm) {
  process p({daemon_path});
  ASSERT_TRUE(p.wait_for_output("ready")) << p.output();
  p.signal(SIGTERM);
  const auto status = p.wait();
  ASSERT_TRUE(status.has_value()) << "did not exit after SIGTERM\n" << p.output();
  EXPECT_EQ(*status, 0) << p.output();
  EXPECT_NE(p.output().find("stopped"), std::string::npos) << p.output();
}

TEST(daemon, default_start_accepts_mosquitto_clients_on_127_0_0_1_1884) {
  process d({daemon_path});
  ASSERT_TRUE(d.wait_for_output("ready")) << d.output();
  ASSERT_NE(d.output().find("tcp://127.0.0.1:1884"), std::string::npos) << d.output();
  process sub({"stdbuf", "-oL", "mosquitto_sub", "-p", "1884", "-t", "$hw/events/device/+/+/twin/+",
               "-C", "1", "-W", "10", "-d", "-F", "%t %p"});
  ASSERT_TRUE(sub.wait_for_output("SUBACK")) << sub.output();
  process pub({"mosquitto_pub", "-p", "1884", "-t", "$hw/events/device/default/led1/twin/update",
               "-q", "1", "-m", R"({"event_id":"e1"})"});
  ASSERT_EQ(pub.wait(), 0) << pub.output();
  ASSERT_EQ(sub.wait(), 0) << sub.output();
  EXPECT_NE(sub.output().find(R"($hw/events/device/default/led1/twin/update {"event_id":"e1"})"),
            std::string::npos)
      << sub.output();
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(), 0) << d.output();
}

TEST(daemon, exits_zero_on_sigint) {
  process p({daemon_path});
  ASSERT_TRUE(p.wait_for_output("ready")) << p.output();
  p.signal(SIGINT);
  const auto status = p.wait();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0) << p.output();
}

TEST(daemon, prints_its_version) {
  process p({daemon_path, "--version"});
  const auto status = p.wait();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0);
  EXPECT_NE(p.output().find('.'), std::string::npos) << p.output();
}

TEST(daemon, refuses_an_unknown_log_level_with_a_clear_message) {
  process p({daemon_path, "--log-level", "loud"});
  const auto status = p.wait();
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(*status, 0);
  EXPECT_NE(p.output().find("loud"), std::string::npos) << p.output();
}

}  // namespace
}  // namespace ebus::test
