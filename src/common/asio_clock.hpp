#pragma once
// The production clock: std::chrono::steady_clock, wake-ups through Asio timers on the loop.
// Thread safety: loop thread only (now() from any thread).

#include <memory>
#include <optional>
#include <unordered_set>
#include <vector>

#include "common/asio.hpp"
#include "common/clock.hpp"

namespace ebus {

class asio_clock final : public clock {
 public:
  explicit asio_clock(asio::any_io_executor executor) : executor_(std::move(executor)) {}

  [[nodiscard]] time_point now() const noexcept override {
    return std::chrono::steady_clock::now();
  }

  void call_at(time_point at, std::function<void()> fn) override {
    auto wake = std::make_shared<asio::steady_timer>(executor_, at);
    pending_->insert(wake.get());
    wake->async_wait([wake, pending = pending_, fn = std::move(fn)](std::error_code ec) {
      pending->erase(wake.get());
      if (!ec) fn();
    });
  }

  /// Timers share one Asio timer, set to the earliest deadline of a heap: a timer costs a heap
  /// slot and no Asio wait, and re-arming it (a keep-alive deadline pushed back by every
  /// packet) moves it in the heap instead of cancelling and starting a wait.
  [[nodiscard]] std::unique_ptr<timer> make_timer(std::function<void()> fn) override {
    return std::make_unique<heap_timer>(timers_, std::move(fn));
  }

  /// Drops every wake-up not yet due, so that a loop being shut down is not kept running until
  /// the last deadline (a 30 s request timeout, say). Loop thread only.
  void cancel_all() {
    // cancel() only queues the completions; they erase themselves from the set later.
    for (auto* wake : *pending_)
      wake->cancel();
    timers_->clear();
  }

  /// Timers armed now (for tests).
  [[nodiscard]] std::size_t armed_timers() const noexcept { return timers_->size(); }

 private:
  class heap_timer;

  // A binary min-heap of armed timers by deadline; each timer knows its slot.
  class timer_heap : public std::enable_shared_from_this<timer_heap> {
   public:
    static constexpr std::size_t unarmed = static_cast<std::size_t>(-1);

    explicit timer_heap(const asio::any_io_executor& executor) : alarm_(executor) {}

    [[nodiscard]] std::size_t size() const noexcept { return heap_.size(); }

    void schedule(heap_timer* t, time_point at) {
      t->at_ = at;
      if (t->slot_ == unarmed) {
        t->slot_ = heap_.size();
        heap_.push_back(t);
      }
      if (!up(t->slot_)) down(t->slot_);
      set_alarm();
    }

    void remove(heap_timer* t) noexcept {
      const std::size_t i = t->slot_;
      if (i == unarmed) return;
      t->slot_ = unarmed;
      heap_timer* last = heap_.back();
      heap_.pop_back();
      if (i < heap_.size()) {
        heap_[i] = last;
        last->slot_ = i;
        if (!up(i)) down(i);
      }
      if (heap_.empty()) stop_alarm();  // a loop with nothing armed may finish
    }

    void clear() noexcept {
      for (auto* t : heap_)
        t->slot_ = unarmed;
      heap_.clear();
      stop_alarm();
    }

   private:
    bool up(std::size_t i) noexcept {
      bool moved = false;
      while (i > 0) {
        const std::size_t parent = (i - 1) / 2;
        if (!(heap_[i]->at_ < heap_[parent]->at_)) break;
        swap(i, parent);
        i = parent;
        moved = true;
      }
      return moved;
    }
    void down(std::size_t i) noexcept {
      for (;;) {
        std::size_t least = i;
        for (const std::size_t child : {2 * i + 1, 2 * i + 2}) {
          if (child < heap_.size() && heap_[child]->at_ < heap_[least]->at_) least = child;
        }
        if (least == i) return;
        swap(i, least);
        i = least;
      }
    }
    void swap(std::size_t a, std::size_t b) noexcept {
      std::swap(heap_[a], heap_[b]);
      heap_[a]->slot_ = a;
      heap_[b]->slot_ = b;
    }

    // The alarm is moved earlier when the first deadline comes earlier; when it moves later the
    // alarm goes off early, finds nothing due and is set again.
    void set_alarm() {
      if (heap_.empty()) return;
      const time_point first = heap_.front()->at_;
      if (alarm_at_ && *alarm_at_ <= first) return;
      alarm_at_ = first;
      alarm_.expires_at(first);  // cancels the wait for a later deadline
      alarm_.async_wait([weak = weak_from_this()](std::error_code ec) {
        if (ec) return;  // replaced by an earlier deadline, or stopped
        if (const auto self = weak.lock()) self->ring();
      });
    }
    void stop_alarm() noexcept {
      alarm_at_.reset();
      alarm_.cancel();
    }

    void ring() {
      alarm_at_.reset();
      const time_point now = std::chrono::steady_clock::now();
      while (!heap_.empty() && heap_.front()->at_ <= now) {
        heap_timer* t = heap_.front();
        remove(t);
        // A copy: the call may destroy the timer, and the function with it.
        const auto fn = t->fn_;
        fn();
      }
      set_alarm();
    }

    std::vector<heap_timer*> heap_;
    asio::steady_timer alarm_;
    std::optional<time_point> alarm_at_;
  };

  class heap_timer final : public timer {
   public:
    heap_timer(std::shared_ptr<timer_heap> heap, std::function<void()> fn)
        : heap_(std::move(heap)), fn_(std::move(fn)) {}
    ~heap_timer() override { heap_->remove(this); }
    void arm(time_point at) override { heap_->schedule(this, at); }
    void cancel() noexcept override { heap_->remove(this); }

   private:
    friend class timer_heap;
    static constexpr std::size_t unarmed = timer_heap::unarmed;
    std::shared_ptr<timer_heap> heap_;
    std::function<void()> fn_;
    time_point at_{};
    std::size_t slot_ = unarmed;
  };

  asio::any_io_executor executor_;
  // Shared with the completion handlers, which may run after the clock is gone.
  std::shared_ptr<std::unordered_set<asio::steady_timer*>> pending_ =
      std::make_shared<std::unordered_set<asio::steady_timer*>>();
  std::shared_ptr<timer_heap> timers_ = std::make_shared<timer_heap>(executor_);
};

}  // namespace ebus
