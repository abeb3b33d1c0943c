// MQTT UTF-8 strings (section 1.5.3): well-formed UTF-8 [MQTT-1.5.3-1] without U+0000
// [MQTT-1.5.3-2], at most 65535 bytes.

#include "mqtt/codec/utf8.hpp"

#include <string>

#include <gtest/gtest.h>

#include "codec_test_support.hpp"

namespace ebus::mqtt::codec::test {
namespace {

TEST(Utf8, AcceptsEmptyAsciiAndMultiByteCharacters) {
  EXPECT_TRUE(is_mqtt_utf8(""));
  EXPECT_TRUE(is_mqtt_utf8("sensors/temperature"));
  EXPECT_TRUE(is_mqtt_utf8("\xc2\xa9"));                          // U+00A9, 2 bytes
  EXPECT_TRUE(is_mqtt_utf8("\xe6\xb8\xa9"));                      // U+6E29, 3 bytes
  EXPECT_TRUE(is_mqtt_utf8("\xf0\x9f\x98\x80"));                  // U+1F600, 4 bytes
  EXPECT_TRUE(is_mqtt_utf8("a/\xc3\xa9t\xc3\xa9/\xe2\x82\xac"));  // mixed
}

TEST(Utf8, AcceptsTheBoundaryCodePoints) {
  EXPECT_TRUE(is_mqtt_utf8("\x01"));              // U+0001
  EXPECT_TRUE(is_mqtt_utf8("\x7f"));              // U+007F
  EXPECT_TRUE(is_mqtt_utf8("\xc2\x80"));          // U+0080
  EXPECT_TRUE(is_mqtt_utf8("\xdf\xbf"));          // U+07FF
  EXPECT_TRUE(is_mqtt_utf8("\xe0\xa0\x80"));      // U+0800
  EXPECT_TRUE(is_mqtt_utf8("\xed\x9f\xbf"));      // U+D7FF, just below the surrogates
  EXPECT_TRUE(is_mqtt_utf8("\xee\x80\x80"));      // U+E000, just above them
  EXPECT_TRUE(is_mqtt_utf8("\xef\xbf\xbf"));      // U+FFFF
  EXPECT_TRUE(is_mqtt_utf8("\xf0\x90\x80\x80"));  // U+10000
  EXPECT_TRUE(is_mqtt_utf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
}

TEST(Utf8, AcceptsZeroWidthNoBreakSpace) {
  // [MQTT-1.5.3-3]: U+FEFF is a character like any other and must not be stripped.
  EXPECT_TRUE(
      is_mqtt_utf8("\xef\xbb\xbf"
                   "a"));
}

TEST(Utf8, RejectsNullCharacter) {
  // [MQTT-1.5.3-2], both in the byte-wise path and inside an ASCII word.
  EXPECT_FALSE(is_mqtt_utf8(std::string("\0", 1)));
  EXPECT_FALSE(is_mqtt_utf8(std::string("abc\0", 4)));
  EXPECT_FALSE(is_mqtt_utf8(std::string("abcdefghijk\0mnopqrstu", 21)));
}

TEST(Utf8, RejectsOverlongEncodings) {
  // [MQTT-1.5.3-1] "well-formed": the shortest form only.
  EXPECT_FALSE(is_mqtt_utf8("\xc0\x80"));          // U+0000 in 2 bytes
  EXPECT_FALSE(is_mqtt_utf8("\xc1\xbf"));          // U+007F in 2 bytes
  EXPECT_FALSE(is_mqtt_utf8("\xe0\x80\x80"));      // U+0000 in 3 bytes
  EXPECT_FALSE(is_mqtt_utf8("\xe0\x9f\xbf"));      // U+07FF in 3 bytes
  EXPECT_FALSE(is_mqtt_utf8("\xf0\x80\x80\x80"));  // U+0000 in 4 bytes
  EXPECT_FALSE(is_mqtt_utf8("\xf0\x8f\xbf\xbf"));  // U+FFFF in 4 bytes
}

TEST(Utf8, RejectsSurrogates) {
  // [MQTT-1.5.3-1]: "MUST NOT include encodings of code points between U+D800 and U+DFFF".
  EXPECT_FALSE(is_mqtt_utf8("\xed\xa0\x80"));              // U+D800
  EXPECT_FALSE(is_mqtt_utf8("\xed\xbf\xbf"));              // U+DFFF
  EXPECT_FALSE(is_mqtt_utf8("\xed\xa0\xbd\xed\xb8\x80"));  // a CESU-8 surrogate pair
}

TEST(Utf8, RejectsCodePointsAboveUnicodeAndInvalidLeadBytes) {
  EXPECT_FALSE(is_mqtt_utf8("\xf4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(is_mqtt_utf8("\xf5\x80\x80\x80"));
  EXPECT_FALSE(is_mqtt_utf8("\xf8\x88\x80\x80\x80"));
  EXPECT_FALSE(is_mqtt_utf8("\xfe"));
  EXPECT_FALSE(is_mqtt_utf8("\xff"));
}

TEST(Utf8, RejectsBrokenSequences) {
  EXPECT_FALSE(is_mqtt_utf8("\x80"));  // lone continuation byte
  EXPECT_FALSE(
      is_mqtt_utf8("a\xbf"
                   "b"));                      // continuation byte after ASCII
  EXPECT_FALSE(is_mqtt_utf8("\xc3"));          // lead byte at the end
  EXPECT_FALSE(is_mqtt_utf8("\xe6\xb8"));      // 3-byte sequence cut short
  EXPECT_FALSE(is_mqtt_utf8("\xf0\x9f\x98"));  // 4-byte sequence cut short
  EXPECT_FALSE(
      is_mqtt_utf8("\xc3"
                   "a"));                          // ASCII where a continuation belongs
  EXPECT_FALSE(is_mqtt_utf8("\xe6\xb8\x41"));      // third byte not a continuation
  EXPECT_FALSE(is_mqtt_utf8("\xf0\x9f\x98\xc0"));  // fourth byte not a continuation
}

TEST(Utf8, ChecksBytesAfterALongAsciiRun) {
  EXPECT_TRUE(is_mqtt_utf8("0123456789abcdef\xc3\xa9"));
  EXPECT_FALSE(is_mqtt_utf8("0123456789abcdef\xc3"));
  EXPECT_FALSE(
      is_mqtt_utf8("01234567\xff"
                   "89abcdef"));
}

TEST(Utf8, MqttStringIsAtMost65535Bytes) {
  EXPECT_TRUE(is_mqtt_string(std::string(65'535, 'a')));
  EXPECT_FALSE(is_mqtt_string(std::string(65'536, 'a')));
  EXPECT_FALSE(is_mqtt_string(std::string("a\0", 2)));
}

}  // namespace
}  // namespace ebus::mqtt::codec::test
