// The ACL file parser and checker. The first byte picks a mode:
//   even: the rest is an ACL file. Parsing never crashes, problems come in line order, and an
//         accepted file answers allows() alike for a topic name read and subscribed to.
//   odd:  the rest is "filter\nname\nclient id[\nusername]": one rule "pattern read <filter>"
//         must grant exactly what topic::matches() says of the filter with %c/%u substituted,
//         and it grants a subscription to every filter it shares a topic with (checked on
//         sample topics of the filter), and to none when it cannot be used for that client.
// Aborts on a violated invariant.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mqtt/auth/acl.hpp"

namespace {

using namespace ebus::mqtt;
using namespace ebus::mqtt::auth;

void check(bool condition) {
  if (!condition) std::abort();
}

std::vector<std::string_view> split_lines(std::string_view text, std::size_t most) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < most) {
    const std::size_t nl = text.find('\n');
    if (nl == std::string_view::npos) break;
    parts.push_back(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
  parts.push_back(text);
  return parts;
}

// mosquitto 2.0's textual substitution, left to right.
std::string substitute(std::string_view pattern, std::string_view client_id,
                       std::string_view username) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (i + 1 < pattern.size() && pattern[i] == '%' &&
        (pattern[i + 1] == 'c' || pattern[i + 1] == 'u')) {
      out += pattern[i + 1] == 'c' ? client_id : username;
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

bool uses(std::string_view pattern, char which) {
  for (std::size_t i = 0; i + 1 < pattern.size(); ++i) {
    if (pattern[i] == '%' && (pattern[i + 1] == 'c' || pattern[i + 1] == 'u')) {
      if (pattern[i + 1] == which) return true;
      ++i;
    }
  }
  return false;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

// Topic names that `filter` matches: each '+' made `plus`, and '#' either dropped with its '/'
// ("a/#" matches "a") or made two levels.
std::vector<std::string> instances(std::string_view filter) {
  std::vector<std::string> out;
  for (const std::string_view plus : {"x", ""}) {
    for (const bool drop_hash : {true, false}) {
      std::vector<std::string_view> levels;
      std::size_t pos = 0;
      while (pos <= filter.size()) {
        const std::size_t slash = std::min(filter.find('/', pos), filter.size());
        const std::string_view level = filter.substr(pos, slash - pos);
        pos = slash + 1;
        if (level == "#") {
          if (!drop_hash || levels.empty()) levels.push_back("x");  // a lone '#' needs a level
          if (!drop_hash) levels.push_back("y");
          break;
        }
        levels.push_back(level == "+" ? plus : level);
      }
      std::string name;
      for (std::size_t i = 0; i < levels.size(); ++i) {
        if (i > 0) name += '/';
        name += levels[i];
      }
      if (topic::parse_name(name)) out.push_back(std::move(name));
    }
  }
  return out;
}

void whole_file(std::string_view text) {
  const std::size_t lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) +
                            (text.empty() || text.back() == '\n' ? 0 : 1);
  const auto parsed = acl::parse(text);
  if (!parsed) {
    const auto& problems = parsed.error();
    check(!problems.empty() && problems.size() <= max_reported_problems + 1);
    for (std::size_t i = 0; i < problems.size(); ++i) {
      check(problems[i].line >= 1 && problems[i].line <= lines);
      check(!problems[i].reason.empty());
      if (i > 0) check(problems[i - 1].line <= problems[i].line);
    }
    return;
  }
  check(parsed->rule_count() <= lines);
  // Every line's last word is a candidate topic; identities include the user names of the file.
  std::vector<std::string_view> words = {"a", "a/b", "$SYS/x", "c/d/e"};
  std::vector<std::optional<std::string_view>> users = {std::nullopt, "alice", "", "a/b"};
  for (const std::string_view line : split_lines(text, 64)) {
    const std::size_t space = line.find_last_of(' ');
    words.push_back(space == std::string_view::npos ? line : line.substr(space + 1));
    if (line.starts_with("user ")) users.emplace_back(line.substr(5));
  }
  for (const auto& user : users) {
    for (const std::string_view client : {"c", "", "c+"}) {
      const client_identity who{client, user};
      for (const std::string_view word : words) {
        const bool read = parsed->allows(acl_access::read, word, who);
        (void)parsed->allows(acl_access::write, word, who);
        const bool subscribe = parsed->allows(acl_access::subscribe, word, who);
        // A topic name as a filter covers exactly itself.
        if (topic::parse_name(word)) check(read == subscribe);
      }
    }
  }
}

void single_rule(std::string_view input) {
  const std::vector<std::string_view> f = split_lines(input, 4);
  if (f.size() < 3) return;
  const std::string_view filter = f[0];
  const std::string_view name = f[1];
  const std::string_view client = f[2];
  const std::optional<std::string_view> user =
      f.size() > 3 ? std::optional<std::string_view>(f[3]) : std::nullopt;
  // Keep the rule text what the parser will read as the filter.
  if (filter.empty() || is_space(filter.front()) || is_space(filter.back())) return;
  const auto parsed = acl::parse("pattern read " + std::string(filter) + "\n");
  if (!parsed) {
    check(!topic::parse_filter(filter));
    return;
  }
  check(static_cast<bool>(topic::parse_filter(filter)));
  const client_identity who{client, user};
  const auto safe = [](std::string_view v) { return v.find_first_of("+#/") == v.npos; };
  const bool usable =
      (!uses(filter, 'u') || (user && !user->empty() && safe(*user))) &&  // "" is no username
      (!uses(filter, 'c') || safe(client));
  const std::string substituted = substitute(filter, client, user.value_or(""));

  if (topic::parse_name(name)) {
    const bool expected = usable && topic::matches(substituted, name);
    check(parsed->allows(acl_access::read, name, who) == expected);
    check(!parsed->allows(acl_access::write, name, who));
  }
  if (topic::parse_filter(name)) {
    const bool granted = parsed->allows(acl_access::subscribe, name, who);
    if (granted) check(usable);
    // A topic of the filter that the rule matches is one they share.
    const auto samples = instances(name);
    if (usable && std::any_of(samples.begin(), samples.end(), [&](const std::string& t) {
          return topic::matches(substituted, t);
        })) {
      check(granted);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1U) == 0) {
    whole_file(rest);
  } else {
    single_rule(rest);
  }
  return 0;
}
