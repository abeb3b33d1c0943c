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
// Bad input never stops the loop: it is logged with the reason, counted, and skipped.
//
// Thread safety: loop thread only.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "bus/module.hpp"
#include "common/clock.hpp"
#include "mqtt/codec/packet.hpp"

namespace spdlog {
class logger;
}
namespace ebus::bus {
struct message;
}
namespace ebus::mqtt::broker {
class broker;
}
namespace ebus::mqtt::client {
class external_broker;
}

namespace ebus::eventbus {

class persisted_topics;

struct eventbus_options {
  std::string node_name;                                              ///< for get_result
  mqtt::codec::qos_level qos = mqtt::codec::qos_level::at_most_once;  ///< mqttQOS
  bool retain = false;                                                ///< mqttRetain
};

/// Totals since start. Every message that is not delivered is counted somewhere here.
struct eventbus_stats {
  std::uint64_t to_twin = 0;             ///< MQTT messages delivered to group twin
  std::uint64_t to_hub = 0;              ///< MQTT messages delivered to group hub
  std::uint64_t backlogged = 0;          ///< MQTT messages kept for a group with no module yet
  std::uint64_t no_member = 0;           ///< MQTT messages for a group with no module
  std::uint64_t refused = 0;             ///< MQTT messages refused by full inboxes
  std::uint64_t published_internal = 0;  ///< bus messages published on the embedded broker
  std::uint64_t published_external = 0;  ///< bus messages handed to the external publisher
  std::uint64_t subscribes = 0;
  std::uint64_t unsubscribes = 0;
  std::uint64_t rejected = 0;  ///< bus messages with bad input
  std::uint64_t ignored = 0;   ///< bus messages with an operation eventbus does not handle
  std::uint64_t queries = 0;   ///< query requests answered
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

  /// MQTT -> bus, for one message from either broker.
  void on_mqtt_message(std::string_view topic, std::string_view payload);

  /// bus -> MQTT, for one message addressed to eventbus.
  void handle(bus::message&& m);

  awaitable<void> run(bus::bus& b) override;

  [[nodiscard]] const eventbus_stats& stats() const noexcept { return stats_; }
  /// Run-time subscriptions (persisted ones included), fixed topics excluded.
  [[nodiscard]] const std::unordered_set<std::string>& subscriptions() const noexcept {
    return dynamic_;
  }

 private:
  void answer_query(const bus::message& request);
  void subscribe(std::string filter);
  void unsubscribe(const std::string& filter);
  void publish(std::string topic, std::string payload);
  void warn_undelivered(std::string_view group, std::error_code ec);

  bus::bus& bus_;
  clock& clock_;
  eventbus_options options_;
  mqtt::broker::broker* internal_;
  mqtt::client::external_broker* external_;
  persisted_topics* store_;
  std::shared_ptr<spdlog::logger> log_;
  std::unordered_set<std::string> fixed_;
  std::unordered_set<std::string> dynamic_;
  eventbus_stats stats_;
  clock::time_point next_undelivered_warning_{};
  clock::time_point next_rejected_warning_{};
  std::uint64_t undelivered_since_warning_ = 0;
};

}  // namespace ebus::eventbus
