#pragma once
// mosquitto's `acl_file` (2.0): who may publish to, receive from and subscribe to which topics.
//
//   # comment
//   topic read public/#          lines before the first `user` line: clients without a username
//   user alice                   the rest of the line, blanks trimmed; may contain spaces
//   topic readwrite alice/#      `topic [read|write|readwrite|deny] <filter>`, no type = readwrite
//   pattern write devices/%c/#   for every client; %c = client id, %u = username
//
// The filter is the rest of the line and must be a valid topic filter. A `topic` line with a
// single word is a readwrite rule for that word ("topic read" allows the topic "read"), as in
// mosquitto. Lines are checked in full; a file with any problem is refused as a whole.
//
// Decisions (mosquitto 2.0.11 was checked by running it):
// - A client's rules are its user's block (the anonymous block without a username; a username
//   with no block has none) plus every pattern. Access is refused if any of those rules that
//   matches is `deny`; otherwise granted if one grants it; otherwise refused, so an empty ACL
//   file refuses everything. mosquitto checks the user block before the patterns, so there a
//   matching `topic` grant beats a matching `pattern deny`; here the deny wins.
// - A pattern is substituted only with values that cannot change its shape: a client id or
//   username containing '+', '#' or '/' makes the patterns that use it grant nothing (and a deny
//   pattern that uses it refuse everything), since "users/%u/#" for user "bob/x" would otherwise
//   reach into user "bob"'s tree. mosquitto 2.0 refuses only '+' and '#' (1.x also '/'), and
//   refuses all patterns, even ones without %c/%u, for such a client.
// - A pattern with %u grants and denies nothing to a client without a username (as mosquitto).
//   An empty username counts as none, as in mosquitto.
// - Subscribe: mosquitto 2.0 (and its later acl-file plugin) grant every SUBSCRIBE and filter at
//   delivery with `read`. Here a filter is refused (SUBACK 0x80) when it could never deliver
//   anything: no read rule shares a topic with it ("sensors/#" shares topics with "#" and with
//   "+/temp", none with "secret/#"), or a deny rule covers all of it. A filter that is granted
//   may still match topics the client may not read: the broker checks `read` for each message
//   delivered, so "#" with only "sensors/#" readable receives the sensors' messages, as in
//   mosquitto.
// - Leading blanks, tabs between words and '#' after leading blanks are accepted, where
//   mosquitto refuses the file. Filters must also be valid UTF-8 without NUL, as MQTT requires.
//
// Thread safety: distinct objects safe; const member functions of a shared object safe.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/expected.hpp"
#include "common/string_hash.hpp"
#include "mqtt/auth/file_problem.hpp"
#include "mqtt/topic/topic.hpp"

namespace ebus::mqtt::auth {

/// Most `topic` and `pattern` rules one ACL file may hold.
inline constexpr std::size_t max_acl_rules = 100'000;

/// Longest line of an ACL file: a longest topic filter plus room for the keyword and blanks.
inline constexpr std::size_t max_acl_line_length = topic::max_topic_length + 1024;

enum class acl_access : std::uint8_t { read, write, subscribe };

/// Who asks. Views must stay valid during the call only.
struct client_identity {
  std::string_view client_id;
  std::optional<std::string_view> username;
};

class acl {
 public:
  static expected<acl, std::vector<file_problem>> parse(std::string_view text);
  /// Reads and parses; the error text names the path and, per problem, `line N: reason`.
  static expected<acl, std::string> load(const std::string& path);

  /// `topic` is a topic name for read/write, a topic filter for subscribe. Does not allocate.
  [[nodiscard]] bool allows(acl_access access, std::string_view topic,
                            const client_identity& who) const;

  /// Number of `topic` and `pattern` rules.
  [[nodiscard]] std::size_t rule_count() const noexcept { return rule_count_; }

 private:
  // A rule's filter is stored split into levels; pattern levels are split into parts, so
  // matching needs no substitution buffer. Texts live in arena_ and are named by offsets, which
  // stay valid when the object moves.
  struct span {
    std::uint32_t offset = 0;
    std::uint32_t size = 0;
  };
  enum class level_kind : std::uint8_t { literal, plus, hash, parts };
  enum class part_kind : std::uint8_t { literal, client_id, username };
  struct part {
    part_kind kind = part_kind::literal;
    span text;  // literal only
  };
  struct level {
    level_kind kind = level_kind::literal;
    span text;                     // literal only
    std::uint32_t first_part = 0;  // parts only: parts_[first_part, first_part + part_count)
    std::uint32_t part_count = 0;
  };
  struct rule {
    std::uint32_t first_level = 0;  // levels_[first_level, first_level + level_count)
    std::uint32_t level_count = 0;
    std::uint8_t access = 0;  // access_* bits; 0 = deny
    bool uses_client_id = false;
    bool uses_username = false;
  };
  struct rule_set {
    std::vector<rule> denies;
    std::vector<rule> grants;
  };
  class builder;
  friend class builder;

  acl() = default;
  [[nodiscard]] std::string_view text(span s) const noexcept {
    return {arena_.data() + s.offset, s.size};
  }
  [[nodiscard]] bool level_equals(const level& l, std::string_view candidate,
                                  const client_identity& who) const noexcept;
  [[nodiscard]] bool shares_topics(const rule& r, std::string_view filter,
                                   const client_identity& who) const noexcept;
  [[nodiscard]] bool covers(const rule& r, std::string_view topic,
                            const client_identity& who) const noexcept;

  std::string arena_;
  std::vector<level> levels_;
  std::vector<part> parts_;
  rule_set anonymous_;
  std::unordered_map<std::string, rule_set, string_hash, std::equal_to<>> users_;
  rule_set patterns_;
  std::size_t rule_count_ = 0;
};

}  // namespace ebus::mqtt::auth
