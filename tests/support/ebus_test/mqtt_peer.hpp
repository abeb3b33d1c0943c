#pragma once
// A scripted MQTT peer for conformance and integration tests: a blocking TCP client that sends
// exactly the bytes a test asks for and reads back whole packets, every wait bounded.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "mqtt/codec/decoder.hpp"
#include "mqtt/codec/packet.hpp"

namespace ebus::test {

/// Socket settings applied before the TCP connection is made.
struct peer_options {
  /// SO_RCVBUF in bytes (0 keeps the system default). Set before connecting, so the advertised
  /// window stays small: a peer that never reads then makes the sender's socket fill quickly.
  int receive_buffer = 0;
};

class mqtt_peer {
 public:
  using ms = std::chrono::milliseconds;
  static constexpr ms default_timeout{3000};

  /// Connects a TCP socket to host:port (throws std::system_error on failure).
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

  void close();
  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
  bool eof_ = false;
  mqtt::codec::decoder decoder_;
};

}  // namespace ebus::test
