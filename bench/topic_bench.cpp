// subscription_tree::match with N subscriptions, against a linear scan with topic::matches().
//
// The subscriptions model an edge node: KubeEdge's fixed interest list plus, per device, a mix of
// literal filters (60%), filters with '+' (30%) and filters ending in '#' (10%). The published
// names are device twin and state topics, about half of them for devices nobody subscribed to.
// Counters: `visits` is the number of matching subscriptions per published name.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "mqtt/topic/subscription_tree.hpp"

namespace {

using namespace ebus::mqtt::topic;

constexpr std::size_t name_count = 4096;  // a power of two: the loop indexes with a mask

struct workload {
  std::vector<topic_filter> filters;
  subscription_tree<std::uint32_t, std::uint8_t> tree;
  std::vector<std::string> names;
};

topic_filter filter(const std::string& text) {
  return parse_filter(text).value();
}

std::string device_prefix(std::size_t device) {
  return "$hw/events/device/ns" + std::to_string(device % 16) + "/dev-" + std::to_string(device);
}

std::unique_ptr<workload> make_workload(std::size_t subscriptions) {
  auto w = std::make_unique<workload>();
  for (const char* fixed :
       {"$hw/events/upload/#", "$hw/events/device/+/+/state/update", "$hw/events/device/+/+/twin/+",
        "$hw/events/node/+/membership/get", "SYS/dis/upload_records", "+/user/#"}) {
    w->filters.push_back(filter(fixed));
  }
  for (std::size_t i = 0; w->filters.size() < subscriptions; ++i) {
    const std::string device = device_prefix(i);
    switch (i % 10) {
      case 0:
      case 1:
      case 2:
        w->filters.push_back(filter(device + "/twin/update"));
        break;
      case 3:
      case 4:
      case 5:
        w->filters.push_back(filter(device + "/state/update"));
        break;
      case 6:
      case 7:
        w->filters.push_back(filter("$hw/events/device/+/dev-" + std::to_string(i) + "/twin/+"));
        break;
      case 8:
        w->filters.push_back(filter(device + "/twin/+"));
        break;
      default:
        w->filters.push_back(filter(device + "/#"));
        break;
    }
  }
  if (w->filters.size() > subscriptions) {  // N = 10 keeps only part of the fixed list
    w->filters.erase(w->filters.begin() + static_cast<std::ptrdiff_t>(subscriptions),
                     w->filters.end());
  }
  for (std::uint32_t key = 0; key < w->filters.size(); ++key) {
    w->tree.insert(w->filters[key], key, 1);
  }

  std::mt19937 rng(42);
  const std::size_t devices = subscriptions * 2;  // half of the devices have no subscription
  for (std::size_t i = 0; i < name_count; ++i) {
    const std::size_t device = rng() % devices;
    w->names.push_back(device_prefix(device) + (rng() % 2 == 0 ? "/twin/update" : "/state/update"));
  }
  return w;
}

const workload& get_workload(std::size_t subscriptions) {
  static std::map<std::size_t, std::unique_ptr<workload>> cache;
  auto& slot = cache[subscriptions];
  if (!slot) slot = make_workload(subscriptions);
  return *slot;
}

void bm_tree_match(benchmark::State& state) {
  const workload& w = get_workload(static_cast<std::size_t>(state.range(0)));
  std::size_t i = 0;
  std::size_t visits = 0;
  for (auto _ : state) {
    w.tree.match(w.names[i++ & (name_count - 1)],
                 [&](std::uint32_t, std::uint8_t, const topic_filter&) { ++visits; });
  }
  benchmark::DoNotOptimize(visits);
  state.SetItemsProcessed(state.iterations());
  state.counters["visits"] =
      benchmark::Counter(static_cast<double>(visits), benchmark::Counter::kAvgIterations);
  state.counters["nodes"] = static_cast<double>(w.tree.node_count());
}
BENCHMARK(bm_tree_match)->Arg(10)->Arg(1000)->Arg(100000);

// The baseline the tree replaces: every filter checked with the reference matcher.
void bm_linear_match(benchmark::State& state) {
  const workload& w = get_workload(static_cast<std::size_t>(state.range(0)));
  std::size_t i = 0;
  std::size_t visits = 0;
  for (auto _ : state) {
    const std::string& name = w.names[i++ & (name_count - 1)];
    for (const topic_filter& f : w.filters) {
      visits += matches(f.str(), name) ? 1 : 0;
    }
  }
  benchmark::DoNotOptimize(visits);
  state.SetItemsProcessed(state.iterations());
  state.counters["visits"] =
      benchmark::Counter(static_cast<double>(visits), benchmark::Counter::kAvgIterations);
}
BENCHMARK(bm_linear_match)->Arg(10)->Arg(1000)->Arg(100000);

}  // namespace

BENCHMARK_MAIN();
