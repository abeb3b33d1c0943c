#pragma once
// An immutable string shared by a reference count, one pointer wide. A session and the
// connection attached to it keep one copy of the client id between them, in one allocation,
// where two std::strings cost 64 bytes and, for ids longer than 15 characters, two more blocks.
//
// Thread safety: the count is not atomic; copies of one string stay on one thread (the loop).

#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

namespace ebus {

class shared_string {
 public:
  shared_string() noexcept = default;
  explicit shared_string(std::string_view text) {
    if (text.empty()) return;
    void* memory = ::operator new(sizeof(header) + text.size());
    block_ = ::new (memory) header{1, static_cast<std::uint32_t>(text.size())};
    std::memcpy(block_ + 1, text.data(), text.size());
  }
  shared_string(const shared_string& other) noexcept : block_(other.block_) {
    if (block_ != nullptr) ++block_->refs;
  }
  shared_string(shared_string&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
  shared_string& operator=(shared_string other) noexcept {
    std::swap(block_, other.block_);
    return *this;
  }
  ~shared_string() {
    if (block_ != nullptr) release(block_);
  }

  [[nodiscard]] std::string_view view() const noexcept {
    if (block_ == nullptr) return {};
    return {reinterpret_cast<const char*>(block_ + 1), block_->size};
  }
  operator std::string_view() const noexcept {
    return view();
  }  // NOLINT(google-explicit-constructor)
  [[nodiscard]] bool empty() const noexcept { return block_ == nullptr; }
  [[nodiscard]] std::size_t size() const noexcept { return block_ == nullptr ? 0 : block_->size; }
  /// Holders of this text, for tests.
  [[nodiscard]] std::uint32_t use_count() const noexcept {
    return block_ == nullptr ? 0 : block_->refs;
  }

  friend bool operator==(const shared_string& a, std::string_view b) noexcept {
    return a.view() == b;
  }

 private:
  struct header {
    std::uint32_t refs;
    std::uint32_t size;  // the text follows the header
  };
  // Out of line: once inlined, GCC's use-after-free analysis cannot see that a count above one
  // keeps the block, and warns about reads of a string that is still held.
  [[gnu::noinline]] static void release(header* block) noexcept {
    if (--block->refs == 0) ::operator delete(block);
  }

  header* block_ = nullptr;
};

}  // namespace ebus
