#pragma once
// The version-neutral message the broker routes. One immutable copy is shared by every
// subscriber queue and the retained store; its bytes are charged to the memory budget once, for
// as long as any of them holds it. A message arrives as an inbound_message, which makes that
// shared copy only when a subscriber or the retained store takes it.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/memory_budget.hpp"
#include "mqtt/codec/packet.hpp"

namespace ebus::mqtt::broker {

struct application_message {
  std::string topic;
  std::string payload;
  codec::qos_level qos = codec::qos_level::at_most_once;
  bool retain = false;
  budget_charge charge{};  ///< released with the last reference
};

using message_ptr = std::shared_ptr<const application_message>;

/// Bytes a shared message holds: its strings, the object and the shared_ptr control block.
[[nodiscard]] inline std::size_t footprint(std::size_t topic_size,
                                           std::size_t payload_size) noexcept {
  return topic_size + payload_size + sizeof(application_message) + 32;
}

/// A message on its way in, from a PUBLISH or a will. Its topic and payload stay the strings the
/// decoder made until a subscriber queue or the retained store needs the shared message: on an
/// edge node most device messages go to the EventBus only, which takes the payload itself
/// (take_payload), so they are never copied and no shared message is made for them. The budget
/// charge made on arrival moves into the shared message, or is released with this object.
class inbound_message {
 public:
  inbound_message(std::string&& topic, std::string&& payload, codec::qos_level qos, bool retain,
                  budget_charge&& charge) noexcept
      : topic_(std::move(topic)),
        payload_(std::move(payload)),
        charge_(std::move(charge)),
        qos_(qos),
        retain_(retain) {}

  [[nodiscard]] std::string_view topic() const noexcept {
    return shared_ ? std::string_view(shared_->topic) : std::string_view(topic_);
  }
  /// Empty once take_payload() took it.
  [[nodiscard]] std::string_view payload() const noexcept {
    return shared_ ? std::string_view(shared_->payload) : std::string_view(payload_);
  }
  [[nodiscard]] codec::qos_level qos() const noexcept { return qos_; }
  [[nodiscard]] bool retain() const noexcept { return retain_; }

  /// The shared message, made on the first call: topic and payload move into it, with the
  /// charge. Precondition: take_payload() has not been called.
  [[nodiscard]] const message_ptr& shared() {
    if (!shared_) {
      // Built in place. clang 14, which builds the fuzz targets, has no parenthesized aggregate
      // initialisation and moves the strings through a braced temporary.
#if defined(__cpp_aggregate_paren_init)
      shared_ = std::make_shared<const application_message>(std::move(topic_), std::move(payload_),
                                                            qos_, retain_, std::move(charge_));
#else
      shared_ = std::make_shared<const application_message>(application_message{
          std::move(topic_), std::move(payload_), qos_, retain_, std::move(charge_)});
#endif
    }
    return shared_;
  }

  /// The payload as the caller's own string: moved out when no shared message was made, copied
  /// from it otherwise. Call once, after routing.
  [[nodiscard]] std::string take_payload() {
    if (shared_) return shared_->payload;
    return std::move(payload_);
  }

 private:
  std::string topic_;
  std::string payload_;
  budget_charge charge_;
  message_ptr shared_;
  codec::qos_level qos_;
  bool retain_;
};

}  // namespace ebus::mqtt::broker
