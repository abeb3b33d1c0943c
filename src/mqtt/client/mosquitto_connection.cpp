#include "mqtt/client/mosquitto_connection.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <fstream>
#include <mutex>
#include <netdb.h>
#include <sys/socket.h>
#include <system_error>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/log.hpp"
#include "mqtt/client/mosquitto_api.hpp"
#include "openssl/openssl_api.hpp"

namespace ebus::mqtt::client {
namespace {

constexpr auto misc_interval = std::chrono::seconds(1);
// Packets read per wake-up before other work on the loop gets a turn.
constexpr int max_reads_per_wakeup = 64;
constexpr int qos1 = 1;

// libmosquitto's table; create() has loaded it before any connection calls into it.
const mosquitto_api::functions& mq() {
  return *mosquitto_api::load().value();
}

std::string errno_text(int err) {
  return std::generic_category().message(err);
}

bool readable(const std::string& path) {
  return std::ifstream(path).good();
}

// Loads the files as libmosquitto will, so that a wrong file is reported at start-up.
expected<void, std::string> check_tls_files(const openssl::functions& ssl,
                                            const connection_settings& s) {
  if (s.ca_file.empty()) return fail(std::string("TLS is enabled but no CA file is set"));
  if (s.cert_file.empty() != s.key_file.empty()) {
    return fail(std::string("TLS needs both a certificate and a key file, or neither"));
  }
  for (const auto* f : {&s.ca_file, &s.cert_file, &s.key_file}) {
    if (!f->empty() && !readable(*f)) {
      return fail("cannot read TLS file '" + *f + "': " + errno_text(errno));
    }
  }
  std::unique_ptr<SSL_CTX, decltype(ssl.SSL_CTX_free)> ctx(ssl.SSL_CTX_new(ssl.TLS_client_method()),
                                                           ssl.SSL_CTX_free);
  if (!ctx) return fail("cannot create a TLS context: " + openssl::last_error(ssl));
  ssl.SSL_CTX_set_default_passwd_cb(ctx.get(), openssl::refuse_passphrase);
  if (ssl.SSL_CTX_load_verify_locations(ctx.get(), s.ca_file.c_str(), nullptr) != 1) {
    return fail("invalid CA file '" + s.ca_file + "': " + openssl::last_error(ssl));
  }
  if (s.cert_file.empty()) return {};
  auto used = openssl::use_key_pair(ssl, ctx.get(), s.cert_file, s.key_file);
  if (!used) return fail(openssl::describe(used.error(), s.cert_file, s.key_file));
  return {};
}

mosquitto_connection* self_of(void* p) {
  return static_cast<mosquitto_connection*>(p);
}

bool is_numeric_address(const std::string& host) {
  in6_addr buf{};
  return ::inet_pton(AF_INET, host.c_str(), &buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), &buf) == 1;
}

// The server name for SNI: libmosquitto sets the host it connects to, the numeric address, just
// before the handshake starts; this puts the configured name in its place.
void send_host_name(const SSL* ssl, int where, int) {
  if ((where & SSL_CB_HANDSHAKE_START) == 0) return;
  const auto loaded = openssl::load();  // loaded already: this context came from it
  if (!loaded) return;
  const openssl::functions& f = **loaded;
  auto* s = const_cast<SSL*>(ssl);  // NOLINT(cppcoreguidelines-pro-type-const-cast): OpenSSL API
  auto* name = static_cast<std::string*>(f.SSL_CTX_get_ex_data(f.SSL_get_SSL_CTX(s), 0));
  // SSL_set_tlsext_host_name() without its C cast.
  if (name != nullptr) {
    f.SSL_ctrl(s, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, name->data());
  }
}

}  // namespace

expected<std::vector<std::string>, std::string> resolve_with_getaddrinfo(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0) {
    return fail(rc == EAI_SYSTEM ? errno_text(errno) : std::string(::gai_strerror(rc)));
  }
  std::vector<std::string> out;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* addr = nullptr;
    if (a->ai_family == AF_INET) {
      addr = &reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr;
    } else if (a->ai_family == AF_INET6) {
      addr = &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr;
    }
    if (addr == nullptr || ::inet_ntop(a->ai_family, addr, text, sizeof text) == nullptr) continue;
    if (std::find(out.begin(), out.end(), text) == out.end()) out.emplace_back(text);
  }
  ::freeaddrinfo(found);
  if (out.empty()) return fail(std::string("no IPv4 or IPv6 address"));
  return out;
}

expected<std::unique_ptr<mosquitto_connection>, std::string> mosquitto_connection::create(
    asio::any_io_executor executor, clock& clk, connection_settings settings,
    connection_handlers handlers) {
  if (const auto loaded = mosquitto_api::load(); !loaded) {
    return fail("the external broker client needs libmosquitto: " + loaded.error());
  }
  std::unique_ptr<mosquitto_connection> c(
      new mosquitto_connection(std::move(executor), clk, std::move(settings), std::move(handlers)));
  if (auto ok = c->configure(); !ok) return fail(std::move(ok.error()));
  return c;
}

mosquitto_connection::mosquitto_connection(asio::any_io_executor executor, clock& clk,
                                           connection_settings settings,
                                           connection_handlers handlers)
    : settings_(std::move(settings)),
      handlers_(std::move(handlers)),
      log_(log::get("mqtt.client")),
      descriptor_(executor),
      clock_(clk),
      backoff_(settings_.reconnect_min),
      executor_(std::move(executor)),
      numeric_host_(!settings_.unix_socket && is_numeric_address(settings_.host)),
      broker_(settings_.unix_socket ? settings_.host
                                    : settings_.host + ":" + std::to_string(settings_.port)) {
  if (!settings_.resolve) settings_.resolve = &resolve_with_getaddrinfo;
  retry_timer_ = clock_.make_timer([this, token = std::weak_ptr(alive_)] {
    if (!token.expired()) on_retry_due();
  });
  misc_timer_ = clock_.make_timer([this, token = std::weak_ptr(alive_)] {
    if (!token.expired()) on_misc_due();
  });
  connect_timer_ = clock_.make_timer([this, token = std::weak_ptr(alive_)] {
    if (!token.expired()) on_connect_timeout();
  });
}

mosquitto_connection::~mosquitto_connection() {
  {
    // A resolver thread still at work never posts its answer now.
    const std::lock_guard lock(resolver_->mutex);
    resolver_->open = false;
  }
  alive_.reset();
  // libmosquitto owns the socket: Asio must not close it as well.
  release_socket();
  if (mosq_ != nullptr) mq().mosquitto_destroy(mosq_);
}

expected<void, std::string> mosquitto_connection::configure() {
  const auto& s = settings_;
  if (s.tls && s.unix_socket) return fail(std::string("TLS over a Unix socket is not supported"));
  mosq_ = mq().mosquitto_new(s.client_id.c_str(), true, this);
  if (mosq_ == nullptr) {
    return fail("cannot create the " + s.name + " client '" + s.client_id +
                "': " + errno_text(errno));
  }
  mq().mosquitto_connect_callback_set(mosq_, &on_connect_cb);
  mq().mosquitto_disconnect_callback_set(mosq_, &on_disconnect_cb);
  mq().mosquitto_publish_callback_set(mosq_, &on_publish_cb);
  mq().mosquitto_message_callback_set(mosq_, &on_message_cb);
  mq().mosquitto_subscribe_callback_set(mosq_, &on_subscribe_cb);
  // libmosquitto formats a line per packet once a log callback is set: only when it is shown.
  if (log_->should_log(spdlog::level::trace)) mq().mosquitto_log_callback_set(mosq_, &on_log_cb);
  // Small QoS 1 publishes would otherwise wait for the previous PUBACK (Nagle). Not on a Unix
  // socket, where libmosquitto's setsockopt would fail and log a warning on every connect.
  if (!s.unix_socket) mq().mosquitto_int_option(mosq_, MOSQ_OPT_TCP_NODELAY, 1);
  if (!s.username.empty()) {
    const int rc = mq().mosquitto_username_pw_set(
        mosq_, s.username.c_str(), s.password.empty() ? nullptr : s.password.c_str());
    if (rc != MOSQ_ERR_SUCCESS) return fail("invalid username: " + describe(rc));
  }
  if (s.tls) return configure_tls();
  return {};
}

expected<void, std::string> mosquitto_connection::configure_tls() {
  const auto& s = settings_;
  // libmosquitto links OpenSSL: this finds the library loaded already.
  const auto loaded = openssl::load();
  if (!loaded) return fail("TLS needs OpenSSL: " + loaded.error());
  const openssl::functions& ssl = **loaded;
  if (s.tls_verify) {
    if (auto ok = check_tls_files(ssl, s); !ok) return ok;
  }
  // Our own context in both cases, which libmosquitto uses as it is: with verification, OpenSSL
  // checks the certificate against the configured host (libmosquitto would check the numeric
  // address it connects to); without, it encrypts without verifying, as edgecore does when
  // eventBusTLS is off (libmosquitto alone only turns TLS on with a CA, and then verifies).
  std::unique_ptr<SSL_CTX, decltype(ssl.SSL_CTX_free)> ctx(ssl.SSL_CTX_new(ssl.TLS_client_method()),
                                                           ssl.SSL_CTX_free);
  if (!ctx) return fail("cannot create a TLS context: " + openssl::last_error(ssl));
  ssl.SSL_CTX_ctrl(ctx.get(), SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, nullptr);
  if (s.tls_verify) {
    ssl.SSL_CTX_set_default_passwd_cb(ctx.get(), openssl::refuse_passphrase);
    if (ssl.SSL_CTX_load_verify_locations(ctx.get(), s.ca_file.c_str(), nullptr) != 1) {
      return fail("invalid CA file '" + s.ca_file + "': " + openssl::last_error(ssl));
    }
    if (!s.cert_file.empty()) {
      if (auto used = openssl::use_key_pair(ssl, ctx.get(), s.cert_file, s.key_file); !used) {
        return fail(openssl::describe(used.error(), s.cert_file, s.key_file));
      }
    }
    X509_VERIFY_PARAM* param = ssl.SSL_CTX_get0_param(ctx.get());
    ssl.X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int named = numeric_host_ ? ssl.X509_VERIFY_PARAM_set1_ip_asc(param, s.host.c_str())
                                    : ssl.X509_VERIFY_PARAM_set1_host(param, s.host.c_str(), 0);
    if (named != 1) {
      return fail("cannot verify against host '" + s.host + "': " + openssl::last_error(ssl));
    }
    ssl.SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  } else {
    ssl.SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  }
  if (!numeric_host_) {
    // settings_ lives as long as the mosquitto object that holds the context.
    ssl.SSL_CTX_set_ex_data(ctx.get(), 0, &settings_.host);
    ssl.SSL_CTX_set_info_callback(ctx.get(), &send_host_name);
  }
  int rc = mq().mosquitto_int_option(mosq_, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
  // libmosquitto takes its own reference to the context.
  if (rc == MOSQ_ERR_SUCCESS) rc = mq().mosquitto_void_option(mosq_, MOSQ_OPT_SSL_CTX, ctx.get());
  if (rc != MOSQ_ERR_SUCCESS) return fail("TLS setup failed: " + describe(rc));
  return {};
}

std::string mosquitto_connection::describe(int rc) {
  // libmosquitto 2.0.11 has no text for this one.
  if (rc == MOSQ_ERR_KEEPALIVE) return "no answer from the broker within the keep-alive";
  const auto loaded = mosquitto_api::load();
  if (!loaded) return "libmosquitto error " + std::to_string(rc);
  std::string text = (*loaded)->mosquitto_strerror(rc);
  if (text == "Unknown error.") text += " (rc=" + std::to_string(rc) + ")";
  return text;
}

void mosquitto_connection::start() {
  if (started_) return;
  started_ = true;
  attempt();
  schedule_misc();
}

void mosquitto_connection::stop_reconnecting() {
  reconnect_ = false;
  retry_at_.reset();
  retry_timer_->cancel();
}

void mosquitto_connection::disconnect() {
  stop_reconnecting();
  misc_at_.reset();
  misc_timer_->cancel();
  connect_deadline_.reset();
  connect_timer_->cancel();
  connected_ = false;
  if (mq().mosquitto_socket(mosq_) >= 0) {
    // Usually written at once, and libmosquitto closes the socket; otherwise the write interest
    // armed by after_io() finishes the job.
    const int rc = mq().mosquitto_disconnect(mosq_);
    log_->debug("disconnect client={} client_id={} rc={}", settings_.name,
                log::escape(settings_.client_id), rc);
  }
  after_io();
}

int mosquitto_connection::publish(std::string_view topic, std::string_view payload, int& mid) {
  topic_.assign(topic);
  const int rc = mq().mosquitto_publish(
      mosq_, &mid, topic_.c_str(), static_cast<int>(payload.size()), payload.data(), qos1, false);
  arm();
  return rc;
}

int mosquitto_connection::subscribe(const std::string& filter, int& mid) {
  const int rc = mq().mosquitto_subscribe(mosq_, &mid, filter.c_str(), qos1);
  arm();
  return rc;
}

int mosquitto_connection::unsubscribe(const std::string& filter) {
  const int rc = mq().mosquitto_unsubscribe(mosq_, nullptr, filter.c_str());
  arm();
  return rc;
}

void mosquitto_connection::attempt() {
  if (!reconnect_) return;
  ++begun_;
  if (numeric_host_ || settings_.unix_socket) {
    connect_to(settings_.host);
  } else if (next_address_ < addresses_.size()) {
    connect_to(addresses_[next_address_++]);
  } else {
    resolve();
  }
}

void mosquitto_connection::resolve() {
  if (resolving_) return;
  resolving_ = true;
  addresses_.clear();
  next_address_ = 0;
  log_->debug("resolving client={} client_id={} host={}", settings_.name,
              log::escape(settings_.client_id), log::escape(settings_.host));
  auto done = [this, token = std::weak_ptr(alive_)](
                  expected<std::vector<std::string>, std::string> result) mutable {
    if (!token.expired()) on_resolved(std::move(result));
  };
  try {
    std::thread([channel = resolver_, executor = executor_, resolve = settings_.resolve,
                 host = settings_.host, done = std::move(done)]() mutable {
      expected<std::vector<std::string>, std::string> result;
      try {
        result = resolve(host);
      } catch (const std::exception& e) {  // nothing may escape a detached thread
        result = fail(std::string(e.what()));
      }
      const std::lock_guard lock(channel->mutex);
      if (!channel->open) return;
      asio::post(executor, [done = std::move(done), result = std::move(result)]() mutable {
        done(std::move(result));
      });
    }).detach();
  } catch (const std::system_error& e) {
    resolving_ = false;
    ++failures_;
    schedule_retry("connect_failed", std::string("cannot start the name resolution: ") + e.what());
  }
}

void mosquitto_connection::on_resolved(expected<std::vector<std::string>, std::string> result) {
  resolving_ = false;
  if (!reconnect_) return;
  if (!result || result->empty()) {
    ++failures_;
    schedule_retry("connect_failed", "cannot resolve '" + settings_.host + "': " +
                                         (result ? std::string("no address") : result.error()));
    return;
  }
  addresses_ = std::move(*result);
  next_address_ = 0;
  connect_to(addresses_[next_address_++]);
}

void mosquitto_connection::connect_to(const std::string& address) {
  // A new socket may reuse the old descriptor number: Asio lets go of the old one first.
  release_socket();
  refusal_.clear();
  address_ = address;
  ++attempt_id_;
  errno = 0;
  // Sets the address for this attempt (the name is never handed to libmosquitto, which would
  // resolve it on the loop) and keeps the queue of unacknowledged publishes, as a reconnect does.
  int rc = mq().mosquitto_connect_async(mosq_, address.c_str(),
                                        settings_.unix_socket ? 0 : settings_.port,
                                        settings_.keepalive_seconds);
  const int err = errno;
  if (rc == MOSQ_ERR_SUCCESS && mq().mosquitto_socket(mosq_) < 0) rc = MOSQ_ERR_NO_CONN;
  sync_socket();
  if (rc != MOSQ_ERR_SUCCESS) {
    connack_seen_ = false;
    close_seen_ = false;
    ++failures_;
    schedule_retry("connect_failed", rc == MOSQ_ERR_ERRNO ? errno_text(err) : describe(rc));
    return;
  }
  log_->debug("connecting client={} client_id={} broker={} address={}", settings_.name,
              log::escape(settings_.client_id), log::escape(broker_), log::escape(address));
  // libmosquitto gives up on a missing CONNACK after the keep-alive, and never with keep-alive 0.
  connect_deadline_ = clock_.now() + settings_.connect_timeout;
  timed_attempt_ = attempt_id_;
  connect_timer_->arm(*connect_deadline_);
  after_io();  // the CONNECT may already be out; watch for the CONNACK
}

void mosquitto_connection::on_connect_timeout() {
  if (!connect_deadline_ || clock_.now() < *connect_deadline_) return;
  connect_deadline_.reset();
  if (timed_attempt_ != attempt_id_ || connected_ || !reconnect_) return;
  // The next mosquitto_connect_async() closes the socket.
  release_socket();
  ++failures_;
  schedule_retry("connect_failed",
                 "no CONNACK within " + std::to_string(settings_.connect_timeout.count()) + " ms");
}

void mosquitto_connection::schedule_retry(std::string_view event, const std::string& reason) {
  if (!reconnect_) {
    log_->debug("{} client={} client_id={} reason=\"{}\" retry=never", event, settings_.name,
                log::escape(settings_.client_id), log::escape(reason));
    return;
  }
  const auto delay = backoff_;
  backoff_ = std::min(backoff_ * 2, settings_.reconnect_max);
  // One warning per reason and per reconnect_max: a broker that stays down for hours must not
  // fill the log.
  const auto now = clock_.now();
  if (reason != last_warning_ || now - last_warning_at_ >= settings_.reconnect_max) {
    log_->warn("{} client={} client_id={} broker={} reason=\"{}\" retry_in_ms={} repeated={}",
               event, settings_.name, log::escape(settings_.client_id), log::escape(broker_),
               log::escape(reason), delay.count(), quiet_failures_);
    last_warning_ = reason;
    last_warning_at_ = now;
    quiet_failures_ = 0;
  } else {
    ++quiet_failures_;
    log_->debug("{} client={} client_id={} reason=\"{}\" retry_in_ms={}", event, settings_.name,
                log::escape(settings_.client_id), log::escape(reason), delay.count());
  }
  retry_at_ = now + delay;
  retry_timer_->arm(*retry_at_);
}

void mosquitto_connection::on_retry_due() {
  if (!retry_at_ || clock_.now() < *retry_at_) return;
  retry_at_.reset();
  attempt();
}

void mosquitto_connection::schedule_misc() {
  misc_at_ = clock_.now() + misc_interval;
  misc_timer_->arm(*misc_at_);
}

void mosquitto_connection::on_misc_due() {
  if (!misc_at_ || clock_.now() < *misc_at_) return;
  misc_at_.reset();
  if (descriptor_.is_open()) {
    // Sends PINGREQ when due, and closes a connection whose PINGRESP (or CONNACK) is late; both
    // judged by libmosquitto's own clock.
    loop_rc_ = MOSQ_ERR_SUCCESS;
    note(mq().mosquitto_loop_misc(mosq_));
    after_io();
  }
  schedule_misc();
}

void mosquitto_connection::on_ready(bool readable, std::error_code ec, std::uint64_t generation) {
  if (generation != generation_) return;  // for a socket already released
  (readable ? read_waiting_ : write_waiting_) = false;
  if (ec == asio::error::operation_aborted) return;
  const int fd = descriptor_.native_handle();
  loop_rc_ = MOSQ_ERR_SUCCESS;
  if (readable) {
    read_available();
  } else {
    // During a TLS handshake libmosquitto advances only from loop_read, whichever way the socket
    // is ready; otherwise this read finds nothing and returns at once.
    if (settings_.tls && !connected_) note(mq().mosquitto_loop_read(mosq_, 1));
    if (mq().mosquitto_socket(mosq_) == fd) note(mq().mosquitto_loop_write(mosq_, 1));
  }
  after_io();
}

void mosquitto_connection::note(int rc) {
  if (rc == MOSQ_ERR_SUCCESS) return;
  loop_errno_ = errno;
  loop_rc_ = rc;
}

void mosquitto_connection::pause_reading(bool paused) {
  if (paused_ == paused) return;
  paused_ = paused;
  if (!paused_) arm();  // what waited in the socket meanwhile is read on a later turn
}

void mosquitto_connection::read_available() {
  const int fd = descriptor_.native_handle();
  for (int i = 0; i < max_reads_per_wakeup && !reads_held(); ++i) {
    const int rc = mq().mosquitto_loop_read(mosq_, 1);
    note(rc);
    if (rc != MOSQ_ERR_SUCCESS) return;
    if (mq().mosquitto_socket(mosq_) != fd) return;
    asio::posix::stream_descriptor::bytes_readable unread(true);
    std::error_code ec;
    descriptor_.io_control(unread, ec);
    if (ec || unread.get() == 0) return;
  }
}

void mosquitto_connection::after_io() {
  const bool had_socket = descriptor_.is_open();
  sync_socket();
  if (had_socket && !descriptor_.is_open() && !close_seen_ && mq().mosquitto_socket(mosq_) < 0) {
    // A failed TLS handshake closes the socket without the disconnect callback.
    close_seen_ = true;
    close_rc_ = loop_rc_ != MOSQ_ERR_SUCCESS ? loop_rc_ : MOSQ_ERR_CONN_LOST;
    close_errno_ = loop_errno_;
  }
  if (connack_seen_) {
    connack_seen_ = false;
    handle_connack();
  }
  if (close_seen_) {
    close_seen_ = false;
    handle_close();
  }
  arm();
}

void mosquitto_connection::sync_socket() {
  const int fd = mq().mosquitto_socket(mosq_);
  if (descriptor_.is_open() && descriptor_.native_handle() == fd) return;
  release_socket();
  if (fd < 0) return;
  std::error_code ec;
  descriptor_.assign(fd, ec);
  if (ec) {
    log_->error("watch_socket_failed client={} client_id={} error=\"{}\"", settings_.name,
                log::escape(settings_.client_id), ec.message());
  }
}

void mosquitto_connection::release_socket() {
  if (!descriptor_.is_open()) return;
  ++generation_;
  read_waiting_ = false;
  write_waiting_ = false;
  (void)descriptor_.release();  // cancels our waits; the descriptor stays libmosquitto's
}

void mosquitto_connection::arm() {
  if (!descriptor_.is_open()) return;
  if (!read_waiting_ && !reads_held()) {
    read_waiting_ = true;
    descriptor_.async_wait(
        asio::posix::stream_descriptor::wait_read,
        [this, token = std::weak_ptr(alive_), generation = generation_](std::error_code ec) {
          if (!token.expired()) on_ready(true, ec, generation);
        });
  }
  if (!write_waiting_ && mq().mosquitto_want_write(mosq_)) {
    write_waiting_ = true;
    descriptor_.async_wait(
        asio::posix::stream_descriptor::wait_write,
        [this, token = std::weak_ptr(alive_), generation = generation_](std::error_code ec) {
          if (!token.expired()) on_ready(false, ec, generation);
        });
  }
}

void mosquitto_connection::handle_connack() {
  connect_deadline_.reset();
  connect_timer_->cancel();
  connected_ = true;
  backoff_ = settings_.reconnect_min;
  log_->info("connected client={} client_id={} broker={} address={} failed_attempts={}",
             settings_.name, log::escape(settings_.client_id), log::escape(broker_),
             log::escape(address_), failures_);
  failures_ = 0;
  // The next connection, after a loss, asks the resolver again: the name may have moved.
  addresses_.clear();
  next_address_ = 0;
  last_warning_.clear();
  quiet_failures_ = 0;
  if (handlers_.connected) handlers_.connected();
}

void mosquitto_connection::handle_close() {
  connect_deadline_.reset();
  connect_timer_->cancel();
  ++attempt_id_;  // a pending connect timeout is for a socket that is gone
  const bool was_connected = connected_;
  connected_ = false;
  std::string reason;
  if (!refusal_.empty()) {
    reason = refusal_;
  } else if (close_rc_ == MOSQ_ERR_ERRNO) {
    reason = errno_text(close_errno_);
  } else {
    reason = describe(close_rc_);
  }
  if (!reconnect_) {
    log_->debug("closed client={} client_id={} reason=\"{}\"", settings_.name,
                log::escape(settings_.client_id), log::escape(reason));
    return;
  }
  if (was_connected) {
    schedule_retry("connection_lost", reason);
    if (handlers_.lost) handlers_.lost();
  } else {
    ++failures_;
    schedule_retry("connect_failed", reason);
  }
}

// libmosquitto's callbacks run inside mosquitto_loop_*(): nothing may throw through its C frames.

void mosquitto_connection::on_connect_cb(struct mosquitto*, void* self, int rc) {
  auto* c = self_of(self);
  if (rc == 0) {
    c->connack_seen_ = true;
  } else {
    c->refusal_ = mq().mosquitto_connack_string(rc);
  }
}

void mosquitto_connection::on_disconnect_cb(struct mosquitto*, void* self, int rc) {
  auto* c = self_of(self);
  c->close_errno_ = errno;
  c->close_rc_ = rc;
  c->close_seen_ = true;
}

void mosquitto_connection::on_publish_cb(struct mosquitto*, void* self, int mid) {
  auto* c = self_of(self);
  try {
    if (c->handlers_.published) c->handlers_.published(mid);
  } catch (const std::exception& e) {
    c->log_->error("handler_failed client={} event=published error=\"{}\"", c->settings_.name,
                   e.what());
  }
}

void mosquitto_connection::on_message_cb(struct mosquitto*, void* self,
                                         const struct mosquitto_message* msg) {
  auto* c = self_of(self);
  try {
    if (c->handlers_.message) {
      c->handlers_.message(msg->topic, std::string_view(static_cast<const char*>(msg->payload),
                                                        static_cast<std::size_t>(msg->payloadlen)));
    }
  } catch (const std::exception& e) {
    c->log_->error("handler_failed client={} event=message topic=\"{}\" error=\"{}\"",
                   c->settings_.name, log::escape(msg->topic), log::escape(e.what()));
  }
}

void mosquitto_connection::on_subscribe_cb(struct mosquitto*, void* self, int mid, int count,
                                           const int* granted) {
  auto* c = self_of(self);
  try {
    if (c->handlers_.subscribed) {
      c->handlers_.subscribed(mid, std::span<const int>(granted, static_cast<std::size_t>(count)));
    }
  } catch (const std::exception& e) {
    c->log_->error("handler_failed client={} event=subscribed error=\"{}\"", c->settings_.name,
                   e.what());
  }
}

void mosquitto_connection::on_log_cb(struct mosquitto*, void* self, int, const char* text) {
  auto* c = self_of(self);
  // The text quotes client ids and topics.
  c->log_->trace("libmosquitto client={} {}", c->settings_.name, log::escape(text, 1024));
}

}  // namespace ebus::mqtt::client
