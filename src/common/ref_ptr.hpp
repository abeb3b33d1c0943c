#pragma once
// An owning pointer to an object that counts its own references, one pointer wide: no control
// block beside the object and no weak count, which std::shared_ptr and enable_shared_from_this
// cost (32 bytes) on every one of many idle connections. T provides add_ref() and release();
// release() destroys the object when the count reaches zero.
//
// Thread safety: the objects this project counts live on one thread (the loop); copies of one
// pointer stay there.

#include <cstddef>
#include <utility>

namespace ebus {

template <class T>
class ref_ptr {
 public:
  ref_ptr() noexcept = default;
  /// Takes a reference to `object` (which may have others already).
  explicit ref_ptr(T* object) noexcept : object_(object) {
    if (object_ != nullptr) object_->add_ref();
  }
  ref_ptr(const ref_ptr& other) noexcept : ref_ptr(other.object_) {}
  ref_ptr(ref_ptr&& other) noexcept : object_(std::exchange(other.object_, nullptr)) {}
  ref_ptr& operator=(ref_ptr other) noexcept {
    std::swap(object_, other.object_);
    return *this;
  }
  ~ref_ptr() {
    if (object_ != nullptr) object_->release();
  }

  [[nodiscard]] T* get() const noexcept { return object_; }
  T& operator*() const noexcept { return *object_; }
  T* operator->() const noexcept { return object_; }
  explicit operator bool() const noexcept { return object_ != nullptr; }
  void reset() noexcept { ref_ptr().swap(*this); }
  void swap(ref_ptr& other) noexcept { std::swap(object_, other.object_); }

  friend bool operator==(const ref_ptr& a, const ref_ptr& b) noexcept {
    return a.object_ == b.object_;
  }

 private:
  T* object_ = nullptr;
};

/// Makes a T with `args` and the first reference to it.
template <class T, class... Args>
[[nodiscard]] ref_ptr<T> make_ref(Args&&... args) {
  return ref_ptr<T>(new T(std::forward<Args>(args)...));
}

}  // namespace ebus
