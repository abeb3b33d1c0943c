#include "mqtt/auth/acl.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

namespace ebus::mqtt::auth {
namespace {

using namespace std::literals;

acl parse(std::string_view text) {
  auto parsed = acl::parse(text);
  EXPECT_TRUE(parsed) << text;
  return parsed ? std::move(*parsed) : *acl::parse("");
}

std::vector<std::size_t> problem_lines(std::string_view text) {
  const auto parsed = acl::parse(text);
  std::vector<std::size_t> lines;
  if (!parsed) {
    for (const file_problem& p : parsed.error())
      lines.push_back(p.line);
  }
  return lines;
}

std::string first_reason(std::string_view text) {
  const auto parsed = acl::parse(text);
  return parsed || parsed.error().empty() ? std::string() : parsed.error().front().reason;
}

const client_identity anonymous{"client", std::nullopt};

client_identity user(std::string_view name, std::string_view client_id = "client") {
  return {client_id, name};
}

bool can_read(const acl& a, std::string_view topic, const client_identity& who) {
  return a.allows(acl_access::read, topic, who);
}
bool can_write(const acl& a, std::string_view topic, const client_identity& who) {
  return a.allows(acl_access::write, topic, who);
}
bool can_subscribe(const acl& a, std::string_view filter, const client_identity& who) {
  return a.allows(acl_access::subscribe, filter, who);
}

// --- access types
// ---------------------------------------------------------------------------------

TEST(acl, each_access_type_grants_what_it_names) {
  const acl a = parse(
      "topic read r\n"
      "topic write w\n"
      "topic readwrite rw\n"
      "topic both\n"
      "topic deny d\n");
  EXPECT_EQ(a.rule_count(), 5U);
  EXPECT_TRUE(can_read(a, "r", anonymous));
  EXPECT_FALSE(can_write(a, "r", anonymous));
  EXPECT_FALSE(can_read(a, "w", anonymous));
  EXPECT_TRUE(can_write(a, "w", anonymous));
  EXPECT_TRUE(can_read(a, "rw", anonymous));
  EXPECT_TRUE(can_write(a, "rw", anonymous));
  EXPECT_TRUE(can_read(a, "both", anonymous));  // no type = readwrite
  EXPECT_TRUE(can_write(a, "both", anonymous));
  EXPECT_FALSE(can_read(a, "d", anonymous));
  EXPECT_FALSE(can_write(a, "d", anonymous));
  EXPECT_FALSE(can_read(a, "other", anonymous));  // nothing grants: refused
  EXPECT_FALSE(can_write(a, "other", anonymous));
}

TEST(acl, empty_file_refuses_everything) {
  for (const std::string_view text : {""sv, "# nothing\n\n"sv, "user alice\n"sv}) {
    const acl a = parse(text);
    EXPECT_EQ(a.rule_count(), 0U);
    EXPECT_FALSE(can_read(a, "a", anonymous));
    EXPECT_FALSE(can_write(a, "a", user("alice")));
    EXPECT_FALSE(can_subscribe(a, "#", anonymous));
  }
}

TEST(acl, single_word_is_a_readwrite_topic) {
  // mosquitto 2.0.11 reads "topic read" as the topic "read" (checked against the broker).
  const acl a = parse("topic read\ntopic deny\n");
  EXPECT_TRUE(can_write(a, "read", anonymous));
  EXPECT_TRUE(can_read(a, "read", anonymous));
  EXPECT_TRUE(can_write(a, "deny", anonymous));
  EXPECT_FALSE(can_write(a, "x", anonymous));
}

TEST(acl, topic_is_the_rest_of_the_line) {
  const acl a = parse("topic    write   sp ace/x y   \n");
  EXPECT_TRUE(can_write(a, "sp ace/x y", anonymous));
  EXPECT_FALSE(can_write(a, "sp", anonymous));
}

// --- whose rules
// ------------------------------------------------------------------------------------

TEST(acl, topic_lines_before_the_first_user_line_are_for_anonymous_clients) {
  // Confirmed against mosquitto 2.0.11: a client with a username does not get these.
  const acl a = parse(
      "topic write anon/#\n"
      "user alice\n"
      "topic write alice/#\n");
  EXPECT_TRUE(can_write(a, "anon/x", anonymous));
  EXPECT_FALSE(can_write(a, "alice/x", anonymous));
  EXPECT_FALSE(can_write(a, "anon/x", user("alice")));
  EXPECT_TRUE(can_write(a, "alice/x", user("alice")));
  EXPECT_FALSE(can_write(a, "anon/x", user("bob")));  // no block: nothing
  EXPECT_FALSE(can_write(a, "alice/x", user("bob")));
  // mosquitto 2.0.11 reads an empty username as none (checked with a raw CONNECT).
  EXPECT_TRUE(can_write(a, "anon/x", user("")));
  EXPECT_FALSE(can_write(a, "alice/x", user("")));
}

TEST(acl, user_blocks_of_the_same_name_merge) {
  const acl a = parse(
      "user alice\ntopic read a\n"
      "user bob\ntopic read b\n"
      "user alice\ntopic read c\n");
  EXPECT_TRUE(can_read(a, "a", user("alice")));
  EXPECT_TRUE(can_read(a, "c", user("alice")));
  EXPECT_FALSE(can_read(a, "b", user("alice")));
  EXPECT_TRUE(can_read(a, "b", user("bob")));
  EXPECT_FALSE(can_read(a, "c", user("bob")));
}

TEST(acl, user_name_is_the_rest_of_the_line) {
  const acl a = parse("user   John Doe  \ntopic read x\n");
  EXPECT_TRUE(can_read(a, "x", user("John Doe")));
  EXPECT_FALSE(can_read(a, "x", user("John")));
}

TEST(acl, patterns_apply_to_every_client_wherever_they_are) {
  const acl a = parse(
      "user alice\n"
      "topic read alice/#\n"
      "pattern write out/%c\n"
      "user bob\n");
  EXPECT_TRUE(can_write(a, "out/c1", {"c1", std::nullopt}));
  EXPECT_TRUE(can_write(a, "out/c2", user("alice", "c2")));
  EXPECT_TRUE(can_write(a, "out/c3", user("bob", "c3")));
  EXPECT_TRUE(can_write(a, "out/c4", user("carol", "c4")));
  EXPECT_FALSE(can_write(a, "out/c1", user("carol", "c4")));
}

// --- deny
// ---------------------------------------------------------------------------------------------

TEST(acl, deny_wins_whatever_the_order) {
  // mosquitto 2.0 moves deny rules to the front of their list.
  const acl a = parse(
      "topic readwrite a/#\n"
      "topic deny a/secret\n"
      "topic deny b/secret\n"
      "topic readwrite b/#\n");
  EXPECT_FALSE(can_write(a, "a/secret", anonymous));
  EXPECT_FALSE(can_read(a, "a/secret", anonymous));
  EXPECT_TRUE(can_write(a, "a/public", anonymous));
  EXPECT_FALSE(can_read(a, "b/secret", anonymous));
  EXPECT_TRUE(can_read(a, "b/public", anonymous));
}

TEST(acl, user_deny_beats_pattern_grant) {
  // As mosquitto 2.0.11 (checked against the broker).
  const acl a = parse("user u1\ntopic deny a/u1/#\npattern readwrite a/%u/#\n");
  EXPECT_FALSE(can_write(a, "a/u1/x", user("u1")));
  EXPECT_TRUE(can_write(a, "a/u2/x", user("u2")));
}

TEST(acl, pattern_deny_beats_user_grant) {
  // Deliberately stricter than mosquitto 2.0.11, where the user's topic grant wins.
  const acl a = parse("user u1\ntopic readwrite a/#\npattern deny a/%u/#\n");
  EXPECT_FALSE(can_write(a, "a/u1/x", user("u1")));
  EXPECT_TRUE(can_write(a, "a/z", user("u1")));
}

// --- patterns
// -----------------------------------------------------------------------------------------

TEST(acl, client_id_and_username_patterns) {
  const acl a = parse(
      "pattern readwrite devices/%c/#\n"
      "pattern read users/%u/inbox\n"
      "pattern write both/%u/%c\n");
  const client_identity alice = user("alice", "dev1");
  EXPECT_TRUE(can_write(a, "devices/dev1/state", alice));
  EXPECT_TRUE(can_write(a, "devices/dev1", alice));
  EXPECT_FALSE(can_write(a, "devices/dev2/state", alice));
  EXPECT_TRUE(can_read(a, "users/alice/inbox", alice));
  EXPECT_FALSE(can_write(a, "users/alice/inbox", alice));
  EXPECT_FALSE(can_read(a, "users/bob/inbox", alice));
  EXPECT_TRUE(can_write(a, "both/alice/dev1", alice));
  EXPECT_FALSE(can_write(a, "both/dev1/alice", alice));
}

TEST(acl, placeholders_are_substituted_inside_a_level) {
  // mosquitto 2.0 substitutes text, not levels (checked: "dev%c/x" allows "devc1/x").
  const acl a = parse("pattern write dev%c/x\npattern write p%%c\npattern write %c-%u\n");
  EXPECT_TRUE(can_write(a, "devc1/x", {"c1", std::nullopt}));
  EXPECT_FALSE(can_write(a, "dev/x", {"c1", std::nullopt}));
  EXPECT_TRUE(can_write(a, "p%c1", {"c1", std::nullopt}));
  EXPECT_TRUE(can_write(a, "c1-u", {"c1", "u"sv}));
  EXPECT_FALSE(can_write(a, "c1-", {"c1", std::nullopt}));
}

TEST(acl, placeholders_in_topic_lines_are_literal) {
  const acl a = parse("topic write a/%c\n");
  EXPECT_TRUE(can_write(a, "a/%c", {"c1", std::nullopt}));
  EXPECT_FALSE(can_write(a, "a/c1", {"c1", std::nullopt}));
}

TEST(acl, username_pattern_without_username_applies_to_no_one) {
  // As mosquitto 2.0.11: neither "users//x" nor the literal "%u" is granted.
  const acl a = parse("pattern readwrite users/%u/#\npattern write %u\npattern deny %c/%u\n");
  EXPECT_FALSE(can_write(a, "users//x", anonymous));
  EXPECT_FALSE(can_write(a, "users/%u/x", anonymous));
  EXPECT_FALSE(can_write(a, "%u", anonymous));
  EXPECT_TRUE(can_write(a, "users/u/x", user("u")));
  EXPECT_FALSE(can_write(a, "users//x", user("")));  // an empty username is none
}

TEST(acl, empty_client_id_makes_an_empty_level) {
  const acl a = parse("pattern write c/%c/x\n");
  EXPECT_TRUE(can_write(a, "c//x", {"", std::nullopt}));
  EXPECT_FALSE(can_write(a, "c/a/x", {"", std::nullopt}));
}

TEST(acl, identity_with_wildcard_or_slash_does_not_widen_a_pattern) {
  const acl a = parse(
      "pattern readwrite users/%u/#\n"
      "pattern readwrite clients/%c/#\n"
      "pattern read public/#\n");
  // "bob/x" must not reach into bob's tree (mosquitto 2.0.11 lets it: it refuses only + and #).
  EXPECT_FALSE(can_write(a, "users/bob/x/y", user("bob/x")));
  EXPECT_FALSE(can_write(a, "users/bob/x", user("bob/x")));
  EXPECT_FALSE(can_write(a, "clients/c/1/z", {"c/1", std::nullopt}));
  for (const std::string_view id : {"+"sv, "#"sv, "c+1"sv, "c#"sv}) {
    EXPECT_FALSE(can_write(a, "clients/" + std::string(id) + "/z", {id, std::nullopt})) << id;
    EXPECT_FALSE(can_write(a, "clients/anything/z", {id, std::nullopt})) << id;
    EXPECT_FALSE(can_write(a, "users/x/z", user(id))) << id;
    EXPECT_FALSE(can_subscribe(a, "users/+/z", user(id))) << id;
  }
  // Patterns that use the other value, or none, still apply.
  EXPECT_TRUE(can_write(a, "users/bob/q", user("bob", "c/1")));
  EXPECT_TRUE(can_write(a, "clients/c1/q", user("a+b", "c1")));
  EXPECT_TRUE(can_read(a, "public/x", user("a+b", "c#")));
}

TEST(acl, deny_pattern_that_cannot_be_substituted_refuses_everything) {
  const acl a = parse("topic readwrite #\npattern deny private/%c/#\n");
  EXPECT_TRUE(can_write(a, "x", {"c1", std::nullopt}));
  EXPECT_FALSE(can_write(a, "private/c1/x", {"c1", std::nullopt}));
  EXPECT_FALSE(can_write(a, "x", {"c/1", std::nullopt}));
  EXPECT_FALSE(can_read(a, "x", {"c+", std::nullopt}));
}

// --- wildcards and '$'
// --------------------------------------------------------------------------------

TEST(acl, rule_filters_match_with_mqtt_wildcards) {
  const acl a = parse("topic read a/+/c\ntopic read d/#\ntopic read +\n");
  EXPECT_TRUE(can_read(a, "a/b/c", anonymous));
  EXPECT_TRUE(can_read(a, "a//c", anonymous));
  EXPECT_FALSE(can_read(a, "a/b/c/d", anonymous));
  EXPECT_FALSE(can_read(a, "a/c", anonymous));
  EXPECT_TRUE(can_read(a, "d", anonymous));  // "d/#" matches its parent [MQTT-4.7.1-2]
  EXPECT_TRUE(can_read(a, "d/e/f", anonymous));
  EXPECT_TRUE(can_read(a, "top", anonymous));
  EXPECT_FALSE(can_read(a, "top/x", anonymous));
}

TEST(acl, root_wildcards_do_not_reach_dollar_topics) {
  // [MQTT-4.7.2-1]; mosquitto 2.0.11 refuses "$foo/x" under "topic readwrite #" (checked).
  const acl a = parse("topic readwrite #\ntopic read +/x\ntopic read $SYS/#\n");
  EXPECT_FALSE(can_write(a, "$foo/x", anonymous));
  EXPECT_FALSE(can_read(a, "$foo/x", anonymous));
  EXPECT_TRUE(can_read(a, "$SYS/broker/uptime", anonymous));
  EXPECT_FALSE(can_write(a, "$SYS/broker/uptime", anonymous));
  EXPECT_FALSE(can_subscribe(a, "$foo/#", anonymous));
  EXPECT_TRUE(can_subscribe(a, "$SYS/+", anonymous));
}

// --- subscribe
// ------------------------------------------------------------------------------------------

TEST(acl, subscription_is_refused_only_when_it_can_deliver_nothing) {
  const acl a = parse("topic read a/#\ntopic read b/c\ntopic read d/+/f\ntopic read e/+/#\n");
  EXPECT_TRUE(can_subscribe(a, "a/#", anonymous));
  EXPECT_TRUE(can_subscribe(a, "a/+/c", anonymous));
  EXPECT_TRUE(can_subscribe(a, "a", anonymous));
  EXPECT_TRUE(can_subscribe(a, "a/b", anonymous));
  // Granted, as mosquitto grants it; each message is then checked with read.
  EXPECT_TRUE(can_subscribe(a, "#", anonymous));
  EXPECT_TRUE(can_subscribe(a, "+/c", anonymous));  // shares "b/c"
  EXPECT_TRUE(can_subscribe(a, "+/b", anonymous));  // shares "a/b"
  EXPECT_TRUE(can_subscribe(a, "b/#", anonymous));
  EXPECT_TRUE(can_subscribe(a, "b/+", anonymous));
  EXPECT_FALSE(can_subscribe(a, "b/d", anonymous));
  EXPECT_FALSE(can_subscribe(a, "b", anonymous));

  EXPECT_TRUE(can_subscribe(a, "d/#", anonymous));  // shares "d/x/f"
  EXPECT_TRUE(can_subscribe(a, "d/x/f", anonymous));
  EXPECT_FALSE(can_subscribe(a, "d/+", anonymous));  // "d/+/f" needs three levels
  EXPECT_FALSE(can_subscribe(a, "d/x/g", anonymous));

  EXPECT_TRUE(can_subscribe(a, "e/x", anonymous));  // "e/+/#" matches "e/x"
  EXPECT_FALSE(can_subscribe(a, "e", anonymous));
  EXPECT_FALSE(can_subscribe(a, "x/y", anonymous));
  EXPECT_FALSE(can_subscribe(a, "$SYS/#", anonymous));
}
TEST(acl, subscription_needs_read_access) {
  const acl a = parse("topic write w/#\ntopic readwrite rw/#\n");
  EXPECT_FALSE(can_subscribe(a, "w/x", anonymous));
  EXPECT_TRUE(can_subscribe(a, "rw/x", anonymous));
}

TEST(acl, deny_refuses_a_subscription_only_when_it_covers_the_filter) {
  const acl a = parse("topic read a/#\ntopic deny a/secret/#\n");
  EXPECT_FALSE(can_subscribe(a, "a/secret/#", anonymous));
  EXPECT_FALSE(can_subscribe(a, "a/secret/x", anonymous));
  // The broker still checks read for each delivered message.
  EXPECT_TRUE(can_subscribe(a, "a/#", anonymous));
  EXPECT_FALSE(can_read(a, "a/secret/x", anonymous));
  EXPECT_TRUE(can_read(a, "a/public", anonymous));
}

TEST(acl, subscription_through_patterns) {
  const acl a = parse("pattern read users/%u/#\n");
  EXPECT_TRUE(can_subscribe(a, "users/alice/#", user("alice")));
  EXPECT_TRUE(can_subscribe(a, "users/alice/+/x", user("alice")));
  EXPECT_TRUE(can_subscribe(a, "users/+/#", user("alice")));  // alice's messages only
  EXPECT_TRUE(can_subscribe(a, "users/#", user("alice")));
  EXPECT_FALSE(can_subscribe(a, "users/bob/#", user("alice")));
  EXPECT_FALSE(can_subscribe(a, "users/alice/#", anonymous));
}

// --- the text format
// -------------------------------------------------------------------------------------

TEST(acl, comments_blank_lines_and_whitespace) {
  const acl a = parse(
      "# comment\r\n"
      "\r\n"
      "   \t\n"
      "   # indented comment (mosquitto refuses the file)\n"
      "\ttopic\tread\ta/b\r\n"  // tabs between words (mosquitto refuses the file)
      "  user alice  \r\n"
      "  topic write c/d  \n");
  EXPECT_TRUE(can_read(a, "a/b", anonymous));
  EXPECT_FALSE(can_write(a, "a/b", anonymous));
  EXPECT_TRUE(can_write(a, "c/d", user("alice")));
  EXPECT_FALSE(can_write(a, "c/d", anonymous));
}

TEST(acl, trailing_carriage_return_is_not_part_of_the_topic) {
  const acl a = parse("user alice\r\ntopic read a/b\r\n");
  EXPECT_TRUE(can_read(a, "a/b", user("alice")));
}

TEST(acl, problems_carry_their_line_numbers) {
  const std::string text =
      "# ok\n"                       // 1
      "topic read a\n"               // 2 ok
      "topics read a\n"              // 3 unknown keyword
      "topic\n"                      // 4 missing topic
      "topic   \n"                   // 5 missing topic
      "topic bogus a\n"              // 6 unknown access
      "topic read a/#/b\n"           // 7 invalid filter
      "topic a+\n"                   // 8 invalid filter
      "user\n"                       // 9 missing user name
      "user \t \n"                   // 10 missing user name
      "pattern read a/%c+\n"         // 11 invalid filter
      "Topic a\n"                    // 12 keywords are lower case
      "pattern readwrite x/%u/#\n";  // 13 ok
  EXPECT_EQ(problem_lines(text), (std::vector<std::size_t>{3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
}

TEST(acl, problem_reasons_say_what_is_wrong) {
  EXPECT_NE(first_reason("toppic a\n").find("unknown keyword \"toppic\""), std::string::npos);
  EXPECT_NE(first_reason("topic\n").find("missing topic"), std::string::npos);
  EXPECT_NE(first_reason("topic rw a\n").find("unknown access \"rw\""), std::string::npos);
  EXPECT_NE(first_reason("topic a/#/b\n").find("invalid topic filter \"a/#/b\""),
            std::string::npos);
  EXPECT_NE(first_reason("user\n").find("missing user name"), std::string::npos);
}

TEST(acl, filters_must_be_valid_utf8_without_nul) {
  EXPECT_EQ(problem_lines("topic read a\xFF\n"), std::vector<std::size_t>{1});
  EXPECT_EQ(problem_lines("topic read a\0b\n"s), std::vector<std::size_t>{1});
  EXPECT_EQ(problem_lines("user a\0b\n"s), std::vector<std::size_t>{1});
}

TEST(acl, line_length_and_rule_count_are_bounded) {
  const std::string longest_filter(topic::max_topic_length, 'a');
  const acl a = parse("topic readwrite " + longest_filter + "\n");
  EXPECT_TRUE(can_read(a, longest_filter, anonymous));
  EXPECT_EQ(problem_lines("# x\ntopic read " + std::string(max_acl_line_length, 'a') + "\n"),
            std::vector<std::size_t>{2});

  std::string many;
  for (std::size_t i = 0; i < max_acl_rules; ++i)
    many += "topic read t\n";
  EXPECT_TRUE(acl::parse(many));
  many += "topic read t\n";
  EXPECT_EQ(problem_lines(many), std::vector<std::size_t>{max_acl_rules + 1});
}

TEST(acl, load_names_the_path_and_the_lines) {
  const char* base = std::getenv("TMPDIR");
  std::string dir =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/ebus-acl-XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/acl";
  std::ofstream(path) << "topic read a\nbogus\ntopic read a/#/b\n";
  const auto loaded = acl::load(path);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().find(path), std::string::npos) << loaded.error();
  EXPECT_NE(loaded.error().find("line 2: unknown keyword"), std::string::npos) << loaded.error();
  EXPECT_NE(loaded.error().find("line 3: invalid topic filter"), std::string::npos)
      << loaded.error();

  std::ofstream(path) << "user alice\ntopic read a/#\n";
  const auto good = acl::load(path);
  ASSERT_TRUE(good) << good.error();
  EXPECT_TRUE(can_read(*good, "a/b", user("alice")));

  const auto missing = acl::load(dir + "/absent");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find(dir + "/absent"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ebus::mqtt::auth
