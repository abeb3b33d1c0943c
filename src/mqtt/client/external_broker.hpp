#pragma once
// The EventBus's two connections to an external MQTT broker (KubeEdge modes 1 and 2): a
// subscriber and a publisher, as edgecore has, driven by libmosquitto on our event loop.
//
// Better than edgecore (spec §4):
//  - start() never blocks: both clients connect in the background and reconnect with a capped
//    exponential backoff; the rest of the daemon runs meanwhile;
//  - after every (re)connect of the subscriber, every topic given to subscribe() is subscribed
//    again (QoS 1), in the order given;
//  - publishes made while the publisher is disconnected are kept, up to buffer_size messages and
//    buffer_bytes bytes not yet acknowledged (and within the memory budget, when one is given),
//    and sent after reconnect; beyond that new ones are refused with the reason and counted.
//    They go out in the order published. A message in flight when a connection drops is sent
//    again (DUP set) after the reconnect, so delivery is at least once;
//  - a receiver that cannot take more pauses the subscriber (pause_receiving): the broker keeps
//    what follows, where edgecore's subscriber would hand it on to be dropped.
//
// Time (reconnect backoff, connect and stop timeouts, rate limits of warnings) comes from the
// ebus::clock given to the constructor.
//
// Thread safety: distinct objects safe; shared objects unsafe. Loop thread only; callbacks run
// on the loop thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/asio.hpp"
#include "common/clock.hpp"
#include "common/expected.hpp"

namespace ebus {
class memory_budget;
}

namespace ebus::mqtt::client {

struct external_options {
  /// Any URL parse_broker_url() accepts (broker_url.hpp): tcp://host:port, ssl://host:port,
  /// unix:///path... A host name is resolved off the loop (mosquitto_connection.hpp); TLS
  /// verifies, and sends as SNI, that name. Its user information, if any, overrides `username`
  /// and `password` (credentials_for()).
  std::string url = "tcp://127.0.0.1:1883";
  std::string sub_client_id;  ///< must be non-empty
  std::string pub_client_id;  ///< must be non-empty
  std::string username;       ///< sent only when non-empty
  std::string password;       ///< sent only when username and password are non-empty
  /// eventBusTLS.enable: client certificate + key, CA file, server verification on. When false
  /// and the URL is a TLS one, the connection is encrypted but not verified (as edgecore).
  bool tls_enable = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::uint16_t keepalive_seconds = 30;
  std::chrono::milliseconds reconnect_min{500};
  std::chrono::milliseconds reconnect_max{30000};
  /// Publishes accepted but not yet acknowledged by the broker (in flight or waiting for a
  /// connection). A publish beyond this is dropped and counted.
  std::size_t buffer_size = 10000;
  /// Their bytes (topic + payload) at most; a publish beyond is dropped and counted.
  std::size_t buffer_bytes = std::size_t{16} * 1024 * 1024;
  /// The daemon-wide budget the same bytes are charged to; null: none. Must outlive the client.
  memory_budget* budget = nullptr;
};

struct external_stats {
  std::uint64_t sub_connects = 0;       ///< successful CONNACKs of the subscriber
  std::uint64_t pub_connects = 0;       ///< successful CONNACKs of the publisher
  std::uint64_t connection_losses = 0;  ///< either client lost its connection
  std::uint64_t received = 0;           ///< messages delivered to the message handler
  std::uint64_t published = 0;          ///< publishes accepted (sent or buffered)
  std::uint64_t acknowledged = 0;       ///< PUBACKs received
  std::uint64_t dropped = 0;  ///< publishes refused: buffer full, memory budget or stopping
  std::uint64_t dropped_buffer_full = 0;  ///< of those: buffer_size or buffer_bytes reached
  std::uint64_t dropped_budget = 0;       ///< of those: the memory budget refused the bytes
  std::uint64_t lost_at_stop = 0;         ///< accepted, still unacknowledged when stop() gave up
  std::uint64_t subscribe_failures = 0;   ///< SUBACK 0x80 or a failed SUBSCRIBE
  std::uint64_t rejected = 0;             ///< publishes refused: invalid topic or payload too large
};

class external_broker {
 public:
  /// Called on the loop thread for every message the subscriber receives. It may call
  /// publish(), subscribe(), unsubscribe() and stop(), but must not destroy this object.
  using message_handler = std::function<void(std::string_view topic, std::string_view payload)>;

  /// `clk` runs on the executor's loop and must outlive this object.
  external_broker(asio::any_io_executor executor, clock& clk, external_options options,
                  message_handler on_message);
  external_broker(const external_broker&) = delete;
  external_broker& operator=(const external_broker&) = delete;
  ~external_broker();

  /// Validates the options (URL scheme, TLS files) and starts connecting both clients in the
  /// background. Fails with a readable reason; never waits for the broker.
  expected<void, std::string> start();

  /// Adds `filter` to the subscriber's topic list (no-op if present) and subscribes it now when
  /// connected; it is subscribed again after every reconnect.
  void subscribe(std::string filter);
  /// Removes `filter` from the list and unsubscribes it now when connected.
  void unsubscribe(std::string_view filter);

  /// Publishes with QoS 1, retain false; buffered while disconnected (see buffer_size). Fails,
  /// with the reason, for a publish that is dropped or rejected (and counted).
  expected<void, std::string> publish(std::string_view topic, std::string_view payload);

  /// Waits up to `timeout` for buffered publishes to be acknowledged, then disconnects both
  /// clients; the callback runs on the loop thread when done (never from inside stop()). Neither
  /// client reconnects once stop() is called, and later publishes are dropped (and counted).
  void stop(std::chrono::milliseconds timeout, std::function<void()> done);

  /// Stops (true) or resumes (false) taking messages from the subscriber connection, for a
  /// receiver that cannot take more: they wait in the socket, and the broker holds them back as
  /// it holds any slow subscriber's (within its own queue limits). Kept across reconnects; the
  /// CONNACK of a new connection is read whatever this says.
  void pause_receiving(bool paused);
  [[nodiscard]] bool receiving_paused() const noexcept;
  /// The longest a pause should last: half the keepalive. Longer, the PINGRESP that waits
  /// unread in the socket would cost the connection.
  [[nodiscard]] std::chrono::milliseconds max_pause() const noexcept;

  [[nodiscard]] bool sub_connected() const noexcept;
  [[nodiscard]] bool pub_connected() const noexcept;
  /// Connection attempts begun by both clients since start() (mosquitto_connection::attempts()).
  [[nodiscard]] std::uint64_t connect_attempts() const noexcept;
  /// True while either client has an attempt under way (mosquitto_connection::connecting()):
  /// false once each is connected or waiting for its next attempt.
  [[nodiscard]] bool connecting() const noexcept;
  /// Publishes accepted and not yet acknowledged, and their bytes.
  [[nodiscard]] std::size_t pending() const noexcept;
  [[nodiscard]] std::size_t pending_bytes() const noexcept;
  [[nodiscard]] const external_stats& stats() const noexcept;
  /// The URL with its password masked, for logs and status lines.
  [[nodiscard]] std::string display_url() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace ebus::mqtt::client
