#pragma once
// A connection's peer as bytes: 20 bytes where the text took a 32-byte string (and a heap block
// for IPv6), turned into text only when a log line is written ("127.0.0.1:50000").
//
// Thread safety: a value type.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace ebus::mqtt::broker {

class peer_address {
 public:
  /// Unknown.
  peer_address() = default;
  /// The peer of the connected socket `fd`; unknown when the socket has none (reset already).
  [[nodiscard]] static peer_address of_socket(int fd) noexcept;

  [[nodiscard]] bool known() const noexcept { return family_ != 0; }
  /// "address:port", or "unknown".
  [[nodiscard]] std::string to_string() const;

 private:
  std::array<std::uint8_t, 16> address_{};  // IPv4 in the first four bytes
  std::uint16_t port_ = 0;
  std::uint8_t family_ = 0;  // AF_INET, AF_INET6, or 0 when unknown
};

}  // namespace ebus::mqtt::broker

template <>
struct fmt::formatter<ebus::mqtt::broker::peer_address> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const ebus::mqtt::broker::peer_address& peer, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(peer.to_string(), ctx);
  }
};
