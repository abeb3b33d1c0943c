#include "mqtt/auth/file_problem.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

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
  const auto cannot = [&](int err) {
    return fail("cannot read '" + path + "': " + std::generic_category().message(err));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cannot(errno);
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return cannot(EISDIR);
  }
  std::string text;
  char buf[16384];
  for (;;) {
    const auto n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return cannot(err);
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > max_auth_file_bytes) {
      ::close(fd);
      return fail("'" + path + "' is larger than " + std::to_string(max_auth_file_bytes) +
                  " bytes");
    }
  }
  ::close(fd);
  return text;
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
