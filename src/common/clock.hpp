#pragma once
// Time as a value. Core logic asks a clock for `now()` and for a wake-up at a deadline; it never
// reads std::chrono directly, so tests drive time with a manual clock and never sleep.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

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
  virtual ~clock() = default;

  /// Current time on a monotonic scale.
  [[nodiscard]] virtual time_point now() const noexcept = 0;

  /// Runs `fn` once on the loop thread when `now() >= at`. There is no cancellation: owners
  /// guard `fn` with a liveness token and treat early or stale wake-ups as harmless.
  virtual void call_at(time_point at, std::function<void()> fn) = 0;

  /// One owner's re-armable wake-up. arm() replaces the previous deadline; cancel() and the
  /// destructor drop it, so an owner that is gone leaves nothing behind that runs. A wake-up may
  /// still come early (one already due when re-armed): owners compare now() with their deadline.
  class timer {
   public:
    timer() = default;
    timer(const timer&) = delete;
    timer& operator=(const timer&) = delete;
    virtual ~timer() = default;
    virtual void arm(time_point at) = 0;
    virtual void cancel() noexcept = 0;
  };

  /// A timer that runs `fn` on the loop thread. This default is built on call_at(): a
  /// cancelled wake-up stays queued until due and then does nothing. Clocks that can cancel
  /// for real (asio_clock) override it, so that long deadlines of short-lived owners do not pile
  /// up.
  [[nodiscard]] virtual std::unique_ptr<timer> make_timer(std::function<void()> fn);
};

namespace detail {
class call_at_timer final : public clock::timer {
 public:
  call_at_timer(clock& clk, std::function<void()> fn)
      : clock_(clk), state_(std::make_shared<state>(state{std::move(fn), 0})) {}
  ~call_at_timer() override { cancel(); }

  void arm(clock::time_point at) override {
    const auto armed = ++state_->generation;
    clock_.call_at(at, [weak = std::weak_ptr<state>(state_), armed] {
      // The state lives on while fn runs, even if fn destroys this timer.
      if (const auto s = weak.lock(); s && s->generation == armed) s->fn();
    });
  }
  void cancel() noexcept override { ++state_->generation; }

 private:
  struct state {
    std::function<void()> fn;
    std::uint64_t generation;
  };
  clock& clock_;
  std::shared_ptr<state> state_;
};
}  // namespace detail

inline std::unique_ptr<clock::timer> clock::make_timer(std::function<void()> fn) {
  return std::make_unique<detail::call_at_timer>(*this, std::move(fn));
}

/// Wall-clock milliseconds since the Unix epoch (beehive's `header.timestamp`).
[[nodiscard]] inline std::int64_t unix_millis() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace ebus
