#include "load_client.hpp"

#include <arpa/inet.h>
#include <chrono>
#include <exception>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <stdexcept>
#include <string_view>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "mqtt/codec/encoder.hpp"

extern char** environ;

namespace ebus::bench {

namespace codec = mqtt::codec;
using namespace std::chrono_literals;

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

int dial(std::uint16_t port) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    ::close(fd);
    std::this_thread::sleep_for(50ms);  // broker still starting
  }
  throw std::runtime_error("cannot connect to port " + std::to_string(port));
}

void send_all(int fd, const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    const auto n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("send failed");
    off += static_cast<std::size_t>(n);
  }
}

// Reads until one packet is decoded.
codec::packet read_packet(int fd, codec::decoder& dec) {
  for (;;) {
    auto r = dec.next();
    if (!r) throw std::runtime_error("decode error");
    if (*r) return std::move(**r);
    auto space = dec.prepare(64 * 1024);
    const auto n = ::recv(fd, space.data(), space.size(), 0);
    if (n <= 0) throw std::runtime_error("connection closed by the broker");
    dec.commit(static_cast<std::size_t>(n));
  }
}

int mqtt_connect(std::uint16_t port, const std::string& id) {
  const int fd = dial(port);
  std::string out;
  codec::encode(codec::connect{.keep_alive = 60, .client_id = id}, out);
  send_all(fd, out);
  codec::decoder dec;
  auto ack = read_packet(fd, dec);
  const auto* c = std::get_if<codec::connack>(&ack);
  if (c == nullptr || c->return_code != codec::connect_return_code::accepted) {
    throw std::runtime_error("CONNECT of " + id + " refused");
  }
  return fd;
}

void mqtt_close(int fd) {
  std::string out;
  codec::encode(codec::disconnect{}, out);
  try {
    send_all(fd, out);
  } catch (const std::exception&) {
  }
  ::close(fd);
}

double process_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  const auto close = line.rfind(')');
  std::vector<std::string> fields;
  std::string field;
  for (std::size_t i = close + 2; i <= line.size(); ++i) {
    if (i == line.size() || line[i] == ' ') {
      fields.push_back(field);
      field.clear();
    } else {
      field += line[i];
    }
  }
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / ticks;  // utime + stime
}

pid_t spawn(std::vector<std::string> argv) {
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  if (::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ) != 0) {
    throw std::runtime_error("cannot start " + argv[0]);
  }
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

void stop_process(pid_t pid) {
  ::kill(pid, SIGTERM);
  int st = 0;
  ::waitpid(pid, &st, 0);
}

memory_usage process_memory(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  memory_usage m;
  std::string line;
  auto field = [&line](std::string_view key, std::uint64_t& out) {
    if (line.compare(0, key.size(), key) == 0) out = std::stoull(line.substr(key.size()));
  };
  while (std::getline(in, line)) {
    field("VmRSS:", m.vm_rss_kib);
    field("RssAnon:", m.rss_anon_kib);
    field("VmHWM:", m.vm_hwm_kib);
  }
  return m;
}

std::uint64_t raise_open_file_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) throw std::runtime_error("getrlimit failed");
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) throw std::runtime_error("setrlimit failed");
  }
  return lim.rlim_cur;
}

void write_mosquitto_config(const std::string& path, std::uint16_t port) {
  std::ofstream c(path);
  // allow_anonymous is required once a listener is configured (mosquitto 2.0); log_type none
  // keeps logging out of the numbers. Nothing else is set.
  c << "listener " << port << " 127.0.0.1\nallow_anonymous true\nlog_type none\n";
  if (!c) throw std::runtime_error("cannot write " + path);
}

void set_send_timeout(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

void parse_options(int argc, char** argv,
                   const std::function<bool(const std::string&, const std::string&)>& take) {
  for (int i = 1; i < argc; i += 2) {
    const std::string key = argv[i];
    if (i + 1 == argc) throw std::runtime_error("option " + key + " needs a value");
    if (!take(key, argv[i + 1])) throw std::runtime_error("unknown option " + key);
  }
}

temp_dir::temp_dir(std::string_view prefix) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path = pattern;
}

temp_dir::~temp_dir() {
  std::error_code ignored;
  std::filesystem::remove_all(path, ignored);
}

}  // namespace ebus::bench
