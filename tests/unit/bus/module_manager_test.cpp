#include "bus/module_manager.hpp"

#include <gtest/gtest.h>

#include "ebus_test/manual_clock.hpp"
#include "ebus_test/run_coro.hpp"

namespace ebus::bus {
namespace {

using test::drain;

// Answers requests until its inbox closes; records lifecycle events in a shared journal.
class echo_module final : public module {
 public:
  echo_module(std::string name, std::string group, std::vector<std::string>& journal,
              bool enabled = true)
      : name_(std::move(name)), group_(std::move(group)), journal_(journal), enabled_(enabled) {}

  std::string name() const override { return name_; }
  std::string group() const override { return group_; }
  bool enabled() const override { return enabled_; }

  awaitable<void> run(bus& b) override {
    journal_.push_back("run " + name_);
    for (;;) {
      auto m = co_await b.receive(name_);
      if (!m) break;
      if (m->route.operation == "throw") throw std::runtime_error("bad input");
      (void)b.send_resp(new_response(*m, content::text(name_)));
    }
    journal_.push_back("end " + name_);
  }

  void stop() override { journal_.push_back("stop " + name_); }

 private:
  std::string name_;
  std::string group_;
  std::vector<std::string>& journal_;
  bool enabled_;
};

class module_manager_test : public ::testing::Test {
 protected:
  asio::io_context io;
  test::manual_clock clk;
  bus b{io.get_executor(), clk};
  std::vector<std::string> journal;
};

TEST_F(module_manager_test, starts_enabled_modules_and_skips_disabled_ones) {
  module_manager mm(b);
  mm.add(std::make_unique<echo_module>("twin", "twin", journal));
  mm.add(std::make_unique<echo_module>("off", "twin", journal, false));
  ASSERT_TRUE(mm.start_all(io.get_executor()));
  drain(io);
  EXPECT_TRUE(b.has_module("twin"));
  EXPECT_FALSE(b.has_module("off"));
  EXPECT_EQ(b.group_members("twin"), (std::vector<std::string>{"twin"}));
  EXPECT_EQ(mm.running(), 1u);
  EXPECT_EQ(journal, (std::vector<std::string>{"run twin"}));
}

TEST_F(module_manager_test, running_modules_answer_requests_over_the_bus) {
  module_manager mm(b);
  mm.add(std::make_unique<echo_module>("twin", "twin", journal));
  ASSERT_TRUE(mm.start_all(io.get_executor()));
  auto got = test::spawn(io, b.send_sync("twin", new_message(), std::chrono::seconds(1)));
  drain(io);
  ASSERT_TRUE(got->has_value() && got->value());
  EXPECT_EQ(got->value()->content.bytes(), "twin");
}

TEST_F(module_manager_test, stops_modules_in_reverse_start_order) {
  module_manager mm(b);
  mm.add(std::make_unique<echo_module>("first", "", journal));
  mm.add(std::make_unique<echo_module>("second", "", journal));
  ASSERT_TRUE(mm.start_all(io.get_executor()));
  drain(io);
  mm.stop_all();
  drain(io);
  // stop() runs synchronously in reverse order; each run() then ends as its inbox closes.
  EXPECT_EQ(journal, (std::vector<std::string>{"run first", "run second", "stop second",
                                               "stop first", "end second", "end first"}));
  EXPECT_EQ(mm.running(), 0u);
  EXPECT_FALSE(b.has_module("first"));
}

TEST_F(module_manager_test, a_module_that_throws_is_unregistered_and_the_others_carry_on) {
  module_manager mm(b);
  mm.add(std::make_unique<echo_module>("fragile", "", journal));
  mm.add(std::make_unique<echo_module>("steady", "", journal));
  ASSERT_TRUE(mm.start_all(io.get_executor()));
  drain(io);
  auto bad = new_message();
  bad.route.operation = "throw";
  ASSERT_TRUE(b.send("fragile", std::move(bad)));
  drain(io);
  EXPECT_FALSE(b.has_module("fragile"));
  EXPECT_EQ(mm.running(), 1u);
  auto got = test::spawn(io, b.send_sync("steady", new_message(), std::chrono::seconds(1)));
  drain(io);
  ASSERT_TRUE(got->has_value() && got->value());
}

TEST_F(module_manager_test, a_module_that_throws_is_reported_to_the_failure_handler_once) {
  module_manager mm(b);
  std::vector<std::string> failures;
  mm.on_failure([&](const std::string& what) { failures.push_back(what); });
  mm.add(std::make_unique<echo_module>("fragile", "", journal));
  mm.add(std::make_unique<echo_module>("steady", "", journal));
  ASSERT_TRUE(mm.start_all(io.get_executor()));
  drain(io);
  EXPECT_TRUE(failures.empty());
  auto bad = new_message();
  bad.route.operation = "throw";
  ASSERT_TRUE(b.send("fragile", std::move(bad)));
  drain(io);
  EXPECT_EQ(failures, (std::vector<std::string>{"module fragile threw: bad input"}));
  EXPECT_FALSE(b.has_module("fragile"));
  mm.stop_all();
  drain(io);
  EXPECT_EQ(failures.size(), 1u);  // the others ending at stop_all() are no failure
}

TEST_F(module_manager_test, a_module_whose_run_returns_before_stop_all_is_a_failure) {
  module_manager mm(b);
  std::vector<std::string> failures;
  mm.on_failure([&](const std::string& what) { failures.push_back(what); });
  mm.add(std::make_unique<echo_module>("quitter", "", journal));
  ASSERT_TRUE(mm.start_all(io.get_executor()));
  drain(io);
  // Its inbox closes without stop_all(): run() returns while the node still counts on it.
  b.remove_module("quitter");
  drain(io);
  EXPECT_EQ(failures, (std::vector<std::string>{"module quitter returned before it was stopped"}));
  EXPECT_EQ(mm.running(), 0u);
}

TEST_F(module_manager_test, duplicate_names_fail_start_and_register_nothing) {
  module_manager mm(b);
  mm.add(std::make_unique<echo_module>("twin", "", journal));
  mm.add(std::make_unique<echo_module>("twin", "", journal));
  const auto r = mm.start_all(io.get_executor());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), bus_errc::duplicate_module);
  EXPECT_TRUE(b.modules().empty());
  EXPECT_TRUE(journal.empty());
}

}  // namespace
}  // namespace ebus::bus
