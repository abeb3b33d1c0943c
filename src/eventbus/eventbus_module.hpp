#pragma once
// The EventBus module (KubeEdge edge/pkg/eventbus): module "eventbus" in group "bus", the
// gateway between MQTT and the module bus.
//
//  MQTT -> bus: every message from a device whose topic matches the interest list (fixed topics
//  and run-time subscriptions) becomes a beehive message for group twin or hub (routing.hpp).
//  Both the embedded broker's interception hook and the external subscriber feed
//  on_mqtt_message(), on the loop thread, so messages keep their order per device connection.
//
//  bus -> MQTT: messages to "eventbus" (command.hpp) publish to the embedded broker (mqttQOS,
//  mqttRetain), to the external broker (QoS 1, retain false), or both, following the mode; and
//  subscribe / unsubscribe, persisted in sub_topics.
//
// Subscriptions: a subscribe or unsubscribe changes the interests at once and is written to
// sub_topics through the store thread (persisted_topics.hpp). It is confirmed only once the write
// has committed: a sync request is answered then, and a `query` is answered only after every
// write made before it has committed (or failed). When a write fails (or cannot be queued), the
// sender gets an error and the interests go back to what sub_topics holds, so memory and disk
// agree. Run-time subscriptions are capped (max_subscriptions, max_subscription_bytes).
//
// Answers: a sync request gets a response (null content) when it succeeded, an error message
// otherwise. A request that was not sync gets an error message when it failed, if its
// route.source is a module on the bus (remote tools such as eventbus-ctl read them).
//
// Bad input never stops the loop: it is logged with the reason (client strings escaped and cut),
// counted, and skipped.
//
// Thread safety: loop thread only.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "bus/module.hpp"
#include "common/clock.hpp"
#include "common/expected.hpp"
#include "common/string_hash.hpp"
#include "eventbus/routing.hpp"
#include "mqtt/codec/packet.hpp"

namespace spdlog {
class logger;
}
namespace ebus::bus {
struct message;
}
namespace ebus::mqtt::broker {
class broker;
struct flow_waiter;
using flow_hold = std::pair<std::weak_ptr<flow_waiter>, std::uint64_t>;  // as session.hpp
}  // namespace ebus::mqtt::broker
namespace ebus::mqtt::client {
class external_broker;
}

namespace ebus::eventbus {

class persisted_topics;

struct eventbus_options {
  std::string node_name;                                              ///< for get_result
  mqtt::codec::qos_level qos = mqtt::codec::qos_level::at_most_once;  ///< mqttQOS
  bool retain = false;                                                ///< mqttRetain
  /// Run-time subscriptions (stored ones loaded at start included); a subscribe of a new filter
  /// beyond this is refused. Stored rows beyond it are not loaded (and stay in sub_topics).
  std::size_t max_subscriptions = 10000;
  /// Total bytes of the run-time subscriptions' filters, likewise.
  std::size_t max_subscription_bytes = std::size_t{1024} * 1024;
  /// Largest MQTT PUBLISH packet (fixed header included) a bus publish may produce, at the QoS
  /// it is sent with; bigger ones are refused. The broker's mqttMaxPacketSize. 0: no limit but
  /// MQTT's own (codec::max_packet_size_limit), which applies whatever this says.
  std::size_t max_packet_size = std::size_t{1024} * 1024;
  /// Bounds on topics and filters in bus messages (command.hpp).
  std::size_t max_topic_length = 65535;
  std::size_t max_topic_levels = 128;
  /// How long MQTT publishers are held back for a group whose members' queues are over half
  /// their limits (the broker's slow_subscriber_timeout); a group still crowded by then is slow
  /// and holds nobody until it drains.
  clock::duration slow_group_timeout = std::chrono::seconds(2);
};

/// Totals since start. Every message that is not delivered is counted somewhere here.
struct eventbus_stats {
  std::uint64_t to_twin = 0;          ///< MQTT messages delivered to group twin
  std::uint64_t to_hub = 0;           ///< MQTT messages delivered to group hub
  std::uint64_t backlogged = 0;       ///< MQTT messages kept for a group with no module yet
  std::uint64_t no_member = 0;        ///< MQTT messages for a group with no module
  std::uint64_t refused = 0;          ///< MQTT messages refused by full inboxes
  std::uint64_t publishers_held = 0;  ///< MQTT publishers held back for a crowded group
  std::uint64_t external_held = 0;    ///< times the external subscriber paused for a crowded group
  std::uint64_t groups_slow = 0;      ///< times a group stayed crowded past the timeout
  std::uint64_t published_internal = 0;  ///< bus messages published on the embedded broker
  std::uint64_t published_external = 0;  ///< bus messages handed to the external publisher
  std::uint64_t subscribes = 0;
  std::uint64_t unsubscribes = 0;
  std::uint64_t rejected = 0;  ///< bus messages with bad input (topic too long included)
  std::uint64_t ignored = 0;   ///< bus messages with an operation eventbus does not handle
  std::uint64_t queries = 0;   ///< query requests answered
  std::uint64_t subscriptions_refused = 0;  ///< subscribes refused by max_subscriptions / bytes
  std::uint64_t publishes_too_large = 0;    ///< publishes refused by max_packet_size
  std::uint64_t publishes_refused = 0;      ///< publishes the external client refused (buffer)
  std::uint64_t store_refused = 0;          ///< (un)subscribes refused: store queue full or closed
  std::uint64_t store_failed = 0;           ///< (un)subscribes whose write failed; rolled back
  std::uint64_t stored_skipped = 0;         ///< stored rows not loaded at start (beyond the caps)
  std::uint64_t confirmed = 0;              ///< sync requests answered with a response
  std::uint64_t errors_returned = 0;        ///< error messages sent back to senders
};

class eventbus_module final : public bus::module {
 public:
  static constexpr std::string_view module_name = "eventbus";
  static constexpr std::string_view group_name = "bus";

  /// `internal` (modes 0, 1), `external` (modes 1, 2) and `store` may each be null.
  eventbus_module(bus::bus& b, clock& clk, eventbus_options options, mqtt::broker::broker* internal,
                  mqtt::client::external_broker* external, persisted_topics* store);
  ~eventbus_module() override;

  [[nodiscard]] std::string name() const override { return std::string(module_name); }
  [[nodiscard]] std::string group() const override { return std::string(group_name); }

  /// Installs the fixed topics and `persisted` (read from sub_topics) as interests, and hooks
  /// the embedded broker. Call once, before the broker listens and the external client starts.
  void install(const std::vector<std::string>& persisted);

  /// MQTT -> bus, for one message from either broker. `from`, the embedded broker's record of
  /// the publisher's flow, is held back while the target group is crowded (bus::crowded), as
  /// a subscriber over its limit holds it (docs/BROKER.md#flow-control), for at most
  /// slow_group_timeout. Without `from`, nobody is held.
  void on_mqtt_message(std::string_view topic, std::string payload,
                       const std::shared_ptr<mqtt::broker::flow_waiter>& from = {});

  /// MQTT -> bus, for one message from the external broker's subscriber. While the target
  /// group is crowded the subscriber stops reading (external_broker::pause_receiving), so the
  /// external broker holds the rest back, for at most slow_group_timeout (and half the
  /// keepalive).
  void on_external_message(std::string_view topic, std::string_view payload);

  /// bus -> MQTT, for one message addressed to eventbus.
  void handle(bus::message&& m);

  awaitable<void> run(bus::bus& b) override;

  [[nodiscard]] const eventbus_stats& stats() const noexcept { return stats_; }
  /// Run-time subscriptions (persisted ones included), fixed topics excluded.
  [[nodiscard]] const std::unordered_set<std::string>& subscriptions() const noexcept {
    return dynamic_;
  }
  /// Bytes of their filters.
  [[nodiscard]] std::size_t subscription_bytes() const noexcept { return dynamic_bytes_; }

 private:
  /// A warning that repeats at most once per interval, with the count of what it left out.
  struct rate_limit {
    clock::time_point next{};
    std::uint64_t suppressed = 0;
  };
  /// Publishers held back for one crowded group, from the first hold until the bus says it
  /// has drained (on_relief).
  struct crowded_group {
    std::vector<mqtt::broker::flow_hold> holds;
    clock::time_point since{};  // the first hold
    bool slow = false;          // crowded past slow_group_timeout: holds nobody
    bool external = false;      // the external subscriber is paused for it
  };
  /// Writes of one filter not yet reported, and the filter's state in sub_topics.
  struct unconfirmed_filter {
    std::size_t writes = 0;
    bool stored = false;  ///< present after the last write that committed (or before the first)
  };

  void answer_query(const bus::message& request);
  void subscribe(std::string filter, const bus::message& request);
  void unsubscribe(const std::string& filter, const bus::message& request);
  expected<void, std::string> publish(std::string topic, std::string payload);
  bool store_write(const std::string& filter, bool insert, const bus::message& request);
  void on_stored(const std::string& filter, bool insert, const expected<void, std::string>& result,
                 const bus::message& request);
  void set_interest(const std::string& filter, bool present);
  void confirm(const bus::message& request);
  void refuse(const bus::message& request, const std::string& reason);
  bool allow_warning(rate_limit& limit);
  void warn_undelivered(std::string_view group, std::error_code ec);
  /// Where forward() sent a message, and whether that group is crowded now.
  struct forwarded {
    std::string_view group;
    bool crowded = false;
  };
  forwarded forward(std::string_view topic, std::string payload);
  crowded_group* crowding(std::string_view group);
  void hold(std::string_view group, const std::shared_ptr<mqtt::broker::flow_waiter>& from);
  void hold_external(std::string_view group);
  void become_slow(std::string_view group, crowded_group& c);
  void release_external(crowded_group& c);
  void on_external_deadline();
  void arm_external_timer();
  void on_relief(const std::string& group);

  bus::bus& bus_;
  clock& clock_;
  eventbus_options options_;
  mqtt::broker::broker* internal_;
  mqtt::client::external_broker* external_;
  persisted_topics* store_;
  std::shared_ptr<spdlog::logger> log_;
  std::unordered_set<std::string> fixed_;
  std::unordered_set<std::string> dynamic_;
  std::size_t dynamic_bytes_ = 0;
  std::unordered_map<std::string, unconfirmed_filter> unconfirmed_;
  eventbus_stats stats_;
  clock::time_point next_undelivered_warning_{};
  clock::time_point next_rejected_warning_{};
  std::uint64_t undelivered_since_warning_ = 0;
  rate_limit cap_warning_;
  rate_limit size_warning_;
  rate_limit store_warning_;
  rate_limit slow_warning_;
  // twin and hub at most; looked up by the group's string_view without a copy
  std::unordered_map<std::string, crowded_group, string_hash, std::equal_to<>> crowded_;
  resource_cache resources_;  // device topics' base64, one encoding per device, not per message
  std::size_t external_pauses_ = 0;   // crowded groups the external subscriber is paused for
  clock::duration external_limit_{};  // how long it may stay paused for one group
  std::unique_ptr<clock::timer> external_timer_;  // ends pauses that last past the limit
  // Store outcomes and barriers arrive later on the loop; they check this first.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace ebus::eventbus
