#include "bus/message_json.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <simdjson.h>

#include <nlohmann/json.hpp>

#include "bus/bus_error.hpp"

namespace ebus::bus {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";
constexpr int max_json_depth = 128;

// Go's escape of each ASCII byte (length 0: written as it is): the short forms for quote,
// backslash, \b, \f, \n, \r and \t, \u00XX for other controls and for <, > and & (HTML safety).
// \b and \f follow Go 1.22 and later, which current KubeEdge builds with (Go 1.23); Go 1.21 and
// earlier, like the v1.1-era golden vectors, wrote \u0008 and \u000c. Decoding takes both.
struct go_escape {
  std::array<char, 6> text{};
  std::uint8_t length = 0;
};

constexpr std::array<go_escape, 128> make_ascii_escapes() {
  std::array<go_escape, 128> t{};
  for (unsigned c = 0; c < 128; ++c) {
    const auto short_form = [&](char e) { t[c] = {{'\\', e, 0, 0, 0, 0}, 2}; };
    if (c == '"' || c == '\\') {
      short_form(static_cast<char>(c));
    } else if (c == '\b') {
      short_form('b');
    } else if (c == '\f') {
      short_form('f');
    } else if (c == '\n') {
      short_form('n');
    } else if (c == '\r') {
      short_form('r');
    } else if (c == '\t') {
      short_form('t');
    } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
      t[c] = {{'\\', 'u', '0', '0', hex_digits[c >> 4], hex_digits[c & 0xF]}, 6};
    }
  }
  return t;
}
constexpr std::array<go_escape, 128> ascii_escapes = make_ascii_escapes();

// 16 bytes compared at once: SSE2 on x86-64, NEON on ARM (GCC and Clang vector extensions).
using byte_block = signed char __attribute__((vector_size(16)));
constexpr std::size_t block_size = sizeof(byte_block);

// Whether any of the 16 bytes at `p` is a control, non-ASCII (negative as a signed char), or
// one of " \ < > &.
bool block_needs_escape(const unsigned char* p) {
  byte_block v;  // NOLINT(cppcoreguidelines-pro-type-member-init): filled by memcpy
  std::memcpy(&v, p, sizeof v);
  const byte_block hit =
      (v < 0x20) | (v == '"') | (v == '\\') | (v == '<') | (v == '>') | (v == '&');
  std::uint64_t halves[2];
  std::memcpy(halves, &hit, sizeof halves);
  return (halves[0] | halves[1]) != 0;
}

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 if it is not well formed
// (the same acceptance as Go's utf8.DecodeRuneInString: no overlongs, no surrogates, <= U+10FFFF).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  const std::size_t left = s.size() - i;
  const auto cont = [&](std::size_t k) { return (byte(k) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && cont(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3 || !cont(i + 1) || !cont(i + 2)) return 0;
    if (c == 0xE0 && byte(i + 1) < 0xA0) return 0;   // overlong
    if (c == 0xED && byte(i + 1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4 || !cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    if (c == 0xF0 && byte(i + 1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && byte(i + 1) >= 0x90) return 0;  // > U+10FFFF
    return 4;
  }
  return 0;
}

void append_go_number(std::string& out, const nlohmann::json& v) {
  std::array<char, 64> buf{};
  char* end = nullptr;
  if (v.is_number_integer() && !v.is_number_unsigned()) {
    end = std::to_chars(buf.data(), buf.data() + buf.size(), v.get<std::int64_t>()).ptr;
  } else if (v.is_number_unsigned()) {
    end = std::to_chars(buf.data(), buf.data() + buf.size(), v.get<std::uint64_t>()).ptr;
  } else {
    // Go's float64 encoding: shortest representation, 'f' format unless the magnitude is
    // below 1e-6 or at least 1e21, then 'e' with a two-digit-minimum exponent trimmed ("e-7").
    double d = v.get<double>();
    if (d == 0) d = 0;  // "-0" would decode back as the integer 0; write both zeros alike
    if (!std::isfinite(d)) {
      out += "null";  // Go refuses to encode these; a null keeps the document valid
      return;
    }
    const double a = std::fabs(d);
    const bool exponent = a != 0 && (a < 1e-6 || a >= 1e21);
    end = std::to_chars(buf.data(), buf.data() + buf.size(), d,
                        exponent ? std::chars_format::scientific : std::chars_format::fixed)
              .ptr;
    const auto n = static_cast<std::size_t>(end - buf.data());
    if (exponent && n >= 4 && buf[n - 4] == 'e' && buf[n - 3] == '-' && buf[n - 2] == '0') {
      buf[n - 2] = buf[n - 1];
      --end;
    }
  }
  out.append(buf.data(), end);
}

void append_field_name(std::string& out, bool& first, std::string_view name) {
  if (!first) out += ',';
  first = false;
  out += '"';
  out += name;
  out += "\":";
}

void append_string_field(std::string& out, bool& first, std::string_view name,
                         const std::string& value) {
  if (value.empty()) return;  // omitempty
  append_field_name(out, first, name);
  append_go_string(out, value);
}

void append_content(std::string& out, const content& c) {
  switch (c.type()) {
    case content::kind::null:
      out += "null";
      return;
    case content::kind::text:
      append_go_string(out, c.bytes());
      return;
    case content::kind::binary:
      out += '"';
      append_base64(out, c.bytes());
      out += '"';
      return;
    case content::kind::json:
      append_go_json(out, c.json_value());
      return;
  }
}

decode_error invalid(std::string reason) {
  return {make_error_code(bus_errc::invalid_message), std::move(reason)};
}

// Reads an optional string member; a present member of another type is an error, as in Go.
bool read_string(const nlohmann::json& obj, const char* key, std::string& out, std::string& err,
                 std::string_view where) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_string()) {
    err = std::string(where) + "." + key + ": expected a string";
    return false;
  }
  out = it->get<std::string>();
  return true;
}

// --- the fast path: simdjson ---------------------------------------------------------------
//
// simdjson parses a whole message in one pass without an allocation per value. It decides only
// well-formed messages: anything it refuses, and any field of the wrong type, goes to
// decode_json_tree(), which gives the reason (and handles what simdjson refuses but JSON allows,
// such as integers beyond 64 bits). Both give the same message for the same text.

// Containers simdjson may open; a deeper document goes to decode_json_tree(), which applies
// the exact limit.
constexpr std::size_t fast_path_depth = max_json_depth;
// A parser keeps buffers several times as large as the largest message it has parsed. The
// thread's parser serves messages up to this size; a larger one gets a parser of its own, freed
// with it, so that one large message does not hold megabytes for the life of the thread.
constexpr std::size_t thread_parser_max_bytes = std::size_t{256} * 1024;

// A parser with the depth limit; when it cannot allocate, it keeps another limit and
// fast_decode() leaves every message to decode_json_tree().
simdjson::dom::parser new_parser() {
  simdjson::dom::parser p;
  const auto allocated = p.allocate(4096, fast_path_depth);
  static_cast<void>(allocated);
  return p;
}

simdjson::dom::parser& thread_parser() {
  thread_local simdjson::dom::parser parser = new_parser();
  return parser;
}

nlohmann::json to_nlohmann(simdjson::dom::element e) {
  using simdjson::dom::element_type;
  switch (e.type()) {
    case element_type::OBJECT: {
      auto out = nlohmann::json::object();
      for (auto field : simdjson::dom::object(e)) {
        out[std::string(field.key)] = to_nlohmann(field.value);  // a repeated key: the last wins
      }
      return out;
    }
    case element_type::ARRAY: {
      auto out = nlohmann::json::array();
      for (auto item : simdjson::dom::array(e))
        out.push_back(to_nlohmann(item));
      return out;
    }
    case element_type::STRING:
      return std::string(std::string_view(e));
    case element_type::INT64: {
      // nlohmann types a non-negative integer as unsigned; keep the two decoders alike.
      const auto v = std::int64_t(e);
      if (v >= 0) return static_cast<std::uint64_t>(v);
      return v;
    }
    case element_type::UINT64:
      return std::uint64_t(e);
    case element_type::DOUBLE:
      return double(e);
    case element_type::BOOL:
      return bool(e);
    case element_type::NULL_VALUE:
      return nullptr;
  }
  return nullptr;
}

// The last occurrence of each named member of `obj`; members not named are ignored.
template <std::size_t N>
std::array<std::optional<simdjson::dom::element>, N> last_members(
    simdjson::dom::object obj, const std::array<std::string_view, N>& names) {
  std::array<std::optional<simdjson::dom::element>, N> found{};
  for (auto field : obj) {
    for (std::size_t i = 0; i < N; ++i) {
      if (field.key == names[i]) {
        found[i] = field.value;
        break;
      }
    }
  }
  return found;
}

// Reads an optional string member into `out`; false when present with another type.
bool fast_string(const std::optional<simdjson::dom::element>& e, std::string& out) {
  if (!e || e->is_null()) return true;
  std::string_view v;
  if (e->get_string().get(v) != simdjson::SUCCESS) return false;
  out.assign(v);
  return true;
}

// The message, or nullopt when decode_json_tree() must decide (refused text, wrong types, depth).
std::optional<message> fast_decode(simdjson::dom::parser& parser, std::string_view text) {
  if (parser.max_depth() != fast_path_depth) return std::nullopt;
  simdjson::dom::element root;
  if (parser.parse(text.data(), text.size()).get(root) != simdjson::SUCCESS) return std::nullopt;
  simdjson::dom::object doc;
  if (root.get_object().get(doc) != simdjson::SUCCESS) return std::nullopt;

  static constexpr std::array<std::string_view, 3> sections{"header", "route", "content"};
  static constexpr std::array<std::string_view, 6> header_fields{
      "msg_id", "parent_msg_id", "resourceversion", "type", "timestamp", "sync"};
  static constexpr std::array<std::string_view, 5> route_fields{"source", "destination", "group",
                                                                "operation", "resource"};
  const auto [h, r, c] = last_members(doc, sections);
  message m;
  if (h && !h->is_null()) {
    simdjson::dom::object obj;
    if (h->get_object().get(obj) != simdjson::SUCCESS) return std::nullopt;
    const auto f = last_members(obj, header_fields);
    if (!fast_string(f[0], m.header.id) || !fast_string(f[1], m.header.parent_id) ||
        !fast_string(f[2], m.header.resource_version) || !fast_string(f[3], m.header.type)) {
      return std::nullopt;
    }
    if (f[4] && !f[4]->is_null()) {
      // UINT64 only holds values beyond INT64_MAX: out of range, which the reader reports.
      if (f[4]->type() != simdjson::dom::element_type::INT64) return std::nullopt;
      m.header.timestamp = std::int64_t(*f[4]);
    }
    if (f[5] && !f[5]->is_null()) {
      if (f[5]->get_bool().get(m.header.sync) != simdjson::SUCCESS) return std::nullopt;
    }
  }
  if (r && !r->is_null()) {
    simdjson::dom::object obj;
    if (r->get_object().get(obj) != simdjson::SUCCESS) return std::nullopt;
    const auto f = last_members(obj, route_fields);
    if (!fast_string(f[0], m.route.source) || !fast_string(f[1], m.route.destination) ||
        !fast_string(f[2], m.route.group) || !fast_string(f[3], m.route.operation) ||
        !fast_string(f[4], m.route.resource)) {
      return std::nullopt;
    }
  }
  if (c) {
    std::string_view s;
    if (c->get_string().get(s) == simdjson::SUCCESS) {
      m.content = content::text(std::string(s));
    } else {
      m.content = content::json(to_nlohmann(*c));
    }
  }
  return m;
}

void append_base64_with(std::string& out, std::string_view bytes, const char* alphabet) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  // Written in place: this runs for every twin message (its resource is base64), and a
  // character-by-character append checks the capacity each time.
  const std::size_t start = out.size();
  out.resize(start + (n + 2) / 3 * 4);
  char* o = out.data() + start;
  std::size_t i = 0;
  for (; i + 2 < n; i += 3) {
    const unsigned v = (unsigned{p[i]} << 16) | (unsigned{p[i + 1]} << 8) | p[i + 2];
    *o++ = alphabet[(v >> 18) & 63];
    *o++ = alphabet[(v >> 12) & 63];
    *o++ = alphabet[(v >> 6) & 63];
    *o++ = alphabet[v & 63];
  }
  if (i + 1 == n) {
    const unsigned v = unsigned{p[i]} << 16;
    *o++ = alphabet[(v >> 18) & 63];
    *o++ = alphabet[(v >> 12) & 63];
    *o++ = '=';
    *o++ = '=';
  } else if (i + 2 == n) {
    const unsigned v = (unsigned{p[i]} << 16) | (unsigned{p[i + 1]} << 8);
    *o++ = alphabet[(v >> 18) & 63];
    *o++ = alphabet[(v >> 12) & 63];
    *o++ = alphabet[(v >> 6) & 63];
    *o++ = '=';
  }
}

}  // namespace

void append_go_string(std::string& out, std::string_view s) {
  const auto* in = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  out.reserve(out.size() + n + 2);
  out += '"';
  // Escaped bytes are gathered here and appended in blocks; clean runs go straight to `out`.
  std::array<char, 1024> buf;  // NOLINT(cppcoreguidelines-pro-type-member-init): written first
  std::size_t b = 0;
  const auto flush = [&] {
    out.append(buf.data(), b);
    b = 0;
  };
  std::size_t i = 0;
  while (i < n) {
    std::size_t j = i;
    while (n - j >= block_size && !block_needs_escape(in + j))
      j += block_size;
    if (j > i) {
      flush();
      out.append(s.data() + i, j - i);
      i = j;
    }
    // The block that stopped the scan (or the tail), byte by byte.
    const std::size_t block_end = std::min(n, i + block_size);
    while (i < block_end) {
      if (b > buf.size() - 8) flush();
      const unsigned char c = in[i];
      if (c < 0x80) {
        const go_escape& e = ascii_escapes[c];
        if (e.length == 0) {
          buf[b++] = static_cast<char>(c);
        } else {
          std::memcpy(buf.data() + b, e.text.data(), e.text.size());
          b += e.length;
        }
        ++i;
        continue;
      }
      const std::size_t len = utf8_sequence_length(s, i);
      if (len == 0) {
        std::memcpy(buf.data() + b, "\\ufffd", 6);
        b += 6;
        ++i;
      } else if (len == 3 && c == 0xE2 && in[i + 1] == 0x80 && (in[i + 2] & 0xFE) == 0xA8) {
        // U+2028 and U+2029 are escaped for JavaScript safety.
        std::memcpy(buf.data() + b, in[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
        b += 6;
        i += 3;
      } else {
        std::memcpy(buf.data() + b, in + i, len);
        b += len;
        i += len;
      }
    }
  }
  flush();
  out += '"';
}

void append_go_json(std::string& out, const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      out += "null";
      return;
    case nlohmann::json::value_t::boolean:
      out += value.get<bool>() ? "true" : "false";
      return;
    case nlohmann::json::value_t::string:
      append_go_string(out, value.get_ref<const std::string&>());
      return;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      append_go_number(out, value);
      return;
    case nlohmann::json::value_t::binary: {
      out += '"';
      const auto& bin = value.get_binary();
      append_base64(out, std::string_view(reinterpret_cast<const char*>(bin.data()), bin.size()));
      out += '"';
      return;
    }
    case nlohmann::json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& element : value) {
        if (!first) out += ',';
        first = false;
        append_go_json(out, element);
      }
      out += ']';
      return;
    }
    case nlohmann::json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, element] : value.items()) {  // std::map: sorted bytewise, as Go
        if (!first) out += ',';
        first = false;
        append_go_string(out, key);
        out += ':';
        append_go_json(out, element);
      }
      out += '}';
      return;
    }
  }
}

void append_base64(std::string& out, std::string_view bytes) {
  append_base64_with(out, bytes,
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
}

std::string base64_url(std::string_view bytes) {
  std::string out;
  append_base64_with(out, bytes,
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
  return out;
}

void encode_json(const message& m, std::string& out) {
  // Field order and omitempty follow beehive's model.MessageHeader / MessageRoute tags.
  out += R"({"header":{"msg_id":)";
  append_go_string(out, m.header.id);
  bool first = false;
  append_string_field(out, first, "parent_msg_id", m.header.parent_id);
  append_field_name(out, first, "timestamp");
  append_go_number(out, nlohmann::json(m.header.timestamp));
  append_string_field(out, first, "resourceversion", m.header.resource_version);
  if (m.header.sync) {
    append_field_name(out, first, "sync");
    out += "true";
  }
  append_string_field(out, first, "type", m.header.type);
  out += R"(},"route":{)";
  first = true;
  append_string_field(out, first, "source", m.route.source);
  append_string_field(out, first, "destination", m.route.destination);
  append_string_field(out, first, "group", m.route.group);
  append_string_field(out, first, "operation", m.route.operation);
  append_string_field(out, first, "resource", m.route.resource);
  out += R"(},"content":)";
  append_content(out, m.content);
  out += '}';
}

std::string to_json(const message& m) {
  std::string out;
  out.reserve(256 + m.content.bytes().size());
  encode_json(m, out);
  return out;
}

expected<message, decode_error> decode_json_tree(std::string_view text) {
  // Nesting is bounded so that encoding a decoded message can never exhaust the stack.
  bool too_deep = false;
  auto doc = nlohmann::json::parse(
      text,
      [&too_deep](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
        if (depth > max_json_depth) too_deep = true;
        return !too_deep;
      },
      /*allow_exceptions=*/false);
  if (too_deep) return fail(invalid("content nested deeper than the limit"));
  if (doc.is_discarded()) return fail(invalid("not a valid JSON document"));
  if (!doc.is_object()) return fail(invalid("message: expected a JSON object"));

  message m;
  std::string err;
  if (const auto h = doc.find("header"); h != doc.end() && !h->is_null()) {
    if (!h->is_object()) return fail(invalid("header: expected an object"));
    if (!read_string(*h, "msg_id", m.header.id, err, "header") ||
        !read_string(*h, "parent_msg_id", m.header.parent_id, err, "header") ||
        !read_string(*h, "resourceversion", m.header.resource_version, err, "header") ||
        !read_string(*h, "type", m.header.type, err, "header")) {
      return fail(invalid(err));
    }
    if (const auto ts = h->find("timestamp"); ts != h->end() && !ts->is_null()) {
      if (!ts->is_number_integer()) {
        return fail(invalid("header.timestamp: expected an integer (milliseconds)"));
      }
      if (ts->is_number_unsigned() && ts->get<std::uint64_t>() > INT64_MAX) {
        return fail(invalid("header.timestamp: out of range"));
      }
      m.header.timestamp = ts->get<std::int64_t>();
    }
    if (const auto s = h->find("sync"); s != h->end() && !s->is_null()) {
      if (!s->is_boolean()) return fail(invalid("header.sync: expected a boolean"));
      m.header.sync = s->get<bool>();
    }
  }
  if (const auto r = doc.find("route"); r != doc.end() && !r->is_null()) {
    if (!r->is_object()) return fail(invalid("route: expected an object"));
    if (!read_string(*r, "source", m.route.source, err, "route") ||
        !read_string(*r, "destination", m.route.destination, err, "route") ||
        !read_string(*r, "group", m.route.group, err, "route") ||
        !read_string(*r, "operation", m.route.operation, err, "route") ||
        !read_string(*r, "resource", m.route.resource, err, "route")) {
      return fail(invalid(err));
    }
  }
  if (const auto c = doc.find("content"); c != doc.end()) {
    m.content = content::json(std::move(*c));
  }
  return m;
}

expected<message, decode_error> from_json(std::string_view text) {
  // An empty text is left to the reader, which refuses it: simdjson would copy from its data
  // pointer, which may be null.
  std::optional<message> fast;
  if (!text.empty() && text.size() <= thread_parser_max_bytes) {
    fast = fast_decode(thread_parser(), text);
  } else if (!text.empty()) {
    simdjson::dom::parser own = new_parser();
    fast = fast_decode(own, text);
  }
  if (fast) return std::move(*fast);
  return decode_json_tree(text);
}

}  // namespace ebus::bus
