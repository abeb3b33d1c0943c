#pragma once
// A child process for integration tests: argv in, merged stdout+stderr captured, waits bounded
// by deadlines. Used to run the real daemon and real peers (mosquitto, mosquitto_pub/sub).

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ebus::test {

class process {
 public:
  /// Starts argv[0] (looked up in PATH) with the given arguments.
  explicit process(std::vector<std::string> argv);
  process(const process&) = delete;
  process& operator=(const process&) = delete;
  ~process();  // kills (SIGKILL) and reaps a child that is still running

  [[nodiscard]] int pid() const noexcept { return pid_; }

  /// Reads output until `needle` appears or `timeout` passes; true if it appeared.
  bool wait_for_output(const std::string& needle,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));

  /// Everything the child has printed so far (reads what is available without blocking).
  const std::string& output();

  /// Sends a signal to the child.
  void signal(int signo) const;

  /// Waits for the child to exit; returns its exit status (128 + signal if killed), or nullopt
  /// if it is still running after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  bool read_some(std::chrono::milliseconds timeout);

  int pid_ = -1;
  int out_fd_ = -1;
  std::string output_;
  std::optional<int> status_;
};

/// Path of a program built by this project (absolute, from CMake).
std::string built_program(const std::string& name);

/// Runs the built eventbus-ctl with `args` and `--socket socket` to its end: (exit status,
/// output). Status -1 when it is still running after `timeout` (then killed); the output says so.
std::pair<int, std::string> run_ctl(const std::string& socket, std::vector<std::string> args,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace ebus::test
