#pragma once
// A FIFO with a hard capacity over a ring_queue, whose storage grows on demand (doubling), so an
// idle module's 1024-slot inbox costs nothing and a busy one never allocates per message. An
// element is built in its slot when pushed and destroyed when popped: a message moves in and out
// once each, with no assignment over a moved-from element.

#include <cstddef>
#include <utility>

#include "common/ring_queue.hpp"

namespace ebus::bus {

template <class T>
class bounded_queue {
 public:
  explicit bounded_queue(std::size_t capacity) : capacity_(capacity) {}

  [[nodiscard]] std::size_t size() const noexcept { return ring_.size(); }
  [[nodiscard]] bool empty() const noexcept { return ring_.empty(); }
  [[nodiscard]] bool full() const noexcept { return size() >= capacity_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  /// Appends `value`; returns false (and leaves `value` untouched) when the queue is full.
  bool push(T&& value) { return emplace(std::move(value)); }

  /// Appends an element built in place from `args`; returns false, building nothing, when the
  /// queue is full.
  template <class... Args>
  bool emplace(Args&&... args) {
    if (full()) return false;
    ring_.emplace_back(std::forward<Args>(args)...);
    return true;
  }

  /// Puts `value` in front of the oldest element, whatever the capacity: for an element just
  /// taken by pop() that must go back (the queue may then hold more than its capacity).
  void push_front(T&& value) { ring_.push_front(std::move(value)); }

  /// The oldest element. Precondition: !empty().
  [[nodiscard]] const T& front() const { return ring_.front(); }

  /// Removes the oldest element after `take(T& element)` has moved out what it wants.
  /// Precondition: !empty().
  template <class F>
  void pop_with(F&& take) {
    take(ring_.front());
    ring_.pop_front();
  }

  /// Removes and returns the oldest element. Precondition: !empty().
  T pop() {
    T value = std::move(ring_.front());
    ring_.pop_front();
    return value;
  }

  /// Removes every element and frees the storage.
  void clear() noexcept { ring_.clear(); }

 private:
  std::size_t capacity_;
  ring_queue<T> ring_;
};

}  // namespace ebus::bus
