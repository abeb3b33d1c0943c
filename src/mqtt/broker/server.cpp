#include "mqtt/broker/server.hpp"

#include <algorithm>
#include <cerrno>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "common/log.hpp"
#include "mqtt/broker/connection.hpp"
#include "mqtt/broker/listen_url.hpp"
#include "mqtt/broker/stream.hpp"
#include "mqtt/transport/websocket_server.hpp"

namespace ebus::mqtt::broker {
namespace {

constexpr auto warning_interval = std::chrono::seconds(10);
constexpr int drain_reads = 16;
constexpr std::size_t accepts_per_turn = 64;

/// Reads and discards what the client has sent so far, without waiting: closing a socket with
/// unread input resets the connection, and the client could lose the CONNACK before it.
void drain(int fd) {
  char scratch[4096];
  for (int i = 0; i < drain_reads; ++i) {
    if (::recv(fd, scratch, sizeof scratch, MSG_DONTWAIT) <= 0) return;
  }
}

std::string url_of(listen_transport t, const asio::ip::tcp::endpoint& ep) {
  const auto host = ep.address().to_string();
  return ep.address().is_v6() ? fmt::format("{}://[{}]:{}", transport::name_of(t), host, ep.port())
                              : fmt::format("{}://{}:{}", transport::name_of(t), host, ep.port());
}

}  // namespace

struct server::listener {
  listener(const asio::any_io_executor& executor, listener_options o)
      : options(std::move(o)), acceptor(executor) {}
  listener_options options;
  listen_transport kind = listen_transport::tcp;
  asio::ip::tcp::acceptor acceptor;  // non-blocking; waited on, accepted from by accept4
  std::shared_ptr<tls_context> tls;  // tls and wss; replaced by a reload
};

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

server::server(asio::any_io_executor executor, clock& clk, broker_options options,
               std::vector<listener_options> listeners)
    : executor_(executor),
      clock_(clk),
      core_(std::move(options), clk),
      protocol_options_{{.connect_timeout = core_.options().connect_timeout,
                         .packet_timeout = core_.options().packet_timeout,
                         .slow_subscriber_timeout = core_.options().slow_subscriber_timeout},
                        this},
      log_(log::get("mqtt.broker")),
      readiness_(std::make_shared<readiness_set>(executor_)) {
  if (listeners.empty()) {
    listener_options first;
    first.url = core_.options().listen_url;
    listeners.push_back(std::move(first));
  }
  for (auto& o : listeners)
    listeners_.push_back(std::make_unique<listener>(executor_, std::move(o)));
}

server::~server() {
  stop();
  *alive_ = false;
  if (login_thread_) login_thread_->join();  // a hash under way finishes; its answer is dropped
}

expected<void, std::string> server::start() {
  for (auto& l : listeners_) {
    if (auto bound = bind(*l); !bound) {
      for (auto& other : listeners_) {
        std::error_code ignored;
        other->acceptor.close(ignored);
      }
      return fail("listener '" + l->options.url + "': " + bound.error());
    }
  }
  if (rlimit lim{};
      reserve_ != 0 && ::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    const auto soft = static_cast<std::size_t>(lim.rlim_cur);
    fd_ceiling_ = soft > reserve_ ? soft - reserve_ : 0;
  }
  for (auto& l : listeners_) {
    asio::co_spawn(
        executor_, accept_loop(*l),
        [this, alive = alive_, url = l->options.url](const std::exception_ptr& e) {
          if (!e || !*alive) return;
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            report_failure(fmt::format("listener {}: accept loop failed: {}", url, ex.what()));
          } catch (...) {
            report_failure(fmt::format("listener {}: accept loop failed", url));
          }
        });
    log_->info("listening url={} endpoint={} anonymous={} descriptor_ceiling={}", l->options.url,
               url_of(l->kind, l->acceptor.local_endpoint()), l->options.allow_anonymous,
               fd_ceiling_ ? std::to_string(*fd_ceiling_) : std::string("none"));
  }
  return {};
}

expected<void, std::string> server::bind(listener& l) {
  const auto& url = l.options.url;
  auto addr = parse_listen_url(url);
  if (!addr) return fail(addr.error());
  l.kind = addr->transport;
  if (l.kind == listen_transport::ws) {
    // Opened now, so that a missing library fails the start rather than every client's upgrade.
    if (auto loaded = transport::load_websocket_libraries(); !loaded) {
      return fail("WebSocket needs " + loaded.error());
    }
  }
  if (transport::uses_tls(l.kind)) {
    auto context = make_tls_context(l.options.tls);
    if (!context) return fail(context.error());
    l.tls = std::move(*context);
  }

  std::error_code ec;
  asio::ip::tcp::endpoint endpoint;
  if (auto ip = asio::ip::make_address(addr->host, ec); !ec) {
    endpoint = {ip, addr->port};
  } else {
    // Host names are resolved once, at start-up, before the loop serves anyone.
    asio::ip::tcp::resolver resolver(executor_);
    auto results = resolver.resolve(addr->host, std::to_string(addr->port), ec);
    if (ec || results.empty()) {
      return fail("cannot resolve '" + addr->host + "': " + ec.message());
    }
    endpoint = results.begin()->endpoint();
  }
  auto& acceptor = l.acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) acceptor.non_blocking(true, ec);
  if (ec) {
    std::error_code ignored;
    acceptor.close(ignored);
    return fail("cannot listen: " + ec.message());
  }
  return {};
}

asio::ip::tcp::endpoint server::local_endpoint() const {
  std::error_code ec;
  return listeners_.front()->acceptor.local_endpoint(ec);
}

std::string server::local_url() const {
  return url_of(listeners_.front()->kind, local_endpoint());
}

std::vector<std::string> server::local_urls() const {
  std::vector<std::string> out;
  for (const auto& l : listeners_) {
    std::error_code ec;
    out.push_back(url_of(l->kind, l->acceptor.local_endpoint(ec)));
  }
  return out;
}

awaitable<void> server::accept_loop(listener& l) {
  using asio::experimental::as_tuple;
  const auto alive = alive_;  // the server may be gone when an aborted wait completes
  const int listen_fd = l.acceptor.native_handle();
  std::size_t this_turn = 0;
  for (;;) {
    // accept4 rather than Asio's accept: the socket starts non-blocking and close-on-exec, and
    // a plain TCP one never enters Asio's reactor (see readiness_set.hpp).
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const std::error_code ec(errno, asio::error::get_system_category());
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        // Drained: the listener's next edge ends the wait.
        this_turn = 0;
        auto [wait_ec] = co_await l.acceptor.async_wait(asio::socket_base::wait_read,
                                                        as_tuple(asio::use_awaitable));
        if (!*alive || stopped_ || wait_ec == asio::error::operation_aborted) co_return;
        continue;
      }
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
          report_failure(
              fmt::format("listener {}: accept failed: {}", l.options.url, ec.message()));
          co_return;
      }
    }
    if (++this_turn == accepts_per_turn) {
      // A connection storm takes turns with the connections already served.
      this_turn = 0;
      co_await asio::post(executor_, asio::use_awaitable);
      if (!*alive || stopped_) {
        ::close(fd);
        co_return;
      }
    }
    if (connections_.size() >= core_.options().max_connections) {
      ++stats_.refused_max_connections;
      refuse(l, fd, "max_connections");
      continue;
    }
    if (fd_ceiling_ && static_cast<std::size_t>(fd) >= *fd_ceiling_) {
      ++stats_.refused_fd_reserve;
      refuse(l, fd, "fd_reserve");
      continue;
    }
    ref_ptr<connection> c;
    if (l.kind == listen_transport::tcp) {
      // The connection owns its socket and hears its readiness itself (connection.hpp).
      c = make_ref<connection>(fd, core_, *this, l.options);
      if (const auto ec = readiness_->add(fd, *c); ec) {
        note_accept_error(ec);
        continue;  // c closes the socket
      }
    } else {
      auto s = make_stream(l, fd);
      if (!s) {
        note_accept_error(s.error());
        continue;
      }
      c = make_ref<connection>(std::move(*s), core_, *this, l.options);
    }
    c->slot_ = static_cast<std::uint32_t>(connections_.size());
    connections_.push_back(c);
    c->start();
  }
}

transport::websocket_options server::websocket_options_of(const listener& l) const {
  transport::websocket_options o;
  o.path = l.options.ws_path;
  // One frame may carry the largest packet, plus room for frame headers of a client that
  // splits differently.
  o.max_buffered_bytes = core_.options().max_packet_size + 4096;
  return o;
}

expected<std::unique_ptr<stream>, std::error_code> server::make_stream(listener& l, int fd) {
  // TLS and WebSocket over TCP (a tcp:// connection owns its socket: accept_loop()).
  auto tcp = make_tcp_stream(fd, *readiness_);
  if (!tcp) return tcp;
  if (!transport::uses_tls(l.kind)) {
    return make_websocket_stream(std::move(*tcp), websocket_options_of(l), executor_);
  }
  auto tls = make_tls_stream(std::move(*tcp), l.tls, executor_);
  if (!tls || l.kind == listen_transport::tls) return tls;
  return make_websocket_stream(std::move(*tls), websocket_options_of(l), executor_);
}

void server::refuse(listener& l, int fd, std::string_view reason) {
  ++core_.mutable_stats().connections_refused;
  if (l.kind == listen_transport::tcp) {
    // CONNACK, return code 0x03 "server unavailable" (3.1 and 3.1.1 alike), after the CONNECT
    // when it has arrived already; never waiting, so refusals cannot tie up the loop. Over TLS
    // or WebSocket that would take a handshake first: those connections are only closed.
    static constexpr std::uint8_t connack[] = {0x20, 0x02, 0x00, 0x03};
    drain(fd);
    (void)::send(fd, connack, sizeof connack, MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  drain(fd);
  ::close(fd);

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

expected<void, std::string> server::reload_certificates() {
  std::vector<std::shared_ptr<tls_context>> loaded(listeners_.size());
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    const auto& l = *listeners_[i];
    if (!transport::uses_tls(l.kind)) continue;
    auto context = make_tls_context(l.options.tls);
    if (!context) return fail("listener '" + l.options.url + "': " + context.error());
    loaded[i] = std::move(*context);
  }
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    if (loaded[i]) listeners_[i]->tls = std::move(loaded[i]);
  }
  return {};
}

// Runs `job` on the login thread and completes, with its result, on the awaiting coroutine's
// executor (the loop). Nothing of the caller is touched on the login thread.
awaitable<auth::login_result> server::on_login_thread(std::shared_ptr<login_job> job) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(auth::login_result)>(
      [pool = login_thread_->get_executor()](auto handler, std::shared_ptr<login_job> work) {
        auto loop = asio::get_associated_executor(handler);
        asio::post(pool, [handler = std::move(handler), work = std::move(work),
                          guard = asio::make_work_guard(loop)]() mutable {
          const auto result = work->password ? work->passwords->check(work->user, *work->password)
                                             : work->passwords->check_without_password(work->user);
          work->password.reset();
          auto resume = guard.get_executor();
          asio::post(resume, [handler = std::move(handler), result]() mutable {
            std::move(handler)(result);
          });
        });
      },
      asio::use_awaitable, std::move(job));
}

void server::set_password_file(std::shared_ptr<const auth::password_file> passwords) {
  if (passwords && !login_thread_) login_thread_ = std::make_unique<asio::thread_pool>(1);
  passwords_ = std::move(passwords);
}

awaitable<codec::connect_return_code> server::authenticate(codec::connect& c,
                                                           const listener_options& l,
                                                           const stream* s, std::string& why) {
  using code = codec::connect_return_code;
  if (l.use_identity_as_username) {
    // The verified certificate names the client; what it sent as username and password is
    // not used (mosquitto's use_identity_as_username).
    c.password.reset();
    auto name = s != nullptr ? s->certificate_name() : std::nullopt;
    if (!name || name->empty()) {
      why = "no verified client certificate with a common name";
      co_return code::not_authorized;
    }
    c.username = std::move(name);
    co_return code::accepted;
  }
  // An empty username counts as none, as in mosquitto.
  if (c.username && c.username->empty()) c.username.reset();
  if (!c.username) {
    if (l.allow_anonymous) co_return code::accepted;
    why = "anonymous clients are not allowed on this listener";
    co_return code::not_authorized;
  }
  if (!passwords_) {
    if (l.allow_anonymous) co_return code::accepted;  // the username only names the client
    why = "no password file to check the login against";
    co_return code::not_authorized;
  }
  // The file is kept alive by the job, even if a reload replaces it meanwhile. A named job:
  // GCC 12 miscompiles a lambda temporary with string captures inside a co_await expression.
  auto job = std::make_shared<login_job>(
      login_job{passwords_, std::move(*c.username), std::move(c.password)});
  const auto result = co_await on_login_thread(job);
  c.username = std::move(job->user);
  c.password.reset();  // no longer needed; not kept in memory
  switch (result) {
    case auth::login_result::accepted:
      co_return code::accepted;
    case auth::login_result::unknown_user:
      why = "unknown user";
      break;
    case auth::login_result::wrong_password:
      why = "wrong password";
      break;
  }
  co_return code::bad_user_name_or_password;
}

void server::note_login_failure(const peer_address& peer, const codec::connect& c,
                                codec::connect_return_code code, const std::string& why) {
  ++stats_.login_failures;
  ++login_failures_unlogged_;
  const auto now = clock_.now();
  if (login_failures_quiet_until_ && now < *login_failures_quiet_until_) return;
  login_failures_quiet_until_ = now + warning_interval;
  log_->warn(
      "login_refused peer={} client_id=\"{}\" username=\"{}\" rc={} reason=\"{}\" refused={} "
      "refused_total={}",
      peer, log::escape(c.client_id), log::escape(c.username.value_or("")), static_cast<int>(code),
      why, std::exchange(login_failures_unlogged_, 0), stats_.login_failures);
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
  const auto line = fmt::format("mqtt {}", what);
  if (on_failure_) {
    on_failure_(line);
  } else {
    log_->critical("listener_failed {}; no longer accepting connections", line);
  }
}

std::size_t server::busy_connection_count() const noexcept {
  return static_cast<std::size_t>(std::count_if(connections_.begin(), connections_.end(),
                                                [](const auto& c) { return !c->idle(); }));
}

void server::on_closed(connection* c) {
  const std::size_t i = c->slot_;
  if (i >= connections_.size() || connections_[i].get() != c) return;
  const auto gone = std::move(connections_[i]);  // may be the last owner: dies on return
  if (i + 1 != connections_.size()) {
    connections_[i] = std::move(connections_.back());
    connections_[i]->slot_ = static_cast<std::uint32_t>(i);
  }
  connections_.pop_back();
  if (connections_.capacity() > 1024 && connections_.size() < connections_.capacity() / 4) {
    connections_.shrink_to_fit();  // after a crowd has gone
  }
}

void server::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& l : listeners_) {
    std::error_code ignored;
    l->acceptor.close(ignored);
  }
  // close() is asynchronous; each connection removes itself once its reader has finished.
  const auto open = connections_;  // closing may remove a connection from the list
  for (const auto& c : open)
    c->close("broker shutting down");
  // Closing connections wait for nothing more from their sockets (close() cancels the waits).
  readiness_->close();
}

}  // namespace ebus::mqtt::broker
