#pragma once
// What the password file and ACL file parsers report, and the text handling they share: bounded
// file reading, line splitting and the problem list. Pure apart from reading the file.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"

namespace ebus::mqtt::auth {

/// One problem of a password or ACL file. `line` is 1-based; 0 stands for the file as a whole.
struct file_problem {
  std::size_t line;
  std::string reason;

  friend bool operator==(const file_problem&, const file_problem&) = default;
};

/// Largest password or ACL file load() reads; both are admin-written lists, far below this.
inline constexpr std::size_t max_auth_file_bytes = 16 * 1024 * 1024;

/// Longest user name either file accepts: an MQTT UTF-8 string [MQTT-1.5.3].
inline constexpr std::size_t max_username_length = 65535;

/// Most problems one parse reports; past that a file is plainly not of the expected format, and
/// the list stays readable in a log.
inline constexpr std::size_t max_reported_problems = 100;

namespace detail {

/// Collects problems up to max_reported_problems, then one note that more were left out.
class problem_list {
 public:
  void add(std::size_t line, std::string reason);
  [[nodiscard]] bool empty() const noexcept { return problems_.empty(); }
  [[nodiscard]] std::vector<file_problem> take() && { return std::move(problems_); }

 private:
  std::vector<file_problem> problems_;
  bool truncated_ = false;
};

/// Calls `f(line_number, line)` for each line of `text` (split at '\n', 1-based numbers). The
/// line comes without its '\n'; a final line without '\n' counts, an empty text has no lines.
template <class F>
void for_each_line(std::string_view text, F&& f) {
  std::size_t number = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = text.find('\n', pos);
    const std::size_t stop = end == std::string_view::npos ? text.size() : end;
    f(++number, text.substr(pos, stop - pos));
    pos = stop + 1;
  }
}

/// True for the bytes C's isspace() accepts in the "C" locale (mosquitto trims with it).
[[nodiscard]] constexpr bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/// `text` without leading and trailing is_space() bytes.
[[nodiscard]] std::string_view trim(std::string_view text) noexcept;

/// Reads the whole file, refusing one larger than max_auth_file_bytes. The error names the path.
[[nodiscard]] expected<std::string, std::string> read_file(const std::string& path);

/// "<what> '<path>': line N: reason; line M: reason" (a line-0 problem has no "line N: ").
[[nodiscard]] std::string describe(std::string_view what, const std::string& path,
                                   const std::vector<file_problem>& problems);

/// `text` quoted for a problem reason: escaped like a log field and cut when long.
[[nodiscard]] std::string quote(std::string_view text);

}  // namespace detail
}  // namespace ebus::mqtt::auth
