// The bus context operations (beehive Send/Receive/SendSync/SendResp/SendToGroup/
// SendToGroupSync) on one io_context with a manual clock: no threads, no sleeps.
#include "bus/bus.hpp"

#include <algorithm>
#include <optional>

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include "common/log.hpp"
#include "ebus_test/manual_clock.hpp"
#include "ebus_test/run_coro.hpp"

namespace ebus::bus {
namespace {

using namespace std::chrono_literals;
using test::drain;
using test::spawn;

message msg(std::string resource, std::string op = "update") {
  auto m = new_message();
  build_router(m, "test", "user", std::move(resource), std::move(op));
  m.content = content::text("payload");
  return m;
}

class bus_fixture : public ::testing::Test {
 protected:
  /// With `budget_limit`, the bus charges `budget` (0: unlimited, to measure what is held).
  explicit bus_fixture(bus_options opts = {}, std::optional<std::size_t> budget_limit = {})
      : budget(budget_limit.value_or(0)),
        b(io.get_executor(), clk, with_budget(opts, budget_limit ? &budget : nullptr)) {}

  static bus_options with_budget(bus_options opts, memory_budget* m) {
    opts.budget = m;
    return opts;
  }

  // Answers every request that arrives in `module` with "<resource>:answer", forever.
  void spawn_responder(const std::string& module) {
    asio::co_spawn(
        io,
        [](bus& bs, std::string name) -> awaitable<void> {
          for (;;) {
            auto req = co_await bs.receive(name);
            if (!req) co_return;
            (void)bs.send_resp(new_response(*req, content::text(req->route.resource + ":" + name)));
          }
        }(b, module),
        rethrow_handler{});
  }

  asio::io_context io;
  test::manual_clock clk;
  memory_budget budget;  // outlives the bus
  bus b;
};

class small_inbox : public bus_fixture {
 protected:
  small_inbox() : bus_fixture(bus_options{.inbox_capacity = 4}) {}
};

class with_backlog : public bus_fixture {
 protected:
  with_backlog() : bus_fixture(bus_options{.group_backlog = 3}) {}
};

class small_inbox_with_backlog : public bus_fixture {
 protected:
  small_inbox_with_backlog() : bus_fixture(bus_options{.inbox_capacity = 2, .group_backlog = 3}) {}
};

std::vector<std::string> drain_resources(bus& b, std::string_view module) {
  std::vector<std::string> out;
  while (auto m = b.try_receive(module))
    out.push_back(m->route.resource);
  return out;
}

TEST_F(bus_fixture, send_then_receive_keeps_fifo_order_per_sender_and_receiver) {
  ASSERT_TRUE(b.add_module("twin", "twin"));
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(b.send("twin", msg(std::to_string(i))));
    if (i % 3 == 0) {
      ASSERT_TRUE(b.send_to_group("twin", msg(std::to_string(i) + "g")));
    }
  }
  for (int i = 0; i < 500; ++i) {
    auto got = spawn(io, b.receive("twin"));
    drain(io);
    ASSERT_TRUE(got->has_value() && got->value());
    EXPECT_EQ(got->value()->route.resource, std::to_string(i));
    if (i % 3 == 0) {
      auto grouped = b.try_receive("twin");
      ASSERT_TRUE(grouped);
      EXPECT_EQ(grouped->route.resource, std::to_string(i) + "g");
    }
  }
  EXPECT_FALSE(b.try_receive("twin"));
  EXPECT_EQ(b.stats().delivered, 500u + 167u);
}

TEST_F(bus_fixture, receive_waits_until_a_message_arrives) {
  ASSERT_TRUE(b.add_module("hub"));
  auto got = spawn(io, b.receive("hub"));
  drain(io);
  EXPECT_FALSE(got->has_value());
  ASSERT_TRUE(b.send("hub", msg("late")));
  drain(io);
  ASSERT_TRUE(got->has_value());
  ASSERT_TRUE(got->value());
  EXPECT_EQ(got->value()->route.resource, "late");
}

TEST_F(bus_fixture, a_burst_wakes_every_waiting_receiver_of_one_inbox) {
  ASSERT_TRUE(b.add_module("hub"));
  auto first = spawn(io, b.receive("hub"));
  auto second = spawn(io, b.receive("hub"));
  drain(io);
  ASSERT_TRUE(b.send("hub", msg("1")));
  ASSERT_TRUE(b.send("hub", msg("2")));
  drain(io);
  ASSERT_TRUE(first->has_value() && first->value());
  ASSERT_TRUE(second->has_value() && second->value());
  EXPECT_NE(first->value()->route.resource, second->value()->route.resource);
}

TEST_F(bus_fixture, send_to_unknown_module_fails_at_once_with_no_route) {
  const auto r = b.send("nobody", msg("x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), bus_errc::no_route);
  EXPECT_EQ(b.stats().no_route, 1u);
}

TEST_F(bus_fixture, receive_on_unknown_module_fails_with_no_route) {
  auto got = spawn(io, b.receive("nobody"));
  drain(io);
  ASSERT_TRUE(got->has_value());
  ASSERT_FALSE(got->value());
  EXPECT_EQ(got->value().error(), bus_errc::no_route);
}

TEST_F(bus_fixture, send_to_group_reaches_every_member_with_the_same_message) {
  ASSERT_TRUE(b.add_module("a", "bus"));
  ASSERT_TRUE(b.add_module("b", "bus"));
  ASSERT_TRUE(b.add_module("c", "other"));
  ASSERT_TRUE(b.join_group("c", "bus"));
  const auto sent = msg("topic");
  const auto r = b.send_to_group("bus", message(sent));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 3u);
  for (const char* m : {"a", "b", "c"}) {
    auto got = b.try_receive(m);
    ASSERT_TRUE(got) << m;
    EXPECT_EQ(*got, sent) << m;
  }
  EXPECT_EQ(b.group_members("bus"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(b.groups(), (std::vector<std::string>{"bus", "other"}));
}

TEST_F(bus_fixture, send_to_unknown_group_fails_at_once_with_no_route) {
  const auto r = b.send_to_group("twin", msg("x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), bus_errc::no_route);
  EXPECT_EQ(b.stats().no_route, 1u);
}

TEST_F(bus_fixture, group_becomes_empty_when_its_last_member_leaves) {
  ASSERT_TRUE(b.add_module("twin", "twin"));
  b.remove_module("twin");
  const auto r = b.send_to_group("twin", msg("x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), bus_errc::no_route);
}

TEST_F(with_backlog, groups_and_modules_found_before_are_looked_up_again_after_every_change) {
  // The bus remembers the last groups and module it found; each change must be seen at once.
  EXPECT_EQ(b.send_to_group("twin", msg("1")).error(), bus_errc::no_route);
  EXPECT_EQ(b.send_to_group("hub", msg("1")).error(), bus_errc::no_route);
  EXPECT_FALSE(b.try_receive("twin"));
  EXPECT_EQ(b.send("twin", msg("1")).error(), bus_errc::no_route);

  ASSERT_TRUE(b.add_module("twin", "twin"));
  EXPECT_EQ(b.send_to_group("twin", msg("2")), 1u) << "a member joined";
  EXPECT_EQ(b.send_to_group("hub", msg("2")).error(), bus_errc::no_route);
  ASSERT_TRUE(b.join_group("twin", "hub"));
  EXPECT_EQ(b.send_to_group("hub", msg("3")), 1u) << "a member joined a group looked up before";
  ASSERT_TRUE(b.send("twin", msg("4")));
  for (const char* resource : {"2", "3", "4"}) {
    auto got = b.try_receive("twin");
    ASSERT_TRUE(got) << resource;
    EXPECT_EQ(got->route.resource, resource);
  }

  b.remove_module("twin");
  EXPECT_EQ(b.send_to_group("twin", msg("5")).error(), bus_errc::no_route)
      << "its last member left";
  EXPECT_EQ(b.send("twin", msg("5")).error(), bus_errc::no_route);
  EXPECT_FALSE(b.try_receive("twin"));
  b.declare_group("twin");
  EXPECT_EQ(b.send_to_group("twin", msg("6")), 0u) << "kept by the backlog declared since";
  EXPECT_EQ(b.backlog_size("twin"), 1u);

  ASSERT_TRUE(b.add_module("twin", "twin"));  // the same name again: a new inbox
  drain(io);                                  // the backlog is handed over in slices from the loop
  auto handed = b.try_receive("twin");
  ASSERT_TRUE(handed);
  EXPECT_EQ(handed->route.resource, "6");
}

TEST_F(small_inbox, full_inbox_refuses_with_queue_full_counts_and_keeps_what_it_has) {
  ASSERT_TRUE(b.add_module("slow"));
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(b.send("slow", msg(std::to_string(i))));
  const auto r = b.send("slow", msg("overflow"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), bus_errc::queue_full);
  EXPECT_EQ(b.stats().queue_full, 1u);
  const auto info = b.modules();
  ASSERT_EQ(info.size(), 1u);
  EXPECT_EQ(info[0].queued, 4u);
  EXPECT_EQ(info[0].refused, 1u);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(b.try_receive("slow")->route.resource, std::to_string(i));
  EXPECT_TRUE(b.send("slow", msg("room again")));
}

TEST_F(small_inbox, group_send_skips_a_full_member_and_still_reaches_the_others) {
  ASSERT_TRUE(b.add_module("slow", "g"));
  ASSERT_TRUE(b.add_module("fast", "g"));
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(b.send("slow", msg("fill")));
  const auto r = b.send_to_group("g", msg("x"));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 1u);
  EXPECT_EQ(b.stats().queue_full, 1u);
  EXPECT_EQ(b.try_receive("fast")->route.resource, "x");
}

TEST_F(small_inbox, group_send_fails_with_queue_full_when_no_member_has_room) {
  ASSERT_TRUE(b.add_module("slow", "g"));
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(b.send("slow", msg("fill")));
  const auto r = b.send_to_group("g", msg("x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), bus_errc::queue_full);
}

TEST_F(bus_fixture, send_sync_returns_the_response_matched_by_parent_id) {
  ASSERT_TRUE(b.add_module("twin", "twin"));
  spawn_responder("twin");
  auto request = msg("query");
  const auto id = request.header.id;
  auto got = spawn(io, b.send_sync("twin", std::move(request), 5s));
  drain(io);
  ASSERT_TRUE(got->has_value());
  ASSERT_TRUE(got->value()) << got->value().error().message();
  EXPECT_EQ(got->value()->header.parent_id, id);
  EXPECT_EQ(got->value()->route.operation, "response");
  EXPECT_EQ(got->value()->content.bytes(), "query:twin");
  EXPECT_EQ(b.pending_requests(), 0u);
}

TEST_F(bus_fixture, send_sync_marks_the_request_sync_and_gives_it_an_id) {
  ASSERT_TRUE(b.add_module("twin"));
  message request;  // no id, no sync flag
  auto got = spawn(io, b.send_sync("twin", std::move(request)));
  drain(io);
  const auto delivered = b.try_receive("twin");
  ASSERT_TRUE(delivered);
  EXPECT_TRUE(delivered->header.sync);
  EXPECT_EQ(delivered->header.id.size(), 36u);
  ASSERT_TRUE(b.send_resp(new_response(*delivered, content::text("ok"))));
  drain(io);
  ASSERT_TRUE(got->has_value() && got->value());
}

TEST_F(bus_fixture, send_sync_times_out_at_its_deadline_and_not_before) {
  ASSERT_TRUE(b.add_module("twin"));
  auto got = spawn(io, b.send_sync("twin", msg("q"), 5s));
  drain(io);
  clk.advance(4999ms);
  drain(io);
  EXPECT_FALSE(got->has_value());
  clk.advance(1ms);
  drain(io);
  ASSERT_TRUE(got->has_value());
  ASSERT_FALSE(got->value());
  EXPECT_EQ(got->value().error(), bus_errc::timeout);
  EXPECT_EQ(b.stats().timeouts, 1u);
  EXPECT_EQ(b.pending_requests(), 0u);
}

TEST_F(bus_fixture, send_sync_without_timeout_uses_the_30_second_default) {
  ASSERT_TRUE(b.add_module("twin"));
  auto got = spawn(io, b.send_sync("twin", msg("q"), 0s));
  drain(io);
  clk.advance(29s);
  drain(io);
  EXPECT_FALSE(got->has_value());
  clk.advance(1s);
  drain(io);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(got->value().error(), bus_errc::timeout);
}

TEST_F(bus_fixture, shorter_deadline_registered_later_expires_first) {
  ASSERT_TRUE(b.add_module("twin"));
  auto slow = spawn(io, b.send_sync("twin", msg("slow"), 10s));
  auto fast = spawn(io, b.send_sync("twin", msg("fast"), 2s));
  drain(io);
  clk.advance(2s);
  drain(io);
  ASSERT_TRUE(fast->has_value());
  EXPECT_EQ(fast->value().error(), bus_errc::timeout);
  EXPECT_FALSE(slow->has_value());
  clk.advance(8s);
  drain(io);
  ASSERT_TRUE(slow->has_value());
  EXPECT_EQ(slow->value().error(), bus_errc::timeout);
}

TEST_F(bus_fixture, response_after_the_timeout_is_dropped_and_counted) {
  ASSERT_TRUE(b.add_module("twin"));
  auto got = spawn(io, b.send_sync("twin", msg("q"), 1s));
  drain(io);
  const auto request = b.try_receive("twin");
  ASSERT_TRUE(request);
  clk.advance(1s);
  drain(io);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(got->value().error(), bus_errc::timeout);
  const auto late = b.send_resp(new_response(*request, content::text("late")));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error(), bus_errc::no_pending_request);
  EXPECT_EQ(b.stats().late_responses, 1u);
}

TEST_F(bus_fixture, response_given_before_the_requester_resumes_is_not_lost) {
  // A remote sink that answers synchronously during delivery: the request must already be
  // registered (beehive v1.1 registered it after enqueueing and could lose this answer).
  ASSERT_TRUE(b.add_remote_module("echo", "", [this](message&& m) {
    EXPECT_TRUE(b.send_resp(new_response(m, content::text("instant"))));
    return std::error_code{};
  }));
  auto got = spawn(io, b.send_sync("echo", msg("q"), 1s));
  drain(io);
  ASSERT_TRUE(got->has_value());
  ASSERT_TRUE(got->value());
  EXPECT_EQ(got->value()->content.bytes(), "instant");
}

TEST_F(bus_fixture, send_sync_to_unknown_module_fails_without_waiting) {
  auto got = spawn(io, b.send_sync("nobody", msg("q"), 30s));
  drain(io);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(got->value().error(), bus_errc::no_route);
  EXPECT_EQ(b.pending_requests(), 0u);
}

TEST_F(small_inbox, send_sync_to_a_full_inbox_fails_at_once_with_queue_full) {
  ASSERT_TRUE(b.add_module("slow"));
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(b.send("slow", msg("fill")));
  auto got = spawn(io, b.send_sync("slow", msg("q"), 30s));
  drain(io);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(got->value().error(), bus_errc::queue_full);
  EXPECT_EQ(b.pending_requests(), 0u);
}

TEST_F(bus_fixture, two_pending_requests_with_the_same_id_are_refused) {
  ASSERT_TRUE(b.add_module("twin"));
  auto first = msg("q");
  auto second = first;
  auto a = spawn(io, b.send_sync("twin", std::move(first), 5s));
  auto c = spawn(io, b.send_sync("twin", std::move(second), 5s));
  drain(io);
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ(c->value().error(), bus_errc::duplicate_request);
  EXPECT_FALSE(a->has_value());
}

TEST_F(bus_fixture, send_resp_without_parent_id_is_invalid) {
  const auto r = b.send_resp(msg("x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), bus_errc::invalid_message);
}

TEST_F(bus_fixture, send_to_group_sync_collects_one_response_per_member) {
  for (const char* m : {"a", "b", "c"}) {
    ASSERT_TRUE(b.add_module(m, "bus"));
    spawn_responder(m);
  }
  auto got = spawn(io, b.send_to_group_sync("bus", msg("q"), 5s));
  drain(io);
  ASSERT_TRUE(got->has_value());
  ASSERT_TRUE(got->value()) << got->value().error().message();
  std::vector<std::string> answers;
  for (const auto& r : *got->value())
    answers.push_back(r.content.bytes());
  std::sort(answers.begin(), answers.end());
  EXPECT_EQ(answers, (std::vector<std::string>{"q:a", "q:b", "q:c"}));
}

TEST_F(bus_fixture, send_to_group_sync_times_out_when_a_member_stays_silent) {
  ASSERT_TRUE(b.add_module("a", "bus"));
  ASSERT_TRUE(b.add_module("silent", "bus"));
  spawn_responder("a");
  auto got = spawn(io, b.send_to_group_sync("bus", msg("q"), 3s));
  drain(io);
  EXPECT_FALSE(got->has_value());
  clk.advance(3s);
  drain(io);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(got->value().error(), bus_errc::timeout);
}

TEST_F(bus_fixture, send_to_group_sync_fails_at_once_when_a_member_leaves_before_answering) {
  ASSERT_TRUE(b.add_module("a", "bus"));
  ASSERT_TRUE(b.add_module("leaving", "bus"));
  spawn_responder("a");
  auto got = spawn(io, b.send_to_group_sync("bus", msg("q"), 30s));
  drain(io);
  EXPECT_FALSE(got->has_value());
  b.remove_module("leaving");
  drain(io);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(got->value().error(), bus_errc::module_removed);
  EXPECT_EQ(b.pending_requests(), 0u);
}

TEST_F(bus_fixture, send_to_group_sync_keeps_the_answer_of_a_member_that_left_after_answering) {
  ASSERT_TRUE(b.add_module("early", "bus"));
  ASSERT_TRUE(b.add_module("late", "bus"));
  auto got = spawn(io, b.send_to_group_sync("bus", msg("q"), 30s));
  drain(io);
  auto early = b.try_receive("early");
  auto late = b.try_receive("late");
  ASSERT_TRUE(early && late);
  ASSERT_TRUE(b.send_resp(new_response(*early, content::text("from early")), "early"));
  b.remove_module("early");
  drain(io);
  EXPECT_FALSE(got->has_value());
  ASSERT_TRUE(b.send_resp(new_response(*late, content::text("from late")), "late"));
  drain(io);
  ASSERT_TRUE(got->has_value());
  ASSERT_TRUE(got->value()) << got->value().error().message();
  ASSERT_EQ(got->value()->size(), 2u);
  EXPECT_EQ((*got->value())[0].content.bytes(), "from early");
  EXPECT_EQ((*got->value())[1].content.bytes(), "from late");
}

TEST_F(bus_fixture, send_to_group_sync_counts_one_answer_per_member) {
  ASSERT_TRUE(b.add_module("twice", "bus"));
  ASSERT_TRUE(b.add_module("slow", "bus"));
  ASSERT_TRUE(b.add_module("outsider"));
  auto got = spawn(io, b.send_to_group_sync("bus", msg("q"), 30s));
  drain(io);
  auto first = b.try_receive("twice");
  auto slow = b.try_receive("slow");
  ASSERT_TRUE(first && slow);
  ASSERT_TRUE(b.send_resp(new_response(*first, content::text("one")), "twice"));
  // A second answer from the same member, and one from a module the request never went to,
  // are refused: the request still waits for "slow".
  const auto again = b.send_resp(new_response(*first, content::text("two")), "twice");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), bus_errc::no_pending_request);
  const auto stranger = b.send_resp(new_response(*first, content::text("three")), "outsider");
  ASSERT_FALSE(stranger);
  EXPECT_EQ(b.stats().late_responses, 2u);
  drain(io);
  EXPECT_FALSE(got->has_value());
  EXPECT_EQ(b.pending_requests(), 1u);
  ASSERT_TRUE(b.send_resp(new_response(*slow, content::text("slow")), "slow"));
  drain(io);
  ASSERT_TRUE(got->has_value());
  ASSERT_TRUE(got->value()) << got->value().error().message();
  ASSERT_EQ(got->value()->size(), 2u);
  EXPECT_EQ((*got->value())[0].content.bytes(), "one");
  EXPECT_EQ((*got->value())[1].content.bytes(), "slow");
}

TEST_F(bus_fixture, names_from_modules_are_logged_escaped_on_one_line) {
  // Module, group and operation names come from remote modules: one with a line break must not
  // forge a second log line.
  auto logger = log::get("bus");
  const auto level = logger->level();
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(100);
  sink->set_pattern("%l %v");
  logger->sinks().push_back(sink);
  logger->set_level(spdlog::level::debug);
  auto m = msg("t");
  m.route.operation = "publish\n2026-01-01 error [bus] forged";
  EXPECT_FALSE(b.send("ghost\nmodule", m));
  EXPECT_FALSE(b.send_to_group("ghost\ngroup", message(m)));
  logger->sinks().pop_back();
  logger->set_level(level);
  const auto lines = sink->last_formatted();
  ASSERT_EQ(lines.size(), 2u);
  for (const auto& line : lines) {
    EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << line;  // the end of the line
    EXPECT_NE(line.find(R"(operation=publish\n2026-01-01 error [bus] forged)"), std::string::npos)
        << line;
  }
  EXPECT_NE(lines[0].find(R"(no_route module=ghost\nmodule)"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find(R"(no_route group=ghost\ngroup)"), std::string::npos) << lines[1];
}

TEST_F(bus_fixture, send_sync_takes_no_answer_from_another_module) {
  ASSERT_TRUE(b.add_module("target"));
  ASSERT_TRUE(b.add_module("other"));
  auto got = spawn(io, b.send_sync("target", msg("q"), 30s));
  drain(io);
  auto req = b.try_receive("target");
  ASSERT_TRUE(req);
  EXPECT_FALSE(b.send_resp(new_response(*req, content::text("not mine")), "other"));
  drain(io);
  EXPECT_FALSE(got->has_value());
  ASSERT_TRUE(b.send_resp(new_response(*req, content::text("mine")), "target"));
  drain(io);
  ASSERT_TRUE(got->has_value());
  ASSERT_TRUE(got->value());
  EXPECT_EQ(got->value()->content.bytes(), "mine");
}

TEST_F(bus_fixture, send_to_group_sync_on_empty_group_fails_with_no_route) {
  auto got = spawn(io, b.send_to_group_sync("nobody", msg("q"), 3s));
  drain(io);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(got->value().error(), bus_errc::no_route);
}

TEST_F(small_inbox, send_to_group_sync_fails_at_once_when_a_member_is_full) {
  ASSERT_TRUE(b.add_module("a", "bus"));
  ASSERT_TRUE(b.add_module("full", "bus"));
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(b.send("full", msg("fill")));
  auto got = spawn(io, b.send_to_group_sync("bus", msg("q"), 3s));
  drain(io);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(got->value().error(), bus_errc::queue_full);
  EXPECT_EQ(b.pending_requests(), 0u);
}

TEST_F(bus_fixture, shutdown_cancels_pending_requests_and_waiting_receivers) {
  ASSERT_TRUE(b.add_module("twin"));
  ASSERT_TRUE(b.add_module("hub"));
  auto request = spawn(io, b.send_sync("twin", msg("q"), 30s));
  auto waiting = spawn(io, b.receive("hub"));
  drain(io);
  b.shutdown();
  drain(io);
  ASSERT_TRUE(request->has_value());
  EXPECT_EQ(request->value().error(), bus_errc::cancelled);
  ASSERT_TRUE(waiting->has_value());
  EXPECT_EQ(waiting->value().error(), bus_errc::cancelled);
  EXPECT_EQ(b.stats().cancelled, 1u);
  EXPECT_EQ(b.send("twin", msg("x")).error(), bus_errc::cancelled);
  EXPECT_EQ(b.add_module("new").error(), bus_errc::cancelled);
}

TEST_F(bus_fixture, removing_a_module_fails_requests_to_it_at_once) {
  ASSERT_TRUE(b.add_module("remote"));
  ASSERT_TRUE(b.add_module("other"));
  auto to_removed = spawn(io, b.send_sync("remote", msg("q"), 30s));
  auto to_other = spawn(io, b.send_sync("other", msg("q"), 30s));
  drain(io);
  b.remove_module("remote");
  drain(io);
  ASSERT_TRUE(to_removed->has_value());
  EXPECT_EQ(to_removed->value().error(), bus_errc::module_removed);
  EXPECT_FALSE(to_other->has_value());
  EXPECT_FALSE(b.has_module("remote"));
  EXPECT_EQ(b.send("remote", msg("x")).error(), bus_errc::no_route);
}

TEST_F(bus_fixture, removing_a_module_wakes_its_waiting_receiver_with_cancelled) {
  ASSERT_TRUE(b.add_module("idle"));
  auto receiver = spawn(io, b.receive("idle"));
  drain(io);
  EXPECT_FALSE(receiver->has_value());
  b.remove_module("idle");
  drain(io);
  ASSERT_TRUE(receiver->has_value());
  EXPECT_EQ(receiver->value().error(), bus_errc::cancelled);
}

TEST_F(bus_fixture, duplicate_module_names_are_refused) {
  ASSERT_TRUE(b.add_module("twin"));
  EXPECT_EQ(b.add_module("twin").error(), bus_errc::duplicate_module);
  EXPECT_EQ(b.add_remote_module("twin", "", [](message&&) { return std::error_code{}; }).error(),
            bus_errc::duplicate_module);
}

TEST_F(bus_fixture, remote_module_receives_through_its_sink_and_its_refusals_count) {
  std::vector<message> taken;
  bool accept = true;
  ASSERT_TRUE(b.add_remote_module("remote", "hub", [&](message&& m) {
    if (!accept) return make_error_code(bus_errc::queue_full);
    taken.push_back(std::move(m));
    return std::error_code{};
  }));
  ASSERT_TRUE(b.send_to_group("hub", msg("one")));
  accept = false;
  const auto refused = b.send("remote", msg("two"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), bus_errc::queue_full);
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].route.resource, "one");
  EXPECT_EQ(b.stats().queue_full, 1u);
  EXPECT_TRUE(b.modules()[0].remote);
  auto got = spawn(io, b.receive("remote"));  // a remote module has no local inbox
  drain(io);
  EXPECT_EQ(got->value().error(), bus_errc::no_route);
}

// --- group backlog ---------------------------------------------------------------------------

TEST_F(with_backlog, declared_group_keeps_messages_until_a_module_is_added_to_it) {
  b.declare_group("twin");
  for (const char* r : {"1", "2", "3"}) {
    const auto sent = b.send_to_group("twin", msg(r));
    ASSERT_TRUE(sent) << sent.error().message();
    EXPECT_EQ(*sent, 0u);
  }
  EXPECT_EQ(b.backlog_size("twin"), 3u);
  EXPECT_EQ(b.stats().backlogged, 3u);
  EXPECT_EQ(b.stats().no_route, 0u);
  EXPECT_EQ(b.stats().delivered, 0u);
  EXPECT_TRUE(b.groups().empty());  // a backlog is not a member

  ASSERT_TRUE(b.add_module("twin", "twin"));
  EXPECT_EQ(b.group_members("twin"), (std::vector<std::string>{"twin"}));
  drain(io);  // handed over from the loop
  EXPECT_EQ(b.backlog_size("twin"), 0u);
  EXPECT_EQ(drain_resources(b, "twin"), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(b.stats().delivered, 3u);
}

TEST_F(with_backlog, backlog_goes_to_a_module_that_joins_the_group_later) {
  ASSERT_TRUE(b.add_module("devicetwin"));
  b.declare_group("twin");
  ASSERT_TRUE(b.send_to_group("twin", msg("a")));
  ASSERT_TRUE(b.send_to_group("twin", msg("b")));
  EXPECT_FALSE(b.try_receive("devicetwin"));
  ASSERT_TRUE(b.join_group("devicetwin", "twin"));
  drain(io);
  EXPECT_EQ(drain_resources(b, "devicetwin"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(b.backlog_size("twin"), 0u);
}

TEST_F(with_backlog, backlog_goes_to_a_remote_module_sink_in_order) {
  b.declare_group("hub");
  for (const char* r : {"x", "y", "z"})
    ASSERT_TRUE(b.send_to_group("hub", msg(r)));
  std::vector<std::string> taken;
  ASSERT_TRUE(b.add_remote_module("remote", "hub", [&](message&& m) {
    taken.push_back(m.route.resource);
    return std::error_code{};
  }));
  drain(io);
  EXPECT_EQ(taken, (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(b.backlog_size("hub"), 0u);
  EXPECT_EQ(b.stats().delivered, 3u);
}

TEST_F(with_backlog, full_backlog_refuses_with_queue_full_and_counts) {
  b.declare_group("twin");
  for (const char* r : {"1", "2", "3"})
    ASSERT_TRUE(b.send_to_group("twin", msg(r)));
  const auto over = b.send_to_group("twin", msg("4"));
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error(), bus_errc::queue_full);
  EXPECT_EQ(b.stats().queue_full, 1u);
  EXPECT_EQ(b.stats().backlogged, 3u);
  EXPECT_EQ(b.backlog_size("twin"), 3u);
  ASSERT_TRUE(b.add_module("twin", "twin"));
  drain(io);
  EXPECT_EQ(drain_resources(b, "twin"), (std::vector<std::string>{"1", "2", "3"}));
}

TEST_F(with_backlog, undeclared_group_still_fails_with_no_route) {
  b.declare_group("twin");
  const auto r = b.send_to_group("hub", msg("x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), bus_errc::no_route);
  EXPECT_EQ(b.stats().no_route, 1u);
  EXPECT_EQ(b.stats().backlogged, 0u);
  EXPECT_EQ(b.backlog_size("hub"), 0u);
}

TEST_F(bus_fixture, declared_group_without_backlog_size_fails_with_no_route) {
  b.declare_group("twin");
  const auto r = b.send_to_group("twin", msg("x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), bus_errc::no_route);
  EXPECT_EQ(b.backlog_size("twin"), 0u);
  EXPECT_EQ(b.stats().backlogged, 0u);
}

TEST_F(with_backlog, shutdown_discards_the_backlog) {
  b.declare_group("twin");
  ASSERT_TRUE(b.send_to_group("twin", msg("1")));
  ASSERT_TRUE(b.send_to_group("twin", msg("2")));
  b.shutdown();
  EXPECT_EQ(b.backlog_size("twin"), 0u);
  EXPECT_EQ(b.send_to_group("twin", msg("3")).error(), bus_errc::cancelled);
  b.declare_group("hub");
  EXPECT_EQ(b.backlog_size("hub"), 0u);
}

TEST_F(with_backlog, member_receives_the_backlog_before_newer_messages) {
  b.declare_group("twin");
  ASSERT_TRUE(b.send_to_group("twin", msg("old1")));
  ASSERT_TRUE(b.send_to_group("twin", msg("old2")));
  ASSERT_TRUE(b.add_module("twin", "twin"));
  const auto sent = b.send_to_group("twin", msg("new"));
  ASSERT_TRUE(sent);
  EXPECT_EQ(*sent, 1u);
  EXPECT_EQ(b.stats().backlogged, 3u);  // behind the two still being handed over
  drain(io);
  EXPECT_EQ(drain_resources(b, "twin"), (std::vector<std::string>{"old1", "old2", "new"}));
}

TEST_F(with_backlog, group_keeps_again_after_its_last_member_leaves) {
  b.declare_group("twin");
  ASSERT_TRUE(b.add_module("twin", "twin"));
  b.remove_module("twin");  // the process serving twin restarts
  const auto kept = b.send_to_group("twin", msg("while away"));
  ASSERT_TRUE(kept);
  EXPECT_EQ(*kept, 0u);
  ASSERT_TRUE(b.add_module("twin", "twin"));
  drain(io);
  EXPECT_EQ(drain_resources(b, "twin"), (std::vector<std::string>{"while away"}));
}

TEST_F(with_backlog, group_request_to_an_empty_declared_group_fails_with_no_route) {
  b.declare_group("twin");
  auto got = spawn(io, b.send_to_group_sync("twin", msg("q"), 3s));
  drain(io);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(got->value().error(), bus_errc::no_route);
  EXPECT_EQ(b.backlog_size("twin"), 0u);
  EXPECT_EQ(b.pending_requests(), 0u);
}

TEST_F(small_inbox_with_backlog, a_small_inbox_takes_the_backlog_as_it_drains_refusing_nothing) {
  b.declare_group("twin");
  for (const char* r : {"1", "2", "3"})
    ASSERT_TRUE(b.send_to_group("twin", msg(r)));
  ASSERT_TRUE(b.add_module("twin", "twin"));
  drain(io);
  EXPECT_EQ(b.modules()[0].queued, 2u);  // as much as the inbox holds
  EXPECT_EQ(b.backlog_size("twin"), 1u);
  EXPECT_EQ(b.try_receive("twin")->route.resource, "1");
  drain(io);
  EXPECT_EQ(drain_resources(b, "twin"), (std::vector<std::string>{"2", "3"}));
  drain(io);
  EXPECT_EQ(b.backlog_size("twin"), 0u);
  EXPECT_FALSE(b.handing_over("twin"));
  EXPECT_EQ(b.stats().queue_full, 0u);
  EXPECT_EQ(b.modules()[0].refused, 0u);
}

TEST_F(with_backlog, a_remote_sink_that_is_full_pauses_the_hand_over_until_resume) {
  b.declare_group("hub");
  for (const char* r : {"1", "2", "3"})
    ASSERT_TRUE(b.send_to_group("hub", msg(r)));
  std::vector<std::string> taken;
  std::size_t room = 1;
  ASSERT_TRUE(b.add_remote_module("remote", "hub", [&](message&& m) {
    if (room == 0) return make_error_code(bus_errc::queue_full);  // `m` left as it was
    --room;
    taken.push_back(m.route.resource);
    return std::error_code{};
  }));
  drain(io);
  EXPECT_EQ(taken, (std::vector<std::string>{"1"}));
  EXPECT_EQ(b.backlog_size("hub"), 2u);
  drain(io);  // nothing moves without resume()
  EXPECT_EQ(taken.size(), 1u);
  room = 10;
  b.resume("remote");
  EXPECT_EQ(taken.size(), 1u);  // from the loop, not inside resume()
  drain(io);
  EXPECT_EQ(taken, (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(b.stats().queue_full, 0u);
  EXPECT_EQ(b.stats().delivered, 3u);
  EXPECT_EQ(b.backlog_size("hub"), 0u);
  EXPECT_FALSE(b.handing_over("hub"));
}

TEST_F(with_backlog, a_remote_module_removed_during_hand_over_leaves_the_rest_kept) {
  b.declare_group("hub");
  for (const char* r : {"1", "2", "3"})
    ASSERT_TRUE(b.send_to_group("hub", msg(r)));
  std::vector<std::string> taken;
  ASSERT_TRUE(b.add_remote_module("remote", "hub", [&](message&& m) {
    taken.push_back(m.route.resource);
    b.remove_module("remote");  // the connection broke while writing
    return std::error_code{};
  }));
  drain(io);
  EXPECT_EQ(taken, (std::vector<std::string>{"1"}));
  EXPECT_FALSE(b.has_module("remote"));
  EXPECT_TRUE(b.group_members("hub").empty());
  EXPECT_EQ(b.backlog_size("hub"), 2u);
  ASSERT_TRUE(b.add_module("next", "hub"));
  drain(io);
  EXPECT_EQ(drain_resources(b, "next"), (std::vector<std::string>{"2", "3"}));
}

TEST_F(with_backlog, a_group_send_during_hand_over_stays_behind_the_backlog) {
  b.declare_group("hub");
  ASSERT_TRUE(b.send_to_group("hub", msg("1")));
  ASSERT_TRUE(b.send_to_group("hub", msg("2")));
  std::vector<std::string> taken;
  ASSERT_TRUE(b.add_remote_module("remote", "hub", [&](message&& m) {
    if (m.route.resource == "1") {
      EXPECT_TRUE(b.send_to_group("hub", msg("during")));
    }
    taken.push_back(m.route.resource);
    return std::error_code{};
  }));
  drain(io);
  EXPECT_EQ(taken, (std::vector<std::string>{"1", "2", "during"}));
}

TEST_F(with_backlog, shutdown_by_a_sink_during_hand_over_stops_it) {
  b.declare_group("hub");
  ASSERT_TRUE(b.send_to_group("hub", msg("1")));
  ASSERT_TRUE(b.send_to_group("hub", msg("2")));
  std::size_t calls = 0;
  ASSERT_TRUE(b.add_remote_module("remote", "hub", [&](message&&) {
    ++calls;
    b.shutdown();
    return std::error_code{};
  }));
  drain(io);
  EXPECT_EQ(calls, 1u);
  EXPECT_EQ(b.backlog_size("hub"), 0u);
}

// --- byte bounds and the memory budget -------------------------------------------------------

message sized(std::string resource, std::size_t payload) {
  auto m = msg(std::move(resource));
  m.content = content::text(std::string(payload, 'p'));
  return m;
}

class bounded : public bus_fixture {
 protected:
  static constexpr std::size_t kib = 1024;
  bounded()
      : bus_fixture(bus_options{.inbox_capacity = 100,
                                .group_backlog = 100,
                                .inbox_bytes = 10 * kib,
                                .group_backlog_bytes = 10 * kib},
                    0) {}
};

TEST_F(bounded, a_full_inbox_by_bytes_refuses_with_queue_full_and_counts) {
  ASSERT_TRUE(b.add_module("hub"));
  int taken = 0;
  expected<void, std::error_code> sent;
  while ((sent = b.send("hub", sized(std::to_string(taken), kib)))) {
    ++taken;
  }
  EXPECT_EQ(sent.error(), bus_errc::queue_full);
  EXPECT_GT(taken, 5);
  EXPECT_LT(taken, 10);  // each message is more than its payload
  const auto info = b.modules()[0];
  EXPECT_EQ(info.queued, static_cast<std::size_t>(taken));
  EXPECT_LE(info.queued_bytes, 10 * kib);
  EXPECT_EQ(info.refused, 1u);
  EXPECT_EQ(b.stats().queue_full, 1u);
  EXPECT_EQ(b.stats().memory_budget, 0u);
  EXPECT_EQ(budget.used(), info.queued_bytes);
  // A small message still fits where a large one did not.
  EXPECT_TRUE(b.send("hub", sized("small", 0)));
}

TEST_F(bounded, one_message_larger_than_the_inbox_is_taken_by_an_empty_inbox_only) {
  ASSERT_TRUE(b.add_module("hub"));
  ASSERT_TRUE(b.send("hub", sized("big", 20 * kib)));
  EXPECT_EQ(b.send("hub", sized("next", 0)).error(), bus_errc::queue_full);
  EXPECT_EQ(b.try_receive("hub")->route.resource, "big");
  EXPECT_TRUE(b.send("hub", sized("next", 0)));
}

TEST_F(bounded, a_full_group_backlog_by_bytes_refuses_with_queue_full) {
  b.declare_group("hub");
  int kept = 0;
  expected<std::size_t, std::error_code> sent;
  while ((sent = b.send_to_group("hub", sized(std::to_string(kept), kib)))) {
    ++kept;
  }
  EXPECT_EQ(sent.error(), bus_errc::queue_full);
  EXPECT_NE(sent.error().message().find("group backlog"), std::string::npos);
  EXPECT_EQ(b.backlog_size("hub"), static_cast<std::size_t>(kept));
  EXPECT_LE(b.backlog_bytes("hub"), 10 * kib);
  EXPECT_EQ(budget.used(), b.backlog_bytes("hub"));
  EXPECT_EQ(b.stats().queue_full, 1u);
}

TEST_F(bus_fixture, approximate_size_counts_strings_content_and_a_fixed_overhead) {
  message empty;
  EXPECT_EQ(approximate_size(empty), message_overhead);
  auto m = sized("r", 1000);
  EXPECT_GE(approximate_size(m), message_overhead + 1000 + 1);
  EXPECT_EQ(approximate_size(m), approximate_size(message(m)));
  message j;
  j.content = content::json(nlohmann::json{{"key", std::string(500, 'v')}, {"n", 1}});
  EXPECT_GT(approximate_size(j), message_overhead + 500 + 3);
}

class budgeted : public bus_fixture {
 protected:
  budgeted()
      : bus_fixture(bus_options{.inbox_capacity = 1000,
                                .group_backlog = 1000,
                                .inbox_bytes = 1 << 20,
                                .group_backlog_bytes = 1 << 20},
                    8 * 1024) {}
};

TEST_F(budgeted, a_message_the_budget_cannot_hold_is_refused_with_memory_budget) {
  ASSERT_TRUE(b.add_module("hub"));
  int taken = 0;
  expected<void, std::error_code> sent;
  while ((sent = b.send("hub", sized(std::to_string(taken), 1024)))) {
    ++taken;
  }
  EXPECT_EQ(sent.error(), bus_errc::memory_budget);
  EXPECT_GT(taken, 3);
  EXPECT_EQ(b.stats().memory_budget, 1u);
  EXPECT_EQ(b.stats().queue_full, 0u);
  EXPECT_EQ(b.modules()[0].refused, 1u);
  EXPECT_EQ(budget.refusals(), 1u);

  b.declare_group("twin");
  EXPECT_EQ(b.send_to_group("twin", sized("kept", 1024)).error(), bus_errc::memory_budget);
  EXPECT_EQ(b.stats().memory_budget, 2u);
}

TEST_F(budgeted, the_budget_is_released_exactly_as_messages_are_received) {
  ASSERT_TRUE(b.add_module("hub"));
  ASSERT_TRUE(b.add_module("edged"));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(b.send("hub", sized(std::to_string(i), 100 + static_cast<std::size_t>(i))));
    ASSERT_TRUE(b.send("edged", sized(std::to_string(i), 7)));
  }
  EXPECT_GT(budget.used(), 0u);
  const auto mods = b.modules();
  EXPECT_EQ(budget.used(), mods[0].queued_bytes + mods[1].queued_bytes);
  auto got = spawn(io, b.receive("hub"));
  drain(io);
  ASSERT_TRUE(got->has_value() && got->value());
  (void)drain_resources(b, "hub");
  EXPECT_EQ(budget.used(), b.modules()[0].queued_bytes);  // edged's only
  b.remove_module("edged");                               // its inbox is discarded
  EXPECT_EQ(budget.used(), 0u);
}

TEST_F(budgeted, shutdown_releases_what_inboxes_and_backlogs_held) {
  ASSERT_TRUE(b.add_module("hub"));
  b.declare_group("twin");
  ASSERT_TRUE(b.send("hub", sized("a", 100)));
  ASSERT_TRUE(b.send_to_group("twin", sized("b", 100)));
  EXPECT_GT(budget.used(), 0u);
  b.shutdown();
  EXPECT_EQ(budget.used(), 0u);
}

// --- hand-over in slices ---------------------------------------------------------------------

class sliced : public bus_fixture {
 protected:
  explicit sliced(std::size_t inbox_capacity = 1000)
      : bus_fixture(
            bus_options{
                .inbox_capacity = inbox_capacity, .group_backlog = 1000, .hand_over_slice = 10},
            0) {}

  void fill_backlog(int n) {
    b.declare_group("hub");
    for (int i = 0; i < n; ++i)
      ASSERT_TRUE(b.send_to_group("hub", msg(std::to_string(i))));
  }

  static std::vector<std::string> numbers(int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i < to; ++i)
      out.push_back(std::to_string(i));
    return out;
  }

  /// Runs one handler of the loop.
  void one_turn() {
    io.restart();
    ASSERT_EQ(io.poll_one(), 1u);
  }
};

TEST_F(sliced, the_backlog_is_handed_over_a_slice_per_turn_of_the_loop) {
  fill_backlog(35);
  ASSERT_TRUE(b.add_module("edgehub", "hub"));
  EXPECT_TRUE(b.handing_over("hub"));
  EXPECT_EQ(b.modules()[0].queued, 0u);  // nothing yet: join_group returns at once
  EXPECT_EQ(b.modules()[0].receiving, (std::vector<std::string>{"hub"}));
  one_turn();
  EXPECT_EQ(b.modules()[0].queued, 10u);
  EXPECT_EQ(b.backlog_size("hub"), 25u);
  one_turn();
  EXPECT_EQ(b.modules()[0].queued, 20u);
  drain(io);
  EXPECT_EQ(drain_resources(b, "edgehub"), numbers(0, 35));
  EXPECT_FALSE(b.handing_over("hub"));
  EXPECT_TRUE(b.modules()[0].receiving.empty());
  EXPECT_EQ(budget.used(), 0u);
}

TEST_F(sliced, a_slice_is_also_bounded_in_bytes) {
  b.declare_group("hub");
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(b.send_to_group("hub", sized(std::to_string(i), 100 * 1024)));
  ASSERT_TRUE(b.add_module("edgehub", "hub"));
  one_turn();
  EXPECT_EQ(b.modules()[0].queued, 2u);  // the second one reaches the slice's 128 KiB
  drain(io);
  EXPECT_EQ(drain_resources(b, "edgehub"), numbers(0, 5));
}

TEST_F(sliced, group_messages_during_the_hand_over_go_behind_the_backlog) {
  fill_backlog(25);
  ASSERT_TRUE(b.add_module("edgehub", "hub"));
  one_turn();
  const auto sent = b.send_to_group("hub", msg("25"));
  ASSERT_TRUE(sent);
  EXPECT_EQ(*sent, 1u);  // the member takes it, behind the backlog
  EXPECT_EQ(b.backlog_size("hub"), 16u);
  one_turn();
  ASSERT_TRUE(b.send_to_group("hub", msg("26")));
  drain(io);
  ASSERT_TRUE(b.send_to_group("hub", msg("27")));  // hand-over done: straight to the inbox
  EXPECT_EQ(b.backlog_size("hub"), 0u);
  EXPECT_EQ(drain_resources(b, "edgehub"), numbers(0, 28));
}

TEST_F(sliced, a_direct_send_and_a_group_request_do_not_wait_for_the_backlog) {
  fill_backlog(35);
  ASSERT_TRUE(b.add_module("edgehub", "hub"));
  one_turn();
  ASSERT_TRUE(b.send("edgehub", msg("direct")));
  auto reply = spawn(io, b.send_to_group_sync("hub", msg("question"), 5s));
  one_turn();
  one_turn();  // the next slice, and the request's coroutine
  auto got = drain_resources(b, "edgehub");
  ASSERT_EQ(got.size(), 22u);
  EXPECT_EQ(got[10], "direct");
  EXPECT_NE(std::find(got.begin(), got.end(), "question"), got.end());
  EXPECT_EQ(b.backlog_size("hub"), 15u);  // the request did not wait for these
  b.shutdown();
  drain(io);
}

TEST_F(sliced, a_module_joining_during_the_hand_over_gets_new_messages_only) {
  fill_backlog(25);
  ASSERT_TRUE(b.add_module("first", "hub"));
  one_turn();
  ASSERT_TRUE(b.add_module("second", "hub"));
  const auto sent = b.send_to_group("hub", msg("new"));
  ASSERT_TRUE(sent);
  EXPECT_EQ(*sent, 2u);
  drain(io);
  auto first = numbers(0, 25);
  first.push_back("new");
  EXPECT_EQ(drain_resources(b, "first"), first);
  EXPECT_EQ(drain_resources(b, "second"), (std::vector<std::string>{"new"}));
}

class sliced_small_inbox : public sliced {
 protected:
  sliced_small_inbox() : sliced(8) {}
};

TEST_F(sliced_small_inbox, the_hand_over_waits_for_room_and_goes_on_as_the_module_receives) {
  fill_backlog(30);
  ASSERT_TRUE(b.add_module("edgehub", "hub"));
  drain(io);
  EXPECT_EQ(b.modules()[0].queued, 8u);  // full, and nothing refused
  EXPECT_EQ(b.backlog_size("hub"), 22u);
  std::vector<std::string> got;
  for (int i = 0; i < 3; ++i)
    got.push_back(b.try_receive("edgehub")->route.resource);
  drain(io);
  EXPECT_EQ(b.modules()[0].queued, 5u);  // not half empty yet: still waiting
  got.push_back(b.try_receive("edgehub")->route.resource);
  drain(io);
  EXPECT_EQ(b.modules()[0].queued, 8u);  // refilled
  // A receiver that waits takes the rest as it comes.
  while (got.size() < 30) {
    auto m = spawn(io, b.receive("edgehub"));
    drain(io);
    ASSERT_TRUE(m->has_value() && m->value());
    got.push_back(m->value()->route.resource);
  }
  EXPECT_EQ(got, numbers(0, 30));
  EXPECT_EQ(b.stats().queue_full, 0u);
  EXPECT_EQ(b.stats().delivered, 30u);
  EXPECT_FALSE(b.handing_over("hub"));
  EXPECT_EQ(budget.used(), 0u);
}

TEST_F(sliced, a_member_leaving_mid_hand_over_leaves_the_rest_for_the_next) {
  fill_backlog(25);
  ASSERT_TRUE(b.add_module("edgehub", "hub"));
  one_turn();
  EXPECT_EQ(drain_resources(b, "edgehub"), numbers(0, 10));
  b.remove_module("edgehub");
  EXPECT_FALSE(b.handing_over("hub"));
  drain(io);  // the slice already posted finds nobody to hand to
  EXPECT_EQ(b.backlog_size("hub"), 15u);
  ASSERT_TRUE(b.send_to_group("hub", msg("25")));  // no member: kept behind the rest
  ASSERT_TRUE(b.add_module("restarted", "hub"));
  drain(io);
  EXPECT_EQ(drain_resources(b, "restarted"), numbers(10, 26));
  EXPECT_EQ(budget.used(), 0u);
}

TEST_F(sliced, shutdown_mid_hand_over_stops_it_and_releases_everything) {
  fill_backlog(25);
  ASSERT_TRUE(b.add_module("edgehub", "hub"));
  one_turn();
  EXPECT_GT(budget.used(), 0u);
  b.shutdown();
  drain(io);
  EXPECT_EQ(b.backlog_size("hub"), 0u);
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_EQ(b.stats().delivered, 10u);
}

TEST_F(sliced, destroying_the_bus_mid_hand_over_leaves_nothing_behind) {
  auto other = std::make_unique<bus>(io.get_executor(), clk,
                                     bus_options{.group_backlog = 10, .budget = &budget});
  other->declare_group("hub");
  ASSERT_TRUE(other->send_to_group("hub", msg("kept")));
  ASSERT_TRUE(other->add_module("edgehub", "hub"));
  other.reset();  // the slice already posted must not touch it
  drain(io);
  EXPECT_EQ(budget.used(), 0u);
}

TEST_F(sliced, a_remote_module_takes_the_backlog_as_fast_as_its_sink_has_room) {
  fill_backlog(40);
  std::vector<std::string> taken;
  std::size_t room = 15;
  ASSERT_TRUE(b.add_remote_module("edgehub", "hub", [&](message&& m) {
    if (room == 0) return make_error_code(bus_errc::queue_full);
    --room;
    taken.push_back(std::move(m.route.resource));
    return std::error_code{};
  }));
  drain(io);
  EXPECT_EQ(taken.size(), 15u);
  EXPECT_EQ(b.backlog_size("hub"), 25u);
  EXPECT_EQ(budget.used(), b.backlog_bytes("hub"));  // the one put back is still charged
  ASSERT_TRUE(b.send_to_group("hub", msg("40")));    // still behind the backlog
  while (taken.size() < 41) {
    room = 7;
    b.resume("edgehub");
    drain(io);
  }
  EXPECT_EQ(taken, numbers(0, 41));
  EXPECT_EQ(b.stats().queue_full, 0u);
  EXPECT_FALSE(b.handing_over("hub"));
  EXPECT_EQ(budget.used(), 0u);
}

TEST_F(sliced, what_a_remote_sink_refuses_for_good_is_counted_and_the_rest_goes_on) {
  fill_backlog(5);
  std::vector<std::string> taken;
  ASSERT_TRUE(b.add_remote_module("edgehub", "hub", [&](message&& m) {
    if (m.route.resource == "2") return make_error_code(bus_errc::too_large);
    taken.push_back(std::move(m.route.resource));
    return std::error_code{};
  }));
  drain(io);
  EXPECT_EQ(taken, (std::vector<std::string>{"0", "1", "3", "4"}));
  EXPECT_EQ(b.stats().too_large, 1u);
  EXPECT_EQ(b.stats().delivered, 4u);
  EXPECT_EQ(b.modules()[0].refused, 1u);
  EXPECT_EQ(budget.used(), 0u);
}

// --- flow control ----------------------------------------------------------------------------

class flow : public bus_fixture {
 protected:
  flow() : bus_fixture(bus_options{.inbox_capacity = 8}) {
    b.set_relief_listener([this](const std::string& g) { relieved.push_back(g); });
  }
  std::vector<std::string> relieved;
};

TEST_F(flow, a_group_is_crowded_past_half_an_inbox_and_relieved_once_it_drains_to_a_quarter) {
  ASSERT_TRUE(b.add_module("twin", "twin"));
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(b.send_to_group("twin", msg(std::to_string(i))));
  EXPECT_FALSE(b.crowded("twin"));  // half: not over it
  ASSERT_TRUE(b.send_to_group("twin", msg("4")));
  EXPECT_TRUE(b.crowded("twin"));
  b.watch("twin");
  b.watch("twin");  // idempotent: one relief
  ASSERT_TRUE(b.try_receive("twin"));
  ASSERT_TRUE(b.try_receive("twin"));  // 3 left: above a quarter
  drain(io);
  EXPECT_TRUE(relieved.empty());
  ASSERT_TRUE(b.try_receive("twin"));  // 2 left: a quarter
  EXPECT_TRUE(relieved.empty());       // checked from the loop, not inside take()
  drain(io);
  EXPECT_EQ(relieved, (std::vector<std::string>{"twin"}));
  EXPECT_FALSE(b.crowded("twin"));
  ASSERT_TRUE(b.try_receive("twin"));
  drain(io);
  EXPECT_EQ(relieved.size(), 1u) << "a watch is relieved once";
}

TEST_F(flow, a_group_send_says_whether_it_left_the_group_crowded) {
  bool crowded = true;
  ASSERT_FALSE(b.send_to_group("twin", msg("none"), crowded));  // no such group
  EXPECT_FALSE(crowded);
  ASSERT_TRUE(b.add_module("twin", "twin"));
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(b.send_to_group("twin", msg(std::to_string(i)), crowded));
    EXPECT_FALSE(crowded) << i;
  }
  ASSERT_TRUE(b.send_to_group("twin", msg("4"), crowded));
  EXPECT_TRUE(crowded);
  EXPECT_EQ(crowded, b.crowded("twin"));
}

TEST_F(flow, a_remote_member_is_crowded_as_its_load_says_and_relieved_after_resume) {
  bool loaded = true;
  ASSERT_TRUE(b.add_remote_module(
      "remote", "hub", [](message&&) { return std::error_code{}; }, [&] { return loaded; }));
  EXPECT_TRUE(b.crowded("hub"));
  b.watch("hub");
  loaded = false;
  drain(io);
  EXPECT_TRUE(relieved.empty()) << "nothing said it drained";
  b.resume("remote");
  drain(io);
  EXPECT_EQ(relieved, (std::vector<std::string>{"hub"}));
}

TEST_F(flow, a_resume_while_still_crowded_keeps_the_watch) {
  bool loaded = true;
  ASSERT_TRUE(b.add_remote_module(
      "remote", "hub", [](message&&) { return std::error_code{}; }, [&] { return loaded; }));
  b.watch("hub");
  b.resume("remote");
  drain(io);
  EXPECT_TRUE(relieved.empty());
  loaded = false;
  b.resume("remote");
  drain(io);
  EXPECT_EQ(relieved, (std::vector<std::string>{"hub"}));
}

TEST_F(flow, a_group_without_members_is_never_crowded_and_a_crowding_member_leaving_relieves_it) {
  EXPECT_FALSE(b.crowded("twin"));
  ASSERT_TRUE(b.add_module("twin", "twin"));
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(b.send_to_group("twin", msg(std::to_string(i))));
  ASSERT_TRUE(b.crowded("twin"));
  b.watch("twin");
  b.remove_module("twin");
  drain(io);
  EXPECT_EQ(relieved, (std::vector<std::string>{"twin"}));
  EXPECT_FALSE(b.crowded("twin"));
}

TEST_F(flow, shutdown_forgets_the_watches) {
  ASSERT_TRUE(b.add_module("twin", "twin"));
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(b.send_to_group("twin", msg(std::to_string(i))));
  b.watch("twin");
  b.shutdown();
  drain(io);
  EXPECT_TRUE(relieved.empty());
}

}  // namespace
}  // namespace ebus::bus
