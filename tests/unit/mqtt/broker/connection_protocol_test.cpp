// The connection-level MQTT rules as a Sans-I/O object: packets, decode errors and times go in,
// actions come out. No socket, no timer, no clock: every deadline is a plain time value.

#include "mqtt/broker/connection_protocol.hpp"

#include <chrono>
#include <optional>
#include <vector>

#include <gtest/gtest.h>

#include "mqtt/codec/codec_error.hpp"

namespace ebus::mqtt::broker {
namespace {

using namespace std::chrono_literals;
using codec::connect_return_code;
using codec::packet_type;
using kind = protocol_action::kind;
using state = connection_protocol::state;

const clock::time_point t0 = clock::time_point{} + 1h;

const connection_protocol::options opts{
    .connect_timeout = 10s, .packet_timeout = 30s, .slow_subscriber_timeout = 2s};

codec::connect make_connect(std::uint16_t keep_alive, bool with_will = false) {
  codec::connect c{.keep_alive = keep_alive, .client_id = "c"};
  if (with_will) c.will = codec::will_message{.topic = "will/t", .payload = "gone"};
  return c;
}

std::vector<kind> kinds(const protocol_actions& actions) {
  std::vector<kind> out;
  for (const auto& a : actions)
    out.push_back(a.what);
  return out;
}

protocol_action deadline_at(clock::time_point at) {
  return {.what = kind::set_deadline, .at = at};
}

protocol_action closed_for(close_cause cause, packet_type packet = packet_type::connect) {
  return {.what = kind::close, .cause = cause, .packet = packet};
}

/// A protocol whose CONNECT (keep-alive `keep_alive`, with or without a will) the broker
/// accepted at t0.
connection_protocol connected(std::uint16_t keep_alive, bool with_will = false) {
  connection_protocol p(opts);
  (void)p.start(t0);
  const auto c = make_connect(keep_alive, with_will);
  EXPECT_EQ(p.on_packet(c).what, kind::connect);
  (void)p.on_connect_result(connect_return_code::accepted, c.will, t0);
  EXPECT_TRUE(p.connected());
  return p;
}

// --- CONNECT first, and only once ------------------------------------------------------------

TEST(connection_protocol, start_arms_the_connect_timeout) {
  connection_protocol p(opts);
  const auto actions = p.start(t0);
  ASSERT_EQ(actions.size(), 1U);
  EXPECT_EQ(actions[0], deadline_at(t0 + 10s));
  EXPECT_EQ(p.current(), state::awaiting_connect);
}

TEST(connection_protocol, connect_first_goes_to_the_broker) {
  connection_protocol p(opts);
  (void)p.start(t0);
  EXPECT_EQ(p.on_packet(make_connect(60)).what, kind::connect);
}

TEST(connection_protocol, any_other_first_packet_closes_as_a_protocol_error) {
  // [MQTT-3.1.0-1]
  const codec::packet firsts[] = {codec::publish{.topic = "t"}, codec::pingreq{},
                                  codec::subscribe{1, {{"a", codec::qos_level::at_most_once}}},
                                  codec::disconnect{}, codec::puback{1}};
  for (const auto& first : firsts) {
    SCOPED_TRACE(codec::name_of(codec::type_of(first)));
    connection_protocol p(opts);
    (void)p.start(t0);
    const auto a = p.on_packet(first);
    EXPECT_EQ(a, closed_for(close_cause::first_not_connect, codec::type_of(first)));
    EXPECT_TRUE(is_protocol_error(a.cause));
    EXPECT_EQ(p.current(), state::closing);
    // Nothing read after the close is handled, a CONNECT included.
    EXPECT_EQ(p.on_packet(make_connect(60)).what, kind::none);
    EXPECT_TRUE(p.on_deadline(t0 + 1h, false).empty());
  }
}

TEST(connection_protocol, second_connect_closes_as_a_protocol_error) {
  // [MQTT-3.1.0-2]
  auto p = connected(60);
  EXPECT_EQ(p.on_packet(make_connect(60)), closed_for(close_cause::second_connect));
  EXPECT_EQ(p.current(), state::closing);
  EXPECT_EQ(p.on_packet(codec::publish{.topic = "t"}).what, kind::none);
}

TEST(connection_protocol, session_packets_are_handed_on_and_pingreq_is_answered) {
  auto p = connected(60);
  const codec::packet session_packets[] = {
      codec::publish{.topic = "t"},
      codec::puback{1},
      codec::pubrec{1},
      codec::pubrel{1},
      codec::pubcomp{1},
      codec::subscribe{1, {{"a", codec::qos_level::at_most_once}}},
      codec::unsubscribe{1, {"a"}}};
  for (const auto& packet : session_packets) {
    SCOPED_TRACE(codec::name_of(codec::type_of(packet)));
    EXPECT_EQ(p.on_packet(packet).what, kind::handle);
  }
  EXPECT_EQ(p.on_packet(codec::pingreq{}).what, kind::write_pingresp);  // [MQTT-3.12.4-1]
  EXPECT_TRUE(p.connected());
}

TEST(connection_protocol, packets_only_a_server_sends_close_naming_the_packet) {
  const codec::packet server_packets[] = {codec::connack{}, codec::suback{1, {}},
                                          codec::unsuback{1}, codec::pingresp{}};
  for (const auto& packet : server_packets) {
    SCOPED_TRACE(codec::name_of(codec::type_of(packet)));
    auto p = connected(60);
    EXPECT_EQ(p.on_packet(packet), closed_for(close_cause::server_packet, codec::type_of(packet)));
  }
}

TEST(connection_protocol, a_refused_connect_closes_once_the_connack_is_written) {
  connection_protocol p(opts);
  (void)p.start(t0);
  const auto c = make_connect(60, true);
  ASSERT_EQ(p.on_packet(c).what, kind::connect);
  const auto actions = p.on_connect_result(connect_return_code::server_unavailable, c.will, t0);
  ASSERT_EQ(actions.size(), 1U);
  EXPECT_EQ(actions[0].what, kind::close_after_flush);
  EXPECT_EQ(actions[0].cause, close_cause::refused);
  EXPECT_FALSE(p.accepted());
  // Refused: no session to release and no will to publish.
  EXPECT_TRUE(p.finish(false).empty());
}

// --- decode errors ---------------------------------------------------------------------------

TEST(connection_protocol, connect_refusals_of_the_decoder_get_a_connack_before_the_close) {
  // [MQTT-3.1.2-2] [MQTT-3.1.3-9] [MQTT-3.2.2-5]
  const std::pair<codec::codec_errc, connect_return_code> cases[] = {
      {codec::codec_errc::unacceptable_protocol_version,
       connect_return_code::unacceptable_protocol_version},
      {codec::codec_errc::identifier_rejected, connect_return_code::identifier_rejected}};
  for (const auto& [error, code] : cases) {
    connection_protocol p(opts);
    (void)p.start(t0);
    const auto actions = p.on_decode_error(error);
    ASSERT_EQ(kinds(actions), (std::vector<kind>{kind::write_connack, kind::close_after_flush}));
    EXPECT_EQ(actions[0].code, code);
    EXPECT_EQ(actions[1].cause, close_cause::refused);
  }
}

TEST(connection_protocol, other_decode_errors_only_close) {
  connection_protocol before(opts);
  (void)before.start(t0);
  auto actions = before.on_decode_error(codec::codec_errc::malformed_packet);
  ASSERT_EQ(actions.size(), 1U);
  EXPECT_EQ(actions[0], closed_for(close_cause::malformed));

  // Once connected, 3.1.1 has no CONNACK to send: a refusal-coded error only closes too.
  auto after = connected(60);
  actions = after.on_decode_error(codec::codec_errc::identifier_rejected);
  ASSERT_EQ(actions.size(), 1U);
  EXPECT_EQ(actions[0], closed_for(close_cause::malformed));
  EXPECT_TRUE(after.on_decode_error(codec::codec_errc::malformed_packet).empty());
}

// --- CONNECT timeout -------------------------------------------------------------------------

TEST(connection_protocol, no_connect_within_the_connect_timeout_closes) {
  connection_protocol p(opts);
  (void)p.start(t0);
  auto actions = p.on_deadline(t0 + 10s - 1ms, false);  // an early wake-up
  ASSERT_EQ(actions.size(), 1U);
  EXPECT_EQ(actions[0], deadline_at(t0 + 10s));
  actions = p.on_deadline(t0 + 10s, false);
  ASSERT_EQ(actions.size(), 1U);
  EXPECT_EQ(actions[0], closed_for(close_cause::connect_timeout));
  EXPECT_EQ(p.deadline(), clock::time_point::max());
}

TEST(connection_protocol, bytes_before_the_connect_do_not_move_the_connect_timeout) {
  // A client trickling the bytes of a CONNECT gets no more time than a silent one.
  connection_protocol p(opts);
  (void)p.start(t0);
  p.on_bytes(t0 + 9s);
  EXPECT_EQ(kinds(p.on_partial_packet(t0 + 9s)), std::vector<kind>{});  // 39 s: later
  const auto actions = p.on_deadline(t0 + 10s, false);
  ASSERT_EQ(actions.size(), 1U);
  EXPECT_EQ(actions[0], closed_for(close_cause::connect_timeout));
}

TEST(connection_protocol, a_connect_just_in_time_replaces_the_connect_timeout) {
  connection_protocol p(opts);
  (void)p.start(t0);
  p.on_bytes(t0 + 10s - 1ms);
  const auto c = make_connect(0);
  ASSERT_EQ(p.on_packet(c).what, kind::connect);
  const auto actions =
      p.on_connect_result(connect_return_code::accepted, std::nullopt, t0 + 10s - 1ms);
  ASSERT_EQ(actions.size(), 1U);
  EXPECT_EQ(actions[0].what, kind::clear_deadline);  // keep-alive 0: nothing is due
  EXPECT_EQ(kinds(p.on_deadline(t0 + 10s, false)), (std::vector<kind>{kind::clear_deadline}));
  EXPECT_TRUE(p.connected());
}

// --- keep-alive ------------------------------------------------------------------------------

TEST(connection_protocol, keep_alive_expires_at_one_and_a_half_times_the_value) {
  // [MQTT-3.1.2-24]
  connection_protocol p(opts);
  (void)p.start(t0);
  const auto c = make_connect(10);
  ASSERT_EQ(p.on_packet(c).what, kind::connect);
  auto actions = p.on_connect_result(connect_return_code::accepted, std::nullopt, t0);
  ASSERT_EQ(actions.size(), 1U);
  EXPECT_EQ(actions[0], deadline_at(t0 + 15s));
  EXPECT_EQ(p.keepalive_limit(), 15s);

  actions = p.on_deadline(t0 + 15s - 1ms, false);
  EXPECT_EQ(actions[0], deadline_at(t0 + 15s));
  actions = p.on_deadline(t0 + 15s, false);
  ASSERT_EQ(actions.size(), 1U);
  EXPECT_EQ(actions[0], closed_for(close_cause::keepalive_expired));
}

TEST(connection_protocol, keep_alive_counts_from_the_accepted_connect) {
  // The broker answered 4 s after the connection started (a login checked off the loop).
  connection_protocol p(opts);
  (void)p.start(t0);
  const auto c = make_connect(10);
  ASSERT_EQ(p.on_packet(c).what, kind::connect);
  const auto actions = p.on_connect_result(connect_return_code::accepted, std::nullopt, t0 + 4s);
  ASSERT_EQ(actions.size(), 1U);
  EXPECT_EQ(actions[0], deadline_at(t0 + 19s));
}

TEST(connection_protocol, any_bytes_move_the_keep_alive_deadline) {
  auto p = connected(10);
  p.on_bytes(t0 + 12s);  // a PINGREQ, a PUBLISH or the first bytes of one: all count
  auto actions = p.on_deadline(t0 + 15s, false);
  ASSERT_EQ(actions.size(), 1U);
  EXPECT_EQ(actions[0], deadline_at(t0 + 27s));
  actions = p.on_deadline(t0 + 27s, false);
  EXPECT_EQ(actions[0], closed_for(close_cause::keepalive_expired));
}

TEST(connection_protocol, keep_alive_zero_never_expires) {
  // Section 3.1.2.10: 0 turns the mechanism off.
  auto p = connected(0);
  EXPECT_EQ(p.keepalive_limit(), clock::duration::zero());
  EXPECT_EQ(kinds(p.on_deadline(t0 + 24h * 365, false)), (std::vector<kind>{kind::clear_deadline}));
  EXPECT_TRUE(p.connected());
}

TEST(connection_protocol, the_largest_keep_alive_does_not_overflow) {
  auto p = connected(65535);
  EXPECT_EQ(p.keepalive_limit(), std::chrono::milliseconds(std::int64_t{65535} * 1500));
  EXPECT_EQ(p.deadline(), t0 + std::chrono::milliseconds(std::int64_t{65535} * 1500));
}

TEST(connection_protocol, time_held_back_by_subscribers_is_not_the_clients) {
  auto p = connected(10);
  // Held: the deadline is looked at again after slow_subscriber_timeout, nothing closes.
  auto actions = p.on_deadline(t0 + 15s, true);
  ASSERT_EQ(actions.size(), 1U);
  EXPECT_EQ(actions[0], deadline_at(t0 + 17s));
  EXPECT_TRUE(p.on_resumed(t0 + 20s).empty());  // the deadline at 17 s comes first
  actions = p.on_deadline(t0 + 20s, false);
  EXPECT_EQ(actions[0], deadline_at(t0 + 35s));
}

TEST(connection_protocol, resuming_re_arms_when_keep_alive_comes_before_the_held_deadline) {
  auto p = connected(1);  // 1.5 s
  ASSERT_EQ(p.on_deadline(t0 + 1500ms, true)[0], deadline_at(t0 + 3500ms));
  const auto actions = p.on_resumed(t0 + 1600ms);
  ASSERT_EQ(actions.size(), 1U);
  EXPECT_EQ(actions[0], deadline_at(t0 + 3100ms));
}

// --- packet timeout --------------------------------------------------------------------------

TEST(connection_protocol, a_packet_not_complete_within_the_packet_timeout_closes) {
  auto p = connected(60);  // keep-alive deadline at t0 + 90 s
  auto actions = p.on_partial_packet(t0 + 5s);
  ASSERT_EQ(actions.size(), 1U);
  EXPECT_EQ(actions[0], deadline_at(t0 + 35s));  // earlier than keep-alive: re-armed
  EXPECT_TRUE(p.partial_pending());
  EXPECT_TRUE(p.on_partial_packet(t0 + 6s).empty()) << "the first byte's time counts";
  p.on_bytes(t0 + 34s);  // activity, but still no whole packet
  actions = p.on_deadline(t0 + 35s, false);
  EXPECT_EQ(actions[0], closed_for(close_cause::packet_timeout));
}

TEST(connection_protocol, a_completed_packet_stops_the_packet_timeout) {
  auto p = connected(60);
  ASSERT_EQ(p.on_partial_packet(t0 + 5s).size(), 1U);
  p.on_bytes(t0 + 6s);
  p.on_buffer_empty();
  EXPECT_FALSE(p.partial_pending());
  auto actions = p.on_deadline(t0 + 35s, false);
  EXPECT_EQ(actions[0], deadline_at(t0 + 96s));  // keep-alive from the last bytes
  // A later partial packet whose timeout falls after the armed deadline does not re-arm.
  p.on_bytes(t0 + 80s);
  EXPECT_TRUE(p.on_partial_packet(t0 + 80s).empty());
}

TEST(connection_protocol, a_partial_connect_is_bounded_by_the_earlier_of_both_timeouts) {
  const connection_protocol::options slow_connect{.connect_timeout = 60s, .packet_timeout = 30s};
  connection_protocol p(slow_connect);
  (void)p.start(t0);
  const auto actions = p.on_partial_packet(t0 + 1s);
  ASSERT_EQ(actions.size(), 1U);
  EXPECT_EQ(actions[0], deadline_at(t0 + 31s));
  EXPECT_EQ(p.on_deadline(t0 + 31s, false)[0], closed_for(close_cause::packet_timeout));
}

// --- will and session ------------------------------------------------------------------------

TEST(connection_protocol, will_is_published_when_the_connection_ends_without_disconnect) {
  // [MQTT-3.1.2-8]: a closed socket, a keep-alive expiry, a protocol error alike.
  for (const auto end : {0, 1, 2}) {
    SCOPED_TRACE(end);
    auto p = connected(10, true);
    if (end == 1) {
      ASSERT_EQ(p.on_deadline(t0 + 15s, false)[0].what, kind::close);
    } else if (end == 2) {
      ASSERT_EQ(p.on_packet(make_connect(10)).what, kind::close);
    }
    const auto actions = p.finish(true);
    EXPECT_EQ(kinds(actions), (std::vector<kind>{kind::publish_will, kind::release_session}));
    const auto will = p.take_will();
    ASSERT_TRUE(will);
    EXPECT_EQ(will->topic, "will/t");
    EXPECT_EQ(will->payload, "gone");
    EXPECT_FALSE(p.take_will());
  }
}

TEST(connection_protocol, will_is_not_published_after_disconnect) {
  // [MQTT-3.1.2-10] [MQTT-3.14.4-3]
  auto p = connected(10, true);
  EXPECT_EQ(p.on_packet(codec::disconnect{}), closed_for(close_cause::disconnect));
  EXPECT_FALSE(p.has_will());
  EXPECT_EQ(kinds(p.finish(true)), (std::vector<kind>{kind::release_session}));
  EXPECT_FALSE(p.take_will());
}

TEST(connection_protocol, will_is_published_when_the_server_closes) {
  auto p = connected(10, true);
  p.close(true);  // overflow policy, memory budget, shutdown
  EXPECT_EQ(p.current(), state::closing);
  EXPECT_TRUE(p.session_attached());
  EXPECT_EQ(kinds(p.finish(true)), (std::vector<kind>{kind::publish_will, kind::release_session}));
}

TEST(connection_protocol,
     takeover_publishes_the_will_and_leaves_the_session_to_the_new_connection) {
  // [MQTT-3.1.4-2] closes this connection; the session moved on, the will is this connection's.
  auto p = connected(10, true);
  p.close(false);
  EXPECT_FALSE(p.session_attached());
  EXPECT_EQ(kinds(p.finish(false)), (std::vector<kind>{kind::publish_will}));
  ASSERT_TRUE(p.take_will());
}

TEST(connection_protocol, takeover_after_a_close_was_decided_still_keeps_the_session) {
  // Keep-alive expired, and before the connection finished another one took the client id.
  auto p = connected(10, true);
  ASSERT_EQ(p.on_deadline(t0 + 15s, false)[0].what, kind::close);
  EXPECT_EQ(kinds(p.finish(false)), (std::vector<kind>{kind::publish_will}));
}

TEST(connection_protocol, a_connection_closed_while_the_broker_accepted_it_still_releases) {
  // The broker linked the session, then writing the CONNACK failed (memory budget): the
  // session and the will are still this connection's to hand back.
  connection_protocol p(opts);
  (void)p.start(t0);
  const auto c = make_connect(10, true);
  ASSERT_EQ(p.on_packet(c).what, kind::connect);
  p.close(false);  // no session known yet when the server closed
  EXPECT_TRUE(p.on_connect_result(connect_return_code::accepted, c.will, t0).empty());
  EXPECT_EQ(p.current(), state::closing);
  EXPECT_EQ(kinds(p.finish(true)), (std::vector<kind>{kind::publish_will, kind::release_session}));
}

TEST(connection_protocol, finish_runs_once_and_nothing_follows_it) {
  auto p = connected(10, true);
  EXPECT_EQ(p.finish(true).size(), 2U);
  EXPECT_EQ(p.current(), state::finished);
  EXPECT_TRUE(p.finish(true).empty());
  EXPECT_EQ(p.on_packet(codec::pingreq{}).what, kind::none);
  EXPECT_TRUE(p.on_deadline(t0 + 1h, false).empty());
  EXPECT_TRUE(p.on_partial_packet(t0 + 1h).empty());
  EXPECT_TRUE(p.on_decode_error(codec::codec_errc::malformed_packet).empty());
}

TEST(connection_protocol, close_causes_read_as_the_reasons_in_the_log) {
  EXPECT_EQ(describe(close_cause::keepalive_expired), "keep-alive expired [MQTT-3.1.2-24]");
  EXPECT_EQ(describe(close_cause::connect_timeout), "no CONNECT within the connect timeout");
  EXPECT_EQ(describe(close_cause::second_connect), "protocol error");
  EXPECT_EQ(protocol_error_detail(close_cause::second_connect), "second CONNECT [MQTT-3.1.0-2]");
  EXPECT_TRUE(protocol_error_detail(close_cause::keepalive_expired).empty());
}

}  // namespace
}  // namespace ebus::mqtt::broker
