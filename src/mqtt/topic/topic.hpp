#pragma once
// Topic names and topic filters: validation into types that cannot hold an invalid string, and the
// reference matcher that defines what "a filter matches a name" means. Pure, no I/O.

#include <compare>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>

#include "common/expected.hpp"
#include "mqtt/topic/topic_error.hpp"

namespace ebus::mqtt::topic {

/// Longest topic name or filter, in bytes of UTF-8 [MQTT-4.7.3-3].
inline constexpr std::size_t max_topic_length = 65535;

class topic_name;
class topic_filter;

/// Validates a topic name, as carried by PUBLISH: 1..65,535 bytes of well-formed UTF-8 without
/// U+0000 [MQTT-4.7.3-1..3][MQTT-1.5.3-1..2], and no '+' or '#' [MQTT-3.3.2-2]. Empty levels
/// ("a//b", "/a", "a/") are allowed. Errors: topic_errc::empty, too_long, invalid_utf8,
/// contains_nul, wildcard_in_name; encoding errors are reported before wildcard errors.
[[nodiscard]] expected<topic_name, std::error_code> parse_name(std::string_view text);

/// Validates a topic filter, as carried by SUBSCRIBE and UNSUBSCRIBE: the encoding rules of
/// parse_name(), '#' only as the whole last level [MQTT-4.7.1-2], '+' only as a whole level
/// [MQTT-4.7.1-3]. Errors: topic_errc::empty, too_long, invalid_utf8, contains_nul,
/// misplaced_hash, misplaced_plus; encoding errors are reported before wildcard errors.
/// "$share/..." gets no special treatment here.
[[nodiscard]] expected<topic_filter, std::error_code> parse_filter(std::string_view text);

/// Reference matcher: true if `filter` matches `name`. '+' matches exactly one level, which may be
/// empty; '#' matches any number of levels, including none, so "a/#" matches "a" [MQTT-4.7.1-2];
/// a filter whose first level is a wildcard matches no name that starts with '$' [MQTT-4.7.2-1].
/// Meant for valid filters and names; for other strings the result is unspecified but safe.
/// Simple rather than fast: subscription_tree and retained_store are the fast paths, and tests
/// and fuzzers check them against this function.
[[nodiscard]] bool matches(std::string_view filter, std::string_view name) noexcept;

/// A valid topic name. Only parse_name() creates one; a moved-from object may only be assigned to
/// or destroyed.
/// Thread safety: distinct objects safe, shared objects unsafe.
class topic_name {
 public:
  /// The validated text.
  [[nodiscard]] const std::string& str() const noexcept { return str_; }

  friend bool operator==(const topic_name&, const topic_name&) = default;
  friend std::strong_ordering operator<=>(const topic_name&, const topic_name&) = default;

 private:
  friend expected<topic_name, std::error_code> parse_name(std::string_view text);
  explicit topic_name(std::string_view text) : str_(text) {}

  std::string str_;
};

/// A valid topic filter. Only parse_filter() creates one; a moved-from object may only be assigned
/// to or destroyed.
/// Thread safety: distinct objects safe, shared objects unsafe.
class topic_filter {
 public:
  /// The validated text.
  [[nodiscard]] const std::string& str() const noexcept { return str_; }

  friend bool operator==(const topic_filter&, const topic_filter&) = default;
  friend std::strong_ordering operator<=>(const topic_filter&, const topic_filter&) = default;

 private:
  friend expected<topic_filter, std::error_code> parse_filter(std::string_view text);
  explicit topic_filter(std::string_view text) : str_(text) {}

  std::string str_;
};

}  // namespace ebus::mqtt::topic

template <>
struct std::hash<ebus::mqtt::topic::topic_name> {
  std::size_t operator()(const ebus::mqtt::topic::topic_name& n) const noexcept {
    return std::hash<std::string>{}(n.str());
  }
};

template <>
struct std::hash<ebus::mqtt::topic::topic_filter> {
  std::size_t operator()(const ebus::mqtt::topic::topic_filter& f) const noexcept {
    return std::hash<std::string>{}(f.str());
  }
};
