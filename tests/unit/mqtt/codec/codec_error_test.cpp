// Decode errors: one test per broken rule (packet_vectors.hpp names each rule and its statement
// id), plus the error category.

#include "mqtt/codec/codec_error.hpp"

#include <string>
#include <system_error>

#include <gtest/gtest.h>

#include "codec_test_support.hpp"
#include "mqtt/codec/decoder.hpp"
#include "packet_vectors.hpp"

namespace ebus::mqtt::codec::test {
namespace {

class DecodeError : public ::testing::TestWithParam<error_vector> {};

TEST_P(DecodeError, FailsWithTheCodeAndRuleOfTheVector) {
  const error_vector& v = GetParam();
  decoder dec({.max_packet_size = v.max_packet_size, .level = v.level});
  dec.feed(v.bytes);
  const auto r = dec.next();
  ASSERT_FALSE(r.has_value()) << "decoded " << hex(v.bytes);
  EXPECT_EQ(r.error(), v.error) << r.error().message();
  EXPECT_EQ(dec.error_detail(), v.detail);
}

TEST_P(DecodeError, FailsTheSameWayWhenFedOneByteAtATime) {
  const error_vector& v = GetParam();
  decoder dec({.max_packet_size = v.max_packet_size, .level = v.level});
  decode_result r = std::optional<packet>{};
  for (const char c : v.bytes) {
    dec.feed(std::string_view(&c, 1));
    r = dec.next();
    if (!r) break;
    ASSERT_FALSE(r->has_value()) << "decoded a packet before the error";
  }
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), v.error);
  EXPECT_EQ(dec.error_detail(), v.detail);
}

INSTANTIATE_TEST_SUITE_P(Rules, DecodeError, ::testing::ValuesIn(error_vectors()),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(CodecError, EnumValuesAreTheMqtt5ReasonCodes) {
  EXPECT_EQ(static_cast<int>(codec_errc::malformed_packet), 0x81);
  EXPECT_EQ(static_cast<int>(codec_errc::protocol_error), 0x82);
  EXPECT_EQ(static_cast<int>(codec_errc::unacceptable_protocol_version), 0x84);
  EXPECT_EQ(static_cast<int>(codec_errc::identifier_rejected), 0x85);
  EXPECT_EQ(static_cast<int>(codec_errc::topic_filter_invalid), 0x8f);
  EXPECT_EQ(static_cast<int>(codec_errc::topic_name_invalid), 0x90);
  EXPECT_EQ(static_cast<int>(codec_errc::packet_too_large), 0x95);
}

TEST(CodecError, ConvertsToStdErrorCodeOfTheCodecCategory) {
  const std::error_code ec = codec_errc::packet_too_large;
  EXPECT_EQ(&ec.category(), &codec_category());
  EXPECT_EQ(ec.value(), 0x95);
  EXPECT_STREQ(ec.category().name(), "mqtt.codec");
  EXPECT_EQ(ec.message(), "packet too large");
  EXPECT_TRUE(ec == codec_errc::packet_too_large);
  EXPECT_FALSE(ec == codec_errc::malformed_packet);
  EXPECT_FALSE(ec == std::errc::message_size);
}

TEST(CodecError, EveryValueHasItsOwnMessage) {
  EXPECT_EQ(make_error_code(codec_errc::malformed_packet).message(), "malformed packet");
  EXPECT_EQ(make_error_code(codec_errc::protocol_error).message(), "protocol error");
  EXPECT_EQ(make_error_code(codec_errc::unacceptable_protocol_version).message(),
            "unacceptable protocol version");
  EXPECT_EQ(make_error_code(codec_errc::identifier_rejected).message(),
            "client identifier rejected");
  EXPECT_EQ(make_error_code(codec_errc::topic_filter_invalid).message(), "topic filter invalid");
  EXPECT_EQ(make_error_code(codec_errc::topic_name_invalid).message(), "topic name invalid");
  EXPECT_EQ(std::error_code(0x42, codec_category()).message(), "unknown mqtt codec error");
}

}  // namespace
}  // namespace ebus::mqtt::codec::test
