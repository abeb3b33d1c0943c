#include "bus/message_json.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <simdjson.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "bus/bus_error.hpp"

namespace ebus::bus {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";
constexpr int max_json_depth = 128;

void append_unicode_escape(std::string& out, unsigned code) {
  out += "\\u";
  out += hex_digits[(code >> 12) & 0xF];
  out += hex_digits[(code >> 8) & 0xF];
  out += hex_digits[(code >> 4) & 0xF];
  out += hex_digits[code & 0xF];
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

// Decodes a beehive message from the parser's events, with no document tree for the envelope:
// only a content that is an object or an array is built as a JSON value. The result is what
// decoding a whole tree and then reading its fields gives: a repeated key counts by its last
// occurrence, and the reported error is the first in field order (header, its fields, route,
// its fields), not in document order.
class envelope_reader {
 public:
  using json = nlohmann::json;

  bool null() { return value(json()); }
  bool boolean(bool v) { return value(json(v)); }
  bool number_integer(json::number_integer_t v) { return value(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return value(json(v)); }
  bool number_float(json::number_float_t v, const std::string& /*text*/) { return value(json(v)); }
  bool string(std::string& v) {
    // The common case, a header or route string, goes straight into the message.
    if (depth_ == 2 && in_section_object_ && !building_content()) {
      if (field_ == no_field) return true;
      field_error_[field_] = problem::none;
      if (std::string* out = string_field(field_)) {
        *out = std::move(v);
      } else {
        field_error_[field_] = problem::wrong_type;  // timestamp or sync
      }
      return true;
    }
    return value(json(std::move(v)));
  }
  bool binary(json::binary_t& /*v*/) { return value(json()); }  // never produced by JSON text

  bool start_object(std::size_t /*elements*/) { return open(json::value_t::object); }
  bool start_array(std::size_t /*elements*/) { return open(json::value_t::array); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(std::string& k) {
    if (depth_ > max_json_depth) return deeper_than_the_limit();
    if (building_content()) {
      pending_key_ = std::move(k);
    } else if (depth_ == 1) {
      section_ = k == "header"    ? section::header
                 : k == "route"   ? section::route
                 : k == "content" ? section::content
                                  : section::other;
      in_section_object_ = false;
    } else if (depth_ == 2 && in_section_object_) {
      field_ = field_index(k);
    }
    return true;
  }

  bool parse_error(std::size_t /*position*/, const std::string& /*token*/,
                   const nlohmann::json::exception& /*e*/) {
    return false;
  }

  [[nodiscard]] bool too_deep() const noexcept { return too_deep_; }

  // The reason of the first failing check in field order; nullopt when the message is valid.
  [[nodiscard]] std::optional<std::string> first_error() const {
    if (root_not_object_) return "message: expected a JSON object";
    if (section_error_[0]) return "header: expected an object";
    for (std::size_t i = 0; i < route_first; ++i) {
      if (field_error_[i] != problem::none) return reason(i);
    }
    if (section_error_[1]) return "route: expected an object";
    for (std::size_t i = route_first; i < field_count; ++i) {
      if (field_error_[i] != problem::none) return reason(i);
    }
    return std::nullopt;
  }

  message take() {
    if (content_set_) m_.content = content::json(std::move(content_));
    return std::move(m_);
  }

 private:
  enum class section : std::uint8_t { none, header, route, content, other };
  enum class problem : std::uint8_t { none, wrong_type, out_of_range };

  // Header fields, then route fields, each in the order the checks report them.
  static constexpr std::array<const char*, 11> field_names{
      "msg_id", "parent_msg_id", "resourceversion", "type",      "timestamp", "sync",
      "source", "destination",   "group",           "operation", "resource"};
  static constexpr std::size_t timestamp_field = 4;
  static constexpr std::size_t sync_field = 5;
  static constexpr std::size_t route_first = 6;
  static constexpr std::size_t field_count = field_names.size();
  static constexpr std::size_t no_field = field_count;

  [[nodiscard]] std::size_t field_index(std::string_view k) const {
    const std::size_t begin = section_ == section::header ? 0 : route_first;
    const std::size_t end = section_ == section::header ? route_first : field_count;
    for (std::size_t i = begin; i < end; ++i) {
      if (k == field_names[i]) return i;
    }
    return no_field;
  }

  [[nodiscard]] std::string reason(std::size_t i) const {
    const std::string name = std::string(i < route_first ? "header." : "route.") + field_names[i];
    if (field_error_[i] == problem::out_of_range) return name + ": out of range";
    if (i == timestamp_field) return name + ": expected an integer (milliseconds)";
    if (i == sync_field) return name + ": expected a boolean";
    return name + ": expected a string";
  }

  [[nodiscard]] bool building_content() const noexcept { return !content_stack_.empty(); }

  bool deeper_than_the_limit() {
    too_deep_ = true;  // bounded so that encoding a decoded message can never exhaust the stack
    return false;
  }

  std::string* string_field(std::size_t i) {
    switch (i) {
      case 0:
        return &m_.header.id;
      case 1:
        return &m_.header.parent_id;
      case 2:
        return &m_.header.resource_version;
      case 3:
        return &m_.header.type;
      case 6:
        return &m_.route.source;
      case 7:
        return &m_.route.destination;
      case 8:
        return &m_.route.group;
      case 9:
        return &m_.route.operation;
      case 10:
        return &m_.route.resource;
      default:
        return nullptr;
    }
  }

  // A header or route field's value; a repeated key replaces what an earlier one set or broke.
  void set_field(std::size_t i, json&& v) {
    if (i == no_field) return;
    field_error_[i] = problem::none;
    if (i == timestamp_field) {
      m_.header.timestamp = 0;
      if (v.is_null()) return;
      if (!v.is_number_integer()) {
        field_error_[i] = problem::wrong_type;
      } else if (v.is_number_unsigned() && v.get<std::uint64_t>() > INT64_MAX) {
        field_error_[i] = problem::out_of_range;
      } else {
        m_.header.timestamp = v.get<std::int64_t>();
      }
      return;
    }
    if (i == sync_field) {
      m_.header.sync = false;
      if (v.is_null()) return;
      if (v.is_boolean()) {
        m_.header.sync = v.get<bool>();
      } else {
        field_error_[i] = problem::wrong_type;
      }
      return;
    }
    std::string& out = *string_field(i);
    out.clear();
    if (v.is_null()) return;
    if (v.is_string()) {
      out = std::move(v.get_ref<std::string&>());
    } else {
      field_error_[i] = problem::wrong_type;
    }
  }

  // The value of a top-level key: header and route must be objects (or null), content is any.
  void set_section(json&& v) {
    switch (section_) {
      case section::header:
      case section::route:
        reset_section(v.is_null() ? problem::none : problem::wrong_type);
        break;
      case section::content:
        content_ = std::move(v);
        content_set_ = true;
        break;
      default:
        break;
    }
  }

  // A new value for header or route replaces an earlier one whole, its fields and their errors.
  void reset_section(problem p) {
    const bool header = section_ == section::header;
    if (header) {
      m_.header = {};
    } else {
      m_.route = {};
    }
    section_error_[header ? 0 : 1] = p != problem::none;
    const std::size_t begin = header ? 0 : route_first;
    const std::size_t end = header ? route_first : field_count;
    for (std::size_t i = begin; i < end; ++i)
      field_error_[i] = problem::none;
  }

  // Places a value (scalar, or a container being opened) in the content being built.
  json* add_to_content(json&& v) {
    json& parent = *content_stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    json& slot = parent[pending_key_];
    slot = std::move(v);
    return &slot;
  }

  bool value(json&& v) {
    if (depth_ > max_json_depth) return deeper_than_the_limit();
    if (building_content()) {
      add_to_content(std::move(v));
    } else if (depth_ == 0) {
      root_not_object_ = true;
    } else if (depth_ == 1) {
      set_section(std::move(v));
    } else if (depth_ == 2 && in_section_object_) {
      set_field(field_, std::move(v));
    }
    return true;
  }

  bool open(json::value_t type) {
    if (depth_ > max_json_depth) return deeper_than_the_limit();
    if (building_content()) {
      content_stack_.push_back(add_to_content(json(type)));
    } else if (depth_ == 0) {
      if (type != json::value_t::object) root_not_object_ = true;
    } else if (depth_ == 1) {
      if (section_ == section::content) {
        content_ = json(type);
        content_set_ = true;
        content_stack_.push_back(&content_);
      } else if (section_ == section::header || section_ == section::route) {
        const bool object = type == json::value_t::object;
        reset_section(object ? problem::none : problem::wrong_type);
        in_section_object_ = object;
      }
    } else if (depth_ == 2 && in_section_object_ && field_ != no_field) {
      field_error_[field_] = problem::wrong_type;  // a field is never an object or an array
    }
    ++depth_;
    return true;
  }

  bool close() {
    --depth_;
    if (building_content()) content_stack_.pop_back();
    if (depth_ == 1) in_section_object_ = false;
    return true;
  }

  message m_;
  std::size_t depth_ = 0;  // containers open
  section section_ = section::none;
  bool in_section_object_ = false;
  std::size_t field_ = no_field;
  std::array<problem, field_count> field_error_{};
  std::array<bool, 2> section_error_{};  // header, route
  bool root_not_object_ = false;
  bool too_deep_ = false;
  json content_;
  bool content_set_ = false;
  std::vector<json*> content_stack_;
  std::string pending_key_;
};

// --- the fast path: simdjson ---------------------------------------------------------------
//
// simdjson parses a whole message in one pass without an allocation per value. It decides only
// well-formed messages: anything it refuses, and any field of the wrong type, goes to
// envelope_reader, which gives the reason (and handles what simdjson refuses but JSON allows,
// such as integers beyond 64 bits). Both give the same message for the same text.

// Containers simdjson may open; a deeper document goes to envelope_reader, which applies the
// exact limit.
constexpr std::size_t fast_path_depth = max_json_depth;
// A parser keeps buffers several times as large as the largest message it has parsed. The
// thread's parser serves messages up to this size; a larger one gets a parser of its own, freed
// with it, so that one large message does not hold megabytes for the life of the thread.
constexpr std::size_t thread_parser_max_bytes = std::size_t{256} * 1024;

// A parser with the depth limit; when it cannot allocate, it keeps another limit and
// fast_decode() leaves every message to envelope_reader.
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

// The message, or nullopt when envelope_reader must decide (refused text, wrong types, depth).
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
  out += '"';
  std::size_t run_start = 0;  // copy unescaped runs in one append
  std::size_t i = 0;
  const auto flush = [&](std::size_t upto) { out.append(s.data() + run_start, upto - run_start); };
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
        ++i;
        continue;
      }
      flush(i);
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          append_unicode_escape(out, c);
          break;  // <, >, & and other controls
      }
      run_start = ++i;
      continue;
    }
    const std::size_t len = utf8_sequence_length(s, i);
    if (len == 0) {
      flush(i);
      out += "\\ufffd";
      run_start = ++i;
      continue;
    }
    // U+2028 and U+2029 (E2 80 A8/A9) are escaped for JavaScript safety.
    if (len == 3 && c == 0xE2 && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
        (static_cast<unsigned char>(s[i + 2]) & 0xFE) == 0xA8) {
      flush(i);
      append_unicode_escape(out, 0x2028u + (static_cast<unsigned char>(s[i + 2]) & 1u));
      i += 3;
      run_start = i;
      continue;
    }
    i += len;
  }
  flush(i);
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
  envelope_reader reader;
  const bool parsed = nlohmann::json::sax_parse(text, &reader);
  if (reader.too_deep()) return fail(invalid("content nested deeper than the limit"));
  if (!parsed) return fail(invalid("not a valid JSON document"));
  if (auto reason = reader.first_error()) return fail(invalid(std::move(*reason)));
  return reader.take();
}

}  // namespace ebus::bus
