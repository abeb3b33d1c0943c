// Fuzz target for the MQTT stream decoder.
//
// Byte 0 of the input picks the configuration, the rest is the byte stream:
//   bits 0-2  maximum packet size (see max_sizes)
//   bits 3-5  how many bytes arrive per read (see chunk_sizes; 0 = all at once)
//   bit 6     the stream starts at protocol level 3 (MQTT 3.1) instead of 4
//   bit 7     bytes arrive as the broker reads them instead of through feed(): reads alternate
//             between prepare()/commit() into the decoder's buffer and a shared buffer holding
//             pending() then the new bytes, borrow()ed, then keep_rest() and overwritten
// Besides crashes and sanitizer reports, it traps when a decoded packet does not survive
// encode -> decode unchanged, when encoded_size() disagrees with encode(), or when an error is
// not sticky.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "mqtt/codec/decoder.hpp"
#include "mqtt/codec/encoder.hpp"

namespace {

using namespace ebus::mqtt::codec;

constexpr std::array<std::size_t, 8> max_sizes = {
    max_packet_size_limit, 2, 8, 16, 64, 256, 1024, 65'536};
constexpr std::array<std::size_t, 8> chunk_sizes = {0, 1, 2, 3, 7, 16, 64, 509};

void require(bool condition) {
  if (!condition) __builtin_trap();
}

// The decoder's level after `p` is the one `p` was checked against (a CONNECT sets it, and its
// own decoding does not depend on it), so a second decoder at that level must accept the
// canonical encoding and return the same value.
void check_round_trip(const packet& p, const decoder_options& options) {
  std::string wire;
  encode(p, wire);
  require(wire.size() == encoded_size(p));

  decoder again(options);
  again.feed(wire);
  const decode_result r = again.next();
  require(r.has_value() && r->has_value());
  require(**r == p);
  require(again.buffered() == 0);

  std::string second;
  encode(**r, second);
  require(second == wire);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t config = data[0];
  const std::size_t max_size = max_sizes[config & 0x07u];
  const std::size_t chunk = chunk_sizes[(config >> 3) & 0x07u];
  const bool via_prepare = (config & 0x80u) != 0;
  decoder_options options{
      .max_packet_size = max_size,
      .level = (config & 0x40u) != 0 ? protocol_level::v3_1 : protocol_level::v3_1_1};
  decoder dec(options);

  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string shared;  // the broker's read buffer, shared with other connections
  for (std::size_t read = 0; !input.empty(); ++read) {
    const std::size_t n = chunk == 0 ? input.size() : std::min(chunk, input.size());
    const bool borrowing = via_prepare && read % 2 == 1;
    if (borrowing) {
      shared.assign(dec.pending());
      shared.append(input.substr(0, n));
      dec.borrow(shared);
    } else if (via_prepare) {
      const auto space = dec.prepare(n);
      require(space.size() >= n);
      std::memcpy(space.data(), input.data(), n);
      dec.commit(n);
    } else {
      dec.feed(input.substr(0, n));
    }
    input.remove_prefix(n);

    for (;;) {
      const decode_result r = dec.next();
      if (!r) {
        require(!dec.error_detail().empty());
        const decode_result again = dec.next();
        require(!again && again.error() == r.error());
        return 0;
      }
      if (!r->has_value()) break;
      options.level = dec.level();
      check_round_trip(**r, options);
    }
    if (borrowing) {
      dec.keep_rest();
      std::memset(shared.data(), 0xff, shared.size());  // the next connection's bytes
    }
  }
  return 0;
}
