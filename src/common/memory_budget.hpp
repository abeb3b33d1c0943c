#pragma once
// One budget for every byte that clients and modules can make the daemon hold: queued MQTT
// messages, retained messages, receive buffers, bus inboxes and backlogs, remote outbound
// queues, the external-broker backlog. Each holder charges what it keeps and releases it when it
// lets go; a holder that cannot charge refuses the new item and counts the refusal with its own
// reason. The budget itself never allocates and never blocks.
//
// Holders keep a budget_charge (RAII) next to what they hold, so a release can never be missed
// or done twice.
//
// Thread safety: loop thread only (every holder runs there).

#include <cstddef>
#include <cstdint>
#include <utility>

namespace ebus {

class memory_budget {
 public:
  /// `limit` 0 means unlimited (tests, benchmarks).
  explicit memory_budget(std::size_t limit = 0) noexcept : limit_(limit) {}
  memory_budget(const memory_budget&) = delete;
  memory_budget& operator=(const memory_budget&) = delete;

  /// Charges `n` bytes if they fit; false (and nothing charged, one refusal counted) otherwise.
  [[nodiscard]] bool try_charge(std::size_t n) noexcept {
    if (limit_ != 0 && (n > limit_ || used_ > limit_ - n)) {
      ++refusals_;
      return false;
    }
    add(n);
    return true;
  }

  /// Charges `n` bytes even past the limit: for memory already held that must be accounted
  /// (the limit then refuses everything else until it is released).
  void force_charge(std::size_t n) noexcept { add(n); }
  /// Moves a holder's charge from `from` to `to` bytes (growth forced, as force_charge).
  void adjust(std::size_t from, std::size_t to) noexcept {
    if (to > from) {
      force_charge(to - from);
    } else {
      release(from - to);
    }
  }

  void release(std::size_t n) noexcept { used_ = n > used_ ? 0 : used_ - n; }

  /// True when `n` more bytes would fit.
  [[nodiscard]] bool fits(std::size_t n) const noexcept {
    return limit_ == 0 || (n <= limit_ && used_ <= limit_ - n);
  }
  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }
  [[nodiscard]] std::size_t used() const noexcept { return used_; }
  [[nodiscard]] std::uint64_t refusals() const noexcept { return refusals_; }

 private:
  void add(std::size_t n) noexcept { used_ += n; }

  std::size_t limit_;
  std::size_t used_ = 0;
  std::uint64_t refusals_ = 0;
};

/// Bytes charged to a budget, released when this object goes (or is reset). Move-only.
/// A default-constructed or moved-from charge holds nothing.
class budget_charge {
 public:
  budget_charge() noexcept = default;
  budget_charge(memory_budget* budget, std::size_t bytes) noexcept
      : budget_(budget), bytes_(budget != nullptr ? bytes : 0) {}
  budget_charge(budget_charge&& other) noexcept
      : budget_(std::exchange(other.budget_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  budget_charge& operator=(budget_charge&& other) noexcept {
    if (this != &other) {
      reset();
      budget_ = std::exchange(other.budget_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  budget_charge(const budget_charge&) = delete;
  budget_charge& operator=(const budget_charge&) = delete;
  ~budget_charge() { reset(); }

  /// Tries to charge `bytes` to `budget`; an empty charge when they do not fit. A null budget
  /// always succeeds and charges nothing.
  [[nodiscard]] static bool try_make(memory_budget* budget, std::size_t bytes,
                                     budget_charge& out) noexcept {
    if (budget != nullptr && !budget->try_charge(bytes)) return false;
    out = budget_charge(budget, bytes);
    return true;
  }

  /// Changes the charged amount to `bytes`: growth is forced (the memory is already held).
  void resize(std::size_t bytes) noexcept {
    if (budget_ == nullptr) return;
    budget_->adjust(bytes_, bytes);
    bytes_ = bytes;
  }

  void reset() noexcept {
    if (budget_ != nullptr && bytes_ != 0) budget_->release(bytes_);
    budget_ = nullptr;
    bytes_ = 0;
  }

  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }

 private:
  memory_budget* budget_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace ebus
