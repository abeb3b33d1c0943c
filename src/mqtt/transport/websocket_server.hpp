#pragma once
// The server side of MQTT over WebSocket (RFC 6455, MQTT 3.1.1 section 6) as a Sans-I/O object:
// socket bytes go in, MQTT bytes and bytes to write come out. The caller owns the socket (plain
// TCP for ws://, TLS for wss://: the same object serves both) and the MQTT decoder.
//
// First the HTTP/1.1 upgrade request (parsed by http-parser): GET on the configured path (the
// query string is ignored), `Upgrade: websocket`, `Connection` listing `upgrade`,
// `Sec-WebSocket-Version: 13` and a Sec-WebSocket-Key of 16 bytes. The subprotocol answered is
// `mqtt` [MQTT-6.0.0-4], or `mqttv3.1` when that is the only one offered (old Paho clients); a
// request offering neither is refused, one offering none is accepted without the header.
// Refusals: 404 for another path, 426 for another version, 431 for a request over
// max_request_bytes, 400 for everything else; then the connection closes. Bytes after the
// request in the same read are already frames.
//
// Then frames (read by wslay's frame layer): binary payloads are appended to `mqtt_out` as they
// arrive, so MQTT packets may span frames and a frame may hold several [MQTT-6.0.0-2]. A text
// frame closes with 1003 [MQTT-6.0.0-1]; an unmasked frame, reserved bits or opcodes, a bad
// fragment sequence, a control frame over 125 bytes or fragmented close with 1002; a data frame
// over max_buffered_bytes closes with 1009. Pings are answered, a close is echoed.
//
// Memory: payloads are streamed, never collected into messages, so what this object holds for a
// client is fixed: the request (at most max_request_bytes, freed after the upgrade), wslay's 4
// KiB read buffer and one control payload (125 bytes). A fragmented message of any length costs
// nothing; a single frame is capped so that no peer can announce more than the MQTT layer
// accepts in one packet plus headroom.
//
// Moving the object is cheap and keeps a partly read frame; a moved-from object may only be
// destroyed or assigned to.
//
// Thread safety: distinct objects safe; shared objects unsafe.

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/expected.hpp"

namespace ebus::mqtt::transport {

struct websocket_options {
  /// The one path served; a request for another gets 404. The query string is not compared.
  std::string path = "/mqtt";
  /// The whole HTTP upgrade request, request line to blank line; over it gets 431.
  std::size_t max_request_bytes = 8192;
  /// The largest data frame payload accepted (1009 above it). The caller sets it to the maximum
  /// MQTT packet size plus headroom; the default matches the broker's default 1 MiB packet.
  std::size_t max_buffered_bytes = std::size_t{1024} * 1024 + 4096;
};

/// Opens the libraries a WebSocket server uses (http-parser, wslay, OpenSSL's libssl), once; later
/// calls return the same result. A listener calls it at start so that a missing library fails the
/// start ("cannot load libwslay.so.1: ..."); a server made without them refuses every upgrade
/// with 500.
[[nodiscard]] expected<void, std::string> load_websocket_libraries();

/// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + RFC 6455 GUID)).
[[nodiscard]] std::string websocket_accept_key(std::string_view key);

class websocket_server {
 public:
  explicit websocket_server(websocket_options options);
  ~websocket_server();
  websocket_server(websocket_server&&) noexcept;
  websocket_server& operator=(websocket_server&&) noexcept;
  websocket_server(const websocket_server&) = delete;
  websocket_server& operator=(const websocket_server&) = delete;

  /// Bytes from the socket. Appends the MQTT bytes they complete (binary frame payloads, in
  /// order) to `mqtt_out`. Returns false when the connection must close: then closed() is true,
  /// close_reason() says why and take_output() holds the last bytes to write (an HTTP refusal or
  /// a close frame). MQTT bytes appended before the failing frame stay valid.
  bool feed(std::span<const char> bytes, std::string& mqtt_out);

  /// Wraps MQTT bytes into one binary frame (unmasked, as a server's frames are) appended to
  /// `wire_out`. Only once open() and before closed(); an empty span writes nothing.
  void send(std::span<const char> mqtt, std::string& wire_out);

  /// Bytes the protocol itself must write: the 101 or the refusal, pongs, close frames. They are
  /// whole frames: write them before, or between, the frames of send(), never inside one. The
  /// string is moved out, so a second call returns what came since.
  [[nodiscard]] std::string take_output();

  /// The upgrade was accepted; stays true after a later close.
  [[nodiscard]] bool open() const noexcept;
  /// The connection must close once take_output() is written.
  [[nodiscard]] bool closed() const noexcept;
  /// Why it closes ("text frame", "bad upgrade request: no Sec-WebSocket-Key", ...). Holds no
  /// client-supplied bytes, so it can be logged as it is.
  [[nodiscard]] const std::string& close_reason() const noexcept;
  /// The subprotocol answered: "mqtt", "mqttv3.1", or empty when the client offered none.
  [[nodiscard]] const std::string& subprotocol() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace ebus::mqtt::transport
