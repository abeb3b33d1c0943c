#pragma once
// The client side of MQTT over WebSocket (RFC 6455, MQTT 3.1.1 section 6) as a Sans-I/O object,
// for the load generator and the test peer: the caller owns the socket (TCP or TLS) and writes
// and reads the bytes this object makes and takes.
//
// The upgrade: request() is the HTTP/1.1 GET with a fresh random Sec-WebSocket-Key, offering
// subprotocol `mqtt`; check_upgrade() takes everything read so far and says whether the response
// head is complete and accepted (101, `Upgrade: websocket`, `Connection: upgrade`, the
// Sec-WebSocket-Accept of the key, subprotocol `mqtt` [MQTT-6.0.0-4]) or refused, and why.
//
// Frames: frame() appends one masked frame (a client masks every frame, RFC 6455 section 5.3),
// FIN set; the mask is applied eight bytes at a time, so that the load generator pays little
// next to what unmasking costs the broker. unwrap() takes the server's frames from a byte buffer
// and hands each binary or continuation payload to a sink as it stands in the buffer (no copy),
// answers pings into a reply buffer and stops at a close frame. A frame no server may send
// (masked, text [MQTT-6.0.0-1], reserved bits or opcode, or over max_frame_payload) fails with
// the reason.
//
// Thread safety: distinct objects safe; shared objects unsafe.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace ebus::mqtt::transport {

/// ASCII lower case of `s`.
[[nodiscard]] std::string ascii_lower(std::string_view s);

/// The value of header `name` (lower case) in an HTTP response head (the status line, then header
/// lines each ending in CRLF), trimmed of blanks; nullopt when absent.
[[nodiscard]] std::optional<std::string> http_header_value(std::string_view head,
                                                           std::string_view name);

struct websocket_client_options {
  /// The Host header: "127.0.0.1:1883".
  std::string host;
  std::string path = "/mqtt";
  /// The response head, status line to blank line; a longer one is refused.
  std::size_t max_response_bytes = std::size_t{16} * 1024;
  /// The largest frame payload accepted from the server.
  std::uint64_t max_frame_payload = std::uint64_t{64} * 1024 * 1024;
};

class websocket_client {
 public:
  // RFC 6455 section 5.2.
  static constexpr std::uint8_t op_continuation = 0x0;
  static constexpr std::uint8_t op_text = 0x1;
  static constexpr std::uint8_t op_binary = 0x2;
  static constexpr std::uint8_t op_close = 0x8;
  static constexpr std::uint8_t op_ping = 0x9;
  static constexpr std::uint8_t op_pong = 0xa;

  enum class upgrade_state : std::uint8_t { incomplete, accepted, refused };
  struct upgrade_result {
    upgrade_state state = upgrade_state::incomplete;
    /// accepted: the bytes of the head; what follows them is already frames.
    std::size_t head_bytes = 0;
    /// refused: why ("WebSocket upgrade refused: HTTP/1.1 404 Not Found", ...).
    std::string reason{};
  };

  enum class unwrap_state : std::uint8_t {
    more,    ///< every whole frame is taken; the rest waits for more bytes
    closed,  ///< the server sent a close frame: the connection is over
    failed,  ///< a frame no server may send
  };
  struct unwrap_result {
    unwrap_state state = unwrap_state::more;
    /// The bytes taken from the front of the input (whole frames, a close frame included).
    std::size_t consumed = 0;
    /// more: the size of the incomplete frame that follows, header included, once its header
    /// is readable (0 before), so that the caller can make room for it.
    std::size_t next_frame_bytes = 0;
    /// failed: why.
    std::string reason{};
  };

  /// Makes the key and the request; the key and the masks come from std::random_device.
  explicit websocket_client(websocket_client_options options);

  /// The HTTP upgrade request, to be written first.
  [[nodiscard]] const std::string& request() const noexcept { return request_; }
  /// The Sec-WebSocket-Key sent.
  [[nodiscard]] const std::string& key() const noexcept { return key_; }

  /// Everything read since the request; incomplete until the blank line ending the head.
  [[nodiscard]] upgrade_result check_upgrade(std::string_view received) const;

  /// Appends one masked frame (FIN set) carrying `payload` to `out`.
  void frame(std::uint8_t opcode, std::string_view payload, std::string& out);

  /// Takes whole frames from the front of `in`: each binary or continuation payload goes to
  /// `sink(std::string_view)` (MQTT packets may span frames [MQTT-6.0.0-2]), a ping's pong is
  /// appended to `replies`. Payloads handed on before a failing frame stay valid.
  template <class Sink>
  unwrap_result unwrap(std::string_view in, Sink&& sink, std::string& replies) {
    using sink_type = std::remove_reference_t<Sink>;
    return unwrap_into(
        in,
        [](void* context, std::string_view payload) {
          (*static_cast<sink_type*>(context))(payload);
        },
        const_cast<void*>(static_cast<const void*>(std::addressof(sink))), replies);
  }

 private:
  using sink_fn = void (*)(void* context, std::string_view payload);
  unwrap_result unwrap_into(std::string_view in, sink_fn sink, void* context, std::string& replies);

  websocket_client_options options_;
  std::string key_;
  std::string request_;
  std::uint64_t mask_state_ = 1;
};

}  // namespace ebus::mqtt::transport
