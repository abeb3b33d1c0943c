// external_broker against Debian's mosquitto on 127.0.0.1, observed with mosquitto_sub and
// mosquitto_pub. The client's loop runs on the test thread, in bounded steps; every wait has a
// deadline, which only guards against hanging. The client's time (reconnect backoff, connect and
// stop timeouts, rate limits) is a manual clock: a retry happens when a test moves the clock on,
// and what it waits for is the retry's effect, never an amount of real time.
#include "mqtt/client/external_broker.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <future>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <signal.h>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include "common/log.hpp"
#include "common/memory_budget.hpp"
#include "ebus_test/manual_clock.hpp"
#include "ebus_test/mosquitto_broker.hpp"
#include "ebus_test/process.hpp"
#include "mqtt/client/mosquitto_connection.hpp"

namespace ebus::mqtt::client {
namespace {

using namespace std::chrono_literals;
using asio::experimental::as_tuple;
using test::mosquitto_broker;
using test::process;

constexpr auto wait_limit = 5s;
// How far retry_until() moves the clock each time the clients wait for their next attempt: the
// reconnect_min of options_for().
constexpr auto retry_step = 50ms;

// Lines that mosquitto_sub prints for messages: "MSG <qos> <retain> <topic> <payload>".
std::vector<std::string> messages(process& p) {
  std::vector<std::string> out;
  const auto& text = p.output();
  std::size_t pos = 0;
  while ((pos = text.find("MSG ", pos)) != std::string::npos) {
    const auto end = text.find('\n', pos);
    if (end == std::string::npos) break;  // not complete yet
    out.push_back(text.substr(pos + 4, end - pos - 4));
    pos = end;
  }
  return out;
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1))
    ++n;
  return n;
}

int run_to_end(std::vector<std::string> argv) {
  process p(std::move(argv));
  const auto status = p.wait();
  EXPECT_EQ(status, 0) << p.output();
  return status.value_or(-1);
}

// Captures what the "mqtt.client" logger writes, at debug level, while it lives.
class captured_log {
 public:
  captured_log() : logger_(log::get("mqtt.client")), level_(logger_->level()) {
    sink_->set_pattern("%l %v");
    logger_->sinks().push_back(sink_);
    logger_->set_level(spdlog::level::debug);
  }
  captured_log(const captured_log&) = delete;
  captured_log& operator=(const captured_log&) = delete;
  ~captured_log() {
    logger_->sinks().pop_back();
    logger_->set_level(level_);
  }
  std::vector<std::string> lines() const { return sink_->last_formatted(); }
  std::size_t lines_starting_with(const std::string& prefix) const {
    const auto lines = sink_->last_formatted();
    return static_cast<std::size_t>(std::count_if(
        lines.begin(), lines.end(), [&](const std::string& l) { return l.starts_with(prefix); }));
  }

 private:
  std::shared_ptr<spdlog::logger> logger_;
  spdlog::level::level_enum level_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_ =
      std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
};

class external_broker_test : public ::testing::Test {
 protected:
  external_options options_for(const mosquitto_broker& b, const std::string& name) const {
    external_options o;
    o.url = b.url();
    o.sub_client_id = name + "-sub";
    o.pub_client_id = name + "-pub";
    o.reconnect_min = 50ms;
    o.reconnect_max = 400ms;
    return o;
  }

  std::unique_ptr<external_broker> make(external_options o) {
    return std::make_unique<external_broker>(
        io.get_executor(), clk, std::move(o),
        [this](std::string_view topic, std::string_view payload) {
          received.emplace_back(std::string(topic), std::string(payload));
        });
  }

  std::unique_ptr<external_broker> start(external_options o) {
    auto ext = make(std::move(o));
    const auto started = ext->start();
    EXPECT_TRUE(started) << started.error();
    return ext;
  }

  std::unique_ptr<external_broker> start_connected(external_options o) {
    auto ext = start(std::move(o));
    EXPECT_TRUE(run_until([&] { return ext->sub_connected() && ext->pub_connected(); }));
    return ext;
  }

  // Runs the loop until `done()` holds or `limit` passes; returns done().
  template <class Done>
  bool run_until(Done done, std::chrono::milliseconds limit = wait_limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return done();
      io.restart();
      io.run_one_for(10ms);
    }
    return true;
  }

  // Runs the loop until `done()` holds, moving the clock on by retry_step whenever none of
  // `clients` has an attempt under way (each is connected or waits for its next attempt): every
  // retry comes once the previous attempt has ended, never in the middle of one.
  template <class Done>
  bool retry_until(std::initializer_list<const external_broker*> clients, Done done) {
    const auto deadline = std::chrono::steady_clock::now() + wait_limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return done();
      if (std::none_of(clients.begin(), clients.end(),
                       [](const external_broker* c) { return c->connecting(); })) {
        clk.advance(retry_step);
      }
      io.restart();
      io.run_one_for(10ms);
    }
    return true;
  }

  // Runs the handlers that are ready now, without waiting for more.
  void drain() {
    io.restart();
    io.poll();
  }

  bool received_on(const std::string& topic, std::optional<std::string> payload = {}) const {
    return std::any_of(received.begin(), received.end(), [&](const auto& m) {
      return m.first == topic && (!payload || m.second == *payload);
    });
  }

  // Publishes on `topic` through `ext` until its own subscriber gets the message: proves that a
  // subscription is active without knowing when its SUBACK came. (A probe gets 100 ms before the
  // next one is sent, in case it went out before the subscription: that only paces the probes.)
  // Then one last probe, "probe-end": all earlier ones took the same ordered path, so none is
  // still on its way once it is in.
  bool loops_back(external_broker& ext, const std::string& topic) {
    const auto deadline = std::chrono::steady_clock::now() + wait_limit;
    bool through = false;
    while (!through && std::chrono::steady_clock::now() < deadline) {
      ext.publish(topic, "probe");
      through = run_until([&] { return received_on(topic); }, 100ms);
    }
    if (!through) return false;
    ext.publish(topic, "probe-end");
    return run_until([&] { return received_on(topic, "probe-end"); });
  }

  // A mosquitto_sub that prints "MSG <qos> <retain> <topic> <payload>"; returns once subscribed.
  static std::unique_ptr<process> subscriber(const mosquitto_broker& b, const std::string& topic) {
    // stdbuf: its stdout is a pipe here; line buffering shows each line at once.
    auto p = std::make_unique<process>(
        std::vector<std::string>{"stdbuf", "-oL", "mosquitto_sub", "-p", std::to_string(b.port()),
                                 "-q", "1", "-t", topic, "-F", "MSG %q %r %t %p", "-d"});
    EXPECT_TRUE(p->wait_for_output("SUBACK")) << p->output();
    return p;
  }

  static void mosquitto_pub(const mosquitto_broker& b, std::vector<std::string> args) {
    std::vector<std::string> argv{"mosquitto_pub", "-p", std::to_string(b.port()), "-q", "1"};
    argv.insert(argv.end(), args.begin(), args.end());
    run_to_end(std::move(argv));
  }

  test::manual_clock clk;  // before io and the clients: they keep wake-ups in it
  asio::io_context io{1};
  std::vector<std::pair<std::string, std::string>> received;
};

TEST_F(external_broker_test, delivers_subscribed_messages_with_exact_topic_and_payload) {
  mosquitto_broker broker;
  auto ext = make(options_for(broker, "recv"));
  ext->subscribe("recv/+/data");
  ext->subscribe("recv/bin");
  ASSERT_TRUE(ext->start());
  ASSERT_TRUE(run_until([&] { return ext->sub_connected(); }));
  ASSERT_TRUE(loops_back(*ext, "recv/probe/data"));
  received.clear();

  mosquitto_pub(broker, {"-t", "recv/dev1/data", "-m", "hello world"});
  mosquitto_pub(broker, {"-t", "recv/other", "-m", "not subscribed"});
  const std::string binary("\x00\x01zero\x00\xff\x00", 9);
  const auto file = broker.dir() + "/payload.bin";
  std::ofstream(file, std::ios::binary) << binary;
  mosquitto_pub(broker, {"-t", "recv/bin", "-f", file});

  // The broker queues each to the subscriber before it acknowledges it to mosquitto_pub, so a
  // marker published last arrives last: anything unsubscribed or duplicated would come before.
  mosquitto_pub(broker, {"-t", "recv/marker/data", "-m", "marker"});
  ASSERT_TRUE(run_until([&] { return received_on("recv/marker/data"); }));
  ASSERT_EQ(received.size(), 3U);
  EXPECT_EQ(received[0].first, "recv/dev1/data");
  EXPECT_EQ(received[0].second, "hello world");
  EXPECT_EQ(received[1].first, "recv/bin");
  EXPECT_EQ(received[1].second, binary);
  EXPECT_GE(ext->stats().received, 3U);
  EXPECT_EQ(ext->stats().subscribe_failures, 0U);
}

TEST_F(external_broker_test, publishes_at_qos1_without_retain) {
  mosquitto_broker broker;
  auto ext = start_connected(options_for(broker, "pubq"));
  auto sub = subscriber(broker, "pubq/#");
  ext->publish("pubq/a", "one");
  ext->publish("pubq/b", std::string("two\0bytes", 9));
  ASSERT_TRUE(run_until([&] { return messages(*sub).size() >= 2; })) << sub->output();
  EXPECT_EQ(messages(*sub),
            (std::vector<std::string>{"1 0 pubq/a one", std::string("1 0 pubq/b two\0bytes", 20)}));
  EXPECT_NE(sub->output().find("received PUBLISH (d0, q1, r0"), std::string::npos);
  ASSERT_TRUE(run_until([&] { return ext->pending() == 0; }));
  EXPECT_EQ(ext->stats().published, 2U);
  EXPECT_EQ(ext->stats().acknowledged, 2U);

  // Nothing was retained: a new subscriber gets only what is published after it subscribed.
  // A retained message would be queued to it on subscribing, before this marker.
  auto late = subscriber(broker, "pubq/#");
  mosquitto_pub(broker, {"-t", "pubq/marker", "-m", "after"});
  ASSERT_TRUE(run_until([&] { return !messages(*late).empty(); })) << late->output();
  EXPECT_EQ(messages(*late), std::vector<std::string>{"1 0 pubq/marker after"});
}

TEST_F(external_broker_test, starts_without_a_broker_and_connects_when_it_appears) {
  mosquitto_broker broker({.start = false});
  auto ext = make(options_for(broker, "late"));
  ext->subscribe("late/in");
  // No broker listens yet: start() returning at all shows it does not wait for one.
  ASSERT_TRUE(ext->start());
  for (int i = 0; i < 5; ++i)
    ext->publish("late/out", "m" + std::to_string(i));
  // Three refused attempts of each client.
  ASSERT_TRUE(
      retry_until({ext.get()}, [&] { return ext->connect_attempts() >= 6 && !ext->connecting(); }));
  EXPECT_FALSE(ext->sub_connected());
  EXPECT_FALSE(ext->pub_connected());
  EXPECT_EQ(ext->pending(), 5U);

  broker.start();
  auto sub = subscriber(broker, "late/out");
  ASSERT_TRUE(
      retry_until({ext.get()}, [&] { return ext->sub_connected() && ext->pub_connected(); }));
  ASSERT_TRUE(run_until([&] { return messages(*sub).size() >= 5; })) << sub->output();
  EXPECT_EQ(messages(*sub),
            (std::vector<std::string>{"1 0 late/out m0", "1 0 late/out m1", "1 0 late/out m2",
                                      "1 0 late/out m3", "1 0 late/out m4"}));
  ASSERT_TRUE(run_until([&] { return ext->pending() == 0; }));
  mosquitto_pub(broker, {"-t", "late/in", "-m", "subscribed after connect"});
  ASSERT_TRUE(run_until([&] { return received_on("late/in"); }));
  EXPECT_EQ(ext->stats().sub_connects, 1U);
  EXPECT_EQ(ext->stats().pub_connects, 1U);
}

TEST_F(external_broker_test, reconnects_resubscribes_and_delivers_buffered_publishes_once) {
  mosquitto_broker broker;
  auto ext = make(options_for(broker, "again"));
  ext->subscribe("again/in");
  ASSERT_TRUE(ext->start());
  ASSERT_TRUE(run_until([&] { return ext->sub_connected() && ext->pub_connected(); }));

  broker.stop();
  ASSERT_TRUE(run_until([&] { return !ext->sub_connected() && !ext->pub_connected(); }));
  for (int i = 0; i < 5; ++i)
    ext->publish("again/out", "m" + std::to_string(i));
  EXPECT_EQ(ext->pending(), 5U);

  broker.start();
  auto sub = subscriber(broker, "again/out");
  ASSERT_TRUE(
      retry_until({ext.get()}, [&] { return ext->sub_connected() && ext->pub_connected(); }));
  ASSERT_TRUE(run_until([&] { return ext->pending() == 0 && messages(*sub).size() >= 5; }))
      << sub->output();
  // All acknowledged, so all queued to `sub` already: a duplicate would come before this marker.
  mosquitto_pub(broker, {"-t", "again/out", "-m", "marker"});
  ASSERT_TRUE(run_until([&] { return messages(*sub).size() >= 6; })) << sub->output();
  // Published while the client knew it was disconnected: kept by us, sent once after CONNACK.
  EXPECT_EQ(messages(*sub), (std::vector<std::string>{"1 0 again/out m0", "1 0 again/out m1",
                                                      "1 0 again/out m2", "1 0 again/out m3",
                                                      "1 0 again/out m4", "1 0 again/out marker"}));
  mosquitto_pub(broker, {"-t", "again/in", "-m", "after restart"});
  ASSERT_TRUE(run_until([&] { return received_on("again/in"); }));
  EXPECT_EQ(ext->stats().sub_connects, 2U);
  EXPECT_EQ(ext->stats().pub_connects, 2U);
  EXPECT_EQ(ext->stats().connection_losses, 2U);
  EXPECT_EQ(ext->stats().acknowledged, 5U);
}

TEST_F(external_broker_test, libmosquitto_resends_unacknowledged_publishes_after_reconnect) {
  mosquitto_broker broker;
  const auto o = options_for(broker, "resend");
  auto ext = start_connected(o);
  // Frozen, the broker neither reads nor acknowledges: these stay in libmosquitto's queue.
  broker.signal(SIGSTOP);
  for (int i = 0; i < 3; ++i)
    ext->publish("resend/out", "m" + std::to_string(i));
  drain();  // written to the socket, as far as the kernel takes them
  EXPECT_TRUE(ext->pub_connected());
  EXPECT_EQ(ext->pending(), 3U);
  broker.kill();  // the kernel resets the connections; the broker never saw the messages
  ASSERT_TRUE(run_until([&] { return !ext->pub_connected() && !ext->sub_connected(); }));
  ext->publish("resend/out", "m3");  // buffered by us, must follow the three above

  broker.start();
  auto sub = subscriber(broker, "resend/out");
  // Frozen again: the client's next attempt gets its TCP connection (from the kernel) but no
  // CONNACK. A publish made in that window must still come after the resent ones.
  broker.signal(SIGSTOP);
  const auto attempts = ext->connect_attempts();
  clk.advance(o.reconnect_max);  // past every retry due
  ASSERT_GT(ext->connect_attempts(), attempts);
  drain();
  ASSERT_TRUE(ext->connecting());
  EXPECT_FALSE(ext->pub_connected());
  ext->publish("resend/out", "m4");
  broker.signal(SIGCONT);
  ASSERT_TRUE(run_until([&] { return ext->pending() == 0 && messages(*sub).size() >= 5; }))
      << sub->output();
  // All acknowledged, so all queued to `sub` already: a duplicate would come before this marker.
  mosquitto_pub(broker, {"-t", "resend/out", "-m", "marker"});
  ASSERT_TRUE(run_until([&] { return messages(*sub).size() >= 6; })) << sub->output();
  EXPECT_EQ(messages(*sub),
            (std::vector<std::string>{"1 0 resend/out m0", "1 0 resend/out m1", "1 0 resend/out m2",
                                      "1 0 resend/out m3", "1 0 resend/out m4",
                                      "1 0 resend/out marker"}));
  EXPECT_EQ(ext->stats().acknowledged, 5U);
  // Resent by libmosquitto, with DUP set; ours went out fresh.
  const auto log = broker.output();
  EXPECT_EQ(count(log, "Received PUBLISH from resend-pub (d1, q1, r0"), 3U) << log;
  EXPECT_EQ(count(log, "Received PUBLISH from resend-pub (d0, q1, r0"), 2U) << log;
}

TEST_F(external_broker_test, full_buffer_drops_new_publishes_and_counts_them) {
  mosquitto_broker broker({.start = false});
  auto o = options_for(broker, "full");
  o.buffer_size = 5;
  auto ext = start(o);
  for (int i = 0; i < 8; ++i)
    ext->publish("full/out", "m" + std::to_string(i));
  EXPECT_EQ(ext->pending(), 5U);
  EXPECT_EQ(ext->stats().dropped, 3U);
  EXPECT_EQ(ext->stats().published, 5U);

  broker.start();
  auto sub = subscriber(broker, "full/out");
  ASSERT_TRUE(retry_until({ext.get()}, [&] { return ext->pub_connected(); }));
  ASSERT_TRUE(run_until([&] { return ext->pending() == 0 && messages(*sub).size() >= 5; }))
      << sub->output();
  // All acknowledged, so all queued to `sub` already: a duplicate would come before this marker.
  mosquitto_pub(broker, {"-t", "full/out", "-m", "marker"});
  ASSERT_TRUE(run_until([&] { return messages(*sub).size() >= 6; })) << sub->output();
  EXPECT_EQ(messages(*sub), (std::vector<std::string>{"1 0 full/out m0", "1 0 full/out m1",
                                                      "1 0 full/out m2", "1 0 full/out m3",
                                                      "1 0 full/out m4", "1 0 full/out marker"}));
  EXPECT_EQ(ext->stats().dropped, 3U);
}

TEST_F(external_broker_test, buffer_bytes_and_the_memory_budget_bound_the_backlog) {
  mosquitto_broker broker({.start = false});
  captured_log log;
  const std::string payload(40, 'x');

  auto o = options_for(broker, "bytes");
  o.buffer_bytes = 100;
  auto ext = start(o);
  EXPECT_TRUE(ext->publish("b/1", payload));  // 43 bytes
  EXPECT_TRUE(ext->publish("b/2", payload));  // 86
  const auto full = ext->publish("b/3", payload);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error(), "buffer full: 2 messages / 86 bytes (limits 10000 / 100)");
  EXPECT_TRUE(ext->publish("b/4", "small"));  // 8 more still fit: 94
  EXPECT_EQ(ext->pending(), 3U);
  EXPECT_EQ(ext->pending_bytes(), 94U);
  EXPECT_EQ(ext->stats().dropped, 1U);
  EXPECT_EQ(ext->stats().dropped_buffer_full, 1U);
  EXPECT_EQ(ext->stats().dropped_budget, 0U);
  EXPECT_EQ(log.lines_starting_with("warning publish_dropped reason=\"buffer full: 2 messages"),
            1U);

  memory_budget budget(50);  // outlives the client that charges it
  auto b = options_for(broker, "budget");
  b.budget = &budget;
  auto charged = start(b);
  EXPECT_TRUE(charged->publish("c/1", payload));
  EXPECT_EQ(budget.used(), 43U);
  const auto over = charged->publish("c/2", payload);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error(), "memory budget: 43 bytes do not fit (43 of 50 bytes in use)");
  EXPECT_EQ(charged->stats().dropped_budget, 1U);
  EXPECT_EQ(charged->stats().dropped, 1U);

  // Sent once the broker is up; the PUBACKs release the bytes and the budget.
  broker.start();
  ASSERT_TRUE(retry_until({ext.get(), charged.get()},
                          [&] { return ext->pub_connected() && charged->pub_connected(); }));
  ASSERT_TRUE(run_until([&] { return ext->pending() == 0 && charged->pending() == 0; }));
  EXPECT_EQ(ext->pending_bytes(), 0U);
  EXPECT_EQ(charged->pending_bytes(), 0U);
  EXPECT_EQ(budget.used(), 0U);
  EXPECT_TRUE(charged->publish("c/2", payload));
}

TEST_F(external_broker_test, subscribe_and_unsubscribe_while_connected_and_disconnected) {
  mosquitto_broker broker;
  auto ext = start_connected(options_for(broker, "subs"));
  ext->subscribe("subs/a");
  ext->subscribe("subs/b");
  ASSERT_TRUE(loops_back(*ext, "subs/a"));
  ASSERT_TRUE(loops_back(*ext, "subs/b"));

  ext->unsubscribe("subs/a");
  ASSERT_TRUE(broker.wait_for_output("Received UNSUBSCRIBE from subs-sub"));
  ASSERT_TRUE(run_until([&] { return ext->pending() == 0; }));  // all probes acknowledged
  received.clear();
  ext->publish("subs/a", "after unsubscribe");
  ext->publish("subs/b", "marker");  // same publisher, so it arrives after the one above
  ASSERT_TRUE(run_until([&] { return received_on("subs/b"); }));
  EXPECT_FALSE(received_on("subs/a"));

  broker.stop();
  ASSERT_TRUE(run_until([&] { return !ext->sub_connected(); }));
  ext->subscribe("subs/c");
  broker.start();
  ASSERT_TRUE(
      retry_until({ext.get()}, [&] { return ext->sub_connected() && ext->pub_connected(); }));
  EXPECT_TRUE(loops_back(*ext, "subs/c"));
  EXPECT_TRUE(loops_back(*ext, "subs/b"));
  EXPECT_EQ(ext->stats().subscribe_failures, 0U);
}

// A scripted server (mosquitto 2.0 grants every subscription and applies its ACL on delivery):
// accepts every CONNECT, answers PINGREQ, and refuses every SUBSCRIBE with SUBACK 0x80. Small
// packets only (one-byte remaining length).
class refusing_server {
 public:
  explicit refusing_server(asio::io_context& io)
      : acceptor_(io, {asio::ip::make_address("127.0.0.1"), 0}) {
    asio::co_spawn(io, accept_loop(), rethrow_handler{});
  }
  [[nodiscard]] std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(acceptor_.get_executor(), serve(std::move(socket)), rethrow_handler{});
    }
  }

  static awaitable<void> serve(asio::ip::tcp::socket socket) {
    std::string in;
    std::array<char, 512> buf{};
    for (;;) {
      auto [ec, n] =
          co_await socket.async_read_some(asio::buffer(buf), as_tuple(asio::use_awaitable));
      if (ec) co_return;
      in.append(buf.data(), n);
      while (in.size() >= 2) {
        const std::size_t length = 2 + static_cast<unsigned char>(in[1]);
        if (in.size() < length) break;
        const auto type = static_cast<unsigned char>(in[0]) >> 4;
        std::string reply;
        if (type == 1) reply = std::string("\x20\x02\x00\x00", 4);  // CONNACK accepted
        if (type == 8) reply = std::string("\x90\x03") + in.substr(2, 2) + "\x80";  // SUBACK
        if (type == 12) reply = std::string("\xd0\x00", 2);                         // PINGRESP
        in.erase(0, length);
        if (reply.empty()) continue;
        auto [wec, written] =
            co_await asio::async_write(socket, asio::buffer(reply), as_tuple(asio::use_awaitable));
        if (wec) co_return;
      }
    }
  }

  asio::ip::tcp::acceptor acceptor_;
};

TEST_F(external_broker_test, refused_subscription_is_counted_and_named_in_the_log) {
  const captured_log log;
  refusing_server server(io);
  external_options o;
  o.url = "tcp://127.0.0.1:" + std::to_string(server.port());
  o.sub_client_id = "refused-sub";
  o.pub_client_id = "refused-pub";
  auto ext = make(o);
  ext->subscribe("a/t");
  ext->subscribe("b/t");
  ASSERT_TRUE(ext->start());
  ASSERT_TRUE(run_until([&] { return ext->stats().subscribe_failures == 2; }));
  EXPECT_TRUE(ext->sub_connected());
  ext->subscribe("c/t");
  ASSERT_TRUE(run_until([&] { return ext->stats().subscribe_failures == 3; }));
  EXPECT_EQ(log.lines_starting_with("error subscribe_refused filter=\"a/t\""), 1U);
  EXPECT_EQ(log.lines_starting_with("error subscribe_refused filter=\"c/t\""), 1U);
}

TEST_F(external_broker_test, message_handler_may_publish_and_subscribe) {
  mosquitto_broker broker;
  std::unique_ptr<external_broker> ext;
  auto o = options_for(broker, "echo");
  ext = std::make_unique<external_broker>(
      io.get_executor(), clk, o, [&](std::string_view topic, std::string_view payload) {
        received.emplace_back(std::string(topic), std::string(payload));
        if (topic == "echo/in") {
          ext->publish("echo/out", payload);
          ext->subscribe("echo/later");
        }
      });
  ext->subscribe("echo/in");
  ASSERT_TRUE(ext->start());
  ASSERT_TRUE(run_until([&] { return ext->sub_connected() && ext->pub_connected(); }));
  ASSERT_TRUE(loops_back(*ext, "echo/in"));
  // The probes' echoes acknowledged: routed before `sub` exists.
  ASSERT_TRUE(run_until([&] { return ext->pending() == 0; }));
  auto sub = subscriber(broker, "echo/out");
  mosquitto_pub(broker, {"-t", "echo/in", "-m", "ping"});
  ASSERT_TRUE(run_until([&] { return !messages(*sub).empty(); })) << sub->output();
  EXPECT_EQ(messages(*sub).front(), "1 0 echo/out ping");
  EXPECT_TRUE(loops_back(*ext, "echo/later"));
}

TEST_F(external_broker_test, broker_sees_the_configured_client_ids) {
  mosquitto_broker broker;
  auto o = options_for(broker, "ids");
  o.sub_client_id = "hub-client-sub-1700000000";
  o.pub_client_id = "hub-client-pub-1700000000";
  auto ext = start_connected(o);
  EXPECT_TRUE(broker.wait_for_output(" as hub-client-sub-1700000000 ")) << broker.output();
  EXPECT_TRUE(broker.wait_for_output(" as hub-client-pub-1700000000 ")) << broker.output();
}

TEST_F(external_broker_test, username_and_password_are_checked_by_the_broker) {
  mosquitto_broker secured(
      {.start = false, .allow_anonymous = false, .extra_config = {"password_file {dir}/passwd"}});
  run_to_end({"mosquitto_passwd", "-b", "-c", secured.dir() + "/passwd", "edge", "s3cret"});
  secured.start();

  auto ok_opts = options_for(secured, "auth-ok");
  ok_opts.username = "edge";
  ok_opts.password = "s3cret";
  auto ok = start(ok_opts);
  auto bad_opts = options_for(secured, "auth-bad");
  bad_opts.username = "edge";
  bad_opts.password = "wrong";
  auto bad = start(bad_opts);
  auto none = start(options_for(secured, "auth-none"));

  ASSERT_TRUE(run_until([&] { return ok->sub_connected() && ok->pub_connected(); }));
  // Refused again and again (mosquitto does not name refused clients): both clients of `bad`
  // and `none` keep retrying.
  ASSERT_TRUE(retry_until({bad.get(), none.get()}, [&] {
    return count(secured.output(), "Sending CONNACK to 127.0.0.1 (0, 5)") >= 12;
  })) << secured.output();
  EXPECT_FALSE(bad->sub_connected());
  EXPECT_FALSE(bad->pub_connected());
  EXPECT_FALSE(none->sub_connected());
  EXPECT_EQ(ok->stats().sub_connects, 1U);
}

TEST_F(external_broker_test, credentials_in_the_url_override_the_configured_ones) {
  mosquitto_broker secured(
      {.start = false, .allow_anonymous = false, .extra_config = {"password_file {dir}/passwd"}});
  run_to_end({"mosquitto_passwd", "-b", "-c", secured.dir() + "/passwd", "edge@site", "s3:c/r%t"});
  secured.start();
  const captured_log log;
  const auto hostport = "127.0.0.1:" + std::to_string(secured.port());

  // Percent-decoded; the configured pair, wrong here, is not what is sent.
  auto both = options_for(secured, "url-auth");
  both.url = "tcp://edge%40site:s3%3Ac%2Fr%25t@" + hostport;
  both.username = "wrong";
  both.password = "wrong";
  auto with_both = start(both);
  // A user name alone keeps the configured password, as in Paho.
  auto user_only = options_for(secured, "url-user");
  user_only.url = "tcp://edge%40site@" + hostport;
  user_only.username = "wrong";
  user_only.password = "s3:c/r%t";
  auto with_user = start(user_only);
  ASSERT_TRUE(run_until([&] {
    return with_both->sub_connected() && with_both->pub_connected() && with_user->sub_connected() &&
           with_user->pub_connected();
  })) << secured.output();
  EXPECT_TRUE(secured.wait_for_output(" as url-auth-sub ")) << secured.output();

  // The password shows nowhere, masked in the log and in the URL shown to people.
  EXPECT_EQ(with_both->display_url(), "tcp://edge%40site:***@" + hostport);
  EXPECT_EQ(log.lines_starting_with("info starting url=tcp://edge%40site:***@" + hostport + " "),
            1U);
  for (const auto& line : log.lines()) {
    EXPECT_EQ(line.find("s3%3Ac"), std::string::npos) << line;
    EXPECT_EQ(line.find("s3:c/r%t"), std::string::npos) << line;
  }
}

TEST_F(external_broker_test, connects_through_a_unix_socket) {
  // Debian's mosquitto 2.0 listens on a Unix socket with "listener 0 <path>"; the TCP listener
  // stays, for mosquitto_sub and mosquitto_pub.
  mosquitto_broker broker({.extra_config = {"listener 0 {dir}/mqtt.sock"}});
  const captured_log log;
  auto o = options_for(broker, "unix");
  o.url = "unix://" + broker.dir() + "/mqtt.sock";
  auto ext = make(o);
  ext->subscribe("unix/in");
  ASSERT_TRUE(ext->start());
  ASSERT_TRUE(run_until([&] { return ext->sub_connected() && ext->pub_connected(); }))
      << broker.output();
  // Both clients came in through the socket, not over TCP.
  EXPECT_TRUE(broker.wait_for_output("connected from " + broker.dir() + "/mqtt.sock:0 as unix-sub"))
      << broker.output();
  EXPECT_TRUE(broker.wait_for_output("connected from " + broker.dir() + "/mqtt.sock:0 as unix-pub"))
      << broker.output();
  EXPECT_EQ(log.lines_starting_with("info connected client=sub client_id=unix-sub broker=" +
                                    broker.dir() + "/mqtt.sock "),
            1U);

  ASSERT_TRUE(loops_back(*ext, "unix/in"));
  auto sub = subscriber(broker, "unix/out");
  ext->publish("unix/out", "through the socket");
  ASSERT_TRUE(run_until([&] { return !messages(*sub).empty(); })) << sub->output();
  EXPECT_EQ(messages(*sub), std::vector<std::string>{"1 0 unix/out through the socket"});
  mosquitto_pub(broker, {"-t", "unix/in", "-m", "from tcp"});
  ASSERT_TRUE(run_until([&] { return received_on("unix/in", "from tcp"); }));

  // A restart of the broker: the clients reconnect through the socket.
  broker.stop();
  ASSERT_TRUE(run_until([&] { return !ext->sub_connected() && !ext->pub_connected(); }));
  broker.start();
  ASSERT_TRUE(retry_until({ext.get()}, [&] {
    return ext->sub_connected() && ext->pub_connected();
  })) << broker.output();
  EXPECT_EQ(ext->stats().sub_connects, 2U);
}

TEST_F(external_broker_test, a_missing_unix_socket_is_retried_with_the_reason) {
  const captured_log log;
  mosquitto_broker broker({.start = false, .extra_config = {"listener 0 {dir}/late.sock"}});
  auto o = options_for(broker, "unix-late");
  o.url = "unix://" + broker.dir() + "/late.sock";
  auto ext = start(o);
  ASSERT_TRUE(
      retry_until({ext.get()}, [&] { return ext->connect_attempts() >= 4 && !ext->connecting(); }));
  EXPECT_FALSE(ext->sub_connected());
  EXPECT_EQ(
      log.lines_starting_with("warning connect_failed client=sub client_id=unix-late-sub "
                              "broker=" +
                              broker.dir() + "/late.sock reason=\"No such file or directory\""),
      1U);
  broker.start();
  ASSERT_TRUE(retry_until({ext.get()}, [&] {
    return ext->sub_connected() && ext->pub_connected();
  })) << broker.output();
}

TEST_F(external_broker_test, repeated_connect_failures_warn_once_per_reconnect_max) {
  const captured_log log;
  mosquitto_broker broker({.start = false});
  auto o = options_for(broker, "quiet");
  o.reconnect_min = 10ms;
  o.reconnect_max = 2s;
  auto ext = start(o);
  // Retries 10, 20, 40... ms apart: all well within reconnect_max of the first failure.
  ASSERT_TRUE(retry_until({ext.get()}, [&] {
    return log.lines_starting_with("debug connect_failed client=sub") >= 3;
  }));
  EXPECT_EQ(log.lines_starting_with("warning connect_failed client=sub"), 1U);
  // reconnect_max later the same failure warns again, with the count of those not shown.
  clk.advance(o.reconnect_max);
  ASSERT_TRUE(retry_until({ext.get()}, [&] {
    return log.lines_starting_with("warning connect_failed client=sub") >= 2;
  }));
  std::size_t quiet = 0;
  std::string second_warning;
  for (const auto& line : log.lines()) {
    if (line.starts_with("debug connect_failed client=sub")) ++quiet;
    if (line.starts_with("warning connect_failed client=sub") && quiet > 0) {
      second_warning = line;
      break;
    }
  }
  EXPECT_GE(quiet, 3U);
  EXPECT_NE(second_warning.find(" repeated=" + std::to_string(quiet)), std::string::npos)
      << second_warning;
  broker.start();
  ASSERT_TRUE(retry_until({ext.get()}, [&] { return ext->sub_connected(); }));
  EXPECT_EQ(log.lines_starting_with("info connected client=sub"), 1U);
  // After a connection, the next failure is news again.
  broker.stop();
  ASSERT_TRUE(run_until([&] { return !ext->sub_connected(); }));
  EXPECT_EQ(log.lines_starting_with("warning connection_lost client=sub"), 1U);
}

TEST_F(external_broker_test, start_reports_invalid_options) {
  const auto error_of = [&](external_options o) {
    auto ext = make(std::move(o));
    auto r = ext->start();
    return r ? std::string() : r.error();
  };
  external_options o;
  o.sub_client_id = "s";
  o.pub_client_id = "p";

  o.url = "ws://127.0.0.1:1883";
  EXPECT_NE(error_of(o).find("unsupported scheme 'ws'"), std::string::npos) << error_of(o);
  o.url = "tcp://127.0.0.1:port";
  EXPECT_NE(error_of(o).find("invalid port 'port'"), std::string::npos) << error_of(o);
  o.url = "tcp://127.0.0.1:70000";
  EXPECT_NE(error_of(o).find("invalid port"), std::string::npos) << error_of(o);
  o.url = "tcp://127.0.0.1:1883/mqtt";
  EXPECT_NE(error_of(o).find("unexpected path"), std::string::npos) << error_of(o);
  o.url = "unix://relative.sock";
  EXPECT_NE(error_of(o).find("is relative"), std::string::npos) << error_of(o);
  o.url = "tcp://u:hunter2@127.0.0.1:0";
  EXPECT_EQ(error_of(o), "invalid port '0' in 'tcp://u:***@127.0.0.1:0' (must be 1 to 65535)");

  o.url = "ssl://127.0.0.1:8883";
  o.tls_enable = true;
  EXPECT_NE(error_of(o).find("no CA file"), std::string::npos) << error_of(o);
  o.ca_file = "/nonexistent/ca.crt";
  EXPECT_NE(error_of(o).find("cannot read TLS file '/nonexistent/ca.crt'"), std::string::npos)
      << error_of(o);
  o.ca_file = "/etc/hostname";
  EXPECT_NE(error_of(o).find("invalid CA file"), std::string::npos) << error_of(o);

  o = external_options{};
  o.sub_client_id = "s";
  o.pub_client_id = "p";
  o.keepalive_seconds = 3;
  EXPECT_NE(error_of(o).find("keep-alive"), std::string::npos) << error_of(o);

  o = external_options{};
  o.sub_client_id = "same";
  o.pub_client_id = "same";
  EXPECT_NE(error_of(o).find("same"), std::string::npos) << error_of(o);
  o.pub_client_id = "";
  EXPECT_NE(error_of(o).find("must not be empty"), std::string::npos) << error_of(o);

  o = external_options{};
  o.sub_client_id = "s";
  o.pub_client_id = "p";
  o.buffer_bytes = 0;
  EXPECT_NE(error_of(o).find("buffer_bytes must be at least 1"), std::string::npos) << error_of(o);
}

// CA, server and client certificates made with the openssl CLI (EC keys: fast).
struct test_pki {
  explicit test_pki(std::string directory) : dir(std::move(directory)) {
    make_ca("ca");
    make_ca("other-ca");
    make_leaf("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    make_leaf("client", "ca", "extendedKeyUsage=clientAuth");
    make_leaf("elsewhere", "ca", "subjectAltName=DNS:elsewhere.example");
  }
  std::string path(const std::string& name) const { return dir + "/" + name; }

  void make_ca(const std::string& name) const {
    run_to_end({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", path(name + ".key"), "-out",
                path(name + ".crt"), "-days", "1", "-subj", "/CN=ebus test " + name});
  }
  void make_leaf(const std::string& name, const std::string& ca, const std::string& ext) const {
    run_to_end({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", path(name + ".key"), "-out", path(name + ".csr"), "-subj",
                "/CN=" + name});
    std::ofstream(path(name + ".ext")) << ext << '\n';
    run_to_end({"openssl", "x509", "-req", "-in", path(name + ".csr"), "-CA", path(ca + ".crt"),
                "-CAkey", path(ca + ".key"), "-CAcreateserial", "-out", path(name + ".crt"),
                "-days", "1", "-extfile", path(name + ".ext")});
  }

  std::string dir;
};

TEST_F(external_broker_test, tls_with_verification_and_client_certificate) {
  mosquitto_broker broker(
      {.start = false,
       .extra_config = {"cafile {dir}/ca.crt", "certfile {dir}/server.crt",
                        "keyfile {dir}/server.key", "require_certificate true"}});
  const test_pki pki(broker.dir());
  broker.start();
  const auto tls_url = "ssl://127.0.0.1:" + std::to_string(broker.port());

  auto o = options_for(broker, "tls");
  o.url = tls_url;
  o.tls_enable = true;
  o.ca_file = pki.path("ca.crt");
  o.cert_file = pki.path("client.crt");
  o.key_file = pki.path("client.key");
  auto ext = make(o);
  ext->subscribe("tls/t");
  ASSERT_TRUE(ext->start());
  ASSERT_TRUE(run_until([&] { return ext->sub_connected() && ext->pub_connected(); }))
      << broker.output();
  EXPECT_TRUE(loops_back(*ext, "tls/t"));

  // A server certificate from another CA: never connected, still retrying.
  auto wrong = o;
  wrong.sub_client_id = "tls-wrong-sub";
  wrong.pub_client_id = "tls-wrong-pub";
  wrong.ca_file = pki.path("other-ca.crt");
  auto rejected = start(wrong);
  const auto handshakes = [&] { return count(broker.output(), "New connection from"); };
  const auto before = handshakes();
  ASSERT_TRUE(retry_until({rejected.get()}, [&] { return handshakes() >= before + 6; }))
      << broker.output();
  EXPECT_FALSE(rejected->sub_connected());
  EXPECT_FALSE(rejected->pub_connected());
  EXPECT_EQ(rejected->stats().sub_connects, 0U);

  // The right CA, but a certificate for another host name: refused as well.
  mosquitto_broker elsewhere({.extra_config = {"certfile " + pki.path("elsewhere.crt"),
                                               "keyfile " + pki.path("elsewhere.key")}});
  auto other_host = o;
  other_host.url = "ssl://127.0.0.1:" + std::to_string(elsewhere.port());
  other_host.sub_client_id = "tls-host-sub";
  other_host.pub_client_id = "tls-host-pub";
  auto mismatched = start(other_host);
  ASSERT_TRUE(retry_until({mismatched.get()}, [&] {
    return count(elsewhere.output(), "New connection from") >= 5;
  })) << elsewhere.output();
  EXPECT_FALSE(mismatched->sub_connected());
  EXPECT_FALSE(mismatched->pub_connected());
}

TEST_F(external_broker_test, tls_url_without_tls_enable_encrypts_without_verifying) {
  mosquitto_broker broker(
      {.start = false, .extra_config = {"certfile {dir}/server.crt", "keyfile {dir}/server.key"}});
  const test_pki pki(broker.dir());
  broker.start();
  auto o = options_for(broker, "tls-nv");
  o.url = "mqtts://127.0.0.1:" + std::to_string(broker.port());
  auto ext = make(o);
  ext->subscribe("tlsnv/t");
  ASSERT_TRUE(ext->start());
  ASSERT_TRUE(run_until([&] { return ext->sub_connected() && ext->pub_connected(); }))
      << broker.output();
  EXPECT_TRUE(loops_back(*ext, "tlsnv/t"));

  // The listener speaks only TLS: a plain client is not served.
  auto p = options_for(broker, "tls-plain");
  auto plain_client = start(p);
  // Two attempts of each client, all ended (the listener closes on the plain CONNECT).
  ASSERT_TRUE(retry_until({plain_client.get()}, [&] {
    return plain_client->connect_attempts() >= 4 && !plain_client->connecting();
  }));
  EXPECT_FALSE(plain_client->sub_connected());
  EXPECT_FALSE(plain_client->pub_connected());
  EXPECT_EQ(plain_client->stats().sub_connects, 0U);
}

TEST_F(external_broker_test, stop_flushes_pending_publishes_then_disconnects) {
  mosquitto_broker broker;
  auto ext = start_connected(options_for(broker, "stop"));
  auto sub = subscriber(broker, "stop/out");
  for (int i = 0; i < 100; ++i)
    ext->publish("stop/out", std::to_string(i));
  bool done = false;
  ext->stop(5s, [&] { done = true; });
  EXPECT_FALSE(done) << "done must not run inside stop()";
  ASSERT_TRUE(run_until([&] { return done; }));
  EXPECT_EQ(ext->pending(), 0U);
  EXPECT_EQ(ext->stats().acknowledged, 100U);
  EXPECT_FALSE(ext->sub_connected());
  EXPECT_FALSE(ext->pub_connected());
  ASSERT_TRUE(run_until([&] { return messages(*sub).size() >= 100; })) << sub->output();
  EXPECT_EQ(messages(*sub).size(), 100U);
  EXPECT_EQ(messages(*sub).back(), "1 0 stop/out 99");
  // DISCONNECT sent: mosquitto logs "disconnected." rather than "closed its connection."
  EXPECT_TRUE(broker.wait_for_output("Client stop-pub disconnected.")) << broker.output();
  EXPECT_TRUE(broker.wait_for_output("Client stop-sub disconnected.")) << broker.output();

  const auto after = ext->publish("stop/out", "after stop");
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error(), "the external broker client is stopping");
  EXPECT_EQ(ext->stats().dropped, 1U);
  bool again = false;
  ext->stop(1s, [&] { again = true; });
  ASSERT_TRUE(run_until([&] { return again; }));
}

TEST_F(external_broker_test, stop_gives_up_after_the_timeout_when_the_broker_is_down) {
  mosquitto_broker broker({.start = false});
  auto ext = start(options_for(broker, "stop-down"));
  ext->publish("x", "1");
  ext->publish("x", "2");
  bool done = false;
  ext->stop(300ms, [&] { done = true; });
  clk.advance(299ms);
  drain();
  EXPECT_FALSE(done) << "stopped before the timeout";
  clk.advance(1ms);
  ASSERT_TRUE(run_until([&] { return done; }));
  // Stopped by the timeout (nothing could be acknowledged), not by a flush.
  EXPECT_EQ(ext->pending(), 2U);
  EXPECT_EQ(ext->stats().lost_at_stop, 2U);  // in the summary, apart from the dropped ones
  EXPECT_EQ(ext->stats().dropped, 0U);
}

TEST_F(external_broker_test, destruction_without_stop_cancels_everything) {
  mosquitto_broker broker;
  {
    auto never_started = make(options_for(broker, "never"));
    never_started->publish("x", "buffered");
  }
  auto ext = start_connected(options_for(broker, "gone"));
  ext->subscribe("gone/t");
  for (int i = 0; i < 50; ++i)
    ext->publish("gone/t", "in flight");
  ext.reset();  // PUBACKs, SUBACK and timers still pending
  const auto seen = received.size();
  // What was still under way ends with the object: the sockets are closed, the aborted waits and
  // the timers' wake-ups run nothing.
  drain();
  clk.advance(1min);
  drain();
  EXPECT_EQ(received.size(), seen);
  // Closed without DISCONNECT ("closed its connection", or a reset seen as an error).
  EXPECT_TRUE(broker.wait_for_output("Client gone-pub ")) << broker.output();
  EXPECT_TRUE(broker.wait_for_output("Client gone-sub ")) << broker.output();

  // Also destroyed while waiting to reconnect to a broker that is down.
  mosquitto_broker down({.start = false});
  auto waiting = start(options_for(down, "waiting"));
  ASSERT_TRUE(run_until([&] { return !waiting->connecting(); }));  // both refused: retries due
  waiting.reset();
  clk.advance(1min);
  drain();
}

// Runs `io` in bounded steps until `done()` holds.
template <class Done>
bool run_loop_until(asio::io_context& io, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + wait_limit;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_one_for(10ms);
  }
  return done();
}

// Runs the handlers of `io` that are ready now, without waiting for more.
void drain_loop(asio::io_context& io) {
  io.restart();
  io.poll();
}

TEST(mosquitto_connection_test, retries_when_no_connack_comes_within_the_connect_timeout) {
  // Keep-alive 0: libmosquitto itself would wait for the CONNACK forever.
  test::manual_clock clk;
  asio::io_context io{1};
  mosquitto_broker broker;
  broker.signal(SIGSTOP);  // the kernel still accepts connections; nobody answers
  connection_settings s{.name = "sub",
                        .client_id = "silent",
                        .host = "127.0.0.1",
                        .port = broker.port(),
                        .keepalive_seconds = 0,
                        .connect_timeout = 200ms,
                        .reconnect_min = 50ms,
                        .reconnect_max = 100ms};
  bool connected = false;
  auto c = mosquitto_connection::create(io.get_executor(), clk, s,
                                        {.connected = [&] { connected = true; }});
  ASSERT_TRUE(c) << c.error();
  auto& conn = **c;
  const auto drain = [&] { drain_loop(io); };
  conn.start();
  drain();  // connected by the kernel, CONNECT written; no answer comes
  EXPECT_EQ(conn.attempts(), 1U);
  EXPECT_TRUE(conn.connecting());
  clk.advance(s.connect_timeout - 1ms);
  drain();
  EXPECT_EQ(conn.failed_attempts(), 0U);
  EXPECT_TRUE(conn.connecting());
  clk.advance(1ms);
  EXPECT_EQ(conn.failed_attempts(), 1U);
  EXPECT_FALSE(conn.connecting());  // waiting for the next attempt
  // Retried after the backoff (reconnect_min, then doubled up to reconnect_max), timed out again.
  clk.advance(s.reconnect_min);
  EXPECT_EQ(conn.attempts(), 2U);
  drain();
  clk.advance(s.connect_timeout);
  EXPECT_EQ(conn.failed_attempts(), 2U);
  clk.advance(s.reconnect_max - 1ms);
  EXPECT_EQ(conn.attempts(), 2U);
  clk.advance(1ms);
  EXPECT_EQ(conn.attempts(), 3U);
  drain();
  clk.advance(s.connect_timeout);
  EXPECT_EQ(conn.failed_attempts(), 3U);
  EXPECT_FALSE(connected);
  broker.signal(SIGCONT);
  clk.advance(s.reconnect_max);
  EXPECT_EQ(conn.attempts(), 4U);
  ASSERT_TRUE(run_loop_until(io, [&] { return connected; }));
  EXPECT_TRUE(conn.connected());
  EXPECT_EQ(conn.failed_attempts(), 0U);
}

// --- host names: resolved off the loop ------------------------------------------------------

// Counts the turns the loop gives it: a handler that posts itself again each time it runs, until
// destroyed. It turns only while nothing blocks the loop. (A loop with one never runs out of
// ready handlers: run it in steps, not with poll().)
class spinner {
 public:
  explicit spinner(asio::io_context& io) { spin(io, state_); }
  spinner(const spinner&) = delete;
  spinner& operator=(const spinner&) = delete;
  ~spinner() { state_->stopped = true; }
  [[nodiscard]] int turns() const { return state_->turns; }

 private:
  struct state {
    bool stopped = false;
    int turns = 0;
  };
  static void spin(asio::io_context& io, const std::shared_ptr<state>& s) {
    asio::post(io, [&io, s] {
      if (s->stopped) return;
      ++s->turns;
      spin(io, s);
    });
  }
  std::shared_ptr<state> state_ = std::make_shared<state>();
};

TEST(mosquitto_connection_test, a_slow_name_resolution_does_not_block_the_loop) {
  // The resolver blocks until the loop has given a spinner turns while it waited, which it can
  // only do if the resolver does not run on the loop. (Synchronous resolution would block here
  // until the safety bound, then report released == false.)
  test::manual_clock clk;
  asio::io_context io{1};
  const auto loop_thread = std::this_thread::get_id();
  std::promise<void> release;
  auto released = release.get_future().share();
  struct observed {
    std::mutex mutex;
    std::optional<std::thread::id> thread;
    std::optional<bool> released_by_loop;
    int calls = 0;
  };
  auto seen = std::make_shared<observed>();
  connection_settings s{
      .name = "sub",
      .client_id = "slow-dns",
      .host = "broker.example",
      .port = 1,
      .reconnect_min = 5000ms,
      .reconnect_max = 5000ms,
      .resolve = [seen, released](
                     const std::string& host) -> expected<std::vector<std::string>, std::string> {
        const bool in_time = released.wait_for(wait_limit) == std::future_status::ready;
        const std::lock_guard lock(seen->mutex);
        seen->thread = std::this_thread::get_id();
        seen->released_by_loop = in_time;
        ++seen->calls;
        return fail("no answer for " + host);
      }};
  auto c = mosquitto_connection::create(io.get_executor(), clk, s, {});
  ASSERT_TRUE(c) << c.error();
  spinner spin(io);
  (*c)->start();
  bool released_now = false;
  ASSERT_TRUE(run_loop_until(io, [&] {
    if (!released_now && spin.turns() >= 20) {
      released_now = true;
      release.set_value();
    }
    return (*c)->failed_attempts() >= 1;
  }));
  const std::lock_guard lock(seen->mutex);
  EXPECT_EQ(seen->calls, 1);
  ASSERT_TRUE(seen->released_by_loop.has_value());
  EXPECT_TRUE(*seen->released_by_loop) << "the resolver blocked the loop";
  ASSERT_TRUE(seen->thread.has_value());
  EXPECT_NE(*seen->thread, loop_thread);
  EXPECT_FALSE((*c)->connected());
}

TEST(mosquitto_connection_test, destroyed_while_resolving_the_answer_is_dropped) {
  test::manual_clock clk;
  asio::io_context io{1};
  std::promise<void> release;
  auto released = release.get_future().share();
  // Held by the resolver function only: once the resolver thread has let go of its copy, it has
  // posted whatever it was going to post.
  auto held = std::make_shared<int>(0);
  const std::weak_ptr<int> thread_holds = held;
  connection_settings s{
      .name = "sub",
      .client_id = "gone",
      .host = "broker.example",
      .port = 1,
      .resolve = [released,
                  held](const std::string&) -> expected<std::vector<std::string>, std::string> {
        (void)held;
        released.wait();
        return std::vector<std::string>{"127.0.0.1"};
      }};
  auto c = mosquitto_connection::create(io.get_executor(), clk, std::move(s), {});
  held.reset();
  ASSERT_TRUE(c) << c.error();
  (*c)->start();
  c->reset();
  EXPECT_FALSE(thread_holds.expired());  // still resolving
  release.set_value();
  const auto deadline = std::chrono::steady_clock::now() + wait_limit;
  while (!thread_holds.expired() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  ASSERT_TRUE(thread_holds.expired());
  // Whatever the resolver thread posted (nothing, here) must not touch the destroyed object.
  drain_loop(io);
  clk.advance(1min);
  drain_loop(io);
}

TEST_F(external_broker_test, an_unresolvable_host_is_retried_while_the_loop_runs) {
  const captured_log log;
  mosquitto_broker broker({.start = false});
  auto o = options_for(broker, "nxdomain");
  o.url = "tcp://does-not-exist.invalid:" + std::to_string(broker.port());
  auto ext = start(o);
  spinner spin(io);
  ASSERT_TRUE(retry_until({ext.get()}, [&] {
    return log.lines_starting_with("warning connect_failed client=sub") >= 1 &&
           log.lines_starting_with("debug connect_failed client=sub") >= 1;
  })) << "expected a warning, then a quieter retry";
  EXPECT_GT(spin.turns(), 0);
  EXPECT_FALSE(ext->sub_connected());
  EXPECT_FALSE(ext->pub_connected());
  EXPECT_GE(log.lines_starting_with("warning connect_failed client=sub client_id=nxdomain-sub "
                                    "broker=does-not-exist.invalid:"),
            1U);
}

TEST_F(external_broker_test, a_host_name_is_resolved_and_connected_to) {
  // The test broker listens on 127.0.0.1 only: if "localhost" also gives ::1, that attempt fails
  // and the next one takes the next address.
  mosquitto_broker broker;
  auto o = options_for(broker, "named");
  o.url = "tcp://localhost:" + std::to_string(broker.port());
  auto ext = start(o);
  ext->subscribe("named/t");
  ASSERT_TRUE(retry_until({ext.get()}, [&] {
    return ext->sub_connected() && ext->pub_connected();
  })) << broker.output();
  EXPECT_TRUE(loops_back(*ext, "named/t"));
}

TEST_F(external_broker_test, tls_verifies_the_host_name_while_connecting_to_its_address) {
  mosquitto_broker broker({.start = false,
                           .extra_config = {"cafile {dir}/ca.crt", "certfile {dir}/named.crt",
                                            "keyfile {dir}/named.key"}});
  const test_pki pki(broker.dir());
  // A certificate for the name only: checking it against the address would fail.
  pki.make_leaf("named", "ca", "subjectAltName=DNS:localhost");
  broker.start();
  auto o = options_for(broker, "tls-named");
  o.url = "ssl://localhost:" + std::to_string(broker.port());
  o.tls_enable = true;
  o.ca_file = pki.path("ca.crt");
  o.cert_file = pki.path("client.crt");
  o.key_file = pki.path("client.key");
  auto ext = make(o);
  ext->subscribe("tlsnamed/t");
  ASSERT_TRUE(ext->start());
  // A retry when "localhost" gives ::1 first (the broker listens on 127.0.0.1 only).
  ASSERT_TRUE(retry_until({ext.get()}, [&] {
    return ext->sub_connected() && ext->pub_connected();
  })) << broker.output();
  EXPECT_TRUE(loops_back(*ext, "tlsnamed/t"));

  // The same broker by address: the certificate does not name 127.0.0.1, refused.
  auto by_address = o;
  by_address.url = "ssl://127.0.0.1:" + std::to_string(broker.port());
  by_address.sub_client_id = "tls-address-sub";
  by_address.pub_client_id = "tls-address-pub";
  auto refused = start(by_address);
  const auto handshakes = [&] { return count(broker.output(), "New connection from"); };
  const auto before = handshakes();
  ASSERT_TRUE(retry_until({refused.get()}, [&] { return handshakes() >= before + 4; }))
      << broker.output();
  EXPECT_FALSE(refused->sub_connected());
  EXPECT_FALSE(refused->pub_connected());
}

TEST(mosquitto_connection_test, a_topic_with_quotes_and_a_line_separator_is_logged_escaped) {
  // Brokers refuse control characters in topics, but not a quote (which would end topic="...")
  // or U+2028, which some log viewers show as a line break.
  const captured_log log;
  test::manual_clock clk;
  asio::io_context io{1};
  mosquitto_broker broker;
  connection_settings s{
      .name = "sub", .client_id = "fragile", .host = "127.0.0.1", .port = broker.port()};
  bool connected = false;
  bool handled = false;
  auto c = mosquitto_connection::create(io.get_executor(), clk, s,
                                        {.connected = [&] { connected = true; },
                                         .message =
                                             [&](std::string_view, std::string_view) {
                                               handled = true;
                                               throw std::runtime_error("bad\ninput");
                                             },
                                         .subscribed = [&](int, std::span<const int>) {}});
  ASSERT_TRUE(c) << c.error();
  (*c)->start();
  ASSERT_TRUE(run_loop_until(io, [&] { return connected; }));
  int mid = 0;
  ASSERT_EQ((*c)->subscribe("#", mid), 0);
  // Published until it arrives: the subscription is active once one gets through.
  ASSERT_TRUE(run_loop_until(io, [&] {
    if (!handled)
      run_to_end({"mosquitto_pub", "-p", std::to_string(broker.port()), "-t",
                  "forged\" level=\"error\xe2\x80\xa8injected", "-m", "x"});
    return handled;
  }));
  std::vector<std::string> failed;
  for (const auto& line : log.lines()) {
    if (line.find("handler_failed") != std::string::npos) failed.push_back(line);
  }
  ASSERT_FALSE(failed.empty());
  for (const auto& line : failed) {
    EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << line;  // the end of the line
    EXPECT_NE(line.find(R"(topic="forged\" level=\"error\xe2\x80\xa8injected")"), std::string::npos)
        << line;
    EXPECT_NE(line.find(R"(error="bad\ninput")"), std::string::npos) << line;
  }
}

TEST_F(external_broker_test, tls_sends_the_host_name_as_sni_not_the_address) {
  // openssl s_server prints the server name extension of the ClientHello it receives (-www: it
  // answers HTTP, so it does not stop at the end of its empty standard input).
  mosquitto_broker spare({.start = false});  // a free port and a directory
  const test_pki pki(spare.dir());
  process server({"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(spare.port()),
                  "-cert", pki.path("server.crt"), "-key", pki.path("server.key"), "-tlsextdebug",
                  "-www", "-naccept", "1"});
  ASSERT_TRUE(server.wait_for_output("ACCEPT")) << server.output();
  auto o = options_for(spare, "sni");
  o.url = "ssl://localhost:" + std::to_string(spare.port());
  auto ext = start(o);
  const auto sni_at = [&] { return server.output().find("server name"); };
  // Retried when "localhost" gives ::1 first (the server listens on 127.0.0.1 only).
  ASSERT_TRUE(retry_until({ext.get()}, [&] {
    return sni_at() != std::string::npos &&
           server.output().find("localhost", sni_at()) != std::string::npos;
  })) << server.output();
  EXPECT_EQ(server.output().find("127.0.0.1", server.output().find("server name")),
            std::string::npos)
      << server.output();
}

}  // namespace
}  // namespace ebus::mqtt::client
