#include "remote/socket_server.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <system_error>
#include <unistd.h>
#include <vector>

#include <spdlog/spdlog.h>

#include "bus/message_json.hpp"
#include "common/log.hpp"
#include "remote/remote_connection.hpp"
#include "remote/sizing.hpp"

namespace ebus::remote {

using asio::use_awaitable;
using asio::experimental::as_tuple;

namespace {
constexpr auto refusal_warning_interval = std::chrono::seconds(10);
constexpr int drain_reads = 64;

std::error_code last_error() {
  return {errno, std::system_category()};
}

/// True when a process accepts connections on the socket file at `path`: then it is not stale.
bool in_use(const std::string& path, int type) {
  const int fd = ::socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  // EAGAIN: a listener with a full backlog. EPROTOTYPE: a listener of the other socket type.
  const bool live = rc == 0 || errno == EAGAIN || errno == EPROTOTYPE;
  ::close(fd);
  return live;
}

template <class Acceptor, class Endpoint>
std::error_code open_acceptor(Acceptor& acceptor, const Endpoint& endpoint, mode_t file_mode) {
  std::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (ec) return ec;
  // bind() creates the socket file with the umask applied: it is born with its mode, so it is
  // never reachable by others, not even for an instant. The umask is process-wide; this runs
  // during start-up, before the loop runs, when no other thread creates files (the store
  // thread waits for its first write, which only the loop can make).
  const mode_t previous = ::umask(~file_mode & 0777);
  acceptor.bind(endpoint, ec);
  ::umask(previous);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  return ec;
}

/// Like mqtt::broker::classify_accept_error: true for the errors after which accepting goes on.
/// `pause` is set for a shortage of descriptors or memory.
bool passing_accept_error(const std::error_code& ec, bool& pause) {
  pause = false;
  // Asio reports errno values in its own category ("asio.system").
  if (ec.category() != asio::error::get_system_category() &&
      ec.category() != std::system_category()) {
    return false;
  }
  switch (ec.value()) {
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      pause = true;
      return true;
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case EINTR:
    case EAGAIN:
      return true;
    default:
      return false;
  }
}
}  // namespace

socket_server::socket_server(asio::any_io_executor executor, bus::bus& b, socket_options options)
    : executor_(std::move(executor)),
      bus_(b),
      options_(std::move(options)),
      log_(log::get("remote")) {
  if (options_.max_message_bytes == 0) options_.max_message_bytes = 1;
  if (options_.outbound_capacity == 0) options_.outbound_capacity = 1;
  if (options_.outbound_bytes == 0) options_.outbound_bytes = 1;
  packet_limit_ = options_.max_message_bytes;
}

socket_server::~socket_server() {
  stop();
  *alive_ = false;
}

expected<void, std::string> socket_server::start() {
  if (started_ || stopped_) return fail(std::string("module sockets already started"));
  started_ = true;
  for (const auto& [path, packet] :
       {std::pair{options_.seqpacket_path, true}, std::pair{options_.stream_path, false}}) {
    if (path.empty()) continue;
    if (auto ok = listen(path, packet); !ok) {
      // Nothing half-started: close what is open and remove its file.
      std::error_code ignored;
      if (packet_acceptor_) packet_acceptor_->close(ignored);
      if (stream_acceptor_) stream_acceptor_->close(ignored);
      packet_acceptor_.reset();
      stream_acceptor_.reset();
      remove_files();
      return ok;
    }
  }
  if (packet_acceptor_) {
    size_packets();
    spawn_accept_loop(accept_loop(*packet_acceptor_, options_.seqpacket_path),
                      options_.seqpacket_path);
  }
  if (stream_acceptor_) {
    spawn_accept_loop(accept_loop(*stream_acceptor_, options_.stream_path), options_.stream_path);
  }
  return {};
}

expected<void, std::string> socket_server::listen(const std::string& path, bool packet) {
  namespace fs = std::filesystem;
  const char* type_name = packet ? "seqpacket" : "stream";
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return fail("module socket path '" + path + "' is too long (at most " +
                std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes)");
  }
  std::error_code ec;
  if (const auto dir = fs::path(path).parent_path(); !dir.empty()) {
    fs::create_directories(dir, ec);
    if (ec) {
      return fail("cannot create directory '" + dir.string() + "' for module socket '" + path +
                  "': " + ec.message());
    }
  }
  const auto status = fs::symlink_status(path, ec);
  if (!ec && fs::exists(status)) {
    if (!fs::is_socket(status)) {
      return fail("cannot listen on module socket '" + path + "': the file is not a socket");
    }
    if (in_use(path, packet ? SOCK_SEQPACKET : SOCK_STREAM)) {
      return fail("cannot listen on module socket '" + path +
                  "': another process is listening on it");
    }
    fs::remove(path, ec);  // stale, from an earlier run
    if (ec) {
      return fail("cannot remove stale module socket '" + path + "': " + ec.message());
    }
  }
  if (packet) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    const asio::generic::seq_packet_protocol::endpoint endpoint(&addr, sizeof(addr));
    packet_acceptor_.emplace(executor_);
    ec = open_acceptor(*packet_acceptor_, endpoint, options_.file_mode);
  } else {
    stream_acceptor_.emplace(executor_);
    ec = open_acceptor(*stream_acceptor_, asio::local::stream_protocol::endpoint(path),
                       options_.file_mode);
  }
  if (ec) return fail("cannot listen on module socket '" + path + "': " + ec.message());
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    ec = last_error();
    bound_.push_back({path, 0, 0});
    return fail("cannot stat module socket '" + path + "': " + ec.message());
  }
  bound_.push_back({path, st.st_dev, st.st_ino});
  log_->info("listening path={} type={}", path, type_name);
  return {};
}

void socket_server::size_packets() {
  const std::size_t wanted = options_.max_message_bytes;
  const auto probe = probe_packet_limit(wanted + 1);  // with its '\n'
  if (probe.packet_limit == 0) {
    // Each connection still sizes its own buffer; the kernel refuses what it cannot send.
    packet_limit_ = wanted;
    log_->warn("seqpacket_limit unknown: no socket pair to measure it ({})",
               std::system_category().message(errno));
    return;
  }
  packet_limit_ = probe.packet_limit - 1;
  log_->info("seqpacket_limit message_bytes={} max_message_bytes={} send_buffer={}", packet_limit_,
             wanted, probe.forced ? "SO_SNDBUFFORCE" : "SO_SNDBUF");
  if (packet_limit_ < wanted) {
    log_->warn(
        "seqpacket_limit message_bytes={} max_message_bytes={}: a larger message cannot be sent "
        "to a SEQPACKET client and is refused (too_large); such clients should use the stream "
        "socket{}",
        packet_limit_, wanted, probe.forced ? "" : " (or run as root, or raise net.core.wmem_max)");
  }
}

std::vector<connection_info> socket_server::connections() const {
  std::vector<connection_info> out;
  out.reserve(connections_.size());
  for (const auto& [ptr, c] : connections_)
    out.push_back(c->info());
  return out;
}

void socket_server::spawn_accept_loop(awaitable<void> loop, const std::string& path) {
  asio::co_spawn(executor_, std::move(loop),
                 [this, alive = alive_, path](const std::exception_ptr& e) {
                   if (!e || !*alive) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& ex) {
                     report_failure("module socket " + path + ": accept loop failed: " + ex.what());
                   } catch (...) {
                     report_failure("module socket " + path + ": accept loop failed");
                   }
                 });
}

void socket_server::note_accept_error(const std::string& path, const std::error_code& ec) {
  ++accept_errors_;
  const auto now = std::chrono::steady_clock::now();
  if (accept_quiet_until_ && now < *accept_quiet_until_) return;
  accept_quiet_until_ = now + refusal_warning_interval;
  log_->warn("accept_failed path={} error=\"{}\" errors={}: still accepting", path, ec.message(),
             std::exchange(accept_errors_, 0));
}

void socket_server::report_failure(const std::string& line) {
  if (failed_ || stopped_) return;
  failed_ = true;
  if (on_failure_) {
    on_failure_(line);
  } else {
    log_->critical("listener_failed {}; no longer accepting connections", line);
  }
}

template <class Acceptor>
awaitable<void> socket_server::accept_loop(Acceptor& acceptor, std::string path) {
  const auto alive = alive_;  // the server may be gone when an aborted accept completes
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(as_tuple(use_awaitable));
    if (!*alive || stopped_ || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      bool pause = false;
      if (!passing_accept_error(ec, pause)) {
        report_failure("module socket " + path + ": accept failed: " + ec.message());
        co_return;
      }
      note_accept_error(path, ec);
      if (pause) {
        asio::steady_timer timer(executor_, std::chrono::milliseconds(100));
        co_await timer.async_wait(as_tuple(use_awaitable));
        if (!*alive || stopped_) co_return;
      }
      continue;
    }
    if (connections_.size() >= options_.max_connections) {
      refuse(socket.native_handle());
      std::error_code ignored;
      socket.close(ignored);
      continue;
    }
    if (const auto why = check_peer(socket.native_handle()); !why.empty()) {
      refuse_peer(socket.native_handle(), why);
      std::error_code ignored;
      socket.close(ignored);
      continue;
    }
    ++stats_.accepted;
    auto c = std::make_shared<remote_connection>(std::move(socket), bus_, *this);
    connections_.emplace(c.get(), c);
    c->start();
  }
}

void socket_server::refuse(int fd) {
  ++stats_.refused;
  auto m = bus::new_message();
  m.route.operation = bus::operation::error;
  m.content = bus::content::text("too many connections");
  const std::string text = bus::to_json(m) + "\n";
  // Best effort and never blocking: a new socket's buffer has room for one small message.
  (void)::send(fd, text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  // Closing with unread input resets the connection, and the client could miss the error
  // message: read what it sent already (its registration, usually).
  char scratch[4096];
  for (int i = 0; i<drain_reads&& ::recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT)> 0; ++i) {
  }
  ++refused_since_warning_;
  const auto now = std::chrono::steady_clock::now();
  if (quiet_until_ && now < *quiet_until_) return;
  log_->warn("connection_refused reason=max_connections limit={} refused={} refused_total={}",
             options_.max_connections, refused_since_warning_, stats_.refused);
  refused_since_warning_ = 0;
  quiet_until_ = now + refusal_warning_interval;
}

std::string socket_server::check_peer(int fd) const {
  if (!options_.allowed_peers) return {};
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return "credentials unavailable: " + std::string(std::strerror(errno));
  }
  const auto& allowed = *options_.allowed_peers;
  const auto listed = [](const std::vector<std::uint32_t>& ids, std::uint32_t id) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  };
  if (listed(allowed.uids, cred.uid) || listed(allowed.gids, cred.gid)) return {};
  return fmt::format("uid={} gid={} pid={} not allowed", cred.uid, cred.gid, cred.pid);
}

void socket_server::refuse_peer(int fd, const std::string& why) {
  ++stats_.refused_peer;
  auto m = bus::new_message();
  m.route.operation = bus::operation::error;
  m.content = bus::content::text("permission denied");
  const std::string text = bus::to_json(m) + "\n";
  (void)::send(fd, text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  ++refused_peer_since_warning_;
  const auto now = std::chrono::steady_clock::now();
  if (peer_quiet_until_ && now < *peer_quiet_until_) return;
  log_->warn(
      "connection_refused reason=peer_credentials detail=\"{}\" refused={} refused_total={} "
      "hint=\"add the user or group to moduleSocketAllowedUids or moduleSocketAllowedGids\"",
      why, refused_peer_since_warning_, stats_.refused_peer);
  refused_peer_since_warning_ = 0;
  peer_quiet_until_ = now + refusal_warning_interval;
}

void socket_server::on_closed(remote_connection* c) {
  connections_.erase(c);
}

void socket_server::remove_files() {
  for (const auto& f : bound_) {
    struct stat st {};
    // Only our own socket: another daemon may have replaced the file since.
    if (::lstat(f.path.c_str(), &st) == 0 &&
        (f.inode == 0 || (st.st_dev == f.device && st.st_ino == f.inode))) {
      ::unlink(f.path.c_str());
    }
  }
  bound_.clear();
}

void socket_server::stop() {
  if (stopped_) return;
  stopped_ = true;
  std::error_code ignored;
  if (packet_acceptor_) packet_acceptor_->close(ignored);
  if (stream_acceptor_) stream_acceptor_->close(ignored);
  std::vector<std::shared_ptr<remote_connection>> all;
  all.reserve(connections_.size());
  for (const auto& [ptr, c] : connections_)
    all.push_back(c);
  for (const auto& c : all)
    c->close("daemon stopping");
  connections_.clear();
  remove_files();
  if (started_) log_->info("stopped");
}

}  // namespace ebus::remote
