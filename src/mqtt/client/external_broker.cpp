#include "mqtt/client/external_broker.hpp"

#include <algorithm>
#include <deque>
#include <optional>
#include <unordered_map>
#include <vector>

#include <mosquitto.h>
#include <spdlog/spdlog.h>

#include "common/log.hpp"
#include "common/memory_budget.hpp"
#include "mqtt/client/broker_url.hpp"
#include "mqtt/client/mosquitto_api.hpp"
#include "mqtt/client/mosquitto_connection.hpp"

namespace ebus::mqtt::client {
namespace {

// Repeated warnings about lost publishes: at most one per interval, with the running count.
constexpr auto warning_interval = std::chrono::seconds(10);

bool rate_limited_warning(const clock& clk, std::optional<clock::time_point>& last) {
  const auto now = clk.now();
  if (last && now - *last < warning_interval) return false;
  last = now;
  return true;
}
constexpr std::size_t max_payload = 268'435'455;  // largest MQTT remaining length

// libmosquitto's own checks, so that what it accepts here it cannot refuse later. Its table is
// loaded: the clients were created with it.
bool valid_filter(const std::string& filter) {
  const auto mq = mosquitto_api::load();
  return mq &&
         (*mq)->mosquitto_sub_topic_check2(filter.data(), filter.size()) == MOSQ_ERR_SUCCESS &&
         (*mq)->mosquitto_validate_utf8(filter.data(), static_cast<int>(filter.size())) ==
             MOSQ_ERR_SUCCESS;
}

bool valid_topic(std::string_view topic) {
  const auto mq = mosquitto_api::load();
  return mq && (*mq)->mosquitto_pub_topic_check2(topic.data(), topic.size()) == MOSQ_ERR_SUCCESS &&
         (*mq)->mosquitto_validate_utf8(topic.data(), static_cast<int>(topic.size())) ==
             MOSQ_ERR_SUCCESS;
}

struct buffered_publish {
  std::string topic;
  std::string payload;
  budget_charge charge;
};

// Given to libmosquitto, which keeps a copy until the PUBACK.
struct in_flight_publish {
  std::size_t bytes = 0;
  budget_charge charge;
};

}  // namespace

struct external_broker::impl {
  impl(asio::any_io_executor executor, clock& clk, external_options options,
       message_handler on_message)
      : executor_(std::move(executor)),
        clock_(clk),
        options_(std::move(options)),
        on_message_(std::move(on_message)),
        log_(log::get("mqtt.client")),
        stop_timer_(clock_.make_timer([this, token = std::weak_ptr(alive_)] {
          if (!token.expired()) on_stop_due();
        })) {}

  expected<void, std::string> start();
  void subscribe(std::string filter);
  void unsubscribe(std::string_view filter);
  expected<void, std::string> publish(std::string_view topic, std::string_view payload);
  void stop(std::chrono::milliseconds timeout, std::function<void()> done);

  [[nodiscard]] std::size_t pending() const noexcept { return in_flight_.size() + backlog_.size(); }

  connection_settings settings_for(const broker_url& address, std::string name,
                                   std::string client_id) const;
  void send(std::string_view topic, std::string_view payload, budget_charge charge);
  void flush_backlog();
  void send_subscribe(const std::string& filter);
  void on_pub_connected();
  void on_sub_connected();
  void on_published(int mid);
  void on_subscribed(int mid, std::span<const int> granted);
  std::string drop(std::string why, std::string_view topic);
  std::string reject(std::string_view topic, std::size_t bytes, const std::string& why);
  void on_stop_due();
  void post_finish_stop();
  void finish_stop();

  asio::any_io_executor executor_;
  clock& clock_;
  external_options options_;
  message_handler on_message_;
  std::shared_ptr<spdlog::logger> log_;
  external_stats stats_;
  std::vector<std::string> filters_;  // subscribed in this order after every CONNACK
  std::unordered_map<int, std::string> subacks_due_;  // SUBSCRIBE mid -> filter
  // Publishes not yet given to libmosquitto: made while the publisher had no accepted
  // connection. Kept here rather than in libmosquitto, which would send one made during the
  // CONNECT/CONNACK exchange before those it resends after the CONNACK.
  std::deque<buffered_publish> backlog_;
  std::unordered_map<int, in_flight_publish> in_flight_;  // by mid: not yet acknowledged
  std::size_t pending_bytes_ = 0;  // topic + payload of backlog_ and in_flight_
  std::optional<clock::time_point> last_drop_warning_;
  std::optional<clock::time_point> last_reject_warning_;
  std::vector<std::function<void()>> on_stopped_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // posted handlers hold a weak_ptr
  std::unique_ptr<clock::timer> stop_timer_;
  std::optional<clock::time_point> stop_deadline_;  // set while stop() waits for PUBACKs
  bool started_ = false;
  bool receiving_paused_ = false;  // pause_receiving()
  bool stopping_ = false;
  bool stopped_ = false;
  // Last: destroyed first, while the state their handlers touch still exists.
  std::unique_ptr<mosquitto_connection> sub_;
  std::unique_ptr<mosquitto_connection> pub_;
};

connection_settings external_broker::impl::settings_for(const broker_url& address, std::string name,
                                                        std::string client_id) const {
  connection_settings s;
  s.name = std::move(name);
  s.client_id = std::move(client_id);
  s.unix_socket = address.transport == broker_transport::unix_socket;
  s.host = s.unix_socket ? address.path : address.host;
  s.port = address.port;
  auto credentials = credentials_for(address, options_.username, options_.password);
  s.username = std::move(credentials.username);
  s.password = std::move(credentials.password);
  s.tls = address.transport == broker_transport::tls;
  s.tls_verify = options_.tls_enable;
  s.ca_file = options_.ca_file;
  s.cert_file = options_.cert_file;
  s.key_file = options_.key_file;
  s.keepalive_seconds = options_.keepalive_seconds;
  s.reconnect_min = options_.reconnect_min;
  s.reconnect_max = options_.reconnect_max;
  return s;
}

expected<void, std::string> external_broker::impl::start() {
  if (started_) return fail(std::string("the external broker client is already started"));
  if (stopping_) return fail(std::string("the external broker client was stopped"));
  auto address = parse_broker_url(options_.url);
  if (!address) return fail(std::move(address.error()));
  if (options_.sub_client_id.empty() || options_.pub_client_id.empty()) {
    return fail(std::string("the client ids must not be empty"));
  }
  if (options_.sub_client_id == options_.pub_client_id) {
    // The broker would disconnect one client whenever the other connects [MQTT-3.1.4-2].
    return fail("the sub and pub client ids are the same ('" + options_.sub_client_id + "')");
  }
  if (options_.keepalive_seconds != 0 && options_.keepalive_seconds < 5) {
    return fail(std::string("keep-alive must be 0 or at least 5 seconds"));  // libmosquitto's rule
  }
  if (options_.reconnect_min.count() <= 0 || options_.reconnect_max < options_.reconnect_min) {
    return fail(std::string("reconnect delays must satisfy 0 < min <= max"));
  }
  if (options_.buffer_size == 0) return fail(std::string("buffer_size must be at least 1"));
  if (options_.buffer_bytes == 0) return fail(std::string("buffer_bytes must be at least 1"));

  auto sub = mosquitto_connection::create(
      executor_, clock_, settings_for(*address, "sub", options_.sub_client_id),
      {.connected = [this] { on_sub_connected(); },
       .lost =
           [this] {
             ++stats_.connection_losses;
             subacks_due_.clear();
           },
       .message =
           [this](std::string_view topic, std::string_view payload) {
             ++stats_.received;
             log_->debug("message topic=\"{}\" bytes={}", log::escape(topic), payload.size());
             if (on_message_) on_message_(topic, payload);
           },
       .published = nullptr,
       .subscribed = [this](int mid,
                            std::span<const int> granted) { on_subscribed(mid, granted); }});
  if (!sub) return fail(std::move(sub.error()));
  auto pub = mosquitto_connection::create(executor_, clock_,
                                          settings_for(*address, "pub", options_.pub_client_id),
                                          {.connected = [this] { on_pub_connected(); },
                                           .lost = [this] { ++stats_.connection_losses; },
                                           .message = nullptr,
                                           .published = [this](int mid) { on_published(mid); },
                                           .subscribed = nullptr});
  if (!pub) return fail(std::move(pub.error()));

  const bool tls = address->transport == broker_transport::tls;
  if (tls && !options_.tls_enable) {
    log_->warn(
        "tls_unverified url={}: the broker's certificate is not verified "
        "(eventBusTLS.enable is false)",
        log::escape(redact_url(options_.url)));
  } else if (!tls && options_.tls_enable) {
    log_->warn(
        "tls_not_used url={}: eventBusTLS.enable only applies to ssl://, tls://, tcps://, "
        "mqtts:// and mqtt+ssl:// URLs",
        log::escape(redact_url(options_.url)));
  }
  sub_ = std::move(*sub);
  pub_ = std::move(*pub);
  sub_->pause_reading(receiving_paused_);
  started_ = true;
  log_->info("starting url={} sub_client_id={} pub_client_id={} filters={}",
             log::escape(redact_url(options_.url)), log::escape(options_.sub_client_id),
             log::escape(options_.pub_client_id), filters_.size());
  sub_->start();
  pub_->start();
  return {};
}

void external_broker::impl::subscribe(std::string filter) {
  if (!valid_filter(filter)) {
    ++stats_.subscribe_failures;
    log_->error("subscribe_failed filter=\"{}\" reason=\"invalid topic filter\"",
                log::escape(filter));
    return;
  }
  if (std::find(filters_.begin(), filters_.end(), filter) != filters_.end()) return;
  filters_.push_back(std::move(filter));
  if (sub_ && sub_->connected()) send_subscribe(filters_.back());
}

void external_broker::impl::unsubscribe(std::string_view filter) {
  const auto it = std::find(filters_.begin(), filters_.end(), filter);
  if (it == filters_.end()) return;
  if (sub_ && sub_->connected()) {
    if (const int rc = sub_->unsubscribe(*it); rc != MOSQ_ERR_SUCCESS) {
      log_->debug("unsubscribe_not_sent filter=\"{}\" reason=\"{}\"", log::escape(*it),
                  mosquitto_connection::describe(rc));
    }
  }
  filters_.erase(it);
}

void external_broker::impl::send_subscribe(const std::string& filter) {
  int mid = 0;
  const int rc = sub_->subscribe(filter, mid);
  if (rc == MOSQ_ERR_SUCCESS) {
    subacks_due_.emplace(mid, filter);
    log_->debug("subscribe filter=\"{}\" mid={}", log::escape(filter), mid);
  } else if (rc != MOSQ_ERR_NO_CONN) {  // lost meanwhile: subscribed again on reconnect
    ++stats_.subscribe_failures;
    log_->error("subscribe_failed filter=\"{}\" reason=\"{}\"", log::escape(filter),
                mosquitto_connection::describe(rc));
  }
}

void external_broker::impl::on_sub_connected() {
  ++stats_.sub_connects;
  subacks_due_.clear();
  for (const auto& f : filters_)
    send_subscribe(f);
}

void external_broker::impl::on_subscribed(int mid, std::span<const int> granted) {
  const auto it = subacks_due_.find(mid);
  if (it == subacks_due_.end()) return;
  const bool refused = std::any_of(granted.begin(), granted.end(), [](int q) { return q > 2; });
  if (refused) {
    ++stats_.subscribe_failures;
    log_->error("subscribe_refused filter=\"{}\": the broker answered SUBACK 0x80",
                log::escape(it->second));
  } else {
    log_->debug("subscribed filter=\"{}\" qos={}", log::escape(it->second),
                granted.empty() ? -1 : granted[0]);
  }
  subacks_due_.erase(it);
}

expected<void, std::string> external_broker::impl::publish(std::string_view topic,
                                                           std::string_view payload) {
  if (stopping_) return fail(drop("the external broker client is stopping", topic));
  // Checked now, so that a buffered message cannot fail later, out of sight of the caller.
  if (!valid_topic(topic) || payload.size() > max_payload) {
    return fail(reject(topic, payload.size(), "invalid topic or payload too large"));
  }
  const std::size_t bytes = topic.size() + payload.size();
  if (pending() >= options_.buffer_size ||
      bytes > options_.buffer_bytes - std::min(pending_bytes_, options_.buffer_bytes)) {
    ++stats_.dropped_buffer_full;
    return fail(drop("buffer full: " + std::to_string(pending()) + " messages / " +
                         std::to_string(pending_bytes_) + " bytes (limits " +
                         std::to_string(options_.buffer_size) + " / " +
                         std::to_string(options_.buffer_bytes) + ")",
                     topic));
  }
  budget_charge charge;
  if (!budget_charge::try_make(options_.budget, bytes, charge)) {
    ++stats_.dropped_budget;
    return fail(drop("memory budget: " + std::to_string(bytes) + " bytes do not fit (" +
                         std::to_string(options_.budget->used()) + " of " +
                         std::to_string(options_.budget->limit()) + " bytes in use)",
                     topic));
  }
  ++stats_.published;
  pending_bytes_ += bytes;
  if (pub_ && pub_->connected() && backlog_.empty()) {
    send(topic, payload, std::move(charge));
  } else {
    backlog_.push_back({std::string(topic), std::string(payload), std::move(charge)});
  }
  return {};
}

void external_broker::impl::send(std::string_view topic, std::string_view payload,
                                 budget_charge charge) {
  const std::size_t bytes = topic.size() + payload.size();
  int mid = 0;
  const int rc = pub_->publish(topic, payload, mid);
  // NO_CONN: the connection went down before we heard of it; libmosquitto keeps the message and
  // sends it after the next CONNACK.
  if (rc == MOSQ_ERR_SUCCESS || rc == MOSQ_ERR_NO_CONN) {
    in_flight_[mid] = in_flight_publish{bytes, std::move(charge)};
    log_->debug("publish topic=\"{}\" bytes={} mid={}", log::escape(topic), payload.size(), mid);
    return;
  }
  pending_bytes_ -= std::min(pending_bytes_, bytes);
  (void)reject(topic, payload.size(), mosquitto_connection::describe(rc));
}

std::string external_broker::impl::reject(std::string_view topic, std::size_t bytes,
                                          const std::string& why) {
  ++stats_.rejected;
  if (rate_limited_warning(clock_, last_reject_warning_)) {
    log_->warn("publish_rejected topic=\"{}\" bytes={} reason=\"{}\" rejected={}",
               log::escape(topic), bytes, why, stats_.rejected);
  } else {
    log_->debug("publish_rejected topic=\"{}\" bytes={} reason=\"{}\"", log::escape(topic), bytes,
                why);
  }
  return why;
}

void external_broker::impl::flush_backlog() {
  if (!backlog_.empty()) log_->debug("flush_backlog messages={}", backlog_.size());
  while (!backlog_.empty() && pub_->connected()) {
    auto next = std::move(backlog_.front());
    backlog_.pop_front();
    send(next.topic, next.payload, std::move(next.charge));
  }
}

void external_broker::impl::on_pub_connected() {
  ++stats_.pub_connects;
  // Runs after libmosquitto has resent what it kept from the previous connection, so that the
  // backlog, which is younger, follows it.
  flush_backlog();
}

void external_broker::impl::on_published(int mid) {
  if (const auto it = in_flight_.find(mid); it != in_flight_.end()) {
    pending_bytes_ -= std::min(pending_bytes_, it->second.bytes);
    in_flight_.erase(it);  // releases its budget charge
  }
  ++stats_.acknowledged;
  log_->trace("puback mid={}", mid);
  if (stopping_ && !stopped_ && pending() == 0) post_finish_stop();
}

std::string external_broker::impl::drop(std::string why, std::string_view topic) {
  ++stats_.dropped;
  if (rate_limited_warning(clock_, last_drop_warning_)) {
    log_->warn(
        "publish_dropped reason=\"{}\" topic=\"{}\" pending={} pending_bytes={} dropped={} "
        "buffer_full={} budget={}",
        why, log::escape(topic), pending(), pending_bytes_, stats_.dropped,
        stats_.dropped_buffer_full, stats_.dropped_budget);
  } else {
    log_->debug("publish_dropped reason=\"{}\" topic=\"{}\"", why, log::escape(topic));
  }
  return why;
}

void external_broker::impl::stop(std::chrono::milliseconds timeout, std::function<void()> done) {
  if (done) on_stopped_.push_back(std::move(done));
  if (stopped_) {
    post_finish_stop();  // only calls the new callback
    return;
  }
  if (stopping_) return;  // the first call's timeout applies
  stopping_ = true;
  if (sub_) sub_->stop_reconnecting();
  if (pub_) pub_->stop_reconnecting();
  log_->info("stopping pending={} timeout_ms={}", pending(), timeout.count());
  if (pending() == 0 || !started_) {
    post_finish_stop();
    return;
  }
  stop_deadline_ = clock_.now() + timeout;
  stop_timer_->arm(*stop_deadline_);
}

void external_broker::impl::on_stop_due() {
  // A wake-up may come early, or after finish_stop() cancelled it.
  if (!stop_deadline_ || clock_.now() < *stop_deadline_) return;
  finish_stop();
}

void external_broker::impl::post_finish_stop() {
  // Posted: a PUBACK that empties the buffer arrives inside libmosquitto's loop, where it must
  // not be disconnected.
  asio::post(executor_, [this, token = std::weak_ptr(alive_)] {
    if (!token.expired()) finish_stop();
  });
}

void external_broker::impl::finish_stop() {
  if (!stopped_) {
    stopped_ = true;
    stop_deadline_.reset();
    stop_timer_->cancel();
    if (pending() != 0) {
      stats_.lost_at_stop += pending();
      log_->warn("stop_timeout unacknowledged={} bytes={}: these publishes are lost", pending(),
                 pending_bytes_);
    }
    if (sub_) sub_->disconnect();
    if (pub_) pub_->disconnect();
    log_->info(
        "stopped received={} published={} acknowledged={} dropped={} (buffer_full={} budget={} "
        "stopping={}) rejected={} lost={}",
        stats_.received, stats_.published, stats_.acknowledged, stats_.dropped,
        stats_.dropped_buffer_full, stats_.dropped_budget,
        stats_.dropped - stats_.dropped_buffer_full - stats_.dropped_budget, stats_.rejected,
        stats_.lost_at_stop);
  }
  // Last: a callback may destroy this object.
  auto callbacks = std::move(on_stopped_);
  on_stopped_.clear();
  for (auto& f : callbacks)
    f();
}

external_broker::external_broker(asio::any_io_executor executor, clock& clk,
                                 external_options options, message_handler on_message)
    : impl_(std::make_unique<impl>(std::move(executor), clk, std::move(options),
                                   std::move(on_message))) {}

external_broker::~external_broker() = default;

expected<void, std::string> external_broker::start() {
  return impl_->start();
}

void external_broker::subscribe(std::string filter) {
  impl_->subscribe(std::move(filter));
}

void external_broker::unsubscribe(std::string_view filter) {
  impl_->unsubscribe(filter);
}

expected<void, std::string> external_broker::publish(std::string_view topic,
                                                     std::string_view payload) {
  return impl_->publish(topic, payload);
}

void external_broker::stop(std::chrono::milliseconds timeout, std::function<void()> done) {
  impl_->stop(timeout, std::move(done));
}

void external_broker::pause_receiving(bool paused) {
  impl_->receiving_paused_ = paused;
  if (impl_->sub_) impl_->sub_->pause_reading(paused);
}

bool external_broker::receiving_paused() const noexcept {
  return impl_->receiving_paused_;
}

std::chrono::milliseconds external_broker::max_pause() const noexcept {
  const std::int64_t keepalive = impl_->options_.keepalive_seconds;
  if (keepalive == 0) return std::chrono::milliseconds::max();  // no PINGREQ, nothing to miss
  return std::chrono::milliseconds(keepalive * 1000 / 2);
}

bool external_broker::sub_connected() const noexcept {
  return impl_->sub_ && impl_->sub_->connected();
}

bool external_broker::pub_connected() const noexcept {
  return impl_->pub_ && impl_->pub_->connected();
}

std::uint64_t external_broker::connect_attempts() const noexcept {
  return (impl_->sub_ ? impl_->sub_->attempts() : 0) + (impl_->pub_ ? impl_->pub_->attempts() : 0);
}

bool external_broker::connecting() const noexcept {
  return (impl_->sub_ && impl_->sub_->connecting()) || (impl_->pub_ && impl_->pub_->connecting());
}

std::size_t external_broker::pending() const noexcept {
  return impl_->pending();
}

std::size_t external_broker::pending_bytes() const noexcept {
  return impl_->pending_bytes_;
}

const external_stats& external_broker::stats() const noexcept {
  return impl_->stats_;
}

std::string external_broker::display_url() const {
  return redact_url(impl_->options_.url);
}

}  // namespace ebus::mqtt::client
