#pragma once
// How large the messages on the module sockets can get, and how large the kernel lets one
// SEQPACKET packet be (docs/REMOTE.md#message-size). No Asio: the daemon, eventbus-ctl and the
// tests share it.

#include <cstddef>

namespace ebus::remote {

/// Room for a beehive envelope around an MQTT message's topic and payload: keys, msg_id,
/// parent_msg_id, timestamp, sync, type, and the route with a destination of up to
/// max_name_length characters, with a margin.
inline constexpr std::size_t envelope_bytes = 1024;

/// The most bytes one text byte takes in beehive JSON: a control byte as "\u0001", an invalid
/// UTF-8 byte as "\ufffd".
inline constexpr std::size_t max_json_expansion = 6;

/// The largest JSON encoding (without the '\n') of the beehive message the EventBus makes of an
/// MQTT message that arrived in a PUBLISH of at most `max_mqtt_packet` bytes: the topic and the
/// payload together are shorter than the packet, and each of their bytes becomes at most six
/// (a control character as `\u0001`, an invalid UTF-8 byte as `\ufffd`; a topic written as
/// base64 grows by a third only), plus envelope_bytes. A moduleSocketMaxMessageBytes of at least
/// this never refuses such a message as too large.
[[nodiscard]] std::size_t required_message_bytes(std::size_t max_mqtt_packet) noexcept;

/// Linux refuses a SEQPACKET message larger than the sender's send buffer minus this much
/// (unix_dgram_sendmsg).
inline constexpr std::size_t packet_overhead = 32;

struct send_buffer {
  std::size_t packet_limit = 0;  ///< largest packet the buffer admits, the '\n' included
  bool forced = false;           ///< set with SO_SNDBUFFORCE (beyond net.core.wmem_max)
};

/// Sizes the send buffer of the SEQPACKET socket `fd` so that one packet of `packet_bytes`
/// fits: SO_SNDBUFFORCE first (needs CAP_NET_ADMIN: works as root, as edgecore runs), else
/// SO_SNDBUF, which the kernel caps at net.core.wmem_max (about 416 KiB of packet by default).
/// Returns what the buffer then admits; the kernel's own limit on one packet may be lower (see
/// probe_packet_limit()).
send_buffer size_packet_send_buffer(int fd, std::size_t packet_bytes) noexcept;

/// The largest SEQPACKET packet, at most `packet_bytes`, that a socket of this process sized by
/// size_packet_send_buffer() can send: the send buffer's limit, and the kernel's limit on the
/// memory of one packet (about 4 MiB on x86-64), which no socket option shows, found by sending
/// over a socket pair. 0 when no socket pair could be made.
[[nodiscard]] send_buffer probe_packet_limit(std::size_t packet_bytes);

}  // namespace ebus::remote
