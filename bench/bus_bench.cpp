// Module bus throughput: message construction (UUID, timestamp, 100-byte text content) included,
// as every MQTT->bus message pays it. Items/s = messages delivered and received per second.
// Also the beehive JSON encoding and decoding that every message to or from a remote module pays.
#include <benchmark/benchmark.h>

#include "bus/bus.hpp"
#include "bus/message_json.hpp"
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

// A twin message as the EventBus builds it (base64 resource, 64-byte payload), to JSON.
message twin_message() {
  auto m = ebus::bus::new_message();
  ebus::bus::build_router(m, "bus", "user",
                          ebus::bus::base64_url("$hw/events/device/default/dev-1/twin/update"),
                          "response");
  m.route.destination = "twin";
  m.content = content::text(std::string(64, 'p'));
  return m;
}

void encode(benchmark::State& state, const message& m) {
  std::string out;
  for (auto _ : state) {
    out.clear();
    ebus::bus::encode_json(m, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}

void encode_twin_message(benchmark::State& state) {
  encode(state, twin_message());
}
BENCHMARK(encode_twin_message);

// The same with what a mapper publishes on twin/update: a JSON document, whose quotes Go escapes
// in the content string.
void encode_twin_update_message(benchmark::State& state) {
  message m = twin_message();
  m.content = content::text(R"({"twin":{"temperature":{"actual":{"value":"0000000000000042"}}}})");
  encode(state, m);
}
BENCHMARK(encode_twin_update_message);

// A 1 MB upload payload to JSON, the largest thing encoded on the loop: printable text (arg 0)
// or control bytes, six bytes out for each (arg 1).
void encode_large_text_message(benchmark::State& state) {
  message m = twin_message();
  m.content =
      content::text(std::string(std::size_t{1000} * 1000, state.range(0) == 0 ? 'x' : '\x01'));
  std::string out;
  for (auto _ : state) {
    out.clear();
    ebus::bus::encode_json(m, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(m.content.bytes().size()));
}
BENCHMARK(encode_large_text_message)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

void decode_twin_message(benchmark::State& state) {
  const std::string text = ebus::bus::to_json(twin_message());
  for (auto _ : state) {
    auto m = ebus::bus::from_json(text);
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(text.size()));
}
BENCHMARK(decode_twin_message);

// A routed device message decoded into one message again and again, as a remote module's client
// decodes: a plain 64-byte payload (arg 0), or a JSON twin update with its quotes escaped (arg 1).
void decode_into_used_message(benchmark::State& state) {
  message m = twin_message();
  if (state.range(0) == 1) {
    m.content = content::text(R"({"event_id":"e1","twin":{"temp":{"actual":{"value":"21"}}}})");
  }
  const std::string text = ebus::bus::to_json(m);
  message out;
  for (auto _ : state) {
    auto ok = ebus::bus::decode_json(text, out);
    benchmark::DoNotOptimize(ok);
  }
  if (!(out == m)) state.SkipWithError("decoded message differs");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(text.size()));
}
BENCHMARK(decode_into_used_message)->Arg(0)->Arg(1);

// A publish command as the cloud sends it to eventbus: JSON object content, decoded on the loop.
void decode_publish_command(benchmark::State& state) {
  auto m = ebus::bus::new_message();
  ebus::bus::build_router(m, "edgecontroller", "resource", "devices/dev-1/cmd", "publish");
  m.route.destination = "eventbus";
  m.content = content::json(
      nlohmann::json{{"event_id", "e-1"}, {"timestamp", 1700000000000}, {"state", "on"}});
  const std::string text = ebus::bus::to_json(m);
  for (auto _ : state) {
    auto decoded = ebus::bus::from_json(text);
    benchmark::DoNotOptimize(decoded);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(decode_publish_command);

}  // namespace

BENCHMARK_MAIN();
