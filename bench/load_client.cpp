#include "load_client.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <random>
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
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

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

// RFC 6455 section 5.2.
constexpr std::uint8_t op_continuation = 0x0;
constexpr std::uint8_t op_text = 0x1;
constexpr std::uint8_t op_binary = 0x2;
constexpr std::uint8_t op_close = 0x8;
constexpr std::uint8_t op_ping = 0x9;
constexpr std::uint8_t op_pong = 0xa;
constexpr std::size_t read_chunk = std::size_t{64} * 1024;
constexpr std::size_t max_response_header = std::size_t{16} * 1024;

std::string openssl_errors() {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    std::array<char, 256> text{};
    ERR_error_string_n(code, text.data(), text.size());
    if (!out.empty()) out += "; ";
    out += text.data();
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The value of header `name` (lower case) in an HTTP response head, trimmed; "" when absent.
std::string header_value(std::string_view head, std::string_view name) {
  std::size_t at = head.find("\r\n");
  while (at != std::string_view::npos) {
    const std::size_t begin = at + 2;
    const std::size_t end = head.find("\r\n", begin);
    const auto line = head.substr(begin, end == std::string_view::npos ? end : end - begin);
    const std::size_t colon = line.find(':');
    if (colon != std::string_view::npos && lower(line.substr(0, colon)) == name) {
      auto value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);
      return std::string(value);
    }
    at = end;
  }
  return {};
}

std::string base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// Sec-WebSocket-Accept for a key (RFC 6455 section 4.2.2).
std::string websocket_accept(const std::string& key) {
  const std::string text = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), digest.data(), &size, EVP_sha1(), nullptr) != 1) {
    throw std::runtime_error("SHA-1: " + openssl_errors());
  }
  return base64(digest.data(), size);
}

// xorshift64: masking keys need no cryptographic quality here, and must cost nothing.
std::uint32_t next_mask(std::uint64_t& state) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return static_cast<std::uint32_t>(state >> 32);
}

}  // namespace

transport_kind parse_transport(std::string_view name) {
  if (name == "tcp") return transport_kind::tcp;
  if (name == "tls") return transport_kind::tls;
  if (name == "ws") return transport_kind::ws;
  if (name == "wss") return transport_kind::wss;
  throw std::runtime_error("unknown transport '" + std::string(name) +
                           "': expected tcp, tls, ws or wss");
}

std::string_view name_of(transport_kind kind) noexcept {
  switch (kind) {
    case transport_kind::tcp:
      break;
    case transport_kind::tls:
      return "tls";
    case transport_kind::ws:
      return "ws";
    case transport_kind::wss:
      return "wss";
  }
  return "tcp";
}

tls_client_context::tls_client_context(const std::string& ca_file) {
  std::signal(SIGPIPE, SIG_IGN);
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr) throw std::runtime_error("SSL_CTX_new: " + openssl_errors());
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  // Read-ahead: one recv() takes in as many records as have arrived, not one record per call.
  SSL_CTX_set_read_ahead(ctx_, 1);
  if (!ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr) != 1) {
      const std::string why = openssl_errors();
      SSL_CTX_free(ctx_);
      throw std::runtime_error("CA file '" + ca_file + "': " + why);
    }
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  }
}

tls_client_context::~tls_client_context() {
  SSL_CTX_free(ctx_);
}

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
    if (ssl_ != nullptr) SSL_free(ssl_);
    ::close(fd_);
    throw;
  }
}

client_link::~client_link() {
  if (ssl_ != nullptr) SSL_free(ssl_);
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
  ssl_ = SSL_new(tls.native());
  if (ssl_ == nullptr) throw std::runtime_error("SSL_new: " + openssl_errors());
  SSL_set_fd(ssl_, fd_);
  // The certificate names the address connected to (subjectAltName IP:127.0.0.1).
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), "127.0.0.1");
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE);
  for (;;) {
    ERR_clear_error();
    const int r = SSL_connect(ssl_);
    if (r == 1) return;
    const int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      wait_ready(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);
      continue;
    }
    std::string why = openssl_errors();
    if (const long verify = SSL_get_verify_result(ssl_); verify != X509_V_OK) {
      why += std::string(why.empty() ? "" : "; ") + X509_verify_cert_error_string(verify);
    }
    throw std::runtime_error("TLS handshake failed: " + (why.empty() ? "connection closed" : why));
  }
}

void client_link::upgrade_to_websocket(std::uint16_t port) {
  std::array<unsigned char, 16> nonce{};
  std::random_device random;
  for (auto& b : nonce)
    b = static_cast<unsigned char>(random());
  mask_state_ = (std::uint64_t{random()} << 32) | random() | 1;  // xorshift needs a nonzero state
  const std::string key = base64(nonce.data(), nonce.size());
  const std::string request = "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                              "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: " +
                              key +
                              "\r\nSec-WebSocket-Version: 13\r\n"
                              "Sec-WebSocket-Protocol: mqtt\r\n\r\n";
  write_wire(request.data(), request.size());

  in_capacity_ = read_chunk * 2;
  in_ = std::make_unique<char[]>(in_capacity_);
  std::string_view head;
  for (;;) {
    const std::string_view got(in_.get(), in_end_);
    if (const auto end = got.find("\r\n\r\n"); end != std::string_view::npos) {
      head = got.substr(0, end + 2);  // the last line's CRLF stays, for header_value()
      in_begin_ = end + 4;            // frames may follow the head in the same read
      break;
    }
    if (in_end_ >= max_response_header) {
      throw std::runtime_error("WebSocket upgrade: response header over 16 KiB");
    }
    in_end_ += read_wire(in_.get() + in_end_, max_response_header - in_end_, true);
  }
  const std::string status(head.substr(0, head.find("\r\n")));
  if (status.rfind("HTTP/1.1 101", 0) != 0) {
    throw std::runtime_error("WebSocket upgrade refused: " + status);
  }
  if (header_value(head, "sec-websocket-accept") != websocket_accept(key)) {
    throw std::runtime_error("WebSocket upgrade: wrong Sec-WebSocket-Accept");
  }
  if (header_value(head, "sec-websocket-protocol") != "mqtt") {
    throw std::runtime_error("WebSocket upgrade: subprotocol mqtt not agreed");
  }
  unwrap_frames();
}

std::size_t client_link::read_wire(char* into, std::size_t size, bool wait) {
  for (;;) {
    if (ssl_ == nullptr) {
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
    const int n = SSL_read(ssl_, into, static_cast<int>(std::min<std::size_t>(size, INT_MAX)));
    if (n > 0) return static_cast<std::size_t>(n);
    const int err = SSL_get_error(ssl_, n);
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
    if (ssl_ == nullptr) {
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
    const int n = SSL_write(ssl_, data, static_cast<int>(std::min<std::size_t>(size, INT_MAX)));
    if (n > 0) {
      data += n;
      size -= static_cast<std::size_t>(n);
      continue;
    }
    const int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      wait_ready(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);
      continue;
    }
    ERR_clear_error();
    throw std::runtime_error("send failed: connection closed by the broker");
  }
}

void client_link::write_frame(std::uint8_t opcode, std::string_view payload) {
  std::string& f = frame_out_;
  f.clear();
  f.push_back(static_cast<char>(0x80 | opcode));  // FIN: every frame is a whole message
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(0x80 | payload.size()));
  } else if (payload.size() <= 0xffff) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8)
      f.push_back(static_cast<char>((static_cast<std::uint64_t>(payload.size()) >> shift) & 0xff));
  }
  // A client masks every frame (RFC 6455 section 5.3); a word at a time, so that masking costs
  // the load generator little next to what unmasking costs the broker.
  const std::uint32_t mask = next_mask(mask_state_);
  std::array<char, 4> key{};
  std::memcpy(key.data(), &mask, key.size());
  f.append(key.data(), key.size());
  const std::size_t start = f.size();
  f.append(payload);
  std::uint64_t word_mask = 0;
  std::memcpy(&word_mask, key.data(), 4);
  std::memcpy(reinterpret_cast<char*>(&word_mask) + 4, key.data(), 4);
  char* p = f.data() + start;
  const std::size_t words = payload.size() / 8;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint64_t w = 0;
    std::memcpy(&w, p + i * 8, 8);
    w ^= word_mask;
    std::memcpy(p + i * 8, &w, 8);
  }
  for (std::size_t i = words * 8; i < payload.size(); ++i)
    p[i] = static_cast<char>(p[i] ^ key[i % 4]);
  write_wire(f.data(), f.size());
}

void client_link::unwrap_frames() {
  for (;;) {
    const char* at = in_.get() + in_begin_;
    const std::size_t avail = in_end_ - in_begin_;
    if (avail < 2) break;
    const auto b0 = static_cast<std::uint8_t>(at[0]);
    const auto b1 = static_cast<std::uint8_t>(at[1]);
    if ((b1 & 0x80) != 0) throw std::runtime_error("WebSocket: masked frame from the broker");
    std::size_t header = 2;
    std::uint64_t length = b1 & 0x7f;
    if (length >= 126) {
      const std::size_t bytes = length == 126 ? 2 : 8;
      if (avail < header + bytes) break;
      length = 0;
      for (std::size_t i = 0; i < bytes; ++i)
        length = (length << 8) | static_cast<std::uint8_t>(at[header + i]);
      header += bytes;
    }
    if (length > std::size_t{64} * 1024 * 1024) {
      throw std::runtime_error("WebSocket: frame over 64 MiB from the broker");
    }
    if (avail - header < length) {
      // Make room for the rest of this frame behind it.
      const std::size_t need = header + static_cast<std::size_t>(length);
      if (need + read_chunk > in_capacity_) {
        auto bigger = std::make_unique<char[]>(need + read_chunk);
        std::memcpy(bigger.get(), at, avail);
        in_ = std::move(bigger);
        in_capacity_ = need + read_chunk;
        in_begin_ = 0;
        in_end_ = avail;
      }
      break;
    }
    const std::string_view payload(at + header, static_cast<std::size_t>(length));
    in_begin_ += header + static_cast<std::size_t>(length);
    switch (b0 & 0x0f) {
      case op_continuation:
      case op_binary:
        dec_.feed(payload);  // MQTT packets may span frames [MQTT-6.0.0-2]
        break;
      case op_text:
        throw std::runtime_error("WebSocket: text frame from the broker");
      case op_close:
        throw std::runtime_error("connection closed by the broker (WebSocket close)");
      case op_ping:
        write_frame(op_pong, payload);
        break;
      case op_pong:
        break;
      default:
        throw std::runtime_error("WebSocket: reserved opcode " + std::to_string(b0 & 0x0f));
    }
  }
  if (in_begin_ == in_end_) {
    in_begin_ = in_end_ = 0;
  } else if (in_capacity_ - in_end_ < read_chunk) {
    std::memmove(in_.get(), in_.get() + in_begin_, in_end_ - in_begin_);
    in_end_ -= in_begin_;
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
    write_frame(op_binary, mqtt);
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
    if (n == 0 || ssl_ == nullptr || total >= read_chunk || SSL_has_pending(ssl_) == 0) break;
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
  if (ssl_ == nullptr) return {};
  return std::string(SSL_get_version(ssl_)) + " " + SSL_get_cipher_name(ssl_);
}

}  // namespace ebus::bench
