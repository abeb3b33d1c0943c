#pragma once
// The first of from_json()'s decoders: one pass over a message as beehive's encoders write it,
// straight into the message's strings. It decides only the common shape and leaves the rest to
// simdjson and the nlohmann reference, which give the same message for everything it takes (the
// fuzz target checks it). A remote module's client decodes every message here, and a module's
// messages reach the daemon's loop here, so its cost is paid once per message on both sides.

#include <cstdint>
#include <string_view>

#include "bus/message.hpp"

namespace ebus::bus {

/// What read_envelope() made of a text.
enum class envelope : std::uint8_t {
  decoded,       ///< the whole message is in `out`
  json_content,  ///< all but the content is in `out`; see read_envelope()
  other,         ///< not the common shape: `out` is partly written
};

/// Decodes `text` into `out` when it is a message of the common shape:
/// - an object whose members are only `header`, `route` and `content`, each of them any number
///   of times (the last one counts, as in every JSON decoder here);
/// - `header` and `route` null, or objects of their known fields only: strings (the `timestamp`
///   an integer, `sync` a boolean), each of them also null;
/// - `content` a string or null;
/// - strings of well-formed UTF-8 with any JSON escape but a lone surrogate, keys without
///   escapes, JSON whitespace between tokens.
/// A content that is another JSON value (a command's object) gives `envelope::json_content`:
/// what comes before it is decoded into `out`, and `json_content` is the text from the value to
/// the message's closing brace. When that text is one JSON value, it is the content and the
/// message is of the common shape; when it is not, the message is `other`.
[[nodiscard]] envelope read_envelope(std::string_view text, message& out,
                                     std::string_view& json_content);

}  // namespace ebus::bus
