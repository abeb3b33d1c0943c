// The one-pass reader of the common message shape: it takes what beehive's encoders write, gives
// exactly what the reference decoder gives for it, and leaves everything else to the general
// decoders (which then decide as they did without it).
#include "bus/envelope_reader.hpp"

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bus/message_json.hpp"

namespace ebus::bus {
namespace {

std::vector<std::string> golden_texts() {
  std::ifstream in(std::string(EBUS_TEST_DATA_DIR) + "/beehive-messages.jsonl");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto json_at = line.find("\"json\":") + 7;
    out.push_back(line.substr(json_at, line.size() - json_at - 1));  // drop the closing brace
  }
  return out;
}

// `text` is read whole by the reader, into exactly the reference's message.
void expect_read_as_reference(const std::string& text) {
  const auto reference = decode_json_tree(text);
  ASSERT_TRUE(reference) << text << ": " << reference.error().reason;
  message m;
  std::string_view json_content;
  ASSERT_EQ(read_envelope(text, m, json_content), envelope::decoded) << text;
  EXPECT_EQ(m, *reference) << text;
}

// `text` is not read whole by the reader, and from_json() decides it as the reference does.
void expect_left_to_general_decoders(const std::string& text) {
  message m;
  std::string_view json_content;
  EXPECT_NE(read_envelope(text, m, json_content), envelope::decoded) << text;
  const auto decoded = from_json(text);
  const auto reference = decode_json_tree(text);
  ASSERT_EQ(decoded.has_value(), reference.has_value()) << text;
  if (decoded) {
    EXPECT_EQ(*decoded, *reference) << text;
  } else {
    EXPECT_EQ(decoded.error().reason, reference.error().reason) << text;
  }
}

const std::string head = R"({"header":{"msg_id":"id-1","timestamp":1},"route":{"source":"s"},)";

TEST(envelope_reader, reads_every_golden_message_with_text_or_null_content_as_go_wrote_it) {
  const auto texts = golden_texts();
  ASSERT_EQ(texts.size(), 12u);
  int read_whole = 0;
  for (const auto& text : texts) {
    if (text.find(R"("content":{)") != std::string::npos) continue;  // object content: below
    expect_read_as_reference(text);
    ++read_whole;
  }
  EXPECT_EQ(read_whole, 10);
}

TEST(envelope_reader, object_content_is_handed_back_as_the_text_of_the_value) {
  for (const auto& text : golden_texts()) {
    const auto at = text.find(R"("content":{)");
    if (at == std::string::npos) continue;
    message m;
    std::string_view json_content;
    ASSERT_EQ(read_envelope(text, m, json_content), envelope::json_content) << text;
    const auto reference = decode_json_tree(text);
    ASSERT_TRUE(reference);
    EXPECT_EQ(m.header, reference->header);
    EXPECT_EQ(m.route, reference->route);
    EXPECT_EQ(json_content, std::string_view(text).substr(at + 10, text.size() - at - 11));
    EXPECT_EQ(*from_json(text), *reference);
  }
}

TEST(envelope_reader, content_that_is_not_a_string_is_the_text_to_the_closing_brace) {
  message m;
  std::string_view json_content;
  const std::string spaced = head + R"( "content" : [1, {"a":2}] )" + "\n}\n";
  ASSERT_EQ(read_envelope(spaced, m, json_content), envelope::json_content);
  EXPECT_EQ(json_content, R"([1, {"a":2}])");
  EXPECT_EQ(m.header.id, "id-1");
  EXPECT_EQ(m.route.source, "s");

  // Not the last member: the text is not one value, so from_json() decodes it another way.
  const std::string first = R"({"content":{"a":1},"route":{"group":"g"}})";
  ASSERT_EQ(read_envelope(first, m, json_content), envelope::json_content);
  EXPECT_EQ(json_content, R"({"a":1},"route":{"group":"g"})");
  const auto decoded = from_json(first);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->route.group, "g");
  EXPECT_EQ(decoded->content.json_value(), nlohmann::json({{"a", 1}}));

  for (const std::string& text : {head + R"("content":5})", head + R"("content":true})",
                                  head + R"("content":{"k":[null,1.5,"x"]}})"}) {
    EXPECT_EQ(read_envelope(text, m, json_content), envelope::json_content) << text;
    EXPECT_EQ(*from_json(text), *decode_json_tree(text)) << text;
  }
  // No closing brace after it: not a message at all.
  EXPECT_EQ(read_envelope(head + R"("content":[1,2])", m, json_content), envelope::other);
  // The last brace is the content's own: what is handed back is not one value, and from_json()
  // refuses the message as the reference does.
  const std::string unclosed = head + R"("content":{"a":1})";
  ASSERT_EQ(read_envelope(unclosed, m, json_content), envelope::json_content);
  EXPECT_EQ(json_content, R"({"a":1)");
  ASSERT_FALSE(from_json(unclosed));
  EXPECT_EQ(from_json(unclosed).error().reason, decode_json_tree(unclosed).error().reason);
}

TEST(envelope_reader, every_escape_and_well_formed_utf8_decode_as_the_reference_decodes_them) {
  for (const std::string content : {
           R"(\" \\ \/ \b \f \n \r \t)",
           R"(\u0000\u001f\u003c\u003E\u0026)",
           R"(\u00e9 \u20AC \ud83d\ude00 \uFFFD)",
           "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
           R"({\"event_id\":\"e1\",\"twin\":{\"temp\":{\"actual\":{\"value\":\"21\"}}}})",
           "",
           "plain",
       }) {
    expect_read_as_reference(head + R"("content":")" + content + R"("})");
    expect_read_as_reference(R"({"route":{"resource":")" + content + R"("}})");
  }
}

TEST(envelope_reader, escapes_at_every_offset_of_a_block_decode_as_the_reference_decodes_them) {
  // Quotes, escapes and multibyte characters at each position of strings up to three blocks
  // long, and at the end of the text where less than a block is left.
  for (std::size_t length = 0; length <= 48; ++length) {
    for (std::size_t at = 0; at < length; ++at) {
      for (const std::string special : {R"(\")", R"(\u00e9)", "\xc3\xa9", R"(\\)"}) {
        std::string s(length, 'a');
        s.replace(at, 1, special);
        expect_read_as_reference(head + R"("content":")" + s + R"("})");
        expect_read_as_reference(R"({"header":{"type":")" + s + R"("}})");
      }
    }
  }
}

TEST(envelope_reader, long_escaped_content_grows_its_output_and_keeps_every_byte) {
  std::string s;
  for (int i = 0; i < 3000; ++i)
    s += i % 7 == 0 ? R"(\u00e9)" : R"(\"x)";
  expect_read_as_reference(head + R"("content":")" + s + R"("})");
}

TEST(envelope_reader, whitespace_nulls_and_repeated_members_count_as_in_the_reference) {
  for (const std::string& text : {
           std::string(" \t\r\n{ \"header\" : { \"msg_id\" : \"a\" , \"sync\" : true } , "
                       "\"route\" : null , \"content\" : \"c\" } \n"),
           std::string("{}"),
           std::string(R"({"header":null,"route":null,"content":null})"),
           std::string(R"({"header":{"msg_id":null,"timestamp":null,"sync":null,"type":null}})"),
           std::string(R"({"header":{"msg_id":"a"},"header":{"type":"t"}})"),
           std::string(R"({"header":{"msg_id":"a","msg_id":"b","sync":true,"sync":false}})"),
           std::string(R"({"header":{"msg_id":"a"},"header":null})"),
           std::string(R"({"content":"a","content":null})"),
           std::string(R"({"content":null,"content":"b"})"),
           std::string(R"({"route":{"source":"a","destination":"d","group":"g","operation":"o",)"
                       R"("resource":"r"},"route":{"group":"h"}})"),
           std::string(
               R"({"header":{"parent_msg_id":"p","resourceversion":"7","type":"unixpacket"}})"),
       }) {
    expect_read_as_reference(text);
  }
}

TEST(envelope_reader, timestamps_are_read_across_the_whole_int64_range) {
  for (const std::string ts : {"0", "-0", "1", "-1", "1732612345678", "9223372036854775807",
                               "-9223372036854775808", "1000000000000000000"}) {
    expect_read_as_reference(R"({"header":{"timestamp":)" + ts + "}}");
  }
}

TEST(envelope_reader, anything_else_is_left_to_the_general_decoders_which_decide_as_before) {
  for (const std::string& text : {
           // valid messages of another shape
           std::string(R"({"header":{"msg_id":"a"},"extra":1})"),
           std::string(R"({"header":{"msg_id":"a","unknown":"x"}})"),
           std::string(R"({"route":{"source":"a","other":[1]}})"),
           std::string(R"({"head\u0065r":{"msg_id":"a"}})"),
           std::string("\xef\xbb\xbf{}"),
           std::string(R"({"header":{"timestamp":1e3}})"),
           std::string(R"({"header":{"timestamp":12.0}})"),
           std::string(R"({"header":{"timestamp":99999999999999999999}})"),
           std::string(R"({"header":{"timestamp":9223372036854775808}})"),
           std::string(R"({"header":{"timestamp":-9223372036854775809}})"),
           // wrong types
           std::string(R"({"header":"x"})"),
           std::string(R"({"header":{"msg_id":5}})"),
           std::string(R"({"header":{"sync":"true"}})"),
           std::string(R"({"route":[]})"),
           // not JSON
           std::string(""),
           std::string("[1,2]"),
           std::string(R"({"header":{"msg_id":"x")"),
           std::string(R"({"header":{"msg_id":"x"},})"),
           std::string(R"({"header" {"msg_id":"x"}})"),
           std::string(R"({"header":{"timestamp":01}})"),
           std::string(R"({"header":{"timestamp":-}})"),
           std::string(R"({"content":"a"} x)"),
           std::string(R"({"content":"a"}})"),
           std::string("{\"content\":\"raw\ttab\"}"),
           std::string("{\"content\":\"bad \xc3\x28 utf8\"}"),
           std::string("{\"content\":\"overlong \xc0\xaf\"}"),
           std::string(R"({"content":"lone \ud800 high"})"),
           std::string(R"({"content":"lone \udc00 low"})"),
           std::string(R"({"content":"bad \x escape"})"),
           std::string(R"({"content":"short \u12"})"),
           std::string(R"({"content":"unterminated)"),
           std::string(R"({"content":nul})"),
           std::string(R"({"header":{"sync":tru}})"),
           std::string(R"({"header":{"sync":truex}})"),
       }) {
    expect_left_to_general_decoders(text);
  }
}

TEST(envelope_reader, a_used_message_keeps_nothing_of_what_it_held) {
  message m;
  std::string_view json_content;
  ASSERT_EQ(read_envelope(R"({"header":{"msg_id":"a","parent_msg_id":"p","timestamp":5,)"
                          R"("resourceversion":"r","sync":true,"type":"t"},"route":{"source":)"
                          R"("s","destination":"d","group":"g","operation":"o","resource":"x"},)"
                          R"("content":"text"})",
                          m, json_content),
            envelope::decoded);
  ASSERT_EQ(read_envelope(R"({"route":{"group":"g2"}})", m, json_content), envelope::decoded);
  EXPECT_EQ(m, *decode_json_tree(R"({"route":{"group":"g2"}})"));
  EXPECT_TRUE(m.content.is_null());
}

}  // namespace
}  // namespace ebus::bus
