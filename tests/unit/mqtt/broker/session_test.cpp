// The per-client session as a Sans-I/O machine: messages go in through enqueue(), acks through
// on_puback/on_pubrec/on_pubcomp, and what it writes (fill, attach) is decoded back into packets.

#include "mqtt/broker/session.hpp"

#include <cstdint>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "broker_test_support.hpp"
#include "mqtt/codec/encoder.hpp"

namespace ebus::mqtt::broker {
namespace {

using codec::qos_level;
using test::decode_all;
using test::decode_publishes;
using test::fake_link;
using test::fill_publishes;
using test::make_message;
using test::publish_packet;
using test::redelivered;
using result = session::enqueue_result;

constexpr auto q0 = qos_level::at_most_once;
constexpr auto q1 = qos_level::at_least_once;
constexpr auto q2 = qos_level::exactly_once;
const clock::time_point t0{};

broker_options make_options(std::size_t queue_size = 100,
                            overflow_policy overflow = overflow_policy::drop_newest,
                            std::size_t max_inflight = 20) {
  broker_options o;
  o.session_queue_size = queue_size;
  o.overflow = overflow;
  o.max_inflight = max_inflight;
  // A subscriber counts as slow as soon as its queue is over the limit: these tests look at the
  // overflow policies; the flow-control tests below set a real timeout.
  o.slow_subscriber_timeout = std::chrono::milliseconds(0);
  return o;
}

/// Attaches `s` to `link` and checks that there was nothing to resend.
void attach_fresh(session& s, fake_link& link) {
  std::string resend;
  s.attach(link, resend);
  EXPECT_TRUE(resend.empty());
}

/// Enqueues `msg` and checks that it was queued.
void enqueue_ok(session& s, const message_ptr& msg, qos_level qos, bool retain = false) {
  EXPECT_EQ(s.enqueue(msg, qos, retain, t0), result::queued) << msg->topic;
}

// Queued by evicting the oldest queued message of its class (overflow_policy::drop_oldest).
void enqueue_evicting(session& s, const message_ptr& msg, qos_level qos) {
  EXPECT_EQ(s.enqueue(msg, qos, false, t0), result::queued_evicting) << msg->topic;
}

// --- enqueue and fill ----------------------------------------------------------------------

TEST(session, new_session_is_offline_with_nothing_to_send) {
  const auto options = make_options();
  session s("c1", true, options);
  EXPECT_EQ(s.client_id(), "c1");
  EXPECT_TRUE(s.clean());
  EXPECT_FALSE(s.online());
  EXPECT_FALSE(s.has_sendable());
  EXPECT_TRUE(fill_publishes(s).empty());
}

TEST(session, fill_writes_queued_messages_in_enqueue_order) {
  const auto options = make_options();
  session s("c1", true, options);
  fake_link link;
  attach_fresh(s, link);
  EXPECT_TRUE(s.online());

  enqueue_ok(s, make_message("a/1", "one"), q0);
  enqueue_ok(s, make_message("a/2", "two"), q1);
  enqueue_ok(s, make_message("a/3", "three"), q2, /*retain=*/true);
  enqueue_ok(s, make_message("a/4", "four"), q0);
  EXPECT_EQ(s.queued(), 4u);
  EXPECT_TRUE(s.has_sendable());

  // QoS 0 carries no packet id [MQTT-2.3.1-5]; QoS 1/2 get nonzero ones [MQTT-2.3.1-1].
  EXPECT_EQ(fill_publishes(s), (std::vector<codec::publish>{
                                   publish_packet("a/1", "one", q0),
                                   publish_packet("a/2", "two", q1, 1),
                                   publish_packet("a/3", "three", q2, 2, /*retain=*/true),
                                   publish_packet("a/4", "four", q0),
                               }));
  EXPECT_EQ(s.queued(), 0u);
  EXPECT_EQ(s.inflight(), 2u);
  EXPECT_FALSE(s.has_sendable());
  EXPECT_TRUE(fill_publishes(s).empty());
}

TEST(session, enqueue_wakes_the_attached_link_once_per_queued_message) {
  const auto options = make_options();
  session s("c1", true, options);
  fake_link link;
  attach_fresh(s, link);
  enqueue_ok(s, make_message("t", "1"), q0);
  enqueue_ok(s, make_message("t", "2"), q1);
  EXPECT_EQ(link.wakes, 2);
}

TEST(session, detached_session_no_longer_wakes_its_old_link) {
  const auto options = make_options();
  session s("c1", false, options);
  fake_link link;
  attach_fresh(s, link);
  s.detach();
  EXPECT_FALSE(s.online());
  enqueue_ok(s, make_message("t", "1"), q1);
  EXPECT_EQ(link.wakes, 0);
}

TEST(session, a_detached_session_keeps_its_owner_until_disowned_which_records_when) {
  // The queue-full path: the session goes offline while its connection is still closing.
  const auto options = make_options();
  session s("c1", false, options);
  fake_link link;
  attach_fresh(s, link);
  s.detach();
  EXPECT_EQ(s.owner(), &link);
  const auto later = t0 + std::chrono::seconds(5);
  s.disown(later);
  EXPECT_EQ(s.owner(), nullptr);
  EXPECT_EQ(s.offline_since(), later);
  attach_fresh(s, link);  // back online
  EXPECT_EQ(s.owner(), &link);
  EXPECT_TRUE(s.online());
}

TEST(session, fill_stops_once_out_reaches_the_budget_and_resumes_in_order) {
  const auto options = make_options();
  session s("c1", true, options);
  fake_link link;
  attach_fresh(s, link);
  enqueue_ok(s, make_message("t", "1"), q0);
  enqueue_ok(s, make_message("t", "2"), q1);
  enqueue_ok(s, make_message("t", "3"), q0);

  std::string out;
  s.fill(out, 1);  // any packet reaches a budget of one byte
  EXPECT_EQ(decode_publishes(out), (std::vector<codec::publish>{publish_packet("t", "1", q0)}));
  EXPECT_EQ(s.queued(), 2u);

  out.clear();
  s.fill(out, 1);
  EXPECT_EQ(decode_publishes(out), (std::vector<codec::publish>{publish_packet("t", "2", q1, 1)}));

  std::string full(10, 'x');  // already at the budget: nothing is appended
  s.fill(full, 10);
  EXPECT_EQ(full, std::string(10, 'x'));

  EXPECT_EQ(fill_publishes(s), (std::vector<codec::publish>{publish_packet("t", "3", q0)}));
}

TEST(session, fill_stops_before_a_packet_that_would_take_out_past_the_budget) {
  // A writer's buffer reserved for one batch is never grown for the packet that crosses it.
  const auto options = make_options();
  session s("c1", true, options);
  fake_link link;
  attach_fresh(s, link);
  for (const char* payload : {"1", "2", "3"})
    enqueue_ok(s, make_message("t", std::string(100, *payload)), q0);
  const std::size_t one = codec::publish_size(1, 100, q0);
  std::string out;
  s.fill(out, 2 * one + one / 2);
  EXPECT_EQ(out.size(), 2 * one);
  EXPECT_EQ(s.queued(), 1u);
  out.clear();
  s.fill(out, 1);  // an empty buffer takes one packet whatever the budget
  EXPECT_EQ(out.size(), one);
  EXPECT_EQ(s.queued(), 0u);
}

// --- flow control ------------------------------------------------------------------------------

broker_options flow_options(std::size_t queue_size, std::size_t queue_bytes = 1 << 20) {
  broker_options o;
  o.session_queue_size = queue_size;
  o.session_queue_bytes = queue_bytes;
  o.slow_subscriber_timeout = std::chrono::seconds(2);
  return o;
}

TEST(session_flow, past_the_limit_an_online_subscriber_queues_and_holds_the_publisher) {
  const auto options = flow_options(2);
  session s("sub", true, options);
  fake_link link;
  attach_fresh(s, link);
  auto publisher = std::make_shared<flow_waiter>();
  int cleared = 0;
  publisher->on_clear = [&cleared] { ++cleared; };

  enqueue_ok(s, make_message("t", "1"), q1);
  enqueue_ok(s, make_message("t", "2"), q1);
  EXPECT_EQ(s.enqueue(make_message("t", "3"), q1, false, t0), result::queued_over_limit);
  s.hold(publisher);
  EXPECT_EQ(publisher->blocking, 1u);
  EXPECT_EQ(s.queued(), 3u);
  EXPECT_EQ(s.dropped(), 0u);

  // Draining to half the limit or less releases the publisher, once.
  EXPECT_EQ(fill_publishes(s).size(), 3u);
  EXPECT_EQ(publisher->blocking, 0u);
  EXPECT_EQ(cleared, 1);
  EXPECT_EQ(s.enqueue(make_message("t", "4"), q1, false, t0), result::queued);
}

TEST(session_flow, queue_never_exceeds_twice_the_limit) {
  const auto options = flow_options(2);
  session s("sub", true, options);
  fake_link link;
  attach_fresh(s, link);
  for (int i = 0; i < 2; ++i)
    enqueue_ok(s, make_message("t", std::to_string(i)), q1);
  EXPECT_EQ(s.enqueue(make_message("t", "2"), q1, false, t0), result::queued_over_limit);
  EXPECT_EQ(s.enqueue(make_message("t", "3"), q1, false, t0), result::queued_over_limit);
  // Hard limit: the overflow policy applies even before the subscriber counts as slow.
  EXPECT_EQ(s.enqueue(make_message("t", "4"), q1, false, t0), result::dropped);
  EXPECT_EQ(s.queued(), 4u);
  EXPECT_EQ(s.dropped(), 1u);
}

TEST(session_flow, a_subscriber_over_its_limit_for_the_timeout_is_slow_and_drops) {
  const auto options = flow_options(1);
  session s("sub", true, options);
  fake_link link;
  attach_fresh(s, link);
  enqueue_ok(s, make_message("t", "1"), q1);
  EXPECT_EQ(s.enqueue(make_message("t", "2"), q1, false, t0), result::queued_over_limit);
  EXPECT_FALSE(s.slow(t0 + std::chrono::milliseconds(1999)));
  const auto later = t0 + options.slow_subscriber_timeout;
  EXPECT_TRUE(s.slow(later));
  EXPECT_EQ(s.enqueue(make_message("t", "3"), q1, false, later), result::dropped);
  // Once it drains it is no longer slow, and queues again.
  EXPECT_EQ(fill_publishes(s).size(), 2u);
  EXPECT_FALSE(s.slow(later));
  EXPECT_EQ(s.enqueue(make_message("t", "4"), q1, false, later), result::queued);
}

TEST(session_flow, bytes_bound_the_queue_like_messages) {
  const auto options = flow_options(100, 1000);
  session s("sub", true, options);
  fake_link link;
  attach_fresh(s, link);
  const std::string big(400, 'x');
  enqueue_ok(s, make_message("t", big), q1);
  enqueue_ok(s, make_message("t", big), q1);
  EXPECT_EQ(s.enqueue(make_message("t", big), q1, false, t0), result::queued_over_limit);
  EXPECT_GT(s.queued_bytes(), 1000u);
  EXPECT_LE(s.queued_bytes(), 2000u);
  EXPECT_EQ(s.enqueue(make_message("t", big), q1, false, t0), result::queued_over_limit);
  EXPECT_EQ(s.enqueue(make_message("t", big), q1, false, t0), result::dropped);
  EXPECT_LE(s.queued_bytes(), 2000u);
  EXPECT_EQ(fill_publishes(s).size(), 4u);
  EXPECT_EQ(s.queued_bytes(), 0u);
}

TEST(session_flow, going_offline_or_away_releases_waiting_publishers) {
  const auto options = flow_options(2);
  auto publisher = std::make_shared<flow_waiter>();
  {
    session s("sub", false, options);
    fake_link link;
    attach_fresh(s, link);
    enqueue_ok(s, make_message("t", "1"), q1);
    enqueue_ok(s, make_message("t", "2"), q1);
    EXPECT_EQ(s.enqueue(make_message("t", "3"), q1, false, t0), result::queued_over_limit);
    s.hold(publisher);
    EXPECT_EQ(publisher->blocking, 1u);
    s.detach();
    EXPECT_EQ(publisher->blocking, 0u);
    // Offline: nothing drains the queue, so nobody is held; the policy drops instead.
    EXPECT_EQ(s.enqueue(make_message("t", "4"), q1, false, t0), result::dropped);

    attach_fresh(s, link);
    EXPECT_EQ(s.enqueue(make_message("t", "5"), q1, false, t0), result::queued_over_limit);
    s.hold(publisher);
    EXPECT_EQ(publisher->blocking, 1u);
  }
  EXPECT_EQ(publisher->blocking, 0u);
}

TEST(session_flow, a_hold_from_before_a_timeout_does_not_release_a_later_wait) {
  const auto options = flow_options(1);
  session a("a", true, options);
  session b("b", true, options);
  fake_link la;
  fake_link lb;
  attach_fresh(a, la);
  attach_fresh(b, lb);
  auto publisher = std::make_shared<flow_waiter>();
  enqueue_ok(a, make_message("t", "1"), q1);
  EXPECT_EQ(a.enqueue(make_message("t", "2"), q1, false, t0), result::queued_over_limit);
  a.hold(publisher);
  // The publisher's wait times out: it stops waiting, and a later wait is a new generation.
  publisher->blocking = 0;
  ++publisher->generation;
  enqueue_ok(b, make_message("t", "1"), q1);
  EXPECT_EQ(b.enqueue(make_message("t", "2"), q1, false, t0), result::queued_over_limit);
  b.hold(publisher);
  EXPECT_EQ(publisher->blocking, 1u);
  (void)fill_publishes(a);  // a's stale hold must not release the wait on b
  EXPECT_EQ(publisher->blocking, 1u);
  (void)fill_publishes(b);
  EXPECT_EQ(publisher->blocking, 0u);
}

topic::retained_store<message_ptr> retained_topics(int count) {
  topic::retained_store<message_ptr> store;
  for (int i = 0; i < count; ++i) {
    const std::string name = "r/" + std::to_string(i);
    store.store(topic::parse_name(name).value(), make_message(name, "v", q1, true));
  }
  return store;
}

TEST(session_flow, retained_messages_owed_are_outside_the_queue_limits_and_go_first) {
  const auto options = flow_options(1);
  auto store = retained_topics(50);
  session s("sub", true, options);
  fake_link link;
  attach_fresh(s, link);
  enqueue_ok(s, make_message("live", "1"), q1);
  s.add_retained_walk(store.begin_walk(topic::parse_filter("r/+").value()), q1);
  EXPECT_EQ(s.retained_walks(), 1u);
  EXPECT_EQ(s.queued(), 1u);
  std::vector<std::string> topics;
  for (int round = 0; round < 10 && (s.has_sendable() || s.queued() > 0); ++round) {
    for (const auto& p : fill_publishes(s)) {
      topics.push_back(p.topic);
      EXPECT_TRUE(p.retain || p.topic == "live");
      EXPECT_TRUE(s.on_puback(p.packet_id));
    }
  }
  ASSERT_EQ(topics.size(), 51u);
  EXPECT_EQ(std::set<std::string>(topics.begin(), topics.end() - 1).size(), 50u);
  EXPECT_EQ(topics.back(), "live");
  EXPECT_EQ(s.retained_walks(), 0u);
}

TEST(session_flow, retained_messages_are_found_a_slice_at_a_time_as_the_writer_asks) {
  const auto options = flow_options(10);
  auto store = retained_topics(10000);
  session s("sub", true, options);
  fake_link link;
  attach_fresh(s, link);
  s.add_retained_walk(store.begin_walk(topic::parse_filter("#").value()), q0);
  std::set<std::string> topics;
  int writes = 0;
  while (s.has_sendable()) {
    std::string out;
    s.fill(out, 1024);  // a small write batch: a few packets per fill
    const auto packets = decode_publishes(out);
    ASSERT_FALSE(packets.empty());
    EXPECT_LE(s.retained_owed(), 64u);  // found a slice at a time, never the whole set
    for (const auto& p : packets) {
      EXPECT_TRUE(topics.insert(p.topic).second) << p.topic << " twice";
    }
    ++writes;
  }
  EXPECT_EQ(topics.size(), 10000u);
  EXPECT_GT(writes, 100);
}

TEST(session_flow, unsubscribing_stops_the_retained_messages_still_owed) {
  const auto options = flow_options(10);
  auto store = retained_topics(1000);
  session s("sub", true, options);
  fake_link link;
  attach_fresh(s, link);
  s.add_retained_walk(store.begin_walk(topic::parse_filter("r/#").value()), q0);
  std::string out;
  s.fill(out, 256);
  const auto first = decode_publishes(out).size();
  EXPECT_GT(first, 0u);
  s.cancel_retained_walk("r/#");
  std::size_t rest = 0;
  while (s.has_sendable())
    rest += fill_publishes(s).size();
  EXPECT_LE(first + rest, 64u);  // at most the slice already found
  EXPECT_EQ(s.retained_walks(), 0u);
}

TEST(session_flow, queue_entries_are_charged_to_the_budget_and_released) {
  memory_budget budget(1 << 20);
  auto options = flow_options(10);
  options.budget = &budget;
  {
    session s("sub", true, options);
    fake_link link;
    attach_fresh(s, link);
    enqueue_ok(s, make_message("t", "1"), q0);
    enqueue_ok(s, make_message("t", "2"), q0);
    EXPECT_GT(budget.used(), 0u);
    EXPECT_EQ(fill_publishes(s).size(), 2u);
    EXPECT_EQ(budget.used(), 0u);
    enqueue_ok(s, make_message("t", "3"), q1);
  }
  EXPECT_EQ(budget.used(), 0u);
}

TEST(session_flow, a_spent_budget_refuses_entries_and_counts_them) {
  memory_budget budget(10);
  auto options = flow_options(10);
  options.budget = &budget;
  session s("sub", true, options);
  fake_link link;
  attach_fresh(s, link);
  EXPECT_EQ(s.enqueue(make_message("t", "1"), q1, false, t0), result::dropped_budget);
  EXPECT_EQ(s.dropped(), 1u);
  EXPECT_EQ(s.queued(), 0u);
}

// --- offline sessions ------------------------------------------------------------------------

TEST(session, offline_session_drops_qos0_messages) {
  // Only QoS 1/2 messages are stored for a disconnected client [MQTT-3.1.2-5].
  const auto options = make_options();
  session s("c1", false, options);
  EXPECT_EQ(s.enqueue(make_message("t", "x"), q0, false, t0), result::dropped_offline);
  EXPECT_EQ(s.queued(), 0u);
  EXPECT_FALSE(s.has_sendable());
}

TEST(session, offline_session_queues_qos1_and_qos2_for_delivery_after_attach) {
  // [MQTT-3.1.2-5]
  const auto options = make_options();
  session s("c1", false, options);
  enqueue_ok(s, make_message("t", "1"), q1);
  enqueue_ok(s, make_message("t", "2"), q2);
  EXPECT_EQ(s.queued(), 2u);

  fake_link link;
  attach_fresh(s, link);  // nothing was in flight, so nothing is resent
  EXPECT_EQ(fill_publishes(s), (std::vector<codec::publish>{
                                   publish_packet("t", "1", q1, 1),
                                   publish_packet("t", "2", q2, 2),
                               }));
}

TEST(session, detached_session_drops_qos0_but_keeps_qos1) {
  const auto options = make_options();
  session s("c1", false, options);
  fake_link link;
  attach_fresh(s, link);
  s.detach();
  EXPECT_EQ(s.enqueue(make_message("t", "0"), q0, false, t0), result::dropped_offline);
  enqueue_ok(s, make_message("t", "1"), q1);
  EXPECT_EQ(s.queued(), 1u);
}

// --- queue bound and overflow policies -------------------------------------------------------

TEST(session, qos0_and_qos1_2_messages_are_bounded_separately) {
  const auto options = make_options(2, overflow_policy::drop_newest);
  session s("c1", true, options);
  fake_link link;
  attach_fresh(s, link);

  enqueue_ok(s, make_message("t", "a"), q0);
  enqueue_ok(s, make_message("t", "b"), q0);
  EXPECT_EQ(s.enqueue(make_message("t", "c"), q0, false, t0), result::dropped);
  // A full QoS 0 class leaves room for QoS 1/2, which share the other class.
  enqueue_ok(s, make_message("t", "d"), q1);
  enqueue_ok(s, make_message("t", "e"), q2);
  EXPECT_EQ(s.enqueue(make_message("t", "f"), q1, false, t0), result::dropped);
  EXPECT_EQ(s.enqueue(make_message("t", "g"), q2, false, t0), result::dropped);
  EXPECT_EQ(s.queued(), 4u);
  EXPECT_EQ(s.dropped(), 3u);
}

TEST(session, drop_newest_keeps_the_queued_messages_and_counts_the_drop) {
  const auto options = make_options(2, overflow_policy::drop_newest);
  session s("c1", false, options);
  enqueue_ok(s, make_message("t", "1"), q1);
  enqueue_ok(s, make_message("t", "2"), q1);
  EXPECT_EQ(s.enqueue(make_message("t", "3"), q1, false, t0), result::dropped);
  EXPECT_EQ(s.enqueue(make_message("t", "4"), q2, false, t0), result::dropped);
  EXPECT_EQ(s.dropped(), 2u);
  EXPECT_EQ(s.take_unreported_drops(), 2u);
  EXPECT_EQ(s.take_unreported_drops(), 0u);
  EXPECT_EQ(s.dropped(), 2u);  // the total is not reset

  fake_link link;
  attach_fresh(s, link);
  EXPECT_EQ(fill_publishes(s), (std::vector<codec::publish>{
                                   publish_packet("t", "1", q1, 1),
                                   publish_packet("t", "2", q1, 2),
                               }));
}

TEST(session, drop_oldest_evicts_the_oldest_queued_message_of_the_same_class) {
  const auto options = make_options(2, overflow_policy::drop_oldest);
  session s("c1", true, options);
  fake_link link;
  attach_fresh(s, link);

  enqueue_ok(s, make_message("t", "q1-a"), q1);
  enqueue_ok(s, make_message("t", "q0-a"), q0);
  enqueue_ok(s, make_message("t", "q1-b"), q1);
  enqueue_ok(s, make_message("t", "q0-b"), q0);
  enqueue_evicting(s, make_message("t", "q0-c"), q0);  // evicts q0-a, not q1-a
  EXPECT_EQ(s.dropped(), 1u);
  enqueue_evicting(s, make_message("t", "q1-c"), q2);  // evicts q1-a
  EXPECT_EQ(s.dropped(), 2u);
  EXPECT_EQ(s.queued(), 4u);

  EXPECT_EQ(fill_publishes(s), (std::vector<codec::publish>{
                                   publish_packet("t", "q1-b", q1, 1),
                                   publish_packet("t", "q0-b", q0),
                                   publish_packet("t", "q0-c", q0),
                                   publish_packet("t", "q1-c", q2, 2),
                               }));
}

TEST(session, drop_oldest_on_an_offline_session_keeps_the_newest_qos1_messages) {
  const auto options = make_options(2, overflow_policy::drop_oldest);
  session s("c1", false, options);
  enqueue_ok(s, make_message("t", "1"), q1);
  enqueue_ok(s, make_message("t", "2"), q1);
  enqueue_evicting(s, make_message("t", "3"), q1);
  enqueue_evicting(s, make_message("t", "4"), q1);
  EXPECT_EQ(s.queued(), 2u);
  EXPECT_EQ(s.dropped(), 2u);

  fake_link link;
  attach_fresh(s, link);
  EXPECT_EQ(fill_publishes(s), (std::vector<codec::publish>{
                                   publish_packet("t", "3", q1, 1),
                                   publish_packet("t", "4", q1, 2),
                               }));
}

TEST(session, disconnect_policy_asks_to_disconnect_an_online_subscriber) {
  const auto options = make_options(1, overflow_policy::disconnect);
  session s("c1", false, options);
  fake_link link;
  attach_fresh(s, link);
  enqueue_ok(s, make_message("t", "1"), q1);
  EXPECT_EQ(s.enqueue(make_message("t", "2"), q1, false, t0), result::disconnect);
  EXPECT_EQ(s.dropped(), 1u);
  EXPECT_EQ(s.queued(), 1u);  // the message that overflowed is not queued

  enqueue_ok(s, make_message("t", "q0"), q0);  // the QoS 0 class has its own room
  EXPECT_EQ(s.enqueue(make_message("t", "q0-2"), q0, false, t0), result::disconnect);
  EXPECT_EQ(s.dropped(), 2u);
}

TEST(session, disconnect_policy_drops_for_an_offline_session_and_keeps_its_queue) {
  const auto options = make_options(1, overflow_policy::disconnect);
  session s("c1", false, options);
  enqueue_ok(s, make_message("t", "1"), q1);
  EXPECT_EQ(s.enqueue(make_message("t", "2"), q1, false, t0), result::dropped);
  EXPECT_EQ(s.dropped(), 1u);
  EXPECT_EQ(s.queued(), 1u);
}

TEST(session, messages_in_flight_do_not_count_against_the_queue_bound) {
  const auto options = make_options(1, overflow_policy::drop_newest, 5);
  session s("c1", true, options);
  fake_link link;
  attach_fresh(s, link);
  enqueue_ok(s, make_message("t", "1"), q1);
  ASSERT_EQ(fill_publishes(s).size(), 1u);
  enqueue_ok(s, make_message("t", "2"), q1);
  EXPECT_EQ(s.queued(), 1u);
  EXPECT_EQ(s.inflight(), 1u);
  EXPECT_EQ(s.dropped(), 0u);
}

// --- in-flight window --------------------------------------------------------------------------

TEST(session, fill_stops_at_max_inflight_until_an_ack_opens_the_window) {
  const auto options = make_options(100, overflow_policy::drop_newest, 2);
  session s("c1", true, options);
  fake_link link;
  attach_fresh(s, link);
  for (const char* payload : {"1", "2", "3"})
    enqueue_ok(s, make_message("t", payload), q1);

  EXPECT_EQ(fill_publishes(s), (std::vector<codec::publish>{
                                   publish_packet("t", "1", q1, 1),
                                   publish_packet("t", "2", q1, 2),
                               }));
  EXPECT_EQ(s.inflight(), 2u);
  EXPECT_EQ(s.queued(), 1u);
  EXPECT_FALSE(s.has_sendable());
  EXPECT_TRUE(fill_publishes(s).empty());

  EXPECT_TRUE(s.on_puback(1));
  EXPECT_TRUE(s.has_sendable());
  EXPECT_EQ(fill_publishes(s), (std::vector<codec::publish>{publish_packet("t", "3", q1, 3)}));
}

TEST(session, qos0_behind_a_blocked_qos1_message_waits_so_order_is_kept) {
  // Messages of one topic keep their order [MQTT-4.6.0-6]: a QoS 0 message queued after a
  // QoS 1 message that waits for the window does not overtake it.
  const auto options = make_options(100, overflow_policy::drop_newest, 1);
  session s("c1", true, options);
  fake_link link;
  attach_fresh(s, link);
  enqueue_ok(s, make_message("t", "1"), q1);
  enqueue_ok(s, make_message("t", "2"), q1);
  enqueue_ok(s, make_message("t", "3"), q0);
  enqueue_ok(s, make_message("t", "4"), q1);

  EXPECT_EQ(fill_publishes(s), (std::vector<codec::publish>{publish_packet("t", "1", q1, 1)}));
  EXPECT_FALSE(s.has_sendable());  // "2" blocks the head, and "3" waits behind it
  EXPECT_EQ(s.queued(), 3u);

  ASSERT_TRUE(s.on_puback(1));
  // "2" takes the only slot; "3" may go (QoS 0 needs none); "4" waits again.
  EXPECT_EQ(fill_publishes(s), (std::vector<codec::publish>{
                                   publish_packet("t", "2", q1, 2),
                                   publish_packet("t", "3", q0),
                               }));
  EXPECT_EQ(s.queued(), 1u);

  ASSERT_TRUE(s.on_puback(2));
  EXPECT_EQ(fill_publishes(s), (std::vector<codec::publish>{publish_packet("t", "4", q1, 3)}));
}

TEST(session, qos0_at_the_head_is_sendable_while_the_window_is_full) {
  const auto options = make_options(100, overflow_policy::drop_newest, 1);
  session s("c1", true, options);
  fake_link link;
  attach_fresh(s, link);
  enqueue_ok(s, make_message("t", "1"), q1);
  ASSERT_EQ(fill_publishes(s).size(), 1u);
  enqueue_ok(s, make_message("t", "2"), q0);
  EXPECT_TRUE(s.has_sendable());
  EXPECT_EQ(fill_publishes(s), (std::vector<codec::publish>{publish_packet("t", "2", q0)}));
}

// --- acknowledgements ----------------------------------------------------------------------

TEST(session, puback_completes_a_qos1_delivery_once) {
  const auto options = make_options();
  session s("c1", true, options);
  fake_link link;
  attach_fresh(s, link);
  enqueue_ok(s, make_message("t", "1"), q1);
  ASSERT_EQ(fill_publishes(s).size(), 1u);
  EXPECT_TRUE(s.on_puback(1));
  EXPECT_EQ(s.inflight(), 0u);
  EXPECT_FALSE(s.on_puback(1));  // already acknowledged
}

TEST(session, pubrec_answers_with_pubrel_and_pubcomp_completes_a_qos2_delivery) {
  // [MQTT-4.3.3-1]: PUBREC is answered with a PUBREL carrying the same packet id
  // [MQTT-2.3.1-6]; the id is in use until PUBCOMP.
  const auto options = make_options();
  session s("c1", true, options);
  fake_link link;
  attach_fresh(s, link);
  enqueue_ok(s, make_message("t", "1"), q2);
  ASSERT_EQ(fill_publishes(s), (std::vector<codec::publish>{publish_packet("t", "1", q2, 1)}));

  std::string out;
  EXPECT_TRUE(s.on_pubrec(1, out));
  EXPECT_EQ(decode_all(out), (std::vector<codec::packet>{codec::pubrel{1}}));
  EXPECT_EQ(s.inflight(), 1u);

  EXPECT_TRUE(s.on_pubcomp(1));
  EXPECT_EQ(s.inflight(), 0u);
  EXPECT_FALSE(s.on_pubcomp(1));
}

TEST(session, acks_in_the_wrong_state_or_for_unknown_ids_are_ignored) {
  const auto options = make_options();
  session s("c1", true, options);
  fake_link link;
  attach_fresh(s, link);
  enqueue_ok(s, make_message("t", "qos1"), q1);  // id 1
  enqueue_ok(s, make_message("t", "qos2"), q2);  // id 2
  ASSERT_EQ(fill_publishes(s).size(), 2u);

  std::string out;
  EXPECT_FALSE(s.on_pubrec(1, out));  // QoS 1 expects PUBACK
  EXPECT_FALSE(s.on_pubcomp(1));
  EXPECT_FALSE(s.on_puback(2));   // QoS 2 expects PUBREC
  EXPECT_FALSE(s.on_pubcomp(2));  // ... before PUBCOMP
  EXPECT_FALSE(s.on_puback(99));
  EXPECT_FALSE(s.on_pubrec(99, out));
  EXPECT_FALSE(s.on_pubcomp(99));
  EXPECT_TRUE(out.empty());  // no PUBREL for an ignored PUBREC
  EXPECT_EQ(s.inflight(), 2u);

  ASSERT_TRUE(s.on_pubrec(2, out));
  EXPECT_FALSE(s.on_puback(2));  // after PUBREC only PUBCOMP completes it
  EXPECT_EQ(s.inflight(), 2u);

  // The ignored acks changed nothing: the right ones still complete both deliveries.
  EXPECT_TRUE(s.on_puback(1));
  EXPECT_TRUE(s.on_pubcomp(2));
  EXPECT_EQ(s.inflight(), 0u);
}

// --- packet identifiers ------------------------------------------------------------------------

TEST(session, packet_ids_wrap_from_65535_to_1_and_skip_ids_still_in_flight) {
  // Nonzero [MQTT-2.3.1-1] and not in use [MQTT-2.3.1-2][MQTT-2.3.1-4].
  const auto options = make_options(100, overflow_policy::drop_newest, 3);
  session s("c1", true, options);
  fake_link link;
  attach_fresh(s, link);
  const auto msg = make_message("t", "x");

  const auto send_one = [&](qos_level qos) -> std::uint16_t {
    enqueue_ok(s, msg, qos);
    const auto sent = fill_publishes(s);
    if (sent.size() != 1u) {
      ADD_FAILURE() << "expected one PUBLISH, got " << sent.size();
      return 0;
    }
    return sent.front().packet_id;
  };

  // Ids 1 and 2 stay in flight for the whole test.
  ASSERT_EQ(send_one(q1), 1);
  ASSERT_EQ(send_one(q2), 2);
  std::uint32_t expected = 3;
  for (; expected <= 65535; ++expected) {
    const std::uint16_t id = send_one(q1);
    ASSERT_EQ(id, expected);
    ASSERT_TRUE(s.on_puback(id));
  }
  // After 65535 comes 1, which is in flight, then 2, also in flight: the next free id is 3.
  EXPECT_EQ(send_one(q1), 3);
  EXPECT_EQ(s.inflight(), 3u);
  ASSERT_TRUE(s.on_puback(1));
  ASSERT_TRUE(s.on_puback(3));
  EXPECT_EQ(send_one(q1), 4);
}

TEST(session, packet_ids_are_never_zero_over_a_full_cycle) {
  const auto options = make_options(100, overflow_policy::drop_newest, 1);
  session s("c1", true, options);
  fake_link link;
  attach_fresh(s, link);
  const auto msg = make_message("t", "x");
  std::set<std::uint16_t> seen;
  for (int i = 0; i < 65536; ++i) {
    enqueue_ok(s, msg, q1);
    const auto sent = fill_publishes(s);
    ASSERT_EQ(sent.size(), 1u);
    ASSERT_NE(sent.front().packet_id, 0);
    seen.insert(sent.front().packet_id);
    ASSERT_TRUE(s.on_puback(sent.front().packet_id));
  }
  EXPECT_EQ(seen.size(), 65535u);  // every nonzero id, and the cycle starts over at 1
}

// --- redelivery on attach ------------------------------------------------------------------------

TEST(session, attach_resends_unacknowledged_publishes_with_dup_and_pubrels_in_send_order) {
  // [MQTT-4.4.0-1]: on reconnect with CleanSession 0, unacknowledged PUBLISH packets are
  // resent with DUP 1 [MQTT-3.3.1-1] and their original ids, PUBRELs likewise, in the order
  // of the original sends [MQTT-4.6.0-1].
  const auto options = make_options();
  session s("c1", false, options);
  fake_link first;
  attach_fresh(s, first);
  enqueue_ok(s, make_message("t", "A"), q1, /*retain=*/true);  // id 1
  enqueue_ok(s, make_message("t", "B"), q2);                   // id 2
  enqueue_ok(s, make_message("t", "C"), q1);                   // id 3, acknowledged below
  enqueue_ok(s, make_message("t", "D"), q2);                   // id 4, PUBREC received below
  enqueue_ok(s, make_message("t", "E"), q2);                   // id 5
  enqueue_ok(s, make_message("t", "F"), q0);                   // QoS 0: not kept in flight
  ASSERT_EQ(fill_publishes(s).size(), 6u);
  ASSERT_TRUE(s.on_puback(3));
  std::string pubrel;
  ASSERT_TRUE(s.on_pubrec(4, pubrel));
  enqueue_ok(s, make_message("t", "G"), q1);  // queued, never sent
  s.detach();

  fake_link second;
  std::string resend;
  s.attach(second, resend);
  EXPECT_TRUE(s.online());
  EXPECT_EQ(decode_all(resend), (std::vector<codec::packet>{
                                    redelivered(publish_packet("t", "A", q1, 1, true)),
                                    redelivered(publish_packet("t", "B", q2, 2)),
                                    codec::pubrel{4},
                                    redelivered(publish_packet("t", "E", q2, 5)),
                                }));

  // A message that was only queued goes out as a first delivery.
  EXPECT_EQ(fill_publishes(s), (std::vector<codec::publish>{publish_packet("t", "G", q1, 6)}));

  // The redelivered messages are acknowledged with their original ids.
  std::string out;
  EXPECT_TRUE(s.on_puback(1));
  EXPECT_TRUE(s.on_pubrec(2, out));
  EXPECT_TRUE(s.on_pubcomp(2));
  EXPECT_TRUE(s.on_pubcomp(4));
  EXPECT_TRUE(s.on_pubrec(5, out));
  EXPECT_TRUE(s.on_pubcomp(5));
  EXPECT_TRUE(s.on_puback(6));
  EXPECT_EQ(s.inflight(), 0u);
}

TEST(session, attach_resends_nothing_once_everything_is_acknowledged) {
  const auto options = make_options();
  session s("c1", false, options);
  fake_link first;
  attach_fresh(s, first);
  enqueue_ok(s, make_message("t", "A"), q1);
  ASSERT_EQ(fill_publishes(s).size(), 1u);
  ASSERT_TRUE(s.on_puback(1));
  s.detach();

  fake_link second;
  attach_fresh(s, second);
}

// --- incoming QoS 2 ------------------------------------------------------------------------------

TEST(session, incoming_qos2_is_delivered_once_until_pubrel_releases_its_id) {
  // [MQTT-4.3.3-2]: a retransmitted PUBLISH with the same id before PUBREL is not a new
  // message.
  const auto options = make_options();
  session s("c1", false, options);
  EXPECT_TRUE(s.receive_qos2(7));
  EXPECT_FALSE(s.receive_qos2(7));
  EXPECT_TRUE(s.receive_qos2(8));  // ids are tracked one by one
  s.release_qos2(7);
  EXPECT_TRUE(s.receive_qos2(7));  // after PUBREL the id is a new message again
  EXPECT_FALSE(s.receive_qos2(8));
}

TEST(session, release_of_an_unknown_qos2_id_changes_nothing) {
  const auto options = make_options();
  session s("c1", false, options);
  ASSERT_TRUE(s.receive_qos2(1));
  s.release_qos2(2);
  EXPECT_FALSE(s.receive_qos2(1));
  EXPECT_TRUE(s.receive_qos2(2));
}

TEST(session, incoming_qos2_state_survives_a_reattach) {
  // QoS 2 messages received but not completely acknowledged are session state (section
  // 3.1.2.4), which a resumed session continues from [MQTT-3.1.2-4].
  const auto options = make_options();
  session s("c1", false, options);
  fake_link first;
  attach_fresh(s, first);
  ASSERT_TRUE(s.receive_qos2(3));
  s.detach();
  fake_link second;
  attach_fresh(s, second);
  EXPECT_FALSE(s.receive_qos2(3));
}

}  // namespace
}  // namespace ebus::mqtt::broker
