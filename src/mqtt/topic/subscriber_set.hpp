#pragma once
// The subscribers of one topic filter, each with its value (the granted QoS). Most filters have
// one subscriber (a device's own topics); a few have many (a wildcard every client takes). A
// std::unordered_map costs a bucket array and a node per subscriber, about 200 bytes for the one;
// this keeps the (key, value) pairs in a vector, searched in place while there are few and
// indexed by a hash map once there are more than `index_from`, so that a filter with 10,000
// subscribers still adds and removes one in constant time.
//
// Thread safety: distinct objects safe; shared objects unsafe.

#include <cstddef>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ebus::mqtt::topic {

template <class Key, class Value>
class subscriber_set {
 public:
  /// Above this many subscribers the set keeps an index; it drops it at half as many.
  static constexpr std::size_t index_from = 16;

  [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  /// The (key, value) pairs, in no particular order.
  [[nodiscard]] auto begin() const noexcept { return entries_.begin(); }
  [[nodiscard]] auto end() const noexcept { return entries_.end(); }
  /// Whether the hash index is kept, for tests.
  [[nodiscard]] bool indexed() const noexcept { return index_ != nullptr; }
  /// Pairs the storage holds, for tests.
  [[nodiscard]] std::size_t capacity() const noexcept { return entries_.capacity(); }

  /// Sets the value of `key`; true when the key is new.
  bool insert_or_assign(Key key, Value value) {
    if (const std::size_t i = find(key); i != npos) {
      entries_[i].second = std::move(value);
      return false;
    }
    entries_.emplace_back(std::move(key), std::move(value));
    if (index_) {
      index_->emplace(entries_.back().first, entries_.size() - 1);
    } else if (entries_.size() > index_from) {
      build_index();
    }
    return true;
  }

  /// Removes `key`; false when it is not in the set. The last pair takes the place of the one
  /// removed.
  bool erase(const Key& key) {
    const std::size_t i = find(key);
    if (i == npos) return false;
    if (index_) index_->erase(key);
    if (i + 1 != entries_.size()) {
      entries_[i] = std::move(entries_.back());
      if (index_) (*index_)[entries_[i].first] = i;
    }
    entries_.pop_back();
    if (index_ && entries_.size() <= index_from / 2) index_.reset();
    // A crowd that has left leaves no large array behind.
    if (entries_.capacity() > index_from && entries_.size() < entries_.capacity() / 4) {
      entries_.shrink_to_fit();
    }
    return true;
  }

 private:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  [[nodiscard]] std::size_t find(const Key& key) const {
    if (index_) {
      const auto it = index_->find(key);
      return it == index_->end() ? npos : it->second;
    }
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].first == key) return i;
    }
    return npos;
  }

  void build_index() {
    index_ = std::make_unique<std::unordered_map<Key, std::size_t>>();
    index_->reserve(entries_.size() * 2);
    for (std::size_t i = 0; i < entries_.size(); ++i)
      index_->emplace(entries_[i].first, i);
  }

  std::vector<std::pair<Key, Value>> entries_;
  std::unique_ptr<std::unordered_map<Key, std::size_t>> index_;  // past index_from only
};

}  // namespace ebus::mqtt::topic
