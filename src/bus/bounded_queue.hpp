#pragma once
// A FIFO ring with a hard capacity that grows its storage on demand (doubling), so an idle
// module's 1024-slot inbox costs nothing and a busy one never allocates per message.

#include <cstddef>
#include <utility>
#include <vector>

namespace ebus::bus {

template <class T>
class bounded_queue {
 public:
  explicit bounded_queue(std::size_t capacity) : capacity_(capacity) {}

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] bool full() const noexcept { return size_ >= capacity_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  /// Appends `value`; returns false (and leaves `value` untouched) when the queue is full.
  bool push(T&& value) {
    if (full()) return false;
    if (size_ == slots_.size()) grow();
    slots_[(head_ + size_) & (slots_.size() - 1)] = std::move(value);
    ++size_;
    return true;
  }

  /// Puts `value` in front of the oldest element, whatever the capacity: for an element just
  /// taken by pop() that must go back (the queue may then hold more than its capacity).
  void push_front(T&& value) {
    if (size_ == slots_.size()) grow();
    head_ = (head_ + slots_.size() - 1) & (slots_.size() - 1);
    slots_[head_] = std::move(value);
    ++size_;
  }

  /// The oldest element. Precondition: !empty().
  [[nodiscard]] const T& front() const { return slots_[head_]; }

  /// Appends an element that `fill(T& slot)` writes in place (its slot holds a moved-from or
  /// default element): one assignment per field instead of building a T and moving it in.
  /// Returns false, without calling `fill`, when the queue is full.
  template <class F>
  bool push_with(F&& fill) {
    if (full()) return false;
    if (size_ == slots_.size()) grow();
    fill(slots_[(head_ + size_) & (slots_.size() - 1)]);
    ++size_;
    return true;
  }

  /// Removes the oldest element after `take(T& slot)` has moved out what it wants; the slot
  /// keeps whatever `take` left in it until it is reused. Precondition: !empty().
  template <class F>
  void pop_with(F&& take) {
    T& slot = slots_[head_];
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
    take(slot);
  }

  /// Removes and returns the oldest element. Precondition: !empty().
  T pop() {
    T value = std::move(slots_[head_]);
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
    return value;
  }

  void clear() {
    while (!empty())
      (void)pop();
  }

 private:
  void grow() {
    std::size_t next = slots_.empty() ? 4 : slots_.size() * 2;  // power of two: index by mask
    std::vector<T> bigger(next);
    for (std::size_t i = 0; i < size_; ++i) {
      bigger[i] = std::move(slots_[(head_ + i) & (slots_.size() - 1)]);
    }
    slots_ = std::move(bigger);
    head_ = 0;
  }

  std::size_t capacity_;
  std::vector<T> slots_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace ebus::bus
