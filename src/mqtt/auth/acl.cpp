#include "mqtt/auth/acl.hpp"

#include <utility>

namespace ebus::mqtt::auth {

namespace {

constexpr std::uint8_t access_read = 1;
constexpr std::uint8_t access_write = 2;

constexpr bool is_blank(char c) noexcept {
  return c == ' ' || c == '\t';
}

// Splits "word  rest" into "word" and "rest" (leading blanks of the rest dropped).
std::pair<std::string_view, std::string_view> split_word(std::string_view line) {
  std::size_t end = 0;
  while (end < line.size() && !is_blank(line[end]))
    ++end;
  std::string_view rest = line.substr(end);
  while (!rest.empty() && is_blank(rest.front()))
    rest.remove_prefix(1);
  return {line.substr(0, end), rest};
}

std::string_view read_level(std::string_view text, std::size_t& pos) noexcept {
  const std::size_t slash = text.find('/', pos);
  const std::size_t end = slash == std::string_view::npos ? text.size() : slash;
  const std::string_view level = text.substr(pos, end - pos);
  pos = end + 1;
  return level;
}

bool at_end(std::string_view text, std::size_t pos) noexcept {
  return pos > text.size();
}

// A value that cannot add a level or a wildcard when put into a pattern.
bool substitutable(std::string_view value) noexcept {
  return value.find_first_of("+#/") == std::string_view::npos;
}

}  // namespace

class acl::builder {
 public:
  // `user`: the block a `topic` rule belongs to; nullopt for the anonymous block. `filter` is a
  // valid topic filter.
  void add(bool pattern, std::optional<std::string_view> user, std::uint8_t access,
           std::string_view filter) {
    rule r;
    r.access = access;
    r.first_level = static_cast<std::uint32_t>(result_.levels_.size());
    std::size_t pos = 0;
    while (!at_end(filter, pos)) {
      const std::string_view text = read_level(filter, pos);
      level l;
      if (text == "+") {
        l.kind = level_kind::plus;
      } else if (text == "#") {
        l.kind = level_kind::hash;
      } else if (pattern && has_placeholder(text)) {
        l.kind = level_kind::parts;
        l.first_part = static_cast<std::uint32_t>(result_.parts_.size());
        add_parts(text, r);
        l.part_count = static_cast<std::uint32_t>(result_.parts_.size()) - l.first_part;
      } else {
        l.text = store(text);
      }
      result_.levels_.push_back(l);
    }
    r.level_count = static_cast<std::uint32_t>(result_.levels_.size()) - r.first_level;

    rule_set* set = &result_.patterns_;
    if (!pattern) {
      set = user ? &result_.users_[std::string(*user)] : &result_.anonymous_;
    }
    (access == 0 ? set->denies : set->grants).push_back(r);
    ++result_.rule_count_;
  }

  acl take() && { return std::move(result_); }

 private:
  static bool has_placeholder(std::string_view text) {
    for (std::size_t i = 0; i + 1 < text.size(); ++i) {
      if (text[i] == '%' && (text[i + 1] == 'c' || text[i + 1] == 'u')) return true;
    }
    return false;
  }

  // Left to right as mosquitto substitutes: "%%c" is '%' then the client id.
  void add_parts(std::string_view text, rule& r) {
    std::size_t literal_start = 0;
    const auto flush = [&](std::size_t end) {
      if (end > literal_start) {
        result_.parts_.push_back(
            {part_kind::literal, store(text.substr(literal_start, end - literal_start))});
      }
    };
    std::size_t i = 0;
    while (i < text.size()) {
      if (i + 1 < text.size() && text[i] == '%' && (text[i + 1] == 'c' || text[i + 1] == 'u')) {
        flush(i);
        const bool client = text[i + 1] == 'c';
        result_.parts_.push_back({client ? part_kind::client_id : part_kind::username, {}});
        (client ? r.uses_client_id : r.uses_username) = true;
        i += 2;
        literal_start = i;
      } else {
        ++i;
      }
    }
    flush(text.size());
  }

  span store(std::string_view text) {
    const span s{static_cast<std::uint32_t>(result_.arena_.size()),
                 static_cast<std::uint32_t>(text.size())};
    result_.arena_.append(text);
    return s;
  }

  acl result_;
};

expected<acl, std::vector<file_problem>> acl::parse(std::string_view text) {
  detail::problem_list problems;
  if (text.size() > max_auth_file_bytes) {
    problems.add(0, "larger than " + std::to_string(max_auth_file_bytes) + " bytes");
    return fail(std::move(problems).take());
  }
  builder build;
  std::optional<std::string_view> user;  // nullopt until the first `user` line
  std::size_t rules = 0;

  detail::for_each_line(text, [&](std::size_t number, std::string_view raw) {
    if (raw.size() > max_acl_line_length) {
      problems.add(number, "line longer than " + std::to_string(max_acl_line_length) + " bytes");
      return;
    }
    const std::string_view line = detail::trim(raw);
    if (line.empty() || line.front() == '#') return;
    const auto [keyword, rest] = split_word(line);

    if (keyword == "user") {
      if (rest.empty()) {
        problems.add(number, "missing user name after \"user\"");
      } else if (rest.size() > max_username_length) {
        problems.add(number,
                     "user name longer than " + std::to_string(max_username_length) + " bytes");
      } else if (rest.find('\0') != std::string_view::npos) {
        problems.add(number, "user name contains a NUL byte, which no MQTT user name can");
      } else {
        user = rest;
      }
      return;
    }
    if (keyword != "topic" && keyword != "pattern") {
      problems.add(number, "unknown keyword " + detail::quote(keyword) +
                               " (expected user, topic or pattern)");
      return;
    }
    if (rest.empty()) {
      problems.add(number, "missing topic after " + detail::quote(keyword));
      return;
    }
    auto [access_word, filter] = split_word(rest);
    std::uint8_t access = access_read | access_write;
    if (filter.empty()) {
      filter = access_word;  // one word: the topic, with readwrite (as mosquitto)
    } else if (access_word == "read") {
      access = access_read;
    } else if (access_word == "write") {
      access = access_write;
    } else if (access_word == "readwrite") {
      access = access_read | access_write;
    } else if (access_word == "deny") {
      access = 0;
    } else {
      problems.add(number, "unknown access " + detail::quote(access_word) +
                               " (expected read, write, readwrite or deny)");
      return;
    }
    if (const auto valid = topic::parse_filter(filter); !valid) {
      problems.add(
          number, "invalid topic filter " + detail::quote(filter) + ": " + valid.error().message());
      return;
    }
    if (++rules > max_acl_rules) {
      if (rules == max_acl_rules + 1) {
        problems.add(number, "more than " + std::to_string(max_acl_rules) + " rules");
      }
      return;
    }
    build.add(keyword == "pattern", user, access, filter);
  });

  if (!problems.empty()) return fail(std::move(problems).take());
  return std::move(build).take();
}

expected<acl, std::string> acl::load(const std::string& path) {
  auto text = detail::read_file(path);
  if (!text) return fail("ACL file: " + text.error());
  auto parsed = parse(*text);
  if (!parsed) return fail(detail::describe("ACL file", path, parsed.error()));
  return std::move(*parsed);
}

bool acl::level_equals(const level& l, std::string_view candidate,
                       const client_identity& who) const noexcept {
  if (l.kind == level_kind::literal) return text(l.text) == candidate;
  for (std::uint32_t i = 0; i < l.part_count; ++i) {
    const part& p = parts_[l.first_part + i];
    std::string_view value;
    switch (p.kind) {
      case part_kind::literal:
        value = text(p.text);
        break;
      case part_kind::client_id:
        value = who.client_id;
        break;
      case part_kind::username:
        value = who.username.value_or(std::string_view{});
        break;
    }
    if (!candidate.starts_with(value)) return false;
    candidate.remove_prefix(value.size());
  }
  return candidate.empty();
}

// True if every topic name `topic` can match is matched by the rule. For a topic name that is
// plain matching; for a filter it is coverage. Substituted values never hold '/', '+' or '#'
// (allows() makes sure), so comparing level by level equals matching the substituted filter.
bool acl::covers(const rule& r, std::string_view topic, const client_identity& who) const noexcept {
  const level* levels = levels_.data() + r.first_level;
  std::uint32_t i = 0;
  std::size_t pos = 0;
  while (!at_end(topic, pos)) {
    const std::string_view t = read_level(topic, pos);
    if (i == r.level_count) return false;  // the topic is deeper than the rule
    const level& l = levels[i];
    const bool wildcard = l.kind == level_kind::plus || l.kind == level_kind::hash;
    // [MQTT-4.7.2-1] root-level wildcards do not match '$' topics.
    if (i == 0 && wildcard && topic.starts_with('$')) return false;
    if (l.kind == level_kind::hash) return true;
    if (t == "#") return false;  // only a rule '#' covers a filter '#'
    if (l.kind != level_kind::plus && (t == "+" || !level_equals(l, t, who))) return false;
    ++i;
  }
  // "a/#" also matches "a" [MQTT-4.7.1-2].
  return i == r.level_count || (i + 1 == r.level_count && levels[i].kind == level_kind::hash);
}

// True if some topic name matches both the rule and `filter`.
bool acl::shares_topics(const rule& r, std::string_view filter,
                        const client_identity& who) const noexcept {
  const level* levels = levels_.data() + r.first_level;
  std::uint32_t i = 0;
  std::size_t pos = 0;
  while (!at_end(filter, pos)) {
    const std::string_view f = read_level(filter, pos);
    if (i == r.level_count) return f == "#";  // "a/#" also matches "a"
    const level& l = levels[i];
    const bool rule_wildcard = l.kind == level_kind::plus || l.kind == level_kind::hash;
    const bool filter_wildcard = f == "+" || f == "#";
    // [MQTT-4.7.2-1] a root-level wildcard matches no '$' topic.
    if (i == 0 &&
        ((rule_wildcard && f.starts_with('$')) ||
         (filter_wildcard && l.kind == level_kind::literal && text(l.text).starts_with('$')))) {
      return false;
    }
    if (l.kind == level_kind::hash || f == "#") return true;
    if (!rule_wildcard && !filter_wildcard && !level_equals(l, f, who)) return false;
    ++i;
  }
  return i == r.level_count || (i + 1 == r.level_count && levels[i].kind == level_kind::hash);
}

bool acl::allows(acl_access access, std::string_view topic, const client_identity& asking) const {
  // mosquitto reads an empty username as none (checked against 2.0.11), so anonymous rules apply.
  const client_identity who{asking.client_id, asking.username && !asking.username->empty()
                                                  ? asking.username
                                                  : std::nullopt};
  const rule_set* own = &anonymous_;
  if (who.username) {
    const auto it = users_.find(*who.username);
    own = it == users_.end() ? nullptr : &it->second;
  }
  const std::uint8_t wanted = access == acl_access::write ? access_write : access_read;

  bool client_id_ok = true;
  bool username_ok = true;
  if (!patterns_.denies.empty() || !patterns_.grants.empty()) {
    client_id_ok = substitutable(who.client_id);
    username_ok = !who.username || substitutable(*who.username);
  }
  enum class usable : std::uint8_t { no, unsafe, yes };
  const auto pattern_usable = [&](const rule& r) {
    if (r.uses_username && !who.username) return usable::no;
    if ((r.uses_client_id && !client_id_ok) || (r.uses_username && !username_ok)) {
      return usable::unsafe;
    }
    return usable::yes;
  };

  if (own != nullptr) {
    for (const rule& r : own->denies) {
      if (covers(r, topic, who)) return false;
    }
  }
  for (const rule& r : patterns_.denies) {
    const usable u = pattern_usable(r);
    // A deny pattern that cannot be evaluated safely must not let anything through.
    if (u == usable::unsafe || (u == usable::yes && covers(r, topic, who))) return false;
  }
  // A topic name must be matched; a filter needs one topic it may read (the rest is checked per
  // message delivered).
  const auto grants = [&](const rule& r) {
    return access == acl_access::subscribe ? shares_topics(r, topic, who) : covers(r, topic, who);
  };
  if (own != nullptr) {
    for (const rule& r : own->grants) {
      if ((r.access & wanted) != 0 && grants(r)) return true;
    }
  }
  for (const rule& r : patterns_.grants) {
    if ((r.access & wanted) != 0 && pattern_usable(r) == usable::yes && grants(r)) return true;
  }
  return false;
}

}  // namespace ebus::mqtt::auth
