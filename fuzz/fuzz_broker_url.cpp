// parse_broker_url() and redact_url() on arbitrary bytes: never crash; what parses is consistent
// (each transport has what it needs) and parses the same once redacted; and the password never
// shows: swapped for a marker, the marker must appear neither in the error nor in the masked URL.
// Aborts on a violated invariant.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "mqtt/client/broker_url.hpp"

namespace {

using namespace ebus::mqtt::client;

constexpr std::string_view marker = "Zq9PASSWORDq9Z";

void check(bool condition) {
  if (!condition) std::abort();
}

bool valid_scheme(std::string_view s) {
  if (s.empty() || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return false;
  for (const char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// Where a password may be, as redact_url() documents it: from the first ':' after the scheme to
// the last '@', or to an '@' followed at once by the path. {0, 0} when there is none.
std::pair<std::size_t, std::size_t> password_span(std::string_view url) {
  const auto sep = url.find("://");
  const std::size_t start =
      sep != std::string_view::npos && valid_scheme(url.substr(0, sep)) ? sep + 3 : 0;
  auto at = url.rfind('@');
  if (at == std::string_view::npos || at < start) return {0, 0};
  if (const auto at_path = url.find("@/", start);
      at_path != std::string_view::npos && url.find_first_of("/?#", start) == at_path + 1) {
    at = at_path;
  }
  const auto colon = url.find(':', start);
  if (colon == std::string_view::npos || colon > at) return {0, 0};
  return {colon + 1, at};
}

void check_consistent(const broker_url& u) {
  if (u.transport == broker_transport::unix_socket) {
    check(u.host.empty() && u.port == 0);
    check(!u.path.empty() && u.path.front() == '/' && u.path.size() < 108);
    check(u.path.find('\0') == std::string::npos);
  } else {
    check(!u.host.empty() && u.port != 0 && u.path.empty());
  }
  if (u.password) check(u.username.has_value());
  if (u.username) check(u.username->find('\0') == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = parse_broker_url(text);
  const auto redacted = redact_url(text);
  if (text.find('@') == std::string_view::npos) check(redacted == text);
  if (!parsed) {
    check(!parsed.error().empty());
  } else {
    check_consistent(*parsed);
  }
  // Masking changes nothing but the password. (It may also hide part of a socket path that holds
  // ':' and '@', as it masks generously.)
  if (parsed && parsed->path.find('@') == std::string::npos) {
    const auto again = parse_broker_url(redacted);
    check(again.has_value());
    check(again->transport == parsed->transport && again->host == parsed->host &&
          again->port == parsed->port && again->path == parsed->path &&
          again->username == parsed->username);
    if (parsed->password && !parsed->password->empty()) check(again->password == "***");
  }

  // The same input with its password swapped for the marker.
  const auto [begin, end] = password_span(text);
  if (begin >= end) return 0;
  const std::string url =
      std::string(text.substr(0, begin)) + std::string(marker) + std::string(text.substr(end));
  if (url.find(marker) != begin || url.find(marker, begin + 1) != std::string::npos) return 0;
  check(redact_url(url).find(marker) == std::string::npos);
  const auto with_marker = parse_broker_url(url);
  if (!with_marker) {
    check(with_marker.error().find(marker) == std::string::npos);
    return 0;
  }
  check_consistent(*with_marker);
  // The span masks generously: in "unix:///a:b@c" it is part of the path, not a password.
  const bool in_path = with_marker->transport == broker_transport::unix_socket &&
                       with_marker->path.find(marker) != std::string::npos;
  check(with_marker->password == std::string(marker) || in_path);
  if (with_marker->username) check(with_marker->username->find(marker) == std::string::npos);
  return 0;
}
