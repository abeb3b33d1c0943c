// The retained messages a session owes its new subscriptions, found a slice at a time
// (session.hpp). Apart from session.cpp, whose hot path (enqueue, fill) stays small.
#include <algorithm>

#include "mqtt/broker/session.hpp"

namespace ebus::mqtt::broker {

using codec::qos_level;

void session::add_retained_walk(retained_walk walk, qos_level qos) {
  cancel_retained_walk(walk.filter());
  walks_.push_back({std::move(walk), qos});
  walks_charge_.resize(walks_charge_.bytes() + walks_.back().walk.memory());
  if (link_ != nullptr) link_->wake();
}

void session::cancel_retained_walk(std::string_view filter) noexcept {
  for (auto it = walks_.begin(); it != walks_.end(); ++it) {
    if (it->walk.filter() == filter) {
      walks_charge_.resize(walks_charge_.bytes() - it->walk.memory());
      walks_.erase(it);
      return;
    }
  }
}

void session::find_retained() {
  // A slice that finds nothing (a filter that matches little of a large store) goes on to the
  // next, so that fill() writes something whenever a walk is pending.
  constexpr std::size_t slice = 64;
  while (retained_.empty() && !walks_.empty()) {
    auto& front = walks_.front();
    const std::size_t before = front.walk.memory();
    const bool more = front.walk.resume(slice, [&](const topic::topic_name&, const message_ptr& m) {
      if (access_ != nullptr && access_->acl &&
          !access_->allows(auth::acl_access::read, m->topic, client_id_, username_)) {
        ++access_->denied_deliveries;
        return;
      }
      // Forced: at most one slice waits here, and the message is charged by the store already.
      entries_charge_.resize(entries_charge_.bytes() + entry_overhead);
      retained_.push_back({m, std::min(m->qos, front.qos), true});
    });
    walks_charge_.resize(walks_charge_.bytes() - before + front.walk.memory());
    if (!more) walks_.pop_front();
  }
}

}  // namespace ebus::mqtt::broker
