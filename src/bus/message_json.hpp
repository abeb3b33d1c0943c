#pragma once
// Beehive messages as JSON, byte-for-byte as KubeEdge's Go encoder writes them: field order of
// the Go structs, empty fields omitted as tagged `omitempty`, Go's string escaping (`<`, `>`, `&`,
// U+2028/U+2029 escaped, invalid UTF-8 replaced by \ufffd), object keys sorted, float64 numbers in
// Go's format, binary content as standard base64.

#include <string>
#include <string_view>
#include <system_error>

#include <nlohmann/json_fwd.hpp>

#include "bus/message.hpp"
#include "common/expected.hpp"

namespace ebus::bus {

/// Why a JSON document is not a beehive message.
struct decode_error {
  std::error_code code;  ///< bus_errc::invalid_message
  std::string reason;    ///< human-readable, names the offending key, e.g. "header.timestamp: ..."
};

/// Appends the JSON encoding of `m` to `out`.
void encode_json(const message& m, std::string& out);
[[nodiscard]] std::string to_json(const message& m);

/// Decodes one JSON document. Keys may come in any order; unknown keys are ignored (as Go does);
/// a JSON string content becomes text. Never throws.
[[nodiscard]] expected<message, decode_error> from_json(std::string_view text);

/// from_json() into `out`, which is overwritten whole (left unspecified on error): a message
/// that lives in its container (a queue, a result) is decoded where it stays.
[[nodiscard]] expected<void, decode_error> decode_json(std::string_view text, message& out);

/// The same decoding over a whole nlohmann document: slower, and the reference for every input.
/// from_json() uses it for what simdjson refuses and for the reason of every refusal; the fuzz
/// target checks that the two always agree.
[[nodiscard]] expected<message, decode_error> decode_json_tree(std::string_view text);

/// Appends `s` as a JSON string literal with Go's escaping rules.
void append_go_string(std::string& out, std::string_view s);

/// Appends `value` with Go's encoding/json rules (sorted keys, Go float format).
void append_go_json(std::string& out, const nlohmann::json& value);

/// Standard base64 with padding (Go encodes `[]byte` this way).
void append_base64(std::string& out, std::string_view bytes);

/// URL-safe base64 with padding (Go base64.URLEncoding).
[[nodiscard]] std::string base64_url(std::string_view bytes);

}  // namespace ebus::bus
