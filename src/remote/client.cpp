#include "remote/client.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <utility>

#include "bus/message_json.hpp"
#include "remote/frame.hpp"
#include "remote/sizing.hpp"

namespace ebus::remote {
namespace {

using clock = std::chrono::steady_clock;

constexpr std::size_t read_chunk = std::size_t{64} * 1024;
/// What the send buffer is sized for: the daemon's default moduleSocketMaxMessageBytes and '\n'.
constexpr std::size_t max_packet_bytes = std::size_t{4} * 1024 * 1024 + 1;

std::string errno_text(int err) {
  return std::strerror(err);
}

int remaining_ms(clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

/// Waits until `fd` is ready for `events`: 1 ready, 0 timed out, -1 error (errno set; EINTR
/// when a signal arrived, so that callers can react to it).
int wait_for(int fd, short events, clock::time_point deadline) {
  pollfd p{fd, events, 0};
  const int rc = ::poll(&p, 1, remaining_ms(deadline));
  if (rc > 0 && (p.revents & (events | POLLHUP | POLLERR)) == 0) return 0;
  return rc;
}

std::string connect_hint(int err, bool stream) {
  switch (err) {
    case ENOENT:
    case ECONNREFUSED:
      return " (is the eventbus daemon running?)";
    case EACCES:
      return " (the socket is only open to the daemon's user)";
    case EPROTOTYPE:
      return stream ? " (is it the SEQPACKET socket?)" : " (is it the stream socket?)";
    default:
      return {};
  }
}

/// `read(m)` (a message: true, none: false) as the optional that receive() returns, decoded
/// where it is returned: a message is never moved on its way.
template <class Read>
expected<std::optional<bus::message>, std::string> as_optional(Read&& read) {
  expected<std::optional<bus::message>, std::string> result;
  if (auto got = read(result->emplace()); !got) {
    result = fail(std::move(got.error()));
  } else if (!*got) {
    result->reset();
  }
  return result;
}

}  // namespace

expected<bus_client, std::string> bus_client::connect(const std::string& path,
                                                      const std::string& name,
                                                      const std::string& group, bool stream,
                                                      std::chrono::milliseconds timeout,
                                                      packet_framing framing) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return fail("cannot connect to '" + path + "': not a valid Unix socket path");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());

  const int fd = ::socket(AF_UNIX, (stream ? SOCK_STREAM : SOCK_SEQPACKET) | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail("cannot create a socket: " + errno_text(errno));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd);
    return fail("cannot connect to " + path + ": " + errno_text(err) + connect_hint(err, stream));
  }
  // A SEQPACKET message must fit the send buffer: sized as the daemon sizes its own
  // (SO_SNDBUFFORCE as root, else SO_SNDBUF up to net.core.wmem_max).
  const std::size_t packet_limit =
      stream ? 0 : size_packet_send_buffer(fd, max_packet_bytes).packet_limit;
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  bus_client client(fd, stream, name, timeout);
  client.packet_limit_ = packet_limit;
  if (!stream) {
    // One message per packet: 32 packets per system call take a stream of small messages with
    // half the calls of 16, for a first page touched in each slot (128 KiB). A batched packet
    // holds hundreds: the default 16 slots, 1 MiB at most.
    const bool one_message = framing == packet_framing::one_message;
    auto packets = packet_receiver::create(one_message ? 2 * packet_receiver::default_slots
                                                       : packet_receiver::default_slots);
    if (!packets) {
      return fail("cannot reserve memory to receive packets: " + errno_text(packets.error()));
    }
    client.packets_.emplace(std::move(*packets));
  }

  auto reg = bus::new_message();
  bus::build_router(reg, name, {}, "module", "add");
  reg.header.sync = true;
  const bool batch = framing == packet_framing::batched && !stream;
  if (group.empty() && !batch) {
    reg.content = bus::content::text({});  // beehive's own registration
  } else {
    nlohmann::json content = nlohmann::json::object();
    if (!group.empty()) content["group"] = group;
    if (batch) content["batch"] = true;
    reg.content = bus::content::json(std::move(content));
  }
  if (auto sent = client.send(reg); !sent) return fail("registration failed: " + sent.error());

  const auto deadline = clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::milliseconds(remaining_ms(deadline));
    auto got = client.read_message(left);
    if (!got) return fail("registration failed: " + got.error());
    if (!*got) {
      if (left.count() > 0) continue;  // a signal, not the deadline
      return fail("registration failed: no reply from " + path + " within " +
                  std::to_string(timeout.count()) + " ms");
    }
    auto& m = **got;
    // An error without a parent answers the connection itself (e.g. too many connections).
    const bool ours = m.header.parent_id == reg.header.id || m.header.parent_id.empty();
    if (ours && m.route.operation == bus::operation::error) {
      return fail("registration refused: " + m.content.data());
    }
    if (m.header.parent_id == reg.header.id) {
      if (m.content.type() == bus::content::kind::json)
        client.registration_ = m.content.json_value();
      return client;
    }
    client.kept_.push_back(std::move(m));
  }
}

bus_client::bus_client(int fd, bool stream, std::string name, std::chrono::milliseconds io_timeout)
    : fd_(fd), stream_(stream), name_(std::move(name)), io_timeout_(io_timeout) {}

bus_client::bus_client(bus_client&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      stream_(other.stream_),
      packet_limit_(other.packet_limit_),
      name_(std::move(other.name_)),
      io_timeout_(other.io_timeout_),
      registration_(std::move(other.registration_)),
      kept_(std::move(other.kept_)),
      packets_(std::move(other.packets_)),
      packet_rest_(std::exchange(other.packet_rest_, {})),
      buffer_(std::move(other.buffer_)),
      capacity_(std::exchange(other.capacity_, 0)),
      filled_(std::exchange(other.filled_, 0)),
      taken_(std::exchange(other.taken_, 0)),
      scanned_(std::exchange(other.scanned_, 0)) {}

bus_client& bus_client::operator=(bus_client&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    stream_ = other.stream_;
    packet_limit_ = other.packet_limit_;
    name_ = std::move(other.name_);
    io_timeout_ = other.io_timeout_;
    registration_ = std::move(other.registration_);
    kept_ = std::move(other.kept_);
    packets_ = std::move(other.packets_);
    packet_rest_ = std::exchange(other.packet_rest_, {});
    buffer_ = std::move(other.buffer_);
    capacity_ = std::exchange(other.capacity_, 0);
    filled_ = std::exchange(other.filled_, 0);
    taken_ = std::exchange(other.taken_, 0);
    scanned_ = std::exchange(other.scanned_, 0);
  }
  return *this;
}

bus_client::~bus_client() {
  close();
}

void bus_client::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

expected<void, std::string> bus_client::send(const bus::message& m) {
  if (fd_ < 0) return fail(std::string("the connection is closed"));
  std::string data = bus::to_json(m);
  data += '\n';  // beehive writes one after each packet; the stream socket needs it
  const auto too_large = [&] {
    return fail(
        std::to_string(data.size() - 1) + " bytes exceed the SEQPACKET per-packet limit of " +
        std::to_string(packet_limit_ > 0 ? packet_limit_ - 1 : 0) + "; use the stream socket");
  };
  if (!stream_ && data.size() > packet_limit_) return too_large();
  const auto deadline = clock::now() + io_timeout_;
  std::size_t done = 0;
  while (done < data.size()) {
    const auto n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n >= 0) {
      // A SEQPACKET send is all or nothing; a stream send may be partial.
      done = stream_ ? done + static_cast<std::size_t>(n) : data.size();
      continue;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      const int ready = wait_for(fd_, POLLOUT, deadline);
      if (ready == 0) {
        return fail("the daemon did not take the message within " +
                    std::to_string(io_timeout_.count()) + " ms");
      }
      continue;
    }
    if (err == EMSGSIZE || (!stream_ && (err == ENOBUFS || err == ENOMEM))) {
      // The kernel's limit on one packet's memory, below what the buffer admits.
      packet_limit_ = std::min(packet_limit_, data.size() - 1);
      return too_large();
    }
    close();
    return fail(err == EPIPE || err == ECONNRESET ? std::string("the daemon closed the connection")
                                                  : "send failed: " + errno_text(err));
  }
  return {};
}

expected<std::optional<bus::message>, std::string> bus_client::receive(
    std::chrono::milliseconds timeout) {
  return as_optional([&](bus::message& m) { return receive_into(m, timeout); });
}

expected<bool, std::string> bus_client::receive_into(bus::message& m,
                                                     std::chrono::milliseconds timeout) {
  if (!kept_.empty()) {
    m = std::move(kept_.front());
    kept_.pop_front();
    return true;
  }
  return read_into(m, timeout);
}

expected<bus::message, std::string> bus_client::request(bus::message m,
                                                        std::chrono::milliseconds timeout) {
  m.header.sync = true;
  if (m.header.id.empty()) m.header.id = bus::new_uuid();
  const std::string id = m.header.id;
  if (auto sent = send(m); !sent) return fail(std::move(sent.error()));
  const auto deadline = clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::milliseconds(remaining_ms(deadline));
    auto got = read_message(left);
    if (!got) return fail(std::move(got.error()));
    if (!*got) {
      if (left.count() > 0) continue;
      return fail("no response within " + std::to_string(timeout.count()) + " ms");
    }
    if ((*got)->header.parent_id == id) return std::move(**got);
    kept_.push_back(std::move(**got));
  }
}

expected<std::optional<std::string_view>, std::string> bus_client::next_text() {
  if (!stream_) {
    // A packet holds one message, or several, one per line, when registered with "batch"; JSON
    // escapes newlines, so the lines are the messages either way.
    for (;;) {
      if (const auto line = take_line(packet_rest_); !line.empty()) {
        return std::optional<std::string_view>{line};
      }
      const auto packet = packets_->next();
      if (!packet) return std::optional<std::string_view>{};
      if (packet->empty()) {  // how SEQPACKET reports the peer's close
        close();
        return fail(std::string("the daemon closed the connection"));
      }
      packet_rest_ = *packet;
    }
  }
  for (;;) {
    char* const data = buffer_.get();
    const auto* end =
        filled_ == scanned_
            ? nullptr
            : static_cast<const char*>(std::memchr(data + scanned_, '\n', filled_ - scanned_));
    if (end == nullptr) {
      scanned_ = filled_;  // a long line is not searched again from its start
      return std::optional<std::string_view>{};
    }
    const std::string_view line(data + taken_, static_cast<std::size_t>(end - data) - taken_);
    taken_ = scanned_ = static_cast<std::size_t>(end - data) + 1;
    if (!line.empty()) return std::optional<std::string_view>{line};  // empty lines are ignored
  }
}

expected<bool, std::string> bus_client::fill() {
  if (!stream_) {
    const auto got = packets_->receive(fd_);
    if (got) return *got > 0;
    const int err = got.error();
    close();
    if (err == EMSGSIZE) {
      return fail("the daemon sent a packet larger than " + std::to_string(packets_->slot_bytes()) +
                  " bytes");
    }
    return fail(err == ECONNRESET ? std::string("the daemon closed the connection")
                                  : "receive failed: " + errno_text(err));
  }
  // The lines taken go; an unfinished one moves to the front, and the buffer grows only for a
  // line longer than it (left uninitialised: the kernel writes it).
  if (taken_ > 0) {
    std::memmove(buffer_.get(), buffer_.get() + taken_, filled_ - taken_);
    filled_ -= taken_;
    scanned_ -= taken_;
    taken_ = 0;
  }
  if (filled_ == 0 && capacity_ > 4 * read_chunk) {  // what a long line took goes back
    buffer_.reset();
    capacity_ = 0;
  }
  if (capacity_ - filled_ < read_chunk / 2) {
    const std::size_t grown = std::max(2 * capacity_, filled_ + read_chunk);
    auto bigger = std::make_unique_for_overwrite<char[]>(grown);
    if (filled_ > 0) std::memcpy(bigger.get(), buffer_.get(), filled_);
    buffer_ = std::move(bigger);
    capacity_ = grown;
  }
  const auto n = ::recv(fd_, buffer_.get() + filled_, capacity_ - filled_, MSG_DONTWAIT);
  if (n > 0) {
    filled_ += static_cast<std::size_t>(n);
    return true;
  }
  const int err = n == 0 ? 0 : errno;
  if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) return false;
  close();
  return fail(err == 0 || err == ECONNRESET ? std::string("the daemon closed the connection")
                                            : "receive failed: " + errno_text(err));
}

expected<std::optional<std::string_view>, std::string> bus_client::wait_text(
    std::chrono::milliseconds timeout) {
  if (fd_ < 0) return fail(std::string("the connection is closed"));
  std::optional<clock::time_point> deadline;  // taken once there is something to wait for
  for (;;) {
    auto next = next_text();
    if (!next || *next) return next;
    // Nothing left: take what the socket holds, and wait only when it holds nothing.
    auto got = fill();
    if (!got) return fail(std::move(got.error()));
    if (*got) continue;
    if (!deadline) deadline = clock::now() + timeout;
    const int ready = wait_for(fd_, POLLIN, *deadline);
    if (ready == 0 || (ready < 0 && errno == EINTR)) return std::optional<std::string_view>{};
    if (ready < 0) {
      const int err = errno;
      close();
      return fail("poll failed: " + errno_text(err));
    }
  }
}

expected<std::optional<bus::message>, std::string> bus_client::read_message(
    std::chrono::milliseconds timeout) {
  return as_optional([&](bus::message& m) { return read_into(m, timeout); });
}

expected<bool, std::string> bus_client::read_into(bus::message& m,
                                                  std::chrono::milliseconds timeout) {
  auto text = wait_text(timeout);
  if (!text) return fail(std::move(text.error()));
  if (!*text) return false;
  if (auto ok = bus::decode_json(**text, m); !ok) {
    close();
    return fail("the daemon sent a message that is not a beehive message: " + ok.error().reason);
  }
  return true;
}

}  // namespace ebus::remote
