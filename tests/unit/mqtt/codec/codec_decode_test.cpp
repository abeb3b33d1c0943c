// Decoding of valid packets: every vector decodes to its value on both protocol levels, plus the
// rules that depend on the stream's protocol level and the boundaries the codec leaves to others.

#include <string>

#include <gtest/gtest.h>

#include "codec_test_support.hpp"
#include "mqtt/codec/decoder.hpp"
#include "packet_vectors.hpp"

namespace ebus::mqtt::codec::test {
namespace {

packet decode_ok(std::string_view wire, decoder_options options = {}) {
  decoder dec(options);
  dec.feed(wire);
  auto r = dec.next();
  EXPECT_TRUE(r.has_value()) << dec.error_detail();
  if (!r || !*r) {
    ADD_FAILURE() << "no packet from " << hex(wire);
    return disconnect{};
  }
  EXPECT_EQ(dec.buffered(), 0u);
  return std::move(**r);
}

class DecodeValid : public ::testing::TestWithParam<valid_vector> {};

TEST_P(DecodeValid, DecodesToTheExpectedPacketOnBothProtocolLevels) {
  const valid_vector& v = GetParam();
  for (const auto level : {protocol_level::v3_1_1, protocol_level::v3_1}) {
    SCOPED_TRACE(static_cast<int>(level));
    EXPECT_EQ(decode_ok(v.bytes, {.level = level}), v.value);
  }
}

TEST_P(DecodeValid, LeavesTheDecoderReadyForTheNextPacket) {
  decoder dec;
  dec.feed(GetParam().bytes);
  ASSERT_TRUE(dec.next().value().has_value());
  const auto again = dec.next();
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(again->has_value());
  EXPECT_TRUE(dec.error_detail().empty());
}

INSTANTIATE_TEST_SUITE_P(Vectors, DecodeValid, ::testing::ValuesIn(valid_vectors()),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Decode, ConnectSetsTheProtocolLevelOfTheStream) {
  decoder dec;
  std::string wire;
  encode(connect{.level = protocol_level::v3_1, .client_id = "c"}, wire);
  dec.feed(wire);
  ASSERT_TRUE(dec.next().value().has_value());
  EXPECT_EQ(dec.level(), protocol_level::v3_1);
}

TEST(Decode, Mqtt31StreamAcceptsDupOnSubscribeRetry) {
  // MQTT 3.1 sets DUP on a re-sent SUBSCRIBE; 3.1.1 made the flags 0010 [MQTT-3.8.1-1].
  std::string wire;
  encode(connect{.level = protocol_level::v3_1, .client_id = "c"}, wire);
  wire += bytes({0x8a, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00});  // SUBSCRIBE, DUP + QoS 1
  decoder dec;
  dec.feed(wire);
  ASSERT_TRUE(dec.next().value().has_value());
  const auto r = dec.next();
  ASSERT_TRUE(r.has_value()) << dec.error_detail();
  EXPECT_EQ(**r, packet(subscribe{.packet_id = 1, .subscriptions = {{.filter = "a"}}}));
}

TEST(Decode, Mqtt311StreamRejectsDupOnSubscribeAfterConnect) {
  // [MQTT-3.8.1-1]: a 3.1.1 CONNECT makes the strict flag rules apply to what follows.
  std::string wire;
  encode(connect{.level = protocol_level::v3_1_1, .client_id = "c"}, wire);
  wire += bytes({0x8a, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00});  // SUBSCRIBE, DUP + QoS 1
  decoder dec({.level = protocol_level::v3_1});
  dec.feed(wire);
  ASSERT_TRUE(dec.next().value().has_value());
  EXPECT_EQ(dec.next().error(), codec_errc::malformed_packet);
}

TEST(Decode, Mqtt31IgnoresFlagBitsOfNonPublishPackets) {
  // MQTT 3.1 marks DUP/QoS/RETAIN of these packets "not used" rather than reserved.
  const decoder_options v3_1{.level = protocol_level::v3_1};
  EXPECT_EQ(decode_ok(bytes({0x6a, 0x02, 0x00, 0x05}), v3_1), packet(pubrel{.packet_id = 5}));
  EXPECT_EQ(decode_ok(bytes({0x42, 0x02, 0x00, 0x05}), v3_1), packet(puback{.packet_id = 5}));
  EXPECT_EQ(decode_ok(bytes({0xa0, 0x05, 0x00, 0x05, 0x00, 0x01, 'a'}), v3_1),
            packet(unsubscribe{.packet_id = 5, .filters = {"a"}}));
  EXPECT_EQ(decode_ok(bytes({0xc1, 0x00}), v3_1), packet(pingreq{}));
}

TEST(Decode, SetLevelSwitchesTheFixedHeaderRules) {
  decoder dec;
  dec.set_level(protocol_level::v3_1);
  dec.feed(bytes({0x6a, 0x02, 0x00, 0x05}));  // PUBREL with DUP, as MQTT 3.1 retries it
  const auto r = dec.next();
  ASSERT_TRUE(r.has_value()) << dec.error_detail();
  EXPECT_EQ(**r, packet(pubrel{.packet_id = 5}));
}

TEST(Decode, Mqtt31ConnackDoesNotCheckTheAcknowledgeFlags) {
  // Session present and [MQTT-3.2.2-4] are MQTT 3.1.1 additions.
  const decoder_options v3_1{.level = protocol_level::v3_1};
  EXPECT_EQ(
      decode_ok(bytes({0x20, 0x02, 0x01, 0x05}), v3_1),
      packet(connack{.session_present = true, .return_code = connect_return_code::not_authorized}));
  EXPECT_EQ(decode_ok(bytes({0x20, 0x02, 0xfe, 0x00}), v3_1), packet(connack{}));
}

TEST(Decode, NonMinimalRemainingLengthIsAccepted) {
  // MQTT 3.1.1 does not require the shortest encoding (MQTT 5 does, [MQTT-1.5.5-1]).
  EXPECT_EQ(decode_ok(bytes({0xc0, 0x80, 0x00})), packet(pingreq{}));
  EXPECT_EQ(decode_ok(bytes({0x40, 0x82, 0x80, 0x80, 0x00, 0x00, 0x09})),
            packet(puback{.packet_id = 9}));
}

TEST(Decode, PasswordAndWillMessageAreBinary) {
  // Both are Binary Data (section 3.1.3), so bytes that are not UTF-8 are fine there.
  const std::string binary("\x00\xc0\xff", 3);
  const packet p = connect{.client_id = "c",
                           .will = will_message{.topic = "w", .payload = binary},
                           .username = "u",
                           .password = binary};
  EXPECT_EQ(decode_ok(encoded(p)), p);
}

TEST(Decode, PublishPayloadMayBeEmptyOrBinary) {
  const packet empty = publish{.topic = "t"};
  const packet binary = publish{.topic = "t", .payload = std::string("\x00\xff\xfe", 3)};
  EXPECT_EQ(decode_ok(encoded(empty)), empty);
  EXPECT_EQ(decode_ok(encoded(binary)), binary);
}

TEST(Decode, TopicFilterSyntaxIsLeftToTheTopicLayer) {
  // Only UTF-8 and non-emptiness are codec rules; "a/#/b" is the topic parser's to refuse.
  const packet sub = subscribe{.packet_id = 1, .subscriptions = {{.filter = "a/#/b"}}};
  const packet unsub = unsubscribe{.packet_id = 1, .filters = {"+x/#/"}};
  EXPECT_EQ(decode_ok(encoded(sub)), sub);
  EXPECT_EQ(decode_ok(encoded(unsub)), unsub);
}

TEST(Decode, PublishTopicNamesWithDollarOrEmptyLevelsDecode) {
  // Valid topic names (section 4.7); what '$' means for matching is the broker's concern.
  for (const char* topic : {"$SYS/broker", "/", "a//b", " "}) {
    const packet p = publish{.topic = topic};
    EXPECT_EQ(decode_ok(encoded(p)), p) << topic;
  }
}

TEST(Decode, Mqtt31AcceptsClientIdsLongerThan23Bytes) {
  // 3.1 asks servers to refuse them, but brokers accept them in practice, as 3.1.1 allows
  // [MQTT-3.1.3-5].
  const packet p = connect{.level = protocol_level::v3_1, .client_id = std::string(64, 'x')};
  EXPECT_EQ(decode_ok(encoded(p)), p);
}

TEST(Decode, ServerOnlyPacketsDecodeForTheClientSide) {
  // The external-broker client and test peers decode what a server sends.
  EXPECT_EQ(decode_ok(bytes({0x20, 0x02, 0x00, 0x03})),
            packet(connack{.return_code = connect_return_code::server_unavailable}));
  EXPECT_EQ(decode_ok(bytes({0x90, 0x03, 0x00, 0x07, 0x80})),
            packet(suback{.packet_id = 7, .return_codes = {suback_return_code::failure}}));
  EXPECT_EQ(decode_ok(bytes({0xb0, 0x02, 0x00, 0x07})), packet(unsuback{.packet_id = 7}));
  EXPECT_EQ(decode_ok(bytes({0xd0, 0x00})), packet(pingresp{}));
}

TEST(Packet, TypeOfFollowsTheVariantOrder) {
  EXPECT_EQ(type_of(connect{}), packet_type::connect);
  EXPECT_EQ(type_of(publish{}), packet_type::publish);
  EXPECT_EQ(type_of(unsuback{}), packet_type::unsuback);
  EXPECT_EQ(type_of(disconnect{}), packet_type::disconnect);
  EXPECT_EQ(name_of(packet_type::pubrel), "pubrel");
  EXPECT_EQ(name_of(packet_type::pingresp), "pingresp");
}

}  // namespace
}  // namespace ebus::mqtt::codec::test
