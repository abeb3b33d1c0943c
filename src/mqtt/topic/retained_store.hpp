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

#include <cstddef>
#include <memory>
#include <string_view>
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
  retained_store(retained_store&& other) noexcept
      : root_(std::move(other.root_)),
        size_(std::exchange(other.size_, 0)),
        nodes_(std::exchange(other.nodes_, 0)) {}
  retained_store& operator=(retained_store&& other) noexcept {
    if (this != &other) {
      retained_store old(std::move(*this));  // torn down iteratively when it goes
      root_ = std::move(other.root_);
      size_ = std::exchange(other.size_, 0);
      nodes_ = std::exchange(other.nodes_, 0);
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
  };

  struct node {
    detail::child_map<node> children;
    std::unique_ptr<entry> stored;

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

  node root_;
  std::size_t size_ = 0;
  std::size_t nodes_ = 0;
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
    return false;
  }
  current->stored = std::make_unique<entry>(entry{std::move(name), std::move(value)});
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
    parent.children.erase(parent.children.find(it->level));
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

}  // namespace ebus::mqtt::topic
