#include "bus/message_json.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <simdjson.h>

#include <nlohmann/json.hpp>

#include "bus/bus_error.hpp"
#include "bus/envelope_reader.hpp"
#include "bus/utf8.hpp"

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

// What each ASCII byte becomes, itself included, padded to a word: a run of ASCII is written a
// word per byte without a branch on which bytes need escaping (JSON text content is full of
// quotes, at places no branch predictor guesses).
struct ascii_output {
  std::array<char, 8> text{};
  std::uint8_t length = 0;
};

constexpr std::array<ascii_output, 128> make_ascii_outputs() {
  std::array<ascii_output, 128> t{};
  for (unsigned c = 0; c < 128; ++c) {
    const go_escape& e = ascii_escapes[c];
    if (e.length == 0) {
      t[c].text[0] = static_cast<char>(c);
      t[c].length = 1;
    } else {
      for (std::size_t k = 0; k < e.length; ++k)
        t[c].text[k] = e.text[k];
      t[c].length = e.length;
    }
  }
  return t;
}
constexpr std::array<ascii_output, 128> ascii_outputs = make_ascii_outputs();

// 16 bytes compared at once: SSE2 on x86-64, NEON on ARM (GCC and Clang vector extensions).
using byte_block = signed char __attribute__((vector_size(16)));
constexpr std::size_t block_size = sizeof(byte_block);

// What the 16 bytes at `p` need: `first` is the offset of the first that is a control,
// non-ASCII (negative as a signed char), or one of " \ < > & (block_size when none is);
// `ascii` whether all are ASCII.
struct block_scan {
  std::size_t first;
  bool ascii;
};

[[gnu::always_inline]] inline block_scan scan_block(const unsigned char* p) {
  byte_block v;  // NOLINT(cppcoreguidelines-pro-type-member-init): filled by memcpy
  std::memcpy(&v, p, sizeof v);
  const byte_block hit =
      (v < 0x20) | (v == '"') | (v == '\\') | (v == '<') | (v == '>') | (v == '&');
  std::uint64_t halves[2];
  std::memcpy(halves, &hit, sizeof halves);
  if ((halves[0] | halves[1]) == 0) return {block_size, true};
  // Each hit is a byte of all ones; the first byte in memory is the low one on little-endian.
  const auto first_in = [](std::uint64_t h) -> std::size_t {
    if constexpr (std::endian::native == std::endian::little) {
      return static_cast<std::size_t>(std::countr_zero(h)) / 8;
    } else {
      return static_cast<std::size_t>(std::countl_zero(h)) / 8;
    }
  };
  std::uint64_t bytes[2];
  std::memcpy(bytes, p, sizeof bytes);
  const bool ascii = ((bytes[0] | bytes[1]) & 0x8080808080808080) == 0;
  return {halves[0] != 0 ? first_in(halves[0]) : 8 + first_in(halves[1]), ascii};
}

// Writes straight into a string's storage: room is made ahead by resizing (one allocation for a
// whole message when the first guess holds), bytes go in through a pointer without the capacity
// check and terminator of each append, and finish() cuts the string to what was written.
class json_writer {
 public:
  explicit json_writer(std::string& out) noexcept
      : out_(out), start_(out.size()), end_(out.size()) {}
  json_writer(const json_writer&) = delete;
  json_writer& operator=(const json_writer&) = delete;

  /// The write position, with at least `n` bytes of room behind it (up to limit()).
  [[gnu::always_inline]] char* room(std::size_t n) {
    if (out_.size() - end_ < n) [[unlikely]]
      grow(n);
    return out_.data() + end_;
  }
  [[nodiscard]] const char* limit() const noexcept { return out_.data() + out_.size(); }
  /// Everything before `p` (a position within the room) is written.
  void commit(const char* p) noexcept { end_ = static_cast<std::size_t>(p - out_.data()); }
  void put(std::string_view s) {
    char* p = room(s.size());
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    commit(p + s.size());
  }
  void put(char c) {
    char* p = room(1);
    *p = c;
    commit(p + 1);
  }
  /// Cuts the string to what was written; call before the string is used.
  void finish() {
    out_.resize(end_);
    finished_ = true;
  }
  ~json_writer() {
    if (!finished_) out_.resize(end_);  // an allocation failed: no unwritten room is left
  }

 private:
  [[gnu::noinline]] void grow(std::size_t n) {
    // Half again what was written besides: escaping that outgrows the first guess makes room a
    // few times, not at every escape.
    out_.resize(end_ + n + (end_ - start_) / 2);
  }

  std::string& out_;
  std::size_t start_;
  std::size_t end_;
  bool finished_ = false;
};

void write_int(json_writer& w, std::int64_t v) {
  constexpr std::size_t longest = 20;  // "-9223372036854775808"
  char* p = w.room(longest);
  w.commit(std::to_chars(p, p + longest, v).ptr);
}

void write_go_number(json_writer& w, const nlohmann::json& v) {
  constexpr std::size_t longest = 64;
  char* const p = w.room(longest);
  char* end = nullptr;
  if (v.is_number_integer() && !v.is_number_unsigned()) {
    end = std::to_chars(p, p + longest, v.get<std::int64_t>()).ptr;
  } else if (v.is_number_unsigned()) {
    end = std::to_chars(p, p + longest, v.get<std::uint64_t>()).ptr;
  } else {
    // Go's float64 encoding: shortest representation, 'f' format unless the magnitude is
    // below 1e-6 or at least 1e21, then 'e' with a two-digit-minimum exponent trimmed ("e-7").
    double d = v.get<double>();
    if (d == 0) d = 0;  // "-0" would decode back as the integer 0; write both zeros alike
    if (!std::isfinite(d)) {
      w.put("null");  // Go refuses to encode these; a null keeps the document valid
      return;
    }
    const double a = std::fabs(d);
    const bool exponent = a != 0 && (a < 1e-6 || a >= 1e21);
    end = std::to_chars(p, p + longest, d,
                        exponent ? std::chars_format::scientific : std::chars_format::fixed)
              .ptr;
    const auto n = static_cast<std::size_t>(end - p);
    if (exponent && n >= 4 && p[n - 4] == 'e' && p[n - 3] == '-' && p[n - 2] == '0') {
      p[n - 2] = p[n - 1];
      --end;
    }
  }
  w.commit(end);
}

constexpr std::size_t escape_room = 6;  // the most one byte of a string takes once escaped

[[gnu::always_inline]] inline bool needs_escape(unsigned char c) {
  return c >= 0x80 || ascii_escapes[c].length != 0;
}

// Whether any byte of `x` needs escaping: the test of scan_block() on a word (exact for the
// word as a whole, not per byte).
[[gnu::always_inline]] inline bool word_needs_escape(std::uint64_t x) {
  constexpr std::uint64_t ones = 0x0101010101010101;
  constexpr std::uint64_t high = ones * 0x80;
  const auto has_below = [&](std::uint64_t n) { return (x - ones * n) & ~x & high; };
  const auto has = [&](unsigned char b) {
    const std::uint64_t y = x ^ (ones * b);
    return (y - ones) & ~y & high;
  };
  return ((x & high) | has_below(0x20) | has('"') | has('\\') | has('<') | has('>') | has('&')) !=
         0;
}

// Copies the last `n` (< 16) bytes of a string to `out` when none needs escaping; false (and
// nothing written) otherwise. Two overlapping word loads, so nothing past the string is read
// and no byte-sized stores are read back as a word.
[[gnu::always_inline]] inline bool copy_clean_tail(const unsigned char* in, std::size_t n,
                                                   char* out) {
  if (n >= 8) {
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    std::memcpy(&a, in, 8);
    std::memcpy(&b, in + n - 8, 8);
    if (word_needs_escape(a) || word_needs_escape(b)) return false;
    std::memcpy(out, &a, 8);
    std::memcpy(out + n - 8, &b, 8);
    return true;
  }
  if (n >= 4) {
    std::uint32_t a = 0;
    std::uint32_t b = 0;
    std::memcpy(&a, in, 4);
    std::memcpy(&b, in + n - 4, 4);
    if (word_needs_escape(a | std::uint64_t{b} << 32)) return false;
    std::memcpy(out, &a, 4);
    std::memcpy(out + n - 4, &b, 4);
    return true;
  }
  for (std::size_t k = 0; k < n; ++k) {
    if (needs_escape(in[k])) return false;
  }
  for (std::size_t k = 0; k < n; ++k)
    out[k] = static_cast<char>(in[k]);
  return true;
}

void write_go_string(json_writer& w, std::string_view s) {
  const auto* in = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  // Room for the rest of the string unescaped, the closing quote and one whole block stored
  // past the end: kept so at every step, so clean bytes never ask for room.
  const auto enough = [&](std::size_t i) { return n - i + 1 + block_size; };
  char* o = w.room(1 + enough(0));
  *o++ = '"';
  std::size_t i = 0;
  // Writes in[i] escaped, or the well-formed UTF-8 sequence it starts, and moves past it.
  const auto escape_one = [&] {
    if (static_cast<std::size_t>(w.limit() - o) < escape_room + enough(i)) {
      w.commit(o);
      o = w.room(escape_room + enough(i));
    }
    const unsigned char c = in[i];
    if (c < 0x80) {
      const go_escape& e = ascii_escapes[c];
      std::memcpy(o, e.text.data(), e.text.size());
      o += e.length;
      ++i;
      return;
    }
    const std::size_t len = utf8_sequence_length(s, i);
    if (len == 0) {
      std::memcpy(o, "\\ufffd", escape_room);
      o += escape_room;
      ++i;
    } else if (len == 3 && c == 0xE2 && in[i + 1] == 0x80 && (in[i + 2] & 0xFE) == 0xA8) {
      // U+2028 and U+2029 are escaped for JavaScript safety.
      std::memcpy(o, in[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", escape_room);
      o += escape_room;
      i += 3;
    } else {
      std::memcpy(o, in + i, len);
      o += len;
      i += len;
    }
  };
  while (n - i >= block_size) {
    const block_scan b = scan_block(in + i);
    if (b.first == block_size) {  // clean: copied as it is
      std::memcpy(o, in + i, block_size);
      o += block_size;
      i += block_size;
      continue;
    }
    if (b.ascii) {
      // Each byte's output, a word at a time; the output moves on by its length.
      constexpr std::size_t most = (block_size - 1) * escape_room + sizeof(ascii_output::text);
      if (static_cast<std::size_t>(w.limit() - o) < most + enough(i)) {
        w.commit(o);
        o = w.room(most + enough(i));
      }
      for (std::size_t k = 0; k < block_size; ++k) {
        const ascii_output& e = ascii_outputs[in[i + k]];
        std::memcpy(o, e.text.data(), e.text.size());
        o += e.length;
      }
      i += block_size;
      continue;
    }
    // Non-ASCII text: its clean prefix, then sequence by sequence. The block is stored whole
    // and the output moves on by the prefix only: what follows is overwritten.
    std::memcpy(o, in + i, block_size);
    o += b.first;
    i += b.first;
    do {
      escape_one();
    } while (i < n && needs_escape(in[i]));
  }
  if (copy_clean_tail(in + i, n - i, o)) {
    o += n - i;
  } else {
    while (i < n) {
      if (needs_escape(in[i])) {
        escape_one();
      } else {
        *o++ = static_cast<char>(in[i++]);
      }
    }
  }
  *o++ = '"';
  w.commit(o);
}

/// Two base64 characters for every 12-bit value, so that one lookup writes two characters.
struct base64_alphabet {
  std::array<char, 2 * 4096> pairs{};

  /// The character for the 6-bit value `v` (the second of pair v).
  [[nodiscard]] constexpr char single(unsigned v) const { return pairs[2 * v + 1]; }
};

constexpr base64_alphabet make_alphabet(std::string_view chars) {
  base64_alphabet a;
  for (unsigned v = 0; v < 4096; ++v) {
    a.pairs[2 * v] = chars[v >> 6];
    a.pairs[2 * v + 1] = chars[v & 63];
  }
  return a;
}

constexpr base64_alphabet base64_standard =
    make_alphabet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
constexpr base64_alphabet base64_url_safe =
    make_alphabet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");

void write_base64(json_writer& w, std::string_view bytes, const base64_alphabet& alphabet) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  char* o = w.room((n + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < n; i += 3) {
    const unsigned v = (unsigned{p[i]} << 16) | (unsigned{p[i + 1]} << 8) | p[i + 2];
    std::memcpy(o, &alphabet.pairs[2 * (v >> 12)], 2);
    std::memcpy(o + 2, &alphabet.pairs[2 * (v & 4095)], 2);
    o += 4;
  }
  if (i + 1 == n) {
    const unsigned v = unsigned{p[i]} << 16;
    *o++ = alphabet.single((v >> 18) & 63);
    *o++ = alphabet.single((v >> 12) & 63);
    *o++ = '=';
    *o++ = '=';
  } else if (i + 2 == n) {
    const unsigned v = (unsigned{p[i]} << 16) | (unsigned{p[i + 1]} << 8);
    *o++ = alphabet.single((v >> 18) & 63);
    *o++ = alphabet.single((v >> 12) & 63);
    *o++ = alphabet.single((v >> 6) & 63);
    *o++ = '=';
  }
  w.commit(o);
}

void write_go_json(json_writer& w, const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      w.put("null");
      return;
    case nlohmann::json::value_t::boolean:
      w.put(value.get<bool>() ? "true" : "false");
      return;
    case nlohmann::json::value_t::string:
      write_go_string(w, value.get_ref<const std::string&>());
      return;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      write_go_number(w, value);
      return;
    case nlohmann::json::value_t::binary: {
      const auto& bin = value.get_binary();
      w.put('"');
      write_base64(w, std::string_view(reinterpret_cast<const char*>(bin.data()), bin.size()),
                   base64_standard);
      w.put('"');
      return;
    }
    case nlohmann::json::value_t::array: {
      w.put('[');
      bool first = true;
      for (const auto& element : value) {
        if (!first) w.put(',');
        first = false;
        write_go_json(w, element);
      }
      w.put(']');
      return;
    }
    case nlohmann::json::value_t::object: {
      w.put('{');
      bool first = true;
      for (const auto& [key, element] : value.items()) {  // std::map: sorted bytewise, as Go
        if (!first) w.put(',');
        first = false;
        write_go_string(w, key);
        w.put(':');
        write_go_json(w, element);
      }
      w.put('}');
      return;
    }
  }
}

// `,"name":` (without the comma for the first field of an object).
[[gnu::always_inline]] inline void write_key(json_writer& w, bool& first, std::string_view name) {
  char* p = w.room(name.size() + 4);
  if (!first) *p++ = ',';
  first = false;
  *p++ = '"';
  std::memcpy(p, name.data(), name.size());
  p += name.size();
  *p++ = '"';
  *p++ = ':';
  w.commit(p);
}

[[gnu::always_inline]] inline void write_string_field(json_writer& w, bool& first,
                                                      std::string_view name,
                                                      const std::string& value) {
  if (value.empty()) return;  // omitempty
  write_key(w, first, name);
  write_go_string(w, value);
}

void write_content(json_writer& w, const content& c) {
  switch (c.type()) {
    case content::kind::null:
      w.put("null");
      return;
    case content::kind::text:
      write_go_string(w, c.bytes());
      return;
    case content::kind::binary:
      w.put('"');
      write_base64(w, c.bytes(), base64_standard);
      w.put('"');
      return;
    case content::kind::json:
      write_go_json(w, c.json_value());
      return;
  }
}

// What a message usually takes as JSON: exact for clean strings and text, with a little over
// for the escapes that JSON text content (quotes) carries; more is made room for as needed.
std::size_t expected_json_size(const message& m) {
  // Keys, punctuation, timestamp and sync, and the room write_go_string() asks for to expand a
  // block of ASCII with escapes in it.
  constexpr std::size_t envelope = 160 + 128;
  const auto& h = m.header;
  const auto& r = m.route;
  const std::size_t n = m.content.bytes().size();
  const std::size_t content = m.content.type() == content::kind::binary ? (n + 2) / 3 * 4 + 2
                              : m.content.type() == content::kind::json ? 64
                                                                        : n + n / 8 + 2;
  return envelope + h.id.size() + h.parent_id.size() + h.resource_version.size() + h.type.size() +
         r.source.size() + r.destination.size() + r.group.size() + r.operation.size() +
         r.resource.size() + content;
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

// Whether `e` nests more than `levels` containers (itself included).
bool deeper_than(simdjson::dom::element e, std::size_t levels) {
  using simdjson::dom::element_type;
  if (e.type() == element_type::OBJECT) {
    if (levels == 0) return true;
    for (auto field : simdjson::dom::object(e)) {
      if (deeper_than(field.value, levels - 1)) return true;
    }
  } else if (e.type() == element_type::ARRAY) {
    if (levels == 0) return true;
    for (auto item : simdjson::dom::array(e)) {
      if (deeper_than(item, levels - 1)) return true;
    }
  }
  return false;
}

// The content read_envelope() leaves as JSON text: `c` when `text` is one JSON value within the
// nesting limit (the message's own object takes one level); false when decode_json_tree() must
// decide.
bool fast_content(std::string_view text, content& c) {
  if (text.size() > thread_parser_max_bytes) return false;
  simdjson::dom::parser& parser = thread_parser();
  if (parser.max_depth() != fast_path_depth) return false;
  simdjson::dom::element root;
  if (parser.parse(text.data(), text.size()).get(root) != simdjson::SUCCESS) return false;
  if (deeper_than(root, fast_path_depth - 1)) return false;
  c = content::json(to_nlohmann(root));
  return true;
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

// Reads an optional string member into `out` (emptied when absent); false when present with
// another type.
bool fast_string(const std::optional<simdjson::dom::element>& e, std::string& out) {
  if (!e || e->is_null()) {
    out.clear();
    return true;
  }
  std::string_view v;
  if (e->get_string().get(v) != simdjson::SUCCESS) return false;
  out.assign(v);
  return true;
}

// Decodes into `m`, every field written; false when decode_json_tree() must decide (refused
// text, wrong types, depth), and `m` is then left partly written.
bool fast_decode(simdjson::dom::parser& parser, std::string_view text, message& m) {
  if (parser.max_depth() != fast_path_depth) return false;
  simdjson::dom::element root;
  if (parser.parse(text.data(), text.size()).get(root) != simdjson::SUCCESS) return false;
  simdjson::dom::object doc;
  if (root.get_object().get(doc) != simdjson::SUCCESS) return false;

  static constexpr std::array<std::string_view, 3> sections{"header", "route", "content"};
  static constexpr std::array<std::string_view, 6> header_fields{
      "msg_id", "parent_msg_id", "resourceversion", "type", "timestamp", "sync"};
  static constexpr std::array<std::string_view, 5> route_fields{"source", "destination", "group",
                                                                "operation", "resource"};
  const auto [h, r, c] = last_members(doc, sections);
  if (!h || h->is_null()) m.header = {};
  if (!r || r->is_null()) m.route = {};
  if (h && !h->is_null()) {
    simdjson::dom::object obj;
    if (h->get_object().get(obj) != simdjson::SUCCESS) return false;
    const auto f = last_members(obj, header_fields);
    if (!fast_string(f[0], m.header.id) || !fast_string(f[1], m.header.parent_id) ||
        !fast_string(f[2], m.header.resource_version) || !fast_string(f[3], m.header.type)) {
      return false;
    }
    m.header.timestamp = 0;
    if (f[4] && !f[4]->is_null()) {
      // UINT64 only holds values beyond INT64_MAX: out of range, which the reader reports.
      if (f[4]->type() != simdjson::dom::element_type::INT64) return false;
      m.header.timestamp = std::int64_t(*f[4]);
    }
    m.header.sync = false;
    if (f[5] && !f[5]->is_null()) {
      if (f[5]->get_bool().get(m.header.sync) != simdjson::SUCCESS) return false;
    }
  }
  if (r && !r->is_null()) {
    simdjson::dom::object obj;
    if (r->get_object().get(obj) != simdjson::SUCCESS) return false;
    const auto f = last_members(obj, route_fields);
    if (!fast_string(f[0], m.route.source) || !fast_string(f[1], m.route.destination) ||
        !fast_string(f[2], m.route.group) || !fast_string(f[3], m.route.operation) ||
        !fast_string(f[4], m.route.resource)) {
      return false;
    }
  }
  if (!c) {
    m.content = {};
  } else if (std::string_view s; c->get_string().get(s) == simdjson::SUCCESS) {
    m.content.assign_text(s);
  } else {
    m.content = content::json(to_nlohmann(*c));
  }
  return true;
}

}  // namespace

void append_go_string(std::string& out, std::string_view s) {
  json_writer w(out);
  write_go_string(w, s);
  w.finish();
}

void append_go_json(std::string& out, const nlohmann::json& value) {
  json_writer w(out);
  write_go_json(w, value);
  w.finish();
}

void append_base64(std::string& out, std::string_view bytes) {
  json_writer w(out);
  write_base64(w, bytes, base64_standard);
  w.finish();
}

std::string base64_url(std::string_view bytes) {
  std::string out;
  json_writer w(out);
  write_base64(w, bytes, base64_url_safe);
  w.finish();
  return out;
}

void encode_json(const message& m, std::string& out) {
  json_writer w(out);
  w.room(expected_json_size(m));
  // Field order and omitempty follow beehive's model.MessageHeader / MessageRoute tags.
  w.put(R"({"header":{"msg_id":)");
  write_go_string(w, m.header.id);
  bool first = false;
  write_string_field(w, first, "parent_msg_id", m.header.parent_id);
  write_key(w, first, "timestamp");
  write_int(w, m.header.timestamp);
  write_string_field(w, first, "resourceversion", m.header.resource_version);
  if (m.header.sync) {
    write_key(w, first, "sync");
    w.put("true");
  }
  write_string_field(w, first, "type", m.header.type);
  w.put(R"(},"route":{)");
  first = true;
  write_string_field(w, first, "source", m.route.source);
  write_string_field(w, first, "destination", m.route.destination);
  write_string_field(w, first, "group", m.route.group);
  write_string_field(w, first, "operation", m.route.operation);
  write_string_field(w, first, "resource", m.route.resource);
  w.put(R"(},"content":)");
  write_content(w, m.content);
  w.put('}');
  w.finish();
}

std::string to_json(const message& m) {
  std::string out;
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

expected<void, decode_error> decode_json(std::string_view text, message& out) {
  // The common shape in one pass (a content that is an object parsed by simdjson); then
  // simdjson for any well-formed message; the reference decides the rest and gives every
  // refusal its reason. An empty text is left to the reference:
  // simdjson would copy from its data pointer, which may be null.
  std::string_view json_content;
  switch (read_envelope(text, out, json_content)) {
    case envelope::decoded:
      return {};
    case envelope::json_content:
      if (fast_content(json_content, out.content)) return {};
      break;
    case envelope::other:
      break;
  }
  bool fast = false;
  if (!text.empty() && text.size() <= thread_parser_max_bytes) {
    fast = fast_decode(thread_parser(), text, out);
  } else if (!text.empty()) {
    simdjson::dom::parser own = new_parser();
    fast = fast_decode(own, text, out);
  }
  if (fast) return {};
  auto decoded = decode_json_tree(text);
  if (!decoded) return fail(std::move(decoded.error()));
  out = std::move(*decoded);
  return {};
}

expected<message, decode_error> from_json(std::string_view text) {
  // Decoded in place, so the message is not moved on its way out.
  expected<message, decode_error> result;
  if (auto ok = decode_json(text, *result); !ok) result = fail(std::move(ok.error()));
  return result;
}

}  // namespace ebus::bus
