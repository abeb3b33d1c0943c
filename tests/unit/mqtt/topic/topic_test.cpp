#include "mqtt/topic/topic.hpp"

#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace ebus::mqtt::topic {
namespace {

using namespace std::literals;

std::error_code name_error(std::string_view text) {
  const auto name = parse_name(text);
  return name ? std::error_code{} : name.error();
}

std::error_code filter_error(std::string_view text) {
  const auto filter = parse_filter(text);
  return filter ? std::error_code{} : filter.error();
}

// --- encoding rules shared by names and filters -------------------------------------------------

TEST(topic_validation, empty_is_rejected) {
  // [MQTT-4.7.3-1] at least one character long
  EXPECT_EQ(name_error(""), topic_errc::empty);
  EXPECT_EQ(filter_error(""), topic_errc::empty);
}

TEST(topic_validation, up_to_65535_bytes_is_accepted_and_longer_is_rejected) {
  // [MQTT-4.7.3-3] encodes to at most 65,535 bytes
  const std::string longest(max_topic_length, 'a');
  EXPECT_FALSE(name_error(longest));
  EXPECT_FALSE(filter_error(longest));
  EXPECT_EQ(name_error(longest + "a"), topic_errc::too_long);
  EXPECT_EQ(filter_error(longest + "a"), topic_errc::too_long);
}

TEST(topic_validation, length_limit_counts_bytes_not_characters) {
  // 21,845 three-byte characters are 65,535 bytes; one more byte is too many [MQTT-4.7.3-3].
  std::string text;
  for (int i = 0; i < 21845; ++i) {
    text += "\xE2\x82\xAC";  // U+20AC
    EXPECT_FALSE(name_error(text));
  }
  EXPECT_EQ(name_error(text + "a"), topic_errc::too_long);
}

TEST(topic_validation, nul_character_is_rejected) {
  // [MQTT-4.7.3-2][MQTT-1.5.3-2]
  EXPECT_EQ(name_error("a\0b"s), topic_errc::contains_nul);
  EXPECT_EQ(filter_error("a/\0"s), topic_errc::contains_nul);
  EXPECT_EQ(name_error("\0"s), topic_errc::contains_nul);
}

TEST(topic_validation, well_formed_multibyte_utf8_is_accepted) {
  EXPECT_FALSE(name_error("caf\xC3\xA9"));                   // U+00E9, 2 bytes
  EXPECT_FALSE(name_error("\xE0\xA0\x80"));                  // U+0800, smallest 3-byte form
  EXPECT_FALSE(name_error("\xED\x9F\xBF"));                  // U+D7FF, just below the surrogates
  EXPECT_FALSE(name_error("\xEE\x80\x80"));                  // U+E000, just above the surrogates
  EXPECT_FALSE(name_error("\xEF\xBB\xBF/x"));                // U+FEFF is kept, not stripped
  EXPECT_FALSE(name_error("\xF0\x90\x80\x80"));              // U+10000, smallest 4-byte form
  EXPECT_FALSE(name_error("\xF4\x8F\xBF\xBF"));              // U+10FFFF, largest code point
  EXPECT_FALSE(filter_error("\xE6\xB8\xA9\xE5\xBA\xA6/+"));  // "温度/+"
}

TEST(topic_validation, control_characters_other_than_nul_are_accepted) {
  // Section 1.5.3 only discourages U+0001..U+001F and U+007F..U+009F; they are not malformed.
  EXPECT_FALSE(name_error("a\x01\x1F\x7F"));
  EXPECT_FALSE(name_error("\xC2\x80\xC2\x9F"));
}

TEST(topic_validation, ill_formed_utf8_is_rejected) {
  // [MQTT-1.5.3-1] well-formed UTF-8 as defined by RFC 3629
  for (const std::string_view bad : {
           "\x80"sv,              // lone continuation byte
           "a\xBF"sv,             // continuation byte after ASCII
           "\xC0\x80"sv,          // overlong U+0000
           "\xC1\xBF"sv,          // overlong U+007F
           "\xC3"sv,              // truncated 2-byte form
           "\xC3/"sv,             // 2-byte form cut by '/'
           "\xE0\x80\x80"sv,      // overlong 3-byte form
           "\xE0\x9F\xBF"sv,      // overlong U+07FF
           "\xE2\x82"sv,          // truncated 3-byte form
           "\xED\xA0\x80"sv,      // U+D800, a surrogate
           "\xED\xBF\xBF"sv,      // U+DFFF, a surrogate
           "\xF0\x80\x80\x80"sv,  // overlong 4-byte form
           "\xF0\x8F\xBF\xBF"sv,  // overlong U+FFFF
           "\xF4\x90\x80\x80"sv,  // U+110000, above the last code point
           "\xF5\x80\x80\x80"sv,  // lead byte that cannot occur
           "\xF0\x90\x80"sv,      // truncated 4-byte form
           "\xF0\x90\x80/"sv,     // 4-byte form cut by '/'
           "\xFF"sv,              // never valid
       }) {
    EXPECT_EQ(name_error(bad), topic_errc::invalid_utf8) << testing::PrintToString(bad);
    EXPECT_EQ(filter_error(bad), topic_errc::invalid_utf8) << testing::PrintToString(bad);
  }
}

TEST(topic_validation, encoding_errors_are_reported_before_wildcard_errors) {
  EXPECT_EQ(name_error("+/\xFF"), topic_errc::invalid_utf8);
  EXPECT_EQ(filter_error("#/\0"s), topic_errc::contains_nul);
}

// --- topic names --------------------------------------------------------------------------------

TEST(topic_name, wildcards_are_rejected) {
  // [MQTT-3.3.2-2] the Topic Name in PUBLISH must not contain wildcard characters
  for (const std::string_view bad : {"+", "#", "a/+", "a/#", "a+b", "sport/ten#nis", "+/+"}) {
    EXPECT_EQ(name_error(bad), topic_errc::wildcard_in_name) << bad;
  }
}

TEST(topic_name, empty_levels_and_dollar_names_are_valid) {
  for (const std::string_view good : {"/", "//", "a//b", "/a", "a/", "$SYS/uptime", "$", " "}) {
    const auto name = parse_name(good);
    ASSERT_TRUE(name) << good;
    EXPECT_EQ(name->str(), good);
  }
}

// --- topic filters ------------------------------------------------------------------------------

TEST(topic_filter, hash_alone_or_last_after_a_separator_is_valid) {
  // [MQTT-4.7.1-2]
  for (const std::string_view good : {"#", "a/#", "a/b/#", "/#", "//#", "+/#", "$SYS/#"}) {
    const auto filter = parse_filter(good);
    ASSERT_TRUE(filter) << good;
    EXPECT_EQ(filter->str(), good);
  }
}

TEST(topic_filter, hash_anywhere_else_is_rejected) {
  // [MQTT-4.7.1-2] on its own or after a separator, and the last character
  for (const std::string_view bad :
       {"a#", "#a", "a/#/b", "#/", "#/a", "a/b#", "##", "a/##", "+#"}) {
    EXPECT_EQ(filter_error(bad), topic_errc::misplaced_hash) << bad;
  }
}

TEST(topic_filter, plus_occupying_a_whole_level_is_valid) {
  // [MQTT-4.7.1-3]
  for (const std::string_view good : {"+", "+/+", "/+", "+/", "a/+/b", "+/a/+", "+//+", "$SYS/+"}) {
    EXPECT_FALSE(filter_error(good)) << good;
  }
}

TEST(topic_filter, plus_sharing_a_level_is_rejected) {
  // [MQTT-4.7.1-3] it must occupy an entire level
  for (const std::string_view bad : {"a+", "+a", "a/b+/c", "++", "a/++", "sport+"}) {
    EXPECT_EQ(filter_error(bad), topic_errc::misplaced_plus) << bad;
  }
}

TEST(topic_filter, empty_levels_are_valid) {
  for (const std::string_view good : {"/", "a//b", "/a", "a/", "//", "/+/", "a//#"}) {
    EXPECT_FALSE(filter_error(good)) << good;
  }
}

TEST(topic_filter, every_valid_name_is_a_valid_filter) {
  for (const std::string_view text : {"a", "/", "a//b", "$SYS/x", "caf\xC3\xA9"}) {
    ASSERT_TRUE(parse_name(text));
    EXPECT_FALSE(filter_error(text)) << text;
  }
}

TEST(topic_filter, compares_and_hashes_by_text) {
  const auto a1 = parse_filter("a/+");
  const auto a2 = parse_filter("a/+");
  const auto b = parse_filter("a/#");
  ASSERT_TRUE(a1 && a2 && b);
  EXPECT_EQ(*a1, *a2);
  EXPECT_NE(*a1, *b);
  EXPECT_EQ(std::hash<topic_filter>{}(*a1), std::hash<topic_filter>{}(*a2));
  EXPECT_LT(*b, *a1);  // '#' sorts before '+'
}

// --- errors -------------------------------------------------------------------------------------

TEST(topic_errc, has_its_own_category_and_a_message_for_every_value) {
  for (int value = static_cast<int>(topic_errc::empty);
       value <= static_cast<int>(topic_errc::misplaced_plus); ++value) {
    const std::error_code ec = static_cast<topic_errc>(value);
    EXPECT_EQ(&ec.category(), &topic_category());
    EXPECT_STREQ(ec.category().name(), "mqtt.topic");
    EXPECT_NE(ec.message(), "unknown topic error") << value;
  }
  EXPECT_TRUE(std::error_code(topic_errc::empty));  // no value means success
}

// --- the reference matcher ----------------------------------------------------------------------

TEST(matches, literal_filter_matches_only_the_same_name) {
  EXPECT_TRUE(matches("a/b/c", "a/b/c"));
  EXPECT_FALSE(matches("a/b/c", "a/b"));
  EXPECT_FALSE(matches("a/b", "a/b/c"));
  EXPECT_FALSE(matches("a/b/c", "a/b/C"));  // case-sensitive
  EXPECT_FALSE(matches("a/b/c", "a/b/c/"));
}

TEST(matches, plus_matches_exactly_one_level) {
  // [MQTT-4.7.1-3]
  EXPECT_TRUE(matches("sport/tennis/+", "sport/tennis/player1"));
  EXPECT_FALSE(matches("sport/tennis/+", "sport/tennis/player1/ranking"));
  EXPECT_FALSE(matches("sport/+", "sport"));
  EXPECT_TRUE(matches("+/+", "/finance"));
  EXPECT_TRUE(matches("/+", "/finance"));
  EXPECT_FALSE(matches("+", "/finance"));
}

TEST(matches, plus_matches_an_empty_level) {
  EXPECT_TRUE(matches("sport/+", "sport/"));
  EXPECT_TRUE(matches("a/+/b", "a//b"));
  EXPECT_TRUE(matches("+/b", "/b"));
  EXPECT_TRUE(matches("+/+", "/"));
}

TEST(matches, hash_matches_the_parent_level_and_everything_below) {
  // [MQTT-4.7.1-2] "sport/tennis/player1/#" also matches "sport/tennis/player1"
  EXPECT_TRUE(matches("sport/tennis/player1/#", "sport/tennis/player1"));
  EXPECT_TRUE(matches("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
  EXPECT_TRUE(matches("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
  EXPECT_TRUE(matches("sport/#", "sport"));
  EXPECT_TRUE(matches("sport/#", "sport/"));
  EXPECT_FALSE(matches("sport/tennis/#", "sport"));
  EXPECT_FALSE(matches("sport/#", "sports"));
  EXPECT_TRUE(matches("#", "a/b/c"));
  EXPECT_TRUE(matches("#", "/"));
  EXPECT_TRUE(matches("/#", "/"));
  EXPECT_TRUE(matches("+/#", "a"));
}

TEST(matches, empty_levels_are_distinct_levels) {
  EXPECT_TRUE(matches("a//b", "a//b"));
  EXPECT_FALSE(matches("a//b", "a/b"));
  EXPECT_FALSE(matches("a/b", "a//b"));
  EXPECT_FALSE(matches("/a", "a"));
  EXPECT_TRUE(matches("/", "/"));
  EXPECT_FALSE(matches("/", "//"));
}

TEST(matches, wildcard_first_level_does_not_match_dollar_names) {
  // [MQTT-4.7.2-1]
  EXPECT_FALSE(matches("#", "$SYS/uptime"));
  EXPECT_FALSE(matches("+/uptime", "$SYS/uptime"));
  EXPECT_FALSE(matches("+/#", "$SYS/uptime"));
  EXPECT_FALSE(matches("+", "$"));
  EXPECT_TRUE(matches("$SYS/#", "$SYS/uptime"));
  EXPECT_TRUE(matches("$SYS/+", "$SYS/uptime"));
  EXPECT_TRUE(matches("$SYS/#", "$SYS"));
  EXPECT_TRUE(matches("$SYS", "$SYS"));
}

TEST(matches, dollar_rule_applies_only_to_the_first_level) {
  EXPECT_TRUE(matches("a/+", "a/$b"));
  EXPECT_TRUE(matches("a/#", "a/$b/c"));
  EXPECT_TRUE(matches("#", "a$"));
  EXPECT_TRUE(matches("+/x", "a$/x"));
  EXPECT_TRUE(matches("#", "/$x"));  // the first level is empty, not "$x"
}

}  // namespace
}  // namespace ebus::mqtt::topic
