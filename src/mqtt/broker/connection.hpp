#pragma once
// One client's TCP connection: a reader coroutine decodes packets and hands them to the broker
// core, a writer coroutine writes control packets and pulls PUBLISHes from the session only when
// the socket has taken the previous batch, and a watchdog enforces the CONNECT timeout, the
// packet timeout and keep-alive. A client that stops reading therefore only fills its own
// bounded session queue. A publisher whose messages push a subscriber's queue over its limit
// stops being read (the rest of its packets wait in the kernel and in its own socket) until that
// queue drains, or at most slow_subscriber_timeout.
//
// Thread safety: loop thread only.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/asio.hpp"
#include "mqtt/broker/broker.hpp"
#include "mqtt/codec/decoder.hpp"

namespace spdlog {
class logger;
}

namespace ebus::mqtt::broker {

class server;

class connection final : public client_link, public std::enable_shared_from_this<connection> {
 public:
  connection(asio::ip::tcp::socket socket, broker& core, server& owner);
  ~connection() override;

  /// Spawns the reader, writer and watchdog coroutines.
  void start();

  void wake() override;
  void close(std::string_view reason) override;

  [[nodiscard]] const std::string& client_id() const noexcept { return client_id_; }

 private:
  awaitable<void> reader();
  awaitable<void> writer();
  awaitable<void> watchdog();
  /// Waits until no subscriber holds this publisher back, or slow_subscriber_timeout.
  awaitable<void> wait_for_subscribers();
  /// Charges the receive and acknowledgement buffers beyond their everyday size to the memory
  /// budget; false (and the connection closing) when the budget is spent.
  bool charge_buffers();
  /// The watchdog's next deadline: CONNECT timeout, packet timeout or keep-alive.
  [[nodiscard]] std::chrono::steady_clock::time_point next_deadline() const;

  /// Returns false when the connection must stop reading.
  bool handle(codec::packet&& p);
  bool on_connect(codec::connect&& c);
  void on_publish(codec::publish&& p);
  void on_decode_error(std::error_code ec);
  void protocol_error(std::string_view what);
  void queue_control(const codec::packet& p);
  void finish(std::string_view reason);
  void spawn(awaitable<void> task, const char* name);

  asio::ip::tcp::socket socket_;
  broker& broker_;
  server& server_;
  std::shared_ptr<spdlog::logger> log_;
  codec::decoder decoder_;
  std::string control_;      // acknowledgements and other control packets not yet written
  std::string staged_;       // PUBLISHes taken from the session while a write is in flight
  std::string out_control_;  // the batch being written: control packets,
  std::string out_data_;     // then PUBLISHes
  asio::steady_timer wake_signal_;
  asio::steady_timer deadline_;
  asio::steady_timer resume_signal_;  // cancelled when held-back publishing may go on
  std::shared_ptr<flow_waiter> flow_;
  budget_charge receive_charge_;        // to the memory budget
  budget_charge receive_share_charge_;  // to the connection buffers' share of it
  session* session_ = nullptr;
  std::optional<codec::will_message> will_;
  std::string client_id_;
  std::string peer_;
  std::string close_reason_;
  std::chrono::steady_clock::duration keepalive_limit_{};  // 1.5 x keep-alive, 0 = none
  std::chrono::steady_clock::time_point last_activity_;
  std::chrono::steady_clock::time_point connect_started_;
  // When the first byte of a packet not yet complete arrived; unset while none is pending.
  std::optional<std::chrono::steady_clock::time_point> partial_since_;
  bool connected_ = false;
  bool closing_ = false;  // no more packets are handled; the socket closes soon
  bool close_after_flush_ = false;
  bool graceful_ = false;  // DISCONNECT received: no will [MQTT-3.14.4-3]
  bool finished_ = false;
  bool writer_waiting_ = false;
};

}  // namespace ebus::mqtt::broker
