#include "mqtt/topic/topic_error.hpp"

#include <string>

namespace ebus::mqtt::topic {

namespace {

class topic_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "mqtt.topic"; }

  std::string message(int value) const override {
    switch (static_cast<topic_errc>(value)) {
      case topic_errc::empty:
        return "topic is empty";
      case topic_errc::too_long:
        return "topic is longer than 65535 bytes";
      case topic_errc::invalid_utf8:
        return "topic is not well-formed UTF-8";
      case topic_errc::contains_nul:
        return "topic contains U+0000";
      case topic_errc::wildcard_in_name:
        return "topic name contains a wildcard character";
      case topic_errc::misplaced_hash:
        return "'#' must be the whole last level of a topic filter";
      case topic_errc::misplaced_plus:
        return "'+' must be a whole level of a topic filter";
    }
    return "unknown topic error";
  }
};

}  // namespace

const std::error_category& topic_category() noexcept {
  static const topic_category_impl category;
  return category;
}

std::error_code make_error_code(topic_errc e) noexcept {
  return {static_cast<int>(e), topic_category()};
}

}  // namespace ebus::mqtt::topic
