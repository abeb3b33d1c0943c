#include "mqtt/auth/file_problem.hpp"

#include "common/file.hpp"
#include "common/log.hpp"

namespace ebus::mqtt::auth::detail {

void problem_list::add(std::size_t line, std::string reason) {
  if (truncated_) return;
  if (problems_.size() == max_reported_problems) {
    problems_.push_back({line, "too many problems, the rest are not listed"});
    truncated_ = true;
    return;
  }
  problems_.push_back({line, std::move(reason)});
}

std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && is_space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_space(text.back()))
    text.remove_suffix(1);
  return text;
}

expected<std::string, std::string> read_file(const std::string& path) {
  return read_text_file(path, max_auth_file_bytes);
}

std::string describe(std::string_view what, const std::string& path,
                     const std::vector<file_problem>& problems) {
  std::string out(what);
  out += " '" + path + "':";
  bool first = true;
  for (const file_problem& p : problems) {
    out += first ? " " : "; ";
    first = false;
    if (p.line != 0) out += "line " + std::to_string(p.line) + ": ";
    out += p.reason;
  }
  return out;
}

std::string quote(std::string_view text) {
  return '"' + log::escape(text, 80) + '"';
}

}  // namespace ebus::mqtt::auth::detail
