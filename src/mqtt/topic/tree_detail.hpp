#pragma once
// Building blocks of subscription_tree and retained_store: level splitting, child maps with
// heterogeneous lookup, and the iterative walk and teardown that keep deep topics off the stack.

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/string_hash.hpp"

namespace ebus::mqtt::topic::detail {

/// Reads the level of `topic` that starts at offset `pos` (pos <= topic.size()) and moves `pos`
/// past it and its '/'. After the last level, pos == topic.size() + 1 (see at_end()). "a//b" reads
/// "a", "", "b"; "a/" reads "a", ""; "" reads one empty level. Returns a view into `topic`.
inline std::string_view read_level(std::string_view topic, std::size_t& pos) noexcept {
  const std::size_t slash = topic.find('/', pos);
  const std::size_t end = slash == std::string_view::npos ? topic.size() : slash;
  const std::string_view level = topic.substr(pos, end - pos);
  pos = end + 1;
  return level;
}

/// True once read_level() has read the last level of `topic`.
inline bool at_end(std::string_view topic, std::size_t pos) noexcept {
  return pos > topic.size();
}

/// Literal children of a tree node, keyed by level text.
template <class Node>
using child_map =
    std::unordered_map<std::string, std::unique_ptr<Node>, string_hash, std::equal_to<>>;

template <class Node>
Node* find_child(const child_map<Node>& children, std::string_view level) {
  if (children.empty()) return nullptr;  // skips hashing in the common leaf case
  const auto it = children.find(level);
  return it == children.end() ? nullptr : it->second.get();
}

/// Finds the child for `level`, adding it (and counting it in `node_count`) if there is none.
template <class Node>
Node& find_or_add_child(child_map<Node>& children, std::string_view level,
                        std::size_t& node_count) {
  auto it = children.find(level);
  if (it == children.end()) {
    it = children.emplace(std::string(level), std::make_unique<Node>()).first;
    ++node_count;
  }
  return *it->second;
}

/// LIFO of trivially copyable frames for tree walks. The first N frames live in the object (on the
/// caller's stack); more spill to the heap. Walks use it instead of recursion because a 65,535-byte
/// topic can have 65,536 levels, and recursion would be that deep.
template <class T, std::size_t N>
class walk_stack {
 public:
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

  void push(const T& frame) {
    if (size_ < N) {
      inline_[size_] = frame;
    } else {
      spill_.push_back(frame);
    }
    ++size_;
  }

  /// Precondition: !empty().
  T pop() noexcept {
    --size_;
    if (size_ < N) return inline_[size_];
    T frame = spill_.back();
    spill_.pop_back();
    return frame;
  }

 private:
  std::array<T, N> inline_;
  std::size_t size_ = 0;
  std::vector<T> spill_;
};

/// Destroys every node below `root`, one node at a time. Plain unique_ptr destruction would recurse
/// once per level. Node provides `void take_children(std::vector<std::unique_ptr<Node>>&)`, which
/// moves all its owned children out. Terminates if the work list cannot be allocated.
template <class Node>
void destroy_below(Node& root) noexcept {
  std::vector<std::unique_ptr<Node>> pending;
  root.take_children(pending);
  while (!pending.empty()) {
    std::unique_ptr<Node> node = std::move(pending.back());
    pending.pop_back();
    node->take_children(pending);
  }
}

}  // namespace ebus::mqtt::topic::detail
