#pragma once
// Time as a value. Core logic asks a clock for `now()` and for a wake-up at a deadline; it never
// reads std::chrono directly, so tests drive time with a manual clock and never sleep.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace ebus {

/// Source of time and of wake-ups for code that runs on the event loop.
/// Thread safety: all calls on the loop thread.
class clock {
 public:
  using duration = std::chrono::steady_clock::duration;
  using time_point = std::chrono::steady_clock::time_point;

  clock() = default;
  clock(const clock&) = delete;
  clock& operator=(const clock&) = delete;
  /// Alarms still armed are disarmed: an alarm that outlives its clock is safe to destroy.
  virtual ~clock();

  /// Current time on a monotonic scale.
  [[nodiscard]] virtual time_point now() const noexcept = 0;

  /// Runs `fn` once on the loop thread when `now() >= at`. There is no cancellation: owners
  /// guard `fn` with a liveness token and treat stale wake-ups as harmless.
  virtual void call_at(time_point at, std::function<void()> fn) = 0;

  /// A re-armable wake-up that its owner embeds and derives from: arming it allocates nothing
  /// (one slot in the clock's heap), which matters for the one deadline of each of many idle
  /// connections. arm() replaces the previous deadline; cancel() and the destructor drop it, so
  /// an owner that is gone leaves nothing behind that runs. on_alarm() may destroy the owner.
  class alarm {
   public:
    explicit alarm(clock& c) noexcept : clock_(&c) {}
    alarm(const alarm&) = delete;
    alarm& operator=(const alarm&) = delete;

    void arm(time_point at) { clock_->schedule(*this, at); }
    void cancel() noexcept {
      if (armed()) clock_->unschedule(*this);
    }
    [[nodiscard]] bool armed() const noexcept { return slot_ != unarmed; }

   protected:
    virtual ~alarm() { cancel(); }
    /// The deadline came. Runs on the loop thread, never inside arm() or cancel().
    virtual void on_alarm() = 0;

   private:
    friend class clock;
    static constexpr std::uint32_t unarmed = UINT32_MAX;
    clock* clock_;
    time_point at_{};
    std::uint32_t slot_ = unarmed;  // in the clock's heap
  };

  /// An alarm that runs a function, for owners that prefer a callback to deriving.
  class timer final : public alarm {
   public:
    timer(clock& c, std::function<void()> fn) : alarm(c), fn_(std::move(fn)) {}
    ~timer() override = default;

   private:
    void on_alarm() override {
      // A copy: the call may destroy the timer, and the function with it.
      const auto fn = fn_;
      fn();
    }
    std::function<void()> fn_;
  };

  [[nodiscard]] std::unique_ptr<timer> make_timer(std::function<void()> fn) {
    return std::make_unique<timer>(*this, std::move(fn));
  }

  /// Alarms armed now.
  [[nodiscard]] std::size_t armed_alarms() const noexcept { return alarms_.size(); }

 protected:
  /// The earliest armed deadline, if any.
  [[nodiscard]] std::optional<time_point> next_alarm() const noexcept {
    if (alarms_.empty()) return std::nullopt;
    return alarms_.front()->at_;
  }
  /// Disarms the earliest alarm and runs it.
  void ring_next();
  /// Disarms every alarm (a loop being shut down need not wait for the last deadline).
  void disarm_all() noexcept;
  /// The earliest deadline moved earlier, or no alarm is left: clocks that wait on a single
  /// system timer (asio_clock) set it again. ring_next() itself does not call it.
  virtual void alarms_changed() {}

 private:
  void schedule(alarm& a, time_point at);
  void unschedule(alarm& a) noexcept;
  /// Takes an armed alarm out of the heap.
  void remove(alarm& a) noexcept;
  // A binary min-heap by deadline; each alarm knows its slot.
  bool sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;
  void swap_slots(std::size_t a, std::size_t b) noexcept;

  std::vector<alarm*> alarms_;
};

/// Wall-clock milliseconds since the Unix epoch (beehive's `header.timestamp`).
[[nodiscard]] inline std::int64_t unix_millis() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace ebus
