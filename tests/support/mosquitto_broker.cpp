#include "ebus_test/mosquitto_broker.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <signal.h>
#include <stdexcept>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>

#include "ebus_test/ports.hpp"

namespace ebus::test {
namespace {

constexpr const char* mosquitto_path = "/usr/sbin/mosquitto";

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

bool accepts_connections(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const auto a = loopback(port);
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

std::string make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/ebus-mosquitto-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  }
  return pattern;
}

}  // namespace

mosquitto_broker::mosquitto_broker(mosquitto_broker_options options)
    : options_(std::move(options)), dir_(make_temp_dir()), port_(free_port()) {
  try {
    if (options_.start) start();
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
    throw;
  }
}

mosquitto_broker::~mosquitto_broker() {
  process_.reset();  // SIGKILL and reap
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string mosquitto_broker::url() const {
  return "tcp://127.0.0.1:" + std::to_string(port_);
}

void mosquitto_broker::write_config() const {
  std::ofstream conf(dir_ + "/mosquitto.conf", std::ios::trunc);
  conf << "listener " << port_ << " 127.0.0.1\n";
  for (auto line : options_.extra_config) {
    for (auto at = line.find("{dir}"); at != std::string::npos; at = line.find("{dir}", at))
      line.replace(at, 5, dir_);
    conf << line << '\n';
  }
  conf << "allow_anonymous " << (options_.allow_anonymous ? "true" : "false") << '\n'
       << "log_dest stderr\n"  // unbuffered, unlike stdout into our pipe
       << "persistence false\n"
       // Nagle would hold back TLS records for a delayed ACK: 40 ms per exchange.
       << "set_tcp_nodelay true\n";
  // As root, mosquitto switches to the "mosquitto" user, which cannot read the files in our
  // private directory.
  if (::geteuid() == 0) conf << "user root\n";
  for (const auto& type : options_.log_types)
    conf << "log_type " << type << '\n';
  if (!conf.flush()) throw std::runtime_error("cannot write " + dir_ + "/mosquitto.conf");
}

void mosquitto_broker::start() {
  if (process_) return;
  write_config();
  process_ = std::make_unique<process>(
      std::vector<std::string>{mosquitto_path, "-c", dir_ + "/mosquitto.conf"});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    if (accepts_connections(port_)) return;
    const auto status = process_->wait(std::chrono::milliseconds(20));
    if (status || std::chrono::steady_clock::now() >= deadline) {
      const std::string why = status ? "exited with status " + std::to_string(*status)
                                     : "does not listen on port " + std::to_string(port_);
      const std::string out = process_->output();
      stop();
      throw std::runtime_error("mosquitto " + why + ":\n" + out);
    }
  }
}

void mosquitto_broker::stop() {
  if (!process_) return;
  process_->signal(SIGTERM);
  if (!process_->wait(std::chrono::seconds(5))) {
    process_->signal(SIGKILL);
    process_->wait();
  }
  earlier_output_ += process_->output();
  process_.reset();
}

void mosquitto_broker::kill() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait();
  earlier_output_ += process_->output();
  process_.reset();
}

void mosquitto_broker::signal(int signo) const {
  if (process_) process_->signal(signo);
}

std::string mosquitto_broker::output() {
  return process_ ? earlier_output_ + process_->output() : earlier_output_;
}

bool mosquitto_broker::wait_for_output(const std::string& needle,
                                       std::chrono::milliseconds timeout) {
  return process_ && process_->wait_for_output(needle, timeout);
}

}  // namespace ebus::test
