// The module sockets end to end (docs/REMOTE.md): a real bus and socket_server on a loop thread,
// clients on plain POSIX sockets in the test thread. Waits for the daemon's state are woken by its
// loop (harness::wait_until), waits for the clients' sockets by poll(); every wait has a deadline
// that only guards against hanging.
#include "remote/socket_server.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <initializer_list>
#include <memory>
#include <optional>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include "bus/bus.hpp"
#include "bus/message_json.hpp"
#include "common/asio.hpp"
#include "common/asio_clock.hpp"
#include "common/log.hpp"
#include "common/memory_budget.hpp"
#include "remote/client.hpp"
#include "remote/sizing.hpp"

namespace ebus::remote {
namespace {

using namespace std::chrono_literals;
using bus::bus_errc;
using sync_result = std::optional<expected<bus::message, std::error_code>>;
using group_sync_result = std::optional<expected<std::vector<bus::message>, std::error_code>>;

std::string make_temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "ebus-remote-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

awaitable<void> request_into(bus::bus& b, std::string to, bus::message m,
                             std::chrono::milliseconds timeout, std::shared_ptr<sync_result> out) {
  *out = co_await b.send_sync(to, std::move(m), timeout);
}

awaitable<void> group_request_into(bus::bus& b, std::string group, bus::message m,
                                   std::chrono::milliseconds timeout,
                                   std::shared_ptr<group_sync_result> out) {
  *out = co_await b.send_to_group_sync(group, std::move(m), timeout);
}

/// A bus and the module sockets in a fresh temporary directory (relative socket paths are taken
/// in it; with neither path set, both sockets in run/), the loop on its own thread. Tests touch
/// the bus and the server only through call().
class harness {
 public:
  explicit harness(socket_options options = {}, bus::bus_options bus_options = {})
      : dir_(make_temp_dir()) {
    if (options.seqpacket_path.empty() && options.stream_path.empty()) {
      options.seqpacket_path = "run/eventbus.sock";
      options.stream_path = "run/eventbus-stream.sock";
    }
    for (auto* path : {&options.seqpacket_path, &options.stream_path}) {
      if (!path->empty() && path->front() != '/') *path = dir_ + "/" + *path;
    }
    if (options.sync_timeout == socket_options{}.sync_timeout) options.sync_timeout = 5s;
    options_ = options;
    bus_ = std::make_unique<bus::bus>(io_.get_executor(), clock_, bus_options);
    server_ = std::make_unique<socket_server>(io_.get_executor(), *bus_, options);
    // The loop state changes only inside handlers: checking after each one sees every change.
    thread_ = std::thread([this] {
      while (io_.run_one() != 0)
        run_checks();
    });
  }

  harness(const harness&) = delete;
  harness& operator=(const harness&) = delete;

  /// Runs `f()` on the loop thread and returns its result.
  template <class F>
  auto call(F&& f) {
    std::packaged_task<decltype(f())()> task(std::forward<F>(f));
    auto result = task.get_future();
    asio::post(io_, [&task] { task(); });
    return result.get();
  }

  /// Waits until `pred()` holds, evaluated on the loop thread now and after every handler the loop
  /// runs (so no polling, and a state that holds only briefly is still seen). `pred` touches the
  /// bus and the server directly and must not call call(). False when it did not hold within
  /// `timeout`, a guard against hanging only.
  template <class Pred>
  bool wait_until(Pred pred, std::chrono::milliseconds timeout = 5s) {
    auto met = std::make_shared<std::promise<void>>();
    auto result = met->get_future();
    const auto id = call([&] {
      const auto n = ++checks_made_;
      if (pred()) {
        met->set_value();
      } else {
        checks_.push_back({n, std::function<bool()>(std::ref(pred)), met});
      }
      return n;
    });
    if (result.wait_for(timeout) == std::future_status::ready) return true;
    // `pred` refers to the caller's frame: gone from the loop before this returns.
    return call([&] {
      std::erase_if(checks_, [&](const check& c) { return c.id == id; });
      return result.wait_for(0s) == std::future_status::ready;
    });
  }

  ~harness() {
    call([this] {
      server_->stop();
      bus_->shutdown();
      return 0;
    });
    // Timers of the bus's clock may be far in the future; their handlers are dropped with io_.
    work_.reset();
    io_.stop();
    thread_.join();
    server_.reset();
    bus_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  expected<void, std::string> start() {
    return call([this] { return server_->start(); });
  }

  /// Starts `bus.send_sync(to, m, timeout)` on the loop; the result fills in when it completes.
  std::shared_ptr<sync_result> send_sync(std::string to, bus::message m,
                                         std::chrono::milliseconds timeout) {
    return spawn_request<sync_result>([&](auto out) {
      return request_into(*bus_, std::move(to), std::move(m), timeout, std::move(out));
    });
  }

  /// Starts `bus.send_to_group_sync(group, m, timeout)` on the loop, as send_sync().
  std::shared_ptr<group_sync_result> send_to_group_sync(std::string group, bus::message m,
                                                        std::chrono::milliseconds timeout) {
    return spawn_request<group_sync_result>([&](auto out) {
      return group_request_into(*bus_, std::move(group), std::move(m), timeout, std::move(out));
    });
  }

  /// Spawns the coroutine `make(out)` on the loop; it fills `out` in when the request completes.
  template <class Result, class Make>
  std::shared_ptr<Result> spawn_request(Make make) {
    auto out = std::make_shared<Result>();
    call([&] {
      asio::co_spawn(io_, make(out), rethrow_handler{});
      return 0;
    });
    return out;
  }

  /// The result of a send_sync() or send_to_group_sync() once it completed within `timeout`.
  template <class Result>
  Result wait(const std::shared_ptr<Result>& r, std::chrono::milliseconds timeout = 5s) {
    wait_until([&] { return r->has_value(); }, timeout);
    return call([&] { return *r; });
  }

  /// A message for local module `name`, waiting up to `timeout` for one to arrive.
  std::optional<bus::message> receive_local(const std::string& name,
                                            std::chrono::milliseconds timeout = 5s) {
    std::optional<bus::message> m;
    wait_until(
        [&] {
          m = bus_->try_receive(name);
          return m.has_value();
        },
        timeout);
    return m;
  }

  socket_stats stats() {
    return call([this] { return server_->stats(); });
  }

  std::size_t connections() {
    return call([this] { return server_->connection_count(); });
  }

  bus::bus& bus() { return *bus_; }
  socket_server& server() { return *server_; }
  const socket_options& options() const { return options_; }
  const std::string& dir() const { return dir_; }
  [[nodiscard]] std::string path(bool stream) const {
    return stream ? options_.stream_path : options_.seqpacket_path;
  }

 private:
  std::string dir_;
  socket_options options_;
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  asio_clock clock_{io_.get_executor()};
  std::unique_ptr<bus::bus> bus_;
  std::unique_ptr<socket_server> server_;
  // wait_until()'s conditions not met yet; loop thread only.
  struct check {
    std::uint64_t id;
    std::function<bool()> pred;
    std::shared_ptr<std::promise<void>> met;
  };
  std::vector<check> checks_;
  std::uint64_t checks_made_ = 0;
  std::thread thread_;

  void run_checks() {
    std::erase_if(checks_, [](const check& c) {
      if (!c.pred()) return false;
      c.met->set_value();
      return true;
    });
  }
};

/// One read from a peer: a message's bytes, nothing within the timeout, or the end.
struct reading {
  enum class status { data, timeout, closed };
  status state = status::timeout;
  std::string bytes;
};

/// A client on plain POSIX sockets: SEQPACKET (one message per packet) or stream (one per line).
class peer {
 public:
  peer(const std::string& path, bool stream) : stream_(stream) {
    fd_ = ::socket(AF_UNIX, (stream ? SOCK_STREAM : SOCK_SEQPACKET) | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
      const std::string error = std::strerror(errno);
      ::close(fd_);
      throw std::runtime_error("connect " + path + ": " + error);
    }
  }
  peer(const peer&) = delete;
  peer& operator=(const peer&) = delete;
  ~peer() { close(); }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  /// On a stream socket, reads at most `bytes` per recv(): one large recv() keeps copying for as
  /// long as the daemon refills the socket, so it can take far more than the socket holds.
  void read_at_most(std::size_t bytes) { stream_read_ = std::min(bytes, chunk_size); }

  /// Writes `bytes` as one packet (SEQPACKET) or as they are (stream); false on error.
  bool send_raw(std::string_view bytes) {
    while (!bytes.empty()) {
      const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  bool send(const bus::message& m) { return send_raw(bus::to_json(m) + "\n"); }

  reading receive_raw(std::chrono::milliseconds timeout = 5s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (stream_) {
        if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
          reading r{reading::status::data, buffer_.substr(0, nl)};
          buffer_.erase(0, nl + 1);
          return r;
        }
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return {};
      if (!chunk_) chunk_ = std::make_unique_for_overwrite<char[]>(chunk_size);
      const auto n = ::recv(fd_, chunk_.get(), stream_ ? stream_read_ : chunk_size, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return {reading::status::closed, {}};
      if (!stream_) {
        std::string packet(chunk_.get(), static_cast<std::size_t>(n));
        if (!packet.empty() && packet.back() == '\n') packet.pop_back();
        return {reading::status::data, std::move(packet)};
      }
      buffer_.append(chunk_.get(), static_cast<std::size_t>(n));
    }
  }

  /// The next message; fails the test on timeout, close or bad JSON.
  bus::message receive(std::chrono::milliseconds timeout = 5s) {
    const auto r = receive_raw(timeout);
    EXPECT_EQ(r.state, reading::status::data);
    auto m = bus::from_json(r.bytes);
    EXPECT_TRUE(m) << r.bytes;
    return m ? *m : bus::message{};
  }

  /// True when the daemon closes the connection within `timeout` (messages before are skipped).
  bool closed_by_daemon(std::chrono::milliseconds timeout = 5s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto r = receive_raw(std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now()));
      if (r.state == reading::status::closed) return true;
      if (r.state == reading::status::timeout) return false;
    }
  }

  /// Registers `name` in `group` ("" = beehive's request, content "") and returns the reply.
  bus::message register_as(const std::string& name, const std::string& group = {}) {
    auto m = bus::new_message();
    m.header.sync = true;
    bus::build_router(m, name, "", "module", "add");
    m.content = group.empty() ? bus::content::text("")
                              : bus::content::json(nlohmann::json{{"group", group}});
    last_id_ = m.header.id;
    EXPECT_TRUE(send(m));
    return receive();
  }

  [[nodiscard]] const std::string& last_id() const noexcept { return last_id_; }

 private:
  int fd_ = -1;
  bool stream_;
  std::string buffer_;
  static constexpr std::size_t chunk_size = std::size_t{8} * 1024 * 1024;
  std::unique_ptr<char[]> chunk_;  // one read, allocated once
  std::size_t stream_read_ = chunk_size;
  std::string last_id_;
};

bus::message make_message(std::string destination, std::string content, bool sync = false) {
  auto m = bus::new_message();
  bus::build_router(m, "", "", "res", "publish");
  m.route.destination = std::move(destination);
  m.header.sync = sync;
  m.content = bus::content::text(std::move(content));
  return m;
}

/// Sends numbered messages to "remote" until the bus refuses one (at most `limit`): how many were
/// taken, and the refusal.
std::pair<int, std::error_code> send_until_refused(harness& h, const std::string& payload,
                                                   int limit) {
  for (int i = 0; i < limit; ++i) {
    const auto sent = h.call(
        [&] { return h.bus().send("remote", make_message("", std::to_string(i) + payload)); });
    if (!sent) return {i, sent.error()};
  }
  return {limit, {}};
}

std::string text_of(const bus::message& m) {
  return m.content.bytes();
}

/// Captures what one logger writes while it lives. Made before the harness (whose loop thread
/// logs) and destroyed after it.
class captured_log {
 public:
  explicit captured_log(const std::string& logger) : logger_(log::get(logger)) {
    sink_->set_pattern("%v");
    logger_->sinks().push_back(sink_);
  }
  captured_log(const captured_log&) = delete;
  captured_log& operator=(const captured_log&) = delete;
  ~captured_log() { logger_->sinks().pop_back(); }

  /// True when a line contains every one of `parts`.
  [[nodiscard]] bool has(std::initializer_list<std::string_view> parts) const {
    for (const auto& line : sink_->last_formatted()) {
      if (std::all_of(parts.begin(), parts.end(),
                      [&](std::string_view p) { return line.find(p) != std::string::npos; })) {
        return true;
      }
    }
    return false;
  }

 private:
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_ =
      std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
};

// Every behaviour on both sockets: false = SEQPACKET, true = stream.
class remote_module : public ::testing::TestWithParam<bool> {
 protected:
  [[nodiscard]] bool stream() const { return GetParam(); }
};

std::string socket_name(const ::testing::TestParamInfo<bool>& p) {
  return p.param ? "stream" : "seqpacket";
}

INSTANTIATE_TEST_SUITE_P(both, remote_module, ::testing::Values(false, true), socket_name);

// --- registration ----------------------------------------------------------------------------

TEST_P(remote_module, registration_reply_lists_modules_and_groups) {
  harness h;
  ASSERT_TRUE(h.call([&] { return h.bus().add_module("eventbus", "bus").has_value(); }));
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  const auto reply = p.register_as("my-twin", "twin");
  EXPECT_EQ(reply.route.operation, "response");
  EXPECT_EQ(reply.header.parent_id, p.last_id());
  EXPECT_EQ(reply.route.destination, "my-twin");
  EXPECT_EQ(reply.content.json_value(),
            nlohmann::json::parse(R"({"modules":["eventbus","my-twin"],)"
                                  R"("groups":{"bus":["eventbus"],"twin":["my-twin"]}})"));
  const auto modules = h.call([&] { return h.bus().modules(); });
  ASSERT_EQ(modules.size(), 2u);
  EXPECT_EQ(modules[1].name, "my-twin");
  EXPECT_TRUE(modules[1].remote);
  EXPECT_EQ(h.stats().registered, 1u);
  EXPECT_EQ(h.stats().accepted, 1u);
}

TEST_P(remote_module, beehive_registration_joins_group_named_after_module) {
  harness h;
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  const auto reply = p.register_as("edged");
  EXPECT_EQ(reply.route.operation, "response");
  EXPECT_EQ(h.call([&] { return h.bus().group_members("edged"); }),
            std::vector<std::string>{"edged"});
}

TEST_P(remote_module, taken_name_is_refused_with_error_then_closed) {
  harness h;
  ASSERT_TRUE(h.call([&] { return h.bus().add_module("eventbus", "bus").has_value(); }));
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  const auto reply = p.register_as("eventbus");
  EXPECT_EQ(reply.route.operation, "error");
  EXPECT_EQ(reply.header.parent_id, p.last_id());
  EXPECT_NE(text_of(reply).find("in use"), std::string::npos) << text_of(reply);
  EXPECT_TRUE(p.closed_by_daemon());
  // The in-process module of that name is untouched.
  EXPECT_TRUE(h.call([&] { return h.bus().has_module("eventbus"); }));
  EXPECT_TRUE(h.wait_until([&] { return h.server().connection_count() == 0; }));
}

TEST_P(remote_module, first_message_that_is_not_a_registration_is_refused) {
  harness h;
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  auto m = make_message("eventbus", "hello");
  ASSERT_TRUE(p.send(m));
  const auto reply = p.receive();
  EXPECT_EQ(reply.route.operation, "error");
  EXPECT_EQ(reply.header.parent_id, m.header.id);
  EXPECT_NE(text_of(reply).find("not a registration"), std::string::npos) << text_of(reply);
  EXPECT_TRUE(p.closed_by_daemon());
}

TEST_P(remote_module, invalid_name_is_refused) {
  harness h;
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  const auto reply = p.register_as("bad name");
  EXPECT_EQ(reply.route.operation, "error");
  EXPECT_NE(text_of(reply).find("invalid module name"), std::string::npos) << text_of(reply);
  EXPECT_TRUE(p.closed_by_daemon());
  EXPECT_EQ(h.stats().registered, 0u);
}

TEST_P(remote_module, group_backlog_follows_the_registration_reply) {
  harness h({}, bus::bus_options{.group_backlog = 10});
  ASSERT_TRUE(h.call([&] {
    h.bus().declare_group("twin");
    return h.bus().send_to_group("twin", make_message("", "kept-1")).has_value() &&
           h.bus().send_to_group("twin", make_message("", "kept-2")).has_value();
  }));
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  EXPECT_EQ(p.register_as("my-twin", "twin").route.operation, "response");
  const auto first = p.receive();
  const auto second = p.receive();
  EXPECT_EQ(text_of(first), "kept-1");
  EXPECT_EQ(text_of(second), "kept-2");
  EXPECT_EQ(first.route.destination, "my-twin");
}

// --- socket files ----------------------------------------------------------------------------

TEST(socket_files, created_with_mode_0600_in_a_new_directory_and_removed_on_stop) {
  harness h;
  ASSERT_TRUE(h.start()) << "start";
  for (const bool stream : {false, true}) {
    struct stat st {};
    ASSERT_EQ(::stat(h.path(stream).c_str(), &st), 0) << h.path(stream);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u) << h.path(stream);
  }
  h.call([&] {
    h.server().stop();
    return 0;
  });
  EXPECT_FALSE(std::filesystem::exists(h.path(false)));
  EXPECT_FALSE(std::filesystem::exists(h.path(true)));
}

TEST(socket_files, stale_socket_file_is_replaced) {
  harness h;
  std::filesystem::create_directories(h.dir() + "/run");
  for (const bool stream : {false, true}) {
    // A socket file nobody listens on, as a crashed daemon leaves behind.
    const int fd = ::socket(AF_UNIX, stream ? SOCK_STREAM : SOCK_SEQPACKET, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, h.path(stream).data(), h.path(stream).size());
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
  }
  ASSERT_TRUE(h.start());
  peer p(h.path(false), false);
  EXPECT_EQ(p.register_as("m").route.operation, "response");
}

TEST(socket_files, file_that_is_not_a_socket_is_an_error_naming_the_path) {
  harness h;
  std::filesystem::create_directories(h.dir() + "/run");
  std::ofstream(h.path(true)) << "not a socket";
  const auto started = h.start();
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().find(h.path(true)), std::string::npos) << started.error();
  // Nothing is left listening, and the first socket's file is gone again.
  EXPECT_FALSE(std::filesystem::exists(h.path(false)));
  EXPECT_TRUE(std::filesystem::exists(h.path(true)));  // not ours: left alone
}

TEST(socket_files, socket_of_a_running_daemon_is_not_taken_over) {
  harness first;
  ASSERT_TRUE(first.start());
  socket_options options;
  options.seqpacket_path = first.path(false);
  options.stream_path = "";
  harness second(options);
  const auto started = second.start();
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().find("another process"), std::string::npos) << started.error();
  peer p(first.path(false), false);  // the first daemon still serves it
  EXPECT_EQ(p.register_as("m").route.operation, "response");
}

TEST(socket_files, empty_path_disables_that_socket) {
  socket_options options;
  options.seqpacket_path = "only.sock";
  options.stream_path = "";
  harness h(options);
  ASSERT_TRUE(h.start());
  EXPECT_TRUE(std::filesystem::exists(h.dir() + "/only.sock"));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(h.dir()),
                          std::filesystem::directory_iterator()),
            1);
}

// --- messages --------------------------------------------------------------------------------

TEST_P(remote_module, in_process_module_sends_to_remote_and_to_its_group) {
  harness h;
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  ASSERT_EQ(p.register_as("remote", "twin").route.operation, "response");
  auto sent = make_message("", "direct");
  sent.route.source = "eventbus";
  ASSERT_TRUE(h.call([&] { return h.bus().send("remote", sent).has_value(); }));
  auto got = p.receive();
  EXPECT_EQ(text_of(got), "direct");
  EXPECT_EQ(got.header.id, sent.header.id);
  EXPECT_EQ(got.route.source, "eventbus");
  EXPECT_EQ(got.route.destination, "remote");
  ASSERT_EQ(h.call([&] { return h.bus().send_to_group("twin", make_message("", "grouped")); }), 1u);
  got = p.receive();
  EXPECT_EQ(text_of(got), "grouped");
  EXPECT_EQ(got.route.destination, "remote");
  // With the registration reply; counted once the write completed.
  EXPECT_TRUE(h.wait_until([&] { return h.server().stats().messages_out == 3u; }));
}

TEST_P(remote_module, remote_sends_to_module_and_to_group) {
  harness h;
  ASSERT_TRUE(h.call([&] {
    return h.bus().add_module("local", "lg").has_value() &&
           h.bus().add_module("other", "lg").has_value();
  }));
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  ASSERT_EQ(p.register_as("remote").route.operation, "response");
  ASSERT_TRUE(p.send(make_message("local", "to-module")));
  auto got = h.receive_local("local");
  ASSERT_TRUE(got);
  EXPECT_EQ(text_of(*got), "to-module");
  EXPECT_EQ(got->route.source, "remote");  // filled in when the client leaves it empty
  ASSERT_TRUE(p.send(make_message("group:lg", "to-group")));
  for (const char* name : {"local", "other"}) {
    got = h.receive_local(name);
    ASSERT_TRUE(got) << name;
    EXPECT_EQ(text_of(*got), "to-group");
  }
  EXPECT_EQ(h.stats().errors_returned, 0u);
}

TEST_P(remote_module, remote_send_sync_gets_the_modules_response) {
  harness h;
  ASSERT_TRUE(h.call([&] { return h.bus().add_module("local").has_value(); }));
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  ASSERT_EQ(p.register_as("remote").route.operation, "response");
  const auto request = make_message("local", "ping", true);
  ASSERT_TRUE(p.send(request));
  const auto got = h.receive_local("local");
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->header.sync);
  EXPECT_EQ(got->header.id, request.header.id);
  ASSERT_TRUE(h.call(
      [&] { return h.bus().send_resp(bus::new_response(*got, bus::content::text("pong"))); }));
  const auto reply = p.receive();
  EXPECT_EQ(reply.route.operation, "response");
  EXPECT_EQ(reply.header.parent_id, request.header.id);
  EXPECT_EQ(text_of(reply), "pong");
}

TEST_P(remote_module, remote_send_sync_to_group_gets_one_response_per_member) {
  harness h;
  ASSERT_TRUE(h.call([&] {
    return h.bus().add_module("a", "g").has_value() && h.bus().add_module("b", "g").has_value();
  }));
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  ASSERT_EQ(p.register_as("remote").route.operation, "response");
  const auto request = make_message("group:g", "ping", true);
  ASSERT_TRUE(p.send(request));
  for (const char* name : {"a", "b"}) {
    const auto got = h.receive_local(name);
    ASSERT_TRUE(got) << name;
    ASSERT_TRUE(h.call(
        [&] { return h.bus().send_resp(bus::new_response(*got, bus::content::text(name))); }));
  }
  std::vector<std::string> answers;
  for (int i = 0; i < 2; ++i) {
    const auto reply = p.receive();
    EXPECT_EQ(reply.header.parent_id, request.header.id);
    answers.push_back(text_of(reply));
  }
  EXPECT_EQ(answers, (std::vector<std::string>{"a", "b"}));
}

TEST_P(remote_module, in_process_send_sync_to_remote_gets_its_answer) {
  harness h;
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  ASSERT_EQ(p.register_as("remote").route.operation, "response");
  auto request = make_message("", "question");
  request.route.source = "eventbus";
  const auto result = h.send_sync("remote", request, 5s);
  const auto got = p.receive();
  EXPECT_TRUE(got.header.sync);
  EXPECT_EQ(got.header.id, request.header.id);
  EXPECT_EQ(text_of(got), "question");
  // beehive NewRespByMessage: no destination; the parent id is what matters.
  ASSERT_TRUE(p.send(bus::new_response(got, bus::content::text("answer"))));
  const auto r = h.wait(result);
  ASSERT_TRUE(r && *r) << (r ? r->error().message() : "no result");
  EXPECT_EQ(text_of(**r), "answer");
  EXPECT_EQ((*r)->header.parent_id, request.header.id);

  // A response that names a destination is still a response.
  const auto second = h.send_sync("remote", make_message("", "again"), 5s);
  auto response = bus::new_response(p.receive(), bus::content::text("answer-2"));
  response.route.destination = "eventbus";
  ASSERT_TRUE(p.send(response));
  const auto r2 = h.wait(second);
  ASSERT_TRUE(r2 && *r2);
  EXPECT_EQ(text_of(**r2), "answer-2");
  EXPECT_EQ(h.stats().errors_returned, 0u);
}

TEST_P(remote_module, undeliverable_messages_are_answered_with_the_reason) {
  socket_options options;
  options.sync_timeout = 200ms;
  harness h(options);
  ASSERT_TRUE(h.call([&] { return h.bus().add_module("silent").has_value(); }));
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  ASSERT_EQ(p.register_as("remote").route.operation, "response");

  const auto expect_error = [&](const bus::message& sent, const std::string& reason) {
    ASSERT_TRUE(p.send(sent));
    const auto reply = p.receive();
    EXPECT_EQ(reply.route.operation, "error") << reason;
    EXPECT_EQ(reply.header.parent_id, sent.header.id) << reason;
    EXPECT_EQ(text_of(reply), reason);
    EXPECT_EQ(reply.route.destination, "remote");
  };
  expect_error(make_message("nobody", "x"), "no_route");
  expect_error(make_message("group:nobody", "x"), "no_route");
  expect_error(make_message("", "x"), "no_route");
  expect_error(make_message("nobody", "x", true), "no_route");
  expect_error(make_message("silent", "x", true), "timeout");
  // A response to nothing the daemon asked.
  auto late = make_message("", "late");
  late.header.parent_id = "0b5e7a3c-0000-4000-8000-000000000000";
  late.route.operation = "response";
  expect_error(late, "no_pending_request");
  EXPECT_EQ(h.stats().errors_returned, 6u);
}

TEST_P(remote_module, sync_requests_beyond_the_queue_capacity_are_refused) {
  socket_options options;
  options.outbound_capacity = 2;
  harness h(options);
  ASSERT_TRUE(h.call([&] { return h.bus().add_module("silent").has_value(); }));
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  ASSERT_EQ(p.register_as("remote").route.operation, "response");
  ASSERT_TRUE(p.send(make_message("silent", "1", true)));
  ASSERT_TRUE(p.send(make_message("silent", "2", true)));
  const auto third = make_message("silent", "3", true);
  ASSERT_TRUE(p.send(third));
  const auto reply = p.receive();
  EXPECT_EQ(reply.header.parent_id, third.header.id);
  EXPECT_EQ(text_of(reply), "queue_full");
  // Answering one makes room again.
  const auto first = h.receive_local("silent");
  ASSERT_TRUE(first);
  ASSERT_TRUE(h.call(
      [&] { return h.bus().send_resp(bus::new_response(*first, bus::content::text("ok"))); }));
  EXPECT_EQ(text_of(p.receive()), "ok");
  const auto fourth = make_message("silent", "4", true);
  ASSERT_TRUE(p.send(fourth));
  EXPECT_EQ(p.receive_raw(200ms).state, reading::status::timeout);  // waiting, not refused
}

TEST_P(remote_module, malformed_json_closes_only_that_connection) {
  harness h;
  ASSERT_TRUE(h.start());
  peer bad(h.path(stream()), stream());
  peer good(h.path(stream()), stream());
  ASSERT_EQ(bad.register_as("bad").route.operation, "response");
  ASSERT_EQ(good.register_as("good").route.operation, "response");
  ASSERT_TRUE(bad.send_raw("{\"header\": nope\n"));
  EXPECT_TRUE(bad.closed_by_daemon());
  EXPECT_TRUE(h.wait_until([&] { return !h.bus().has_module("bad"); }));
  EXPECT_EQ(h.stats().closed_protocol, 1u);
  ASSERT_TRUE(good.send(make_message("good", "still here")));
  EXPECT_EQ(text_of(good.receive()), "still here");
}

TEST_P(remote_module, json_that_is_not_a_beehive_message_closes_the_connection) {
  harness h;
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  ASSERT_TRUE(p.send_raw("[1,2,3]\n"));
  EXPECT_TRUE(p.closed_by_daemon());
  EXPECT_EQ(h.stats().closed_protocol, 1u);
}

TEST_P(remote_module, oversized_message_closes_the_connection) {
  socket_options options;
  options.max_message_bytes = 1024;
  harness h(options);
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  ASSERT_EQ(p.register_as("remote").route.operation, "response");

  // Exactly the limit is accepted.
  auto fits = make_message("remote", "");  // to itself: it comes back unchanged
  fits.route.source = "remote";
  const auto base = bus::to_json(fits).size();
  fits.content = bus::content::text(std::string(1024 - base, 'x'));
  ASSERT_EQ(bus::to_json(fits).size(), 1024u);
  ASSERT_TRUE(p.send(fits));
  EXPECT_EQ(p.receive().header.id, fits.header.id);

  // One byte more closes, on the stream socket before the '\n' arrives.
  auto big = fits;
  big.content = bus::content::text(std::string(1025 - base, 'x'));
  ASSERT_TRUE(p.send_raw(bus::to_json(big)));
  EXPECT_TRUE(p.closed_by_daemon());
  EXPECT_EQ(h.stats().closed_protocol, 1u);
  EXPECT_FALSE(h.call([&] { return h.bus().has_module("remote"); }));
}

TEST_P(remote_module, message_too_large_for_the_client_is_refused_to_the_sender) {
  socket_options options;
  options.max_message_bytes = 1024;
  harness h(options);
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  ASSERT_EQ(p.register_as("remote").route.operation, "response");
  const auto sent =
      h.call([&] { return h.bus().send("remote", make_message("", std::string(2000, 'x'))); });
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error(), bus_errc::too_large);
  EXPECT_EQ(h.stats().too_large, 1u);
  EXPECT_EQ(h.call([&] { return h.bus().stats().too_large; }), 1u);
  const auto connections = h.call([&] { return h.server().connections(); });
  ASSERT_EQ(connections.size(), 1u);
  EXPECT_EQ(connections[0].stats.too_large, 1u);
  EXPECT_EQ(connections[0].module, "remote");
  EXPECT_EQ(p.receive_raw(100ms).state, reading::status::timeout);
}

TEST(socket_server, connections_over_the_limit_get_an_error_and_are_closed) {
  socket_options options;
  options.max_connections = 2;
  harness h(options);
  ASSERT_TRUE(h.start());
  auto a = std::make_unique<peer>(h.path(false), false);
  peer b(h.path(true), true);
  ASSERT_EQ(a->register_as("a").route.operation, "response");
  ASSERT_EQ(b.register_as("b").route.operation, "response");
  for (const bool stream : {false, true}) {
    peer over(h.path(stream), stream);
    const auto reply = over.receive();
    EXPECT_EQ(reply.route.operation, "error");
    EXPECT_EQ(text_of(reply), "too many connections");
    EXPECT_TRUE(over.closed_by_daemon());
  }
  EXPECT_EQ(h.stats().refused, 2u);
  EXPECT_EQ(h.connections(), 2u);
  // A slot that frees up is taken again.
  a.reset();
  ASSERT_TRUE(h.wait_until([&] { return h.server().connection_count() == 1; }));
  peer c(h.path(false), false);
  EXPECT_EQ(c.register_as("c").route.operation, "response");
}

TEST(socket_server, peers_whose_user_and_group_are_not_allowed_are_refused) {
  // The kernel's credentials of this test process: another uid only is allowed first.
  socket_options options;
  const auto uid = static_cast<std::uint32_t>(::geteuid());
  const auto gid = static_cast<std::uint32_t>(::getegid());
  options.allowed_peers = socket_options::peer_policy{{uid + 1}, {gid + 1}};
  {
    harness h(options);
    ASSERT_TRUE(h.start());
    for (const bool stream : {false, true}) {
      peer refused(h.path(stream), stream);
      const auto reply = refused.receive();
      EXPECT_EQ(reply.route.operation, "error");
      EXPECT_EQ(text_of(reply), "permission denied");
      EXPECT_TRUE(refused.closed_by_daemon());
    }
    EXPECT_EQ(h.stats().refused_peer, 2u);
    EXPECT_EQ(h.stats().accepted, 0u);
  }
  // Allowed by its user id, then by its group id alone.
  for (const auto& allowed :
       {socket_options::peer_policy{{uid}, {}}, socket_options::peer_policy{{uid + 1}, {gid}}}) {
    options.allowed_peers = allowed;
    harness h(options);
    ASSERT_TRUE(h.start());
    peer p(h.path(false), false);
    EXPECT_EQ(p.register_as("allowed").route.operation, "response");
    EXPECT_EQ(h.stats().refused_peer, 0u);
  }
}

TEST(socket_files, created_with_the_configured_mode_for_other_peers) {
  socket_options options;
  options.file_mode = 0666;
  harness h(options);
  ASSERT_TRUE(h.start());
  for (const bool stream : {false, true}) {
    struct stat st {};
    ASSERT_EQ(::stat(h.path(stream).c_str(), &st), 0) << h.path(stream);
    EXPECT_EQ(st.st_mode & 0777, 0666u) << h.path(stream);
  }
}

TEST_P(remote_module, disconnect_fails_pending_request_with_module_removed_at_once) {
  harness h;
  ASSERT_TRUE(h.start());
  auto p = std::make_unique<peer>(h.path(stream()), stream());
  ASSERT_EQ(p->register_as("remote").route.operation, "response");
  const auto result = h.send_sync("remote", make_message("", "question"), 30s);
  EXPECT_TRUE(p->receive().header.sync);
  p.reset();
  // Well before the request's own 30 s deadline, and with module_removed, not timeout.
  const auto r = h.wait(result, 5s);
  ASSERT_TRUE(r);
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error(), bus_errc::module_removed);
  EXPECT_FALSE(h.call([&] { return h.bus().has_module("remote"); }));
  const auto after = h.call([&] { return h.bus().send("remote", make_message("", "x")); });
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error(), bus_errc::no_route);
}

TEST_P(remote_module, group_request_fails_at_once_when_a_member_disconnects_before_answering) {
  harness h;
  ASSERT_TRUE(h.start());
  peer a(h.path(stream()), stream());
  auto b = std::make_unique<peer>(h.path(stream()), stream());
  ASSERT_EQ(a.register_as("a", "pair").route.operation, "response");
  ASSERT_EQ(b->register_as("b", "pair").route.operation, "response");
  const auto result = h.send_to_group_sync("pair", make_message("", "question"), 30s);
  const auto asked = a.receive();
  EXPECT_TRUE(b->receive().header.sync);
  ASSERT_TRUE(a.send(bus::new_response(asked, bus::content::text("from a"))));
  b.reset();
  const auto r = h.wait(result, 5s);
  ASSERT_TRUE(r);
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error(), bus_errc::module_removed);
}

TEST_P(remote_module, group_request_keeps_the_answer_of_a_member_that_disconnects_after_it) {
  harness h;
  ASSERT_TRUE(h.start());
  auto a = std::make_unique<peer>(h.path(stream()), stream());
  peer b(h.path(stream()), stream());
  ASSERT_EQ(a->register_as("a", "pair").route.operation, "response");
  ASSERT_EQ(b.register_as("b", "pair").route.operation, "response");
  const auto result = h.send_to_group_sync("pair", make_message("", "question"), 30s);
  ASSERT_TRUE(a->send(bus::new_response(a->receive(), bus::content::text("from a"))));
  const auto asked_b = b.receive();
  a.reset();
  ASSERT_TRUE(h.wait_until([&] { return !h.bus().has_module("a"); }));
  EXPECT_FALSE(h.call([&] { return result->has_value(); }));
  ASSERT_TRUE(b.send(bus::new_response(asked_b, bus::content::text("from b"))));
  const auto r = h.wait(result, 5s);
  ASSERT_TRUE(r);
  ASSERT_TRUE(*r) << r->error().message();
  std::vector<std::string> answers;
  for (const auto& m : **r)
    answers.push_back(text_of(m));
  EXPECT_EQ(answers, (std::vector<std::string>{"from a", "from b"}));
}

TEST_P(remote_module, slow_remote_fills_its_queue_and_senders_get_queue_full) {
  socket_options options;
  options.outbound_capacity = 8;
  harness h(options);
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  ASSERT_EQ(p.register_as("remote").route.operation, "response");
  // The client reads nothing now. The kernel's buffers take some messages, the queue 8 more,
  // then the bus refuses without blocking the loop.
  const std::string payload(4096, 'p');
  const auto [accepted, refusal] = send_until_refused(h, payload, 10000);
  EXPECT_EQ(refusal, bus_errc::queue_full);
  EXPECT_GE(accepted, 8);
  // The loop still serves everyone else.
  EXPECT_TRUE(h.call([&] { return h.bus().add_module("local").has_value(); }));
  // Once the client reads, it gets every accepted message, in order.
  for (int i = 0; i < accepted; ++i) {
    const auto m = p.receive();
    ASSERT_EQ(text_of(m), std::to_string(i) + payload);
  }
  EXPECT_EQ(p.receive_raw(100ms).state, reading::status::timeout);
}

TEST(socket_server, stop_unregisters_every_remote_module_and_closes_clients) {
  harness h;
  ASSERT_TRUE(h.start());
  peer a(h.path(false), false);
  peer b(h.path(true), true);
  ASSERT_EQ(a.register_as("a").route.operation, "response");
  ASSERT_EQ(b.register_as("b").route.operation, "response");
  h.call([&] {
    h.server().stop();
    return 0;
  });
  EXPECT_EQ(h.connections(), 0u);
  EXPECT_FALSE(h.call([&] { return h.bus().has_module("a") || h.bus().has_module("b"); }));
  EXPECT_TRUE(a.closed_by_daemon());
  EXPECT_TRUE(b.closed_by_daemon());
}

// --- bounds, hand-over pacing, message sizes -------------------------------------------------

// --- the library client (remote::bus_client), which takes many messages per read ------------

TEST_P(remote_module, bus_client_takes_a_burst_whole_and_in_order) {
  harness h;
  ASSERT_TRUE(h.start());
  auto c = bus_client::connect(h.path(stream()), "remote", "twin", stream());
  ASSERT_TRUE(c) << c.error();
  constexpr int count = 500;  // many reads' worth: SEQPACKET slots, stream read chunks
  ASSERT_TRUE(h.call([&] {
    for (int i = 0; i < count; ++i) {
      if (!h.bus().send("remote", make_message("", "m-" + std::to_string(i)))) return false;
    }
    return true;
  }));
  for (int i = 0; i < count; ++i) {
    auto m = c->receive(5s);
    ASSERT_TRUE(m) << m.error();
    ASSERT_TRUE(*m) << "message " << i;
    ASSERT_EQ(text_of(**m), "m-" + std::to_string(i));
    EXPECT_EQ((*m)->route.destination, "remote");
  }
  const auto none = c->receive(100ms);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
}

TEST_P(remote_module, bus_client_receives_into_one_message_overwritten_whole_each_time) {
  harness h;
  ASSERT_TRUE(h.start());
  auto c = bus_client::connect(h.path(stream()), "remote", "twin", stream());
  ASSERT_TRUE(c) << c.error();
  // Each message leaves fields that the next one does not have: a parent id, a JSON content, a
  // long text; each received message must be the one sent, nothing of the one before.
  std::vector<bus::message> sent;
  auto with_parent = make_message("", std::string(300, 'p'));
  with_parent.header.parent_id = "parent-1";
  with_parent.route.group = "g";
  sent.push_back(with_parent);
  auto json = make_message("", "");
  json.content = bus::content::json(nlohmann::json{{"k", 1}});
  sent.push_back(json);
  sent.push_back(make_message("", "short"));
  ASSERT_TRUE(h.call([&] {
    return std::all_of(sent.begin(), sent.end(), [&](const bus::message& m) {
      return h.bus().send("remote", m).has_value();
    });
  }));
  bus::message m;
  for (const auto& want : sent) {
    const auto got = c->receive_into(m, 5s);
    ASSERT_TRUE(got) << got.error();
    ASSERT_TRUE(*got);
    EXPECT_EQ(m.header.id, want.header.id);
    EXPECT_EQ(m.header.parent_id, want.header.parent_id);
    EXPECT_EQ(m.route.group, want.route.group);
    EXPECT_EQ(m.route.destination, "remote");
    EXPECT_EQ(m.content, want.content);
  }
  const auto none = c->receive_into(m, 100ms);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
}

// Sends `contents` to module "remote" from the loop, and checks that `c` receives them, in order.
void send_and_receive_in_order(harness& h, bus_client& c,
                               const std::vector<std::string>& contents) {
  ASSERT_TRUE(h.call([&] {
    return std::all_of(contents.begin(), contents.end(), [&](const std::string& text) {
      return h.bus().send("remote", make_message("", text)).has_value();
    });
  }));
  for (const auto& expected : contents) {
    auto m = c.receive(5s);
    ASSERT_TRUE(m) << m.error();
    ASSERT_TRUE(*m);
    ASSERT_EQ(text_of(**m), expected);
    EXPECT_EQ((*m)->route.destination, "remote");
  }
}

TEST_P(remote_module, batched_bus_client_takes_a_burst_with_large_messages_whole_and_in_order) {
  harness h;
  ASSERT_TRUE(h.start());
  auto c = bus_client::connect(h.path(stream()), "remote", "twin", stream(), 5s,
                               packet_framing::batched);
  ASSERT_TRUE(c) << c.error();
  // Small messages share packets; one larger than a packet's share goes alone, between them.
  const std::string large(100 * 1024, 'L');
  std::vector<std::string> contents;
  for (int i = 0; i < 600; ++i)
    contents.push_back(i % 200 == 100 ? large + std::to_string(i) : "m-" + std::to_string(i));
  send_and_receive_in_order(h, *c, contents);
  const auto none = c->receive(100ms);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  // Messages are counted as messages, not packets: the reply and the 600.
  EXPECT_TRUE(h.wait_until([&] { return h.server().stats().messages_out == 601u; }))
      << h.server().stats().messages_out;
}

TEST_P(remote_module, bus_client_takes_messages_larger_than_one_read_between_small_ones) {
  harness h;
  ASSERT_TRUE(h.start());
  // More than a stream read and than what a SEQPACKET slot keeps after use.
  const std::string large(200 * 1024, 'L');
  ASSERT_GE(h.server().packet_limit(), large.size() + 1024);
  auto c = bus_client::connect(h.path(stream()), "remote", "", stream());
  ASSERT_TRUE(c) << c.error();
  const std::vector<std::string> contents = {"first", large, "between", large + "2", "last"};
  send_and_receive_in_order(h, *c, contents);
}

TEST_P(remote_module, bus_client_reports_the_daemon_closing_after_the_messages_before_it) {
  harness h;
  ASSERT_TRUE(h.start());
  auto c = bus_client::connect(h.path(stream()), "remote", "", stream());
  ASSERT_TRUE(c) << c.error();
  ASSERT_TRUE(h.call([&] {
    return h.bus().send("remote", make_message("", "one")).has_value() &&
           h.bus().send("remote", make_message("", "two")).has_value();
  }));
  // Written (the registration reply and both), then the daemon goes.
  ASSERT_TRUE(h.wait_until([&] { return h.server().stats().messages_out == 3u; }));
  h.call([&] {
    h.server().stop();
    return 0;
  });
  for (const char* expected : {"one", "two"}) {
    auto m = c->receive(5s);
    ASSERT_TRUE(m) << m.error();
    ASSERT_TRUE(*m);
    EXPECT_EQ(text_of(**m), expected);
  }
  const auto end = c->receive(5s);
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error(), "the daemon closed the connection");
}

TEST_P(remote_module, a_large_backlog_reaches_a_slow_reader_completely_and_in_order) {
  memory_budget budget;  // unlimited: measures what is held
  socket_options options;
  options.outbound_capacity = 16;
  options.outbound_bytes = 256 * 1024;
  options.budget = &budget;
  harness h(options, bus::bus_options{.group_backlog = 1000, .budget = &budget});
  constexpr int count = 300;
  const std::string payload(16 * 1024, 'p');
  ASSERT_TRUE(h.call([&] {
    h.bus().declare_group("hub");
    for (int i = 0; i < count; ++i) {
      if (!h.bus().send_to_group("hub", make_message("", std::to_string(i) + ":" + payload))) {
        return false;
      }
    }
    return true;
  }));
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  // Small bites: the socket and one read then hold a few of the 300 messages at most, and the
  // rest is still being handed over whenever the reader pauses.
  p.read_at_most(32 * 1024);
  ASSERT_EQ(p.register_as("edgehub", "hub").route.operation, "response");
  std::size_t most_queued = 0;
  std::size_t most_queued_bytes = 0;
  bool behind = false;  // seen the backlog still being handed over while reading
  for (int i = 0; i < count; ++i) {
    if (i % 20 == 0) {
      // A slow reader: before reading on, it waits until the daemon's queue to it is more than
      // half full, as it always comes to be while the reader pauses (filled until full, the
      // hand-over resumes only once the reader has taken half, and then fills it again), unless
      // the backlog has nothing more to hand over, near the end.
      ASSERT_TRUE(h.wait_until([&] {
        const auto c = h.server().connections();
        if (c.size() != 1) return false;
        const bool half_full = c[0].queued > options.outbound_capacity / 2 ||
                               c[0].queued_bytes > options.outbound_bytes / 2;
        const std::size_t backlog = h.bus().backlog_size("hub");
        if (backlog > 0 && !half_full) return false;
        most_queued = std::max(most_queued, c[0].queued);
        most_queued_bytes = std::max(most_queued_bytes, c[0].queued_bytes);
        behind = behind || backlog > 0;
        return true;
      })) << "message "
          << i;
    }
    const auto m = p.receive();
    ASSERT_EQ(text_of(m), std::to_string(i) + ":" + payload) << "message " << i;
  }
  EXPECT_TRUE(behind);
  EXPECT_LE(most_queued, options.outbound_capacity);
  EXPECT_LE(most_queued_bytes, options.outbound_bytes + payload.size() + 1024);
  EXPECT_EQ(p.receive_raw(100ms).state, reading::status::timeout);
  EXPECT_FALSE(h.call([&] { return h.bus().handing_over("hub"); }));
  const auto s = h.call([&] { return h.bus().stats(); });
  EXPECT_EQ(s.delivered, static_cast<std::uint64_t>(count));
  EXPECT_EQ(s.queue_full, 0u);
  EXPECT_EQ(s.too_large, 0u);
  // Everything written: nothing is held any more.
  EXPECT_TRUE(h.wait_until([&] { return budget.used() == 0; }));
}

TEST_P(remote_module, outbound_queue_is_bounded_in_bytes_and_charged_to_the_budget) {
  memory_budget budget;
  socket_options options;
  options.outbound_capacity = 100000;
  options.outbound_bytes = 64 * 1024;
  options.budget = &budget;
  harness h(options);
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  ASSERT_EQ(p.register_as("remote").route.operation, "response");
  const std::string payload(4096, 'p');
  const auto [accepted, refusal] = send_until_refused(h, payload, 100000);
  EXPECT_EQ(refusal, bus_errc::queue_full);
  const auto [c, used] = h.call([&] { return std::pair{h.server().connections(), budget.used()}; });
  ASSERT_EQ(c.size(), 1u);
  EXPECT_LE(c[0].queued_bytes, options.outbound_bytes + payload.size() + 1024);
  EXPECT_EQ(used, c[0].queued_bytes);
  for (int i = 0; i < accepted; ++i) {
    const auto m = p.receive();
    ASSERT_EQ(text_of(m), std::to_string(i) + payload);
  }
  EXPECT_TRUE(h.wait_until([&] { return budget.used() == 0; }));
}

TEST_P(remote_module, closing_releases_what_the_outbound_queue_held) {
  memory_budget budget;
  socket_options options;
  options.budget = &budget;
  harness h(options);
  ASSERT_TRUE(h.start());
  auto p = std::make_unique<peer>(h.path(stream()), stream());
  ASSERT_EQ(p->register_as("remote").route.operation, "response");
  const std::string payload(64 * 1024, 'p');
  for (int i = 0; i < 200; ++i) {  // more than the kernel takes: some stay queued
    if (!h.call([&] { return h.bus().send("remote", make_message("", payload)).has_value(); })) {
      break;
    }
  }
  p.reset();
  EXPECT_TRUE(h.wait_until([&] { return h.server().connection_count() == 0; }));
  EXPECT_EQ(h.call([&] { return budget.used(); }), 0u);
}

TEST_P(remote_module, a_backlog_message_too_large_for_the_client_is_counted_with_its_reason) {
  captured_log log("remote");
  socket_options options;
  options.max_message_bytes = 1024;
  harness h(options, bus::bus_options{.group_backlog = 10});
  ASSERT_TRUE(h.call([&] {
    h.bus().declare_group("twin");
    return h.bus().send_to_group("twin", make_message("", "small-1")).has_value() &&
           h.bus().send_to_group("twin", make_message("", std::string(2000, 'x'))).has_value() &&
           h.bus().send_to_group("twin", make_message("", "small-2")).has_value();
  }));
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  ASSERT_EQ(p.register_as("devicetwin", "twin").route.operation, "response");
  EXPECT_EQ(text_of(p.receive()), "small-1");
  EXPECT_EQ(text_of(p.receive()), "small-2");
  EXPECT_EQ(p.receive_raw(100ms).state, reading::status::timeout);
  EXPECT_EQ(h.stats().too_large, 1u);
  EXPECT_EQ(h.call([&] { return h.bus().stats().too_large; }), 1u);
  EXPECT_EQ(h.call([&] { return h.server().connections(); })[0].stats.too_large, 1u);
  EXPECT_TRUE(log.has(
      {"message_undeliverable", "module=devicetwin", "bytes exceed max_message_bytes (1024)"}));
}

TEST_P(remote_module, an_mqtt_payload_of_control_bytes_fits_required_message_bytes) {
  // 100,000 bytes of 0x01 become 600,000 bytes of "\u0001" escapes in JSON.
  constexpr std::size_t payload_bytes = 100000;
  const std::string topic = "$hw/events/upload/sensor";
  socket_options options;
  options.max_message_bytes = required_message_bytes(payload_bytes + topic.size() + 4);
  harness h(options, bus::bus_options{.group_backlog = 10});
  const std::string payload(payload_bytes, '\x01');
  ASSERT_TRUE(h.call([&] {
    h.bus().declare_group("hub");
    auto m = bus::new_message();
    bus::build_router(m, "eventbus", "user", topic, "upload");
    m.content = bus::content::text(payload);
    return h.bus().send_to_group("hub", std::move(m)).has_value();
  }));
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  ASSERT_EQ(p.register_as("edgehub", "hub").route.operation, "response");
  const auto m = p.receive();
  EXPECT_EQ(text_of(m), payload);
  EXPECT_EQ(h.stats().too_large, 0u);
}

TEST_P(remote_module, large_messages_encoded_off_the_loop_keep_their_order_and_accounting) {
  memory_budget budget;
  socket_options options;
  options.budget = &budget;
  harness h(options);
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  ASSERT_EQ(p.register_as("remote").route.operation, "response");
  // Large ones (over 64 KiB: encoded on the encoder thread) between small ones (encoded at
  // once): every small one waits for the large one in front of it.
  std::vector<std::string> sent;
  for (int i = 0; i < 30; ++i) {
    sent.push_back(i % 3 == 0 ? std::to_string(i) + std::string(200 * 1024, '\x01')
                              : std::to_string(i) + "-small");
  }
  ASSERT_TRUE(h.call([&] {
    for (const auto& text : sent) {
      if (!h.bus().send("remote", make_message("", text))) return false;
    }
    return true;
  }));
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const auto m = p.receive();
    ASSERT_EQ(text_of(m), sent[i]) << "message " << i;
  }
  EXPECT_EQ(h.stats().too_large, 0u);
  EXPECT_TRUE(h.wait_until([&] { return budget.used() == 0; }));
  const auto c = h.call([&] { return h.server().connections(); });
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].queued, 0u);
  EXPECT_EQ(c[0].queued_bytes, 0u);
}

TEST_P(remote_module, a_message_found_too_large_once_encoded_off_the_loop_is_counted) {
  captured_log log("remote");
  memory_budget budget;
  socket_options options;
  options.max_message_bytes = 300 * 1024;
  options.budget = &budget;
  harness h(options);
  ASSERT_TRUE(h.start());
  peer p(h.path(stream()), stream());
  ASSERT_EQ(p.register_as("remote").route.operation, "response");
  // 100 KiB of control bytes: 600 KiB once encoded, over the limit only after encoding.
  ASSERT_TRUE(h.call([&] {
    return h.bus().send("remote", make_message("", std::string(100 * 1024, '\x01'))).has_value() &&
           h.bus().send("remote", make_message("", "after")).has_value();
  }));
  EXPECT_EQ(text_of(p.receive()), "after");
  EXPECT_EQ(h.stats().too_large, 1u);
  EXPECT_EQ(h.call([&] { return h.server().connections(); })[0].stats.too_large, 1u);
  EXPECT_TRUE(log.has({"message_undeliverable", "module=remote", "exceed max_message_bytes"}));
  EXPECT_TRUE(h.wait_until([&] { return budget.used() == 0; }));
}

TEST(socket_server, a_message_over_the_seqpacket_packet_limit_is_refused_with_the_reason) {
  captured_log log("remote");
  socket_options options;
  options.max_message_bytes = std::size_t{64} * 1024 * 1024;
  harness h(options);
  ASSERT_TRUE(h.start());
  const std::size_t limit = h.call([&] { return h.server().packet_limit(); });
  ASSERT_GT(limit, 0u);
  if (limit >= options.max_message_bytes) {
    GTEST_SKIP() << "this kernel takes SEQPACKET packets of " << options.max_message_bytes;
  }
  EXPECT_TRUE(log.has({"seqpacket_limit", "use the stream socket"}));
  peer packets(h.path(false), false);
  peer lines(h.path(true), true);
  ASSERT_EQ(packets.register_as("packets").route.operation, "response");
  ASSERT_EQ(lines.register_as("lines").route.operation, "response");
  const std::string big(limit + 1000, 'x');
  const auto refused = h.call([&] { return h.bus().send("packets", make_message("", big)); });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), bus_errc::too_large);
  EXPECT_TRUE(log.has({"message_undeliverable", "module=packets",
                       "exceed the SEQPACKET per-packet limit of " + std::to_string(limit),
                       "use the stream socket"}));
  const auto info = h.call([&] { return h.server().connections(); });
  for (const auto& c : info) {
    EXPECT_EQ(c.max_message, c.seqpacket ? limit : options.max_message_bytes) << c.module;
  }
  // The same message goes through the stream socket.
  ASSERT_TRUE(h.call([&] { return h.bus().send("lines", make_message("", big)).has_value(); }));
  EXPECT_EQ(text_of(lines.receive()), big);
  // And one just under the limit through SEQPACKET.
  auto fits = make_message("", "");
  fits.route.destination = "packets";
  fits.content = bus::content::text(std::string(limit - bus::to_json(fits).size(), 'y'));
  ASSERT_EQ(bus::to_json(fits).size(), limit);
  ASSERT_TRUE(h.call([&] { return h.bus().send("packets", bus::message(fits)).has_value(); }));
  EXPECT_EQ(packets.receive().content, fits.content);
}

}  // namespace
}  // namespace ebus::remote
