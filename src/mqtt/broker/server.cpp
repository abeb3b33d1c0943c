#include "mqtt/broker/server.hpp"

#include <cerrno>
#include <sys/resource.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>

#include "common/log.hpp"
#include "mqtt/broker/connection.hpp"
#include "mqtt/broker/listen_url.hpp"

namespace ebus::mqtt::broker {
namespace {

constexpr auto warning_interval = std::chrono::seconds(10);
constexpr int drain_reads = 16;

/// Reads and discards what the client has sent so far, without waiting: closing a socket with
/// unread input resets the connection, and the client could lose the CONNACK before it.
void drain(int fd) {
  char scratch[4096];
  for (int i = 0; i < drain_reads; ++i) {
    if (::recv(fd, scratch, sizeof scratch, MSG_DONTWAIT) <= 0) return;
  }
}

std::string url_of(const asio::ip::tcp::endpoint& ep) {
  const auto host = ep.address().to_string();
  return ep.address().is_v6() ? fmt::format("tcp://[{}]:{}", host, ep.port())
                              : fmt::format("tcp://{}:{}", host, ep.port());
}

}  // namespace

accept_action classify_accept_error(const std::error_code& ec) noexcept {
  // Asio reports errno values in its own category ("asio.system").
  if (ec.category() != asio::error::get_system_category() &&
      ec.category() != std::system_category()) {
    return accept_action::fail;
  }
  switch (ec.value()) {
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      return accept_action::back_off;
    // accept(2): errors of the connection being accepted (Linux passes pending network errors
    // on), a firewall refusal, an interrupted call.
    case ECONNABORTED:
    case EPROTO:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case ENETDOWN:
    case ENETUNREACH:
    case EPERM:
    case EINTR:
    case EAGAIN:
    case ETIMEDOUT:
      return accept_action::retry;
    default:
      return accept_action::fail;
  }
}

server::server(asio::any_io_executor executor, clock& clk, broker_options options)
    : executor_(executor),
      clock_(clk),
      core_(std::move(options), clk),
      log_(log::get("mqtt.broker")),
      acceptor_(executor) {}

server::~server() {
  stop();
  *alive_ = false;
}

expected<void, std::string> server::start() {
  const auto& url = core_.options().listen_url;
  auto addr = parse_listen_url(url);
  if (!addr) return fail(addr.error());

  std::error_code ec;
  asio::ip::tcp::endpoint endpoint;
  if (auto ip = asio::ip::make_address(addr->host, ec); !ec) {
    endpoint = {ip, addr->port};
  } else {
    // Host names are resolved once, at start-up, before the loop serves anyone.
    asio::ip::tcp::resolver resolver(executor_);
    auto results = resolver.resolve(addr->host, std::to_string(addr->port), ec);
    if (ec || results.empty()) {
      return fail("cannot resolve '" + addr->host + "' in '" + url + "': " + ec.message());
    }
    endpoint = results.begin()->endpoint();
  }
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::error_code ignored;
    acceptor_.close(ignored);
    return fail("cannot listen on '" + url + "': " + ec.message());
  }
  if (rlimit lim{};
      reserve_ != 0 && ::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    const auto soft = static_cast<std::size_t>(lim.rlim_cur);
    fd_ceiling_ = soft > reserve_ ? soft - reserve_ : 0;
  }
  asio::co_spawn(executor_, accept_loop(), [this, alive = alive_](const std::exception_ptr& e) {
    if (!e || !*alive) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      report_failure(fmt::format("accept loop failed: {}", ex.what()));
    } catch (...) {
      report_failure("accept loop failed: unknown exception");
    }
  });
  log_->info("listening url={} endpoint={} descriptor_ceiling={}", url, local_url(),
             fd_ceiling_ ? std::to_string(*fd_ceiling_) : std::string("none"));
  return {};
}

asio::ip::tcp::endpoint server::local_endpoint() const {
  std::error_code ec;
  return acceptor_.local_endpoint(ec);
}

std::string server::local_url() const {
  return url_of(local_endpoint());
}

awaitable<void> server::accept_loop() {
  using asio::experimental::as_tuple;
  const auto alive = alive_;  // the server may be gone when an aborted accept completes
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(as_tuple(asio::use_awaitable));
    if (!*alive || stopped_ || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      switch (classify_accept_error(ec)) {
        case accept_action::retry:
          note_accept_error(ec);
          continue;
        case accept_action::back_off: {
          note_accept_error(ec);
          asio::steady_timer pause(executor_, accept_pause);
          co_await pause.async_wait(as_tuple(asio::use_awaitable));
          if (!*alive || stopped_) co_return;
          continue;
        }
        case accept_action::fail:
          report_failure(fmt::format("accept failed: {}", ec.message()));
          co_return;
      }
    }
    if (connections_.size() >= core_.options().max_connections) {
      ++stats_.refused_max_connections;
      refuse(socket, "max_connections");
      continue;
    }
    if (fd_ceiling_ && static_cast<std::size_t>(socket.native_handle()) >= *fd_ceiling_) {
      ++stats_.refused_fd_reserve;
      refuse(socket, "fd_reserve");
      continue;
    }
    auto c = std::make_shared<connection>(std::move(socket), core_, *this);
    connections_.emplace(c.get(), c);
    c->start();
  }
}

void server::refuse(asio::ip::tcp::socket& socket, std::string_view reason) {
  ++core_.mutable_stats().connections_refused;
  // CONNACK, return code 0x03 "server unavailable" (3.1 and 3.1.1 alike), after the CONNECT
  // when it has arrived already; never waiting, so refusals cannot tie up the loop.
  static constexpr std::uint8_t connack[] = {0x20, 0x02, 0x00, 0x03};
  const int fd = socket.native_handle();
  drain(fd);
  (void)::send(fd, connack, sizeof connack, MSG_DONTWAIT | MSG_NOSIGNAL);
  drain(fd);
  std::error_code ignored;
  socket.close(ignored);

  ++refused_unlogged_;
  const auto now = clock_.now();
  if (refusals_quiet_until_ && now < *refusals_quiet_until_) return;
  refusals_quiet_until_ = now + warning_interval;
  log_->warn(
      "connection_refused reason={} max_connections={} descriptor_ceiling={} refused={} "
      "refused_max_connections_total={} refused_fd_reserve_total={}",
      reason, core_.options().max_connections,
      fd_ceiling_ ? std::to_string(*fd_ceiling_) : std::string("none"),
      std::exchange(refused_unlogged_, 0), stats_.refused_max_connections,
      stats_.refused_fd_reserve);
}

void server::note_accept_error(const std::error_code& ec) {
  ++stats_.accept_errors;
  ++accept_errors_unlogged_;
  const auto now = clock_.now();
  if (accept_errors_quiet_until_ && now < *accept_errors_quiet_until_) return;
  accept_errors_quiet_until_ = now + warning_interval;
  log_->warn("accept_failed error=\"{}\" errors={} errors_total={}: still accepting", ec.message(),
             std::exchange(accept_errors_unlogged_, 0), stats_.accept_errors);
}

void server::report_failure(const std::string& what) {
  if (failed_ || stopped_) return;
  failed_ = true;
  const auto line = fmt::format("mqtt listener {}: {}", core_.options().listen_url, what);
  if (on_failure_) {
    on_failure_(line);
  } else {
    log_->critical("listener_failed {}; no longer accepting connections", line);
  }
}

void server::on_closed(connection* c) {
  connections_.erase(c);
}

void server::stop() {
  if (stopped_) return;
  stopped_ = true;
  std::error_code ignored;
  acceptor_.close(ignored);
  // close() is asynchronous; each connection removes itself once its reader has finished.
  for (auto& [ptr, c] : connections_)
    c->close("broker shutting down");
}

}  // namespace ebus::mqtt::broker
