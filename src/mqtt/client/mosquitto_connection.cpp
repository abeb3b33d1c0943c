#include "mqtt/client/mosquitto_connection.hpp"

#include <cerrno>
#include <fstream>
#include <mutex>
#include <system_error>

#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "common/log.hpp"

namespace ebus::mqtt::client {
namespace {

constexpr auto misc_interval = std::chrono::seconds(1);
// Packets read per wake-up before other work on the loop gets a turn.
constexpr int max_reads_per_wakeup = 64;
constexpr int qos1 = 1;

void init_library() {
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

std::string errno_text(int err) {
  return std::generic_category().message(err);
}

std::string openssl_error() {
  char buf[256] = "unknown error";
  if (const auto code = ERR_get_error(); code != 0) ERR_error_string_n(code, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

bool readable(const std::string& path) {
  return std::ifstream(path).good();
}

// An encrypted key would make OpenSSL prompt on the terminal and block the loop: refuse instead.
int no_password(char*, int, int, void*) {
  return 0;
}

// Loads the files as libmosquitto will, so that a wrong file is reported at start-up.
expected<void, std::string> check_tls_files(const connection_settings& s) {
  if (s.ca_file.empty()) return fail(std::string("TLS is enabled but no CA file is set"));
  if (s.cert_file.empty() != s.key_file.empty()) {
    return fail(std::string("TLS needs both a certificate and a key file, or neither"));
  }
  for (const auto* f : {&s.ca_file, &s.cert_file, &s.key_file}) {
    if (!f->empty() && !readable(*f)) {
      return fail("cannot read TLS file '" + *f + "': " + errno_text(errno));
    }
  }
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        &SSL_CTX_free);
  if (!ctx) return fail("cannot create a TLS context: " + openssl_error());
  SSL_CTX_set_default_passwd_cb(ctx.get(), &no_password);
  if (SSL_CTX_load_verify_locations(ctx.get(), s.ca_file.c_str(), nullptr) != 1) {
    return fail("invalid CA file '" + s.ca_file + "': " + openssl_error());
  }
  if (!s.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), s.cert_file.c_str()) != 1) {
      return fail("invalid certificate file '" + s.cert_file + "': " + openssl_error());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), s.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return fail("invalid key file '" + s.key_file + "': " + openssl_error());
    }
    if (SSL_CTX_check_private_key(ctx.get()) != 1) {
      return fail("key file '" + s.key_file + "' does not match certificate '" + s.cert_file +
                  "': " + openssl_error());
    }
  }
  return {};
}

mosquitto_connection* self_of(void* p) {
  return static_cast<mosquitto_connection*>(p);
}

}  // namespace

expected<std::unique_ptr<mosquitto_connection>, std::string> mosquitto_connection::create(
    asio::any_io_executor executor, connection_settings settings, connection_handlers handlers) {
  init_library();
  std::unique_ptr<mosquitto_connection> c(
      new mosquitto_connection(std::move(executor), std::move(settings), std::move(handlers)));
  if (auto ok = c->configure(); !ok) return fail(std::move(ok.error()));
  return c;
}

mosquitto_connection::mosquitto_connection(asio::any_io_executor executor,
                                           connection_settings settings,
                                           connection_handlers handlers)
    : settings_(std::move(settings)),
      handlers_(std::move(handlers)),
      log_(log::get("mqtt.client")),
      descriptor_(executor),
      retry_timer_(executor),
      misc_timer_(executor),
      connect_timer_(executor),
      backoff_(settings_.reconnect_min) {}

mosquitto_connection::~mosquitto_connection() {
  alive_.reset();
  // libmosquitto owns the socket: Asio must not close it as well.
  release_socket();
  if (mosq_ != nullptr) mosquitto_destroy(mosq_);
}

expected<void, std::string> mosquitto_connection::configure() {
  const auto& s = settings_;
  mosq_ = mosquitto_new(s.client_id.c_str(), true, this);
  if (mosq_ == nullptr) {
    return fail("cannot create the " + s.name + " client '" + s.client_id +
                "': " + errno_text(errno));
  }
  mosquitto_connect_callback_set(mosq_, &on_connect_cb);
  mosquitto_disconnect_callback_set(mosq_, &on_disconnect_cb);
  mosquitto_publish_callback_set(mosq_, &on_publish_cb);
  mosquitto_message_callback_set(mosq_, &on_message_cb);
  mosquitto_subscribe_callback_set(mosq_, &on_subscribe_cb);
  // libmosquitto formats a line per packet once a log callback is set: only when it is shown.
  if (log_->should_log(spdlog::level::trace)) mosquitto_log_callback_set(mosq_, &on_log_cb);
  // Small QoS 1 publishes would otherwise wait for the previous PUBACK (Nagle).
  mosquitto_int_option(mosq_, MOSQ_OPT_TCP_NODELAY, 1);
  if (!s.username.empty()) {
    const int rc = mosquitto_username_pw_set(mosq_, s.username.c_str(),
                                             s.password.empty() ? nullptr : s.password.c_str());
    if (rc != MOSQ_ERR_SUCCESS) return fail("invalid username: " + describe(rc));
  }
  if (s.tls) return configure_tls();
  return {};
}

expected<void, std::string> mosquitto_connection::configure_tls() {
  const auto& s = settings_;
  if (s.tls_verify) {
    if (auto ok = check_tls_files(s); !ok) return ok;
    const int rc = mosquitto_tls_set(
        mosq_, s.ca_file.c_str(), nullptr, s.cert_file.empty() ? nullptr : s.cert_file.c_str(),
        s.key_file.empty() ? nullptr : s.key_file.c_str(), &no_password);
    if (rc != MOSQ_ERR_SUCCESS) return fail("TLS setup failed: " + describe(rc));
    mosquitto_tls_insecure_set(mosq_, false);  // the host name must match the certificate
    return {};
  }
  // libmosquitto only turns TLS on with a CA (or its defaults, which verify): give it a context of
  // our own that encrypts without verifying, as edgecore does when eventBusTLS is off.
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        &SSL_CTX_free);
  if (!ctx) return fail("cannot create a TLS context: " + openssl_error());
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  int rc = mosquitto_int_option(mosq_, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
  // libmosquitto takes its own reference to the context.
  if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_void_option(mosq_, MOSQ_OPT_SSL_CTX, ctx.get());
  if (rc != MOSQ_ERR_SUCCESS) return fail("TLS setup failed: " + describe(rc));
  return {};
}

std::string mosquitto_connection::describe(int rc) {
  // libmosquitto 2.0.11 has no text for this one.
  if (rc == MOSQ_ERR_KEEPALIVE) return "no answer from the broker within the keep-alive";
  std::string text = mosquitto_strerror(rc);
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
  retry_timer_.cancel();
}

void mosquitto_connection::disconnect() {
  stop_reconnecting();
  misc_timer_.cancel();
  connect_timer_.cancel();
  connected_ = false;
  if (mosquitto_socket(mosq_) >= 0) {
    // Usually written at once, and libmosquitto closes the socket; otherwise the write interest
    // armed by after_io() finishes the job.
    const int rc = mosquitto_disconnect(mosq_);
    log_->debug("disconnect client={} client_id={} rc={}", settings_.name, settings_.client_id, rc);
  }
  after_io();
}

int mosquitto_connection::publish(std::string_view topic, std::string_view payload, int& mid) {
  topic_.assign(topic);
  const int rc = mosquitto_publish(mosq_, &mid, topic_.c_str(), static_cast<int>(payload.size()),
                                   payload.data(), qos1, false);
  arm();
  return rc;
}

int mosquitto_connection::subscribe(const std::string& filter, int& mid) {
  const int rc = mosquitto_subscribe(mosq_, &mid, filter.c_str(), qos1);
  arm();
  return rc;
}

int mosquitto_connection::unsubscribe(const std::string& filter) {
  const int rc = mosquitto_unsubscribe(mosq_, nullptr, filter.c_str());
  arm();
  return rc;
}

void mosquitto_connection::attempt() {
  if (!reconnect_) return;
  // A new socket may reuse the old descriptor number: Asio lets go of the old one first.
  release_socket();
  refusal_.clear();
  ++attempts_;
  errno = 0;
  // The first call stores host, port and keep-alive; later ones reuse them.
  int rc = first_attempt_ ? mosquitto_connect_async(mosq_, settings_.host.c_str(), settings_.port,
                                                    settings_.keepalive_seconds)
                          : mosquitto_reconnect_async(mosq_);
  const int err = errno;
  first_attempt_ = false;
  if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket(mosq_) < 0) rc = MOSQ_ERR_NO_CONN;
  sync_socket();
  if (rc != MOSQ_ERR_SUCCESS) {
    connack_seen_ = false;
    close_seen_ = false;
    ++failures_;
    schedule_retry("connect_failed", rc == MOSQ_ERR_ERRNO ? errno_text(err) : describe(rc));
    return;
  }
  log_->debug("connecting client={} client_id={} broker={}:{}", settings_.name, settings_.client_id,
              settings_.host, settings_.port);
  // libmosquitto gives up on a missing CONNACK after the keep-alive, and never with keep-alive 0.
  connect_timer_.expires_after(settings_.connect_timeout);
  connect_timer_.async_wait([this, token = std::weak_ptr(alive_),
                             attempt = attempts_](std::error_code ec) {
    if (token.expired() || ec || attempt != attempts_ || connected_ || !reconnect_) return;
    // The next mosquitto_reconnect_async() closes the socket.
    release_socket();
    ++failures_;
    schedule_retry("connect_failed", "no CONNACK within " +
                                         std::to_string(settings_.connect_timeout.count()) + " ms");
  });
  after_io();  // the CONNECT may already be out; watch for the CONNACK
}

void mosquitto_connection::schedule_retry(std::string_view event, const std::string& reason) {
  if (!reconnect_) {
    log_->debug("{} client={} client_id={} reason=\"{}\" retry=never", event, settings_.name,
                settings_.client_id, reason);
    return;
  }
  const auto delay = backoff_;
  backoff_ = std::min(backoff_ * 2, settings_.reconnect_max);
  // One warning per reason and per reconnect_max: a broker that stays down for hours must not
  // fill the log.
  const auto now = std::chrono::steady_clock::now();
  if (reason != last_warning_ || now - last_warning_at_ >= settings_.reconnect_max) {
    log_->warn("{} client={} client_id={} broker={}:{} reason=\"{}\" retry_in_ms={} repeated={}",
               event, settings_.name, settings_.client_id, settings_.host, settings_.port, reason,
               delay.count(), quiet_failures_);
    last_warning_ = reason;
    last_warning_at_ = now;
    quiet_failures_ = 0;
  } else {
    ++quiet_failures_;
    log_->debug("{} client={} client_id={} reason=\"{}\" retry_in_ms={}", event, settings_.name,
                settings_.client_id, reason, delay.count());
  }
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([this, token = std::weak_ptr(alive_)](std::error_code ec) {
    if (token.expired() || ec) return;
    attempt();
  });
}

void mosquitto_connection::schedule_misc() {
  misc_timer_.expires_after(misc_interval);
  misc_timer_.async_wait([this, token = std::weak_ptr(alive_)](std::error_code ec) {
    if (token.expired() || ec) return;
    if (descriptor_.is_open()) {
      // Sends PINGREQ when due, and closes a connection whose PINGRESP (or CONNACK) is late.
      loop_rc_ = MOSQ_ERR_SUCCESS;
      note(mosquitto_loop_misc(mosq_));
      after_io();
    }
    schedule_misc();
  });
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
    if (settings_.tls && !connected_) note(mosquitto_loop_read(mosq_, 1));
    if (mosquitto_socket(mosq_) == fd) note(mosquitto_loop_write(mosq_, 1));
  }
  after_io();
}

void mosquitto_connection::note(int rc) {
  if (rc == MOSQ_ERR_SUCCESS) return;
  loop_errno_ = errno;
  loop_rc_ = rc;
}

void mosquitto_connection::read_available() {
  const int fd = descriptor_.native_handle();
  for (int i = 0; i < max_reads_per_wakeup; ++i) {
    const int rc = mosquitto_loop_read(mosq_, 1);
    note(rc);
    if (rc != MOSQ_ERR_SUCCESS) return;
    if (mosquitto_socket(mosq_) != fd) return;
    asio::posix::stream_descriptor::bytes_readable unread(true);
    std::error_code ec;
    descriptor_.io_control(unread, ec);
    if (ec || unread.get() == 0) return;
  }
}

void mosquitto_connection::after_io() {
  const bool had_socket = descriptor_.is_open();
  sync_socket();
  if (had_socket && !descriptor_.is_open() && !close_seen_ && mosquitto_socket(mosq_) < 0) {
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
  const int fd = mosquitto_socket(mosq_);
  if (descriptor_.is_open() && descriptor_.native_handle() == fd) return;
  release_socket();
  if (fd < 0) return;
  std::error_code ec;
  descriptor_.assign(fd, ec);
  if (ec) {
    log_->error("watch_socket_failed client={} client_id={} error=\"{}\"", settings_.name,
                settings_.client_id, ec.message());
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
  if (!read_waiting_) {
    read_waiting_ = true;
    descriptor_.async_wait(
        asio::posix::stream_descriptor::wait_read,
        [this, token = std::weak_ptr(alive_), generation = generation_](std::error_code ec) {
          if (!token.expired()) on_ready(true, ec, generation);
        });
  }
  if (!write_waiting_ && mosquitto_want_write(mosq_)) {
    write_waiting_ = true;
    descriptor_.async_wait(
        asio::posix::stream_descriptor::wait_write,
        [this, token = std::weak_ptr(alive_), generation = generation_](std::error_code ec) {
          if (!token.expired()) on_ready(false, ec, generation);
        });
  }
}

void mosquitto_connection::handle_connack() {
  connect_timer_.cancel();
  connected_ = true;
  backoff_ = settings_.reconnect_min;
  log_->info("connected client={} client_id={} broker={}:{} failed_attempts={}", settings_.name,
             settings_.client_id, settings_.host, settings_.port, failures_);
  failures_ = 0;
  last_warning_.clear();
  quiet_failures_ = 0;
  if (handlers_.connected) handlers_.connected();
}

void mosquitto_connection::handle_close() {
  connect_timer_.cancel();
  ++attempts_;  // a pending connect timeout is for a socket that is gone
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
    log_->debug("closed client={} client_id={} reason=\"{}\"", settings_.name, settings_.client_id,
                reason);
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
    c->refusal_ = mosquitto_connack_string(rc);
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
                   c->settings_.name, msg->topic, e.what());
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
  c->log_->trace("libmosquitto client={} {}", c->settings_.name, text);
}

}  // namespace ebus::mqtt::client
