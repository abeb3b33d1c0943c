// The eventbus binary as a user runs it: starts on its defaults, says when it is ready, stops
// cleanly on SIGTERM and SIGINT, and refuses a bad configuration before starting anything.
//
// The defaults put the database and the module sockets under /var and the broker on port 1884.
// Tests never touch those: "the defaults" here are the defaults with the database and the
// sockets in a temporary directory and the broker on a free port (local_defaults), so the suite
// runs in parallel and as any user.
#include <csignal>
#include <fstream>

#include <gtest/gtest.h>

#include "config/config_loader.hpp"
#include "ebus_test/process.hpp"
#include "node_harness.hpp"

namespace ebus::test {
namespace {

const std::string daemon_path = built_program("apps/eventbus/eventbus");

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

/// The default configuration with every path and port a test must not share moved into a
/// temporary directory and onto a free port of 127.0.0.1.
class local_defaults {
 public:
  local_defaults() {
    write_file(config_path(), "database:\n  dataSource: " + data_source() +
                                  "\nmodules:\n  eventBus:\n    mqttServerInternal: " + url() +
                                  "\n    moduleSocket: " + socket() +
                                  "\n    moduleStreamSocket: " + stream_socket() + "\n");
  }

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] std::string url() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::string data_source() const { return (dir_.path() / "edgecore.db").string(); }
  [[nodiscard]] std::string socket() const { return (dir_.path() / "eventbus.sock").string(); }
  [[nodiscard]] std::string stream_socket() const {
    return (dir_.path() / "eventbus-stream.sock").string();
  }
  [[nodiscard]] std::filesystem::path config_path() const { return dir_.path() / "edgecore.yaml"; }
  /// The daemon on this configuration.
  [[nodiscard]] std::vector<std::string> argv() const {
    return {daemon_path, "--config", config_path().string()};
  }

 private:
  temp_dir dir_;
  std::uint16_t port_ = free_port();
};

/// The paths of the files process `pid` has mapped, one per line.
std::string mapped_files(int pid) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string out;
  for (std::string line; std::getline(maps, line);) {
    if (const auto slash = line.find('/'); slash != std::string::npos) {
      out += line.substr(slash) + "\n";
    }
  }
  return out;
}

/// The number of threads of process `pid` (its /proc status), or -1 when it cannot be read.
int thread_count(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

/// `yaml` with the value of the first `key:` line replaced.
std::string with_value(std::string yaml, const std::string& key, const std::string& value) {
  const auto at = yaml.find(key + ": ");
  if (at == std::string::npos) {
    ADD_FAILURE() << "no " << key << " in\n" << yaml;
    return yaml;
  }
  const auto start = at + key.size() + 2;
  yaml.replace(start, yaml.find('\n', at) - start, value);
  return yaml;
}

TEST(daemon, starts_on_its_defaults_logs_ready_and_exits_zero_on_sigterm) {
  local_defaults defaults;
  process p(defaults.argv());
  ASSERT_TRUE(p.wait_for_output("ready")) << p.output();
  p.signal(SIGTERM);
  const auto status = p.wait();
  ASSERT_TRUE(status.has_value()) << "did not exit after SIGTERM\n" << p.output();
  EXPECT_EQ(*status, 0) << p.output();
  EXPECT_NE(p.output().find("stopped"), std::string::npos) << p.output();
}

TEST(daemon, defaults_accept_mosquitto_clients_on_127_0_0_1) {
  local_defaults defaults;
  const auto port = std::to_string(defaults.port());
  process d(defaults.argv());
  ASSERT_TRUE(d.wait_for_output("ready")) << d.output();
  ASSERT_NE(d.output().find(defaults.url()), std::string::npos) << d.output();
  process sub({"stdbuf", "-oL", "mosquitto_sub", "-p", port, "-t", "$hw/events/device/+/+/twin/+",
               "-C", "1", "-W", "10", "-d", "-F", "%t %p"});
  ASSERT_TRUE(sub.wait_for_output("SUBACK")) << sub.output();
  process pub({"mosquitto_pub", "-p", port, "-t", "$hw/events/device/default/led1/twin/update",
               "-q", "1", "-m", R"({"event_id":"e1"})"});
  ASSERT_EQ(pub.wait(), 0) << pub.output();
  ASSERT_EQ(sub.wait(), 0) << sub.output();
  EXPECT_NE(sub.output().find(R"($hw/events/device/default/led1/twin/update {"event_id":"e1"})"),
            std::string::npos)
      << sub.output();
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(), 0) << d.output();
}

// OpenSSL, libmosquitto, wslay and http-parser are opened when a configuration needs them (TLS,
// WebSocket, password file, external broker) and fmt is compiled in: an idle daemon at the
// defaults carries none of their pages. It runs three threads: the loop, the store's writer and
// the remote modules' encoder.
TEST(daemon, on_its_defaults_maps_no_library_it_does_not_use_and_runs_three_threads) {
  local_defaults defaults;
  process d(defaults.argv());
  ASSERT_TRUE(d.wait_for_output("ready")) << d.output();
  const auto maps = mapped_files(d.pid());
  EXPECT_NE(maps.find("libsqlite3"), std::string::npos) << maps;  // the maps were read
  for (const char* library :
       {"libssl", "libcrypto", "libmosquitto", "libwslay", "libhttp_parser", "libfmt"}) {
    EXPECT_EQ(maps.find(library), std::string::npos) << library << "\n" << maps;
  }
  EXPECT_EQ(thread_count(d.pid()), 3);
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(), 0) << d.output();
}

TEST(daemon, a_websocket_listener_opens_wslay_http_parser_and_openssl) {
  temp_dir dir;
  const auto port = free_port();
  write_file(
      dir.path() / "ws.yaml",
      "database:\n  dataSource: " + (dir.path() / "edgecore.db").string() +
          "\nmodules:\n  eventBus:\n    mqttServerInternal: ws://127.0.0.1:" +
          std::to_string(port) + "\n    moduleSocket: " + (dir.path() / "eventbus.sock").string() +
          "\n    moduleStreamSocket: " + (dir.path() / "eventbus-stream.sock").string() + "\n");
  process d({daemon_path, "--config", (dir.path() / "ws.yaml").string()});
  ASSERT_TRUE(d.wait_for_output("ready")) << d.output();
  const auto maps = mapped_files(d.pid());
  for (const char* library : {"libwslay", "libhttp_parser", "libssl", "libcrypto"}) {
    EXPECT_NE(maps.find(library), std::string::npos) << library << "\n" << maps;
  }
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(), 0) << d.output();
}

TEST(daemon, exits_zero_on_sigint) {
  local_defaults defaults;
  process p(defaults.argv());
  ASSERT_TRUE(p.wait_for_output("ready")) << p.output();
  p.signal(SIGINT);
  const auto status = p.wait();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0) << p.output();
}

TEST(daemon, prints_its_version) {
  process p({daemon_path, "--version"});
  const auto status = p.wait();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0);
  EXPECT_NE(p.output().find('.'), std::string::npos) << p.output();
}

TEST(daemon, refuses_an_unknown_log_level_with_a_clear_message) {
  process p({daemon_path, "--log-level", "loud"});
  const auto status = p.wait();
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(*status, 0);
  EXPECT_NE(p.output().find("loud"), std::string::npos) << p.output();
}

/// Runs the daemon to its end; returns (status, output).
std::pair<int, std::string> run_daemon(std::vector<std::string> args) {
  args.insert(args.begin(), daemon_path);
  process p(std::move(args));
  const auto status = p.wait();
  EXPECT_TRUE(status.has_value()) << "still running:\n" << p.output();
  return {status.value_or(-1), p.output()};
}

TEST(daemon, defaultconfig_prints_a_complete_file_that_starts_the_daemon) {
  const auto [status, yaml] = run_daemon({"--defaultconfig"});
  ASSERT_EQ(status, 0) << yaml;
  for (const char* key :
       {"mqttMode: 0", "mqttServerInternal: tcp://127.0.0.1:1884", "mqttSessionQueueSize: 100",
        "eventBusTLS:", "dataSource:", "hostnameOverride:"}) {
    EXPECT_NE(yaml.find(key), std::string::npos) << key << "\n" << yaml;
  }
  // The printed file as is, but for its paths and port (local_defaults).
  local_defaults local;
  std::string edited = with_value(yaml, "dataSource", local.data_source());
  edited = with_value(edited, "mqttServerInternal", local.url());
  edited = with_value(edited, "moduleSocket", local.socket());
  edited = with_value(edited, "moduleStreamSocket", local.stream_socket());
  write_file(local.config_path(), edited);
  process d(local.argv());
  ASSERT_TRUE(d.wait_for_output("ready")) << d.output();
  EXPECT_NE(d.output().find("mode=internal mqtt=" + local.url()), std::string::npos) << d.output();
  EXPECT_EQ(d.output().find("config warning"), std::string::npos) << d.output();
  EXPECT_TRUE(std::filesystem::exists(local.socket())) << d.output();
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(), 0) << d.output();
  EXPECT_TRUE(std::filesystem::exists(local.data_source()));
}

TEST(daemon, minconfig_prints_a_minimal_file) {
  const auto [status, yaml] = run_daemon({"--minconfig"});
  ASSERT_EQ(status, 0) << yaml;
  EXPECT_NE(yaml.find("eventBus:"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("mqttMode:"), std::string::npos) << yaml;
  EXPECT_EQ(yaml.find("mqttMaxInflightMessages"), std::string::npos) << yaml;
}

TEST(daemon, a_bad_configuration_lists_every_error_with_its_key_and_starts_nothing) {
  temp_dir dir;
  write_file(dir.path() / "bad.yaml", R"(modules:
  eventBus:
    mqttMode: 5
    mqttQOS: 3
    mqttSessionQueueSize: 0
    mqttServerInternal: ws://127.0.0.1:1884
    mqttRetain: maybe
)");
  const auto [status, out] = run_daemon({"--config", (dir.path() / "bad.yaml").string()});
  EXPECT_EQ(status, 2) << out;
  for (const char* key : {"modules.eventBus.mqttMode", "modules.eventBus.mqttQOS",
                          "modules.eventBus.mqttSessionQueueSize", "modules.eventBus.mqttRetain"}) {
    EXPECT_NE(out.find(key), std::string::npos) << key << "\n" << out;
  }
  EXPECT_EQ(out.find("ready"), std::string::npos) << out;
}

TEST(daemon, unreadable_tls_files_are_a_startup_error_naming_the_key) {
  temp_dir dir;
  write_file(dir.path() / "tls.yaml", R"(modules:
  eventBus:
    mqttMode: 2
    eventBusTLS:
      enable: true
      tlsMqttCAFile: /nonexistent/ca.crt
      tlsMqttCertFile: /nonexistent/server.crt
      tlsMqttPrivateKeyFile: /nonexistent/server.key
)");
  const auto [status, out] = run_daemon({"--config", (dir.path() / "tls.yaml").string()});
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find("modules.eventBus.eventBusTLS.tlsMqttCAFile"), std::string::npos) << out;
  EXPECT_NE(out.find("/nonexistent/ca.crt"), std::string::npos) << out;
}

TEST(daemon, a_missing_config_file_is_refused) {
  const auto [status, out] = run_daemon({"--config", "/nonexistent/edgecore.yaml"});
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find("/nonexistent/edgecore.yaml"), std::string::npos) << out;
}

TEST(daemon, external_mode_is_ready_at_once_while_the_broker_is_unreachable) {
  temp_dir dir;
  const auto port = free_port();  // nothing listens there
  write_file(
      dir.path() / "ext.yaml",
      "database:\n  dataSource: " + (dir.path() / "edgecore.db").string() +
          "\nmodules:\n  eventBus:\n    mqttMode: 2\n"
          "    mqttServerExternal: tcp://127.0.0.1:" +
          std::to_string(port) + "\n    moduleSocket: " + (dir.path() / "eventbus.sock").string() +
          "\n    moduleStreamSocket: " + (dir.path() / "eventbus-stream.sock").string() + "\n");
  process d({daemon_path, "--config", (dir.path() / "ext.yaml").string()});
  ASSERT_TRUE(d.wait_for_output("ready", std::chrono::seconds(5))) << d.output();
  EXPECT_NE(d.output().find("mode=external"), std::string::npos) << d.output();
  EXPECT_NE(mapped_files(d.pid()).find("libmosquitto"), std::string::npos);  // opened on demand
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(), 0) << d.output();
}

// The acceptance case, on the default configuration (its paths and port local): a device
// publishes a twin update with mosquitto_pub and a bus module receives exactly KubeEdge's
// message.
TEST(daemon, default_configuration_routes_a_twin_update_from_mosquitto_pub_to_the_twin_module) {
  local_defaults local;
  auto cfg = config::default_config();
  cfg.data_source = local.data_source();
  cfg.eventbus.server_internal = local.url();
  cfg.eventbus.module_socket = local.socket();
  cfg.eventbus.module_stream_socket = local.stream_socket();
  node_harness node(cfg);
  ASSERT_EQ(node.port(), local.port());
  process pub({"mosquitto_pub", "-p", std::to_string(local.port()), "-t",
               "$hw/events/device/default/led1/twin/update", "-m",
               R"({"event_id":"e1","twin":{"power":{"actual":{"value":"on"}}}})"});
  ASSERT_EQ(pub.wait(), 0) << pub.output();
  const auto got = node.twin().wait_for(1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].route.source, "bus");
  EXPECT_EQ(got[0].route.group, "user");
  EXPECT_EQ(got[0].route.operation, "response");
  EXPECT_EQ(got[0].route.resource, "JGh3L2V2ZW50cy9kZXZpY2UvZGVmYXVsdC9sZWQxL3R3aW4vdXBkYXRl");
  EXPECT_EQ(got[0].content,
            bus::content::text(R"({"event_id":"e1","twin":{"power":{"actual":{"value":"on"}}}})"));
}

}  // namespace
}  // namespace ebus::test
