// readiness_set: sockets registered edge-triggered are reported when they become readable or
// writable, a removed socket is not reported again, a wake-up with more ready sockets than one
// turn takes reports the rest on later turns, and close() lets the loop run out of work. Socket
// pairs in one process; the loop is polled, never waited on.

#include "mqtt/broker/readiness_set.hpp"

#include <array>
#include <memory>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

namespace ebus::mqtt::broker {
namespace {

struct counting_watcher final : readiness_set::watcher {
  int readable = 0;
  int writable = 0;
  void on_ready(bool r, bool w) noexcept override {
    readable += r ? 1 : 0;
    writable += w ? 1 : 0;
  }
};

// A connected pair of non-blocking stream sockets, closed at the end.
struct socket_pair {
  std::array<int, 2> fd{-1, -1};
  socket_pair() {
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd.data()), 0);
  }
  socket_pair(const socket_pair&) = delete;
  socket_pair& operator=(const socket_pair&) = delete;
  ~socket_pair() {
    for (const int f : fd)
      if (f >= 0) ::close(f);
  }
  void send_byte() const { ASSERT_EQ(::write(fd[1], "x", 1), 1); }
  void drain() const {
    char buf[64];
    while (::read(fd[0], buf, sizeof buf) > 0) {
    }
  }
};

void settle(asio::io_context& io) {
  // Until no handler is ready: the set's dispatch and whatever it posted have run.
  while (io.poll() > 0) {
  }
  io.restart();
}

// One socket pair whose first end is in the set, reported to `w`.
struct one_socket : ::testing::Test {
  asio::io_context io;
  readiness_set set{io.get_executor()};
  socket_pair p;
  counting_watcher w;
  void SetUp() override {
    ASSERT_FALSE(set.add(p.fd[0], w));
    settle(io);
  }
};

TEST_F(one_socket, is_reported_once_per_edge) {
  EXPECT_EQ(w.readable, 0);  // nothing to read yet
  EXPECT_EQ(w.writable, 1);  // room to write from the start

  p.send_byte();
  settle(io);
  EXPECT_EQ(w.readable, 1);
  settle(io);
  EXPECT_EQ(w.readable, 1) << "edge-triggered: unread input is not reported again";

  p.drain();
  p.send_byte();
  settle(io);
  EXPECT_EQ(w.readable, 2) << "new input after a drain is a new edge";
}

TEST_F(one_socket, the_peer_closing_is_reported_as_readable) {
  ::close(p.fd[1]);
  p.fd[1] = -1;
  settle(io);
  EXPECT_EQ(w.readable, 1);
}

TEST_F(one_socket, is_not_reported_once_removed) {
  set.remove(p.fd[0]);
  p.send_byte();
  settle(io);
  EXPECT_EQ(w.readable, 0);
}

TEST(readiness_set, more_ready_sockets_than_one_turn_takes_are_all_reported) {
  asio::io_context io;
  readiness_set set(io.get_executor());
  constexpr std::size_t count = 600;  // over two turns' worth
  std::vector<std::unique_ptr<socket_pair>> pairs;
  std::vector<counting_watcher> watchers(count);
  for (std::size_t i = 0; i < count; ++i) {
    pairs.push_back(std::make_unique<socket_pair>());
    ASSERT_FALSE(set.add(pairs.back()->fd[0], watchers[i]));
  }
  settle(io);
  for (const auto& p : pairs)
    p->send_byte();
  // The first turn reports a slice; the rest come on the turns after it.
  ASSERT_GT(io.run_one(), 0U);
  std::size_t told = 0;
  for (const auto& w : watchers)
    told += static_cast<std::size_t>(w.readable);
  EXPECT_LT(told, count);
  settle(io);
  for (std::size_t i = 0; i < count; ++i)
    EXPECT_EQ(watchers[i].readable, 1) << "socket " << i;
  EXPECT_EQ(set.events(), 2 * count);  // writable once, readable once
}

TEST_F(one_socket, closing_the_set_lets_the_loop_run_out_of_work) {
  EXPECT_FALSE(io.stopped());  // the set's wait is pending work
  set.close();
  p.send_byte();
  while (io.poll() > 0) {
  }
  EXPECT_TRUE(io.stopped());
  EXPECT_EQ(w.readable, 0);
}

TEST(readiness_set, refuses_a_descriptor_that_is_not_open) {
  asio::io_context io;
  readiness_set set(io.get_executor());
  counting_watcher w;
  EXPECT_TRUE(set.add(-1, w));
}

}  // namespace
}  // namespace ebus::mqtt::broker
