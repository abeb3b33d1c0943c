#pragma once
// A scripted MQTT peer for conformance and integration tests: a blocking client that sends
// exactly the bytes a test asks for and reads back whole packets, every wait bounded.
//
// It speaks MQTT over plain TCP, TLS, WebSocket or WebSocket over TLS (the process's
// test_transport() unless peer_options say otherwise); the layers are invisible to the methods
// below: send_raw() bytes are MQTT bytes, whatever carries them. The opening exchange (TLS
// handshake, HTTP upgrade) runs in the constructor. Over WebSocket each send goes out as one
// masked binary frame (split at 64 KiB), received frames are unwrapped, pings answered, and the
// server's close frame counts as the connection's end; a frame no server may send (masked, text,
// reserved bits or opcode) throws std::runtime_error from the receiving call. Over TLS the client
// trusts only test_tls_files() and checks that the certificate names 127.0.0.1.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "ebus_test/transport.hpp"
#include "mqtt/codec/decoder.hpp"
#include "mqtt/codec/packet.hpp"
#include "mqtt/transport/tls_client.hpp"
#include "mqtt/transport/websocket_client.hpp"

namespace ebus::test {

/// How the peer connects.
struct peer_options {
  /// SO_RCVBUF in bytes (0 keeps the system default). Set before connecting, so the advertised
  /// window stays small: a peer that never reads then makes the sender's socket fill quickly.
  int receive_buffer = 0;
  /// The layers over TCP; test_transport() when unset.
  std::optional<transport_kind> transport = std::nullopt;
};

class mqtt_peer {
 public:
  using ms = std::chrono::milliseconds;
  static constexpr ms default_timeout{3000};

  /// Connects to host:port and completes the transport's opening exchange within
  /// default_timeout. Throws std::system_error when the TCP connection fails,
  /// std::runtime_error when the TLS handshake or the WebSocket upgrade does (the message says
  /// why: the OpenSSL error, the HTTP status line, the header that did not match).
  explicit mqtt_peer(std::uint16_t port, const std::string& host = "127.0.0.1");
  mqtt_peer(std::uint16_t port, peer_options options, const std::string& host = "127.0.0.1");
  mqtt_peer(const mqtt_peer&) = delete;
  mqtt_peer& operator=(const mqtt_peer&) = delete;
  ~mqtt_peer();

  void send(const mqtt::codec::packet& p);
  void send_raw(std::string_view bytes);

  /// The next packet, or nullopt on timeout, connection end, or undecodable bytes.
  std::optional<mqtt::codec::packet> receive(ms timeout = default_timeout);

  /// The next packet if it is a `T`; nullopt on timeout, connection end, or another packet type
  /// (which is consumed).
  template <class T>
  std::optional<T> receive_as(ms timeout = default_timeout) {
    auto p = receive(timeout);
    if (!p) return std::nullopt;
    if (auto* t = std::get_if<T>(&*p)) return std::move(*t);
    return std::nullopt;
  }

  /// True if no packet arrives within `timeout` (and the connection stays open).
  bool silent_for(ms timeout);

  /// True if the broker closes the connection within `timeout` (packets before it are skipped).
  bool closed_within(ms timeout = default_timeout);

  /// CONNECT with the given fields, and the CONNACK that answers it (nullopt if none came).
  std::optional<mqtt::codec::connack> connect(mqtt::codec::connect c);
  std::optional<mqtt::codec::connack> connect(const std::string& client_id, bool clean = true,
                                              std::uint16_t keep_alive = 60);

  /// SUBSCRIBE one filter; returns the SUBACK code (nullopt if no SUBACK came).
  std::optional<mqtt::codec::suback_return_code> subscribe(const std::string& filter,
                                                           mqtt::codec::qos_level qos,
                                                           std::uint16_t packet_id = 1);

  /// Receives packets until a PUBLISH arrives (acknowledging nothing).
  std::optional<mqtt::codec::publish> receive_publish(ms timeout = default_timeout);

  /// Closes the socket at once: no DISCONNECT, no TLS close_notify, no WebSocket close frame.
  void close();
  /// The TLS session of a tls or wss peer (nullptr otherwise), for tests of TLS itself.
  [[nodiscard]] ssl_st* tls_session() const noexcept { return tls_.get(); }
  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }

 private:
  void start_tls(const std::string& host);
  void upgrade_to_websocket(const std::string& host, std::uint16_t port);
  // The byte stream under MQTT (TCP or TLS): > 0 bytes read, 0 at the end, -1 on timeout.
  std::ptrdiff_t read_wire(char* into, std::size_t size,
                           std::chrono::steady_clock::time_point deadline);
  void write_wire(std::string_view bytes);
  void write_frame(std::uint8_t opcode, std::string_view payload);
  // Reads once and passes what arrived on to the decoder; false on timeout.
  bool pump(std::chrono::steady_clock::time_point deadline);
  void unwrap_frames();

  int fd_ = -1;
  bool eof_ = false;
  transport_kind transport_ = transport_kind::tcp;
  mqtt::transport::tls_session_ptr tls_;
  std::optional<mqtt::transport::websocket_client> ws_;
  std::string frames_in_;  // WebSocket bytes not yet unwrapped
  mqtt::codec::decoder decoder_;
};

}  // namespace ebus::test
