#pragma once
// SEQPACKET packets many per system call, one message per packet as the protocol wants
// (docs/REMOTE.md#framing): the bytes on the wire are those of one send() or recv() each, so
// peers in any language see no difference.
//
// packet_sender (the daemon's writer): sendmmsg(2) over a batch of messages, resumable where the
// socket stopped taking them.
//
// packet_receiver (clients): recvmmsg(2) into slots, each packet then read where it lies. A
// packet longer than its slot would be cut by the kernel and its rest lost, so the slots are
// larger than the kernel's limit on one packet (docs/REMOTE.md#message-size: about 4 MiB on
// x86-64). They are reserved, not used: only the pages a packet is written into take memory, and
// those a large packet took beyond the first keep_bytes are handed back once it is read.
//
// No Asio, no waiting: the caller waits for the socket (poll, the event loop).
//
// Thread safety: distinct objects safe; shared objects unsafe.

#include <cstddef>
#include <optional>
#include <string_view>
#include <sys/socket.h>
#include <sys/uio.h>
#include <vector>

#include "common/expected.hpp"

namespace ebus::remote {

class packet_sender {
 public:
  /// What one send() did.
  struct result {
    std::size_t sent = 0;  ///< packets the kernel took
    /// 0: the batch is done. EAGAIN: the socket's buffer is full; wait until it is writable and
    /// send again. refused(error): the kernel refused the packet at done() - 1 (its size, or the
    /// memory for it) and it was skipped; send again for the rest. Anything else: the connection
    /// failed (EPIPE: the peer is gone).
    int error = 0;
  };

  /// Whether `error` from send() means that one packet was refused and skipped.
  [[nodiscard]] static bool refused(int error) noexcept;

  /// Starts a new batch; the storage of the last one is kept for it.
  void clear() noexcept;
  /// Appends one packet; its bytes must stay valid and unchanged until the batch is done.
  void add(std::string_view packet);
  /// Appends `part` to the last packet (gathered by the kernel, not copied here): how several
  /// messages share one packet for a module that asked for batched packets. Precondition:
  /// size() > 0, and the last packet has fewer than max_parts parts.
  void append(std::string_view part);

  /// Parts one packet may be gathered from (the kernel's IOV_MAX).
  static constexpr std::size_t max_parts = 1024;
  /// Parts in packet `i`, and its bytes.
  [[nodiscard]] std::size_t parts(std::size_t i) const noexcept;
  [[nodiscard]] std::size_t bytes(std::size_t i) const noexcept;

  /// Sends what is left of the batch, in order, without waiting.
  result send(int fd);

  /// Packets in the batch.
  [[nodiscard]] std::size_t size() const noexcept { return headers_.size(); }
  /// Packets of the batch sent or refused: the next send() starts at this one.
  [[nodiscard]] std::size_t done() const noexcept { return done_; }
  [[nodiscard]] bool finished() const noexcept { return done_ == headers_.size(); }

 private:
  std::vector<iovec> iov_;               // the parts of every packet, in order
  std::vector<std::size_t> first_part_;  // packet i is iov_[first_part_[i], first_part_[i + 1])
  std::vector<mmsghdr> headers_;
  std::size_t done_ = 0;
};

class packet_receiver {
 public:
  /// Packets taken per system call.
  static constexpr std::size_t default_slots = 16;
  /// Room for one packet: above the kernel's per-packet limit (4 MiB of linear data and up to
  /// 45 pages of fragments on x86-64 and arm64 with 4 KiB pages).
  static constexpr std::size_t default_slot_bytes = std::size_t{4608} * 1024;
  /// Memory a slot keeps after a larger packet was read from it: at least a batched packet
  /// (the daemon packs up to 64 KiB), so that a stream of them does not give pages back and
  /// fault them in again at every packet.
  static constexpr std::size_t keep_bytes = std::size_t{64} * 1024;

  /// Reserves `slots` slots of `slot_bytes` (rounded up to whole pages); with less address space
  /// to be had, fewer slots. Error: not even one slot could be reserved (errno).
  static expected<packet_receiver, int> create(std::size_t slots = default_slots,
                                               std::size_t slot_bytes = default_slot_bytes);

  packet_receiver(packet_receiver&& other) noexcept;
  packet_receiver& operator=(packet_receiver&& other) noexcept;
  packet_receiver(const packet_receiver&) = delete;
  packet_receiver& operator=(const packet_receiver&) = delete;
  ~packet_receiver();

  /// Takes what `fd` has queued, up to one packet per slot, without waiting, and returns how
  /// many packets came: 0 when none was queued (EAGAIN, EINTR). While packets received before
  /// are still pending it receives nothing and returns pending(). Error (errno): the receive
  /// failed; EMSGSIZE for a packet larger than a slot, which the kernel cut (its rest is lost),
  /// reported once the packets before it were taken.
  expected<std::size_t, int> receive(int fd);

  /// The next packet received and not taken yet, in order; nullopt when none is left. The view
  /// stays valid until the next call of next() or receive(). An empty packet is how the kernel
  /// reports that the peer closed the connection.
  std::optional<std::string_view> next();

  /// Packets received and not taken yet.
  [[nodiscard]] std::size_t pending() const noexcept { return count_ - next_; }
  [[nodiscard]] std::size_t slots() const noexcept { return headers_.size(); }
  [[nodiscard]] std::size_t slot_bytes() const noexcept { return slot_bytes_; }

 private:
  packet_receiver(char* base, std::size_t slots, std::size_t slot_bytes);
  /// Hands back the pages beyond keep_bytes of the slot last taken, when its packet used them.
  void release_taken() noexcept;

  char* base_ = nullptr;  // slots() * slot_bytes_ bytes, page aligned
  std::size_t slot_bytes_ = 0;
  std::vector<iovec> iov_;
  std::vector<mmsghdr> headers_;
  std::size_t count_ = 0;         // packets in the slots from the last receive()
  std::size_t next_ = 0;          // the first of them not taken
  std::optional<int> truncated_;  // EMSGSIZE reported once the packets before it are taken
};

}  // namespace ebus::remote
