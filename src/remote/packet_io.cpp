#include "remote/packet_io.hpp"

#include <algorithm>
#include <cerrno>
#include <sys/mman.h>
#include <unistd.h>
#include <utility>

namespace ebus::remote {
namespace {

std::size_t page_size() {
  const long size = ::sysconf(_SC_PAGESIZE);
  return size > 0 ? static_cast<std::size_t>(size) : 4096;
}

std::size_t round_up(std::size_t n, std::size_t unit) {
  return (n + unit - 1) / unit * unit;
}

}  // namespace

// --- packet_sender -------------------------------------------------------------------------

bool packet_sender::refused(int error) noexcept {
  return error == EMSGSIZE || error == ENOBUFS || error == ENOMEM;
}

void packet_sender::clear() noexcept {
  iov_.clear();
  first_part_.clear();
  headers_.clear();
  done_ = 0;
}

void packet_sender::add(std::string_view packet) {
  first_part_.push_back(iov_.size());
  iov_.push_back({const_cast<char*>(packet.data()), packet.size()});
  headers_.emplace_back();  // the iovec is pointed at once the batch is complete: iov_ may move
}

void packet_sender::append(std::string_view part) {
  iov_.push_back({const_cast<char*>(part.data()), part.size()});
}

std::size_t packet_sender::parts(std::size_t i) const noexcept {
  const std::size_t end = i + 1 < first_part_.size() ? first_part_[i + 1] : iov_.size();
  return end - first_part_[i];
}

std::size_t packet_sender::bytes(std::size_t i) const noexcept {
  std::size_t n = 0;
  for (std::size_t k = 0; k < parts(i); ++k)
    n += iov_[first_part_[i] + k].iov_len;
  return n;
}

packet_sender::result packet_sender::send(int fd) {
  result r;
  for (std::size_t i = done_; i < headers_.size(); ++i) {
    headers_[i].msg_hdr.msg_iov = &iov_[first_part_[i]];
    headers_[i].msg_hdr.msg_iovlen = parts(i);
  }
  while (done_ < headers_.size()) {
    const int n =
        ::sendmmsg(fd, headers_.data() + done_, static_cast<unsigned>(headers_.size() - done_),
                   MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      done_ += static_cast<std::size_t>(n);
      r.sent += static_cast<std::size_t>(n);
      continue;
    }
    // sendmmsg reports an error only for the first packet it tried; those before went.
    const int err = errno;
    if (err == EINTR) continue;
    if (refused(err)) ++done_;  // this packet only is lost
    r.error = err == EWOULDBLOCK ? EAGAIN : err;
    return r;
  }
  return r;
}

// --- packet_receiver -----------------------------------------------------------------------

expected<packet_receiver, int> packet_receiver::create(std::size_t slots, std::size_t slot_bytes) {
  const std::size_t page = page_size();
  slot_bytes = round_up(std::max<std::size_t>(slot_bytes, 1), page);
  slots = std::max<std::size_t>(slots, 1);
  for (;;) {
    // Reserved, not committed: the kernel gives a page memory only once a packet is written
    // into it.
    void* base = ::mmap(nullptr, slots * slot_bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base != MAP_FAILED) return packet_receiver(static_cast<char*>(base), slots, slot_bytes);
    const int err = errno;
    if (slots == 1) return fail(err);
    slots /= 2;  // a 32-bit process may not find that much address space in one piece
  }
}

packet_receiver::packet_receiver(char* base, std::size_t slots, std::size_t slot_bytes)
    : base_(base), slot_bytes_(slot_bytes), iov_(slots), headers_(slots) {
  for (std::size_t i = 0; i < slots; ++i) {
    iov_[i] = {base_ + i * slot_bytes_, slot_bytes_};
    headers_[i].msg_hdr.msg_iov = &iov_[i];
    headers_[i].msg_hdr.msg_iovlen = 1;
  }
}

packet_receiver::packet_receiver(packet_receiver&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)),
      slot_bytes_(std::exchange(other.slot_bytes_, 0)),
      iov_(std::move(other.iov_)),
      headers_(std::move(other.headers_)),
      count_(std::exchange(other.count_, 0)),
      next_(std::exchange(other.next_, 0)),
      truncated_(std::exchange(other.truncated_, std::nullopt)) {}

packet_receiver& packet_receiver::operator=(packet_receiver&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) ::munmap(base_, headers_.size() * slot_bytes_);
    base_ = std::exchange(other.base_, nullptr);
    slot_bytes_ = std::exchange(other.slot_bytes_, 0);
    iov_ = std::move(other.iov_);
    headers_ = std::move(other.headers_);
    count_ = std::exchange(other.count_, 0);
    next_ = std::exchange(other.next_, 0);
    truncated_ = std::exchange(other.truncated_, std::nullopt);
  }
  return *this;
}

packet_receiver::~packet_receiver() {
  if (base_ != nullptr) ::munmap(base_, headers_.size() * slot_bytes_);
}

void packet_receiver::release_taken() noexcept {
  if (next_ == 0) return;
  const std::size_t slot = next_ - 1;
  if (headers_[slot].msg_len <= keep_bytes) return;
  // keep_bytes is a whole number of pages on every page size up to 64 KiB; beyond, nothing is
  // handed back.
  const std::size_t from = round_up(keep_bytes, page_size());
  if (from >= headers_[slot].msg_len) return;
  const std::size_t to = round_up(headers_[slot].msg_len, page_size());
  // The pages read as zeros when next written: nothing needs them kept.
  (void)::madvise(base_ + slot * slot_bytes_ + from, to - from, MADV_DONTNEED);
  headers_[slot].msg_len = 0;  // handed back once
}

expected<std::size_t, int> packet_receiver::receive(int fd) {
  if (pending() > 0) return pending();
  release_taken();
  if (truncated_) return fail(*truncated_);
  count_ = 0;
  next_ = 0;
  for (auto& h : headers_) {
    h.msg_hdr.msg_flags = 0;
    h.msg_len = 0;
  }
  const int n = ::recvmmsg(fd, headers_.data(), static_cast<unsigned>(headers_.size()),
                           MSG_DONTWAIT, nullptr);
  if (n < 0) {
    const int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) return std::size_t{0};
    return fail(err);
  }
  count_ = static_cast<std::size_t>(n);
  for (std::size_t i = 0; i < count_; ++i) {
    if ((headers_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
      count_ = i;  // those before it are whole
      truncated_ = EMSGSIZE;
      break;
    }
  }
  if (count_ == 0 && truncated_) return fail(*truncated_);
  return count_;
}

std::optional<std::string_view> packet_receiver::next() {
  release_taken();
  if (next_ == count_) return std::nullopt;
  const std::size_t slot = next_++;
  return std::string_view(base_ + slot * slot_bytes_, headers_[slot].msg_len);
}

}  // namespace ebus::remote
