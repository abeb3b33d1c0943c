#pragma once
// Retained messages: at most one per topic name, found again by the filters of new subscriptions.
//
// This is subscription_tree turned around (see the note on matching in subscription_tree.hpp):
// the tree holds names, and the query is a filter. Each node is one level of one or more stored
// names and holds a hash map of literal children plus, optionally, the entry stored under the name
// that ends at this node. Names contain no wildcards, so there are no '+' or '#' slots.
//
// match() walks the filter's levels. A literal level follows one child; '+' follows every child;
// '#' takes the node itself (the parent-level rule: "a/#" matches "a") and its whole subtree.
// At the root, '+' and '#' skip children whose text starts with '$' [MQTT-4.7.2-1]. The walk is
// iterative like subscription_tree's, so a deep tree cannot exhaust the stack.
//
// A walk (begin_walk()) is the same match spread over many calls, so that 100,000 retained
// messages for a '#' subscriber are found a slice at a time. Its pending frames pin the nodes they
// point to: erase() does not free a pinned node it prunes but detaches it, and the last unpin
// frees it. Every stored value carries the serial of its store(); a walk visits only values stored
// before it began, so a value stored or replaced meanwhile (which the new subscription received
// live) is not visited again, and an erased one is not visited at all.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mqtt/topic/topic.hpp"
#include "mqtt/topic/tree_detail.hpp"

namespace ebus::mqtt::topic {

/// Map from topic name to `Value` (typically the retained message), queried by topic filter.
/// Thread safety: distinct objects safe, shared objects unsafe.
template <class Value>
class retained_store {
 public:
  retained_store() = default;
  retained_store(const retained_store&) = delete;
  retained_store& operator=(const retained_store&) = delete;
  /// Moving a store with open walks is not allowed: they point to it.
  retained_store(retained_store&& other) noexcept
      : root_(std::move(other.root_)),
        size_(std::exchange(other.size_, 0)),
        nodes_(std::exchange(other.nodes_, 0)),
        serial_(other.serial_),
        detached_(std::move(other.detached_)) {}
  retained_store& operator=(retained_store&& other) noexcept {
    if (this != &other) {
      retained_store old(std::move(*this));  // torn down iteratively when it goes
      root_ = std::move(other.root_);
      size_ = std::exchange(other.size_, 0);
      nodes_ = std::exchange(other.nodes_, 0);
      serial_ = other.serial_;
      detached_ = std::move(other.detached_);
    }
    return *this;
  }
  ~retained_store() { detail::destroy_below(root_); }

  /// Stores `value` under `name`, replacing the value stored there before [MQTT-3.3.1-5].
  /// Returns true if `name` had no value.
  bool store(topic_name name, Value value);

  /// Removes the value stored under `name` (a retained PUBLISH with an empty payload does this
  /// [MQTT-3.3.1-10]) and prunes the nodes this leaves empty. Returns false if there was none.
  bool erase(std::string_view name);

  /// The value stored under `name`, or nullptr. The pointer is valid until the next change.
  [[nodiscard]] const Value* find(std::string_view name) const;

  /// Calls `visit(const topic_name&, const Value&)` once for every stored name that `filter`
  /// matches, with the semantics of topic::matches(), in no particular order; a new subscription
  /// is sent these messages [MQTT-3.3.1-6]. `visit` must not change the store. Allocates only
  /// when the walk has more than 32 branches pending at once ('+' and '#' over wide nodes).
  template <class F>
  void match(const topic_filter& filter, F&& visit) const;

  class walk;
  /// A match() of `filter` to be done a slice at a time with walk::resume(). The walk must not
  /// outlive the store.
  [[nodiscard]] walk begin_walk(const topic_filter& filter);

  /// Number of stored names.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

  /// Number of nodes below the root: the memory the store holds, for metrics and tests. It falls
  /// back to 0 once every name is erased.
  [[nodiscard]] std::size_t node_count() const noexcept { return nodes_; }

 private:
  struct entry {
    topic_name name;
    Value value;
    std::uint64_t serial;  // of the store() that put the value here
  };

  struct node {
    detail::child_map<node> children;
    std::unique_ptr<entry> stored;
    mutable std::uint32_t pins = 0;  // frames of open walks that point here
    mutable bool detached = false;   // pruned while pinned: owned by detached_

    [[nodiscard]] bool unused() const noexcept { return children.empty() && !stored; }
    void take_children(std::vector<std::unique_ptr<node>>& out) {
      for (auto& child : children) {
        out.push_back(std::move(child.second));
      }
      children.clear();
    }
  };

  /// One step of erase()'s descent, kept to prune on the way back up.
  struct step {
    node* parent;
    std::string_view level;
  };

  const node* find_node(std::string_view name) const;
  void unpin(const node* n) noexcept {
    if (--n->pins == 0 && n->detached) detached_.erase(n);
  }

  node root_;
  std::size_t size_ = 0;
  std::size_t nodes_ = 0;
  std::uint64_t serial_ = 0;  // of the last store()
  std::unordered_map<const node*, std::unique_ptr<node>> detached_;
};

/// A match in slices: each resume() visits at most `limit` names, and does at most a bounded
/// amount of work besides (see resume()). Moving it is cheap; destroying it unpins what it holds.
template <class Value>
class retained_store<Value>::walk {
 public:
  walk() = default;
  walk(walk&& other) noexcept
      : store_(std::exchange(other.store_, nullptr)),
        filter_(std::move(other.filter_)),
        before_(other.before_),
        pending_(std::move(other.pending_)) {}
  walk& operator=(walk&& other) noexcept {
    if (this != &other) {
      close();
      store_ = std::exchange(other.store_, nullptr);
      filter_ = std::move(other.filter_);
      before_ = other.before_;
      pending_ = std::move(other.pending_);
    }
    return *this;
  }
  walk(const walk&) = delete;
  walk& operator=(const walk&) = delete;
  ~walk() { close(); }

  /// Calls `visit(const topic_name&, const Value&)` for up to `limit` more matching names (and
  /// expands at most 4 * `limit` nodes, so a filter that matches little still stops). Returns
  /// false once the walk is complete. `visit` must not change the store.
  template <class F>
  bool resume(std::size_t limit, F&& visit);

  [[nodiscard]] bool done() const noexcept { return pending_.empty(); }
  /// The filter's text.
  [[nodiscard]] const std::string& filter() const noexcept { return filter_; }
  /// Bytes the walk holds besides the object.
  [[nodiscard]] std::size_t memory() const noexcept {
    return pending_.capacity() * sizeof(frame) + filter_.capacity();
  }

 private:
  friend class retained_store;
  static constexpr std::size_t whole_subtree = std::string_view::npos;
  struct frame {
    const node* at;
    std::size_t pos;  // as in match()
  };

  void push(const node* n, std::size_t pos) {
    ++n->pins;
    pending_.push_back({n, pos});
  }
  void close() noexcept {
    if (store_ == nullptr) return;
    for (const frame& f : pending_)
      store_->unpin(f.at);
    pending_.clear();
    store_ = nullptr;
  }

  retained_store* store_ = nullptr;
  std::string filter_;
  std::uint64_t before_ = 0;  // values with a serial above this were stored after the walk began
  std::vector<frame> pending_;
};

template <class Value>
bool retained_store<Value>::store(topic_name name, Value value) {
  node* current = &root_;
  const std::string_view text = name.str();
  std::size_t pos = 0;
  while (!detail::at_end(text, pos)) {
    current = &detail::find_or_add_child(current->children, detail::read_level(text, pos), nodes_);
  }
  if (current->stored) {
    current->stored->value = std::move(value);
    current->stored->serial = ++serial_;
    return false;
  }
  current->stored = std::make_unique<entry>(entry{std::move(name), std::move(value), ++serial_});
  ++size_;
  return true;
}

template <class Value>
bool retained_store<Value>::erase(std::string_view name) {
  std::vector<step> path;
  node* current = &root_;
  std::size_t pos = 0;
  while (!detail::at_end(name, pos)) {
    const std::string_view level = detail::read_level(name, pos);
    node* next = detail::find_child(current->children, level);
    if (next == nullptr) return false;
    path.push_back({current, level});
    current = next;
  }
  if (!current->stored) return false;
  current->stored.reset();
  --size_;

  // Prune from the deepest node up; the root stays.
  for (auto it = path.rbegin(); it != path.rend() && current->unused(); ++it) {
    node& parent = *it->parent;
    const auto child = parent.children.find(it->level);
    if (current->pins > 0) {  // an open walk still points here: freed by its last unpin
      current->detached = true;
      detached_.emplace(current, std::move(child->second));
    }
    parent.children.erase(child);
    --nodes_;
    current = &parent;
  }
  return true;
}

template <class Value>
auto retained_store<Value>::find_node(std::string_view name) const -> const node* {
  const node* current = &root_;
  std::size_t pos = 0;
  while (current != nullptr && !detail::at_end(name, pos)) {
    current = detail::find_child(current->children, detail::read_level(name, pos));
  }
  return current;
}

template <class Value>
const Value* retained_store<Value>::find(std::string_view name) const {
  const node* found = find_node(name);
  return found != nullptr && found->stored ? &found->stored->value : nullptr;
}

template <class Value>
template <class F>
void retained_store<Value>::match(const topic_filter& filter, F&& visit) const {
  constexpr std::size_t whole_subtree = std::string_view::npos;
  struct frame {
    const node* at;
    std::size_t pos;  // offset of the next unread filter level, or whole_subtree after a '#'
  };
  const std::string_view text = filter.str();
  detail::walk_stack<frame, 32> pending;
  pending.push({&root_, 0});
  while (!pending.empty()) {
    const frame f = pending.pop();
    if (f.pos == whole_subtree) {
      if (f.at->stored) visit(f.at->stored->name, f.at->stored->value);
      for (const auto& child : f.at->children) {
        pending.push({child.second.get(), whole_subtree});
      }
      continue;
    }
    if (detail::at_end(text, f.pos)) {
      if (f.at->stored) visit(f.at->stored->name, f.at->stored->value);
      continue;
    }
    const bool at_root = f.pos == 0;
    std::size_t next = f.pos;
    const std::string_view level = detail::read_level(text, next);
    if (level == "#" || level == "+") {
      // '#' also matches the node itself: "a/#" matches "a" [MQTT-4.7.1-2].
      const bool hash = level == "#";
      if (hash && f.at->stored) visit(f.at->stored->name, f.at->stored->value);
      for (const auto& child : f.at->children) {
        if (at_root && child.first.starts_with('$')) continue;  // [MQTT-4.7.2-1]
        pending.push({child.second.get(), hash ? whole_subtree : next});
      }
    } else if (const node* literal = detail::find_child(f.at->children, level)) {
      pending.push({literal, next});
    }
  }
}

template <class Value>
auto retained_store<Value>::begin_walk(const topic_filter& filter) -> walk {
  walk w;
  w.store_ = this;
  w.filter_ = filter.str();
  w.before_ = serial_;
  w.push(&root_, 0);
  return w;
}

template <class Value>
template <class F>
bool retained_store<Value>::walk::resume(std::size_t limit, F&& visit) {
  const std::string_view text = filter_;
  std::size_t visited = 0;
  std::size_t expanded = 0;
  const auto offer = [&](const node* n) {
    if (n->stored && n->stored->serial <= before_) {
      visit(n->stored->name, n->stored->value);
      ++visited;
    }
  };
  while (!pending_.empty() && visited < limit && expanded < 4 * limit) {
    const frame f = pending_.back();
    pending_.pop_back();
    ++expanded;
    if (f.pos == whole_subtree) {
      offer(f.at);
      for (const auto& child : f.at->children) {
        push(child.second.get(), whole_subtree);
      }
    } else if (detail::at_end(text, f.pos)) {
      offer(f.at);
    } else {
      const bool at_root = f.pos == 0;
      std::size_t next = f.pos;
      const std::string_view level = detail::read_level(text, next);
      if (level == "#" || level == "+") {
        const bool hash = level == "#";
        if (hash) offer(f.at);
        for (const auto& child : f.at->children) {
          if (at_root && child.first.starts_with('$')) continue;  // [MQTT-4.7.2-1]
          push(child.second.get(), hash ? whole_subtree : next);
        }
      } else if (const node* literal = detail::find_child(f.at->children, level)) {
        push(literal, next);
      }
    }
    store_->unpin(f.at);
  }
  if (pending_.empty()) close();
  return store_ != nullptr;
}

}  // namespace ebus::mqtt::topic
