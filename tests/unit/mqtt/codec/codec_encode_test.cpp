// Encoding: every vector's value encodes to its bytes, and bytes -> decode -> encode gives the same
// bytes on both protocol levels. The Remaining Length boundaries are those of section 2.2.3.

#include <string>
#include <sys/mman.h>

#include <gtest/gtest.h>

#include "codec_test_support.hpp"
#include "mqtt/codec/encoder.hpp"
#include "mqtt/codec/utf8.hpp"
#include "packet_vectors.hpp"

namespace ebus::mqtt::codec::test {
namespace {

class EncodeValid : public ::testing::TestWithParam<valid_vector> {};

TEST_P(EncodeValid, EncodesToTheVectorBytes) {
  const valid_vector& v = GetParam();
  EXPECT_EQ(hex(encoded(v.value)), hex(v.bytes));
  EXPECT_EQ(encoded_size(v.value), v.bytes.size());
  EXPECT_EQ(remaining_length(v.value), v.bytes.size() - 2);  // all vectors have 1 length byte
}

TEST_P(EncodeValid, RoundTripsBytesThroughDecodeAndEncodeOnBothProtocolLevels) {
  const valid_vector& v = GetParam();
  for (const auto level : {protocol_level::v3_1_1, protocol_level::v3_1}) {
    SCOPED_TRACE(static_cast<int>(level));
    const auto decoded = decode_one(v.bytes, {.level = level});
    ASSERT_TRUE(decoded.has_value());
    ASSERT_TRUE(decoded->has_value());
    EXPECT_EQ(hex(encoded(**decoded)), hex(v.bytes));
  }
}

INSTANTIATE_TEST_SUITE_P(Vectors, EncodeValid, ::testing::ValuesIn(valid_vectors()),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Encode, AppendsToWhatIsAlreadyInTheOutput) {
  std::string out = "prefix";
  encode(pingreq{}, out);
  encode(puback{.packet_id = 0x0102}, out);
  EXPECT_EQ(out, "prefix" + bytes({0xc0, 0x00, 0x40, 0x02, 0x01, 0x02}));
}

TEST(Encode, PerTypeOverloadMatchesTheVariantOverload) {
  const publish p{.topic = "a", .payload = "b", .qos = qos_level::at_least_once, .packet_id = 3};
  std::string by_type;
  std::string by_variant;
  encode(p, by_type);
  encode(packet(p), by_variant);
  EXPECT_EQ(by_type, by_variant);
}

struct length_case {
  std::size_t remaining;
  std::string length_bytes;  // the encoding given in section 2.2.3's table
};

class RemainingLength : public ::testing::TestWithParam<length_case> {};

TEST_P(RemainingLength, BoundaryValuesEncodeAsTheSpecificationTableAndRoundTrip) {
  const auto& c = GetParam();
  // PUBLISH QoS 0 with a 1-byte topic: remaining length = 2 + 1 + payload.
  const packet p = publish{.topic = "t", .payload = std::string(c.remaining - 3, 'x')};
  const std::string wire = encoded(p);
  EXPECT_EQ(hex(wire.substr(1, c.length_bytes.size())), hex(c.length_bytes));
  EXPECT_EQ(wire.size(), 1 + c.length_bytes.size() + c.remaining);
  EXPECT_EQ(encoded_size(p), wire.size());
  const auto decoded = decode_one(wire);
  ASSERT_TRUE(decoded.has_value());
  ASSERT_TRUE(decoded->has_value());
  EXPECT_TRUE(**decoded == p);
}

INSTANTIATE_TEST_SUITE_P(Boundaries, RemainingLength,
                         ::testing::Values(length_case{3, bytes({0x03})},
                                           length_case{127, bytes({0x7f})},
                                           length_case{128, bytes({0x80, 0x01})},
                                           length_case{16'383, bytes({0xff, 0x7f})},
                                           length_case{16'384, bytes({0x80, 0x80, 0x01})},
                                           length_case{2'097'151, bytes({0xff, 0xff, 0x7f})},
                                           length_case{2'097'152, bytes({0x80, 0x80, 0x80, 0x01})}),
                         [](const auto& param_info) {
                           return "remaining_" + std::to_string(param_info.param.remaining);
                         });

TEST(Encode, ZeroRemainingLengthIsOneByte) {
  EXPECT_EQ(encoded(disconnect{}), bytes({0xe0, 0x00}));
  EXPECT_EQ(encoded_size(disconnect{}), 2u);
}

TEST(Encode, ConnectWritesTheProtocolNameOfItsLevel) {
  const std::string v4 = encoded(connect{.level = protocol_level::v3_1_1, .client_id = "c"});
  const std::string v3 = encoded(connect{.level = protocol_level::v3_1, .client_id = "c"});
  EXPECT_EQ(v4.substr(2, 7), bytes({0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04}));
  EXPECT_EQ(v3.substr(2, 9), bytes({0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03}));
}

TEST(Encode, ConnectFlagsFollowThePresentFields) {
  // Byte 10 of a CONNECT with "MQTT" is the connect flags byte (section 3.1.2.3).
  const auto flags = [](const connect& c) { return static_cast<unsigned char>(encoded(c)[9]); };
  EXPECT_EQ(flags(connect{.clean_session = false, .client_id = "c"}), 0x00);
  EXPECT_EQ(flags(connect{.client_id = "c"}), 0x02);
  EXPECT_EQ(flags(connect{.client_id = "c", .username = "u"}), 0x82);
  EXPECT_EQ(flags(connect{.client_id = "c", .username = "u", .password = "p"}), 0xc2);
  EXPECT_EQ(flags(connect{.client_id = "c",
                          .will = will_message{.topic = "w", .qos = qos_level::exactly_once}}),
            0x16);
  EXPECT_EQ(flags(connect{.client_id = "c", .will = will_message{.topic = "w", .retain = true}}),
            0x26);
}

TEST(codec_encode, publish_size_is_what_encode_publish_appends) {
  // Remaining Length boundaries of one to four bytes, with and without a packet identifier.
  for (const std::size_t payload :
       {0UL, 1UL, 120UL, 123UL, 124UL, 16000UL, 16380UL, 16381UL, 2'097'000UL, 2'097'200UL}) {
    for (const auto qos : {qos_level::at_most_once, qos_level::at_least_once}) {
      std::string out;
      encode_publish(out, "a/b", std::string(payload, 'x'), qos, false, false,
                     qos == qos_level::at_most_once ? 0 : 1);
      EXPECT_EQ(publish_size(3, payload, qos), out.size())
          << payload << " bytes at QoS " << static_cast<int>(qos);
    }
  }
}

// Read-only zero pages that cost no memory until read: a payload as large as MQTT allows (and one
// byte more) without allocating it.
class zero_pages {
 public:
  explicit zero_pages(std::size_t size)
      : size_(size),
        data_(
            ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)) {}
  zero_pages(const zero_pages&) = delete;
  zero_pages& operator=(const zero_pages&) = delete;
  ~zero_pages() {
    if (data_ != MAP_FAILED) ::munmap(data_, size_);
  }
  [[nodiscard]] bool ok() const { return data_ != MAP_FAILED; }
  [[nodiscard]] std::string_view view(std::size_t n) const {
    return {static_cast<const char*>(data_), n};
  }

 private:
  std::size_t size_;
  void* data_;
};

TEST(codec_encode, a_publish_over_the_largest_remaining_length_is_refused_and_appends_nothing) {
  const zero_pages pages(max_remaining_length + 1);
  ASSERT_TRUE(pages.ok());
  // QoS 1, topic "t": Remaining Length = 2 + 1 + 2 + payload.
  const std::size_t largest_payload = max_remaining_length - 5;
  std::string out = "prefix";
  EXPECT_FALSE(encode_publish(out, "t", pages.view(largest_payload + 1), qos_level::at_least_once,
                              false, false, 1));
  EXPECT_EQ(out, "prefix");
  EXPECT_GT(publish_size(1, largest_payload + 1, qos_level::at_least_once), max_packet_size_limit);

  // The largest one that fits is written, with the four-byte maximum Remaining Length.
  ASSERT_TRUE(encode_publish(out, "t", pages.view(largest_payload), qos_level::at_least_once, false,
                             false, 1));
  EXPECT_EQ(out.size(), 6 + max_packet_size_limit);
  EXPECT_EQ(publish_size(1, largest_payload, qos_level::at_least_once), max_packet_size_limit);
  EXPECT_EQ(hex(out.substr(6, 5)), hex(bytes({0x32, 0xff, 0xff, 0xff, 0x7f})));
}

TEST(codec_encode, fields_over_65535_bytes_and_bad_packet_ids_are_refused) {
  const std::string long_field(max_string_length + 1, 'x');
  std::string out;
  EXPECT_FALSE(encode(publish{.topic = long_field}, out));
  EXPECT_FALSE(encode(connect{.client_id = long_field}, out));
  EXPECT_FALSE(encode(connect{.client_id = "c", .username = long_field}, out));
  EXPECT_FALSE(encode(
      connect{.client_id = "c", .will = will_message{.topic = "w", .payload = long_field}}, out));
  EXPECT_FALSE(encode(subscribe{.packet_id = 1, .subscriptions = {{.filter = long_field}}}, out));
  EXPECT_FALSE(encode(unsubscribe{.packet_id = 1, .filters = {long_field}}, out));
  EXPECT_FALSE(encode(subscribe{.packet_id = 1}, out));  // no entries
  EXPECT_FALSE(encode(
      suback{.packet_id = 0, .return_codes = {suback_return_code::success_maximum_qos_0}}, out));
  EXPECT_FALSE(encode(puback{.packet_id = 0}, out));
  EXPECT_FALSE(encode(pubrel{.packet_id = 0}, out));
  EXPECT_FALSE(encode(publish{.topic = "t", .qos = qos_level::at_least_once}, out));  // no id
  EXPECT_FALSE(encode(publish{.topic = "t", .packet_id = 7}, out));  // an id at QoS 0
  EXPECT_EQ(out, "");
  EXPECT_TRUE(encode(packet(publish{.topic = std::string(max_string_length, 'x')}), out));
  EXPECT_EQ(out.size(), 1 + 3 + 2 + max_string_length);  // a three-byte Remaining Length
}

}  // namespace
}  // namespace ebus::mqtt::codec::test
