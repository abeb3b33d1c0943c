#include "mqtt/transport/websocket_server.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <http_parser.h>
#include <utility>
#include <wslay/wslay.h>

#include "common/shared_library.hpp"
#include "openssl/openssl_api.hpp"

namespace ebus::mqtt::transport {
namespace {

// http-parser's and wslay's functions, from the libraries opened with the first WebSocket
// listener or server (load_websocket_libraries): a daemon without one maps neither.
// NOLINTBEGIN(cppcoreguidelines-macro-usage): one list makes both the table and its loading.
#define EBUS_HTTP_PARSER_FUNCTIONS(X) \
  X(http_parser_execute)              \
  X(http_parser_init)                 \
  X(http_parser_parse_url)            \
  X(http_parser_settings_init)        \
  X(http_parser_url_init)
#define EBUS_WSLAY_FUNCTIONS(X) \
  X(wslay_frame_context_free)   \
  X(wslay_frame_context_init)   \
  X(wslay_frame_recv)           \
  X(wslay_frame_send)
#define EBUS_MEMBER(name) decltype(&::name) name = nullptr;  // NOLINT(bugprone-macro-parentheses)
#define EBUS_RESOLVE(name) one(table.name, #name);
// NOLINTBEGIN(readability-identifier-naming): the members carry the libraries' names.
struct http_parser_functions {
  EBUS_HTTP_PARSER_FUNCTIONS(EBUS_MEMBER)
};
struct wslay_functions {
  EBUS_WSLAY_FUNCTIONS(EBUS_MEMBER)
};
// NOLINTEND(readability-identifier-naming)
struct library_functions : http_parser_functions, wslay_functions {};

expected<library_functions, std::string> open_libraries() {
  auto http = load_function_table<http_parser_functions>(
      EBUS_LIBHTTP_PARSER_SONAME,
      [](http_parser_functions& table, auto&& one) { EBUS_HTTP_PARSER_FUNCTIONS(EBUS_RESOLVE) });
  if (!http) return fail("http-parser: " + http.error());
  auto frames = load_function_table<wslay_functions>(
      EBUS_LIBWSLAY_SONAME,
      [](wslay_functions& table, auto&& one) { EBUS_WSLAY_FUNCTIONS(EBUS_RESOLVE) });
  if (!frames) return fail("wslay: " + frames.error());
  // Sec-WebSocket-Accept is a SHA-1 by OpenSSL.
  if (auto ssl = openssl::load(); !ssl) return fail("OpenSSL: " + ssl.error());
  return library_functions{*http, *frames};
}
#undef EBUS_RESOLVE
#undef EBUS_MEMBER
#undef EBUS_WSLAY_FUNCTIONS
#undef EBUS_HTTP_PARSER_FUNCTIONS
// NOLINTEND(cppcoreguidelines-macro-usage)

expected<const library_functions*, std::string> libraries() {
  static const expected<library_functions, std::string> loaded = open_libraries();
  if (!loaded) return fail(loaded.error());
  return &*loaded;
}

// RFC 6455 section 1.3.
constexpr std::string_view accept_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// RFC 6455 section 7.4.1.
enum close_code : std::uint16_t {
  protocol_error = 1002,
  unsupported_data = 1003,
  message_too_big = 1009,
};

constexpr std::size_t max_control_payload = 125;  // RFC 6455 section 5.5

char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// True when the comma-separated header list holds `token` (compared as `equal` says).
template <class Equal>
bool list_has(std::string_view list, std::string_view token, Equal equal) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    if (equal(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool exact(std::string_view a, std::string_view b) noexcept {
  return a == b;
}
bool non_empty(std::string_view a, std::string_view) noexcept {
  return !a.empty();
}

bool is_base64_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// RFC 6455 section 4.1: the key is 16 random bytes in base64, which is always 22 characters and
// "==".
bool is_websocket_key(std::string_view key) noexcept {
  return key.size() == 24 && key.substr(22) == "==" &&
         std::all_of(key.begin(), key.begin() + 22, is_base64_char);
}

std::string http_refusal(int status, std::string_view status_text, std::string_view reason,
                         bool version_header) {
  std::string body(reason);
  body += '\n';
  std::string out = "HTTP/1.1 " + std::to_string(status) + ' ';
  out += status_text;
  out += "\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += "\r\n";
  if (version_header) out += "Sec-WebSocket-Version: 13\r\n";
  out += "\r\n";
  out += body;
  return out;
}

}  // namespace

expected<void, std::string> load_websocket_libraries() {
  if (auto loaded = libraries(); !loaded) return fail(std::move(loaded.error()));
  return {};
}

std::string websocket_accept_key(std::string_view key) {
  const auto ssl = openssl::load();
  if (!ssl) return {};  // the listener loaded OpenSSL at start; this answer then fails the upgrade
  std::string input(key);
  input += accept_guid;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_size = 0;
  if ((*ssl)->EVP_Digest(input.data(), input.size(), digest.data(), &digest_size,
                         (*ssl)->EVP_sha1(), nullptr) != 1) {
    return {};
  }
  // base64 of a 20-byte SHA-1 is 28 characters; EVP_EncodeBlock adds a NUL.
  std::array<unsigned char, 4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1> encoded{};
  const int length =
      (*ssl)->EVP_EncodeBlock(encoded.data(), digest.data(), static_cast<int>(digest_size));
  return std::string(reinterpret_cast<const char*>(encoded.data()),
                     static_cast<std::size_t>(length));
}

// The upgrade request while it is read; dropped once it is answered.
struct handshake {
  http_parser parser{};
  std::size_t consumed = 0;  // request bytes handed to the parser
  bool headers_done = false;
  bool in_value = false;  // the last header callback was a value
  std::string url;
  std::string field;
  std::string value;
  std::string upgrade;
  std::string connection;
  std::string key;
  std::string version;
  std::string protocols;
  bool has_key = false;
  bool has_version = false;

  // Repeated headers combine into one comma-separated list, as HTTP defines.
  static void add(std::string& to, std::string_view v) {
    if (!to.empty()) to += ", ";
    to += v;
  }

  void commit_header() {
    if (iequals(field, "upgrade")) {
      add(upgrade, value);
    } else if (iequals(field, "connection")) {
      add(connection, value);
    } else if (iequals(field, "sec-websocket-key")) {
      add(key, trim(value));
      has_key = true;
    } else if (iequals(field, "sec-websocket-version")) {
      add(version, trim(value));
      has_version = true;
    } else if (iequals(field, "sec-websocket-protocol")) {
      add(protocols, value);
    }
    field.clear();
    value.clear();
    in_value = false;
  }

  static handshake& of(http_parser* p) { return *static_cast<handshake*>(p->data); }

  static int on_url(http_parser* p, const char* at, std::size_t n) {
    of(p).url.append(at, n);
    return 0;
  }
  static int on_header_field(http_parser* p, const char* at, std::size_t n) {
    auto& h = of(p);
    if (h.in_value) h.commit_header();
    h.field.append(at, n);
    return 0;
  }
  static int on_header_value(http_parser* p, const char* at, std::size_t n) {
    auto& h = of(p);
    h.in_value = true;
    h.value.append(at, n);
    return 0;
  }
  static int on_headers_complete(http_parser* p) {
    auto& h = of(p);
    if (h.in_value || !h.field.empty()) h.commit_header();
    h.headers_done = true;
    // 2: no body, and what follows the blank line belongs to another protocol (the frames).
    return 2;
  }

  static const http_parser_settings& settings(const library_functions& lib) {
    static const http_parser_settings s = [&lib] {
      http_parser_settings x{};
      lib.http_parser_settings_init(&x);
      x.on_url = on_url;
      x.on_header_field = on_header_field;
      x.on_header_value = on_header_value;
      x.on_headers_complete = on_headers_complete;
      return x;
    }();
    return s;
  }
};

struct websocket_server::impl {
  explicit impl(websocket_options o) : options(std::move(o)), hs(std::make_unique<handshake>()) {
    if (auto loaded = libraries(); loaded) {
      lib = *loaded;
      lib->http_parser_init(&hs->parser, HTTP_REQUEST);
      hs->parser.data = hs.get();
    } else {
      unavailable = std::move(loaded.error());
    }
  }
  ~impl() {
    if (frames != nullptr) lib->wslay_frame_context_free(frames);
  }
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  const library_functions* lib = nullptr;  // null when a library could not be opened
  std::string unavailable;                 // then: why
  websocket_options options;
  std::unique_ptr<handshake> hs;
  wslay_frame_context_ptr frames = nullptr;
  std::string output;
  std::string reason;
  std::string subprotocol;
  bool is_open = false;
  bool is_closed = false;

  // What wslay's callbacks read from and write to during one call.
  const char* in = nullptr;
  std::size_t in_left = 0;
  std::string* sink = nullptr;

  // The frame being read.
  bool in_frame = false;
  std::uint8_t frame_opcode = 0;
  std::uint64_t frame_left = 0;
  bool in_message = false;  // a fragmented binary message awaits its continuation frames
  std::array<char, max_control_payload> control{};
  std::size_t control_size = 0;

  static ssize_t recv_cb(std::uint8_t* buf, std::size_t len, int, void* user) {
    auto& self = *static_cast<impl*>(user);
    const std::size_t n = std::min(len, self.in_left);
    if (n == 0) return 0;  // wslay reads this as "want read"
    std::memcpy(buf, self.in, n);
    self.in += n;
    self.in_left -= n;
    return static_cast<ssize_t>(n);
  }

  static ssize_t send_cb(const std::uint8_t* data, std::size_t len, int, void* user) {
    auto& self = *static_cast<impl*>(user);
    self.sink->append(reinterpret_cast<const char*>(data), len);
    return static_cast<ssize_t>(len);
  }

  void write_frame(std::uint8_t opcode, const char* data, std::size_t size, std::string& out) {
    wslay_frame_iocb iocb{};
    iocb.fin = 1;
    iocb.opcode = opcode;
    iocb.mask = 0;
    iocb.payload_length = size;
    iocb.data = reinterpret_cast<const std::uint8_t*>(data);
    iocb.data_length = size;
    sink = &out;
    // The send callback takes every byte, so one call writes the whole frame.
    lib->wslay_frame_send(frames, &iocb);
    sink = nullptr;
  }

  bool refuse(int status, std::string_view status_text, std::string_view why,
              bool version_header = false) {
    output = http_refusal(status, status_text, why, version_header);
    reason = why;
    is_closed = true;
    hs.reset();
    return false;
  }

  bool refuse_too_long() {
    return refuse(
        431, "Request Header Fields Too Large",
        "bad upgrade request: over " + std::to_string(options.max_request_bytes) + " bytes");
  }

  // Fails the WebSocket connection (RFC 6455 section 7.1.7): a close frame with `code`, then
  // closed().
  bool fail(std::uint16_t code, std::string_view why) {
    if (is_closed) return false;
    std::array<char, max_control_payload> payload{};
    payload[0] = static_cast<char>(code >> 8);
    payload[1] = static_cast<char>(code & 0xff);
    const std::size_t text = std::min(why.size(), payload.size() - 2);
    std::memcpy(payload.data() + 2, why.data(), text);
    write_frame(WSLAY_CONNECTION_CLOSE, payload.data(), 2 + text, output);
    reason = why;
    is_closed = true;
    return false;
  }

  bool feed_request(std::span<const char> bytes, std::string& mqtt_out);
  bool accept_or_refuse();
  bool feed_frames(std::span<const char> bytes, std::string& mqtt_out);
  bool on_chunk(const wslay_frame_iocb& iocb, std::string& mqtt_out);
  bool start_frame(const wslay_frame_iocb& iocb);
  bool end_control_frame();
};

bool websocket_server::impl::feed_request(std::span<const char> bytes, std::string& mqtt_out) {
  auto& h = *hs;
  if (lib == nullptr) {
    refuse(500, "Internal Server Error", "WebSocket is unavailable");
    reason += ": " + unavailable;  // for the log, not for the client
    return false;
  }
  // http-parser takes a zero length as the end of the stream.
  if (bytes.empty()) return true;
  const std::size_t budget = options.max_request_bytes - h.consumed;
  const std::size_t n = std::min(bytes.size(), budget);
  if (n == 0) return refuse_too_long();
  const std::size_t parsed =
      lib->http_parser_execute(&h.parser, &handshake::settings(*lib), bytes.data(), n);
  h.consumed += parsed;
  if (h.headers_done) {
    if (!accept_or_refuse()) return false;
    return feed_frames(bytes.subspan(parsed), mqtt_out);
  }
  if (HTTP_PARSER_ERRNO(&h.parser) != HPE_OK) {
    return refuse(400, "Bad Request", "bad upgrade request: malformed HTTP");
  }
  if (h.consumed >= options.max_request_bytes) return refuse_too_long();
  return true;
}

bool websocket_server::impl::accept_or_refuse() {
  auto& h = *hs;
  if (h.parser.method != HTTP_GET) {
    return refuse(400, "Bad Request", "bad upgrade request: method is not GET");
  }
  if (h.parser.http_major != 1 || h.parser.http_minor < 1) {
    return refuse(400, "Bad Request", "bad upgrade request: not HTTP/1.1");
  }
  http_parser_url url{};
  lib->http_parser_url_init(&url);
  if (lib->http_parser_parse_url(h.url.data(), h.url.size(), 0, &url) != 0) {
    return refuse(400, "Bad Request", "bad upgrade request: malformed request target");
  }
  std::string_view path;
  if ((url.field_set & (1U << UF_PATH)) != 0) {
    path = std::string_view(h.url).substr(url.field_data[UF_PATH].off, url.field_data[UF_PATH].len);
  }
  if (path != options.path) return refuse(404, "Not Found", "bad upgrade request: unknown path");
  if (!list_has(h.upgrade, "websocket", iequals)) {
    return refuse(400, "Bad Request", "bad upgrade request: no Upgrade: websocket");
  }
  if (!list_has(h.connection, "upgrade", iequals)) {
    return refuse(400, "Bad Request", "bad upgrade request: Connection does not list upgrade");
  }
  if (!h.has_version || h.version != "13") {
    return refuse(426, "Upgrade Required", "bad upgrade request: Sec-WebSocket-Version is not 13",
                  true);
  }
  if (!h.has_key) return refuse(400, "Bad Request", "bad upgrade request: no Sec-WebSocket-Key");
  if (!is_websocket_key(h.key)) {
    return refuse(400, "Bad Request",
                  "bad upgrade request: Sec-WebSocket-Key is not 16 bytes in base64");
  }
  // [MQTT-6.0.0-4] answers "mqtt" whenever it is offered; "mqttv3.1" only for clients that
  // offer nothing else of ours. An empty offer list is no offer.
  if (list_has(h.protocols, "mqtt", exact)) {
    subprotocol = "mqtt";
  } else if (list_has(h.protocols, "mqttv3.1", exact)) {
    subprotocol = "mqttv3.1";
  } else if (list_has(h.protocols, "", non_empty)) {
    return refuse(400, "Bad Request", "bad upgrade request: neither mqtt nor mqttv3.1 offered");
  }

  output =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ";
  output += websocket_accept_key(h.key);
  output += "\r\n";
  if (!subprotocol.empty()) {
    output += "Sec-WebSocket-Protocol: ";
    output += subprotocol;
    output += "\r\n";
  }
  output += "\r\n";
  hs.reset();

  const wslay_frame_callbacks callbacks{send_cb, recv_cb, nullptr};
  if (lib->wslay_frame_context_init(&frames, &callbacks, this) != 0) {
    frames = nullptr;
    output.clear();
    reason = "out of memory";
    is_closed = true;
    return false;
  }
  is_open = true;
  return true;
}

bool websocket_server::impl::feed_frames(std::span<const char> bytes, std::string& mqtt_out) {
  in = bytes.data();
  in_left = bytes.size();
  bool ok = true;
  while (ok) {
    wslay_frame_iocb iocb{};
    const std::size_t before = in_left;
    const ssize_t r = lib->wslay_frame_recv(frames, &iocb);
    if (r == WSLAY_ERR_WANT_READ) {
      // The input is used up; wslay keeps a partial header for the next call.
      if (in_left == 0) break;
      // wslay reads whenever it wants bytes and has room, so this is unreachable; dropping
      // the rest would corrupt the stream, so close instead.
      if (in_left == before) {
        ok = fail(protocol_error, "frame reader stalled");
        break;
      }
      continue;
    }
    if (r < 0) {
      ok = fail(protocol_error,
                "bad frame header: control frame over 125 bytes or fragmented, or a length not in "
                "its shortest form");
      break;
    }
    ok = on_chunk(iocb, mqtt_out);
  }
  in = nullptr;
  in_left = 0;
  return ok;
}

bool websocket_server::impl::start_frame(const wslay_frame_iocb& iocb) {
  // No extension is ever negotiated, so every reserved bit must be clear (RFC 6455 5.2).
  if (iocb.rsv != 0) return fail(protocol_error, "reserved bits set");
  // RFC 6455 5.1: a server closes on an unmasked client frame.
  if (iocb.mask == 0) return fail(protocol_error, "client frame not masked");
  switch (iocb.opcode) {
    case WSLAY_CONTINUATION_FRAME:
      if (!in_message) return fail(protocol_error, "continuation frame without a message");
      break;
    case WSLAY_TEXT_FRAME:
      return fail(unsupported_data, "text frame");  // [MQTT-6.0.0-1]
    case WSLAY_BINARY_FRAME:
      if (in_message) return fail(protocol_error, "new message inside a fragmented one");
      break;
    case WSLAY_CONNECTION_CLOSE:
    case WSLAY_PING:
    case WSLAY_PONG:
      break;
    default:
      return fail(protocol_error, "reserved opcode");
  }
  if (wslay_is_ctrl_frame(iocb.opcode) == 0) {
    if (iocb.payload_length > options.max_buffered_bytes) {
      return fail(message_too_big, "frame too large");
    }
    in_message = iocb.fin == 0;
  }
  in_frame = true;
  frame_opcode = iocb.opcode;
  frame_left = iocb.payload_length;
  control_size = 0;
  return true;
}

bool websocket_server::impl::on_chunk(const wslay_frame_iocb& iocb, std::string& mqtt_out) {
  if (!in_frame && !start_frame(iocb)) return false;
  const char* data = reinterpret_cast<const char*>(iocb.data);
  if (wslay_is_ctrl_frame(frame_opcode) == 0) {
    mqtt_out.append(data, iocb.data_length);
  } else {
    // wslay refuses control frames over 125 bytes, so this never overflows.
    std::memcpy(control.data() + control_size, data, iocb.data_length);
    control_size += iocb.data_length;
  }
  frame_left -= iocb.data_length;
  if (frame_left != 0) return true;
  in_frame = false;
  return wslay_is_ctrl_frame(frame_opcode) == 0 || end_control_frame();
}

bool websocket_server::impl::end_control_frame() {
  switch (frame_opcode) {
    case WSLAY_PING:
      write_frame(WSLAY_PONG, control.data(), control_size, output);  // RFC 6455 5.5.2
      return true;
    case WSLAY_PONG:
      return true;
    default:
      break;
  }
  // Close: echo the status code and stop (RFC 6455 5.5.1).
  if (control_size == 1) return fail(protocol_error, "close frame with a 1-byte payload");
  std::size_t echo = 0;
  if (control_size >= 2) {
    const auto code = static_cast<std::uint16_t>((static_cast<unsigned char>(control[0]) << 8) |
                                                 static_cast<unsigned char>(control[1]));
    // RFC 6455 7.4: codes a peer may send.
    const bool valid =
        (code >= 1000 && code <= 1011 && code != 1004 && code != 1005 && code != 1006) ||
        (code >= 3000 && code <= 4999);
    if (!valid) return fail(protocol_error, "close frame with an invalid status code");
    echo = 2;
  }
  write_frame(WSLAY_CONNECTION_CLOSE, control.data(), echo, output);
  reason = "close frame received";
  is_closed = true;
  return false;
}

websocket_server::websocket_server(websocket_options options)
    : impl_(std::make_unique<impl>(std::move(options))) {}
websocket_server::~websocket_server() = default;
websocket_server::websocket_server(websocket_server&&) noexcept = default;
websocket_server& websocket_server::operator=(websocket_server&&) noexcept = default;

bool websocket_server::feed(std::span<const char> bytes, std::string& mqtt_out) {
  auto& s = *impl_;
  if (s.is_closed) return false;
  if (!s.is_open) return s.feed_request(bytes, mqtt_out);
  return s.feed_frames(bytes, mqtt_out);
}

void websocket_server::send(std::span<const char> mqtt, std::string& wire_out) {
  auto& s = *impl_;
  if (!s.is_open || s.is_closed || mqtt.empty()) return;
  s.write_frame(WSLAY_BINARY_FRAME, mqtt.data(), mqtt.size(), wire_out);
}

std::string websocket_server::take_output() {
  return std::exchange(impl_->output, std::string{});
}

bool websocket_server::open() const noexcept {
  return impl_->is_open;
}
bool websocket_server::closed() const noexcept {
  return impl_->is_closed;
}
const std::string& websocket_server::close_reason() const noexcept {
  return impl_->reason;
}
const std::string& websocket_server::subprotocol() const noexcept {
  return impl_->subprotocol;
}

}  // namespace ebus::mqtt::transport
