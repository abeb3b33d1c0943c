#include "remote/frame.hpp"

#include <algorithm>

namespace ebus::remote {

void line_splitter::append(std::string_view bytes) {
  if (error_) return;
  if (begin_ > 0 && begin_ == buffer_.size()) {
    buffer_.clear();  // everything was taken: reuse the storage from the start
    begin_ = 0;
    scan_ = 0;
  }
  buffer_.append(bytes);
}

expected<std::optional<std::string_view>, line_too_long> line_splitter::next() {
  if (error_) return fail(*error_);
  for (;;) {
    const auto nl = buffer_.find('\n', scan_);
    if (nl == std::string::npos) {
      scan_ = buffer_.size();
      if (buffer_.size() - begin_ > max_line_) {
        error_ = line_too_long{buffer_.size() - begin_};
        return fail(*error_);
      }
      if (begin_ > 0 && begin_ >= buffer_.size() / 2) {
        // Move the unfinished line to the front once the taken lines dominate, so that the
        // buffer stays within about twice the longest line.
        buffer_.erase(0, begin_);
        scan_ -= begin_;
        begin_ = 0;
      }
      return std::optional<std::string_view>{};
    }
    const std::size_t length = nl - begin_;
    if (length > max_line_) {
      error_ = line_too_long{length};
      return fail(*error_);
    }
    const std::string_view line(buffer_.data() + begin_, length);
    begin_ = nl + 1;
    scan_ = begin_;
    if (!line.empty()) return std::optional<std::string_view>{line};
  }
}

std::string_view packet_message(std::string_view packet) noexcept {
  if (!packet.empty() && packet.back() == '\n') packet.remove_suffix(1);
  return packet;
}

std::string_view take_line(std::string_view& rest) noexcept {
  while (!rest.empty()) {
    const std::size_t end = std::min(rest.find('\n'), rest.size());
    const std::string_view line = rest.substr(0, end);
    rest.remove_prefix(std::min(end + 1, rest.size()));
    if (!line.empty()) return line;
  }
  return {};
}

}  // namespace ebus::remote
