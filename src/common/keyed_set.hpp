#pragma once
// A set of owned objects found by a string key each object carries (a session by its client
// id): an open-addressing table of pointers with linear probing. A node-based
// std::unordered_set of unique_ptrs costs a 32-byte node and a bucket per element; this costs
// one 8-byte slot at a load of 3/8 to 3/4, and the key is read from the object, never copied.
//
// The table doubles past 3/4 full and halves below 1/8, so a burst of clients that has gone
// leaves no large table behind. Erasing shifts the following run back (no tombstones), so a
// long-running table with churn never degrades.
//
// Thread safety: distinct objects safe; shared objects unsafe.

#include <cstddef>
#include <memory>
#include <new>
#include <string_view>
#include <utility>

#include "common/string_hash.hpp"

namespace ebus {

/// `KeyOf` maps `const T&` to a std::string_view that stays the same while the object is in
/// the set.
template <class T, class KeyOf>
class keyed_set {
 public:
  keyed_set() = default;
  keyed_set(const keyed_set&) = delete;
  keyed_set& operator=(const keyed_set&) = delete;
  ~keyed_set() { clear(); }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  /// Slots allocated, for tests and memory accounting.
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  [[nodiscard]] T* find(std::string_view key) const noexcept {
    if (size_ == 0) return nullptr;
    for (std::size_t i = home(key);; i = next(i)) {
      T* s = slots_[i];
      if (s == nullptr) return nullptr;
      if (KeyOf{}(*s) == key) return s;
    }
  }
  [[nodiscard]] bool contains(std::string_view key) const noexcept { return find(key) != nullptr; }

  /// Takes `object`, whose key must not be in the set yet.
  T& insert(std::unique_ptr<T> object) {
    if ((size_ + 1) * 4 > capacity_ * 3) {
      const std::size_t bigger = capacity_ == 0 ? min_capacity : 2 * capacity_;
      rehash(std::make_unique<T*[]>(bigger), bigger);  // zeroed
    }
    T* raw = object.release();
    place(raw);
    ++size_;
    return *raw;
  }

  /// Removes and destroys `object`, which must be in the set.
  void erase(const T& object) noexcept {
    std::size_t i = home(KeyOf{}(object));
    while (slots_[i] != &object)
      i = next(i);
    std::unique_ptr<T> gone(slots_[i]);
    slots_[i] = nullptr;
    --size_;
    // Back-shift: an element of the run that follows moves into the hole unless its home lies
    // cyclically in (hole, its slot], where it is still reachable without the hole.
    for (std::size_t j = next(i); slots_[j] != nullptr; j = next(j)) {
      const std::size_t h = home(KeyOf{}(*slots_[j]));
      const bool reachable = i <= j ? (i < h && h <= j) : (i < h || h <= j);
      if (reachable) continue;
      slots_[i] = std::exchange(slots_[j], nullptr);
      i = j;
    }
    if (capacity_ > min_capacity && size_ * 8 < capacity_) {
      // Shrinking is an economy: when the smaller table cannot be had, the larger one stays.
      if (std::unique_ptr<T*[]> smaller(new (std::nothrow) T*[capacity_ / 2]()); smaller) {
        rehash(std::move(smaller), capacity_ / 2);
      }
    }
  }

  /// Removes and destroys every object.
  void clear() noexcept {
    for (std::size_t i = 0; i < capacity_; ++i)
      delete slots_[i];
    slots_.reset();
    capacity_ = 0;
    size_ = 0;
  }

  /// Calls `f(T&)` for every object; `f` must not change the set.
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < capacity_; ++i) {
      if (slots_[i] != nullptr) f(*slots_[i]);
    }
  }

 private:
  static constexpr std::size_t min_capacity = 16;

  [[nodiscard]] std::size_t home(std::string_view key) const noexcept {
    return string_hash{}(key) & (capacity_ - 1);
  }
  [[nodiscard]] std::size_t next(std::size_t i) const noexcept { return (i + 1) & (capacity_ - 1); }

  void place(T* object) noexcept {
    std::size_t i = home(KeyOf{}(*object));
    while (slots_[i] != nullptr)
      i = next(i);
    slots_[i] = object;
  }

  /// Moves every object into `table`, of `capacity` null slots (a power of two).
  void rehash(std::unique_ptr<T*[]> table, std::size_t capacity) noexcept {
    std::unique_ptr<T*[]> old = std::exchange(slots_, std::move(table));
    const std::size_t old_capacity = std::exchange(capacity_, capacity);
    for (std::size_t i = 0; i < old_capacity; ++i) {
      if (old[i] != nullptr) place(old[i]);
    }
  }

  std::unique_ptr<T*[]> slots_;
  std::size_t capacity_ = 0;
  std::size_t size_ = 0;
};

}  // namespace ebus
