#pragma once
// Errors of the MQTT codec. Where MQTT v5 defines a reason code for the condition, the enum value
// is that reason code, so mapping an error to a v5 CONNACK/DISCONNECT is the identity. For
// MQTT 3.1.1 every error closes the connection; two of them are answered first with a CONNACK
// refusal: unacceptable_protocol_version -> 0x01, identifier_rejected -> 0x02.

#include <system_error>

namespace ebus::mqtt::codec {

enum class codec_errc : int {
  /// Bytes that do not follow the packet grammar: bad lengths, reserved bits set, bad UTF-8.
  malformed_packet = 0x81,
  /// Well-formed bytes that break a protocol rule (zero packet identifier, empty SUBSCRIBE, ...).
  protocol_error = 0x82,
  /// CONNECT names the MQTT protocol but a level this codec does not speak [MQTT-3.1.2-2].
  /// v5 "Unsupported Protocol Version"; v3.1.1 CONNACK 0x01.
  unacceptable_protocol_version = 0x84,
  /// CONNECT client identifier the server must refuse [MQTT-3.1.3-8].
  /// v5 "Client Identifier not valid"; v3.1.1 CONNACK 0x02.
  identifier_rejected = 0x85,
  /// Empty topic filter in SUBSCRIBE or UNSUBSCRIBE [MQTT-4.7.3-1].
  topic_filter_invalid = 0x8f,
  /// Empty PUBLISH or will topic, or one containing '+' or '#' [MQTT-3.3.2-2] [MQTT-4.7.3-1].
  topic_name_invalid = 0x90,
  /// The packet is larger than the decoder's configured maximum packet size.
  packet_too_large = 0x95,
};

/// The category of codec_errc; its name is "mqtt.codec".
[[nodiscard]] const std::error_category& codec_category() noexcept;

[[nodiscard]] std::error_code make_error_code(codec_errc e) noexcept;

}  // namespace ebus::mqtt::codec

template <>
struct std::is_error_code_enum<ebus::mqtt::codec::codec_errc> : std::true_type {};
