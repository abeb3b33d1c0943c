#pragma once
// Shared by the conformance tests: packet shorthands, CONNECT bytes built by hand (for what the
// encoder refuses to produce), a connected peer in one call, well-behaved acknowledgement of
// received messages, and the probe that shows a connection still works.
//
// Every wait is bounded by the peer's timeouts; nothing here sleeps.
//
// The suite runs over each listener kind, one kind per process: the harness's listener and the
// peers' default transport follow EBUS_TEST_TRANSPORT (tcp, tls, ws, wss), and ctest registers
// every test once per kind. What a test sends and expects is MQTT bytes whatever carries them;
// the few places where a transport changes what the broker can do say so.

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ebus_test/broker_harness.hpp"
#include "ebus_test/manual_clock.hpp"
#include "ebus_test/mqtt_peer.hpp"
#include "mqtt/codec/encoder.hpp"

namespace ebus::test::conformance {

namespace codec = mqtt::codec;
using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;
using codec::protocol_level;
using codec::qos_level;

inline constexpr auto qos0 = qos_level::at_most_once;
inline constexpr auto qos1 = qos_level::at_least_once;
inline constexpr auto qos2 = qos_level::exactly_once;

/// Generous bound for "the broker closes the connection"; never a timing assertion.
inline constexpr ms close_bound{3000};
/// How long "nothing more arrives" is watched for.
inline constexpr ms quiet{300};

/// Test-name suffix for suites parametrized by protocol level.
inline std::string level_name(const ::testing::TestParamInfo<protocol_level>& param) {
  return param.param == protocol_level::v3_1 ? "mqtt31" : "mqtt311";
}

inline codec::connect make_connect(std::string client_id, bool clean = true,
                                   std::uint16_t keep_alive = 60,
                                   protocol_level level = protocol_level::v3_1_1) {
  return codec::connect{.level = level,
                        .clean_session = clean,
                        .keep_alive = keep_alive,
                        .client_id = std::move(client_id)};
}

inline codec::publish make_publish(std::string topic, std::string payload, qos_level qos = qos0,
                                   std::uint16_t packet_id = 0, bool retain = false) {
  return codec::publish{.topic = std::move(topic),
                        .payload = std::move(payload),
                        .qos = qos,
                        .retain = retain,
                        .packet_id = qos == qos0 ? std::uint16_t{0} : packet_id};
}

/// CONNECT bytes with any protocol name, level and flags byte (the encoder only builds valid
/// ones). `payload` follows the client id as is.
inline std::string raw_connect(std::string_view protocol_name, std::uint8_t level,
                               std::uint8_t flags, std::string_view client_id,
                               std::uint16_t keep_alive = 60, std::string_view payload = {}) {
  std::string body;
  const auto prefixed = [&body](std::string_view s) {
    body.push_back(static_cast<char>(s.size() >> 8));
    body.push_back(static_cast<char>(s.size() & 0xff));
    body.append(s);
  };
  prefixed(protocol_name);
  body.push_back(static_cast<char>(level));
  body.push_back(static_cast<char>(flags));
  body.push_back(static_cast<char>(keep_alive >> 8));
  body.push_back(static_cast<char>(keep_alive & 0xff));
  prefixed(client_id);
  body.append(payload);
  std::string out(1, '\x10');
  out.push_back(static_cast<char>(body.size()));  // the tests keep it below 128 bytes
  return out + body;
}

/// A peer whose CONNECT was accepted; throws (failing the test) otherwise.
inline std::unique_ptr<mqtt_peer> connect_peer(std::uint16_t port, const codec::connect& c,
                                               peer_options options = {}) {
  auto p = std::make_unique<mqtt_peer>(port, options);
  const auto ack = p->connect(c);
  if (!ack || ack->return_code != codec::connect_return_code::accepted) {
    throw std::runtime_error("CONNECT of '" + c.client_id + "' was not accepted");
  }
  return p;
}

inline std::unique_ptr<mqtt_peer> connect_peer(std::uint16_t port, std::string client_id,
                                               bool clean = true) {
  return connect_peer(port, make_connect(std::move(client_id), clean));
}

/// SUBSCRIBE one filter and check that the SUBACK grants `qos`.
inline ::testing::AssertionResult subscribed(mqtt_peer& p, const std::string& filter, qos_level qos,
                                             std::uint16_t packet_id = 1) {
  const auto code = p.subscribe(filter, qos, packet_id);
  if (!code) return ::testing::AssertionFailure() << "no SUBACK for " << filter;
  if (*code != static_cast<codec::suback_return_code>(qos)) {
    return ::testing::AssertionFailure()
           << "SUBACK for " << filter << " is " << static_cast<int>(*code);
  }
  return ::testing::AssertionSuccess();
}

/// Sends `pub` and completes its flow as a publisher: PUBACK for QoS 1, PUBREC -> PUBREL ->
/// PUBCOMP for QoS 2. The peer must receive nothing else meanwhile.
inline ::testing::AssertionResult published(mqtt_peer& p, const codec::publish& pub) {
  p.send(pub);
  if (pub.qos == qos0) return ::testing::AssertionSuccess();
  if (pub.qos == qos1) {
    const auto ack = p.receive_as<codec::puback>();
    if (!ack || ack->packet_id != pub.packet_id) {
      return ::testing::AssertionFailure() << "no PUBACK " << pub.packet_id;  // [MQTT-4.3.2-2]
    }
    return ::testing::AssertionSuccess();
  }
  const auto rec = p.receive_as<codec::pubrec>();
  if (!rec || rec->packet_id != pub.packet_id) {
    return ::testing::AssertionFailure() << "no PUBREC " << pub.packet_id;  // [MQTT-4.3.3-2]
  }
  p.send(codec::pubrel{pub.packet_id});
  const auto comp = p.receive_as<codec::pubcomp>();
  if (!comp || comp->packet_id != pub.packet_id) {
    return ::testing::AssertionFailure() << "no PUBCOMP " << pub.packet_id;
  }
  return ::testing::AssertionSuccess();
}

/// Receives up to `n` PUBLISHes, acknowledging each as a subscriber must: PUBACK for QoS 1,
/// PUBREC for QoS 2 and PUBCOMP for every PUBREL. Stops early when nothing arrives within
/// `timeout`; the caller checks the count.
inline std::vector<codec::publish> receive_acked(mqtt_peer& p, std::size_t n,
                                                 ms timeout = mqtt_peer::default_timeout) {
  std::vector<codec::publish> got;
  while (got.size() < n) {
    auto packet = p.receive(timeout);
    if (!packet) break;
    if (auto* rel = std::get_if<codec::pubrel>(&*packet)) {
      p.send(codec::pubcomp{rel->packet_id});
    } else if (auto* pub = std::get_if<codec::publish>(&*packet)) {
      if (pub->qos == qos1) p.send(codec::puback{pub->packet_id});
      if (pub->qos == qos2) p.send(codec::pubrec{pub->packet_id});
      got.push_back(std::move(*pub));
    }
  }
  return got;
}

/// Answers PUBRELs with PUBCOMP until `timeout` passes without a packet; false if anything but
/// a PUBREL arrives (an unexpected PUBLISH, say).
inline ::testing::AssertionResult only_pubrels_for(mqtt_peer& p, ms timeout = quiet) {
  while (auto packet = p.receive(timeout)) {
    auto* rel = std::get_if<codec::pubrel>(&*packet);
    if (rel == nullptr) {
      return ::testing::AssertionFailure()
             << "unexpected " << codec::name_of(codec::type_of(*packet));
    }
    p.send(codec::pubcomp{rel->packet_id});
  }
  return ::testing::AssertionSuccess();
}

/// Shows that the connection of `p` still works: it subscribes to `topic`, publishes a QoS 1
/// message there, gets the PUBACK and its own message back, and unsubscribes. Packet ids
/// 65001..65003 are used. Any other packet meanwhile is a failure.
inline ::testing::AssertionResult round_trip(mqtt_peer& p, const std::string& topic) {
  constexpr std::uint16_t sub_id = 65001;
  constexpr std::uint16_t pub_id = 65002;
  constexpr std::uint16_t unsub_id = 65003;
  if (auto r = subscribed(p, topic, qos1, sub_id); !r) return r;
  p.send(make_publish(topic, "probe", qos1, pub_id));
  bool acked = false;
  bool echoed = false;
  while (!acked || !echoed) {
    auto packet = p.receive();
    if (!packet) {
      return ::testing::AssertionFailure()
             << "round trip on " << topic << ": puback=" << acked << " publish=" << echoed;
    }
    if (auto* ack = std::get_if<codec::puback>(&*packet); ack && ack->packet_id == pub_id) {
      acked = true;
    } else if (auto* pub = std::get_if<codec::publish>(&*packet);
               pub && pub->topic == topic && pub->payload == "probe" && !echoed) {
      echoed = true;
      p.send(codec::puback{pub->packet_id});
    } else {
      return ::testing::AssertionFailure() << "round trip on " << topic << ": unexpected "
                                           << codec::name_of(codec::type_of(*packet));
    }
  }
  p.send(codec::unsubscribe{unsub_id, {topic}});
  const auto unsuback = p.receive_as<codec::unsuback>();
  if (!unsuback || unsuback->packet_id != unsub_id) {
    return ::testing::AssertionFailure() << "no UNSUBACK after the round trip on " << topic;
  }
  return ::testing::AssertionSuccess();
}

/// A snapshot of the broker's counters, read on the loop thread.
inline mqtt::broker::broker_stats stats(broker_harness& h) {
  return h.call([](mqtt::broker::server& s) { return s.core().stats(); });
}

/// Moves a harness's manual clock forward, on the loop thread: the deadlines that fall due
/// (CONNECT timeout, keep-alive, ...) run inside the call.
inline void advance(broker_harness& h, manual_clock& clk, clock::duration d) {
  h.call([&clk, d](mqtt::broker::server&) { clk.advance(d); });
}

/// Waits until the broker holds `n` connections. A peer's TCP connect returns before the accept
/// loop has seen it; a CONNECT timeout runs from the accept, so tests on a manual clock wait for
/// it before moving time.
inline ::testing::AssertionResult connection_count_is(broker_harness& h, std::size_t n) {
  const auto until = std::chrono::steady_clock::now() + close_bound;
  for (;;) {
    const auto count = h.call([](mqtt::broker::server& s) { return s.connection_count(); });
    if (count == n) return ::testing::AssertionSuccess();
    if (std::chrono::steady_clock::now() >= until) {
      return ::testing::AssertionFailure() << count << " connections, not " << n;
    }
    std::this_thread::yield();
  }
}

/// True while the session of `client_id` exists and is attached to a connection.
inline bool online(broker_harness& h, const std::string& client_id) {
  return h.call([&client_id](mqtt::broker::server& s) {
    const auto* session = s.core().find_session(client_id);
    return session != nullptr && session->online();
  });
}

/// Waits until the broker has handled everything `p` sent before: a PINGREQ is answered only
/// after the packets ahead of it on the same connection [MQTT-3.12.4-1]. Packets that arrive
/// before the PINGRESP are skipped, so use it on peers that only publish. The bound only guards
/// against a hang: a large batch under the sanitizers on a busy machine takes seconds.
inline ::testing::AssertionResult synced(mqtt_peer& p) {
  p.send(codec::pingreq{});
  for (;;) {
    auto packet = p.receive(std::chrono::seconds(60));
    if (!packet) return ::testing::AssertionFailure() << "no PINGRESP";
    if (std::holds_alternative<codec::pingresp>(*packet)) return ::testing::AssertionSuccess();
  }
}

}  // namespace ebus::test::conformance
