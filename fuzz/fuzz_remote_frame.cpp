// Module socket input (docs/REMOTE.md): bytes from a client go through the line splitter in
// chunks, then the JSON decoder, registration and destination parsing; the whole input also goes
// through as one SEQPACKET packet. Nothing may crash, and the lines must be those of a plain
// reference split, whatever the chunk size.
//
// Input: byte 0 picks the line limit (16..4096), byte 1 the chunk size (1..256), the rest is
// what the client sent.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bus/message_json.hpp"
#include "remote/frame.hpp"
#include "remote/registration.hpp"

namespace {

void check_message(std::string_view text) {
  const auto m = ebus::bus::from_json(text);
  if (!m) return;
  if (const auto r = ebus::remote::parse_registration(*m)) {
    if (!ebus::remote::valid_name(r->name) || !ebus::remote::valid_name(r->group)) std::abort();
    const auto content = ebus::remote::registration_content({r->name}, {{r->group, {r->name}}});
    std::string out;
    ebus::bus::append_go_json(out, content);
    if (out.empty()) std::abort();
  }
  if (const auto d = ebus::remote::parse_destination(m->route.destination)) {
    if (d->name.empty()) std::abort();
  }
}

/// The lines a splitter must yield for `input`, and whether it must fail.
std::vector<std::string_view> reference_lines(std::string_view input, std::size_t limit,
                                              bool& too_long) {
  std::vector<std::string_view> out;
  too_long = false;
  while (!input.empty()) {
    const auto nl = input.find('\n');
    const auto line = input.substr(0, nl);
    if (line.size() > limit) {
      too_long = true;
      return out;
    }
    if (nl == std::string_view::npos) return out;  // unfinished, within the limit
    if (!line.empty()) out.push_back(line);
    input.remove_prefix(nl + 1);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t limit = 16 + std::size_t{data[0]} * 16;
  const std::size_t chunk = 1 + std::size_t{data[1]};
  const std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);

  ebus::remote::line_splitter splitter(limit);
  std::vector<std::string> lines;
  bool failed = false;
  for (std::size_t at = 0; at < input.size() && !failed; at += chunk) {
    splitter.append(input.substr(at, chunk));
    for (;;) {
      const auto line = splitter.next();
      if (!line) {
        if (line.error().length <= limit) std::abort();
        failed = true;
        break;
      }
      if (!*line) break;
      const std::string_view text = **line;
      if (text.empty() || text.size() > limit || text.find('\n') != std::string_view::npos) {
        std::abort();
      }
      lines.emplace_back(text);
      check_message(text);
    }
    if (!failed && splitter.buffered() > limit) std::abort();  // only an unfinished line is held
  }

  bool too_long = false;
  const auto expected = reference_lines(input, limit, too_long);
  if (failed != too_long || lines.size() != expected.size()) std::abort();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i] != expected[i]) std::abort();
  }

  check_message(ebus::remote::packet_message(input));
  return 0;
}
