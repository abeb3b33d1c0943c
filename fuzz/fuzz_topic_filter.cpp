// parse_name() and parse_filter() on arbitrary bytes: never crash, and agree with each other and
// with simple invariants of valid topics. Aborts on a violated invariant.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "mqtt/topic/topic.hpp"

namespace {

using namespace ebus::mqtt::topic;

void check(bool condition) {
  if (!condition) std::abort();
}

// Encoding errors are the same for names and filters.
bool is_encoding_error(const std::error_code& ec) {
  return ec == topic_errc::empty || ec == topic_errc::too_long || ec == topic_errc::invalid_utf8 ||
         ec == topic_errc::contains_nul;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto name = parse_name(text);
  const auto filter = parse_filter(text);
  const bool has_wildcard = text.find_first_of("+#") != std::string_view::npos;

  if (!name) {
    check(&name.error().category() == &topic_category() && !name.error().message().empty());
  }
  if (!filter) check(&filter.error().category() == &topic_category());

  if (filter) {
    check(filter->str() == text);
    check(!text.empty() && text.size() <= max_topic_length);
    check(text.find('\0') == std::string_view::npos);
    // '#' only as the whole last level, '+' only as a whole level.
    const std::size_t hash = text.find('#');
    if (hash != std::string_view::npos) {
      check(hash == text.size() - 1 && (hash == 0 || text[hash - 1] == '/'));
    }
    for (std::size_t plus = text.find('+'); plus != std::string_view::npos;
         plus = text.find('+', plus + 1)) {
      check(plus == 0 || text[plus - 1] == '/');
      check(plus + 1 == text.size() || text[plus + 1] == '/');
    }
    // A valid filter without wildcards is a valid name.
    check(static_cast<bool>(name) == !has_wildcard);
  } else {
    // Names follow the same encoding rules and more, so a bad filter is a bad name.
    check(!name);
    if (is_encoding_error(filter.error())) check(name.error() == filter.error());
  }

  if (name) {
    check(name->str() == text && !has_wildcard);
    check(matches(text, text));                           // a name used as a filter matches itself
    check(!matches("#", text) == (text.front() == '$'));  // [MQTT-4.7.2-1]
  } else if (filter) {
    check(name.error() == topic_errc::wildcard_in_name);
  }
  return 0;
}
