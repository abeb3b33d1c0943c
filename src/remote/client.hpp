#pragma once
// A blocking client of the daemon's module sockets (docs/REMOTE.md): connects, registers as a
// remote module, then sends and receives beehive messages. For command-line tools, tests and
// remote modules; plain POSIX sockets with poll() deadlines, no event loop. It takes whatever the
// socket holds at once (many SEQPACKET packets per system call, 64 KiB of the stream socket) and
// decodes one message per receive(), where the bytes lie; it waits only when nothing is left.
//
//   auto c = ebus::remote::bus_client::connect("/var/run/kubeedge/eventbus.sock", "my-tool");
//   if (!c) { std::fprintf(stderr, "%s\n", c.error().c_str()); ... }
//   auto reply = c->request(query, std::chrono::seconds(5));
//
// Thread safety: none; one thread uses a client at a time.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bus/message.hpp"
#include "common/expected.hpp"
#include "remote/packet_io.hpp"

namespace ebus::remote {

/// Default path of the SEQPACKET module socket (`moduleSocket`).
inline constexpr const char* default_socket_path = "/var/run/kubeedge/eventbus.sock";
/// Default path of the stream module socket (`moduleStreamSocket`).
inline constexpr const char* default_stream_socket_path = "/var/run/kubeedge/eventbus-stream.sock";

/// How the daemon frames what it sends on the SEQPACKET socket.
enum class packet_framing : std::uint8_t {
  one_message,  ///< one message per packet, as beehive's socket protocol
  batched,      ///< several messages per packet, one per line (registration "batch": true)
};

class bus_client {
 public:
  /// Connects to the SEQPACKET socket at `path` (the stream socket, one message per line, when
  /// `stream` is true) and registers module `name` in `group` ("": a group named after the
  /// module, as beehive does). Waits at most `timeout` for the registration reply. Errors are
  /// readable sentences: "cannot connect to /x: No such file or directory (is the eventbus
  /// daemon running?)", "registration refused: <reason>". `framing` batched asks the daemon to
  /// pack many messages into each packet (docs/REMOTE.md#batched-packets); receive() hands them
  /// out one by one all the same.
  static expected<bus_client, std::string> connect(
      const std::string& path, const std::string& name, const std::string& group = {},
      bool stream = false, std::chrono::milliseconds timeout = std::chrono::seconds(5),
      packet_framing framing = packet_framing::one_message);

  bus_client(bus_client&& other) noexcept;
  bus_client& operator=(bus_client&& other) noexcept;
  bus_client(const bus_client&) = delete;
  bus_client& operator=(const bus_client&) = delete;
  ~bus_client();  // closes the connection: the daemon unregisters the module

  /// Writes `m` as one packet (one line on the stream socket). Waits for room in the socket
  /// buffer at most as long as the connect timeout. Error when the connection is gone, or when
  /// `m` is larger than one SEQPACKET packet may be ("N bytes exceed the SEQPACKET per-packet
  /// limit of M; use the stream socket").
  expected<void, std::string> send(const bus::message& m);

  /// The next message, from those kept by request() first; nullopt when none arrived within
  /// `timeout`. Error when the connection closed or the daemon sent something that is not a
  /// beehive message, or a SEQPACKET packet larger than packet_receiver::default_slot_bytes
  /// (more than the kernel lets the daemon send; the stream socket has no such limit); the
  /// client is unusable afterwards.
  expected<std::optional<bus::message>, std::string> receive(std::chrono::milliseconds timeout);

  /// receive() into `m`, which is overwritten whole: true when a message came within `timeout`,
  /// false when none did (`m` is then unspecified). The strings of `m` keep their storage from
  /// one message to the next, so a consumer that handles each message before it takes the next
  /// allocates nothing per message once they are large enough. Errors as receive().
  expected<bool, std::string> receive_into(bus::message& m, std::chrono::milliseconds timeout);

  /// Sends `m` with header.sync = true and waits for the message whose parent_msg_id is m's id:
  /// the response, or the daemon's error message (operation "error", content the reason), both
  /// returned as they are. Other messages received meanwhile are kept for receive(). Error on
  /// timeout or when the connection is gone.
  expected<bus::message, std::string> request(bus::message m, std::chrono::milliseconds timeout);

  /// The registered module name.
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// Content of the registration reply: {"modules":[...],"groups":{group:[members]}}.
  [[nodiscard]] const nlohmann::json& registration() const noexcept { return registration_; }

 private:
  bus_client(int fd, bool stream, std::string name, std::chrono::milliseconds io_timeout);

  /// Reads one message from the socket, ignoring those kept in `kept_`.
  expected<std::optional<bus::message>, std::string> read_message(
      std::chrono::milliseconds timeout);
  /// read_message() into `m`: true when one came, false when none did within `timeout`.
  expected<bool, std::string> read_into(bus::message& m, std::chrono::milliseconds timeout);
  /// The next message's text, waiting at most `timeout` for one; nullopt when none came. Valid
  /// until the next call.
  expected<std::optional<std::string_view>, std::string> wait_text(
      std::chrono::milliseconds timeout);
  /// The next message's text from what was received; nullopt when nothing complete is left.
  /// Error when the connection closed. Valid until the next call.
  expected<std::optional<std::string_view>, std::string> next_text();
  /// Receives what the socket holds without waiting; false when it held nothing.
  expected<bool, std::string> fill();
  void close() noexcept;

  int fd_ = -1;
  bool stream_ = false;
  std::size_t packet_limit_ = 0;  // largest SEQPACKET packet, '\n' included
  std::string name_;
  std::chrono::milliseconds io_timeout_;
  nlohmann::json registration_;
  std::deque<bus::message> kept_;           // received while request() waited for its response
  std::optional<packet_receiver> packets_;  // SEQPACKET: packets received, not yet decoded
  std::string_view packet_rest_;  // lines of the packet last taken from packets_ not yet taken
  // Stream socket: bytes received; [taken_, filled_) not yet taken as lines, no '\n' in
  // [taken_, scanned_).
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  std::size_t filled_ = 0;
  std::size_t taken_ = 0;
  std::size_t scanned_ = 0;
};

}  // namespace ebus::remote
