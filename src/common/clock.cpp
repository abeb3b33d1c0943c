#include "common/clock.hpp"

#include <utility>

namespace ebus {

clock::~clock() {
  disarm_all();
}

void clock::schedule(alarm& a, time_point at) {
  const auto first = next_alarm();
  a.at_ = at;
  if (a.slot_ == alarm::unarmed) {
    a.slot_ = static_cast<std::uint32_t>(alarms_.size());
    alarms_.push_back(&a);
  }
  if (!sift_up(a.slot_)) sift_down(a.slot_);
  // Only an earlier first deadline needs the system timer moved; one that moved later makes it
  // ring early, find nothing due and be set again.
  if (!first || alarms_.front()->at_ < *first) alarms_changed();
}

void clock::unschedule(alarm& a) noexcept {
  remove(a);
  if (alarms_.empty()) alarms_changed();  // a loop with nothing armed may finish
}

void clock::ring_next() {
  alarm* a = alarms_.front();
  // Without alarms_changed(): the caller sets its system timer after the due ones ran.
  remove(*a);
  a->on_alarm();
}

void clock::remove(alarm& a) noexcept {
  const std::size_t i = a.slot_;
  a.slot_ = alarm::unarmed;
  alarm* last = alarms_.back();
  alarms_.pop_back();
  if (i < alarms_.size()) {
    alarms_[i] = last;
    last->slot_ = static_cast<std::uint32_t>(i);
    if (!sift_up(i)) sift_down(i);
  }
}

void clock::disarm_all() noexcept {
  for (auto* a : alarms_)
    a->slot_ = alarm::unarmed;
  alarms_.clear();
}

bool clock::sift_up(std::size_t i) noexcept {
  bool moved = false;
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!(alarms_[i]->at_ < alarms_[parent]->at_)) break;
    swap_slots(i, parent);
    i = parent;
    moved = true;
  }
  return moved;
}

void clock::sift_down(std::size_t i) noexcept {
  for (;;) {
    std::size_t least = i;
    for (const std::size_t child : {2 * i + 1, 2 * i + 2}) {
      if (child < alarms_.size() && alarms_[child]->at_ < alarms_[least]->at_) least = child;
    }
    if (least == i) return;
    swap_slots(i, least);
    i = least;
  }
}

void clock::swap_slots(std::size_t a, std::size_t b) noexcept {
  std::swap(alarms_[a], alarms_[b]);
  alarms_[a]->slot_ = static_cast<std::uint32_t>(a);
  alarms_[b]->slot_ = static_cast<std::uint32_t>(b);
}

}  // namespace ebus
