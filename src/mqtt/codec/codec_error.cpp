#include "mqtt/codec/codec_error.hpp"

#include <string>

namespace ebus::mqtt::codec {
namespace {

class codec_category_impl final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "mqtt.codec"; }

  [[nodiscard]] std::string message(int value) const override {
    switch (static_cast<codec_errc>(value)) {
      case codec_errc::malformed_packet:
        return "malformed packet";
      case codec_errc::protocol_error:
        return "protocol error";
      case codec_errc::unacceptable_protocol_version:
        return "unacceptable protocol version";
      case codec_errc::identifier_rejected:
        return "client identifier rejected";
      case codec_errc::topic_filter_invalid:
        return "topic filter invalid";
      case codec_errc::topic_name_invalid:
        return "topic name invalid";
      case codec_errc::packet_too_large:
        return "packet too large";
    }
    return "unknown mqtt codec error";
  }
};

}  // namespace

const std::error_category& codec_category() noexcept {
  static const codec_category_impl category;
  return category;
}

std::error_code make_error_code(codec_errc e) noexcept {
  return {static_cast<int>(e), codec_category()};
}

}  // namespace ebus::mqtt::codec
