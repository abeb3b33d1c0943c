#include "ebus_test/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdexcept>
#include <sys/wait.h>
#include <system_error>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace ebus::test {

process::process(std::vector<std::string> argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (auto& a : argv)
    args.push_back(a.data());
  args.push_back(nullptr);
  const int rc = ::posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    throw std::system_error(rc, std::generic_category(), "spawn " + argv[0]);
  }
  out_fd_ = fds[0];
  ::fcntl(out_fd_, F_SETFL, ::fcntl(out_fd_, F_GETFL) | O_NONBLOCK);
}

process::~process() {
  if (!status_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  if (out_fd_ >= 0) ::close(out_fd_);
}

bool process::read_some(std::chrono::milliseconds timeout) {
  if (out_fd_ < 0) return false;
  pollfd p{out_fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char buf[4096];
  const auto n = ::read(out_fd_, buf, sizeof buf);
  if (n > 0) {
    output_.append(buf, static_cast<std::size_t>(n));
    return true;
  }
  if (n == 0) {  // the child closed its output
    ::close(out_fd_);
    out_fd_ = -1;
  }
  return false;
}

bool process::wait_for_output(const std::string& needle, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (output_.find(needle) != std::string::npos) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || (out_fd_ < 0)) return output_.find(needle) != std::string::npos;
    read_some(std::min(left, std::chrono::milliseconds(100)));
  }
}

const std::string& process::output() {
  while (read_some(std::chrono::milliseconds(0))) {
  }
  return output_;
}

void process::signal(int signo) const {
  if (!status_ && pid_ > 0) ::kill(pid_, signo);
}

std::optional<int> process::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      output();
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    read_some(std::chrono::milliseconds(20));  // keeps the pipe drained while waiting
  }
}

std::string built_program(const std::string& name) {
  return std::string(EBUS_BUILD_DIR) + "/" + name;
}

std::pair<int, std::string> run_ctl(const std::string& socket, std::vector<std::string> args,
                                    std::chrono::milliseconds timeout) {
  args.insert(args.begin(), built_program("apps/eventbus-ctl/eventbus-ctl"));
  args.insert(args.end(), {"--socket", socket});
  process p(std::move(args));
  const auto status = p.wait(timeout);
  if (!status) return {-1, p.output() + "\n[eventbus-ctl still running, killed]"};
  return {*status, p.output()};
}

}  // namespace ebus::test
