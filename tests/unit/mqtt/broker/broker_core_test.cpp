// The broker core without sockets: CONNECT handling, session lifetime, routing, retained
// messages, the EventBus hooks and the statistics. Connections are fake_links; what a session
// would write is decoded back into packets.

#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include "broker_test_support.hpp"
#include "common/log.hpp"
#include "ebus_test/manual_clock.hpp"
#include "mqtt/broker/broker.hpp"

namespace ebus::mqtt::broker {
namespace {

using codec::connect_return_code;
using codec::protocol_level;
using codec::qos_level;
using codec::suback_return_code;
using test::decode_all;
using test::fake_link;
using test::fill_publishes;
using test::inbound;
using test::publish_packet;
using test::redelivered;

constexpr auto q0 = qos_level::at_most_once;
constexpr auto q1 = qos_level::at_least_once;
constexpr auto q2 = qos_level::exactly_once;

broker_options make_options(std::size_t queue_size = 100,
                            overflow_policy overflow = overflow_policy::drop_newest) {
  broker_options o;
  o.session_queue_size = queue_size;
  o.overflow = overflow;
  // Slow at once: these tests look at the overflow policies; flow control has its own below.
  o.slow_subscriber_timeout = std::chrono::milliseconds(0);
  return o;
}

/// A broker on a manual clock.
struct fixture {
  explicit fixture(broker_options o = make_options()) : core(std::move(o), clk) {}
  ebus::test::manual_clock clk;
  broker core;
};

/// One client connection as the broker sees it. Not movable: the broker keeps `link`'s address.
struct client {
  client() = default;
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  fake_link link;
  session* s = nullptr;
  codec::connack ack;
  std::string id;      ///< the client id in use
  std::string resend;  ///< what connect() asked to write after the CONNACK
};

codec::connect connect_packet(std::string id, bool clean,
                              protocol_level level = protocol_level::v3_1_1) {
  codec::connect c;
  c.level = level;
  c.clean_session = clean;
  c.client_id = std::move(id);
  return c;
}

/// Sends CONNECT for `c` and records the outcome in it; returns the CONNACK.
codec::connack connect(broker& b, client& c, std::string id, bool clean,
                       protocol_level level = protocol_level::v3_1_1) {
  c.resend.clear();
  auto r = b.connect(connect_packet(std::move(id), clean, level), c.link, c.resend);
  c.s = r.s;
  c.ack = r.ack;
  c.id = r.s != nullptr ? std::string(r.s->client_id()) : std::string();
  return r.ack;
}

/// Connects and checks that the broker accepted.
void connect_ok(broker& b, client& c, std::string id, bool clean) {
  const auto ack = connect(b, c, std::move(id), clean);
  ASSERT_EQ(ack.return_code, connect_return_code::accepted);
  ASSERT_NE(c.s, nullptr);
}

/// The connection of `c` ended.
void disconnect(broker& b, client& c) {
  ASSERT_NE(c.s, nullptr);
  b.disconnect(*c.s, c.link);
}

suback_return_code subscribe(broker& b, client& c, std::string filter, qos_level qos) {
  const auto codes = b.subscribe(*c.s, std::vector<codec::subscription>{{std::move(filter), qos}});
  EXPECT_EQ(codes.size(), 1u);
  return codes.empty() ? suback_return_code::failure : codes.front();
}

broker::publish_result publish_in(broker& b, inbound_message m,
                                  const std::shared_ptr<flow_waiter>& from = {},
                                  const session* self = nullptr) {
  return b.publish(m, from, self);
}

void publish(broker& b, std::string topic, std::string payload, qos_level qos = q0,
             bool retain = false) {
  publish_in(b, inbound(std::move(topic), std::move(payload), qos, retain));
}

/// What `c` would be sent now.
std::vector<codec::publish> received(client& c) {
  return fill_publishes(*c.s);
}

// --- CONNECT: client identifiers -----------------------------------------------------------------

TEST(broker, connect_with_a_client_id_is_accepted_and_linked) {
  fixture f;
  client c;
  const auto ack = connect(f.core, c, "sensor-1", true);
  EXPECT_EQ(ack, (codec::connack{.session_present = false,
                                 .return_code = connect_return_code::accepted}));
  ASSERT_NE(c.s, nullptr);
  EXPECT_EQ(c.id, "sensor-1");
  EXPECT_EQ(c.s->client_id(), "sensor-1");
  EXPECT_TRUE(c.s->online());
  EXPECT_TRUE(f.core.is_linked(c.s, &c.link));
  EXPECT_EQ(f.core.find_session("sensor-1"), c.s);
  EXPECT_EQ(f.core.session_count(), 1u);
  EXPECT_TRUE(c.resend.empty());
  EXPECT_EQ(f.core.stats().connections_accepted, 1u);
  EXPECT_EQ(f.core.stats().connections_refused, 0u);
}

TEST(broker, zero_length_client_id_with_clean_session_0_is_rejected) {
  // [MQTT-3.1.3-8]: CONNACK 0x02 (identifier rejected).
  fixture f;
  client c;
  const auto ack = connect(f.core, c, "", false);
  EXPECT_EQ(ack.return_code, connect_return_code::identifier_rejected);
  EXPECT_FALSE(ack.session_present);  // [MQTT-3.2.2-4]
  EXPECT_EQ(c.s, nullptr);
  EXPECT_EQ(f.core.session_count(), 0u);
  EXPECT_EQ(f.core.stats().connections_refused, 1u);
  EXPECT_EQ(f.core.stats().connections_accepted, 0u);
}

TEST(broker, zero_length_client_id_on_mqtt_3_1_is_rejected) {
  // MQTT 3.1 requires a client id of 1 to 23 characters; only 3.1.1 allows an empty one.
  fixture f;
  client c;
  const auto ack = connect(f.core, c, "", true, protocol_level::v3_1);
  EXPECT_EQ(ack.return_code, connect_return_code::identifier_rejected);
  EXPECT_EQ(c.s, nullptr);
  EXPECT_EQ(f.core.session_count(), 0u);
  EXPECT_EQ(f.core.stats().connections_refused, 1u);
}

TEST(broker, mqtt_3_1_client_with_a_client_id_is_accepted) {
  fixture f;
  client c;
  const auto ack = connect(f.core, c, "legacy", true, protocol_level::v3_1);
  EXPECT_EQ(ack.return_code, connect_return_code::accepted);
  EXPECT_NE(c.s, nullptr);
}

TEST(broker, zero_length_client_id_with_clean_session_gets_a_unique_assigned_id) {
  // [MQTT-3.1.3-6]: the server assigns a unique id and proceeds as if the client sent it.
  fixture f;
  client a;
  client b;
  connect_ok(f.core, a, "", true);
  connect_ok(f.core, b, "", true);
  EXPECT_FALSE(a.id.empty());
  EXPECT_FALSE(b.id.empty());
  EXPECT_NE(a.id, b.id);
  EXPECT_EQ(f.core.find_session(a.id), a.s);
  EXPECT_EQ(f.core.find_session(b.id), b.s);
  EXPECT_EQ(f.core.session_count(), 2u);
  EXPECT_TRUE(a.link.closes.empty());  // the second client did not take over the first
  EXPECT_FALSE(a.ack.session_present);
}

TEST(broker, assigned_client_ids_never_take_over_an_existing_session) {
  // Whatever the naming scheme, an assigned id must be unique [MQTT-3.1.3-6]: connect clients
  // under ids that look like assigned ones first, then clients without an id.
  fixture f;
  std::vector<std::unique_ptr<client>> named;
  for (int i = 0; i < 5; ++i) {
    named.push_back(std::make_unique<client>());
    connect_ok(f.core, *named.back(), "auto-" + std::to_string(i), false);
  }
  std::vector<std::unique_ptr<client>> anonymous;
  std::set<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    anonymous.push_back(std::make_unique<client>());
    connect_ok(f.core, *anonymous.back(), "", true);
    ids.insert(anonymous.back()->id);
  }
  EXPECT_EQ(ids.size(), 10u);
  for (const auto& c : named) {
    EXPECT_TRUE(c->link.closes.empty()) << c->id;
    EXPECT_TRUE(f.core.is_linked(c->s, &c->link)) << c->id;
    EXPECT_EQ(ids.count(c->id), 0u) << c->id;
  }
  EXPECT_EQ(f.core.session_count(), 15u);
}

// --- CONNECT: takeover and session state ---------------------------------------------------------

TEST(broker, second_connect_with_the_same_id_closes_the_old_link) {
  // [MQTT-3.1.4-2]
  fixture f;
  client first;
  client second;
  connect_ok(f.core, first, "dev", true);
  connect_ok(f.core, second, "dev", true);

  EXPECT_EQ(first.link.closes.size(), 1u);
  EXPECT_TRUE(second.link.closes.empty());
  EXPECT_FALSE(f.core.is_linked(f.core.find_session("dev"), &first.link));
  EXPECT_TRUE(f.core.is_linked(second.s, &second.link));
  EXPECT_FALSE(second.ack.session_present);  // clean session [MQTT-3.2.2-1]
  EXPECT_EQ(f.core.session_count(), 1u);
  EXPECT_EQ(f.core.stats().connections_accepted, 2u);
}

TEST(broker, takeover_of_a_persistent_session_reports_session_present_and_keeps_it) {
  // [MQTT-3.1.4-2][MQTT-3.1.2-4][MQTT-3.2.2-2]
  fixture f;
  client first;
  client second;
  connect_ok(f.core, first, "dev", false);
  ASSERT_EQ(subscribe(f.core, first, "cmd/#", q1), suback_return_code::success_maximum_qos_1);
  session* const old_session = first.s;

  connect_ok(f.core, second, "dev", false);
  EXPECT_EQ(first.link.closes.size(), 1u);
  EXPECT_TRUE(second.ack.session_present);
  EXPECT_EQ(second.s, old_session);
  EXPECT_TRUE(f.core.is_linked(second.s, &second.link));
  EXPECT_FALSE(f.core.is_linked(second.s, &first.link));

  publish(f.core, "cmd/x", "go", q1);
  EXPECT_EQ(received(second), (std::vector<codec::publish>{publish_packet("cmd/x", "go", q1, 1)}));
  EXPECT_EQ(first.link.wakes, 0);  // the old connection gets nothing more
}

TEST(broker, disconnect_reported_by_a_taken_over_connection_is_ignored) {
  fixture f;
  client first;
  client second;
  connect_ok(f.core, first, "dev", false);
  ASSERT_EQ(subscribe(f.core, first, "cmd", q0), suback_return_code::success_maximum_qos_0);
  connect_ok(f.core, second, "dev", false);

  f.core.disconnect(*second.s, first.link);  // the old connection finishes late
  EXPECT_TRUE(second.s->online());
  EXPECT_TRUE(f.core.is_linked(second.s, &second.link));
  publish(f.core, "cmd", "still here");
  EXPECT_EQ(received(second),
            (std::vector<codec::publish>{publish_packet("cmd", "still here", q0)}));
}

TEST(broker, clean_takeover_of_a_persistent_session_starts_a_new_session) {
  // [MQTT-3.1.2-6]
  fixture f;
  client first;
  client second;
  connect_ok(f.core, first, "dev", false);
  ASSERT_EQ(subscribe(f.core, first, "cmd", q1), suback_return_code::success_maximum_qos_1);
  connect_ok(f.core, second, "dev", true);
  EXPECT_EQ(first.link.closes.size(), 1u);
  EXPECT_FALSE(second.ack.session_present);
  EXPECT_TRUE(second.s->clean());
  EXPECT_TRUE(second.s->subscriptions().empty());
  publish(f.core, "cmd", "x", q1);
  EXPECT_EQ(f.core.stats().deliveries_queued, 0u);
}

TEST(broker, reconnect_with_clean_session_0_resumes_the_session_with_session_present) {
  // [MQTT-3.1.2-4][MQTT-3.2.2-2]
  fixture f;
  client first;
  connect_ok(f.core, first, "dev", false);
  EXPECT_FALSE(first.ack.session_present);  // no stored session yet [MQTT-3.2.2-3]
  ASSERT_EQ(subscribe(f.core, first, "cmd/+", q2), suback_return_code::success_maximum_qos_2);
  disconnect(f.core, first);
  EXPECT_EQ(f.core.session_count(), 1u);
  EXPECT_FALSE(first.s->online());

  client second;
  connect_ok(f.core, second, "dev", false);
  EXPECT_TRUE(second.ack.session_present);
  EXPECT_EQ(second.s, first.s);
  EXPECT_EQ(second.s->subscriptions().size(), 1u);
  EXPECT_TRUE(first.link.closes.empty());  // it had already gone: no takeover
}

TEST(broker, reconnect_with_clean_session_1_discards_the_persistent_session) {
  // [MQTT-3.1.2-6][MQTT-3.2.2-1]
  fixture f;
  client first;
  connect_ok(f.core, first, "dev", false);
  ASSERT_EQ(subscribe(f.core, first, "cmd", q1), suback_return_code::success_maximum_qos_1);
  disconnect(f.core, first);
  publish(f.core, "cmd", "queued while offline", q1);
  ASSERT_EQ(f.core.stats().deliveries_queued, 1u);

  client second;
  connect_ok(f.core, second, "dev", true);
  EXPECT_FALSE(second.ack.session_present);
  EXPECT_TRUE(second.s->subscriptions().empty());
  EXPECT_EQ(second.s->queued(), 0u);  // the queued message went with the old session
  EXPECT_TRUE(second.resend.empty());
  publish(f.core, "cmd", "after", q1);
  EXPECT_EQ(f.core.stats().deliveries_queued, 1u);  // nobody is subscribed any more
  EXPECT_TRUE(received(second).empty());

  disconnect(f.core, second);
  EXPECT_EQ(f.core.session_count(), 0u);
}

TEST(broker, persistent_session_keeps_qos1_and_qos2_but_not_qos0_while_offline) {
  // [MQTT-3.1.2-5]
  fixture f;
  client first;
  connect_ok(f.core, first, "dev", false);
  ASSERT_EQ(subscribe(f.core, first, "cmd", q2), suback_return_code::success_maximum_qos_2);
  disconnect(f.core, first);

  publish(f.core, "cmd", "zero", q0);
  publish(f.core, "cmd", "one", q1);
  publish(f.core, "cmd", "two", q2);

  client second;
  connect_ok(f.core, second, "dev", false);
  EXPECT_EQ(received(second), (std::vector<codec::publish>{
                                  publish_packet("cmd", "one", q1, 1),
                                  publish_packet("cmd", "two", q2, 2),
                              }));
}

TEST(broker, reconnect_resends_unacknowledged_messages_with_dup) {
  // [MQTT-4.4.0-1]: what connect() returns in `resend` is written right after the CONNACK.
  fixture f;
  client first;
  connect_ok(f.core, first, "dev", false);
  ASSERT_EQ(subscribe(f.core, first, "cmd", q1), suback_return_code::success_maximum_qos_1);
  publish(f.core, "cmd", "unacked", q1);
  ASSERT_EQ(received(first).size(), 1u);  // written, but the PUBACK never comes
  disconnect(f.core, first);

  client second;
  connect_ok(f.core, second, "dev", false);
  EXPECT_EQ(decode_all(second.resend),
            (std::vector<codec::packet>{redelivered(publish_packet("cmd", "unacked", q1, 1))}));
}

// --- session end -------------------------------------------------------------------------------

TEST(broker, disconnect_of_a_clean_session_removes_it_and_its_subscriptions) {
  // [MQTT-3.1.2-6]: the session lasts as long as the network connection.
  fixture f;
  client c;
  connect_ok(f.core, c, "dev", true);
  ASSERT_EQ(subscribe(f.core, c, "cmd/#", q1), suback_return_code::success_maximum_qos_1);
  disconnect(f.core, c);
  EXPECT_EQ(f.core.session_count(), 0u);
  EXPECT_EQ(f.core.find_session("dev"), nullptr);

  const int wakes = c.link.wakes;
  publish(f.core, "cmd/x", "nobody", q1);
  EXPECT_EQ(f.core.stats().deliveries_queued, 0u);
  EXPECT_EQ(f.core.stats().deliveries_dropped, 0u);
  EXPECT_EQ(c.link.wakes, wakes);
}

TEST(broker, disconnect_of_a_persistent_session_keeps_its_subscriptions) {
  fixture f;
  client c;
  connect_ok(f.core, c, "dev", false);
  ASSERT_EQ(subscribe(f.core, c, "cmd/#", q1), suback_return_code::success_maximum_qos_1);
  disconnect(f.core, c);
  EXPECT_EQ(f.core.session_count(), 1u);
  EXPECT_EQ(f.core.find_session("dev"), c.s);

  publish(f.core, "cmd/x", "kept", q1);
  EXPECT_EQ(f.core.stats().deliveries_queued, 1u);
  EXPECT_EQ(c.s->queued(), 1u);
  EXPECT_EQ(c.link.wakes, 0);  // no connection to wake
}

// --- routing -----------------------------------------------------------------------------------

TEST(broker, overlapping_subscriptions_deliver_one_copy_at_the_highest_granted_qos) {
  // [MQTT-3.3.5-1]: delivered respecting the maximum QoS of all matching subscriptions; this
  // broker sends a single copy.
  fixture f;
  client c;
  connect_ok(f.core, c, "dev", true);
  ASSERT_EQ(subscribe(f.core, c, "a/#", q0), suback_return_code::success_maximum_qos_0);
  ASSERT_EQ(subscribe(f.core, c, "a/+", q2), suback_return_code::success_maximum_qos_2);
  ASSERT_EQ(subscribe(f.core, c, "a/b", q1), suback_return_code::success_maximum_qos_1);

  publish(f.core, "a/b", "x", q2);
  EXPECT_EQ(received(c), (std::vector<codec::publish>{publish_packet("a/b", "x", q2, 1)}));
  EXPECT_EQ(f.core.stats().deliveries_queued, 1u);

  publish(f.core, "a/b/c", "y", q2);  // only "a/#" matches
  EXPECT_EQ(received(c), (std::vector<codec::publish>{publish_packet("a/b/c", "y", q0)}));
}

TEST(broker, delivery_qos_is_the_minimum_of_message_and_granted_qos) {
  // [MQTT-3.8.4-6]
  fixture f;
  client c;
  connect_ok(f.core, c, "dev", true);
  ASSERT_EQ(subscribe(f.core, c, "t", q1), suback_return_code::success_maximum_qos_1);
  publish(f.core, "t", "2", q2);
  publish(f.core, "t", "0", q0);
  publish(f.core, "t", "1", q1);
  EXPECT_EQ(received(c), (std::vector<codec::publish>{
                             publish_packet("t", "2", q1, 1),
                             publish_packet("t", "0", q0),
                             publish_packet("t", "1", q1, 2),
                         }));
}

TEST(broker, every_matching_client_gets_its_own_copy) {
  fixture f;
  client a;
  client b;
  client other;
  connect_ok(f.core, a, "a", true);
  connect_ok(f.core, b, "b", true);
  connect_ok(f.core, other, "other", true);
  ASSERT_EQ(subscribe(f.core, a, "t/#", q1), suback_return_code::success_maximum_qos_1);
  ASSERT_EQ(subscribe(f.core, b, "t/x", q0), suback_return_code::success_maximum_qos_0);
  ASSERT_EQ(subscribe(f.core, other, "u/#", q1), suback_return_code::success_maximum_qos_1);

  publish(f.core, "t/x", "m", q1);
  EXPECT_EQ(received(a), (std::vector<codec::publish>{publish_packet("t/x", "m", q1, 1)}));
  EXPECT_EQ(received(b), (std::vector<codec::publish>{publish_packet("t/x", "m", q0)}));
  EXPECT_TRUE(received(other).empty());
  EXPECT_EQ(f.core.stats().deliveries_queued, 2u);
  EXPECT_EQ(f.core.stats().messages_received, 1u);
}

TEST(broker, wildcard_at_the_first_level_does_not_deliver_dollar_topics) {
  // [MQTT-4.7.2-1]
  fixture f;
  client c;
  connect_ok(f.core, c, "dev", true);
  ASSERT_EQ(subscribe(f.core, c, "#", q0), suback_return_code::success_maximum_qos_0);
  ASSERT_EQ(subscribe(f.core, c, "$SYS/+", q0), suback_return_code::success_maximum_qos_0);
  publish(f.core, "$hw/events", "hidden");
  publish(f.core, "$SYS/uptime", "1");
  EXPECT_EQ(received(c), (std::vector<codec::publish>{publish_packet("$SYS/uptime", "1", q0)}));
}

TEST(broker, unsubscribe_stops_delivery_for_that_filter_only) {
  // [MQTT-3.10.4-1][MQTT-3.10.4-2]
  fixture f;
  client c;
  connect_ok(f.core, c, "dev", true);
  ASSERT_EQ(subscribe(f.core, c, "a/+", q0), suback_return_code::success_maximum_qos_0);
  ASSERT_EQ(subscribe(f.core, c, "b/+", q0), suback_return_code::success_maximum_qos_0);
  f.core.unsubscribe(*c.s, {"a/+", "not/subscribed", "bad/#/filter"});
  EXPECT_EQ(c.s->subscriptions().size(), 1u);
  publish(f.core, "a/x", "gone");
  publish(f.core, "b/x", "kept");
  EXPECT_EQ(received(c), (std::vector<codec::publish>{publish_packet("b/x", "kept", q0)}));
}

TEST(broker, subscribe_returns_one_code_per_filter_and_0x80_for_an_invalid_one) {
  // [MQTT-3.8.4-4][MQTT-3.8.4-5][MQTT-3.9.3-1]: one code per filter, in order; an invalid
  // filter fails alone, the others are granted.
  fixture f;
  client c;
  connect_ok(f.core, c, "dev", true);
  const auto codes =
      f.core.subscribe(*c.s, {{"ok/#", q2}, {"bad/#/x", q1}, {"a+", q0}, {"ok/+", q1}});
  EXPECT_EQ(codes, (std::vector<suback_return_code>{
                       suback_return_code::success_maximum_qos_2,
                       suback_return_code::failure,
                       suback_return_code::failure,
                       suback_return_code::success_maximum_qos_1,
                   }));
  EXPECT_EQ(c.s->subscriptions().size(), 2u);
  EXPECT_EQ(c.s->subscriptions().count("bad/#/x"), 0u);
}

TEST(broker, resubscribing_replaces_the_granted_qos) {
  // [MQTT-3.8.4-3]
  fixture f;
  client c;
  connect_ok(f.core, c, "dev", true);
  ASSERT_EQ(subscribe(f.core, c, "t", q2), suback_return_code::success_maximum_qos_2);
  ASSERT_EQ(subscribe(f.core, c, "t", q0), suback_return_code::success_maximum_qos_0);
  EXPECT_EQ(c.s->subscriptions().size(), 1u);
  publish(f.core, "t", "x", q2);
  EXPECT_EQ(received(c), (std::vector<codec::publish>{publish_packet("t", "x", q0)}));
}

// --- retained messages -----------------------------------------------------------------------

TEST(broker, retained_message_is_sent_on_subscribe_with_retain_set) {
  // [MQTT-3.3.1-5][MQTT-3.3.1-6][MQTT-3.3.1-8], at min(stored QoS, granted QoS).
  fixture f;
  publish(f.core, "state/door", "open", q2, true);
  publish(f.core, "state/window", "closed", q1, true);
  EXPECT_EQ(f.core.retained_count(), 2u);

  client c;
  connect_ok(f.core, c, "dev", true);
  ASSERT_EQ(subscribe(f.core, c, "state/door", q1), suback_return_code::success_maximum_qos_1);
  EXPECT_EQ(received(c),
            (std::vector<codec::publish>{publish_packet("state/door", "open", q1, 1, true)}));
  EXPECT_EQ(f.core.stats().retained_walks, 1u);
  EXPECT_EQ(f.core.stats().deliveries_queued, 0u);  // live deliveries only
}

TEST(broker, retained_messages_are_found_by_wildcard_filters) {
  fixture f;
  publish(f.core, "state/door", "open", q0, true);
  publish(f.core, "state/window", "closed", q0, true);
  publish(f.core, "other/x", "no", q0, true);
  client c;
  connect_ok(f.core, c, "dev", true);
  ASSERT_EQ(subscribe(f.core, c, "state/+", q0), suback_return_code::success_maximum_qos_0);
  auto got = received(c);
  ASSERT_EQ(got.size(), 2u);
  std::set<std::string> topics;
  for (const auto& p : got) {
    EXPECT_TRUE(p.retain) << p.topic;
    topics.insert(p.topic);
  }
  EXPECT_EQ(topics, (std::set<std::string>{"state/door", "state/window"}));
}

TEST(broker, live_forward_of_a_retained_publish_has_retain_0) {
  // [MQTT-3.3.1-9]
  fixture f;
  client c;
  connect_ok(f.core, c, "dev", true);
  ASSERT_EQ(subscribe(f.core, c, "state/#", q1), suback_return_code::success_maximum_qos_1);
  publish(f.core, "state/door", "open", q1, true);
  EXPECT_EQ(received(c),
            (std::vector<codec::publish>{publish_packet("state/door", "open", q1, 1, false)}));
  EXPECT_EQ(f.core.retained_count(), 1u);
}

TEST(broker, new_retained_message_replaces_the_previous_one) {
  // [MQTT-3.3.1-5][MQTT-3.3.1-7]
  fixture f;
  publish(f.core, "state/door", "open", q1, true);
  publish(f.core, "state/door", "closed", q0, true);
  EXPECT_EQ(f.core.retained_count(), 1u);
  client c;
  connect_ok(f.core, c, "dev", true);
  ASSERT_EQ(subscribe(f.core, c, "state/door", q2), suback_return_code::success_maximum_qos_2);
  EXPECT_EQ(received(c),
            (std::vector<codec::publish>{publish_packet("state/door", "closed", q0, 0, true)}));
}

TEST(broker, non_retained_publish_leaves_the_retained_message_alone) {
  // [MQTT-3.3.1-12]
  fixture f;
  publish(f.core, "state/door", "open", q0, true);
  publish(f.core, "state/door", "live", q0, false);
  publish(f.core, "state/door", "", q0, false);
  client c;
  connect_ok(f.core, c, "dev", true);
  ASSERT_EQ(subscribe(f.core, c, "state/door", q0), suback_return_code::success_maximum_qos_0);
  EXPECT_EQ(received(c),
            (std::vector<codec::publish>{publish_packet("state/door", "open", q0, 0, true)}));
}

TEST(broker, retained_publish_with_an_empty_payload_deletes_and_is_still_forwarded) {
  // [MQTT-3.3.1-10][MQTT-3.3.1-11]
  fixture f;
  client live;
  connect_ok(f.core, live, "live", true);
  ASSERT_EQ(subscribe(f.core, live, "state/door", q0), suback_return_code::success_maximum_qos_0);
  publish(f.core, "state/door", "open", q0, true);
  publish(f.core, "state/door", "", q0, true);
  EXPECT_EQ(f.core.retained_count(), 0u);
  EXPECT_EQ(received(live), (std::vector<codec::publish>{
                                publish_packet("state/door", "open", q0),
                                publish_packet("state/door", "", q0),
                            }));

  client late;
  connect_ok(f.core, late, "late", true);
  ASSERT_EQ(subscribe(f.core, late, "state/#", q0), suback_return_code::success_maximum_qos_0);
  EXPECT_TRUE(received(late).empty());
}

TEST(broker, resubscribing_sends_the_retained_message_again) {
  // [MQTT-3.8.4-3]: "Any existing retained messages matching the Topic Filter are re-sent".
  fixture f;
  publish(f.core, "state/door", "open", q0, true);
  client c;
  connect_ok(f.core, c, "dev", true);
  ASSERT_EQ(subscribe(f.core, c, "state/door", q0), suback_return_code::success_maximum_qos_0);
  ASSERT_EQ(received(c).size(), 1u);
  ASSERT_EQ(subscribe(f.core, c, "state/door", q0), suback_return_code::success_maximum_qos_0);
  EXPECT_EQ(received(c),
            (std::vector<codec::publish>{publish_packet("state/door", "open", q0, 0, true)}));
}

TEST(broker, retained_messages_outlive_the_session_that_published_them) {
  // [MQTT-3.1.2.7]: retained messages are not session state.
  fixture f;
  client publisher;
  connect_ok(f.core, publisher, "pub", true);
  publish(f.core, "state/door", "open", q0, true);
  disconnect(f.core, publisher);
  EXPECT_EQ(f.core.session_count(), 0u);
  EXPECT_EQ(f.core.retained_count(), 1u);
}

// --- EventBus hooks -----------------------------------------------------------------------------

TEST(broker, interceptor_sees_matching_client_messages_in_order) {
  fixture f;
  using seen_message = std::tuple<std::string, std::string, qos_level, bool>;
  std::vector<seen_message> seen;
  f.core.set_interceptor([&seen](inbound_message& m, const auto&) {
    seen.emplace_back(m.topic(), m.take_payload(), m.qos(), m.retain());
  });
  ASSERT_TRUE(f.core.add_interest("sensors/#"));

  publish(f.core, "sensors/t", "0", q0);
  publish(f.core, "actuators/x", "no", q1);
  publish(f.core, "sensors/h", "1", q1);
  publish(f.core, "sensors/p", "2", q2, true);

  EXPECT_EQ(seen, (std::vector<seen_message>{{"sensors/t", "0", q0, false},
                                             {"sensors/h", "1", q1, false},
                                             {"sensors/p", "2", q2, true}}));  // once each
  EXPECT_EQ(f.core.stats().intercepted, 3u);
  EXPECT_EQ(f.core.stats().messages_received, 4u);
}

TEST(broker, intercepted_messages_are_still_routed_to_subscribers) {
  fixture f;
  int calls = 0;
  f.core.set_interceptor([&calls](inbound_message&, const auto&) { ++calls; });
  ASSERT_TRUE(f.core.add_interest("sensors/+"));
  client c;
  connect_ok(f.core, c, "dev", true);
  ASSERT_EQ(subscribe(f.core, c, "sensors/t", q0), suback_return_code::success_maximum_qos_0);
  publish(f.core, "sensors/t", "x");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(received(c), (std::vector<codec::publish>{publish_packet("sensors/t", "x", q0)}));
}

TEST(broker, a_payload_the_interceptor_takes_still_reaches_subscribers_and_the_retained_store) {
  fixture f;
  std::vector<std::string> taken;
  f.core.set_interceptor(
      [&taken](inbound_message& m, const auto&) { taken.push_back(m.take_payload()); });
  ASSERT_TRUE(f.core.add_interest("state/#"));
  client sub;
  connect_ok(f.core, sub, "sub", true);
  subscribe(f.core, sub, "state/+", q1);
  const std::string payload(100, 'x');

  publish(f.core, "state/door", payload, q1, true);
  EXPECT_EQ(taken, std::vector<std::string>{payload});
  EXPECT_EQ(received(sub),
            (std::vector<codec::publish>{publish_packet("state/door", payload, q1, 1)}));
  client late;
  connect_ok(f.core, late, "late", true);
  subscribe(f.core, late, "state/door", q0);
  EXPECT_EQ(received(late),
            (std::vector<codec::publish>{publish_packet("state/door", payload, q0, 0, true)}));
}

TEST(broker, interceptor_is_not_called_without_a_matching_interest) {
  fixture f;
  int calls = 0;
  f.core.set_interceptor([&calls](inbound_message&, const auto&) { ++calls; });
  publish(f.core, "sensors/t", "x");
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(f.core.stats().intercepted, 0u);
  EXPECT_FALSE(f.core.interested_in("sensors/t"));
}

TEST(broker, injected_messages_are_routed_but_never_intercepted) {
  fixture f;
  int calls = 0;
  f.core.set_interceptor([&calls](inbound_message&, const auto&) { ++calls; });
  ASSERT_TRUE(f.core.add_interest("#"));
  client c;
  connect_ok(f.core, c, "dev", true);
  ASSERT_EQ(subscribe(f.core, c, "cmd/#", q2), suback_return_code::success_maximum_qos_2);

  ASSERT_TRUE(f.core.inject("cmd/led", "on", q1, false));
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(f.core.stats().intercepted, 0u);
  EXPECT_EQ(f.core.stats().messages_injected, 1u);
  EXPECT_EQ(f.core.stats().messages_received, 0u);
  EXPECT_EQ(received(c), (std::vector<codec::publish>{publish_packet("cmd/led", "on", q1, 1)}));
}

TEST(broker, inject_rejects_an_invalid_topic_name_and_routes_nothing) {
  fixture f;
  client c;
  connect_ok(f.core, c, "dev", true);
  ASSERT_EQ(subscribe(f.core, c, "#", q0), suback_return_code::success_maximum_qos_0);
  EXPECT_FALSE(f.core.inject("cmd/+", "x", q0, false));  // wildcards [MQTT-3.3.2-2]
  EXPECT_FALSE(f.core.inject("", "x", q0, false));
  EXPECT_EQ(f.core.stats().messages_injected, 0u);
  EXPECT_TRUE(received(c).empty());
}

TEST(broker, inject_with_retain_stores_the_retained_message) {
  fixture f;
  ASSERT_TRUE(f.core.inject("state/led", "on", q1, true));
  EXPECT_EQ(f.core.retained_count(), 1u);
  client c;
  connect_ok(f.core, c, "dev", true);
  ASSERT_EQ(subscribe(f.core, c, "state/led", q1), suback_return_code::success_maximum_qos_1);
  EXPECT_EQ(received(c),
            (std::vector<codec::publish>{publish_packet("state/led", "on", q1, 1, true)}));
}

TEST(broker, remove_interest_stops_interception_for_that_filter_only) {
  fixture f;
  std::vector<std::string> seen;
  f.core.set_interceptor(
      [&seen](inbound_message& m, const auto&) { seen.emplace_back(m.topic()); });
  ASSERT_TRUE(f.core.add_interest("a/#"));
  ASSERT_TRUE(f.core.add_interest("b/+"));
  EXPECT_TRUE(f.core.interested_in("a/x"));

  EXPECT_TRUE(f.core.remove_interest("a/#"));
  EXPECT_FALSE(f.core.remove_interest("a/#"));    // no longer there
  EXPECT_FALSE(f.core.remove_interest("c/#"));    // never there
  EXPECT_FALSE(f.core.remove_interest("a/#/b"));  // invalid
  EXPECT_FALSE(f.core.interested_in("a/x"));
  EXPECT_TRUE(f.core.interested_in("b/x"));

  publish(f.core, "a/x", "1");
  publish(f.core, "b/x", "2");
  EXPECT_EQ(seen, (std::vector<std::string>{"b/x"}));
}

TEST(broker, interest_added_later_applies_to_topics_already_asked_about) {
  fixture f;
  std::vector<std::string> seen;
  f.core.set_interceptor(
      [&seen](inbound_message& m, const auto&) { seen.emplace_back(m.topic()); });
  // Many topics asked about, more than are remembered, then an interest covering them.
  for (int i = 0; i < 300; ++i)
    EXPECT_FALSE(f.core.interested_in("c/" + std::to_string(i)));
  publish(f.core, "c/1", "1");
  ASSERT_TRUE(f.core.add_interest("c/+"));
  for (int i = 0; i < 300; ++i)
    EXPECT_TRUE(f.core.interested_in("c/" + std::to_string(i))) << i;
  publish(f.core, "c/1", "2");
  EXPECT_EQ(seen, (std::vector<std::string>{"c/1"}));
  // A topic longer than those remembered is answered all the same.
  const std::string long_topic = "c/" + std::string(300, 'x');
  EXPECT_TRUE(f.core.interested_in(long_topic));
  EXPECT_TRUE(f.core.remove_interest("c/+"));
  EXPECT_FALSE(f.core.interested_in(long_topic));
  EXPECT_FALSE(f.core.interested_in("c/1"));
}

TEST(broker, add_interest_rejects_an_invalid_filter) {
  fixture f;
  EXPECT_FALSE(f.core.add_interest("a/#/b"));
  EXPECT_FALSE(f.core.add_interest(""));
  EXPECT_FALSE(f.core.interested_in("a/x/b"));
}

// --- statistics and overflow -------------------------------------------------------------------

TEST(broker, qos0_to_an_offline_session_counts_as_a_dropped_delivery) {
  fixture f;
  client c;
  connect_ok(f.core, c, "dev", false);
  ASSERT_EQ(subscribe(f.core, c, "t", q1), suback_return_code::success_maximum_qos_1);
  disconnect(f.core, c);
  publish(f.core, "t", "zero", q0);
  publish(f.core, "t", "one", q1);
  EXPECT_EQ(f.core.stats().deliveries_dropped, 1u);
  EXPECT_EQ(f.core.stats().deliveries_queued, 1u);
}

TEST(broker, drop_newest_counts_each_delivery_that_did_not_fit) {
  fixture f(make_options(2, overflow_policy::drop_newest));
  client c;
  connect_ok(f.core, c, "dev", false);
  ASSERT_EQ(subscribe(f.core, c, "t", q1), suback_return_code::success_maximum_qos_1);
  disconnect(f.core, c);
  for (const char* payload : {"1", "2", "3", "4"})
    publish(f.core, "t", payload, q1);
  EXPECT_EQ(f.core.stats().deliveries_queued, 2u);
  EXPECT_EQ(f.core.stats().deliveries_dropped, 2u);
  EXPECT_EQ(f.core.stats().slow_disconnects, 0u);
  EXPECT_EQ(c.s->dropped(), 2u);
}

TEST(broker, drop_oldest_counts_the_evicted_delivery_as_dropped) {
  // With overflow_policy::drop_oldest the new message is queued and an older one evicted: the
  // eviction is a dropped delivery in broker_stats, like any other drop.
  fixture f(make_options(2, overflow_policy::drop_oldest));
  client c;
  connect_ok(f.core, c, "dev", false);
  ASSERT_EQ(subscribe(f.core, c, "t", q1), suback_return_code::success_maximum_qos_1);
  disconnect(f.core, c);
  for (const char* payload : {"1", "2", "3", "4"})
    publish(f.core, "t", payload, q1);
  ASSERT_EQ(c.s->dropped(), 2u);
  EXPECT_EQ(f.core.stats().deliveries_dropped, 2u);
}

TEST(broker, disconnect_policy_closes_the_slow_subscriber_only) {
  fixture f(make_options(1, overflow_policy::disconnect));
  client slow;
  client fast;
  connect_ok(f.core, slow, "slow", false);
  connect_ok(f.core, fast, "fast", true);
  ASSERT_EQ(subscribe(f.core, slow, "t", q1), suback_return_code::success_maximum_qos_1);
  ASSERT_EQ(subscribe(f.core, fast, "t", q1), suback_return_code::success_maximum_qos_1);

  publish(f.core, "t", "1", q1);
  ASSERT_EQ(received(fast).size(), 1u);  // fast reads; slow does not
  EXPECT_TRUE(slow.link.closes.empty());
  publish(f.core, "t", "2", q1);

  EXPECT_EQ(slow.link.closes.size(), 1u);
  EXPECT_TRUE(fast.link.closes.empty());
  EXPECT_EQ(f.core.stats().slow_disconnects, 1u);
  EXPECT_EQ(f.core.stats().deliveries_dropped, 1u);
  EXPECT_EQ(f.core.stats().deliveries_queued, 3u);
  EXPECT_EQ(received(fast), (std::vector<codec::publish>{publish_packet("t", "2", q1, 2)}));

  // The persistent session keeps what it had queued for the next connection.
  disconnect(f.core, slow);
  EXPECT_EQ(slow.s->queued(), 1u);
}

TEST(broker, disconnect_policy_does_not_close_anything_for_an_offline_session) {
  fixture f(make_options(1, overflow_policy::disconnect));
  client c;
  connect_ok(f.core, c, "dev", false);
  ASSERT_EQ(subscribe(f.core, c, "t", q1), suback_return_code::success_maximum_qos_1);
  disconnect(f.core, c);
  publish(f.core, "t", "1", q1);
  publish(f.core, "t", "2", q1);
  EXPECT_TRUE(c.link.closes.empty());
  EXPECT_EQ(f.core.stats().slow_disconnects, 0u);
  EXPECT_EQ(f.core.stats().deliveries_dropped, 1u);
}

TEST(broker, slow_subscriber_counts_as_one_slow_disconnect_until_its_connection_ends) {
  // client_link::close() only starts closing; messages routed before the connection has
  // finished must not count (or close) the same client again. Each is still a dropped delivery.
  fixture f(make_options(1, overflow_policy::disconnect));
  client slow;
  connect_ok(f.core, slow, "slow", true);
  ASSERT_EQ(subscribe(f.core, slow, "t", q1), suback_return_code::success_maximum_qos_1);
  for (const char* payload : {"1", "2", "3", "4"})
    publish(f.core, "t", payload, q1);
  EXPECT_EQ(f.core.stats().deliveries_dropped, 3u);
  EXPECT_EQ(f.core.stats().slow_disconnects, 1u);
}

TEST(broker, connection_counters_count_accepted_and_refused_connects) {
  fixture f;
  client a;
  client b;
  client refused;
  connect_ok(f.core, a, "a", true);
  connect_ok(f.core, b, "", true);
  connect(f.core, refused, "", false);
  EXPECT_EQ(f.core.stats().connections_accepted, 2u);
  EXPECT_EQ(f.core.stats().connections_refused, 1u);
}

}  // namespace
}  // namespace ebus::mqtt::broker

// --- memory bounds and flow control ------------------------------------------------------------

namespace ebus::mqtt::broker {
namespace {

broker_options limits() {
  broker_options o;
  o.max_retained_messages = 3;
  o.max_retained_bytes = 1400;  // topic + payload + 160 bytes of bookkeeping each
  o.max_subscriptions_per_client = 2;
  o.max_topic_length = 16;
  o.max_topic_levels = 3;
  o.max_persistent_sessions = 2;
  o.session_expiry = std::chrono::seconds(60);
  o.max_packet_size = 200;
  return o;
}

TEST(broker_bounds, a_new_retained_message_past_the_count_is_refused_but_still_routed) {
  fixture f(limits());
  client sub;
  connect_ok(f.core, sub, "sub", true);
  ASSERT_EQ(subscribe(f.core, sub, "r/+", q0), suback_return_code::success_maximum_qos_0);
  for (int i = 0; i < 4; ++i)
    publish(f.core, "r/" + std::to_string(i), "v", q0, true);
  EXPECT_EQ(f.core.retained_count(), 3u);
  EXPECT_EQ(f.core.stats().retained_refused, 1u);
  EXPECT_EQ(received(sub).size(), 4u) << "live delivery does not depend on the store";
  // Replacing a stored topic is not a new one; deleting one makes room.
  publish(f.core, "r/0", "w", q0, true);
  EXPECT_EQ(f.core.stats().retained_refused, 1u);
  publish(f.core, "r/1", "", q0, true);
  publish(f.core, "r/3", "v", q0, true);
  EXPECT_EQ(f.core.retained_count(), 3u);
  EXPECT_EQ(f.core.stats().retained_refused, 1u);
}

TEST(broker_bounds, retained_bytes_are_bounded_and_the_old_message_stays) {
  fixture f(limits());
  publish(f.core, "big", std::string(900, 'a'), q0, true);   // 3 + 900 + 160 = 1063
  publish(f.core, "big2", std::string(200, 'b'), q0, true);  // + 364 > 1400: refused
  EXPECT_EQ(f.core.retained_count(), 1u);
  publish(f.core, "big", std::string(990, 'c'), q0, true);  // replacement: 1153 fits
  EXPECT_EQ(f.core.retained_bytes(), 1153u);
  publish(f.core, "big", std::string(1300, 'd'), q0, true);  // 1463 does not
  EXPECT_EQ(f.core.stats().retained_refused, 2u);
  client sub;
  connect_ok(f.core, sub, "sub", true);
  subscribe(f.core, sub, "big", q0);
  const auto got = received(sub);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, std::string(990, 'c'));
}

TEST(broker_bounds, many_tiny_retained_messages_are_bounded_by_bytes_too) {
  auto o = limits();
  o.max_retained_messages = 1000;
  fixture f(o);
  for (int i = 0; i < 20; ++i)
    publish(f.core, std::to_string(i), "v", q0, true);  // 1 or 2 + 1 + 160 bytes each
  EXPECT_EQ(f.core.retained_count(), 8u) << "1400 bytes hold 8 entries of 162-163 bytes";
  EXPECT_EQ(f.core.stats().retained_refused, 12u);
}

TEST(broker_bounds, subscriptions_past_the_per_client_cap_get_0x80) {
  fixture f(limits());
  client c;
  connect_ok(f.core, c, "c", true);
  EXPECT_EQ(subscribe(f.core, c, "a", q1), suback_return_code::success_maximum_qos_1);
  EXPECT_EQ(subscribe(f.core, c, "b", q1), suback_return_code::success_maximum_qos_1);
  EXPECT_EQ(subscribe(f.core, c, "c", q1), suback_return_code::failure);
  EXPECT_EQ(subscribe(f.core, c, "a", q2), suback_return_code::success_maximum_qos_2)
      << "replacing a subscription it holds is not a new one";
  EXPECT_EQ(f.core.stats().subscriptions_refused, 1u);
  EXPECT_EQ(c.s->subscriptions().size(), 2u);
}

TEST(broker_bounds, topics_too_long_or_too_deep_are_refused) {
  fixture f(limits());
  client c;
  connect_ok(f.core, c, "c", true);
  EXPECT_EQ(subscribe(f.core, c, "a/b/c/d", q0), suback_return_code::failure);
  EXPECT_EQ(subscribe(f.core, c, std::string(17, 'x'), q0), suback_return_code::failure);
  EXPECT_EQ(subscribe(f.core, c, "#", q0), suback_return_code::success_maximum_qos_0);
  EXPECT_EQ(publish_in(f.core, inbound("a/b/c/d", "x")), broker::publish_result::refused);
  EXPECT_EQ(publish_in(f.core, inbound(std::string(17, 'x'), "x")),
            broker::publish_result::refused);
  EXPECT_EQ(publish_in(f.core, inbound("a/b/c", "x")), broker::publish_result::routed);
  EXPECT_EQ(f.core.stats().messages_refused_topic, 2u);
  EXPECT_EQ(received(c).size(), 1u);
  EXPECT_FALSE(f.core.inject("a/b/c/d", "x", q0, false));
}

TEST(broker_bounds, inject_refuses_a_publish_larger_than_the_packet_limit) {
  fixture f(limits());
  EXPECT_TRUE(f.core.inject("t", std::string(150, 'x'), q1, false));
  const auto r = f.core.inject("t", std::string(200, 'x'), q1, false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), codec::make_error_code(codec::codec_errc::packet_too_large));
}

TEST(broker_bounds, persistent_sessions_past_the_cap_get_server_unavailable) {
  fixture f(limits());
  client a;
  client b;
  client c;
  client clean;
  connect_ok(f.core, a, "a", false);
  connect_ok(f.core, b, "b", false);
  EXPECT_EQ(connect(f.core, c, "c", false).return_code, connect_return_code::server_unavailable);
  EXPECT_EQ(f.core.stats().sessions_refused, 1u);
  connect_ok(f.core, clean, "clean", true);  // clean sessions end with their connection
  disconnect(f.core, a);
  client a2;
  connect_ok(f.core, a2, "a", false);  // resuming is not a new session
  EXPECT_TRUE(a2.ack.session_present);
  EXPECT_EQ(f.core.persistent_session_count(), 2u);
}

TEST(broker_bounds, offline_persistent_sessions_expire) {
  fixture f(limits());
  client a;
  client b;
  connect_ok(f.core, a, "a", false);
  connect_ok(f.core, b, "b", false);
  subscribe(f.core, a, "t", q1);
  disconnect(f.core, a);
  f.clk.advance(std::chrono::seconds(30));
  disconnect(f.core, b);
  publish(f.core, "t", "kept", q1);
  f.clk.advance(std::chrono::seconds(30));
  f.core.expire_sessions();
  EXPECT_EQ(f.core.find_session("a"), nullptr);
  EXPECT_NE(f.core.find_session("b"), nullptr);
  EXPECT_EQ(f.core.stats().sessions_expired, 1u);
  f.clk.advance(std::chrono::seconds(30));
  client other;
  connect_ok(f.core, other, "other", true);  // a CONNECT sweeps too
  EXPECT_EQ(f.core.find_session("b"), nullptr);
  EXPECT_EQ(f.core.persistent_session_count(), 0u);
  publish(f.core, "t", "nobody", q1);  // the expired subscription is gone from the tree
  EXPECT_EQ(f.core.stats().deliveries_queued, 1u);
}

TEST(broker_bounds, a_session_back_online_does_not_expire) {
  fixture f(limits());
  client a;
  connect_ok(f.core, a, "a", false);
  disconnect(f.core, a);
  f.clk.advance(std::chrono::seconds(30));
  client a2;
  connect_ok(f.core, a2, "a", false);
  f.clk.advance(std::chrono::seconds(60));
  f.core.expire_sessions();
  EXPECT_NE(f.core.find_session("a"), nullptr);
}

TEST(broker_bounds, every_message_is_charged_to_the_budget_until_its_last_holder_lets_go) {
  memory_budget budget(1 << 20);
  auto o = limits();
  o.budget = &budget;
  fixture f(o);
  client sub;
  connect_ok(f.core, sub, "sub", true);
  subscribe(f.core, sub, "t", q1);
  auto m = f.core.make_message("t", "payload", q1, true);
  ASSERT_TRUE(m.has_value());
  const auto one = budget.used();
  EXPECT_GT(one, 7u);
  f.core.publish(*m);
  m.reset();  // the broker and the queues hold it now
  EXPECT_GT(budget.used(), one) << "the queue entry is charged too";
  const auto got = received(sub);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(sub.s->on_puback(got[0].packet_id));
  EXPECT_EQ(budget.used(), one) << "the retained store still holds the message";
  publish(f.core, "t", "", q0, true);
  (void)received(sub);  // the empty message that deleted it was routed live too
  EXPECT_EQ(budget.used(), 0u);
}

TEST(broker_bounds, only_the_interceptor_takes_a_message_no_copy_is_made_and_its_charge_ends) {
  memory_budget budget(1 << 20);
  auto o = limits();
  o.budget = &budget;
  fixture f(o);
  std::string taken;
  f.core.set_interceptor([&taken](inbound_message& m, const auto&) { taken = m.take_payload(); });
  ASSERT_TRUE(f.core.add_interest("dev/+/up"));
  client other;
  connect_ok(f.core, other, "other", true);
  subscribe(f.core, other, "else/#", q1);

  const std::string payload(200, 'p');  // past the small-string buffer: the storage can move
  auto m = f.core.make_message("dev/led/up", std::string(payload), q1, false);
  ASSERT_TRUE(m.has_value());
  const char* storage = m->payload().data();
  EXPECT_GT(budget.used(), payload.size()) << "charged while the broker handles it";
  EXPECT_EQ(f.core.publish(*m), broker::publish_result::routed);
  EXPECT_EQ(taken, payload);
  EXPECT_EQ(taken.data(), storage) << "the decoded payload itself, not a copy";
  m.reset();
  EXPECT_EQ(budget.used(), 0u) << "nothing in the broker holds the message";
  EXPECT_TRUE(received(other).empty());
}

TEST(broker_bounds, a_spent_budget_refuses_new_messages_and_counts_them) {
  memory_budget budget(100);
  auto o = limits();
  o.budget = &budget;
  fixture f(o);
  EXPECT_FALSE(f.core.make_message("t", std::string(200, 'x'), q0, false).has_value());
  EXPECT_EQ(f.core.stats().messages_refused_budget, 1u);
  const auto r = f.core.inject("t", std::string(150, 'x'), q0, false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::make_error_code(std::errc::not_enough_memory));
}

TEST(broker_bounds, a_publisher_is_held_by_a_subscriber_over_its_limit_and_released_as_it_drains) {
  auto o = limits();
  o.session_queue_size = 2;
  o.slow_subscriber_timeout = std::chrono::seconds(2);
  fixture f(o);
  client sub;
  connect_ok(f.core, sub, "sub", true);
  subscribe(f.core, sub, "t", q1);
  auto publisher = std::make_shared<flow_waiter>();
  int released = 0;
  publisher->on_clear = [&released] { ++released; };
  EXPECT_EQ(publish_in(f.core, inbound("t", "1", q1), publisher), broker::publish_result::routed);
  EXPECT_EQ(publish_in(f.core, inbound("t", "2", q1), publisher), broker::publish_result::routed);
  EXPECT_EQ(publish_in(f.core, inbound("t", "3", q1), publisher), broker::publish_result::held);
  EXPECT_EQ(publisher->blocking, 1u);
  EXPECT_EQ(f.core.stats().publishers_held, 1u);
  EXPECT_EQ(received(sub).size(), 3u);
  EXPECT_EQ(released, 1);
  EXPECT_EQ(f.core.stats().deliveries_dropped, 0u);
}

TEST(broker_bounds, a_publisher_is_never_held_by_its_own_subscription) {
  // A held connection is not read, so it could never read the acknowledgements its own queue
  // waits for.
  auto o = limits();
  o.session_queue_size = 2;
  o.slow_subscriber_timeout = std::chrono::seconds(2);
  fixture f(o);
  client echo;
  connect_ok(f.core, echo, "echo", true);
  subscribe(f.core, echo, "t", q1);
  auto publisher = std::make_shared<flow_waiter>();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(publish_in(f.core, inbound("t", std::to_string(i), q1), publisher, echo.s),
              broker::publish_result::routed);
  }
  EXPECT_EQ(publisher->blocking, 0u);
  EXPECT_EQ(received(echo).size(), 4u) << "queued up to the hard limit like an injection";
}

TEST(broker_bounds, a_subscriber_stuck_past_the_timeout_drops_and_publishers_go_on) {
  auto o = limits();
  o.session_queue_size = 2;
  o.slow_subscriber_timeout = std::chrono::seconds(2);
  fixture f(o);
  client stuck;
  client fast;
  connect_ok(f.core, stuck, "stuck", true);
  connect_ok(f.core, fast, "fast", true);
  subscribe(f.core, stuck, "t", q1);
  subscribe(f.core, fast, "t", q1);
  auto publisher = std::make_shared<flow_waiter>();
  for (int i = 0; i < 3; ++i) {
    publish_in(f.core, inbound("t", std::to_string(i), q1), publisher);
    for (const auto& p : received(fast))
      EXPECT_TRUE(fast.s->on_puback(p.packet_id));
  }
  EXPECT_EQ(publisher->blocking, 1u) << "held by the stuck subscriber only";
  // The publisher's wait ends by timeout (the connection does this); the subscriber is slow.
  f.clk.advance(o.slow_subscriber_timeout);
  publisher->blocking = 0;
  ++publisher->generation;
  EXPECT_EQ(publish_in(f.core, inbound("t", "3", q1), publisher), broker::publish_result::routed);
  EXPECT_EQ(publisher->blocking, 0u);
  EXPECT_EQ(f.core.stats().dropped_queue_full, 1u);
  EXPECT_EQ(stuck.s->dropped(), 1u);
  EXPECT_EQ(received(fast).size(), 1u) << "the others still get every message";
}

TEST(broker, connection_lines_beyond_the_burst_go_to_debug_and_are_reported_next_second) {
  auto logger = log::get("mqtt.broker");
  const auto level = logger->level();
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(10);
  sink->set_pattern("%l %v");
  logger->sinks().push_back(sink);
  logger->set_level(spdlog::level::info);
  fixture f;
  int at_info = 0;
  for (int i = 0; i < 50; ++i)
    at_info += f.core.connection_line_at_info() ? 1 : 0;
  EXPECT_EQ(at_info, static_cast<int>(broker::connection_log_burst));
  EXPECT_EQ(f.core.stats().connection_lines_held, 50u - broker::connection_log_burst);
  EXPECT_TRUE(sink->last_formatted().empty());

  f.clk.advance(std::chrono::seconds(1));
  EXPECT_TRUE(f.core.connection_line_at_info());
  logger->sinks().pop_back();
  logger->set_level(level);
  const auto lines = sink->last_formatted();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("info connection_lines_held count=30 held_total=30"), std::string::npos)
      << lines[0];
}
}  // namespace
}  // namespace ebus::mqtt::broker
