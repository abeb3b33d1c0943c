// CONNECT and CONNACK.
//
// A client connects and gets CONNACK 0 with session present 0. A CONNECT naming a protocol level
// the broker does not speak gets CONNACK 0x01 and the connection closes; so does a zero-length
// client id where the level or the clean-session flag does not allow one (CONNACK 0x02). A first
// packet other than CONNECT, a second CONNECT, a reserved flag set in CONNECT or a password
// without a user name close the connection without a CONNACK. A second client with the same id
// takes over: the first connection is closed. A connection that stays silent past the connect
// timeout is closed, and connections beyond max_connections get CONNACK 0x03 (over TCP; over TLS
// and WebSocket they are only closed) and are closed at once while the others keep working.
// MQTT 3.1 ("MQIsdp", level 3) and 3.1.1 ("MQTT", level 4) are both run where their rules differ.
#include <gtest/gtest.h>

#include "conformance.hpp"

namespace ebus::test::conformance {
namespace {

using codec::connect_return_code;

TEST(connect, new_clean_session_is_accepted_with_session_present_0) {
  // [MQTT-3.2.0-1] [MQTT-3.2.2-1]
  broker_harness h;
  mqtt_peer p(h.port());
  p.send(make_connect("c1"));
  const auto ack = p.receive_as<codec::connack>();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->return_code, connect_return_code::accepted);
  EXPECT_FALSE(ack->session_present);
  EXPECT_TRUE(round_trip(p, "connect/c1"));
}

class connect_level : public ::testing::TestWithParam<protocol_level> {};

INSTANTIATE_TEST_SUITE_P(levels, connect_level,
                         ::testing::Values(protocol_level::v3_1, protocol_level::v3_1_1),
                         level_name);

TEST_P(connect_level, accepted_at_this_level) {
  // [MQTT-3.1.2-1] [MQTT-3.2.0-1]
  broker_harness h;
  mqtt_peer p(h.port());
  const auto ack = p.connect(make_connect("lvl", true, 60, GetParam()));
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->return_code, connect_return_code::accepted);
  EXPECT_TRUE(round_trip(p, "connect/level"));
}

TEST_P(connect_level, unsupported_level_gets_connack_0x01_then_close) {
  // [MQTT-3.1.2-2] [MQTT-3.2.2-4] [MQTT-3.2.2-5]. For 3.1.1 the CONNECT is a v5 client's ("MQTT",
  // level 5); for 3.1 it pairs the name "MQIsdp" with level 4.
  broker_harness h;
  mqtt_peer p(h.port());
  const bool v31 = GetParam() == protocol_level::v3_1;
  p.send_raw(raw_connect(v31 ? "MQIsdp" : "MQTT", v31 ? 4 : 5, 0x02, "lvl"));
  const auto ack = p.receive_as<codec::connack>();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->return_code, connect_return_code::unacceptable_protocol_version);
  EXPECT_FALSE(ack->session_present);
  EXPECT_TRUE(p.closed_within(close_bound));
}

TEST(connect, zero_length_client_id_with_clean_session_is_accepted_on_mqtt311) {
  // [MQTT-3.1.3-6] [MQTT-3.1.3-7]: each such client gets its own identifier, so two of them
  // coexist without taking each other over.
  broker_harness h;
  mqtt_peer a(h.port());
  mqtt_peer b(h.port());
  const auto ack_a = a.connect(make_connect("", true));
  const auto ack_b = b.connect(make_connect("", true));
  ASSERT_TRUE(ack_a && ack_b);
  EXPECT_EQ(ack_a->return_code, connect_return_code::accepted);
  EXPECT_EQ(ack_b->return_code, connect_return_code::accepted);
  EXPECT_FALSE(ack_a->session_present);
  EXPECT_TRUE(round_trip(a, "connect/anon/a"));
  EXPECT_TRUE(round_trip(b, "connect/anon/b"));
  EXPECT_EQ(h.call([](mqtt::broker::server& s) { return s.core().session_count(); }), 2U);
}

TEST_P(connect_level, zero_length_client_id_rules) {
  // MQTT 3.1 requires a client id of 1 to 23 characters (3.1 section 3.1) and answers others with
  // CONNACK 2, whatever the clean-session flag; 3.1.1 allows an empty one with clean session
  // [MQTT-3.1.3-7] and refuses it without, with CONNACK 0x02 and a close [MQTT-3.1.3-8]
  // [MQTT-3.1.3-9] [MQTT-3.2.2-4] [MQTT-3.2.2-5].
  for (const bool clean : {true, false}) {
    SCOPED_TRACE(clean ? "clean session" : "persistent session");
    broker_harness h;
    mqtt_peer p(h.port());
    p.send(make_connect("", clean, 60, GetParam()));
    const auto ack = p.receive_as<codec::connack>();
    ASSERT_TRUE(ack);
    if (GetParam() == protocol_level::v3_1_1 && clean) {
      EXPECT_EQ(ack->return_code, connect_return_code::accepted);
      EXPECT_TRUE(round_trip(p, "connect/anon"));
    } else {
      EXPECT_EQ(ack->return_code, connect_return_code::identifier_rejected);
      EXPECT_FALSE(ack->session_present);
      EXPECT_TRUE(p.closed_within(close_bound));
    }
  }
}

TEST(connect, first_packet_other_than_connect_closes_without_connack) {
  // [MQTT-3.1.0-1]
  const codec::packet firsts[] = {codec::pingreq{}, codec::subscribe{1, {{"a", qos0}}},
                                  make_publish("a", "x"), codec::disconnect{}};
  for (const auto& first : firsts) {
    SCOPED_TRACE(codec::name_of(codec::type_of(first)));
    broker_harness h;
    mqtt_peer p(h.port());
    p.send(first);
    EXPECT_FALSE(p.receive(quiet));
    EXPECT_TRUE(p.closed_within(close_bound));
  }
}

TEST_P(connect_level, second_connect_closes_the_connection) {
  // [MQTT-3.1.0-2]
  broker_harness h;
  mqtt_peer observer(h.port());
  ASSERT_TRUE(observer.connect("observer"));
  mqtt_peer p(h.port());
  ASSERT_TRUE(p.connect(make_connect("twice", true, 60, GetParam())));
  p.send(make_connect("twice", true, 60, GetParam()));
  EXPECT_FALSE(p.receive_as<codec::connack>(quiet));
  EXPECT_TRUE(p.closed_within(close_bound));
  EXPECT_TRUE(round_trip(observer, "connect/observer"));
}

TEST(connect, reserved_connect_flag_closes_without_connack) {
  // [MQTT-3.1.2-3]: bit 0 of the Connect Flags is reserved.
  broker_harness h;
  mqtt_peer p(h.port());
  p.send_raw(raw_connect("MQTT", 4, 0x03, "reserved"));
  EXPECT_FALSE(p.receive(quiet));
  EXPECT_TRUE(p.closed_within(close_bound));
}

TEST(connect, reserved_fixed_header_flags_close_without_connack) {
  // [MQTT-2.2.2-1] [MQTT-2.2.2-2]: CONNECT's fixed-header flags are 0000.
  broker_harness h;
  mqtt_peer p(h.port());
  auto bytes = raw_connect("MQTT", 4, 0x02, "flags");
  bytes[0] = '\x11';
  p.send_raw(bytes);
  EXPECT_FALSE(p.receive(quiet));
  EXPECT_TRUE(p.closed_within(close_bound));
}

TEST(connect, password_without_user_name_closes) {
  // [MQTT-3.1.2-22]
  broker_harness h;
  mqtt_peer p(h.port());
  p.send_raw(raw_connect("MQTT", 4, 0x42, "pw", 60, std::string("\0\2pw", 4)));
  EXPECT_FALSE(p.receive_as<codec::connack>(quiet));
  EXPECT_TRUE(p.closed_within(close_bound));
}

TEST(connect, second_client_with_the_same_id_takes_over_and_the_first_is_closed) {
  // [MQTT-3.1.4-2]
  broker_harness h;
  mqtt_peer first(h.port());
  ASSERT_TRUE(first.connect("same"));
  mqtt_peer second(h.port());
  const auto ack = second.connect("same");
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->return_code, connect_return_code::accepted);
  EXPECT_TRUE(first.closed_within(close_bound));
  EXPECT_TRUE(round_trip(second, "connect/same"));
  EXPECT_EQ(h.call([](mqtt::broker::server& s) { return s.core().session_count(); }), 1U);
}

TEST(connect, silent_connection_is_closed_at_the_connect_timeout) {
  // Section 3.1.4 (non-normative): a server closes a connection that sends no CONNECT within a
  // reasonable time. On a manual clock: a client whose CONNECT comes just before the timeout is
  // accepted and not affected by it, one that sends nothing is closed exactly at the timeout.
  manual_clock clk;
  broker_harness h({.connect_timeout = 300ms}, clk);
  mqtt_peer in_time(h.port());
  mqtt_peer silent(h.port());
  ASSERT_TRUE(connection_count_is(h, 2));  // both accepted at the same time: their timeouts run
  advance(h, clk, 299ms);
  const auto ack = in_time.connect(make_connect("in-time", true, 0));  // no keep-alive limit
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->return_code, connect_return_code::accepted);
  EXPECT_EQ(h.call([](mqtt::broker::server& s) { return s.connection_count(); }), 2U)
      << "closed before the connect timeout";

  advance(h, clk, 1ms);
  EXPECT_TRUE(silent.closed_within(close_bound));
  EXPECT_TRUE(round_trip(in_time, "connect/in-time"));
  advance(h, clk, 1h);
  EXPECT_TRUE(round_trip(in_time, "connect/in-time"));
}

TEST(connect, connections_beyond_max_connections_are_closed_and_the_others_keep_working) {
  // broker_options::max_connections; no normative statement: the broker refuses with CONNACK
  // 0x03 (server unavailable), then closes. Over TLS and WebSocket a CONNACK would need the
  // opening exchange first, which a refusal never waits for: the connection is only closed, so
  // the peer's handshake or upgrade fails.
  broker_harness h({.max_connections = 2});
  mqtt_peer a(h.port());
  mqtt_peer b(h.port());
  ASSERT_TRUE(a.connect("a"));
  ASSERT_TRUE(b.connect("b"));
  if (test_transport() == transport_kind::tcp) {
    mqtt_peer extra(h.port());  // the kernel accepts it; the broker answers and closes it at once
    extra.send(make_connect("extra"));
    const auto ack = extra.receive_as<codec::connack>();
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->return_code, codec::connect_return_code::server_unavailable);
    EXPECT_TRUE(extra.closed_within(close_bound));
  } else {
    EXPECT_THROW(mqtt_peer extra(h.port()), std::runtime_error);
  }
  EXPECT_TRUE(round_trip(a, "connect/a"));
  EXPECT_TRUE(round_trip(b, "connect/b"));
  EXPECT_GE(stats(h).connections_refused, 1U);
}

}  // namespace
}  // namespace ebus::test::conformance
