// password_file::parse() on arbitrary text: never crashes, reports problems in line order with
// reasons, and an accepted file answers check() consistently. Aborts on a violated invariant.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mqtt/auth/password_file.hpp"

namespace {

using namespace ebus::mqtt::auth;

void check(bool condition) {
  if (!condition) std::abort();
}

// Largest "$7$<n>$" count in the text, so that check() is only called where it is quick.
std::uint64_t largest_iterations(std::string_view text) {
  std::uint64_t largest = 0;
  for (std::size_t at = text.find("$7$"); at != std::string_view::npos;
       at = text.find("$7$", at + 1)) {
    std::uint64_t n = 0;
    for (std::size_t i = at + 3; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      n = std::min<std::uint64_t>(n * 10 + static_cast<std::uint64_t>(text[i] - '0'), 1U << 30);
    }
    largest = std::max(largest, n);
  }
  return largest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::size_t lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) +
                            (text.empty() || text.back() == '\n' ? 0 : 1);
  const auto parsed = password_file::parse(text);
  if (!parsed) {
    const auto& problems = parsed.error();
    check(!problems.empty() && problems.size() <= max_reported_problems + 1);
    for (std::size_t i = 0; i < problems.size(); ++i) {
      check(problems[i].line >= 1 && problems[i].line <= lines);
      check(!problems[i].reason.empty());
      if (i > 0) check(problems[i - 1].line <= problems[i].line);
    }
    return 0;
  }
  check(parsed->size() <= lines);
  if (largest_iterations(text) > 1000) return 0;
  // The first line's name, as the parser reads it, and a password from the input.
  const std::string_view first = text.substr(0, text.find('\n'));
  const std::string_view name = first.substr(0, first.find(':'));
  const std::string_view password = text.substr(text.size() / 2);
  const login_result once = parsed->check(name, password);
  check(parsed->check(name, password) == once);
  const login_result without = parsed->check_without_password(name);
  check(without != login_result::accepted);
  if (parsed->size() == 0) {
    check(once == login_result::unknown_user && without == login_result::unknown_user);
  }
  return 0;
}
