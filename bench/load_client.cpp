#include "load_client.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdexcept>
#include <string_view>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <climits>
#include <openssl/err.h>
#include <openssl/ssl.h>

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

pid_t spawn(std::vector<std::string> argv, const std::string& stderr_path) {
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  if (!stderr_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
  }
  pid_t pid = 0;
  const int failed = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (failed != 0) throw std::runtime_error("cannot start " + argv[0]);
  return pid;
}

void stop_process(pid_t pid) {
  ::kill(pid, SIGTERM);
  int st = 0;
  ::waitpid(pid, &st, 0);
}

double own_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return seconds(u.ru_utime) + seconds(u.ru_stime);
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

namespace {
std::string json_escape(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(c));
      out += esc;
    } else {
      out += c;
    }
  }
  return out;
}
}  // namespace

namespace {
constexpr std::size_t sequence_digits = 16;
}  // namespace

std::string sequenced_payload() {
  std::string p(sequence_digits, '0');
  p.append(sequenced_payload_size - sequence_digits, 'p');
  return p;
}

void write_sequence(std::string& payload, std::uint64_t seq) {
  for (std::size_t i = sequence_digits; i > 0; --i) {
    payload[i - 1] = static_cast<char>('0' + seq % 10);
    seq /= 10;
  }
}

std::optional<std::uint64_t> read_sequence(std::string_view payload) {
  if (payload.size() != sequenced_payload_size) return std::nullopt;
  std::uint64_t seq = 0;
  for (std::size_t i = 0; i < sequence_digits; ++i) {
    if (payload[i] < '0' || payload[i] > '9') return std::nullopt;
    seq = seq * 10 + static_cast<std::uint64_t>(payload[i] - '0');
  }
  return seq;
}

void append_result(const std::string& path, std::string_view group, std::string_view scenario,
                   std::string_view broker, std::size_t run, const result_metrics& metrics,
                   std::string_view note) {
  if (path.empty()) return;
  std::string line = "{\"group\": \"" + json_escape(group) + "\", \"scenario\": \"" +
                     json_escape(scenario) + "\", \"broker\": \"" + json_escape(broker) +
                     "\", \"run\": " + std::to_string(run) + ", \"metrics\": {";
  bool first = true;
  for (const auto& [name, value] : metrics) {
    char number[40];
    if (!std::isfinite(value)) {
      std::snprintf(number, sizeof number, "null");
    } else if (value == std::floor(value) && std::fabs(value) < 9e15) {
      std::snprintf(number, sizeof number, "%.0f", value);
    } else {
      std::snprintf(number, sizeof number, "%.10g", value);
    }
    line += (first ? "\"" : ", \"") + json_escape(name) + "\": " + number;
    first = false;
  }
  line += "}, \"note\": \"" + json_escape(note) + "\"}\n";
  std::ofstream out(path, std::ios::app);
  out << line;
  if (!out) throw std::runtime_error("cannot append to " + path);
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

// --- clients over TLS and WebSocket ------------------------------------------------------------

namespace {

constexpr std::size_t read_chunk = std::size_t{64} * 1024;

}  // namespace

transport_kind parse_transport(std::string_view name) {
  if (const auto kind = mqtt::transport::parse_transport_kind(name)) return *kind;
  throw std::runtime_error("unknown transport '" + std::string(name) +
                           "': expected tcp, tls, ws or wss");
}

tls_client_context::tls_client_context(const std::string& ca_file)
    : ctx_(mqtt::transport::make_tls_client_context(ca_file, true)) {}

client_link::client_link(std::uint16_t port, transport_kind kind, const tls_client_context* tls)
    : kind_(kind), fd_(dial(port)) {
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  try {
    if (uses_tls(kind_)) {
      if (tls == nullptr) throw std::runtime_error("a TLS transport needs a TLS context");
      start_tls(*tls);
    }
    if (uses_websocket(kind_)) upgrade_to_websocket(port);
  } catch (...) {
    ssl_.reset();
    ::close(fd_);
    throw;
  }
}

client_link::~client_link() {
  ssl_.reset();
  ::close(fd_);
}

void client_link::wait_ready(short events) {
  pollfd p{fd_, events, 0};
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(io_timeout);
  for (;;) {
    const int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n > 0) return;
    if (n == 0) throw std::runtime_error("no progress on the connection for 10 s");
    if (errno != EINTR) throw std::runtime_error("poll failed");
  }
}

void client_link::start_tls(const tls_client_context& tls) {
  ssl_ = mqtt::transport::make_tls_client_session(tls.native(), fd_, "127.0.0.1");
  mqtt::transport::tls_client_handshake(ssl_.get(), [this](bool want_read) {
    wait_ready(want_read ? POLLIN : POLLOUT);  // throws after io_timeout
    return true;
  });
}

void client_link::upgrade_to_websocket(std::uint16_t port) {
  ws_.emplace(
      mqtt::transport::websocket_client_options{.host = "127.0.0.1:" + std::to_string(port)});
  write_wire(ws_->request().data(), ws_->request().size());

  const std::size_t max_head = mqtt::transport::websocket_client_options{}.max_response_bytes;
  in_capacity_ = std::max(read_chunk * 2, max_head);
  in_ = std::make_unique<char[]>(in_capacity_);
  for (;;) {
    const auto r = ws_->check_upgrade(std::string_view(in_.get(), in_end_));
    using state = mqtt::transport::websocket_client::upgrade_state;
    if (r.state == state::refused) throw std::runtime_error(r.reason);
    if (r.state == state::accepted) {
      in_begin_ = r.head_bytes;  // frames may follow the head in the same read
      break;
    }
    in_end_ += read_wire(in_.get() + in_end_, max_head - in_end_, true);
  }
  unwrap_frames();
}

std::size_t client_link::read_wire(char* into, std::size_t size, bool wait) {
  for (;;) {
    if (!ssl_) {
      const auto n = ::recv(fd_, into, size, 0);
      if (n > 0) return static_cast<std::size_t>(n);
      if (n == 0) throw std::runtime_error("connection closed by the broker");
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        throw std::runtime_error(std::string("receive failed: ") + std::strerror(errno));
      }
      if (!wait) return 0;
      wait_ready(POLLIN);
      continue;
    }
    ERR_clear_error();
    const int n =
        SSL_read(ssl_.get(), into, static_cast<int>(std::min<std::size_t>(size, INT_MAX)));
    if (n > 0) return static_cast<std::size_t>(n);
    const int err = SSL_get_error(ssl_.get(), n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      // Also after records that carry no data, such as TLS 1.3 session tickets.
      if (!wait) return 0;
      wait_ready(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);
      continue;
    }
    ERR_clear_error();
    throw std::runtime_error("connection closed by the broker");
  }
}

void client_link::write_wire(const char* data, std::size_t size) {
  while (size > 0) {
    if (!ssl_) {
      const auto n = ::send(fd_, data, size, MSG_NOSIGNAL);
      if (n > 0) {
        data += n;
        size -= static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wait_ready(POLLOUT);
        continue;
      }
      throw std::runtime_error("send failed: connection closed by the broker");
    }
    ERR_clear_error();
    const int n =
        SSL_write(ssl_.get(), data, static_cast<int>(std::min<std::size_t>(size, INT_MAX)));
    if (n > 0) {
      data += n;
      size -= static_cast<std::size_t>(n);
      continue;
    }
    const int err = SSL_get_error(ssl_.get(), n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      wait_ready(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);
      continue;
    }
    ERR_clear_error();
    throw std::runtime_error("send failed: connection closed by the broker");
  }
}

void client_link::unwrap_frames() {
  using state = mqtt::transport::websocket_client::unwrap_state;
  replies_.clear();
  const auto r = ws_->unwrap(
      std::string_view(in_.get() + in_begin_, in_end_ - in_begin_),
      [this](std::string_view mqtt) { dec_.feed(mqtt); }, replies_);
  in_begin_ += r.consumed;
  if (!replies_.empty()) write_wire(replies_.data(), replies_.size());  // pongs
  if (r.state == state::failed) throw std::runtime_error(r.reason);
  if (r.state == state::closed) {
    throw std::runtime_error("connection closed by the broker (WebSocket close)");
  }
  const std::size_t avail = in_end_ - in_begin_;
  if (r.next_frame_bytes + read_chunk > in_capacity_) {
    // Make room for the rest of this frame behind it.
    auto bigger = std::make_unique<char[]>(r.next_frame_bytes + read_chunk);
    std::memcpy(bigger.get(), in_.get() + in_begin_, avail);
    in_ = std::move(bigger);
    in_capacity_ = r.next_frame_bytes + read_chunk;
    in_begin_ = 0;
    in_end_ = avail;
  } else if (avail == 0) {
    in_begin_ = in_end_ = 0;
  } else if (in_capacity_ - in_end_ < read_chunk) {
    std::memmove(in_.get(), in_.get() + in_begin_, avail);
    in_end_ = avail;
    in_begin_ = 0;
  }
}

void client_link::mqtt_connect(const std::string& client_id) {
  std::string out;
  codec::encode(codec::connect{.keep_alive = 60, .client_id = client_id}, out);
  send(out);
  auto ack = read_packet();
  const auto* c = std::get_if<codec::connack>(&ack);
  if (c == nullptr || c->return_code != codec::connect_return_code::accepted) {
    throw std::runtime_error("CONNECT of " + client_id + " refused");
  }
}

void client_link::send(std::string_view mqtt) {
  if (uses_websocket(kind_)) {
    frame_out_.clear();
    ws_->frame(mqtt::transport::websocket_client::op_binary, mqtt, frame_out_);
    write_wire(frame_out_.data(), frame_out_.size());
  } else {
    write_wire(mqtt.data(), mqtt.size());
  }
}

bool client_link::receive(bool wait) {
  std::size_t total = 0;
  for (;;) {
    std::size_t n = 0;
    if (uses_websocket(kind_)) {
      // unwrap_frames() leaves at least read_chunk free behind in_end_.
      n = read_wire(in_.get() + in_end_, in_capacity_ - in_end_, wait && total == 0);
      in_end_ += n;
      unwrap_frames();
    } else {
      auto space = dec_.prepare(read_chunk);
      n = read_wire(space.data(), space.size(), wait && total == 0);
      dec_.commit(n);
    }
    total += n;
    // SSL_read returns one record at a time: take the rest of what read-ahead already holds,
    // so that one call sees what a plain recv() would.
    if (n == 0 || !ssl_ || total >= read_chunk || SSL_has_pending(ssl_.get()) == 0) break;
  }
  return total > 0;
}

std::optional<codec::packet> client_link::next_buffered() {
  auto r = dec_.next();
  if (!r) throw std::runtime_error("decode error: " + std::string(dec_.error_detail()));
  if (!*r) return std::nullopt;
  return std::move(**r);
}

codec::packet client_link::read_packet() {
  for (;;) {
    if (auto p = next_buffered()) return std::move(*p);
    receive(true);
  }
}

void client_link::shutdown() noexcept {
  ::shutdown(fd_, SHUT_RDWR);
}

std::string client_link::tls_description() const {
  if (!ssl_) return {};
  return std::string(SSL_get_version(ssl_.get())) + " " + SSL_get_cipher_name(ssl_.get());
}

}  // namespace ebus::bench
