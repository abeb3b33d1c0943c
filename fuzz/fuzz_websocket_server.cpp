// Fuzz target for websocket_server: socket bytes from a client, fed once whole and once in
// pieces. The first input byte is the setup:
//   bit 0      a valid upgrade request goes first, so the rest of the input is frames
//   bit 1      max_buffered_bytes is 64 (else 1 MiB), to reach "frame too large"
//   bit 2      max_request_bytes is 128 (else 8192), to reach the request limit
//   bits 3-7   the piece size minus one for the second run (1..32 bytes)
//
// Besides crashes and sanitizer reports it traps when the two runs disagree on anything (MQTT
// bytes, bytes to write, open, closed, reason, subprotocol), when feed() answers false without
// closing or true after a close, when a close has no reason, when more MQTT bytes come out than
// went in, and when send() does not write one unmasked binary frame.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mqtt/transport/websocket_server.hpp"

namespace {

using ebus::mqtt::transport::websocket_options;
using ebus::mqtt::transport::websocket_server;

void require(bool condition) {
  if (!condition) __builtin_trap();
}

constexpr std::string_view valid_request =
    "GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: mqtt\r\n\r\n";

struct run_result {
  std::string mqtt;
  std::string output;
  bool open = false;
  bool closed = false;
  std::string reason;
  std::string subprotocol;

  bool operator==(const run_result&) const = default;
};

run_result run(const websocket_options& options, std::string_view stream, std::size_t piece) {
  websocket_server ws(options);
  run_result r;
  bool was_closed = false;
  while (!stream.empty()) {
    const std::size_t n = std::min(piece, stream.size());
    const bool ok = ws.feed({stream.data(), n}, r.mqtt);
    require(ok == !ws.closed());
    require(!(was_closed && ok));
    was_closed = ws.closed();
    if (was_closed) require(!ws.close_reason().empty());
    r.output += ws.take_output();
    stream.remove_prefix(n);
  }
  r.open = ws.open();
  r.closed = ws.closed();
  r.reason = ws.close_reason();
  r.subprotocol = ws.subprotocol();

  if (ws.open() && !ws.closed()) {
    std::string wire;
    ws.send({"\xc0\x00", 2}, wire);  // PINGREQ
    require(wire == std::string_view("\x82\x02\xc0\x00", 4));
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t setup = data[0];
  std::string stream;
  if ((setup & 1) != 0) stream = valid_request;
  stream.append(reinterpret_cast<const char*>(data + 1), size - 1);

  websocket_options options;
  options.max_buffered_bytes = (setup & 2) != 0 ? 64 : std::size_t{1} << 20;
  options.max_request_bytes = (setup & 4) != 0 ? 128 : 8192;
  const std::size_t piece = static_cast<std::size_t>(setup >> 3) + 1;

  const run_result whole = run(options, stream, stream.size() + 1);
  const run_result pieces = run(options, stream, piece);
  require(whole == pieces);
  require(whole.mqtt.size() <= stream.size());
  require(!whole.open || (setup & 1) != 0 || !whole.output.empty());
  return 0;
}
