// SEQPACKET packets many per system call (remote/packet_io.hpp), over socket pairs: what arrives
// is what one send() per message would have sent, whatever stops a batch half-way.
#include "remote/packet_io.hpp"

#include <cerrno>
#include <cstddef>
#include <string>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include "remote/sizing.hpp"

namespace ebus::remote {
namespace {

/// A connected SEQPACKET socket pair: [0] sends, [1] receives.
class socket_pair {
 public:
  socket_pair() {
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds_) != 0) fds_[0] = fds_[1] = -1;
  }
  socket_pair(const socket_pair&) = delete;
  socket_pair& operator=(const socket_pair&) = delete;
  ~socket_pair() {
    close_sender();
    close_receiver();
  }
  [[nodiscard]] bool ok() const noexcept { return fds_[0] >= 0; }
  [[nodiscard]] int sender() const noexcept { return fds_[0]; }
  [[nodiscard]] int receiver() const noexcept { return fds_[1]; }
  void close_sender() { close(0); }
  void close_receiver() { close(1); }

  /// Shrinks the sender's buffer (the kernel doubles what is asked and keeps a minimum).
  void small_send_buffer(int bytes) {
    ASSERT_EQ(::setsockopt(sender(), SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes), 0);
  }

  /// Reads every packet queued at the receiver, one recv() each.
  std::vector<std::string> drain() {
    std::vector<std::string> out;
    std::vector<char> buffer(1 << 20);
    for (;;) {
      const auto n = ::recv(receiver(), buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n <= 0) return out;
      out.emplace_back(buffer.data(), static_cast<std::size_t>(n));
    }
  }

 private:
  void close(int i) {
    if (fds_[i] >= 0) ::close(fds_[i]);
    fds_[i] = -1;
  }
  int fds_[2] = {-1, -1};
};

/// Message `i`: its number and `size` bytes of a letter, a '\n' at the end as beehive writes.
std::string numbered(std::size_t i, std::size_t size) {
  std::string s = std::to_string(i) + ":";
  s.append(size, static_cast<char>('a' + i % 26));
  return s + "\n";
}

// --- packet_sender ---------------------------------------------------------------------------

TEST(packet_sender, a_batch_goes_out_one_packet_per_message_in_order) {
  socket_pair p;
  ASSERT_TRUE(p.ok());
  std::vector<std::string> messages;
  for (std::size_t i = 0; i < 100; ++i)
    messages.push_back(numbered(i, i * 7 % 300));
  packet_sender s;
  for (const auto& m : messages)
    s.add(m);
  ASSERT_EQ(s.size(), messages.size());
  const auto r = s.send(p.sender());
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.sent, messages.size());
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(p.drain(), messages);  // the packet boundaries are the message boundaries
}

TEST(packet_sender, appended_parts_arrive_as_one_packet_in_order) {
  socket_pair p;
  ASSERT_TRUE(p.ok());
  const std::vector<std::string> parts = {"a\n", "bb\n", "ccc\n", "dddd\n", "e\n"};
  packet_sender s;
  s.add(parts[0]);
  s.append(parts[1]);
  s.append(parts[2]);
  s.add(parts[3]);  // a second packet
  s.append(parts[4]);
  ASSERT_EQ(s.size(), 2U);
  EXPECT_EQ(s.parts(0), 3U);
  EXPECT_EQ(s.bytes(0), 9U);
  EXPECT_EQ(s.parts(1), 2U);
  EXPECT_EQ(s.bytes(1), 7U);
  const auto r = s.send(p.sender());
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.sent, 2U);
  EXPECT_EQ(p.drain(), (std::vector<std::string>{"a\nbb\nccc\n", "dddd\ne\n"}));
}

TEST(packet_sender, a_full_socket_stops_the_batch_where_it_was_and_send_goes_on_from_there) {
  socket_pair p;
  ASSERT_TRUE(p.ok());
  p.small_send_buffer(4096);
  std::vector<std::string> messages;
  for (std::size_t i = 0; i < 40; ++i)
    messages.push_back(numbered(i, 1000));
  packet_sender s;
  for (const auto& m : messages)
    s.add(m);
  auto r = s.send(p.sender());
  // Partly sent: the kernel took some packets of the call, then had no room.
  ASSERT_EQ(r.error, EAGAIN);
  ASSERT_GT(r.sent, 0u);
  ASSERT_LT(r.sent, messages.size());
  EXPECT_EQ(s.done(), r.sent);
  EXPECT_FALSE(s.finished());
  // Still full: nothing more goes, nothing is skipped.
  const std::size_t first = r.sent;
  r = s.send(p.sender());
  EXPECT_EQ(r.error, EAGAIN);
  EXPECT_EQ(r.sent, 0u);
  EXPECT_EQ(s.done(), first);

  std::vector<std::string> received;
  int rounds = 0;
  while (!s.finished()) {
    ASSERT_LT(++rounds, 1000);
    auto got = p.drain();  // the reader makes room
    received.insert(received.end(), got.begin(), got.end());
    r = s.send(p.sender());
    ASSERT_TRUE(r.error == 0 || r.error == EAGAIN) << r.error;
  }
  auto rest = p.drain();
  received.insert(received.end(), rest.begin(), rest.end());
  EXPECT_EQ(received, messages);  // each once, in order
}

TEST(packet_sender, a_packet_the_kernel_refuses_is_skipped_and_only_it_is_lost) {
  socket_pair p;
  ASSERT_TRUE(p.ok());
  p.small_send_buffer(4096);  // a packet over the buffer (minus 32 bytes) is refused
  int size = 0;
  socklen_t length = sizeof size;
  ASSERT_EQ(::getsockopt(p.sender(), SOL_SOCKET, SO_SNDBUF, &size, &length), 0);
  const std::vector<std::string> messages = {numbered(0, 10),
                                             numbered(1, static_cast<std::size_t>(size) + 100),
                                             numbered(2, 10), numbered(3, 10)};
  packet_sender s;
  for (const auto& m : messages)
    s.add(m);
  auto r = s.send(p.sender());
  EXPECT_EQ(r.sent, 1u);
  ASSERT_EQ(r.error, EMSGSIZE);
  EXPECT_TRUE(packet_sender::refused(r.error));
  EXPECT_EQ(s.done(), 2u);  // the refused one is passed over
  r = s.send(p.sender());
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.sent, 2u);
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(p.drain(), (std::vector<std::string>{messages[0], messages[2], messages[3]}));
}

TEST(packet_sender, a_closed_peer_is_an_error_not_a_wait) {
  socket_pair p;
  ASSERT_TRUE(p.ok());
  p.close_receiver();
  packet_sender s;
  const std::string m = numbered(0, 10);
  s.add(m);
  const auto r = s.send(p.sender());  // MSG_NOSIGNAL: no SIGPIPE
  EXPECT_EQ(r.error, EPIPE);
  EXPECT_FALSE(packet_sender::refused(r.error));
  EXPECT_EQ(r.sent, 0u);
}

TEST(packet_sender, clear_starts_a_new_batch) {
  socket_pair p;
  ASSERT_TRUE(p.ok());
  packet_sender s;
  const std::string a = numbered(0, 5);
  const std::string b = numbered(1, 5);
  s.add(a);
  EXPECT_EQ(s.send(p.sender()).sent, 1u);
  s.clear();
  EXPECT_EQ(s.size(), 0u);
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(s.send(p.sender()).sent, 0u);  // an empty batch sends nothing
  s.add(b);
  EXPECT_EQ(s.send(p.sender()).sent, 1u);
  EXPECT_EQ(p.drain(), (std::vector<std::string>{a, b}));
}

// --- packet_receiver -------------------------------------------------------------------------

std::vector<std::string> take_all(packet_receiver& r) {
  std::vector<std::string> out;
  while (const auto packet = r.next())
    out.emplace_back(*packet);
  return out;
}

TEST(packet_receiver, packets_come_whole_and_in_order_many_per_call) {
  socket_pair p;
  ASSERT_TRUE(p.ok());
  std::vector<std::string> messages;
  for (std::size_t i = 0; i < 40; ++i) {
    messages.push_back(numbered(i, i * 37 % 3000));
    ASSERT_EQ(::send(p.sender(), messages.back().data(), messages.back().size(), MSG_DONTWAIT),
              static_cast<ssize_t>(messages.back().size()));
  }
  auto r = packet_receiver::create(8, 4096);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->slots(), 8u);
  std::vector<std::string> received;
  int calls = 0;
  for (;;) {
    const auto got = r->receive(p.receiver());
    ASSERT_TRUE(got) << got.error();
    if (*got == 0) break;
    ++calls;
    EXPECT_EQ(*got, 8u);  // every slot filled: 40 were queued
    EXPECT_EQ(r->pending(), 8u);
    // While packets are pending nothing more is read.
    EXPECT_EQ(r->receive(p.receiver()).value_or(0), 8u);
    auto batch = take_all(*r);
    EXPECT_EQ(r->pending(), 0u);
    received.insert(received.end(), batch.begin(), batch.end());
  }
  EXPECT_EQ(calls, 5);
  EXPECT_EQ(received, messages);
}

TEST(packet_receiver, nothing_queued_is_zero_packets) {
  socket_pair p;
  ASSERT_TRUE(p.ok());
  auto r = packet_receiver::create(4, 4096);
  ASSERT_TRUE(r);
  const auto got = r->receive(p.receiver());  // the socket blocks; the receive does not
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, 0u);
  EXPECT_FALSE(r->next());
}

TEST(packet_receiver, the_peer_closing_comes_as_an_empty_packet_after_what_it_sent) {
  socket_pair p;
  ASSERT_TRUE(p.ok());
  for (const char* m : {"a\n", "bb\n", "ccc\n"})
    ASSERT_GT(::send(p.sender(), m, std::char_traits<char>::length(m), MSG_DONTWAIT), 0);
  p.close_sender();
  auto r = packet_receiver::create(8, 4096);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->receive(p.receiver()));
  EXPECT_EQ(r->next(), "a\n");
  EXPECT_EQ(r->next(), "bb\n");
  EXPECT_EQ(r->next(), "ccc\n");
  const auto end = r->next();
  ASSERT_TRUE(end);
  EXPECT_TRUE(end->empty());
}

TEST(packet_receiver, a_packet_larger_than_a_slot_is_an_error_after_those_before_it) {
  socket_pair p;
  ASSERT_TRUE(p.ok());
  const std::string small = "small\n";
  const std::string large(3 * 4096, 'x');
  for (const auto* m : {&small, &large, &small})
    ASSERT_EQ(::send(p.sender(), m->data(), m->size(), MSG_DONTWAIT),
              static_cast<ssize_t>(m->size()));
  auto r = packet_receiver::create(8, 4096);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->slot_bytes(), 4096u);
  auto got = r->receive(p.receiver());
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, 1u);  // the one before it is whole
  EXPECT_EQ(r->next(), small);
  EXPECT_FALSE(r->next());
  got = r->receive(p.receiver());
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), EMSGSIZE);
}

TEST(packet_receiver, pages_a_large_packet_took_are_handed_back_once_it_is_read) {
  socket_pair p;
  ASSERT_TRUE(p.ok());
  const long page_size = ::sysconf(_SC_PAGESIZE);
  ASSERT_GT(page_size, 0);
  const auto page = static_cast<std::size_t>(page_size);
  if (packet_receiver::keep_bytes % page != 0) GTEST_SKIP() << "pages larger than keep_bytes";
  // A packet four times keep_bytes: within what a socket may send without privileges.
  const std::size_t size = 4 * packet_receiver::keep_bytes;
  ASSERT_GE(size_packet_send_buffer(p.sender(), size).packet_limit, size);
  const std::string large(size, 'L');
  ASSERT_EQ(::send(p.sender(), large.data(), large.size(), MSG_DONTWAIT),
            static_cast<ssize_t>(size));

  auto r = packet_receiver::create(4);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->receive(p.receiver()));
  const auto packet = r->next();
  ASSERT_TRUE(packet);
  ASSERT_EQ(*packet, large);
  const auto resident = [&](const char* at, std::size_t bytes) {
    std::vector<unsigned char> pages((bytes + page - 1) / page);
    EXPECT_EQ(::mincore(const_cast<char*>(at), bytes, pages.data()), 0);
    std::size_t n = 0;
    for (const auto flags : pages)
      n += flags & 1u;
    return n;
  };
  const char* slot = packet->data();
  const std::size_t kept_pages = packet_receiver::keep_bytes / page;
  const std::size_t all_pages = size / page;
  EXPECT_EQ(resident(slot, size), all_pages);  // written by the kernel
  EXPECT_FALSE(r->next());                     // the large one was read: its tail goes back
  EXPECT_EQ(resident(slot, packet_receiver::keep_bytes), kept_pages);
  EXPECT_EQ(resident(slot + packet_receiver::keep_bytes, size - packet_receiver::keep_bytes), 0u);
}

TEST(packet_receiver, a_moved_receiver_keeps_its_packets) {
  socket_pair p;
  ASSERT_TRUE(p.ok());
  for (const char* m : {"one\n", "two\n"})
    ASSERT_GT(::send(p.sender(), m, std::char_traits<char>::length(m), MSG_DONTWAIT), 0);
  auto r = packet_receiver::create(4, 4096);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->receive(p.receiver()).value_or(0), 2u);
  EXPECT_EQ(r->next(), "one\n");
  packet_receiver moved = std::move(*r);
  EXPECT_EQ(moved.next(), "two\n");
  EXPECT_FALSE(moved.next());
}

}  // namespace
}  // namespace ebus::remote
