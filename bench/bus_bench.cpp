// Module bus throughput: message construction (UUID, timestamp, 100-byte text content) included,
// as every MQTT->bus message pays it. Items/s = messages delivered and received per second.
#include <benchmark/benchmark.h>

#include "bus/bus.hpp"
#include "common/asio_clock.hpp"
#include "common/log.hpp"

namespace {

using ebus::bus::bus;
using ebus::bus::content;
using ebus::bus::message;

const std::string payload(100, 'x');

message make_message() {
  auto m = ebus::bus::new_message();
  ebus::bus::build_router(m, "bus", "user", "$hw/events/device/default/led1/twin/update",
                          "response");
  m.content = content::text(payload);
  return m;
}

struct bench_bus {
  bench_bus() { ebus::log::set_level("warn"); }
  asio::io_context io{1};
  ebus::asio_clock clk{io.get_executor()};
  bus b{io.get_executor(), clk};
};

// Sender and receiver on one loop, receiver draining without suspension (batch of 256).
void send_try_receive(benchmark::State& state) {
  bench_bus env;
  (void)env.b.add_module("twin", "twin");
  std::size_t total = 0;
  for (auto _ : state) {
    for (int i = 0; i < 256; ++i)
      (void)env.b.send("twin", make_message());
    while (auto m = env.b.try_receive("twin")) {
      benchmark::DoNotOptimize(m->content.bytes().data());
      ++total;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
}
BENCHMARK(send_try_receive);

// The receiver is a coroutine in co_await receive(), as a real module is; the sender sends a
// burst of 256 and the loop runs the receiver until the inbox is empty.
void send_receive_coroutine(benchmark::State& state) {
  bench_bus env;
  (void)env.b.add_module("twin", "twin");
  std::size_t total = 0;
  asio::co_spawn(
      env.io,
      [&]() -> ebus::awaitable<void> {
        for (;;) {
          auto m = co_await env.b.receive("twin");
          if (!m) co_return;
          benchmark::DoNotOptimize(m->content.bytes().data());
          ++total;
        }
      },
      ebus::rethrow_handler{});
  env.io.poll();
  for (auto _ : state) {
    for (int i = 0; i < 256; ++i)
      (void)env.b.send("twin", make_message());
    env.io.poll();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
  env.b.shutdown();
  env.io.poll();
}
BENCHMARK(send_receive_coroutine);

// send_to_group to 4 members; items = deliveries (4 per message).
void group_fanout_4(benchmark::State& state) {
  bench_bus env;
  for (const char* name : {"m1", "m2", "m3", "m4"})
    (void)env.b.add_module(name, "hub");
  std::size_t total = 0;
  for (auto _ : state) {
    for (int i = 0; i < 64; ++i)
      (void)env.b.send_to_group("hub", make_message());
    for (const char* name : {"m1", "m2", "m3", "m4"}) {
      while (auto m = env.b.try_receive(name)) {
        benchmark::DoNotOptimize(m->content.bytes().data());
        ++total;
      }
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
}
BENCHMARK(group_fanout_4);

// send_sync round trip: requester coroutine -> responder coroutine -> send_resp -> requester.
void send_sync_round_trip(benchmark::State& state) {
  bench_bus env;
  (void)env.b.add_module("twin", "twin");
  asio::co_spawn(
      env.io,
      [&]() -> ebus::awaitable<void> {
        for (;;) {
          auto req = co_await env.b.receive("twin");
          if (!req) co_return;
          (void)env.b.send_resp(ebus::bus::new_response(*req, content::text("ok")));
        }
      },
      ebus::rethrow_handler{});
  std::size_t total = 0;
  for (auto _ : state) {
    asio::co_spawn(
        env.io,
        [&]() -> ebus::awaitable<void> {
          for (int i = 0; i < 64; ++i) {
            auto r = co_await env.b.send_sync("twin", make_message(), std::chrono::seconds(30));
            if (r) ++total;
          }
        },
        ebus::rethrow_handler{});
    env.io.run_one();
    while (env.io.poll() > 0) {
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
  env.b.shutdown();
  env.io.poll();
}
BENCHMARK(send_sync_round_trip);

}  // namespace

BENCHMARK_MAIN();
