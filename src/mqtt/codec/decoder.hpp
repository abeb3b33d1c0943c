#pragma once
// Incremental MQTT 3.1 / 3.1.1 stream decoder: bytes go in as they arrive from a socket, in pieces
// of any size, and whole validated packets come out.
//
//   decoder dec{{.max_packet_size = 64 * 1024}};
//   auto space = dec.prepare(4096);            // read from the socket into `space`, then
//   dec.commit(bytes_read);                    // (or simply dec.feed(bytes))
//   for (;;) {
//     auto r = dec.next();
//     if (!r) return close(r.error());         // the stream is unusable from here on
//     if (!*r) break;                          // need more bytes
//     handle(std::move(**r));
//   }
//
// The decoder accepts packets of both directions, so the broker, the external-broker client and
// test peers share it; which packets a side may receive is the session's business.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>

#include "common/expected.hpp"
#include "mqtt/codec/codec_error.hpp"
#include "mqtt/codec/packet.hpp"

namespace ebus::mqtt::codec {

struct decoder_options {
  /// Largest accepted packet, fixed header included (MQTT v5's "Maximum Packet Size" meaning).
  /// A larger Remaining Length fails with packet_too_large as soon as the length bytes are in,
  /// before any of the body is buffered.
  std::size_t max_packet_size = max_packet_size_limit;
  /// Level whose fixed-header rules apply to the stream until a CONNECT is decoded.
  protocol_level level = protocol_level::v3_1_1;
};

/// Outcome of decoder::next(): a packet; std::nullopt when the next packet is not complete yet;
/// or the error that makes the stream unusable (codec_errc values).
using decode_result = ebus::expected<std::optional<packet>, std::error_code>;

/// Checks every MQTT 3.1.1 rule that one packet can break on its own: fixed header, field
/// lengths and flags (chapters 2 and 3), UTF-8 strings (section 1.5.3), topic names (section 4.7)
/// and the client identifier refusals of [MQTT-3.1.3-8]. Topic filter syntax is left to the topic
/// layer; rules about packet order (CONNECT first, packet identifiers in use) to the session.
/// Once a CONNECT is decoded, its protocol level applies to the rest of the stream: MQTT 3.1
/// (level 3) did not reserve the fixed-header flag bits of non-PUBLISH packets, so they are
/// ignored there; the CONNACK acknowledge flags are not checked there either.
///
/// Thread safety: distinct objects: safe; shared objects: unsafe.
class decoder {
 public:
  explicit decoder(decoder_options options = {});

  /// Returns writable space of at least `n` bytes after the buffered ones, for a socket read;
  /// commit() then says how many bytes were written. The span is valid until the next prepare()
  /// or feed(). The buffer grows with the bytes received, never ahead of them, and consumed bytes
  /// are dropped only when room is needed.
  [[nodiscard]] std::span<char> prepare(std::size_t n);

  /// Marks the first `n` bytes of the last prepare() as received.
  void commit(std::size_t n) noexcept;

  /// Copies `bytes` into the buffer: prepare() plus commit().
  void feed(std::string_view bytes);

  /// Decodes straight from `bytes`: a connection that reads into a buffer shared by all
  /// connections then copies only the start of an unfinished packet, with keep_rest(), before the
  /// shared buffer is reused. `bytes` must stay valid until then. Bytes already buffered must
  /// begin `bytes` (the reader copied pending() in front of what it read): the decoder drops its
  /// own copy of them.
  void borrow(std::string_view bytes) noexcept;
  /// The bytes received and not yet decoded (buffered() of them); valid until the next call
  /// that changes the decoder.
  [[nodiscard]] std::string_view pending() const noexcept {
    return {(borrowed_ != nullptr ? borrowed_ : buffer_.get()) + begin_, buffered()};
  }
  /// Ends borrow(): copies the bytes not yet decoded into the decoder's own buffer.
  void keep_rest();
  /// Frees the receive buffer when nothing is buffered, so that an idle connection holds none.
  void release() noexcept;

  /// Decodes the next packet if its bytes are all buffered. After an error every further call
  /// returns the same error.
  [[nodiscard]] decode_result next();

  /// Which rule the last error broke, citing the statement id where the specification has one
  /// ("[MQTT-3.1.2-3] CONNECT reserved flag is not 0"); empty while there is no error. For logs.
  [[nodiscard]] std::string_view error_detail() const noexcept { return {detail_, detail_size_}; }

  /// The protocol level the fixed-header rules follow.
  [[nodiscard]] protocol_level level() const noexcept { return level_; }

  /// Sets the level for the rest of the stream, e.g. on a client once its CONNECT is sent.
  void set_level(protocol_level level) noexcept { level_ = level; }

  /// Bytes received and not yet decoded.
  [[nodiscard]] std::size_t buffered() const noexcept { return end_ - begin_; }

  /// Size of the receive buffer, for memory accounting.
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

 private:
  decode_result fail(codec_errc code, std::string_view detail);

  // Offsets and sizes are 32-bit: a packet is at most max_packet_size_limit (256 MiB) and a read
  // adds a bounded chunk, while every idle connection holds one decoder.
  std::unique_ptr<char[]> buffer_;
  const char* borrowed_ = nullptr;  // set by borrow(): begin_ and end_ index these bytes
  const char* detail_ = nullptr;    // error_detail(), detail_size_ bytes
  std::uint32_t detail_size_ = 0;
  std::uint32_t max_packet_size_;
  std::uint32_t capacity_ = 0;
  std::uint32_t begin_ = 0;    // first byte not yet decoded
  std::uint32_t end_ = 0;      // one past the last received byte
  std::uint32_t missing_ = 0;  // bytes still missing from the next packet, once its size is known
  codec_errc error_{};         // zero while there is none
  protocol_level level_;
};

}  // namespace ebus::mqtt::codec
