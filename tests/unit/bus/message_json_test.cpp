// Beehive JSON: byte-exact against messages produced by KubeEdge's own Go encoder
// (tests/data/beehive-messages.jsonl, copied from the spec's vectors).
#include "bus/message_json.hpp"

#include <fstream>
#include <map>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "bus/bus_error.hpp"

namespace ebus::bus {
namespace {

// name -> the exact bytes Go wrote (the value of "json", embedded verbatim in each line).
std::map<std::string, std::string> load_golden(const std::string& file = "beehive-messages.jsonl") {
  std::ifstream in(std::string(EBUS_TEST_DATA_DIR) + "/" + file);
  std::map<std::string, std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto name_at = line.find("\"name\":\"") + 8;
    const auto name = line.substr(name_at, line.find('"', name_at) - name_at);
    const auto json_at = line.find("\"json\":") + 7;
    out[name] = line.substr(json_at, line.size() - json_at - 1);  // drop the closing brace
  }
  return out;
}

const std::map<std::string, std::string>& golden() {
  static const auto g = load_golden();
  return g;
}

message fixed(std::string id) {
  message m;
  m.header.id = std::move(id);
  m.header.timestamp = 1732612345678;
  return m;
}

TEST(message_json, golden_file_has_every_vector) {
  ASSERT_EQ(golden().size(), 12u);
  EXPECT_TRUE(golden().contains("mqtt-to-twin"));
}

TEST(message_json, every_golden_vector_decodes_and_reencodes_byte_for_byte) {
  for (const auto& [name, bytes] : golden()) {
    if (name == "invalid-utf8-string") continue;  // decodes to valid UTF-8; covered below
    auto m = from_json(bytes);
    ASSERT_TRUE(m) << name << ": " << m.error().reason;
    EXPECT_EQ(to_json(*m), bytes) << name;
  }
}

TEST(message_json, mqtt_to_twin_built_by_hand_matches_go) {
  auto m = fixed("7b0ff3c4-8a43-4d4e-9a4a-2f2b1d0c9e11");
  build_router(m, "bus", "user", base64_url("$hw/events/device/default/led1/twin/update"),
               "response");
  m.content = content::text(R"({"event_id":"e1","twin":{"temp":{"actual":{"value":"21"}}}})");
  EXPECT_EQ(to_json(m), golden().at("mqtt-to-twin"));
}

TEST(message_json, go_escapes_angle_brackets_and_ampersand) {
  auto m = fixed("1d2c3b4a-0000-4000-8000-000000000001");
  build_router(m, "bus", "user", "SYS/dis/upload_records", "upload");
  m.content = content::text("raw <payload> & more");
  EXPECT_EQ(to_json(m), golden().at("mqtt-to-hub-upload"));
}

TEST(message_json, binary_content_is_standard_base64) {
  auto m = fixed("1d2c3b4a-0000-4000-8000-000000000002");
  build_router(m, "twin", "bus", "$hw/events/device/default/led1/twin/update/result", "publish");
  m.content = content::binary(R"({"event_id":"e1"})");
  EXPECT_EQ(to_json(m), golden().at("twin-to-eventbus-publish-bytes"));
}

TEST(message_json, object_content_has_sorted_keys) {
  auto m = fixed("1d2c3b4a-0000-4000-8000-000000000005");
  build_router(m, "edgecontroller", "user", "auth_info", "get_result");
  m.content = content::json(nlohmann::json{{"sk", "S"}, {"n", 3}, {"ak", "A"}});
  EXPECT_EQ(to_json(m), golden().at("cloud-get-result"));
}

TEST(message_json, sync_flag_is_written_only_when_set) {
  auto m = fixed("1d2c3b4a-0000-4000-8000-000000000007");
  build_router(m, "twin", "bus", "res", "query");
  m.content = content::text("q");
  m.header.sync = true;
  EXPECT_EQ(to_json(m), golden().at("sync-request"));
}

TEST(message_json, response_built_with_new_response_matches_go_shape) {
  auto request = fixed("1d2c3b4a-0000-4000-8000-000000000007");
  build_router(request, "twin", "bus", "res", "query");
  auto resp = new_response(request, content::text("answer"));
  resp.header.id = "1d2c3b4a-0000-4000-8000-000000000008";
  resp.header.timestamp = 1732612345678;
  EXPECT_EQ(to_json(resp), golden().at("response"));
}

TEST(message_json, raw_empty_message_keeps_route_object_and_null_content) {
  EXPECT_EQ(to_json(message{}), golden().at("raw-empty"));
}

TEST(message_json, invalid_utf8_is_replaced_by_escaped_replacement_character) {
  auto m = fixed("1d2c3b4a-0000-4000-8000-00000000000a");
  build_router(m, "bus", "user", "x", "upload");
  m.content = content::text("bad \xff utf8");
  EXPECT_EQ(to_json(m), golden().at("invalid-utf8-string"));
}

// Backspace and form feed: Go 1.22+ writes \b and \f (current KubeEdge, Go 1.23), Go 1.21 and
// earlier \u0008 and \u000c. Both vectors are in beehive-control-escapes.jsonl, written by hand
// from encoding/json's rules (encodeState.string) and checked against them.
TEST(message_json, backspace_and_form_feed_use_go_1_22_short_escapes) {
  const auto vectors = load_golden("beehive-control-escapes.jsonl");
  ASSERT_EQ(vectors.size(), 2u);
  auto m = fixed("1d2c3b4a-0000-4000-8000-00000000000b");
  build_router(m, "bus", "user", "x", "upload");
  m.content = content::text(
      "a\bb\fc\x07"
      "d\te\nf\rg\x1f"
      "h");
  const auto& current = vectors.at("control-escapes-go1.23");
  EXPECT_EQ(to_json(m), current);
  EXPECT_NE(current.find(R"(a\bb\fc\u0007d)"), std::string::npos) << current;

  // The old form is still read, as the same message, and written in the current form.
  const auto& old = vectors.at("control-escapes-go1.19");
  EXPECT_NE(old.find(R"(a\u0008b\u000cc)"), std::string::npos) << old;
  auto decoded = from_json(old);
  ASSERT_TRUE(decoded) << decoded.error().reason;
  EXPECT_EQ(*decoded, m);
  EXPECT_EQ(to_json(*decoded), current);
  auto decoded_current = from_json(current);
  ASSERT_TRUE(decoded_current) << decoded_current.error().reason;
  EXPECT_EQ(*decoded_current, m);
}

TEST(message_json, current_era_fields_are_placed_as_go_orders_them) {
  auto m = fixed("id");
  m.header.parent_id = "p";
  m.header.resource_version = "42";
  m.header.sync = true;
  m.header.type = "unixpacket";
  m.route = {"src", "dst", "grp", "op", "res"};
  EXPECT_EQ(to_json(m),
            R"({"header":{"msg_id":"id","parent_msg_id":"p","timestamp":1732612345678,)"
            R"("resourceversion":"42","sync":true,"type":"unixpacket"},"route":{"source":"src",)"
            R"("destination":"dst","group":"grp","operation":"op","resource":"res"},)"
            R"("content":null})");
  auto back = from_json(to_json(m));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, m);
}

TEST(go_string, escapes_controls_quotes_and_line_separators_like_go) {
  std::string out;
  append_go_string(out, std::string("a\"b\\c\nd\re\tf\x01g\x7f\xe2\x80\xa8h\xe2\x80\xa9", 21));
  EXPECT_EQ(out, R"("a\"b\\c\nd\re\tf\u0001g)"
                 "\x7f"
                 R"(\u2028h\u2029")");
  out.clear();
  append_go_string(out, "\b\f\x08\x0c");
  EXPECT_EQ(out, R"("\b\f\b\f")");
}

TEST(go_string, keeps_valid_multibyte_utf8_and_replaces_each_invalid_byte) {
  std::string out;
  append_go_string(out,
                   "\xc3\xa9\xf0\x9f\x98\x80|\xc0\xaf|\xed\xa0\x80");  // é, 😀, overlong, surrogate
  EXPECT_EQ(out, "\"\xc3\xa9\xf0\x9f\x98\x80|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd\"");
}

// Go's rules one byte at a time, written plainly: the reference for the word-at-a-time encoder.
std::string go_string_reference(std::string_view s) {
  std::string out = "\"";
  const auto hex = [&](unsigned v) {
    constexpr char digits[] = "0123456789abcdef";
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4)
      out += digits[(v >> shift) & 0xF];
  };
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const auto at = [&](std::size_t k) {
      return k < s.size() ? static_cast<unsigned char>(s[k]) : 0u;
    };
    const auto cont = [&](std::size_t k) { return (at(k) & 0xC0) == 0x80; };
    if (c < 0x80) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c == '\b') {
        out += "\\b";  // Go 1.22 and later; \u0008 before
      } else if (c == '\f') {
        out += "\\f";  // Go 1.22 and later; \u000c before
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
        hex(c);
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    std::size_t len = 0;
    if (c >= 0xC2 && c <= 0xDF && cont(i + 1)) len = 2;
    if (c >= 0xE0 && c <= 0xEF && cont(i + 1) && cont(i + 2) && !(c == 0xE0 && at(i + 1) < 0xA0) &&
        !(c == 0xED && at(i + 1) >= 0xA0)) {
      len = 3;
    }
    if (c >= 0xF0 && c <= 0xF4 && cont(i + 1) && cont(i + 2) && cont(i + 3) &&
        !(c == 0xF0 && at(i + 1) < 0x90) && !(c == 0xF4 && at(i + 1) >= 0x90)) {
      len = 4;
    }
    if (len == 0) {
      out += "\\ufffd";
      ++i;
    } else if (len == 3 && c == 0xE2 && at(i + 1) == 0x80 &&
               (at(i + 2) == 0xA8 || at(i + 2) == 0xA9)) {
      hex(0x2028u + (at(i + 2) & 1u));
      i += 3;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out + "\"";
}

TEST(go_string, word_at_a_time_encoding_matches_byte_by_byte_rules_at_every_offset) {
  // Pieces that stop the 8-byte scan, placed at every alignment and in long runs (past the
  // encoder's 1 KiB escape block).
  const std::vector<std::string> pieces = {"a",
                                           "abcdefgh",
                                           "\"",
                                           "\\",
                                           "<",
                                           ">",
                                           "&",
                                           "\n",
                                           "\x01",
                                           "\b",
                                           "\f",
                                           "\x1f",
                                           "\x7f",
                                           " ",
                                           "\xc3\xa9",
                                           "\xf0\x9f\x98\x80",
                                           "\xe2\x80\xa8",
                                           "\xe2\x80\xa9",
                                           "\xe2\x80\xa7",
                                           "\xff",
                                           "\xc0\xaf",
                                           "\xed\xa0\x80",
                                           "\xe2\x80",
                                           std::string(1, '\0')};
  std::mt19937 rng(20261203);
  for (int round = 0; round < 2000; ++round) {
    std::string s;
    const std::size_t target = rng() % (round < 1000 ? 40 : 4000);
    while (s.size() < target) {
      const auto& p = pieces[rng() % pieces.size()];
      s += (rng() % 4 == 0) ? std::string(rng() % 70, 'x') : p;
    }
    std::string out = "prefix";
    append_go_string(out, s);
    ASSERT_EQ(out, "prefix" + go_string_reference(s)) << "round " << round;
  }
  std::string controls(5000, '\x01');  // the worst case: six bytes out for each byte in
  std::string out;
  append_go_string(out, controls);
  EXPECT_EQ(out.size(), 6 * controls.size() + 2);
  EXPECT_EQ(out, go_string_reference(controls));
}

TEST(go_json, floats_use_go_formatting) {
  const auto enc = [](const nlohmann::json& v) {
    std::string out;
    append_go_json(out, v);
    return out;
  };
  EXPECT_EQ(enc(1.0), "1");
  EXPECT_EQ(enc(0.5), "0.5");
  EXPECT_EQ(enc(1e21), "1e+21");
  EXPECT_EQ(enc(1e20), "100000000000000000000");
  EXPECT_EQ(enc(0.0000001), "1e-7");
  EXPECT_EQ(enc(-2.5e-10), "-2.5e-10");
  EXPECT_EQ(enc(nlohmann::json::array({1, "x", nullptr, true})), R"([1,"x",null,true])");
}

TEST(base64, url_alphabet_with_padding_matches_spec_vectors) {
  EXPECT_EQ(base64_url("$hw/events/device/led1/twin/update"),
            "JGh3L2V2ZW50cy9kZXZpY2UvbGVkMS90d2luL3VwZGF0ZQ==");
  EXPECT_EQ(base64_url("$hw/events/device/default/led1/state/update"),
            "JGh3L2V2ZW50cy9kZXZpY2UvZGVmYXVsdC9sZWQxL3N0YXRlL3VwZGF0ZQ==");
  EXPECT_EQ(base64_url("$hw/events/node/edge-node/membership/get"),
            "JGh3L2V2ZW50cy9ub2RlL2VkZ2Utbm9kZS9tZW1iZXJzaGlwL2dldA==");
  EXPECT_EQ(base64_url("\xfb\xff"), "-_8=");
  EXPECT_EQ(base64_url(""), "");
}

// Bit by bit, as RFC 4648 section 4 describes it.
std::string reference_base64_url(std::string_view bytes) {
  static constexpr std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  unsigned bits = 0;
  int count = 0;
  for (const char c : bytes) {
    bits = (bits << 8) | static_cast<unsigned char>(c);
    count += 8;
    while (count >= 6) {
      count -= 6;
      out += alphabet[(bits >> count) & 63];
    }
  }
  if (count > 0) out += alphabet[(bits << (6 - count)) & 63];
  while (out.size() % 4 != 0)
    out += '=';
  return out;
}

TEST(base64, every_length_and_byte_matches_the_bitwise_encoding) {
  std::mt19937 rng(20261203);
  std::uniform_int_distribution<int> byte(0, 255);
  for (std::size_t length = 0; length <= 300; ++length) {
    for (int round = 0; round < 8; ++round) {
      std::string bytes(length, '\0');
      for (auto& c : bytes)
        c = static_cast<char>(byte(rng));
      ASSERT_EQ(base64_url(bytes), reference_base64_url(bytes)) << "length " << length;
    }
  }
}

// --- decoding errors: each names what is wrong -----------------------------------------------

void expect_rejected(std::string_view text, std::string_view reason_part) {
  const auto m = from_json(text);
  ASSERT_FALSE(m) << text;
  EXPECT_EQ(m.error().code, bus_errc::invalid_message);
  EXPECT_NE(m.error().reason.find(reason_part), std::string::npos) << m.error().reason;
}

TEST(message_json_decode, rejects_truncated_document) {
  expect_rejected(R"({"header":{"msg_id":"x")", "not a valid JSON");
}
TEST(message_json_decode, rejects_non_object_document) {
  expect_rejected("[1,2]", "object");
}
TEST(message_json_decode, rejects_header_of_wrong_type) {
  expect_rejected(R"({"header":"x"})", "header");
}
TEST(message_json_decode, rejects_numeric_msg_id) {
  expect_rejected(R"({"header":{"msg_id":5}})", "header.msg_id");
}
TEST(message_json_decode, rejects_fractional_timestamp) {
  expect_rejected(R"({"header":{"timestamp":1.5}})", "header.timestamp");
}
TEST(message_json_decode, rejects_string_sync_flag) {
  expect_rejected(R"({"header":{"sync":"true"}})", "header.sync");
}
TEST(message_json_decode, rejects_route_field_of_wrong_type) {
  expect_rejected(R"({"route":{"operation":["publish"]}})", "route.operation");
}
TEST(message_json_decode, rejects_route_of_wrong_type) {
  expect_rejected(R"({"route":7})", "route");
}
TEST(message_json_decode, rejects_timestamp_beyond_int64) {
  expect_rejected(R"({"header":{"timestamp":18446744073709551615}})", "out of range");
}
TEST(message_json_decode, rejects_content_nested_too_deep) {
  std::string deep = R"({"content":)" + std::string(200, '[') + std::string(200, ']') + "}";
  expect_rejected(deep, "nested");
}
TEST(message_json_decode, rejects_invalid_utf8) {
  expect_rejected("{\"content\":\"\xff\"}", "not a valid JSON");
}

TEST(message_json_decode, accepts_any_key_order_and_ignores_unknown_keys) {
  const auto m =
      from_json(R"({"content":{"a":1},"extra":true,"route":{"resource":"r","source":"s"},)"
                R"("header":{"timestamp":5,"msg_id":"i","future":1}})");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->header.id, "i");
  EXPECT_EQ(m->header.timestamp, 5);
  EXPECT_EQ(m->route.source, "s");
  EXPECT_EQ(m->route.resource, "r");
  EXPECT_EQ(m->content.type(), content::kind::json);
  EXPECT_EQ(m->content.json_value().at("a"), 1);
}

TEST(message_json_decode, string_content_decodes_as_text_and_missing_parts_stay_empty) {
  const auto m = from_json(R"({"content":"hello"})");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->content.type(), content::kind::text);
  EXPECT_EQ(m->content.bytes(), "hello");
  EXPECT_TRUE(m->header.id.empty());
  EXPECT_EQ(m->route, route{});
}

TEST(message_json_decode, nesting_limit_is_128_levels_inside_the_message) {
  const auto nested = [](int levels) {
    return R"({"content":)" + std::string(static_cast<std::size_t>(levels), '[') + "1" +
           std::string(static_cast<std::size_t>(levels), ']') + "}";
  };
  EXPECT_TRUE(from_json(nested(127)));
  expect_rejected(nested(128), "nested");
  // Also where the value is ignored: the limit protects the parser, not only the content.
  expect_rejected(R"({"unknown":)" + std::string(200, '[') + std::string(200, ']') + "}", "nested");
}

TEST(message_json_decode, a_repeated_key_counts_by_its_last_occurrence) {
  const auto m = from_json(R"({"header":{"msg_id":5},"header":{"msg_id":"a","msg_id":"b"},)"
                           R"("route":{"source":"s","group":"g"},"route":{"source":"t"},)"
                           R"("content":[1],"content":"x"})");
  ASSERT_TRUE(m) << m.error().reason;
  EXPECT_EQ(m->header.id, "b");
  EXPECT_EQ(m->route.source, "t");
  EXPECT_EQ(m->route.group, "") << "a later route object replaces the earlier one whole";
  EXPECT_EQ(m->content.type(), content::kind::text);
  EXPECT_EQ(m->content.bytes(), "x");
  const auto cleared = from_json(R"({"header":{"msg_id":"a"},"header":null})");
  ASSERT_TRUE(cleared);
  EXPECT_EQ(cleared->header, header{});
}

TEST(message_json_decode, the_first_error_in_field_order_is_reported) {
  // Route comes first in the document, yet header is checked first; within header, msg_id
  // before sync.
  expect_rejected(R"({"route":{"source":1},"header":{"sync":"x","msg_id":1}})", "header.msg_id");
  // A syntax error anywhere wins over a field of the wrong type before it.
  expect_rejected(R"({"header":{"msg_id":1}} trailing)", "not a valid JSON");
}

TEST(message_json_decode, object_and_array_content_is_kept_whole) {
  const auto m =
      from_json(R"({"content":{"b":[1,{"c":null}],"a":"x","n":-2.5,"u":18446744073709551615}})");
  ASSERT_TRUE(m);
  EXPECT_EQ(
      m->content.json_value(),
      nlohmann::json::parse(R"({"a":"x","b":[1,{"c":null}],"n":-2.5,"u":18446744073709551615})"));
}

TEST(message_json_decode, large_messages_decode_like_small_ones) {
  for (const std::size_t size : {std::size_t{100}, std::size_t{300} * 1024, std::size_t{100}}) {
    auto m = new_message();
    build_router(m, "bus", "user", "r", "publish");
    m.content = content::json(nlohmann::json{{"blob", std::string(size, 'b')}, {"n", 1}});
    const auto decoded = from_json(to_json(m));
    ASSERT_TRUE(decoded) << decoded.error().reason;
    EXPECT_EQ(*decoded, m) << size;
  }
}

TEST(message_json_decode, decoding_into_a_used_message_leaves_nothing_of_it) {
  message used = fixed("1d2c3b4a-0000-4000-8000-00000000000f");
  used.header.parent_id = "p";
  used.header.resource_version = "7";
  used.header.type = "unixpacket";
  used.header.sync = true;
  build_router(used, "s", "g", "r", "o");
  used.route.destination = "d";
  used.content = content::text("old");
  // Fast path (a document simdjson takes) and slow path (one it refuses) alike.
  for (const std::string text :
       {R"({"header":{"msg_id":"new"},"route":{"source":"x"}})",
        R"({"header":{"msg_id":"new"},"route":{"source":"x"},"n":123456789012345678901234567890})",
        R"({"route":null,"header":{"msg_id":"new"}})"}) {
    message m = used;
    ASSERT_TRUE(decode_json(text, m)) << text;
    const auto fresh = from_json(text);
    ASSERT_TRUE(fresh) << text;
    EXPECT_EQ(m, *fresh) << text;
    EXPECT_EQ(m.header.id, "new");
    EXPECT_EQ(m.header.timestamp, 0);
    EXPECT_FALSE(m.header.sync);
    EXPECT_TRUE(m.header.parent_id.empty());
    EXPECT_TRUE(m.route.destination.empty());
    EXPECT_TRUE(m.content.is_null());
  }
  message m = used;
  EXPECT_FALSE(decode_json(R"({"header":{"msg_id":1}})", m));
}

TEST(message_json, decoding_text_into_a_message_with_other_content_replaces_it_whole) {
  // A text content reuses the storage of the one before; a JSON value before it must not stay.
  for (const content& before : {content::json(nlohmann::json{{"k", 1}}),
                                content::text(std::string(100, 'x')), content::binary("bytes")}) {
    message m;
    m.content = before;
    const std::string text = R"({"header":{"msg_id":"new"},"content":"t"})";
    ASSERT_TRUE(decode_json(text, m));
    EXPECT_EQ(m.content.type(), content::kind::text);
    EXPECT_EQ(m.content.bytes(), "t");
    EXPECT_TRUE(m.content.json_value().is_null());
    EXPECT_EQ(m, *from_json(text));
  }
}

TEST(message_json, encoding_appends_and_grows_past_its_first_guess) {
  // Quotes and controls take up to six bytes each: far past the room guessed at first, with a
  // prefix already in the string.
  auto m = fixed("1d2c3b4a-0000-4000-8000-000000000010");
  build_router(m, "bus", "user", "r", "upload");
  std::string payload;
  for (int i = 0; i < 20000; ++i)
    payload += (i % 3 == 0) ? "\"" : (i % 3 == 1) ? "\x01" : "<";
  m.content = content::text(payload);
  std::string content;
  append_go_string(content, payload);
  const std::string expected =
      R"({"header":{"msg_id":"1d2c3b4a-0000-4000-8000-000000000010","timestamp":1732612345678},)"
      R"("route":{"source":"bus","group":"user","operation":"upload","resource":"r"},"content":)" +
      content + "}";
  EXPECT_EQ(to_json(m), expected);
  std::string out = "prefix";
  encode_json(m, out);
  EXPECT_EQ(out, "prefix" + expected);
}

}  // namespace
}  // namespace ebus::bus
