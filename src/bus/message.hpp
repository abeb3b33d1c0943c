#pragma once
// The beehive message envelope (KubeEdge staging/src/github.com/kubeedge/beehive/pkg/core/model):
// header + route + content, with beehive's constructors. The JSON form lives in message_json.hpp.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ebus::bus {

/// Operation names used on the wire by KubeEdge modules.
namespace operation {
inline constexpr std::string_view response = "response";
inline constexpr std::string_view error = "error";
inline constexpr std::string_view upload = "upload";
inline constexpr std::string_view publish = "publish";
inline constexpr std::string_view subscribe = "subscribe";
inline constexpr std::string_view unsubscribe = "unsubscribe";
}  // namespace operation

struct header {
  std::string id;                ///< `msg_id`: UUID v4
  std::string parent_id;         ///< `parent_msg_id`: id of the request this message answers
  std::int64_t timestamp = 0;    ///< `timestamp`: milliseconds since the Unix epoch
  std::string resource_version;  ///< `resourceversion`
  bool sync = false;             ///< `sync`: set by send_sync / send_to_group_sync
  std::string type;              ///< `type`: context type ("" = in-process, "unixpacket" = socket)

  friend bool operator==(const header&, const header&) = default;
};

struct route {
  std::string source;
  std::string destination;
  std::string group;
  std::string operation;
  std::string resource;

  friend bool operator==(const route&, const route&) = default;
};

/// Message content. Beehive's content is a Go `interface{}`; what crosses the bus in practice is
/// a text string (MQTT payloads, cloud strings), a byte string (devicetwin's `[]byte`) or a
/// decoded JSON value. Keeping text and bytes as plain strings avoids a JSON detour on the hot
/// path.
class content {
 public:
  enum class kind : std::uint8_t { null, text, binary, json };

  content() = default;
  [[nodiscard]] static content text(std::string s) { return content(kind::text, std::move(s)); }
  [[nodiscard]] static content binary(std::string bytes) {
    return content(kind::binary, std::move(bytes));
  }
  /// A JSON value. A JSON string becomes text and null becomes null, as Go decodes them.
  [[nodiscard]] static content json(nlohmann::json value);
  /// Makes this content the text `s`, keeping the storage it holds: a message decoded again and
  /// again into one object allocates nothing for its content once the storage is large enough.
  void assign_text(std::string_view s) {
    kind_ = kind::text;
    bytes_.assign(s);
    if (!json_.is_null()) json_ = nullptr;
  }

  [[nodiscard]] kind type() const noexcept { return kind_; }
  [[nodiscard]] bool is_null() const noexcept { return kind_ == kind::null; }
  /// The text or the bytes; empty for other kinds.
  [[nodiscard]] const std::string& bytes() const noexcept { return bytes_; }
  /// The JSON value; null unless type() == kind::json.
  [[nodiscard]] const nlohmann::json& json_value() const noexcept { return json_; }

  /// Beehive's GetContentData: bytes and text as they are, anything else as its JSON encoding.
  [[nodiscard]] std::string data() const;

  friend bool operator==(const content&, const content&) = default;

 private:
  content(kind k, std::string s) : kind_(k), bytes_(std::move(s)) {}

  kind kind_ = kind::null;
  std::string bytes_;
  nlohmann::json json_;
};

struct message {
  struct header header;
  struct route route;
  class content content;

  friend bool operator==(const message&, const message&) = default;
};

/// Bytes a message is charged for while it waits in a queue (an inbox, a group backlog): its
/// strings, its content (a JSON value by its nodes) and a fixed overhead for the envelope and the
/// queue slot. An estimate of what it holds in memory, the same for equal messages.
[[nodiscard]] std::size_t approximate_size(const message& m) noexcept;

/// The fixed part of approximate_size(): what an empty message costs in a queue.
inline constexpr std::size_t message_overhead = sizeof(message) + 64;

/// A fresh lower-case UUID v4 string (36 characters).
[[nodiscard]] std::string new_uuid();

/// Beehive NewMessage: fresh id, the given parent id, timestamp = now in ms, empty route.
[[nodiscard]] message new_message(std::string parent_id = {});

/// Beehive BuildRouter: sets source, group, resource and operation.
message& build_router(message& m, std::string source, std::string group, std::string resource,
                      std::string operation);

/// Beehive NewRespByMessage: new id, parent = request id, source, group, resource and type copied
/// unchanged from the request (not swapped), operation "response".
[[nodiscard]] message new_response(const message& request, class content c);

/// Beehive NewErrorMessage (current era): parent = request id, resource copied, operation "error",
/// content = text, source and group empty.
[[nodiscard]] message new_error(const message& request, std::string text);

/// Beehive Clone: new id; parent id, timestamp, route and content kept.
[[nodiscard]] message clone(const message& m);

}  // namespace ebus::bus
