#pragma once
// Framing of beehive messages on the module sockets (docs/REMOTE.md#framing): one message per
// SEQPACKET packet, or one message per line on a stream socket. No I/O.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/expected.hpp"

namespace ebus::remote {

/// A line that grew past the limit; `length` is how many bytes of it were seen (more than the
/// limit, possibly without its '\n' yet).
struct line_too_long {
  std::size_t length = 0;
};

/// Cuts the bytes of a stream socket into lines, holding at most `max_line` bytes of an
/// unfinished line: a longer one is an error as soon as it is seen, before its '\n' arrives,
/// so a peer cannot make the daemon buffer without bound.
///
/// Thread safety: distinct objects safe; shared objects unsafe.
class line_splitter {
 public:
  explicit line_splitter(std::size_t max_line) : max_line_(max_line) {}

  /// Appends bytes read from the socket.
  void append(std::string_view bytes);

  /// The next complete line without its '\n'; nullopt when no complete line is buffered. Empty
  /// lines are skipped. The view stays valid until the next call of append() or next(). After an
  /// error every later call returns the same error.
  [[nodiscard]] expected<std::optional<std::string_view>, line_too_long> next();

  /// Bytes held: the unfinished line and the lines not yet taken.
  [[nodiscard]] std::size_t buffered() const noexcept { return buffer_.size() - begin_; }

 private:
  std::size_t max_line_;
  std::string buffer_;
  std::size_t begin_ = 0;  // start of the first line not yet taken
  std::size_t scan_ = 0;   // where the search for '\n' resumes: no '\n' in [begin_, scan_)
  std::optional<line_too_long> error_;
};

/// A SEQPACKET packet's message: the packet without one trailing '\n' (beehive writes one).
[[nodiscard]] std::string_view packet_message(std::string_view packet) noexcept;

/// The next non-empty line of `rest`, the unread part of a batched packet (several messages, one
/// per line), without its '\n'; `rest` moves past it. Empty once no line is left.
[[nodiscard]] std::string_view take_line(std::string_view& rest) noexcept;

}  // namespace ebus::remote
