#pragma once
// A note on matching
// ==================
//
// A topic is a list of levels separated by '/'. Empty levels are ordinary levels: "a//b" has the
// three levels "a", "" and "b", "/a" starts with an empty level, and "a/" ends with one. A filter
// is a topic whose levels may be '+' (exactly one level, which may be empty) or, as the last level
// only, '#' (any number of levels, including none: "a/#" matches "a" as well as "a/b/c")
// [MQTT-4.7.1-2][MQTT-4.7.1-3]. Filters arrive here as topic_filter, so parse_filter() has already
// rejected "a/#/b", "a#", "a+/b" and the like; the tree has nothing left to reject.
//
// Take the name "a/b/c". These filters match it:
//
//     a/b/c   +/b/c   a/+/c   a/b/+   +/+/+   #   a/#   a/b/#   a/b/c/#   +/b/c/#
//
// These are valid filters that do not:
//
//     a/b   a/b/c/d   +/+   a/+/+/+   b/#   a//b/c   a/b/c/
//
// Names that start with '$' ("$SYS/uptime", "$hw/events/upload") are for server-specific use.
// A filter whose *first* level is a wildcard never matches them [MQTT-4.7.2-1]: "#", "+/uptime"
// and "+/#" do not match "$SYS/uptime", while "$SYS/#" and "$SYS/+" do.
//
// Layout
// ------
// Each node stands for one level of one or more filters (the root stands for "before the first
// level") and has:
//
//   children  literal next levels, a hash map from level text to node;
//   plus      the '+' next level, a dedicated slot;
//   hash      the subscriptions to "<this node's path>/#"; '#' is always last, so it needs no node;
//   exact     the subscriptions whose filter ends at this node.
// A filter's subscriptions are a subscriber_set: a small vector for the one subscriber most
// filters have, with a hash index once there are many.
//
// The dedicated '+' and '#' slots follow nats-server's sublist (`level{nodes, pwc, fwc}`): when no
// filter has a wildcard at some position, checking for one costs a null test, not a hash lookup.
// (Mosquitto keeps '+' and '#' as ordinary children and pays three lookups per level.)
//
// Matching a name walks its levels from the root. At each node reached with some levels still
// unread, the walk:
//   1. reports `hash` (that is how "a/#" matches "a": the node for "a" is reached with no
//      levels left and its '#' subscriptions still apply);
//   2. if no level is left, reports `exact` and stops;
//   3. otherwise reads the next level and continues into the literal child of that name and into
//      `plus`.
// At the root, steps 1 and 3 skip `hash` and `plus` for names that start with '$'; that is the
// whole of the [MQTT-4.7.2-1] rule, and "$SYS/#" still matches through the literal child "$SYS".
//
// The walk reads levels as string_views into the name, and the literal lookup is heterogeneous
// (a transparent hash), so matching allocates nothing. It is not recursive either: a topic of
// 65,535 bytes can have 65,536 levels. Pending '+' branches go on a small stack that lives in the
// caller's frame and spills to the heap only past 32 pending branches. For the same reason,
// erase() prunes and the destructor tears down iteratively.
//
// erase() removes nodes that are left with no children and no subscriptions, so the size of the
// tree follows the live subscriptions.
//
// Not here: shared subscriptions (MQTT 5; this MQTT 3.1.1 broker has none, so
// "$share/<group>/<filter>" is an ordinary filter that matches topics starting with "$share/")
// and a match cache (nats-server has one; add it only when bench/topic_bench.cpp shows the need).

#include <cstddef>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "mqtt/topic/subscriber_set.hpp"
#include "mqtt/topic/topic.hpp"
#include "mqtt/topic/tree_detail.hpp"

namespace ebus::mqtt::topic {

/// Subscriptions indexed by topic filter, matched against the topic names of PUBLISH packets.
/// `Key` identifies a subscriber (a session pointer or id; std::hash<Key> and operator== must
/// exist). `Value` is per-subscription data, such as the granted QoS or the v5 options.
/// Thread safety: distinct objects safe, shared objects unsafe.
template <class Key, class Value>
class subscription_tree {
 public:
  subscription_tree() = default;
  subscription_tree(const subscription_tree&) = delete;
  subscription_tree& operator=(const subscription_tree&) = delete;
  subscription_tree(subscription_tree&& other) noexcept
      : root_(std::move(other.root_)),
        size_(std::exchange(other.size_, 0)),
        nodes_(std::exchange(other.nodes_, 0)) {}
  subscription_tree& operator=(subscription_tree&& other) noexcept {
    if (this != &other) {
      subscription_tree old(std::move(*this));  // torn down iteratively when it goes
      root_ = std::move(other.root_);
      size_ = std::exchange(other.size_, 0);
      nodes_ = std::exchange(other.nodes_, 0);
    }
    return *this;
  }
  ~subscription_tree() { detail::destroy_below(root_); }

  /// Subscribes `key` to `filter`. If `key` already has a subscription to exactly this filter,
  /// its value is replaced, as a repeated SUBSCRIBE replaces the subscription [MQTT-3.8.4-3].
  /// Returns true if the subscription is new.
  bool insert(const topic_filter& filter, Key key, Value value);

  /// Removes the subscription of `key` to exactly `filter` [MQTT-3.10.4-1] and prunes the nodes
  /// this leaves empty. Returns false if there was no such subscription.
  bool erase(const topic_filter& filter, const Key& key);

  /// Calls `visit(const Key&, const Value&, const topic_filter&)` once for every subscription
  /// whose filter matches `name`, in no particular order. A key subscribed with several
  /// overlapping filters is visited once per filter; the broker picks the delivery QoS or sends
  /// one message per subscription [MQTT-3.3.5-1]. `name` should be a valid topic name (see
  /// parse_name()); for other strings the result is unspecified but safe. `visit` must not change
  /// the tree. Allocates only when the walk has more than 32 '+' branches pending at once.
  template <class F>
  void match(std::string_view name, F&& visit) const;

  /// Whether any subscription matches `name`: match() that stops at the first one.
  [[nodiscard]] bool matches_any(std::string_view name) const {
    return walk(name, [](const subscribers& s) { return !s.by_key.empty(); });
  }

  /// Number of (filter, key) subscriptions.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

  /// Number of nodes below the root: the memory the tree holds, for metrics and tests. It falls
  /// back to 0 once every subscription is erased.
  [[nodiscard]] std::size_t node_count() const noexcept { return nodes_; }

 private:
  /// The subscriptions to one filter.
  struct subscribers {
    explicit subscribers(const topic_filter& f) : filter(f) {}
    topic_filter filter;
    subscriber_set<Key, Value> by_key;
  };

  struct node {
    detail::child_map<node> children;
    std::unique_ptr<node> plus;
    std::unique_ptr<subscribers> hash;
    std::unique_ptr<subscribers> exact;

    [[nodiscard]] bool unused() const noexcept {
      return children.empty() && !plus && !hash && !exact;
    }
    void take_children(std::vector<std::unique_ptr<node>>& out) {
      for (auto& entry : children) {
        out.push_back(std::move(entry.second));
      }
      children.clear();
      if (plus) out.push_back(std::move(plus));
    }
  };

  /// One step of erase()'s descent, kept to prune on the way back up.
  struct step {
    node* parent;
    std::string_view level;
  };

  template <class F>
  static void visit_all(const subscribers& subs, F& visit) {
    for (const auto& entry : subs.by_key) {
      visit(entry.first, entry.second, subs.filter);
    }
  }

  /// The walk of match(): calls `found(const subscribers&)` for each matching filter and stops
  /// (returning true) as soon as it returns true.
  template <class F>
  bool walk(std::string_view name, F&& found) const;

  node root_;
  std::size_t size_ = 0;
  std::size_t nodes_ = 0;
};

template <class Key, class Value>
bool subscription_tree<Key, Value>::insert(const topic_filter& filter, Key key, Value value) {
  const std::string_view text = filter.str();
  node* current = &root_;
  std::unique_ptr<subscribers>* slot = &root_.exact;
  std::size_t pos = 0;
  while (!detail::at_end(text, pos)) {
    const std::string_view level = detail::read_level(text, pos);
    if (level == "#") {  // always the last level
      slot = &current->hash;
      break;
    }
    if (level == "+") {
      if (!current->plus) {
        current->plus = std::make_unique<node>();
        ++nodes_;
      }
      current = current->plus.get();
    } else {
      current = &detail::find_or_add_child(current->children, level, nodes_);
    }
    slot = &current->exact;
  }
  if (!*slot) *slot = std::make_unique<subscribers>(filter);
  const bool added = (*slot)->by_key.insert_or_assign(std::move(key), std::move(value));
  if (added) ++size_;
  return added;
}

template <class Key, class Value>
bool subscription_tree<Key, Value>::erase(const topic_filter& filter, const Key& key) {
  const std::string_view text = filter.str();
  std::vector<step> path;
  node* current = &root_;
  std::unique_ptr<subscribers>* slot = nullptr;
  std::size_t pos = 0;
  while (!detail::at_end(text, pos)) {
    const std::string_view level = detail::read_level(text, pos);
    if (level == "#") {
      slot = &current->hash;
      break;
    }
    node* next = level == "+" ? current->plus.get() : detail::find_child(current->children, level);
    if (next == nullptr) return false;
    path.push_back({current, level});
    current = next;
  }
  if (slot == nullptr) slot = &current->exact;
  if (!*slot || !(*slot)->by_key.erase(key)) return false;
  --size_;
  if ((*slot)->by_key.empty()) slot->reset();

  // Prune from the deepest node up; the root stays.
  for (auto it = path.rbegin(); it != path.rend() && current->unused(); ++it) {
    node& parent = *it->parent;
    if (it->level == "+") {
      parent.plus.reset();
    } else {
      parent.children.erase(parent.children.find(it->level));
    }
    --nodes_;
    current = &parent;
  }
  return true;
}

template <class Key, class Value>
template <class F>
void subscription_tree<Key, Value>::match(std::string_view name, F&& visit) const {
  walk(name, [&visit](const subscribers& s) {
    visit_all(s, visit);
    return false;
  });
}

template <class Key, class Value>
template <class F>
bool subscription_tree<Key, Value>::walk(std::string_view name, F&& found) const {
  struct frame {
    const node* at;
    std::size_t pos;  // offset of the next unread level of `name`
  };
  const bool dollar = name.starts_with('$');
  detail::walk_stack<frame, 32> pending;
  pending.push({&root_, 0});
  while (!pending.empty()) {
    frame f = pending.pop();
    // Follow literal children in this loop; only '+' branches go on the stack.
    for (;;) {
      const bool root_skips_wildcards = dollar && f.pos == 0;  // [MQTT-4.7.2-1]
      if (f.at->hash && !root_skips_wildcards && found(*f.at->hash)) return true;
      if (detail::at_end(name, f.pos)) {
        if (f.at->exact && found(*f.at->exact)) return true;
        break;
      }
      const std::string_view level = detail::read_level(name, f.pos);
      if (f.at->plus && !root_skips_wildcards) pending.push({f.at->plus.get(), f.pos});
      const node* literal = detail::find_child(f.at->children, level);
      if (literal == nullptr) break;
      f.at = literal;
    }
  }
  return false;
}

}  // namespace ebus::mqtt::topic
