// The daemon from start to exit, and what it survives: stop signals and SIGHUP, a low descriptor
// limit, connection floods, hostile client ids and module names, a bad command line. And the
// failures that must end it with a non-zero status so that its supervisor restarts it: a broken
// listener, a module whose run() dies (in-process, through daemon::serve, the binary's own path).
// Each daemon runs in a temporary directory on a free port.
#include <csignal>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include "bus/module.hpp"
#include "daemon/app.hpp"
#include "daemon/daemon.hpp"
#include "ebus_test/mqtt_peer.hpp"
#include "ebus_test/process.hpp"
#include "mqtt/broker/server.hpp"
#include "node_harness.hpp"

namespace ebus::test {
namespace {

using namespace std::chrono_literals;
namespace codec = mqtt::codec;

const std::string daemon_path = built_program("apps/eventbus/eventbus");

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

std::size_t lines_containing(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (const auto& line : lines_of(text))
    n += line.find(needle) != std::string::npos ? 1 : 0;
  return n;
}

/// The value of `name` in the final_counters line of `log`; 0 when it is not there (zero).
std::uint64_t final_counter(const std::string& log, const std::string& name) {
  for (const auto& line : lines_of(log)) {
    const auto at = line.find("final_counters ");
    if (at == std::string::npos) continue;
    std::istringstream fields(line.substr(at + 15));
    for (std::string field; fields >> field;) {
      if (field.starts_with(name + "=")) return std::stoull(field.substr(name.size() + 1));
    }
  }
  return 0;
}

codec::connect make_connect(std::string id, bool clean = true) {
  codec::connect c;
  c.client_id = std::move(id);
  c.clean_session = clean;
  c.keep_alive = 60;
  return c;
}

codec::publish make_publish(std::string topic, std::string payload, codec::qos_level qos,
                            std::uint16_t id = 0) {
  codec::publish p;
  p.topic = std::move(topic);
  p.payload = std::move(payload);
  p.qos = qos;
  p.packet_id = id;
  return p;
}

/// A connected stream socket to the Unix socket at `path`; -1 when refused.
int connect_unix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// The daemon binary on a configuration of its own: embedded broker on a free port of
/// 127.0.0.1, both module sockets and the database in a temporary directory.
class lifecycle : public ::testing::Test {
 protected:
  /// `extra`: YAML keys under modules.eventBus; `prefix`: what the daemon runs under (prlimit).
  void start(const std::string& extra = {}, std::vector<std::string> prefix = {},
             const std::string& host = "127.0.0.1") {
    port_ = free_port();
    const auto config = dir_.path() / "edgecore.yaml";
    std::ofstream(config) << "database:\n  dataSource: " << (dir_.path() / "edgecore.db").string()
                          << "\nmodules:\n  eventBus:\n    mqttServerInternal: tcp://" << host
                          << ":" << port_ << "\n    moduleSocket: " << socket_path()
                          << "\n    moduleStreamSocket: " << stream_socket_path() << "\n"
                          << extra;
    prefix.insert(prefix.end(), {daemon_path, "--config", config.string()});
    daemon_ = std::make_unique<process>(std::move(prefix));
    ASSERT_TRUE(daemon_->wait_for_output("ready")) << daemon_->output();
  }

  /// SIGTERM, then the exit status and everything the daemon logged.
  std::pair<int, std::string> stop() {
    daemon_->signal(SIGTERM);
    const auto status = daemon_->wait(20s);
    EXPECT_TRUE(status.has_value()) << "still running after SIGTERM\n" << daemon_->output();
    return {status.value_or(-1), daemon_->output()};
  }

  std::string socket_path() const { return (dir_.path() / "eventbus.sock").string(); }
  std::string stream_socket_path() const { return (dir_.path() / "eventbus-stream.sock").string(); }

  /// eventbus-ctl on the daemon's socket, to its end: (status, output).
  std::pair<int, std::string> run_ctl(std::vector<std::string> args) {
    auto result = ebus::test::run_ctl(socket_path(), std::move(args));
    EXPECT_NE(result.first, -1) << result.second;  // it finished
    return result;
  }

  /// A client connected and subscribed to `topic`, and a QoS 1 message through the broker.
  ::testing::AssertionResult serves_mqtt(const std::string& id) {
    mqtt_peer peer(port_);
    const auto ack = peer.connect(make_connect(id));
    if (!ack || ack->return_code != codec::connect_return_code::accepted) {
      return ::testing::AssertionFailure() << "no CONNACK 0x00\n" << daemon_->output();
    }
    if (peer.subscribe("echo/" + id, codec::qos_level::at_least_once) !=
        codec::suback_return_code::success_maximum_qos_1) {
      return ::testing::AssertionFailure() << "no SUBACK\n" << daemon_->output();
    }
    peer.send(make_publish("echo/" + id, "ping", codec::qos_level::at_least_once, 9));
    for (;;) {
      auto p = peer.receive(10s);
      if (!p) return ::testing::AssertionFailure() << "no echo\n" << daemon_->output();
      if (const auto* pub = std::get_if<codec::publish>(&*p); pub && pub->payload == "ping") {
        return ::testing::AssertionSuccess();
      }
    }
  }

  temp_dir dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<process> daemon_;
};

TEST_F(lifecycle, sigint_sigterm_and_sigquit_stop_in_order_exit_zero_and_remove_the_sockets) {
  for (const auto& [signo, name] : {std::pair{SIGINT, "SIGINT"}, std::pair{SIGTERM, "SIGTERM"},
                                    std::pair{SIGQUIT, "SIGQUIT"}}) {
    SCOPED_TRACE(name);
    start();
    ASSERT_TRUE(std::filesystem::exists(socket_path()));
    ASSERT_TRUE(std::filesystem::exists(stream_socket_path()));
    daemon_->signal(signo);
    const auto status = daemon_->wait(20s);
    ASSERT_TRUE(status.has_value()) << daemon_->output();
    EXPECT_EQ(*status, 0) << daemon_->output();
    const auto& out = daemon_->output();
    EXPECT_NE(out.find(std::string("shutdown signal=") + name), std::string::npos) << out;
    EXPECT_NE(out.find("final_counters"), std::string::npos) << out;
    EXPECT_NE(out.find("stopped exit_status=0"), std::string::npos) << out;
    EXPECT_FALSE(std::filesystem::exists(socket_path())) << out;
    EXPECT_FALSE(std::filesystem::exists(stream_socket_path())) << out;
  }
}

TEST_F(lifecycle, sighup_reloads_what_it_can_says_so_and_the_daemon_keeps_serving_mqtt) {
  start();
  ASSERT_TRUE(serves_mqtt("before"));
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(daemon_->wait_for_output("signal=SIGHUP")) << daemon_->output();
  EXPECT_NE(daemon_->output().find("other configuration changes need a restart"), std::string::npos)
      << daemon_->output();
  EXPECT_TRUE(serves_mqtt("after"));
  daemon_->signal(SIGHUP);  // as often as it comes
  EXPECT_TRUE(serves_mqtt("again"));
  EXPECT_TRUE(std::filesystem::exists(socket_path()));
  const auto [status, out] = stop();
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(lines_containing(out, "signal=SIGHUP"), 2U) << out;
}

TEST_F(lifecycle, final_counters_at_sigterm_give_the_exact_number_of_dropped_messages) {
  start();
  {
    // A persistent session that goes offline: QoS 0 messages for it are dropped [MQTT-3.1.2-5].
    mqtt_peer sub(port_);
    ASSERT_TRUE(sub.connect(make_connect("offline-sub", false)));
    ASSERT_EQ(sub.subscribe("drops/t", codec::qos_level::at_least_once),
              codec::suback_return_code::success_maximum_qos_1);
    sub.send(codec::disconnect{});
    ASSERT_TRUE(sub.closed_within());
  }
  ASSERT_TRUE(daemon_->wait_for_output("disconnected client_id=\"offline-sub\""))
      << daemon_->output();
  mqtt_peer pub(port_);
  ASSERT_TRUE(pub.connect(make_connect("publisher")));
  for (int i = 0; i < 7; ++i)
    pub.send(make_publish("drops/t", "m" + std::to_string(i), codec::qos_level::at_most_once));
  // PUBACK of a later message on the same connection: the seven were routed before it.
  pub.send(make_publish("sync/t", "last", codec::qos_level::at_least_once, 1));
  ASSERT_TRUE(pub.receive_as<codec::puback>()) << daemon_->output();

  const auto [status, out] = stop();
  EXPECT_EQ(status, 0) << out;
  ASSERT_EQ(lines_containing(out, "final_counters"), 1U) << out;
  EXPECT_EQ(final_counter(out, "mqtt.dropped_offline_qos0"), 7U) << out;
  EXPECT_EQ(final_counter(out, "mqtt.deliveries_dropped"), 7U) << out;
  EXPECT_EQ(final_counter(out, "mqtt.messages_received"), 8U) << out;
}

TEST_F(lifecycle, connections_over_max_connections_get_connack_server_unavailable) {
  start("    mqttMaxConnections: 2\n");
  mqtt_peer a(port_);
  mqtt_peer b(port_);
  ASSERT_TRUE(a.connect(make_connect("a")));
  ASSERT_TRUE(b.connect(make_connect("b")));
  constexpr int extra = 30;
  for (int i = 0; i < extra; ++i) {
    mqtt_peer over(port_);
    const auto ack = over.connect(make_connect("over-" + std::to_string(i)));
    ASSERT_TRUE(ack.has_value()) << "closed without CONNACK\n" << daemon_->output();
    EXPECT_EQ(ack->return_code, codec::connect_return_code::server_unavailable);
    EXPECT_TRUE(over.closed_within());
    daemon_->output();  // keeps the pipe drained
  }
  const auto [status, out] = stop();
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(final_counter(out, "mqtt.refused_max_connections"), 30U) << out;
  // One warning per 10 s with the count, however fast the refusals come.
  const auto warnings = lines_containing(out, "connection_refused reason=max_connections");
  EXPECT_GE(warnings, 1U) << out;
  EXPECT_LE(warnings, 3U) << out;
}

TEST_F(lifecycle, under_a_low_descriptor_limit_mqtt_is_refused_first_and_the_module_socket_works) {
  // 256 descriptors; the reserve is moduleSocketMaxConnections (64) + 32, so MQTT connections
  // get the descriptors below 160, minus what the daemon holds already.
  start("    mqttMaxConnections: 1000\n", {"prlimit", "--nofile=256:256", "--"});
  EXPECT_NE(daemon_->output().find("fd_limit soft=256 hard=256"), std::string::npos)
      << daemon_->output();
  ASSERT_EQ(lines_containing(daemon_->output(), "fd_limit_low soft=256"), 1U) << daemon_->output();
  EXPECT_NE(daemon_->output().find("mqttMaxConnections=1000 reserve=96"), std::string::npos)
      << daemon_->output();

  std::vector<std::unique_ptr<mqtt_peer>> accepted;
  std::size_t refused = 0;
  for (int i = 0; i < 400 && refused < 20; ++i) {
    auto peer = std::make_unique<mqtt_peer>(port_);
    const auto ack = peer->connect(make_connect("c" + std::to_string(i)));
    ASSERT_TRUE(ack.has_value()) << "connection " << i << " closed without CONNACK\n"
                                 << daemon_->output();
    if (ack->return_code == codec::connect_return_code::accepted) {
      accepted.push_back(std::move(peer));
    } else {
      ASSERT_EQ(ack->return_code, codec::connect_return_code::server_unavailable);
      ++refused;
    }
    daemon_->output();
  }
  ASSERT_EQ(refused, 20U) << daemon_->output();
  EXPECT_GT(accepted.size(), 100U);
  EXPECT_LT(accepted.size(), 160U);

  // The module socket and the store (a subscription is confirmed once committed) still work.
  const auto [sub_status, sub_out] = run_ctl({"subscribe", "low/fd"});
  EXPECT_EQ(sub_status, 0) << sub_out << daemon_->output();
  const auto [topics_status, topics_out] = run_ctl({"topics"});
  EXPECT_EQ(topics_status, 0) << topics_out;
  EXPECT_NE(topics_out.find("low/fd"), std::string::npos) << topics_out;

  // Descriptors given back are MQTT's again.
  accepted.resize(accepted.size() - 5);
  bool again = false;
  for (int i = 0; i < 100 && !again; ++i) {
    mqtt_peer peer(port_);
    const auto ack = peer.connect(make_connect("again"));
    ASSERT_TRUE(ack.has_value()) << daemon_->output();
    again = ack->return_code == codec::connect_return_code::accepted;
    if (!again) {
      ++refused;
      std::this_thread::sleep_for(20ms);  // the daemon has not seen the closes yet
    }
  }
  EXPECT_TRUE(again) << daemon_->output();

  accepted.clear();
  const auto [status, out] = stop();
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(final_counter(out, "mqtt.refused_fd_reserve"), refused) << out;
  EXPECT_LE(lines_containing(out, "connection_refused reason=fd_reserve"), 3U) << out;
}

TEST_F(lifecycle, module_socket_out_of_descriptors_backs_off_warns_once_and_recovers) {
#if defined(__SANITIZE_ADDRESS__)
  // UBSan's dynamic-type check finds out whether a vtable is readable through a pipe(2), and it
  // reads its suppression file only at its first report: with no descriptor left, every
  // std::error_code comparison is reported as a type error and nothing can silence it. The plain
  // build runs this test.
  GTEST_SKIP() << "sanitizer runtime needs free descriptors";
#endif
  // 64 descriptors and room for 200 module connections: the stream socket's accepts run out of
  // descriptors (EMFILE), which is not fatal.
  start("    moduleSocketMaxConnections: 200\n", {"prlimit", "--nofile=64:64", "--"});
  std::vector<int> held;
  for (int i = 0; i < 100; ++i) {
    const int fd = connect_unix(stream_socket_path());
    if (fd >= 0) held.push_back(fd);
  }
  ASSERT_TRUE(daemon_->wait_for_output("accept_failed")) << daemon_->output();
  // Ten pauses of 100 ms while the descriptors stay used up: one warning, not ten.
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(lines_containing(daemon_->output(), "accept_failed"), 1U) << daemon_->output();
  for (const int fd : held)
    ::close(fd);
  const auto [ctl_status, ctl_out] = run_ctl({"topics"});
  EXPECT_EQ(ctl_status, 0) << ctl_out << daemon_->output();
  const auto [status, out] = stop();
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out.find("fatal"), std::string::npos) << out;
}

TEST_F(lifecycle, module_socket_files_are_created_with_mode_0600) {
  start();
  for (const auto& path : {socket_path(), stream_socket_path()}) {
    struct stat st {};
    ASSERT_EQ(::lstat(path.c_str(), &st), 0) << path;
    EXPECT_TRUE(S_ISSOCK(st.st_mode)) << path;
    EXPECT_EQ(st.st_mode & 07777, 0600U) << path;
  }
  EXPECT_EQ(stop().first, 0);
}

TEST_F(lifecycle, an_ipv6_listener_is_printed_with_brackets) {
  {
    const int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_addr = in6addr_loopback;
    const bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (fd >= 0) ::close(fd);
    if (!ok) GTEST_SKIP() << "no IPv6 loopback here";
  }
  start({}, {}, "[::1]");
  EXPECT_NE(daemon_->output().find("mqtt=tcp://[::1]:" + std::to_string(port_) + " "),
            std::string::npos)
      << daemon_->output();
  EXPECT_EQ(stop().first, 0);
}

TEST_F(lifecycle, client_ids_and_module_names_cannot_forge_a_log_line_or_flood_the_log) {
  const std::string forged = "2026-01-01T00:00:00.000+00:00 info  [daemon] FAKE";
  start();
  {
    mqtt_peer peer(port_);
    (void)peer.connect(make_connect("x\n" + forged));  // accepted or refused: logged either way
  }
  {
    mqtt_peer peer(port_);
    (void)peer.connect(make_connect(std::string(65535, 'a')));
  }
  {
    // A registration with the forged line as the module name (refused: invalid name).
    const int fd = connect_unix(stream_socket_path());
    ASSERT_GE(fd, 0);
    const std::string line =
        R"({"header":{"msg_id":"m1","timestamp":1,"sync":true},"route":{"source":"x\n)" + forged +
        R"(","resource":"module","operation":"add"},"content":""})"
        "\n";
    ASSERT_EQ(::send(fd, line.data(), line.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(line.size()));
    char buf[4096];
    (void)::recv(fd, buf, sizeof buf, 0);  // the error message, or the close
    ::close(fd);
  }
  ASSERT_TRUE(serves_mqtt("after"));
  const auto [status, out] = stop();
  EXPECT_EQ(status, 0);
  EXPECT_NE(out.find("FAKE"), std::string::npos) << "the attempts were not logged at all\n" << out;
  for (const auto& line : lines_of(out)) {
    EXPECT_FALSE(line.starts_with(forged)) << line;
    EXPECT_LE(line.size(), 4096U) << line.substr(0, 200);
  }
}

TEST(daemon_cli, an_unknown_flag_exits_2_with_a_clear_message_and_help_exits_0) {
  process bad({daemon_path, "--no-such-flag"});
  const auto status = bad.wait();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 2) << bad.output();
  EXPECT_NE(bad.output().find("--no-such-flag"), std::string::npos) << bad.output();
  EXPECT_EQ(bad.output().find("ready"), std::string::npos) << bad.output();

  process help({daemon_path, "--help"});
  EXPECT_EQ(help.wait(), 0) << help.output();
  EXPECT_NE(help.output().find("--config"), std::string::npos) << help.output();
}

// --- failures that end the daemon: daemon::serve() in-process, with modules of the test ---

/// A module that throws, or returns, soon after it starts.
class dying_module final : public bus::module {
 public:
  explicit dying_module(bool throws) : throws_(throws) {}
  [[nodiscard]] std::string name() const override { return "fragile"; }
  [[nodiscard]] std::string group() const override { return "fragile"; }
  awaitable<void> run(bus::bus& /*b*/) override {
    asio::steady_timer soon(co_await asio::this_coro::executor, 50ms);
    co_await soon.async_wait(asio::use_awaitable);
    if (throws_) throw std::runtime_error("disk on fire");
  }

 private:
  bool throws_;
};

/// Runs daemon::serve() on a node with `cfg`, after `prepare`; returns (status, log).
std::pair<int, std::string> serve_node(
    config::daemon_config cfg,
    const std::function<void(asio::io_context&, daemon::app&)>& prepare) {
  asio::io_context io(1);
  daemon::app node(io, std::move(cfg));
  prepare(io, node);
  ::testing::internal::CaptureStderr();
  const int status = daemon::serve(io, node);
  return {status, ::testing::internal::GetCapturedStderr()};
}

TEST(daemon_failure, a_module_whose_run_throws_stops_the_daemon_in_order_with_status_1) {
  temp_dir dir;
  auto cfg = node_harness::test_config(config::mqtt_mode::internal, dir);
  const auto [status, out] = serve_node(cfg, [](asio::io_context&, daemon::app& node) {
    node.add_module(std::make_unique<dying_module>(true));
  });
  EXPECT_EQ(status, 1) << out;
  ASSERT_EQ(lines_containing(out, "fatal"), 1U) << out;
  EXPECT_NE(out.find("fatal module fragile threw: disk on fire"), std::string::npos) << out;
  EXPECT_NE(out.find("final_counters"), std::string::npos) << out;
  EXPECT_NE(out.find("stopped exit_status=1"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(cfg.eventbus.module_socket));
  EXPECT_FALSE(std::filesystem::exists(cfg.eventbus.module_stream_socket));
}

TEST(daemon_failure, a_module_whose_run_returns_early_stops_the_daemon_with_status_1) {
  temp_dir dir;
  const auto [status, out] = serve_node(node_harness::test_config(config::mqtt_mode::internal, dir),
                                        [](asio::io_context&, daemon::app& node) {
                                          node.add_module(std::make_unique<dying_module>(false));
                                        });
  EXPECT_EQ(status, 1) << out;
  ASSERT_EQ(lines_containing(out, "fatal"), 1U) << out;
  EXPECT_NE(out.find("fatal module fragile returned before it was stopped"), std::string::npos)
      << out;
}

/// The descriptor of this process's TCP socket listening on `port`; -1 if none.
int listening_socket_on(std::uint16_t port) {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int found = -1;
  while (const dirent* e = ::readdir(d)) {
    const int fd = std::atoi(e->d_name);
    int listening = 0;
    socklen_t len = sizeof listening;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (e->d_name[0] == '.' || ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 ||
        listening == 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0 ||
        addr.ss_family != AF_INET) {
      continue;
    }
    if (ntohs(reinterpret_cast<const sockaddr_in&>(addr).sin_port) == port) found = fd;
  }
  ::closedir(d);
  return found;
}

TEST(daemon_failure, an_mqtt_listener_that_breaks_stops_the_daemon_in_order_with_status_1) {
  temp_dir dir;
  auto cfg = node_harness::test_config(config::mqtt_mode::internal, dir);
  const auto [status, out] = serve_node(cfg, [](asio::io_context& io, daemon::app& node) {
    // Runs once the loop runs, after start(): the listening socket stops listening, so the
    // pending accept fails with EINVAL, an error no retry cures.
    asio::post(io, [&node] {
      const int fd = listening_socket_on(node.internal_broker()->local_endpoint().port());
      ASSERT_GE(fd, 0);
      ::shutdown(fd, SHUT_RDWR);
    });
  });
  EXPECT_EQ(status, 1) << out;
  ASSERT_EQ(lines_containing(out, "fatal"), 1U) << out;
  EXPECT_NE(out.find("fatal mqtt listener tcp://127.0.0.1:0: accept failed"), std::string::npos)
      << out;
  EXPECT_FALSE(std::filesystem::exists(cfg.eventbus.module_socket));
}

TEST(accept_errors, shortages_pause_connection_errors_retry_and_the_rest_end_the_listener) {
  using mqtt::broker::accept_action;
  using mqtt::broker::classify_accept_error;
  // Asio's own category, as its operations report errors, and the standard one.
  for (const auto* category : {&asio::error::get_system_category(), &std::system_category()}) {
    SCOPED_TRACE(category->name());
    const auto err = [&](int e) { return std::error_code(e, *category); };
    for (const int e : {EMFILE, ENFILE, ENOBUFS, ENOMEM})
      EXPECT_EQ(classify_accept_error(err(e)), accept_action::back_off) << e;
    for (const int e : {ECONNABORTED, EPROTO, EHOSTUNREACH, ENETUNREACH, EPERM, EINTR})
      EXPECT_EQ(classify_accept_error(err(e)), accept_action::retry) << e;
    for (const int e : {EBADF, EINVAL, ENOTSOCK, EOPNOTSUPP, EFAULT})
      EXPECT_EQ(classify_accept_error(err(e)), accept_action::fail) << e;
  }
  EXPECT_EQ(classify_accept_error(asio::error::no_descriptors), accept_action::back_off);
  EXPECT_EQ(classify_accept_error(asio::error::connection_aborted), accept_action::retry);
  EXPECT_EQ(classify_accept_error(std::make_error_code(std::errc::invalid_argument)),
            accept_action::fail);  // generic category: not an errno from accept
}

}  // namespace
}  // namespace ebus::test
