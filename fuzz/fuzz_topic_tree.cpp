// Differential fuzzer: subscription_tree and retained_store against the reference matcher
// topic::matches(). The input is a list of lines:
//   "-<filter>"  unsubscribes the filter (key = line number % 3);
//   "!<name>"    erases the retained name;
//   otherwise    the line subscribes as a filter (key = line number % 3) if it is a valid filter,
//                and is stored as a retained name if it is a valid name.
// Every valid name, and valid names made up from the filters, is then matched against the tree, and
// every filter against the retained store; both must give exactly what matches() says. Aborts
// otherwise.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "mqtt/topic/retained_store.hpp"
#include "mqtt/topic/subscription_tree.hpp"

namespace {

using namespace ebus::mqtt::topic;

constexpr std::size_t max_lines = 32;  // keeps each input fast; the checks are quadratic

void check(bool condition) {
  if (!condition) std::abort();
}

std::vector<std::string_view> split_lines(std::string_view input) {
  std::vector<std::string_view> lines;
  while (!input.empty() && lines.size() < max_lines) {
    const std::size_t end = std::min(input.find('\n'), input.size());
    lines.push_back(input.substr(0, end));
    input.remove_prefix(std::min(end + 1, input.size()));
  }
  return lines;
}

// A name that `filter` should match: '+' becomes a level, '#' becomes nothing or two levels.
// The result is not always a valid name ("#" gives ""), so callers parse it.
std::string name_from(std::string_view filter, bool long_hash) {
  std::string out;
  for (const char c : filter) {
    if (c == '+') {
      out += 'x';
    } else if (c == '#') {
      if (long_hash) {
        out += "x/y";
      } else if (!out.empty()) {
        out.pop_back();  // drop the '/' before '#': the parent level
      }
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string_view> lines = split_lines(input);

  subscription_tree<int, int> tree;
  std::map<std::pair<std::string, int>, int> subscriptions;  // (filter, key) -> value
  retained_store<int> retained;
  std::map<std::string, int> retained_model;
  std::vector<topic_filter> filters;
  std::vector<std::string> probe_names;

  for (std::size_t i = 0; i < lines.size(); ++i) {
    const int key = static_cast<int>(i % 3);
    const int value = static_cast<int>(i);
    std::string_view line = lines[i];
    if (line.starts_with('-')) {
      line.remove_prefix(1);
      if (auto f = parse_filter(line)) {
        check(tree.erase(*f, key) == (subscriptions.erase({f->str(), key}) == 1));
      }
      continue;
    }
    if (line.starts_with('!')) {
      line.remove_prefix(1);
      check(retained.erase(line) == (retained_model.erase(std::string(line)) == 1));
      continue;
    }
    if (auto f = parse_filter(line)) {
      const bool is_new = subscriptions.insert_or_assign({f->str(), key}, value).second;
      check(tree.insert(*f, key, value) == is_new);
      for (const bool long_hash : {false, true}) {
        if (auto n = parse_name(name_from(f->str(), long_hash))) probe_names.push_back(n->str());
      }
      filters.push_back(std::move(*f));
    }
    if (auto n = parse_name(line)) {
      const bool is_new = retained_model.insert_or_assign(n->str(), value).second;
      check(retained.store(*n, value) == is_new);
      probe_names.push_back(n->str());
    }
  }
  check(tree.size() == subscriptions.size() && tree.empty() == subscriptions.empty());
  check(retained.size() == retained_model.size());

  for (const std::string& name : probe_names) {
    std::vector<std::tuple<std::string, int, int>> expected;
    for (const auto& [sub, value] : subscriptions) {
      if (matches(sub.first, name)) expected.emplace_back(sub.first, sub.second, value);
    }
    std::vector<std::tuple<std::string, int, int>> actual;
    tree.match(name, [&](const int& key, const int& value, const topic_filter& f) {
      actual.emplace_back(f.str(), key, value);
    });
    std::sort(actual.begin(), actual.end());
    check(actual == expected);
  }

  for (const topic_filter& f : filters) {
    std::vector<std::pair<std::string, int>> expected;
    for (const auto& [name, value] : retained_model) {
      if (matches(f.str(), name)) expected.emplace_back(name, value);
    }
    std::vector<std::pair<std::string, int>> actual;
    retained.match(
        f, [&](const topic_name& n, const int& value) { actual.emplace_back(n.str(), value); });
    std::sort(actual.begin(), actual.end());
    check(actual == expected);
    const auto stored = retained_model.find(f.str());
    const int* found = retained.find(f.str());
    check(found == nullptr ? stored == retained_model.end() : *found == stored->second);
  }

  // Erasing everything prunes every node.
  for (const auto& [sub, value] : subscriptions) {
    check(tree.erase(parse_filter(sub.first).value(), sub.second));
  }
  for (const auto& [name, value] : retained_model) {
    check(retained.erase(name));
  }
  check(tree.empty() && tree.node_count() == 0);
  check(retained.empty() && retained.node_count() == 0);
  return 0;
}
