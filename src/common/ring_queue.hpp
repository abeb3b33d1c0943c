#pragma once
// A FIFO queue in one ring buffer that holds no memory until the first push_back(), and again
// after release() on an empty queue. Per-client queues (messages waiting, messages in flight,
// retained messages owed) are empty most of the time on a broker with many idle clients, and
// std::deque allocates about 600 bytes as soon as it is constructed. An emptied queue keeps its
// storage until release(), so that a busy queue that drains after every burst does not
// allocate again for the next one.
//
// The queue object is one pointer: the counts live in a header at the start of the storage, so a
// session's empty queues cost 8 bytes each rather than 24. The owner's running totals over the
// elements (`Totals`, bytes held say) can live there too: they cost nothing while the queue has
// no storage, and read as zero then.
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
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace ebus {

/// No totals kept beside the elements.
struct no_totals {};

template <class T, class Totals = no_totals>
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
  ring_queue(ring_queue&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
  ring_queue& operator=(ring_queue&& other) noexcept {
    if (this != &other) {
      clear();
      block_ = std::exchange(other.block_, nullptr);
    }
    return *this;
  }
  ~ring_queue() { clear(); }

  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return block_ ? block_->size : 0; }
  /// Slots allocated (0 while empty), for memory accounting.
  [[nodiscard]] std::size_t capacity() const noexcept { return block_ ? block_->capacity : 0; }

  /// The owner's totals; zero while the queue has no storage.
  [[nodiscard]] const Totals& totals() const noexcept {
    static constexpr Totals none{};
    return block_ ? block_->totals : none;
  }
  /// Precondition: the queue has storage (an element was added and it was not released since).
  /// release() frees it only when the queue is empty, when the totals must be zero again.
  Totals& mutable_totals() noexcept { return block_->totals; }

  T& front() noexcept { return at(0); }
  const T& front() const noexcept { return at(0); }
  T& back() noexcept { return at(block_->size - 1); }
  const T& back() const noexcept { return at(block_->size - 1); }

  /// Builds the element in its slot; an aggregate from braces, so that its members are
  /// initialised from `args` directly.
  template <class... Args>
  T& emplace_back(Args&&... args) {
    if (size() == capacity()) grow();
    T* slot = &slots()[(block_->head + block_->size) & (block_->capacity - 1)];
    if constexpr (std::is_aggregate_v<T>) {
      ::new (static_cast<void*>(slot)) T{std::forward<Args>(args)...};
    } else {
      std::construct_at(slot, std::forward<Args>(args)...);
    }
    ++block_->size;
    return *slot;
  }
  void push_back(T&& value) { emplace_back(std::move(value)); }
  void push_back(const T& value) { emplace_back(value); }

  /// Puts `value` before the first element.
  void push_front(T&& value) {
    if (size() == capacity()) grow();
    block_->head = (block_->head + block_->capacity - 1) & (block_->capacity - 1);
    std::construct_at(&slots()[block_->head], std::move(value));
    ++block_->size;
  }

  void pop_front() noexcept {
    std::destroy_at(&at(0));
    block_->head = (block_->head + 1) & (block_->capacity - 1);
    --block_->size;
  }

  /// Removes the element at `pos`; returns the iterator to the element that followed it.
  iterator erase(const_iterator pos) noexcept {
    const std::size_t i = pos.index_;
    const std::size_t n = block_->size;
    if (i < n / 2) {
      for (std::size_t k = i; k > 0; --k)
        at(k) = std::move(at(k - 1));
      pop_front();
      return iterator(this, i);
    }
    for (std::size_t k = i; k + 1 < n; ++k)
      at(k) = std::move(at(k + 1));
    std::destroy_at(&at(n - 1));
    --block_->size;
    return iterator(this, i);
  }

  /// Removes every element and frees the storage.
  void clear() noexcept {
    if (block_ == nullptr) return;
    for (std::size_t k = 0; k < block_->size; ++k)
      std::destroy_at(&at(k));
    deallocate();
  }

  /// Frees the storage of an empty queue (nothing otherwise).
  void release() noexcept {
    if (size() == 0) deallocate();
  }

  iterator begin() noexcept { return iterator(this, 0); }
  iterator end() noexcept { return iterator(this, size()); }
  const_iterator begin() const noexcept { return const_iterator(this, 0); }
  const_iterator end() const noexcept { return const_iterator(this, size()); }

 private:
  static constexpr std::uint32_t first_capacity = 4;

  // The storage: this header, then `capacity` slots.
  struct header {
    std::uint32_t capacity;
    std::uint32_t head;
    std::uint32_t size;
    [[no_unique_address]] Totals totals;
  };
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
  static_assert(alignof(header) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
  static_assert(std::is_trivially_destructible_v<Totals>);  // freed with the storage
  static constexpr std::size_t slots_offset =
      (sizeof(header) + alignof(T) - 1) / alignof(T) * alignof(T);

  T* slots() const noexcept {
    return std::launder(reinterpret_cast<T*>(reinterpret_cast<char*>(block_) + slots_offset));
  }
  T& at(std::size_t k) const noexcept {
    return slots()[(block_->head + k) & (block_->capacity - 1)];
  }

  void grow() {
    const std::uint32_t capacity = block_ ? block_->capacity : 0;
    if (capacity > UINT32_MAX / 2) throw std::length_error("ring_queue is full");
    const std::uint32_t bigger = capacity == 0 ? first_capacity : 2 * capacity;
    auto* grown = static_cast<header*>(::operator new(slots_offset + bigger * sizeof(T)));
    grown->capacity = bigger;
    grown->head = 0;
    grown->size = 0;
    std::construct_at(&grown->totals, block_ ? block_->totals : Totals{});
    T* moved = std::launder(reinterpret_cast<T*>(reinterpret_cast<char*>(grown) + slots_offset));
    if (block_ != nullptr) {
      for (std::size_t k = 0; k < block_->size; ++k) {
        std::construct_at(&moved[k], std::move(at(k)));
        std::destroy_at(&at(k));
      }
      grown->size = block_->size;
      deallocate();
    }
    block_ = grown;
  }

  void deallocate() noexcept {
    ::operator delete(block_);
    block_ = nullptr;
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

  header* block_ = nullptr;
};

}  // namespace ebus
