#pragma once
// Debian's mosquitto broker (/usr/sbin/mosquitto) as a child process on 127.0.0.1, for tests of
// the external-broker path. Each instance has its own free port and temporary directory (config,
// and any files a test puts there: password file, certificates). The broker can be stopped and
// started again on the same port, to test reconnection.
//
//   ebus::test::mosquitto_broker broker;               // running, anonymous clients allowed
//   client.url = broker.url();                         // "tcp://127.0.0.1:<port>"
//   broker.stop(); ...; broker.start();                // same port again
//
// Thread safety: none; use from the test thread.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ebus_test/process.hpp"

namespace ebus::test {

struct mosquitto_broker_options {
  /// Start in the constructor. Set false to put files into dir() first, then call start().
  bool start = true;
  bool allow_anonymous = true;
  /// Lines appended to the configuration after "listener <port> 127.0.0.1", so that listener
  /// settings apply to it: "password_file {dir}/passwd", "require_certificate true"... Each
  /// "{dir}" is replaced by dir().
  std::vector<std::string> extra_config{};
  /// mosquitto's log_type values. "all" logs every packet, which a test must then read as fast
  /// as mosquitto writes it (output()), or mosquitto stops on the full pipe.
  std::vector<std::string> log_types{"all"};
};

class mosquitto_broker {
 public:
  /// Picks a free port, creates the temporary directory and writes mosquitto.conf there.
  /// Throws std::runtime_error when the broker does not start (with its output).
  explicit mosquitto_broker(mosquitto_broker_options options = {});
  mosquitto_broker(const mosquitto_broker&) = delete;
  mosquitto_broker& operator=(const mosquitto_broker&) = delete;
  ~mosquitto_broker();  // kills the broker and removes the directory

  /// Starts the broker and returns once its port accepts TCP connections (at most 10 s); no-op
  /// when it is running. Throws std::runtime_error if it exits or never listens.
  void start();
  /// SIGTERM, then waits for the broker to exit (SIGKILL after 5 s). No-op when not running.
  void stop();
  /// SIGKILL, as a crash: clients see their connections reset. No-op when not running.
  void kill();
  /// Sends `signo` to the broker (e.g. SIGSTOP/SIGCONT to freeze it with connections open).
  void signal(int signo) const;
  [[nodiscard]] bool running() const noexcept { return process_ != nullptr; }

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  /// "tcp://127.0.0.1:<port>".
  [[nodiscard]] std::string url() const;
  /// The temporary directory, removed by the destructor.
  [[nodiscard]] const std::string& dir() const noexcept { return dir_; }

  /// Everything the broker has logged (log_type all), over all its runs.
  [[nodiscard]] std::string output();
  /// Waits until `needle` appears in the output of the current run; true if it did.
  bool wait_for_output(const std::string& needle,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  void write_config() const;

  mosquitto_broker_options options_;
  std::string dir_;
  std::uint16_t port_ = 0;
  std::string earlier_output_;  // output of runs already stopped
  std::unique_ptr<process> process_;
};

}  // namespace ebus::test
