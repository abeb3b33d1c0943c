// Listener kinds: what TLS and WebSocket add below MQTT.
//
// The opening exchange runs inside the CONNECT timeout: on a manual clock, a TLS handshake that
// never starts or stops halfway, a WebSocket upgrade that never arrives or stops halfway, and a
// TLS connection that never sends its upgrade are closed exactly at the timeout, while a client
// that completes its opening and CONNECT in time is not affected. Bytes that are not a TLS
// handshake close that connection only (counted as a handshake failure); the broker's other
// clients keep working and new ones connect. An upgrade request for a path other than the
// listener's gets 404 and the connection closes, where the same request for /mqtt gets 101.
// Clients on different listeners of one broker (tcp, tls, ws, wss) exchange messages.
//
// These tests pick their transports themselves, so ctest runs them in the plain TCP pass only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <set>
#include <string>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include "conformance.hpp"

namespace ebus::test::conformance {
namespace {

using mqtt::broker::server;

constexpr auto connect_timeout = 300ms;

/// A bare TCP connection for what no MQTT client sends: the bytes under MQTT, both ways.
class raw_connection {
 public:
  explicit raw_connection(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      const int err = errno;
      ::close(fd_);
      throw std::system_error(err, std::generic_category(), "connect");
    }
  }
  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;
  ~raw_connection() { ::close(fd_); }

  void send(std::string_view bytes) {
    while (!bytes.empty()) {
      const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  /// Reads until the broker closes the connection (true) or `timeout` passes (false).
  bool closed_within(ms timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!closed_) {
      if (!read_some(deadline)) return false;
    }
    return true;
  }

  /// Reads until `text` has arrived (true), or the connection ends or `timeout` passes.
  bool received_within(std::string_view text, ms timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (received_.find(text) == std::string::npos) {
      if (closed_ || !read_some(deadline)) return false;
    }
    return true;
  }

  /// Everything received so far.
  [[nodiscard]] const std::string& received() const noexcept { return received_; }
  /// The first line received.
  [[nodiscard]] std::string first_line() const {
    return received_.substr(0, received_.find("\r\n"));
  }

 private:
  // One read: false if nothing came before `deadline`.
  bool read_some(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<ms>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char chunk[4096];
    const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) {
      closed_ = true;
    } else {
      received_.append(chunk, static_cast<std::size_t>(n));
    }
    return true;
  }

  int fd_ = -1;
  bool closed_ = false;
  std::string received_;
};

std::string upgrade_request(std::string_view path) {
  return "GET " + std::string(path) +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
         "Sec-WebSocket-Protocol: mqtt\r\n\r\n";
}

peer_options over(transport_kind kind) {
  return peer_options{.transport = kind};
}

/// The broker on a manual clock with one listener of the kind under test, and a client of it
/// whose opening exchange is done: its CONNECT comes just before the CONNECT timeout, is
/// accepted, and the connection outlives the timeout.
class listeners_opening : public ::testing::Test {
 protected:
  void start(transport_kind kind) {
    harness_ = std::make_unique<broker_harness>(
        mqtt::broker::broker_options{.connect_timeout = connect_timeout},
        std::vector{test_listener(kind)}, clk_);
    in_time_ = std::make_unique<mqtt_peer>(harness_->port(), over(kind));
  }

  /// Moves the clock to just before the timeout and connects the client in time.
  void advance_to_just_before_the_timeout() {
    advance(*harness_, clk_, connect_timeout - 1ms);
    const auto ack = in_time_->connect(make_connect("in-time", true, 0));
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->return_code, codec::connect_return_code::accepted);
  }

  void advance_past_the_timeout() { advance(*harness_, clk_, 1ms); }

  manual_clock clk_;
  std::unique_ptr<broker_harness> harness_;
  std::unique_ptr<mqtt_peer> in_time_;
};

TEST_F(listeners_opening, tls_handshake_that_never_completes_is_closed_at_the_connect_timeout) {
  start(transport_kind::tls);
  raw_connection silent(harness_->port());
  raw_connection halfway(harness_->port());
  halfway.send(std::string("\x16\x03\x01\x02\x00", 5));  // a handshake record's header, no body
  ASSERT_TRUE(connection_count_is(*harness_, 3));        // the timeouts run from the accepts
  advance_to_just_before_the_timeout();
  EXPECT_EQ(harness_->call([](server& s) { return s.connection_count(); }), 3U)
      << "closed before the connect timeout";

  advance_past_the_timeout();
  EXPECT_TRUE(silent.closed_within(close_bound));
  EXPECT_TRUE(halfway.closed_within(close_bound));
  EXPECT_TRUE(round_trip(*in_time_, "listeners/in-time"));
  EXPECT_TRUE(connection_count_is(*harness_, 1));
}

TEST_F(listeners_opening, websocket_upgrade_that_never_arrives_is_closed_at_the_connect_timeout) {
  start(transport_kind::ws);
  raw_connection silent(harness_->port());
  raw_connection halfway(harness_->port());
  const auto request = upgrade_request("/mqtt");
  halfway.send(request.substr(0, request.size() / 2));
  ASSERT_TRUE(connection_count_is(*harness_, 3));
  advance_to_just_before_the_timeout();
  EXPECT_EQ(harness_->call([](server& s) { return s.connection_count(); }), 3U)
      << "closed before the connect timeout";

  advance_past_the_timeout();
  EXPECT_TRUE(silent.closed_within(close_bound));
  EXPECT_TRUE(halfway.closed_within(close_bound));
  EXPECT_EQ(halfway.received(), "") << "no HTTP answer to a request that never ended";
  EXPECT_TRUE(round_trip(*in_time_, "listeners/in-time"));
  EXPECT_TRUE(connection_count_is(*harness_, 1));
}

TEST_F(listeners_opening,
       tls_connection_without_websocket_upgrade_is_closed_at_the_connect_timeout) {
  // wss: the TLS handshake completes, the upgrade request never comes.
  start(transport_kind::wss);
  mqtt_peer tls_only(harness_->port(), over(transport_kind::tls));
  ASSERT_TRUE(connection_count_is(*harness_, 2));
  advance_to_just_before_the_timeout();
  EXPECT_EQ(harness_->call([](server& s) { return s.connection_count(); }), 2U)
      << "closed before the connect timeout";

  advance_past_the_timeout();
  EXPECT_TRUE(tls_only.closed_within(close_bound));
  EXPECT_TRUE(round_trip(*in_time_, "listeners/in-time"));
}

TEST(listeners, bytes_that_are_not_a_tls_handshake_close_that_connection_only) {
  broker_harness h({}, {test_listener(transport_kind::tls)});
  auto before = connect_peer(h.port(), make_connect("before"), over(transport_kind::tls));
  raw_connection http(h.port());
  http.send(upgrade_request("/mqtt"));  // a plain-text request on the TLS port
  raw_connection bad_record(h.port());
  bad_record.send(std::string("\x16\x03\x01\x00\x04garb", 9));  // a handshake record of junk
  EXPECT_TRUE(http.closed_within(close_bound));
  EXPECT_TRUE(bad_record.closed_within(close_bound));
  EXPECT_TRUE(round_trip(*before, "listeners/before"));
  auto after = connect_peer(h.port(), make_connect("after"), over(transport_kind::tls));
  EXPECT_TRUE(round_trip(*after, "listeners/after"));
  EXPECT_EQ(stats(h).handshake_failures, 2U);
}

// A TLS 1.3 key update that asks for one back makes OpenSSL write while the broker reads; that
// answer must reach the client before the records under the new key, or they cannot be read.
TEST(listeners, tls_key_update_is_answered_and_the_connection_goes_on) {
  broker_harness h({}, {test_listener(transport_kind::tls)});
  auto peer = connect_peer(h.port(), make_connect("key-update"), over(transport_kind::tls));
  ASSERT_NE(peer->tls_session(), nullptr);
  ASSERT_EQ(SSL_version(peer->tls_session()), TLS1_3_VERSION);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(SSL_key_update(peer->tls_session(), SSL_KEY_UPDATE_REQUESTED), 1);
    EXPECT_TRUE(round_trip(*peer, "listeners/key-update/" + std::to_string(i)));
  }
  EXPECT_EQ(stats(h).handshake_failures, 0U);
}

TEST(listeners, websocket_request_for_another_path_gets_404) {
  broker_harness h({}, {test_listener(transport_kind::ws)});
  raw_connection wrong(h.port());
  wrong.send(upgrade_request("/other"));
  EXPECT_TRUE(wrong.closed_within(close_bound));
  EXPECT_EQ(wrong.first_line(), "HTTP/1.1 404 Not Found");

  raw_connection right(h.port());  // the same request for the listener's path
  right.send(upgrade_request("/mqtt"));
  EXPECT_TRUE(right.received_within("\r\n\r\n", close_bound));
  EXPECT_EQ(right.first_line(), "HTTP/1.1 101 Switching Protocols");
  EXPECT_EQ(stats(h).handshake_failures, 1U);
}

TEST(listeners, clients_on_different_listeners_exchange_messages) {
  const transport_kind kinds[] = {transport_kind::tcp, transport_kind::tls, transport_kind::ws,
                                  transport_kind::wss};
  std::vector<mqtt::broker::listener_options> listeners;
  for (const auto kind : kinds)
    listeners.push_back(test_listener(kind));
  broker_harness h({}, listeners);
  const auto urls = h.call([](server& s) { return s.local_urls(); });
  ASSERT_EQ(urls.size(), std::size(kinds));

  std::vector<std::unique_ptr<mqtt_peer>> peers;
  for (std::size_t i = 0; i < std::size(kinds); ++i) {
    const auto name = std::string(name_of(kinds[i]));
    EXPECT_EQ(urls[i], name + "://127.0.0.1:" + std::to_string(h.port(i)));
    peers.push_back(connect_peer(h.port(i), make_connect(name), over(kinds[i])));
    ASSERT_TRUE(subscribed(*peers.back(), "route/#", qos1));
  }
  for (std::size_t i = 0; i < std::size(kinds); ++i) {
    const auto name = std::string(name_of(kinds[i]));
    peers[i]->send(make_publish("route/" + name, name, qos1, 1));
  }
  // Each client gets its PUBACK and all four messages, its own included, in any order.
  const std::set<std::string> everyone{"tcp", "tls", "ws", "wss"};
  for (std::size_t i = 0; i < std::size(kinds); ++i) {
    SCOPED_TRACE(name_of(kinds[i]));
    auto& p = *peers[i];
    bool acked = false;
    std::set<std::string> from;
    while (!acked || from.size() < everyone.size()) {
      auto packet = p.receive();
      ASSERT_TRUE(packet) << "acked=" << acked << " messages=" << from.size();
      if (auto* pub = std::get_if<codec::publish>(&*packet)) {
        p.send(codec::puback{pub->packet_id});
        EXPECT_TRUE(from.insert(pub->payload).second) << "twice: " << pub->payload;
      } else {
        const auto* ack = std::get_if<codec::puback>(&*packet);
        ASSERT_TRUE(ack != nullptr && ack->packet_id == 1 && !acked);
        acked = true;
      }
    }
    EXPECT_EQ(from, everyone);
  }
}

}  // namespace
}  // namespace ebus::test::conformance
