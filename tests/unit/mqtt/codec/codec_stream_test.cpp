// The decoder as a stream: input split anywhere, several packets per read, the maximum packet
// size checked before the body is buffered, sticky errors and buffer management.

#include <algorithm>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "codec_test_support.hpp"
#include "mqtt/codec/decoder.hpp"
#include "mqtt/codec/encoder.hpp"
#include "packet_vectors.hpp"

namespace ebus::mqtt::codec::test {
namespace {

// Everything decodable from what is buffered; fails the test on a decode error.
std::vector<packet> drain(decoder& dec) {
  std::vector<packet> out;
  for (;;) {
    auto r = dec.next();
    if (!r) {
      ADD_FAILURE() << r.error().message() << ": " << dec.error_detail();
      return out;
    }
    if (!*r) return out;
    out.push_back(std::move(**r));
  }
}

std::string all_valid_bytes() {
  std::string wire;
  for (const auto& v : valid_vectors())
    wire += v.bytes;
  return wire;
}

std::vector<packet> all_valid_values() {
  std::vector<packet> values;
  for (const auto& v : valid_vectors())
    values.push_back(v.value);
  return values;
}

class FeedByteByByte : public ::testing::TestWithParam<valid_vector> {};

TEST_P(FeedByteByByte, NeedsMoreBytesUntilTheLastOneArrives) {
  const valid_vector& v = GetParam();
  decoder dec;
  for (std::size_t i = 0; i + 1 < v.bytes.size(); ++i) {
    dec.feed(v.bytes.substr(i, 1));
    const auto r = dec.next();
    ASSERT_TRUE(r.has_value()) << "byte " << i << ": " << dec.error_detail();
    ASSERT_FALSE(r->has_value()) << "packet before byte " << i + 1;
  }
  dec.feed(v.bytes.substr(v.bytes.size() - 1));
  const auto r = dec.next();
  ASSERT_TRUE(r.has_value()) << dec.error_detail();
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(**r, v.value);
  EXPECT_EQ(dec.buffered(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Vectors, FeedByteByByte, ::testing::ValuesIn(valid_vectors()),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Stream, SeveralPacketsInOneFeedDecodeInOrder) {
  decoder dec;
  dec.feed(all_valid_bytes());
  EXPECT_EQ(drain(dec), all_valid_values());
  EXPECT_EQ(dec.buffered(), 0u);
}

TEST(Stream, RandomSplitsDecodeTheSameSequence) {
  const std::string wire = all_valid_bytes();
  std::mt19937 rng(20240611);  // fixed seed: failures reproduce
  for (int round = 0; round < 200; ++round) {
    decoder dec;
    std::vector<packet> got;
    std::size_t pos = 0;
    while (pos < wire.size()) {
      const std::size_t n = std::min<std::size_t>(1 + rng() % 40, wire.size() - pos);
      dec.feed(std::string_view(wire).substr(pos, n));
      pos += n;
      for (auto& p : drain(dec))
        got.push_back(std::move(p));
    }
    ASSERT_EQ(got, all_valid_values()) << "round " << round;
  }
}

TEST(Stream, PrepareAndCommitReceiveIntoTheDecoderBuffer) {
  const std::string wire = all_valid_bytes();
  decoder dec;
  std::vector<packet> got;
  std::size_t pos = 0;
  while (pos < wire.size()) {
    const std::span<char> space = dec.prepare(7);
    ASSERT_GE(space.size(), 7u);
    const std::size_t n = std::min<std::size_t>(7, wire.size() - pos);
    std::memcpy(space.data(), wire.data() + pos, n);
    dec.commit(n);
    pos += n;
    for (auto& p : drain(dec))
      got.push_back(std::move(p));
  }
  EXPECT_EQ(got, all_valid_values());
}

TEST(Stream, EmptyDecoderNeedsMoreBytes) {
  decoder dec;
  const auto r = dec.next();
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(dec.buffered(), 0u);
}

TEST(Stream, OversizedPacketFailsFromItsHeaderBeforeTheBodyIsBuffered) {
  // Remaining length 268,435,455 announced in the header; nothing of the body is sent.
  decoder dec({.max_packet_size = 1024});
  dec.feed(bytes({0x30, 0xff, 0xff, 0xff, 0x7f}));
  const auto r = dec.next();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), codec_errc::packet_too_large);
  EXPECT_LE(dec.capacity(), 4096u);  // only what the header needed
}

TEST(Stream, PacketOfExactlyTheMaximumSizeIsAccepted) {
  const std::string wire = encoded(publish{.topic = "t", .payload = std::string(100, 'p')});
  EXPECT_TRUE(decode_one(wire, {.max_packet_size = wire.size()}).has_value());
  const auto over = decode_one(wire, {.max_packet_size = wire.size() - 1});
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error(), codec_errc::packet_too_large);
}

TEST(Stream, LargestRemainingLengthWaitsForTheBody) {
  // 0xff 0xff 0xff 0x7f is the largest four-byte value (section 2.2.3), not an error.
  decoder dec;
  dec.feed(bytes({0x30, 0xff, 0xff, 0xff, 0x7f}));
  const auto r = dec.next();
  ASSERT_TRUE(r.has_value()) << dec.error_detail();
  EXPECT_FALSE(r->has_value());
}

TEST(Stream, WrongFixedSizeFailsFromTheHeaderAlone) {
  decoder dec;
  dec.feed(bytes({0x40, 0x05}));  // PUBACK announcing 5 bytes; none sent
  const auto r = dec.next();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), codec_errc::malformed_packet);
}

TEST(Stream, FifthLengthByteIsNotAwaited) {
  decoder dec;
  dec.feed(bytes({0x30, 0x80, 0x80, 0x80, 0x80}));  // four continuation bits, section 2.2.3
  const auto r = dec.next();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), codec_errc::malformed_packet);
}

TEST(Stream, ErrorIsStickyEvenWhenValidBytesFollow) {
  decoder dec;
  dec.feed(bytes({0x00, 0x00}));  // reserved type 0
  const auto first = dec.next();
  ASSERT_FALSE(first.has_value());
  dec.feed(bytes({0xc0, 0x00}));
  const auto second = dec.next();
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error(), first.error());
  EXPECT_EQ(dec.error_detail(), "packet type 0 or 15 is reserved (section 2.2.1)");
}

TEST(Stream, PacketsBeforeAnErrorAreStillDelivered) {
  decoder dec;
  dec.feed(bytes({0xc0, 0x00, 0xd0, 0x00, 0xf0, 0x00}));  // PINGREQ, PINGRESP, type 15
  ASSERT_EQ(dec.next().value(), std::optional<packet>(pingreq{}));
  ASSERT_EQ(dec.next().value(), std::optional<packet>(pingresp{}));
  EXPECT_EQ(dec.next().error(), codec_errc::malformed_packet);
}

TEST(Stream, BufferStaysSmallWhileManyPacketsStreamThrough) {
  // Consumed bytes are dropped lazily; a long stream of small packets must not grow the buffer.
  std::string wire;
  for (int i = 1; i <= 5000; ++i) {
    encode(publish{.topic = "sensors/t",
                   .payload = std::to_string(i),
                   .qos = qos_level::at_least_once,
                   .packet_id = static_cast<std::uint16_t>(i)},
           wire);
  }
  decoder dec;
  std::size_t decoded = 0;
  for (std::size_t pos = 0; pos < wire.size(); pos += 1000) {
    const std::size_t n = std::min<std::size_t>(1000, wire.size() - pos);
    const std::span<char> space = dec.prepare(1000);
    std::memcpy(space.data(), wire.data() + pos, n);
    dec.commit(n);
    decoded += drain(dec).size();
  }
  EXPECT_EQ(decoded, 5000u);
  EXPECT_LE(dec.capacity(), 4096u);
}

TEST(Stream, AnnouncedSizeAloneAllocatesNothing) {
  // A header announcing 200 MiB within the limit must not cost 200 MiB before the body arrives.
  decoder dec;
  dec.feed(bytes({0x30, 0x80, 0x80, 0x80, 0x64}));  // remaining length 100 * 2^21 (200 MiB)
  ASSERT_FALSE(dec.next().value().has_value());
  (void)dec.prepare(16);
  EXPECT_LE(dec.capacity(), 4096u);
}

TEST(Stream, LargePacketBufferGrowsWithTheBytesReceivedUpToThePacketSize) {
  const std::string wire = encoded(publish{.topic = "t", .payload = std::string(1 << 20, 'z')});
  decoder dec;
  for (std::size_t pos = 0; pos < wire.size(); pos += 65'536) {
    dec.feed(std::string_view(wire).substr(pos, 65'536));
    if (pos + 65'536 < wire.size()) {
      ASSERT_FALSE(dec.next().value().has_value());
      EXPECT_LE(dec.capacity(), 2 * (pos + 65'536));
    }
  }
  EXPECT_LE(dec.capacity(), wire.size() + 65'536);
  const auto r = dec.next();
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(std::get<publish>(**r).payload.size(), std::size_t{1} << 20);
}

TEST(Stream, LargeBufferIsReleasedOnceDrained) {
  decoder dec;
  dec.feed(encoded(publish{.topic = "t", .payload = std::string(1 << 20, 'z')}));
  ASSERT_TRUE(dec.next().value().has_value());
  EXPECT_GT(dec.capacity(), std::size_t{1} << 20);
  (void)dec.prepare(512);
  EXPECT_LE(dec.capacity(), 4096u);
}

}  // namespace
}  // namespace ebus::mqtt::codec::test

namespace ebus::mqtt::codec::test {
namespace {

// all_valid_bytes() into a fresh decoder, 50 times, in reads of 1 to 97 bytes at random;
// `read(dec, bytes)` hands one read to the decoder and returns what it decoded. Every round must
// decode all_valid_values() and leave nothing buffered.
template <class Read>
void expect_any_split_decodes_all(unsigned seed, Read read) {
  const std::string wire = all_valid_bytes();
  std::mt19937 rng(seed);
  for (int round = 0; round < 50; ++round) {
    decoder dec;
    std::vector<packet> got;
    for (std::size_t at = 0; at < wire.size();) {
      const std::size_t n = std::min<std::size_t>(1 + rng() % 97, wire.size() - at);
      auto more = read(dec, std::string_view(wire).substr(at, n));
      std::move(more.begin(), more.end(), std::back_inserter(got));
      at += n;
    }
    ASSERT_EQ(got, all_valid_values()) << "round " << round;
    EXPECT_EQ(dec.buffered(), 0U);
  }
}

// A connection reading into a buffer shared by all connections: borrow() what one read
// returned, decode, keep_rest() before the buffer is reused (here: overwritten).
TEST(DecoderBorrow, SplitAnywhereDecodesTheSamePacketsAsFeed) {
  std::string shared;
  expect_any_split_decodes_all(7, [&](decoder& dec, std::string_view bytes) {
    if (dec.buffered() != 0) {
      dec.feed(bytes);
      return drain(dec);
    }
    dec.release();
    shared.assign(bytes);
    dec.borrow(shared);
    auto got = drain(dec);
    dec.keep_rest();
    shared.assign(shared.size(), '\xff');  // the next connection's bytes
    return got;
  });
}

// The broker's reader: the start of an unfinished packet (pending()) is copied in front of the
// next read into the shared buffer, and the whole is borrowed again.
TEST(DecoderBorrow, APendingStartCopiedInFrontOfTheNextReadDecodesTheSamePackets) {
  std::string shared;
  expect_any_split_decodes_all(11, [&](decoder& dec, std::string_view bytes) {
    shared.assign(dec.pending());
    shared.append(bytes);
    dec.borrow(shared);
    auto got = drain(dec);
    dec.keep_rest();
    EXPECT_EQ(dec.pending(), std::string_view(shared).substr(shared.size() - dec.buffered()));
    shared.assign(shared.size(), '\xff');  // the next connection's bytes
    return got;
  });
}

TEST(DecoderBorrow, OnlyTheUnfinishedPacketIsCopied) {
  const std::string first = valid_vectors().front().bytes;
  std::string shared = first + first.substr(0, first.size() - 1);
  decoder dec;
  dec.borrow(shared);
  EXPECT_EQ(dec.capacity(), 0U);  // decoding from the borrowed bytes
  ASSERT_EQ(drain(dec).size(), 1U);
  dec.keep_rest();
  shared.assign(shared.size(), '\0');
  EXPECT_EQ(dec.buffered(), first.size() - 1);
  EXPECT_GT(dec.capacity(), 0U);
  dec.feed(first.substr(first.size() - 1));
  const auto r = dec.next();
  ASSERT_TRUE(r.has_value() && r->has_value());
  EXPECT_EQ(**r, valid_vectors().front().value);
}

TEST(DecoderBorrow, ReleaseFreesAnEmptyBufferOnly) {
  decoder dec;
  const std::string p = valid_vectors().front().bytes;
  dec.feed(p.substr(0, 1));
  dec.release();  // a packet's start is buffered: kept
  EXPECT_GT(dec.capacity(), 0U);
  dec.feed(p.substr(1));
  ASSERT_EQ(drain(dec).size(), 1U);
  dec.release();
  EXPECT_EQ(dec.capacity(), 0U);
  dec.feed(p);  // usable again
  EXPECT_EQ(drain(dec).size(), 1U);
}

TEST(DecoderBorrow, AnOversizedPacketIsRefusedFromBorrowedBytesToo) {
  decoder dec({.max_packet_size = 16});
  std::string big;
  encode_publish(big, "t", std::string(64, 'x'), qos_level::at_most_once, false, false, 0);
  dec.borrow(big);
  const auto r = dec.next();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), make_error_code(codec_errc::packet_too_large));
  dec.keep_rest();
}

}  // namespace
}  // namespace ebus::mqtt::codec::test
