#include "mqtt/client/broker_url.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

namespace ebus::mqtt::client {
namespace {

constexpr auto npos = std::string_view::npos;
constexpr std::uint16_t default_port = 1883;
constexpr std::uint16_t default_tls_port = 8883;
// sizeof(sockaddr_un::sun_path) on Linux, the terminating NUL included; libmosquitto refuses
// longer paths.
constexpr std::size_t sun_path_size = 108;
constexpr const char* supported =
    "use tcp://, mqtt://, ssl://, tls://, tcps://, mqtts://, mqtt+ssl:// or unix://";
constexpr const char* socket_example = "unix:///var/run/mosquitto/mosquitto.sock";

std::string quote(std::string_view s) {
  return "'" + std::string(s) + "'";
}

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// RFC 3986 section 3.1, as Go's getScheme reads it.
bool valid_scheme(std::string_view s) {
  if (s.empty() || !is_alpha(s.front())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.';
  });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Go's validUserinfo: unreserved, sub-delims, ':', '%' (checked when decoding) and '@'.
bool userinfo_char(char c) {
  if (is_alpha(c) || is_digit(c)) return true;
  return std::string_view("-._~!$&'()*+,;=:%@").find(c) != npos;
}

bool control_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7F;
}

int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int high = hex_value(s[i + 1]);
    const int low = hex_value(s[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

// What redact_url() masks, as offsets into the text: from the first ':' after the scheme (after
// the start of the text when there is no valid one) to the last '@', or to the '@' that ends the
// authority when a path follows it at once ("unix://u:p@/run/a@b.sock": the rest is the path).
// Empty when there is none.
struct secret_span {
  std::size_t begin = 0;
  std::size_t end = 0;
  [[nodiscard]] bool empty() const { return begin >= end; }
};

secret_span secret_of(std::string_view url) {
  const auto sep = url.find("://");
  const std::size_t start = sep != npos && valid_scheme(url.substr(0, sep)) ? sep + 3 : 0;
  auto at = url.rfind('@');
  if (at == npos || at < start) return {};
  if (const auto path = url.find_first_of("/?#", start);
      path != npos && path > start && url[path - 1] == '@' && url[path] == '/') {
    at = path - 1;
  }
  const auto colon = url.find(':', start);
  if (colon == npos || colon > at) return {};
  return {colon + 1, at};
}

// Reads `text`, the URL as Paho's AddBroker rewrites it; errors quote `shown`, the URL as written
// with its password masked, and quote a piece of `text` only when it lies outside the password.
class parser {
 public:
  parser(std::string text, std::string shown)
      : text_(std::move(text)), shown_(std::move(shown)), secret_(secret_of(text_)) {}

  expected<broker_url, std::string> parse();

 private:
  // `piece` quoted, or nothing when it overlaps the password.
  [[nodiscard]] std::string part(std::string_view piece) const {
    const auto at = static_cast<std::size_t>(piece.data() - text_.data());
    if (!secret_.empty() && at < secret_.end && at + piece.size() > secret_.begin) return {};
    return quote(piece);
  }
  // " 'piece'" or nothing, to put after a noun.
  [[nodiscard]] std::string named(std::string_view piece) const {
    auto q = part(piece);
    return q.empty() ? q : " " + q;
  }
  [[nodiscard]] expected<broker_url, std::string> error(std::string message) const {
    return fail(std::move(message) + hint_);
  }

  expected<void, std::string> read_userinfo(std::string_view userinfo, broker_url& out) const;
  expected<void, std::string> read_socket_path(std::string_view hostport, std::string_view tail,
                                               broker_url& out) const;
  expected<void, std::string> read_host_port(std::string_view hostport, std::string_view tail,
                                             broker_url& out) const;
  [[nodiscard]] std::string websocket_refusal(std::string_view scheme,
                                              std::string_view hostport) const;

  std::string text_;
  std::string shown_;  // quoted
  secret_span secret_;
  std::string hint_;  // appended to errors found past the authority
};

expected<broker_url, std::string> parser::parse() {
  const std::string_view text(text_);
  const auto sep = text.find("://");
  const std::string_view scheme = text.substr(0, sep);
  if (!valid_scheme(scheme)) {
    return error(shown_ + " is not a URL of the form tcp://host:port or ssl://host:port");
  }
  broker_url out;
  out.scheme = lower(scheme);
  const std::string& s = out.scheme;

  const std::string_view rest = text.substr(sep + 3);
  const auto authority_size = std::min(rest.find_first_of("/?#"), rest.size());
  const std::string_view authority = rest.substr(0, authority_size);
  const std::string_view tail = rest.substr(authority_size);
  const auto authority_end = sep + 3 + authority_size;
  if (!secret_.empty() && secret_.end > authority_end) {
    // The host and port found are then pieces of the user information.
    hint_ =
        " (a '/', '?' or '#' in a user name or password must be percent-encoded: %2F, %3F, %23)";
  }
  std::string_view hostport = authority;
  std::optional<std::string_view> userinfo;
  if (const auto at = authority.rfind('@'); at != npos) {
    userinfo = authority.substr(0, at);
    hostport = authority.substr(at + 1);
  }

  if (s == "tcp" || s == "mqtt") {
    out.transport = broker_transport::tcp;
  } else if (s == "ssl" || s == "tls" || s == "tcps" || s == "mqtts" || s == "mqtt+ssl") {
    out.transport = broker_transport::tls;
  } else if (s == "unix") {
    out.transport = broker_transport::unix_socket;
  } else if (s == "ws" || s == "wss") {
    return error(websocket_refusal(scheme, hostport));
  } else {
    return error("unsupported scheme " + quote(scheme) + ": " + supported);
  }
  if (userinfo) {
    if (auto ok = read_userinfo(*userinfo, out); !ok) return fail(std::move(ok.error()));
  }
  auto ok = out.transport == broker_transport::unix_socket ? read_socket_path(hostport, tail, out)
                                                           : read_host_port(hostport, tail, out);
  if (!ok) return fail(std::move(ok.error()));
  return out;
}

expected<void, std::string> parser::read_userinfo(std::string_view userinfo,
                                                  broker_url& out) const {
  if (!std::all_of(userinfo.begin(), userinfo.end(), userinfo_char)) {
    return fail("the user information in " + shown_ +
                " holds a character that must be percent-encoded (only letters, digits and "
                "-._~!$&'()*+,;=:@ may appear as they are)" +
                hint_);
  }
  const auto colon = userinfo.find(':');
  auto user = percent_decode(userinfo.substr(0, colon));
  std::optional<std::string> password;
  if (colon != npos) password = percent_decode(userinfo.substr(colon + 1));
  if (!user || (colon != npos && !password)) {
    return fail("invalid percent-encoding in the user information of " + shown_ +
                " (a '%' must start %XX with two hex digits; write %25 for '%' itself)" + hint_);
  }
  if (user->find('\0') != npos || (password && password->find('\0') != npos)) {
    return fail("the user information in " + shown_ + " holds a NUL byte (%00), which MQTT " +
                "user names and libmosquitto's passwords cannot carry");
  }
  out.username = std::move(user);
  out.password = std::move(password);
  return {};
}

expected<void, std::string> parser::read_socket_path(std::string_view hostport,
                                                     std::string_view tail, broker_url& out) const {
  if (!hostport.empty()) {
    // Paho dials the host part as a path relative to edgecore's working directory, and drops
    // any path after it.
    if (tail.empty() || tail.front() != '/') {
      return fail("the socket path" + named(hostport) + " in " + shown_ +
                  " is relative; write the absolute path after three slashes, e.g. " +
                  socket_example + hint_);
    }
    return fail("unexpected host" + named(hostport) + " in " + shown_ +
                ": a socket path follows three slashes, e.g. " + socket_example + hint_);
  }
  if (tail.find_first_of("?#") != npos) {
    return fail("unexpected query or fragment in " + shown_ + hint_);
  }
  if (tail.size() <= 1) {
    return fail("missing socket path in " + shown_ + " (write " + socket_example + ")" + hint_);
  }
  auto path = percent_decode(tail);
  if (!path) {
    return fail("invalid percent-encoding in the socket path of " + shown_ +
                " (a '%' must start %XX with two hex digits)");
  }
  if (path->find('\0') != npos) {
    return fail("the socket path in " + shown_ + " holds a NUL byte (%00)");
  }
  if (path->size() >= sun_path_size) {
    return fail("the socket path in " + shown_ + " is " + std::to_string(path->size()) +
                " bytes long; a Unix socket path must be shorter than " +
                std::to_string(sun_path_size) + " bytes");
  }
  out.path = std::move(*path);
  out.port = 0;
  return {};
}

expected<void, std::string> parser::read_host_port(std::string_view hostport, std::string_view tail,
                                                   broker_url& out) const {
  if (!tail.empty() && tail != "/") {
    return fail("unexpected path, query or fragment in " + shown_ + hint_);
  }
  std::string_view host = hostport;
  std::optional<std::string_view> port;
  if (!hostport.empty() && hostport.front() == '[') {  // [::1]:1883
    const auto close = hostport.find(']');
    if (close == npos) return fail("unclosed '[' in " + shown_ + hint_);
    host = hostport.substr(1, close - 1);
    const std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("unexpected text after ']' in " + shown_ + hint_);
      port = after.substr(1);
    }
  } else {
    const auto colon = hostport.rfind(':');
    host = hostport.substr(0, colon);
    if (colon != npos) port = hostport.substr(colon + 1);
    if (host.find(':') != npos) {
      // "tcp://::1" would otherwise read as host ":" and port 1 (RFC 3986 section 3.2.2).
      return fail("IPv6 address without brackets in " + shown_ + " (write tcp://[::1]:1883)" +
                  hint_);
    }
  }
  if (host.empty()) return fail("missing host in " + shown_ + hint_);
  // '%': a percent-encoded name or an IPv6 zone, which neither the resolver nor libmosquitto read.
  if (std::any_of(host.begin(), host.end(),
                  [](char c) { return c == ' ' || c == '%' || control_char(c); })) {
    return fail("invalid host" + named(host) + " in " + shown_ + hint_);
  }
  out.host = std::string(host);
  if (!port) {
    out.port = out.transport == broker_transport::tls ? default_tls_port : default_port;
    return {};
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port->data(), port->data() + port->size(), value);
  if (port->empty() || ec != std::errc{} || end != port->data() + port->size() || value == 0 ||
      value > 65535) {
    return fail("invalid port" + named(*port) + " in " + shown_ + " (must be 1 to 65535)" + hint_);
  }
  out.port = static_cast<std::uint16_t>(value);
  return {};
}

std::string parser::websocket_refusal(std::string_view scheme, std::string_view hostport) const {
  const bool secure = lower(scheme) == "wss";
  // The host without the WebSocket port; brackets of an IPv6 literal kept.
  std::string_view host = hostport;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(0, std::min(host.find(']'), host.size() - 1) + 1);
  } else {
    host = host.substr(0, host.rfind(':'));
  }
  std::string name = part(host);
  name = host.empty() || name.empty() ? std::string("<host>") : std::string(host);
  const std::string instead =
      std::string(secure ? "ssl://" : "tcp://") + name + (secure ? ":8883" : ":1883");
  return "unsupported scheme " + quote(scheme) +
         ": the MQTT client does not speak WebSocket (libmosquitto has no WebSocket transport); "
         "connect to the same broker's MQTT" +
         (secure ? " over TLS" : "") + " listener instead, e.g. " + instead +
         " (mosquitto and EMQX serve MQTT beside WebSocket)";
}

}  // namespace

expected<broker_url, std::string> parse_broker_url(std::string_view url) {
  if (url.empty()) {
    return fail(std::string("the URL is empty; write tcp://host:1883, ssl://host:8883 or ") +
                socket_example);
  }
  // Go's url.Parse refuses these anywhere; not quoted, as they would garble the message.
  if (std::any_of(url.begin(), url.end(), control_char)) {
    return fail(std::string("the URL holds a control character"));
  }
  // As Paho's AddBroker: ":1883" is 127.0.0.1:1883, and a URL without a scheme is tcp://.
  std::string text(url);
  if (text.front() == ':') text.insert(0, "127.0.0.1");
  if (text.find("://") == npos) text.insert(0, "tcp://");
  return parser(std::move(text), quote(redact_url(url))).parse();
}

std::string redact_url(std::string_view url) {
  const auto secret = secret_of(url);
  if (secret.empty()) return std::string(url);
  return std::string(url.substr(0, secret.begin)) + "***" + std::string(url.substr(secret.end));
}

broker_credentials credentials_for(const broker_url& url, std::string username,
                                   std::string password) {
  broker_credentials out{std::move(username), std::move(password)};
  if (url.username) out.username = *url.username;
  if (url.password) out.password = *url.password;
  return out;
}

}  // namespace ebus::mqtt::client
