// The retained messages a session owes its new subscriptions, found a slice at a time
// (session.hpp). Apart from session.cpp, whose hot path (enqueue, fill) stays small.
#include <algorithm>

#include "mqtt/broker/session.hpp"

namespace ebus::mqtt::broker {

using codec::qos_level;

void session::add_retained_walk(retained_walk walk, qos_level qos) {
  cancel_retained_walk(walk.filter());
  auto& owed = rare().retained;
  if (!owed) {
    owed = std::make_unique<owed_retained>();
    owed->walks_charge = budget_charge(options_.budget, 0);
  }
  auto& walks = owed->walks;
  walks.push_back({std::move(walk), qos});
  owed->walks_charge.resize(owed->walks_charge.bytes() + walks.back().walk.memory());
  if (online_) owner_->wake();
}

void session::cancel_retained_walk(std::string_view filter) noexcept {
  auto* owed = retained();
  if (owed == nullptr) return;
  auto& walks = owed->walks;
  for (auto it = walks.begin(); it != walks.end(); ++it) {
    if (it->walk.filter() == filter) {
      owed->walks_charge.resize(owed->walks_charge.bytes() - it->walk.memory());
      walks.erase(it);
      return;
    }
  }
}

void session::find_retained() {
  // A slice that finds nothing (a filter that matches little of a large store) goes on to the
  // next, so that fill() writes something whenever a walk is pending.
  constexpr std::size_t slice = 64;
  auto& owed = *retained();
  auto* access = options_.access;
  while (owed.messages.empty() && !owed.walks.empty()) {
    auto& front = owed.walks.front();
    const std::size_t before = front.walk.memory();
    const bool more = front.walk.resume(slice, [&](const topic::topic_name&, const message_ptr& m) {
      if (access != nullptr && access->acl &&
          !access->allows(auth::acl_access::read, m->topic, client_id_, username())) {
        ++access->denied_deliveries;
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
