// The retained messages a session owes its new subscriptions, found a slice at a time
// (session.hpp). Apart from session.cpp, whose hot path (enqueue, fill) stays small.
#include <algorithm>

#include "mqtt/broker/session.hpp"

namespace ebus::mqtt::broker {

using codec::qos_level;

void session::add_retained_walk(retained_walk walk, qos_level qos) {
  cancel_retained_walk(walk.filter());
  if (!retained_) {
    retained_ = std::make_unique<owed_retained>();
    retained_->walks_charge = budget_charge(options_.budget, 0);
  }
  auto& walks = retained_->walks;
  walks.push_back({std::move(walk), qos});
  retained_->walks_charge.resize(retained_->walks_charge.bytes() + walks.back().walk.memory());
  if (online_) owner_->wake();
}

void session::cancel_retained_walk(std::string_view filter) noexcept {
  if (!retained_) return;
  auto& walks = retained_->walks;
  for (auto it = walks.begin(); it != walks.end(); ++it) {
    if (it->walk.filter() == filter) {
      retained_->walks_charge.resize(retained_->walks_charge.bytes() - it->walk.memory());
      walks.erase(it);
      return;
    }
  }
}

void session::find_retained() {
  // A slice that finds nothing (a filter that matches little of a large store) goes on to the
  // next, so that fill() writes something whenever a walk is pending.
  constexpr std::size_t slice = 64;
  auto& owed = *retained_;
  while (owed.messages.empty() && !owed.walks.empty()) {
    auto& front = owed.walks.front();
    const std::size_t before = front.walk.memory();
    const bool more = front.walk.resume(slice, [&](const topic::topic_name&, const message_ptr& m) {
      if (access_ != nullptr && access_->acl &&
          !access_->allows(auth::acl_access::read, m->topic, client_id_, username())) {
        ++access_->denied_deliveries;
        return;
      }
      // Forced: at most one slice waits here, and the message is charged by the store already.
      force_charge_entry();
      owed.messages.push_back({m, std::min(m->qos, front.qos), true});
    });
    owed.walks_charge.resize(owed.walks_charge.bytes() - before + front.walk.memory());
    if (!more) owed.walks.pop_front();
  }
}

}  // namespace ebus::mqtt::broker
