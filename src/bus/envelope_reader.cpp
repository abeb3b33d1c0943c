#include "bus/envelope_reader.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#include "bus/utf8.hpp"

namespace ebus::bus {
namespace {

// 16 bytes compared at once: SSE2 on x86-64, NEON on ARM (GCC and Clang vector extensions).
using byte_block = signed char __attribute__((vector_size(16)));
constexpr std::ptrdiff_t block_size = sizeof(byte_block);

// Whether `c` ends a string's plain run: a quote, a backslash, a control or a non-ASCII byte.
[[gnu::always_inline]] inline bool ends_plain_run(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u >= 0x80 || c == '"' || c == '\\';
}

// Offset of the first byte of `v` that ends a plain run; block_size when none does.
[[gnu::always_inline]] inline std::ptrdiff_t first_hit(byte_block v) {
  // Non-ASCII bytes are negative as signed chars, so one comparison finds them and controls.
  const byte_block hit = (v < 0x20) | (v == '"') | (v == '\\');
  std::uint64_t halves[2];
  std::memcpy(halves, &hit, sizeof halves);
  // Each hit is a byte of all ones; the first byte in memory is the low one on little-endian.
  const auto first_in = [](std::uint64_t h) -> std::ptrdiff_t {
    if constexpr (std::endian::native == std::endian::little) {
      return std::countr_zero(h) / 8;
    } else {
      return std::countl_zero(h) / 8;
    }
  };
  if (halves[0] != 0) return first_in(halves[0]);
  if (halves[1] != 0) return 8 + first_in(halves[1]);
  return block_size;
}

// The first byte at or after `p` that ends a plain run; `end` when none does.
const char* plain_run_end(const char* p, const char* end) {
  while (end - p >= block_size) {
    byte_block v;  // NOLINT(cppcoreguidelines-pro-type-member-init): filled by memcpy
    std::memcpy(&v, p, sizeof v);
    const std::ptrdiff_t n = first_hit(v);
    if (n != block_size) return p + n;
    p += block_size;
  }
  while (p != end && !ends_plain_run(*p))
    ++p;
  return p;
}

// Whether `key` is `name`: the length, then two overlapping words of each (names are 4 to 15
// bytes long), where string_view's == calls memcmp.
template <std::size_t N>
[[gnu::always_inline]] inline bool is(std::string_view key, const char (&name)[N]) {
  constexpr std::size_t n = N - 1;
  static_assert(n >= 4 && n <= 16);
  if (key.size() != n) return false;
  using word = std::conditional_t<(n >= 8), std::uint64_t, std::uint32_t>;
  word a{};
  word b{};
  word x{};
  word y{};
  std::memcpy(&a, key.data(), sizeof a);
  std::memcpy(&b, key.data() + n - sizeof b, sizeof b);
  std::memcpy(&x, name, sizeof x);
  std::memcpy(&y, name + n - sizeof y, sizeof y);
  return ((a ^ x) | (b ^ y)) == 0;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Writes code point `cp` as UTF-8 at `o` and returns the position past it.
char* write_utf8(char* o, std::uint32_t cp) {
  if (cp < 0x80) {
    *o++ = static_cast<char>(cp);
  } else if (cp < 0x800) {
    *o++ = static_cast<char>(0xC0 | (cp >> 6));
    *o++ = static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *o++ = static_cast<char>(0xE0 | (cp >> 12));
    *o++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *o++ = static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *o++ = static_cast<char>(0xF0 | (cp >> 18));
    *o++ = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *o++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *o++ = static_cast<char>(0x80 | (cp & 0x3F));
  }
  return o;
}

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

// One pass from the first byte to the last. A string without escapes is assigned in one copy;
// one with escapes is decoded as it is read. Anything outside the common shape ends the pass.
class reader {
 public:
  explicit reader(std::string_view text) noexcept
      : p_(text.data()), end_(text.data() + text.size()) {}

  envelope read(message& m, std::string_view& json_content) {
    clear(m.header);
    clear(m.route);
    bool content_seen = false;
    const bool ok = object([&](std::string_view key) {
      if (is(key, "header")) return header(m.header);
      if (is(key, "route")) return route(m.route);
      if (is(key, "content")) {
        content_seen = true;
        return content(m.content);
      }
      return false;  // another member: the general decoders ignore it
    });
    if (!ok) return json_content_ != nullptr ? content_to_the_end(json_content) : envelope::other;
    skip_space();
    if (p_ != end_) return envelope::other;
    if (!content_seen) m.content = {};
    return envelope::decoded;
  }

 private:
  // The text from the content's first byte to the closing brace of the message, without the
  // whitespace around: the content value when it is the last member. Whether it is one value
  // the caller's JSON parser decides.
  envelope content_to_the_end(std::string_view& json_content) const {
    const char* last = end_;
    while (last != json_content_ && is_space(last[-1]))
      --last;
    if (last == json_content_ || last[-1] != '}') return envelope::other;
    --last;
    while (last != json_content_ && is_space(last[-1]))
      --last;
    if (last == json_content_) return envelope::other;
    json_content = {json_content_, static_cast<std::size_t>(last - json_content_)};
    return envelope::json_content;
  }

  static void clear(struct header& h) {
    h.id.clear();
    h.parent_id.clear();
    h.timestamp = 0;
    h.resource_version.clear();
    h.sync = false;
    h.type.clear();
  }
  static void clear(struct route& r) {
    r.source.clear();
    r.destination.clear();
    r.group.clear();
    r.operation.clear();
    r.resource.clear();
  }

  bool header(struct header& h) {
    // A repeated header replaces the one before whole: its fields start empty again.
    clear(h);
    if (null()) return true;
    return object([&](std::string_view key) {
      if (is(key, "msg_id")) return string_or_null(h.id);
      if (is(key, "parent_msg_id")) return string_or_null(h.parent_id);
      if (is(key, "timestamp")) return null() ? (h.timestamp = 0, true) : integer(h.timestamp);
      if (is(key, "resourceversion")) return string_or_null(h.resource_version);
      if (is(key, "sync")) return null() ? (h.sync = false, true) : boolean(h.sync);
      if (is(key, "type")) return string_or_null(h.type);
      return false;
    });
  }

  bool route(struct route& r) {
    clear(r);
    if (null()) return true;
    return object([&](std::string_view key) {
      if (is(key, "source")) return string_or_null(r.source);
      if (is(key, "destination")) return string_or_null(r.destination);
      if (is(key, "group")) return string_or_null(r.group);
      if (is(key, "operation")) return string_or_null(r.operation);
      if (is(key, "resource")) return string_or_null(r.resource);
      return false;
    });
  }

  bool content(class content& c) {
    if (null()) {
      c = {};
      return true;
    }
    skip_space();
    if (p_ == end_) return false;
    if (*p_ != '"') {
      json_content_ = p_;  // an object, an array, a number: read() tells the caller where
      return false;
    }
    const char* const start = ++p_;
    p_ = plain_run_end(p_, end_);
    if (p_ != end_ && *p_ == '"') {
      c.assign_text({start, static_cast<std::size_t>(p_++ - start)});
      return true;
    }
    // Escapes: decoded into the thread's buffer, then copied, so that the content keeps its own
    // storage. The buffer keeps no more than a typical message's worth between messages.
    thread_local std::string decoded;
    constexpr std::size_t kept_bytes = 64 * 1024;
    decoded.assign(start, p_);
    const bool ok = string_rest(decoded);
    if (ok) c.assign_text(decoded);
    if (decoded.capacity() > kept_bytes) std::string().swap(decoded);
    return ok;
  }

  // Calls member(key) for each member of an object, which reads the value; false at the first
  // member it refuses or at anything that is not an object.
  template <class Member>
  bool object(Member&& member) {
    skip_space();
    if (p_ == end_ || *p_ != '{') return false;
    ++p_;
    skip_space();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      std::string_view k;
      if (!key(k) || !member(k)) return false;
      skip_space();
      if (p_ == end_) return false;
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != '}') return false;
      ++p_;
      return true;
    }
  }

  // A key and its colon. A key with an escape, a control or a non-ASCII byte is left to the
  // general decoders: it names no member this reader knows.
  bool key(std::string_view& k) {
    skip_space();
    if (p_ == end_ || *p_ != '"') return false;
    const char* const start = ++p_;
    p_ = plain_run_end(p_, end_);
    if (p_ == end_ || *p_ != '"') return false;
    k = {start, static_cast<std::size_t>(p_ - start)};
    ++p_;
    skip_space();
    if (p_ == end_ || *p_ != ':') return false;
    ++p_;
    return true;
  }

  bool string_or_null(std::string& out) {
    skip_space();
    if (p_ == end_) return false;
    if (*p_ != '"') {
      if (!word("null")) return false;
      out.clear();
      return true;
    }
    const char* const start = ++p_;
    p_ = plain_run_end(p_, end_);
    if (p_ != end_ && *p_ == '"') {
      out.assign(start, p_++);
      return true;
    }
    out.assign(start, p_);
    return string_rest(out);
  }

  // The rest of a string from p_ (at a byte that ends a plain run), appended to `out` decoded,
  // up to and past its closing quote. Written through a pointer into room made ahead: each
  // block of 16 bytes is stored whole and the output moves on by its plain prefix, so that text
  // full of escaped quotes (JSON payloads) costs a few instructions per escape.
  bool string_rest(std::string& out) {
    // Room for 16 bytes stored past the output and for the longest escape's output.
    constexpr std::size_t slack = block_size + 4;
    std::size_t written = out.size();
    out.resize(written + std::min<std::size_t>(static_cast<std::size_t>(end_ - p_), 256) + slack);
    char* o = out.data() + written;
    char* limit = out.data() + out.size() - slack;
    const auto ensure_room = [&] {
      if (o <= limit) return;
      written = static_cast<std::size_t>(o - out.data());
      out.resize(2 * out.size());
      o = out.data() + written;
      limit = out.data() + out.size() - slack;
    };
    for (;;) {
      ensure_room();
      if (end_ - p_ >= block_size) {
        byte_block v;  // NOLINT(cppcoreguidelines-pro-type-member-init): filled by memcpy
        std::memcpy(&v, p_, sizeof v);
        std::memcpy(o, p_, sizeof v);
        const std::ptrdiff_t n = first_hit(v);
        o += n;
        p_ += n;
        if (n == block_size) continue;
      } else {
        while (p_ != end_ && !ends_plain_run(*p_))
          *o++ = *p_++;
        if (p_ == end_) return false;
      }
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        out.resize(static_cast<std::size_t>(o - out.data()));
        return true;
      }
      if (c == '\\') {
        if (!escape(o)) return false;
      } else if (c < 0x20) {
        return false;  // a control byte must be escaped in JSON
      } else {         // non-ASCII: taken only well formed, as every decoder here requires
        const std::size_t n = utf8_sequence_length({p_, static_cast<std::size_t>(end_ - p_)}, 0);
        if (n == 0) return false;
        std::memcpy(o, p_, n);
        o += n;
        p_ += n;
      }
    }
  }

  // An escape at p_, its output written at `o` (up to 4 bytes) and `o` moved past it.
  bool escape(char*& o) {
    if (end_ - p_ < 2) return false;
    const char e = p_[1];
    p_ += 2;
    char plain = 0;
    switch (e) {
      case '"':
      case '\\':
      case '/':
        plain = e;
        break;
      case 'b':
        plain = '\b';
        break;
      case 'f':
        plain = '\f';
        break;
      case 'n':
        plain = '\n';
        break;
      case 'r':
        plain = '\r';
        break;
      case 't':
        plain = '\t';
        break;
      case 'u':
        break;
      default:
        return false;
    }
    if (e != 'u') {
      *o++ = plain;
      return true;
    }
    std::uint32_t cp = 0;
    if (!hex4(cp)) return false;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      // A high surrogate counts only with the low one that must follow it.
      std::uint32_t low = 0;
      if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
      p_ += 2;
      if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return false;
    }
    o = write_utf8(o, cp);
    return true;
  }

  bool hex4(std::uint32_t& cp) {
    if (end_ - p_ < 4) return false;
    for (int i = 0; i < 4; ++i) {
      const int v = hex_value(p_[i]);
      if (v < 0) return false;
      cp = cp << 4 | static_cast<std::uint32_t>(v);
    }
    p_ += 4;
    return true;
  }

  // A JSON integer that fits int64: a number with a fraction or an exponent, or beyond the
  // range, is left to the general decoders, which refuse it with the reason.
  bool integer(std::int64_t& out) {
    skip_space();
    const bool negative = p_ != end_ && *p_ == '-';
    if (negative) ++p_;
    const auto digit = [&] { return p_ != end_ && *p_ >= '0' && *p_ <= '9'; };
    if (!digit()) return false;
    const char* const first = p_;
    std::uint64_t v = 0;
    if (*p_ == '0') {
      ++p_;  // no digit may follow a leading zero
    } else {
      while (digit())
        v = v * 10 + static_cast<std::uint64_t>(*p_++ - '0');
    }
    // 19 digits always fit an unsigned 64-bit accumulator; more are beyond int64 anyway.
    constexpr std::ptrdiff_t most_digits = 19;
    if (p_ - first > most_digits || digit()) return false;
    if (p_ != end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
    constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (v > max + (negative ? 1 : 0)) return false;
    out = negative ? static_cast<std::int64_t>(0 - v) : static_cast<std::int64_t>(v);
    return true;
  }

  bool boolean(bool& out) {
    skip_space();
    if (word("true")) {
      out = true;
      return true;
    }
    if (word("false")) {
      out = false;
      return true;
    }
    return false;
  }

  // Takes a null (after any whitespace) when one comes next. What follows a literal is checked
  // by its container, which expects a comma or a closing brace there.
  bool null() {
    skip_space();
    return word("null");
  }

  bool word(std::string_view w) {
    if (static_cast<std::size_t>(end_ - p_) < w.size() || std::memcmp(p_, w.data(), w.size()) != 0)
      return false;
    p_ += w.size();
    return true;
  }

  void skip_space() {
    // Every whitespace byte is at most a space: one comparison passes the usual next token.
    while (p_ != end_ && static_cast<unsigned char>(*p_) <= ' ' && is_space(*p_))
      ++p_;
  }

  const char* p_;
  const char* end_;
  const char* json_content_ = nullptr;  // where a content that is not a string starts
};

}  // namespace

envelope read_envelope(std::string_view text, message& out, std::string_view& json_content) {
  return reader(text).read(out, json_content);
}

}  // namespace ebus::bus
