// SUBSCRIBE, UNSUBSCRIBE and delivery.
//
// A client subscribes at QoS 0, 1 or 2 and another publishes at QoS 0, 1 or 2: the subscriber
// gets the message once, at the lower of the two QoS. A SUBSCRIBE with several filters gets one
// SUBACK code per filter, in order, each granting what was asked; an invalid filter gets 0x80
// on MQTT 3.1.1 and closes the connection on MQTT 3.1, which has no failure code. A client whose
// subscriptions overlap gets one copy at the highest QoS. Subscribing again to the same filter
// replaces the subscription. After UNSUBSCRIBE nothing more arrives; UNSUBACK comes even for a
// filter that was never subscribed. 200 messages mixing QoS 0, 1 and 2 from one publisher on one
// topic arrive in order at a QoS 2 subscriber. Packets arrive whole however the publisher's
// writes split them, whether small, larger than a quarter of the broker's read buffer, or larger
// than the whole buffer.
#include <algorithm>
#include <random>
#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include "conformance.hpp"

namespace ebus::test::conformance {
namespace {

using codec::suback_return_code;

class delivery_qos : public ::testing::TestWithParam<std::tuple<qos_level, qos_level>> {};

INSTANTIATE_TEST_SUITE_P(
    pub_sub, delivery_qos,
    ::testing::Combine(::testing::Values(qos0, qos1, qos2), ::testing::Values(qos0, qos1, qos2)),
    [](const ::testing::TestParamInfo<std::tuple<qos_level, qos_level>>& param) {
      return "pub" + std::to_string(static_cast<int>(std::get<0>(param.param))) + "_sub" +
             std::to_string(static_cast<int>(std::get<1>(param.param)));
    });

TEST_P(delivery_qos, delivered_once_at_the_lower_of_publish_and_subscription_qos) {
  // [MQTT-3.8.4-6] [MQTT-3.3.5-1] [MQTT-2.3.1-5] [MQTT-3.3.1-2] [MQTT-4.3.2-2] [MQTT-4.3.3-2]
  const auto [pub_qos, sub_qos] = GetParam();
  const auto expected = std::min(pub_qos, sub_qos);
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(subscribed(*sub, "subpub/qos", sub_qos));
  ASSERT_TRUE(published(*pub, make_publish("subpub/qos", "hello", pub_qos, 7)));
  const auto got = receive_acked(*sub, 1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].topic, "subpub/qos");
  EXPECT_EQ(got[0].payload, "hello");
  EXPECT_EQ(got[0].qos, expected);
  EXPECT_FALSE(got[0].retain);
  EXPECT_FALSE(got[0].dup);
  EXPECT_EQ(got[0].packet_id != 0, expected != qos0);  // [MQTT-2.3.1-5]
  EXPECT_TRUE(only_pubrels_for(*sub));                 // exactly one copy
}

TEST(subpub, suback_has_one_code_per_filter_in_order_granting_the_requested_qos) {
  // [MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-3.8.4-4] [MQTT-3.8.4-5] [MQTT-3.9.3-1]
  broker_harness h;
  auto p = connect_peer(h.port(), "c");
  p->send(codec::subscribe{42, {{"a/2", qos2}, {"a/0", qos0}, {"a/1", qos1}}});
  const auto ack = p->receive_as<codec::suback>();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->packet_id, 42);
  EXPECT_EQ(ack->return_codes, (std::vector{suback_return_code::success_maximum_qos_2,
                                            suback_return_code::success_maximum_qos_0,
                                            suback_return_code::success_maximum_qos_1}));
}

TEST(subpub, invalid_filter_gets_0x80_and_the_others_are_granted_on_mqtt311) {
  // [MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-3.9.3-1]: return code 0x80 for the failing filter.
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  sub->send(codec::subscribe{3, {{"a/#/b", qos1}, {"ok/+", qos1}, {"a+", qos0}}});
  const auto ack = sub->receive_as<codec::suback>();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->return_codes,
            (std::vector{suback_return_code::failure, suback_return_code::success_maximum_qos_1,
                         suback_return_code::failure}));
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(published(*pub, make_publish("ok/x", "m", qos1, 1)));
  const auto got = receive_acked(*sub, 1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].topic, "ok/x");
}

TEST(subpub, invalid_filter_closes_the_connection_on_mqtt31) {
  // MQTT 3.1 has no SUBACK failure code, so the only answer to a filter the server cannot
  // accept is closing the connection; other clients are not affected.
  broker_harness h;
  auto observer = connect_peer(h.port(), "observer");
  auto p = connect_peer(h.port(), make_connect("old", true, 60, protocol_level::v3_1));
  p->send(codec::subscribe{3, {{"a/#/b", qos1}}});
  EXPECT_FALSE(p->receive_as<codec::suback>(quiet));
  EXPECT_TRUE(p->closed_within(close_bound));
  EXPECT_TRUE(round_trip(*observer, "subpub/observer"));
}

TEST(subpub, overlapping_subscriptions_deliver_one_copy_at_the_highest_qos) {
  // [MQTT-3.3.5-1]: the broker sends one message respecting the highest granted QoS.
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  ASSERT_TRUE(subscribed(*sub, "over/lap", qos0, 1));
  ASSERT_TRUE(subscribed(*sub, "over/+", qos2, 2));
  ASSERT_TRUE(subscribed(*sub, "#", qos1, 3));
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(published(*pub, make_publish("over/lap", "m", qos2, 1)));
  const auto got = receive_acked(*sub, 1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].qos, qos2);
  EXPECT_TRUE(only_pubrels_for(*sub));
}

TEST(subpub, subscribing_again_to_the_same_filter_replaces_the_subscription) {
  // [MQTT-3.8.4-3]: one subscription, now with the new QoS.
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  ASSERT_TRUE(subscribed(*sub, "re/sub", qos2, 1));
  ASSERT_TRUE(subscribed(*sub, "re/sub", qos0, 2));
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(published(*pub, make_publish("re/sub", "m", qos2, 1)));
  const auto got = receive_acked(*sub, 1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].qos, qos0);
  EXPECT_TRUE(sub->silent_for(quiet));
}

TEST(subpub, unsubscribe_stops_delivery_and_is_acknowledged_with_its_packet_id) {
  // [MQTT-3.10.4-1] [MQTT-3.10.4-2] [MQTT-3.10.4-4]
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(subscribed(*sub, "un/sub", qos1));
  ASSERT_TRUE(subscribed(*sub, "un/other", qos1, 2));
  ASSERT_TRUE(published(*pub, make_publish("un/sub", "before", qos1, 1)));
  ASSERT_EQ(receive_acked(*sub, 1).size(), 1U);
  sub->send(codec::unsubscribe{77, {"un/sub"}});
  const auto ack = sub->receive_as<codec::unsuback>();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->packet_id, 77);
  ASSERT_TRUE(published(*pub, make_publish("un/sub", "after", qos1, 2)));
  ASSERT_TRUE(published(*pub, make_publish("un/other", "still", qos1, 3)));
  const auto got = receive_acked(*sub, 2, quiet);
  ASSERT_EQ(got.size(), 1U);  // only the message on the filter that is still subscribed
  EXPECT_EQ(got[0].payload, "still");
}

TEST(subpub, unsuback_is_sent_for_a_filter_that_was_never_subscribed) {
  // [MQTT-3.10.4-5]; an invalid filter has no subscription either, and is answered the same way.
  broker_harness h;
  auto p = connect_peer(h.port(), "c");
  p->send(codec::unsubscribe{9, {"never/subscribed", "a/#/b"}});
  const auto ack = p->receive_as<codec::unsuback>();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->packet_id, 9);
  EXPECT_TRUE(round_trip(*p, "subpub/after-unsubscribe"));
}

TEST(subpub, publish_with_no_subscriber_is_still_acknowledged) {
  // [MQTT-4.3.2-2] [MQTT-4.3.3-2]: the acknowledgement does not depend on subscribers.
  broker_harness h;
  auto pub = connect_peer(h.port(), "pub");
  EXPECT_TRUE(published(*pub, make_publish("nobody/listens", "m", qos1, 1)));
  EXPECT_TRUE(published(*pub, make_publish("nobody/listens", "m", qos2, 2)));
}

TEST(subpub, messages_of_one_publisher_mixing_qos_arrive_in_order) {
  // [MQTT-4.6.0-6]: every topic is an ordered topic. 200 messages, QoS 0, 1 and 2 in turn, sent
  // back to back before any acknowledgement is read; the subscriber at QoS 2 gets each at the
  // QoS it was published with, in publish order, while the broker's in-flight window of 20
  // makes it wait for acknowledgements along the way. The burst holds 133 QoS 1/2 messages,
  // more than the default session_queue_size (100) plus window can hold for one subscriber,
  // so the queue is made large enough: overflow is 06_session's and 11_slow_consumer's subject.
  constexpr int count = 200;
  broker_harness h({.session_queue_size = count});
  auto sub = connect_peer(h.port(), "sub");
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(subscribed(*sub, "order/t", qos2));
  std::string batch;
  for (int i = 0; i < count; ++i) {
    const auto qos = static_cast<qos_level>(i % 3);
    codec::encode(
        make_publish("order/t", std::to_string(i), qos, static_cast<std::uint16_t>(i + 1)), batch);
  }
  pub->send_raw(batch);
  const auto got = receive_acked(*sub, count);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    EXPECT_EQ(got[i].payload, std::to_string(i));
    EXPECT_EQ(got[i].qos, static_cast<qos_level>(i % 3));
  }
  EXPECT_TRUE(only_pubrels_for(*sub));
  // The publisher's flows complete as well: PUBACK for QoS 1, PUBREC then PUBCOMP for QoS 2.
  int acks = 0;
  int comps = 0;
  while (acks + comps < 2 * count / 3) {
    auto p = pub->receive();
    ASSERT_TRUE(p) << "acks=" << acks << " pubcomps=" << comps;
    if (auto* rec = std::get_if<codec::pubrec>(&*p)) pub->send(codec::pubrel{rec->packet_id});
    if (std::holds_alternative<codec::puback>(*p)) ++acks;
    if (std::holds_alternative<codec::pubcomp>(*p)) ++comps;
  }
  EXPECT_EQ(acks, 67);
  EXPECT_EQ(comps, 66);
}

TEST(subpub, packets_split_anywhere_across_the_publishers_writes_arrive_whole_and_in_order) {
  // The broker reads into one buffer shared by all connections and copies the start of a packet
  // that a read ended in in front of the next read; larger packets, and packets that one read
  // does not finish, are completed in the connection's own buffer. Writes of random sizes, the
  // first hundreds of bytes one at a time, cross every packet boundary and every path.
  const std::vector<std::size_t> sizes = {0,    1,     100, 4096, 4096,  20000, 4096,
                                          4096, 70000, 300, 1,    16384, 40000, 4096};
  broker_harness h;
  auto sub = connect_peer(h.port(), "sub");
  auto pub = connect_peer(h.port(), "pub");
  ASSERT_TRUE(subscribed(*sub, "split/t", qos1));
  std::string stream;
  std::vector<std::string> payloads;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    std::string payload(sizes[i], static_cast<char>('a' + i));
    if (!payload.empty()) payload.front() = static_cast<char>('0' + i % 10);
    codec::encode(make_publish("split/t", payload, qos0, 0), stream);
    payloads.push_back(std::move(payload));
  }
  std::mt19937 rng(5);
  for (std::size_t at = 0; at < stream.size();) {
    const std::size_t n =
        std::min<std::size_t>(at < 400 ? 1 : 1 + rng() % 9000, stream.size() - at);
    pub->send_raw(stream.substr(at, n));
    at += n;
  }
  const auto got = receive_acked(*sub, payloads.size());
  ASSERT_EQ(got.size(), payloads.size());
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    EXPECT_EQ(got[i].payload, payloads[i]) << "message " << i;
  }
}

}  // namespace
}  // namespace ebus::test::conformance
