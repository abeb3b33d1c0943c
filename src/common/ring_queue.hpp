#pragma once
// A FIFO queue in one ring buffer that holds no memory until the first push_back(), and again
// after release() on an empty queue. Per-client queues (messages waiting, messages in flight,
// retained messages owed) are empty most of the time on a broker with many idle clients, and
// std::deque allocates about 600 bytes as soon as it is constructed. An emptied queue keeps its
// storage until release(), so that a busy queue that drains after every burst does not
// allocate again for the next one.
//
// The capacity is a power of two and doubles when full. Besides the ends, erase() removes an
// element from the middle (shifting the shorter side), for acknowledgements that arrive out of
// order. Iterators are invalidated by every change.
//
// Thread safety: distinct objects safe; shared objects unsafe.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace ebus {

template <class T>
class ring_queue {
  template <bool Const>
  class basic_iterator;

 public:
  using value_type = T;
  using iterator = basic_iterator<false>;
  using const_iterator = basic_iterator<true>;

  ring_queue() = default;
  ring_queue(const ring_queue&) = delete;
  ring_queue& operator=(const ring_queue&) = delete;
  ring_queue(ring_queue&& other) noexcept
      : slots_(std::exchange(other.slots_, nullptr)),
        capacity_(std::exchange(other.capacity_, 0)),
        head_(std::exchange(other.head_, 0)),
        size_(std::exchange(other.size_, 0)) {}
  ring_queue& operator=(ring_queue&& other) noexcept {
    if (this != &other) {
      clear();
      slots_ = std::exchange(other.slots_, nullptr);
      capacity_ = std::exchange(other.capacity_, 0);
      head_ = std::exchange(other.head_, 0);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~ring_queue() { clear(); }

  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// Slots allocated (0 while empty), for memory accounting.
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  T& front() noexcept { return at(0); }
  const T& front() const noexcept { return at(0); }
  T& back() noexcept { return at(size_ - 1); }
  const T& back() const noexcept { return at(size_ - 1); }

  template <class... Args>
  T& emplace_back(Args&&... args) {
    if (size_ == capacity_) grow();
    T* slot = &slots_[(head_ + size_) & (capacity_ - 1)];
    std::construct_at(slot, std::forward<Args>(args)...);
    ++size_;
    return *slot;
  }
  void push_back(T&& value) { emplace_back(std::move(value)); }
  void push_back(const T& value) { emplace_back(value); }

  void pop_front() noexcept {
    std::destroy_at(&at(0));
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
  }

  /// Removes the element at `pos`; returns the iterator to the element that followed it.
  iterator erase(const_iterator pos) noexcept {
    const std::size_t i = pos.index_;
    if (i < size_ / 2) {
      for (std::size_t k = i; k > 0; --k)
        at(k) = std::move(at(k - 1));
      pop_front();
      return iterator(this, i);
    }
    for (std::size_t k = i; k + 1 < size_; ++k)
      at(k) = std::move(at(k + 1));
    std::destroy_at(&at(size_ - 1));
    --size_;
    return iterator(this, i);
  }

  /// Removes every element and frees the storage.
  void clear() noexcept {
    for (std::size_t k = 0; k < size_; ++k)
      std::destroy_at(&at(k));
    size_ = 0;
    deallocate();
  }

  /// Frees the storage of an empty queue (nothing otherwise).
  void release() noexcept {
    if (size_ == 0) deallocate();
  }

  iterator begin() noexcept { return iterator(this, 0); }
  iterator end() noexcept { return iterator(this, size_); }
  const_iterator begin() const noexcept { return const_iterator(this, 0); }
  const_iterator end() const noexcept { return const_iterator(this, size_); }

 private:
  static constexpr std::uint32_t first_capacity = 4;

  T& at(std::size_t k) noexcept { return slots_[(head_ + k) & (capacity_ - 1)]; }
  const T& at(std::size_t k) const noexcept { return slots_[(head_ + k) & (capacity_ - 1)]; }

  void grow() {
    if (capacity_ > UINT32_MAX / 2) throw std::length_error("ring_queue is full");
    const std::uint32_t bigger = capacity_ == 0 ? first_capacity : 2 * capacity_;
    T* moved = std::allocator<T>().allocate(bigger);
    for (std::size_t k = 0; k < size_; ++k) {
      std::construct_at(&moved[k], std::move(at(k)));
      std::destroy_at(&at(k));
    }
    if (slots_ != nullptr) std::allocator<T>().deallocate(slots_, capacity_);
    slots_ = moved;
    capacity_ = bigger;
    head_ = 0;
  }

  void deallocate() noexcept {
    if (slots_ != nullptr) std::allocator<T>().deallocate(slots_, capacity_);
    slots_ = nullptr;
    capacity_ = 0;
    head_ = 0;
  }

  template <bool Const>
  class basic_iterator {
   public:
    using owner_type = std::conditional_t<Const, const ring_queue, ring_queue>;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using reference = std::conditional_t<Const, const T&, T&>;
    using pointer = std::conditional_t<Const, const T*, T*>;
    using iterator_category = std::forward_iterator_tag;

    basic_iterator() = default;
    basic_iterator(owner_type* owner, std::size_t index) : owner_(owner), index_(index) {}
    // A mutable iterator converts to a const one (erase() takes either).
    template <bool C = Const, class = std::enable_if_t<C>>
    basic_iterator(const basic_iterator<false>& other)  // NOLINT(google-explicit-constructor)
        : owner_(other.owner_), index_(other.index_) {}

    reference operator*() const noexcept { return owner_->at(index_); }
    pointer operator->() const noexcept { return &owner_->at(index_); }
    basic_iterator& operator++() noexcept {
      ++index_;
      return *this;
    }
    basic_iterator operator++(int) noexcept {
      auto copy = *this;
      ++index_;
      return copy;
    }
    friend bool operator==(const basic_iterator& a, const basic_iterator& b) noexcept {
      return a.index_ == b.index_;
    }

   private:
    friend class ring_queue;
    template <bool>
    friend class basic_iterator;
    owner_type* owner_ = nullptr;
    std::size_t index_ = 0;
  };

  // 32-bit counts: 16 bytes of state besides the pointer, for a queue most clients keep empty.
  T* slots_ = nullptr;
  std::uint32_t capacity_ = 0;
  std::uint32_t head_ = 0;
  std::uint32_t size_ = 0;
};

}  // namespace ebus
