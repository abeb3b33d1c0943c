// Allocation budget of the hot path: decoding a PUBLISH allocates its topic and payload strings
// and nothing else. This file replaces the global operator new to count allocations; the count is
// only read around the code under test.

#include <cstddef>
#include <cstdlib>
#include <new>
#include <string>

#include <gtest/gtest.h>

#include "codec_test_support.hpp"
#include "mqtt/codec/decoder.hpp"

namespace {
std::size_t allocation_count = 0;
}  // namespace

void* operator new(std::size_t size) {
  ++allocation_count;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}

void operator delete(void* p) noexcept {
  std::free(p);
}

void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace ebus::mqtt::codec::test {
namespace {

// Decodes `wire` with a decoder whose buffer already holds it; returns the allocations next()
// made.
std::size_t allocations_to_decode(const std::string& wire) {
  decoder dec;
  dec.feed(wire);
  const std::size_t before = allocation_count;
  auto r = dec.next();
  const std::size_t made = allocation_count - before;
  EXPECT_TRUE(r.has_value() && r->has_value()) << dec.error_detail();
  return made;
}

TEST(Allocations, PublishWithLongTopicAndPayloadAllocatesTwoStrings) {
  const std::string topic(40, 't');  // longer than any small-string buffer
  EXPECT_EQ(allocations_to_decode(encoded(publish{.topic = topic,
                                                  .payload = std::string(300, 'p'),
                                                  .qos = qos_level::at_least_once,
                                                  .packet_id = 1})),
            2u);
}

TEST(Allocations, PublishWithShortTopicAllocatesOnlyThePayload) {
  EXPECT_EQ(
      allocations_to_decode(encoded(publish{.topic = "a/b", .payload = std::string(300, 'p')})),
      1u);
}

TEST(Allocations, AcknowledgementsAndPingsAllocateNothing) {
  EXPECT_EQ(allocations_to_decode(encoded(puback{.packet_id = 1})), 0u);
  EXPECT_EQ(allocations_to_decode(encoded(pubrel{.packet_id = 1})), 0u);
  EXPECT_EQ(allocations_to_decode(encoded(pingreq{})), 0u);
}

TEST(Allocations, SteadyStreamReusesTheReceiveBuffer) {
  // Once the buffer has its size, receiving and decoding QoS 0 PUBLISHes with short topics
  // allocates only their payloads.
  std::string one;
  encode(publish{.topic = "s/t", .payload = std::string(64, 'x')}, one);
  decoder dec;
  dec.feed(one);
  ASSERT_TRUE(dec.next().value().has_value());
  const std::size_t before = allocation_count;
  for (int i = 0; i < 100; ++i) {
    dec.feed(one);
    ASSERT_TRUE(dec.next().value().has_value());
  }
  EXPECT_EQ(allocation_count - before, 100u);
}

}  // namespace
}  // namespace ebus::mqtt::codec::test
