#pragma once
// A FIFO of bus messages bounded in count and in bytes: a module's inbox or a group's backlog.
// Each message is charged to the daemon's memory budget while it waits, by its
// approximate_size(), and released when it is taken out or the queue is cleared, so the budget
// is back where it was once the queue is empty.
//
// A message fits when the queue holds fewer than `capacity` messages and, unless the queue is
// empty, its bytes stay within `byte_limit`: one message larger than the limit is taken by an
// empty queue only, so that it can always be delivered, and the queue then holds at most that
// one message beyond its limit.
//
// Thread safety: distinct objects safe; shared objects unsafe.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

#include "bus/bounded_queue.hpp"
#include "bus/message.hpp"
#include "common/memory_budget.hpp"

namespace ebus::bus {

/// Why a queue did not take a message.
enum class refusal : std::uint8_t {
  none,      ///< taken
  messages,  ///< the queue holds `capacity` messages
  bytes,     ///< the message's bytes do not fit within `byte_limit`
  budget,    ///< the daemon's memory budget is used up
};

/// "messages", "bytes", "memory budget" (for logs).
[[nodiscard]] constexpr const char* describe(refusal r) noexcept {
  switch (r) {
    case refusal::messages:
      return "messages";
    case refusal::bytes:
      return "bytes";
    case refusal::budget:
      return "memory budget";
    case refusal::none:
      break;
  }
  return "none";
}

class message_queue {
 public:
  /// A queued message with its size and its share of the budget.
  struct entry {
    message msg;
    std::size_t bytes = 0;  ///< approximate_size(msg) when it was queued
    budget_charge charge;   ///< released when the entry goes
  };

  /// `budget` may be null (nothing charged); it must outlive the queue.
  message_queue(std::size_t capacity, std::size_t byte_limit, memory_budget* budget)
      : queue_(capacity), byte_limit_(byte_limit), budget_(budget) {}

  /// Whether a message of `bytes` fits now by count and bytes (the budget is asked by push()).
  [[nodiscard]] refusal room_for(std::size_t bytes) const noexcept {
    if (queue_.full()) return refusal::messages;
    if (!queue_.empty() && (bytes > byte_limit_ || bytes_ > byte_limit_ - bytes)) {
      return refusal::bytes;
    }
    return refusal::none;
  }

  /// Appends `msg`, `bytes` long, charging the budget. On refusal `msg` is left untouched.
  refusal push(message&& msg, std::size_t bytes) {
    if (const auto r = room_for(bytes); r != refusal::none) return r;
    budget_charge charge;
    if (!budget_charge::try_make(budget_, bytes, charge)) return refusal::budget;
    append(std::move(msg), bytes, std::move(charge));
    return refusal::none;
  }

  /// Appends an entry taken from another queue, with the charge it already holds (the bytes
  /// only move, so the budget is not asked again). On refusal `e` is left untouched.
  refusal push(entry&& e) {
    if (const auto r = room_for(e.bytes); r != refusal::none) return r;
    append(std::move(e));
    return refusal::none;
  }

  /// Puts back an entry just taken by pop(), in front, whatever the bounds.
  void push_front(entry&& e) {
    bytes_ += e.bytes;
    queue_.push_front(std::move(e));
  }

  /// The oldest entry. Precondition: !empty().
  [[nodiscard]] const entry& front() const { return queue_.front(); }

  /// Removes and returns the oldest entry; its charge goes with it. Precondition: !empty().
  entry pop() {
    entry e = queue_.pop();
    bytes_ -= e.bytes;
    return e;
  }

  /// Removes the oldest message into `out`, releasing its charge. Moves the message once, where
  /// pop() moves the whole entry out first. Precondition: !empty().
  void pop_into(std::optional<message>& out) {
    queue_.pop_with([&](entry& e) {
      bytes_ -= e.bytes;
      e.charge.reset();
      out.emplace(std::move(e.msg));
    });
  }

  /// Discards every message and frees the storage; their charges are released.
  void clear() {
    queue_.clear();
    bytes_ = 0;
  }

  [[nodiscard]] std::size_t size() const noexcept { return queue_.size(); }
  [[nodiscard]] bool empty() const noexcept { return queue_.empty(); }
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return queue_.capacity(); }
  [[nodiscard]] std::size_t byte_limit() const noexcept { return byte_limit_; }
  /// Whether it holds at most 1/`part` of its limits, in messages and in bytes (flow control:
  /// over half is crowded, a quarter is drained).
  [[nodiscard]] bool within(std::size_t part) const noexcept {
    return size() <= capacity() / part && bytes_ <= byte_limit_ / part;
  }

 private:
  void append(entry&& e) {
    const std::size_t n = e.bytes;
    (void)queue_.push(std::move(e));  // room_for() said it fits
    bytes_ += n;
  }

  void append(message&& msg, std::size_t bytes, budget_charge&& charge) {
    (void)queue_.emplace(std::move(msg), bytes, std::move(charge));  // room_for(): it fits
    bytes_ += bytes;
  }

  bounded_queue<entry> queue_;
  std::size_t byte_limit_;
  memory_budget* budget_;
  std::size_t bytes_ = 0;
};

}  // namespace ebus::bus
