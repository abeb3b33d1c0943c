#pragma once
// Byte vectors of the codec tests, each field commented. Valid vectors are decoded, encoded and
// round-tripped; error vectors are each one rule broken, mostly by changing a valid vector.
// fuzz/gen_mqtt_codec_corpus.py reads the `.name` and `.bytes` of every entry from this file to
// build the fuzz seed corpus, so keep one `.bytes = bytes({...})` per entry, in hex or 'c'.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "codec_test_support.hpp"
#include "mqtt/codec/codec_error.hpp"
#include "mqtt/codec/packet.hpp"

namespace ebus::mqtt::codec::test {

struct valid_vector {
  std::string_view name;
  std::string bytes;
  packet value;
};

struct error_vector {
  std::string_view name;
  std::string bytes;
  codec_errc error;
  std::string_view detail;  ///< decoder::error_detail(): names the rule that must fire
  protocol_level level = protocol_level::v3_1_1;
  std::size_t max_packet_size = max_packet_size_limit;
};

inline void PrintTo(const valid_vector& v, std::ostream* os) {
  *os << v.name;
}
inline void PrintTo(const error_vector& v, std::ostream* os) {
  *os << v.name;
}

// clang-format off
inline const std::vector<valid_vector>& valid_vectors() {
  static const std::vector<valid_vector> vectors = {
      {
          .name = "connect_v3_1_1_minimal",
          .bytes = bytes({
              0x10,                    // CONNECT, flags 0000
              0x0e,                    // remaining length 14
              0x00, 0x04,              // protocol name length
              'M', 'Q', 'T', 'T',      // protocol name
              0x04,                    // protocol level 4 (3.1.1)
              0x02,                    // connect flags: clean session
              0x00, 0x3c,              // keep alive 60 s
              0x00, 0x02,              // client id length
              'c', '1',                // client id
          }),
          .value = connect{.level = protocol_level::v3_1_1, .clean_session = true,
                           .keep_alive = 60, .client_id = "c1"},
      },
      {
          .name = "connect_v3_1_1_all_fields",
          .bytes = bytes({
              0x10,                    // CONNECT, flags 0000
              0x21,                    // remaining length 33
              0x00, 0x04,              // protocol name length
              'M', 'Q', 'T', 'T',      // protocol name
              0x04,                    // protocol level 4 (3.1.1)
              0xec,                    // flags: user name, password, will retain, will QoS 1, will
              0x12, 0x34,              // keep alive 4660 s
              0x00, 0x05,              // client id length
              'd', 'e', 'v', '-', '7', // client id
              0x00, 0x03,              // will topic length
              'w', '/', 't',           // will topic
              0x00, 0x03,              // will message length
              'b', 'y', 'e',           // will message
              0x00, 0x01,              // user name length
              'u',                     // user name
              0x00, 0x01,              // password length
              'p',                     // password
          }),
          .value = connect{.level = protocol_level::v3_1_1, .clean_session = false,
                           .keep_alive = 0x1234, .client_id = "dev-7",
                           .will = will_message{.topic = "w/t", .payload = "bye",
                                                .qos = qos_level::at_least_once, .retain = true},
                           .username = "u", .password = "p"},
      },
      {
          .name = "connect_v3_1_1_empty_client_id_with_clean_session",
          .bytes = bytes({
              0x10,                    // CONNECT, flags 0000
              0x0c,                    // remaining length 12
              0x00, 0x04,              // protocol name length
              'M', 'Q', 'T', 'T',      // protocol name
              0x04,                    // protocol level 4 (3.1.1)
              0x02,                    // connect flags: clean session
              0x00, 0x00,              // keep alive off
              0x00, 0x00,              // client id length 0 [MQTT-3.1.3-6]
          }),
          .value = connect{.level = protocol_level::v3_1_1, .clean_session = true,
                           .keep_alive = 0, .client_id = ""},
      },
      {
          .name = "connect_v3_1_minimal",
          .bytes = bytes({
              0x10,                    // CONNECT, flags 0000
              0x10,                    // remaining length 16
              0x00, 0x06,              // protocol name length
              'M', 'Q', 'I', 's', 'd', 'p', // protocol name
              0x03,                    // protocol level 3 (3.1)
              0x02,                    // connect flags: clean session
              0x00, 0x3c,              // keep alive 60 s
              0x00, 0x02,              // client id length
              'c', '1',                // client id
          }),
          .value = connect{.level = protocol_level::v3_1, .clean_session = true,
                           .keep_alive = 60, .client_id = "c1"},
      },
      {
          .name = "connect_v3_1_all_fields",
          .bytes = bytes({
              0x10,                    // CONNECT, flags 0000
              0x20,                    // remaining length 32
              0x00, 0x06,              // protocol name length
              'M', 'Q', 'I', 's', 'd', 'p', // protocol name
              0x03,                    // protocol level 3 (3.1)
              0xd6,                    // flags: user name, password, will QoS 2, will, clean session
              0x00, 0x0a,              // keep alive 10 s
              0x00, 0x03,              // client id length
              'o', 'l', 'd',           // client id
              0x00, 0x01,              // will topic length
              'a',                     // will topic
              0x00, 0x00,              // will message length 0
              0x00, 0x04,              // user name length
              'u', 's', 'e', 'r',      // user name
              0x00, 0x02,              // password length
              0x00, 0xff,              // password: binary data
          }),
          .value = connect{.level = protocol_level::v3_1, .clean_session = true,
                           .keep_alive = 10, .client_id = "old",
                           .will = will_message{.topic = "a", .payload = "",
                                                .qos = qos_level::exactly_once, .retain = false},
                           .username = "user", .password = std::string("\x00\xff", 2)},
      },
      {
          .name = "connack_accepted",
          .bytes = bytes({
              0x20,                    // CONNACK, flags 0000
              0x02,                    // remaining length 2
              0x00,                    // acknowledge flags: no session present
              0x00,                    // return code: accepted
          }),
          .value = connack{.session_present = false, .return_code = connect_return_code::accepted},
      },
      {
          .name = "connack_session_present",
          .bytes = bytes({
              0x20,                    // CONNACK, flags 0000
              0x02,                    // remaining length 2
              0x01,                    // acknowledge flags: session present
              0x00,                    // return code: accepted
          }),
          .value = connack{.session_present = true, .return_code = connect_return_code::accepted},
      },
      {
          .name = "connack_not_authorized",
          .bytes = bytes({
              0x20,                    // CONNACK, flags 0000
              0x02,                    // remaining length 2
              0x00,                    // acknowledge flags: none [MQTT-3.2.2-4]
              0x05,                    // return code: not authorized
          }),
          .value = connack{.session_present = false,
                           .return_code = connect_return_code::not_authorized},
      },
      {
          .name = "publish_qos0",
          .bytes = bytes({
              0x30,                    // PUBLISH, flags: QoS 0
              0x07,                    // remaining length 7
              0x00, 0x03,              // topic length
              'a', '/', 'b',           // topic
              'h', 'i',                // payload
          }),
          .value = publish{.topic = "a/b", .payload = "hi"},
      },
      {
          .name = "publish_qos1_retain",
          .bytes = bytes({
              0x33,                    // PUBLISH, flags: QoS 1, retain
              0x08,                    // remaining length 8
              0x00, 0x01,              // topic length
              't',                     // topic
              0x01, 0x02,              // packet id 258
              0x00, 0xff, 0x10,        // payload: binary data
          }),
          .value = publish{.topic = "t", .payload = std::string("\x00\xff\x10", 3),
                           .qos = qos_level::at_least_once, .retain = true, .packet_id = 0x0102},
      },
      {
          .name = "publish_qos2_dup_empty_payload",
          .bytes = bytes({
              0x3c,                    // PUBLISH, flags: DUP, QoS 2
              0x05,                    // remaining length 5
              0x00, 0x01,              // topic length
              'x',                     // topic
              0xff, 0xff,              // packet id 65535
          }),
          .value = publish{.topic = "x", .qos = qos_level::exactly_once, .dup = true,
                           .packet_id = 0xffff},
      },
      {
          .name = "publish_utf8_topic",
          .bytes = bytes({
              0x30,                    // PUBLISH, flags: QoS 0
              0x0a,                    // remaining length 10
              0x00, 0x06,              // topic length (bytes, not characters)
              0xe6, 0xb8, 0xa9,        // topic: U+6E29
              0xe5, 0xba, 0xa6,        //        U+5EA6
              '2', '1',                // payload
          }),
          .value = publish{.topic = "\xe6\xb8\xa9\xe5\xba\xa6", .payload = "21"},
      },
      {
          .name = "puback",
          .bytes = bytes({
              0x40,                    // PUBACK, flags 0000
              0x02,                    // remaining length 2
              0x12, 0x34,              // packet id
          }),
          .value = puback{.packet_id = 0x1234},
      },
      {
          .name = "pubrec",
          .bytes = bytes({
              0x50,                    // PUBREC, flags 0000
              0x02,                    // remaining length 2
              0x00, 0x01,              // packet id
          }),
          .value = pubrec{.packet_id = 1},
      },
      {
          .name = "pubrel",
          .bytes = bytes({
              0x62,                    // PUBREL, flags 0010 [MQTT-3.6.1-1]
              0x02,                    // remaining length 2
              0xab, 0xcd,              // packet id
          }),
          .value = pubrel{.packet_id = 0xabcd},
      },
      {
          .name = "pubcomp",
          .bytes = bytes({
              0x70,                    // PUBCOMP, flags 0000
              0x02,                    // remaining length 2
              0x00, 0x07,              // packet id
          }),
          .value = pubcomp{.packet_id = 7},
      },
      {
          .name = "subscribe_one_filter",
          .bytes = bytes({
              0x82,                    // SUBSCRIBE, flags 0010 [MQTT-3.8.1-1]
              0x08,                    // remaining length 8
              0x00, 0x0a,              // packet id 10
              0x00, 0x03,              // filter length
              'a', '/', '#',           // filter
              0x01,                    // requested QoS 1
          }),
          .value = subscribe{.packet_id = 10,
                             .subscriptions = {{.filter = "a/#", .qos = qos_level::at_least_once}}},
      },
      {
          .name = "subscribe_three_filters",
          .bytes = bytes({
              0x82,                    // SUBSCRIBE, flags 0010
              0x15,                    // remaining length 21
              0x01, 0x00,              // packet id 256
              0x00, 0x01,              // filter length
              'a',                     // filter
              0x00,                    // requested QoS 0
              0x00, 0x03,              // filter length
              '+', '/', 'b',           // filter
              0x02,                    // requested QoS 2
              0x00, 0x06,              // filter length
              '$', 'S', 'Y', 'S', '/', '#', // filter
              0x01,                    // requested QoS 1
          }),
          .value = subscribe{.packet_id = 256,
                             .subscriptions = {{.filter = "a", .qos = qos_level::at_most_once},
                                               {.filter = "+/b", .qos = qos_level::exactly_once},
                                               {.filter = "$SYS/#",
                                                .qos = qos_level::at_least_once}}},
      },
      {
          .name = "suback",
          .bytes = bytes({
              0x90,                    // SUBACK, flags 0000
              0x05,                    // remaining length 5
              0x01, 0x00,              // packet id 256
              0x00,                    // success, maximum QoS 0
              0x02,                    // success, maximum QoS 2
              0x80,                    // failure
          }),
          .value = suback{.packet_id = 256,
                          .return_codes = {suback_return_code::success_maximum_qos_0,
                                           suback_return_code::success_maximum_qos_2,
                                           suback_return_code::failure}},
      },
      {
          .name = "unsubscribe_one_filter",
          .bytes = bytes({
              0xa2,                    // UNSUBSCRIBE, flags 0010 [MQTT-3.10.1-1]
              0x07,                    // remaining length 7
              0x00, 0x02,              // packet id 2
              0x00, 0x03,              // filter length
              'a', '/', '#',           // filter
          }),
          .value = unsubscribe{.packet_id = 2, .filters = {"a/#"}},
      },
      {
          .name = "unsubscribe_two_filters",
          .bytes = bytes({
              0xa2,                    // UNSUBSCRIBE, flags 0010
              0x0a,                    // remaining length 10
              0x00, 0x03,              // packet id 3
              0x00, 0x01,              // filter length
              'x',                     // filter
              0x00, 0x03,              // filter length
              'y', '/', '+',           // filter
          }),
          .value = unsubscribe{.packet_id = 3, .filters = {"x", "y/+"}},
      },
      {
          .name = "unsuback",
          .bytes = bytes({
              0xb0,                    // UNSUBACK, flags 0000
              0x02,                    // remaining length 2
              0x00, 0x02,              // packet id
          }),
          .value = unsuback{.packet_id = 2},
      },
      {
          .name = "pingreq",
          .bytes = bytes({
              0xc0,                    // PINGREQ, flags 0000
              0x00,                    // remaining length 0
          }),
          .value = pingreq{},
      },
      {
          .name = "pingresp",
          .bytes = bytes({
              0xd0,                    // PINGRESP, flags 0000
              0x00,                    // remaining length 0
          }),
          .value = pingresp{},
      },
      {
          .name = "disconnect",
          .bytes = bytes({
              0xe0,                    // DISCONNECT, flags 0000
              0x00,                    // remaining length 0
          }),
          .value = disconnect{},
      },
  };
  return vectors;
}
// clang-format on

// Detail strings shared by several packet types.
inline constexpr std::string_view reserved_flags = "[MQTT-2.2.2-1] reserved flags are not 0000";
inline constexpr std::string_view wrong_fixed_size =
    "Remaining Length does not match the packet type's fixed size";
inline constexpr std::string_view packet_id_truncated = "packet identifier is truncated";
inline constexpr std::string_view packet_id_zero = "[MQTT-2.3.1-1] packet identifier is 0";

// clang-format off
inline const std::vector<error_vector>& error_vectors() {
  using enum codec_errc;
  static const std::vector<error_vector> vectors = {
      // ---- fixed header: packet type and flags [MQTT-2.2.2-1] [MQTT-2.2.2-2] ----
      {
          .name = "packet_type_0_is_reserved",
          .bytes = bytes({0x00, 0x00}),  // type 0, remaining length 0
          .error = malformed_packet,
          .detail = "packet type 0 or 15 is reserved (section 2.2.1)",
      },
      {
          .name = "packet_type_15_is_reserved",
          .bytes = bytes({0xf0, 0x00}),  // type 15 (AUTH in MQTT 5), remaining length 0
          .error = malformed_packet,
          .detail = "packet type 0 or 15 is reserved (section 2.2.1)",
      },
      {
          .name = "connect_fixed_header_flags_not_0000",
          .bytes = bytes({
              0x11,                    // CONNECT with flags 0001
              0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x02, 'c', '1',
          }),
          .error = malformed_packet,
          .detail = "[MQTT-2.2.2-1] CONNECT flags are not 0000",
      },
      {
          .name = "connack_flags_not_0000",
          .bytes = bytes({0x28, 0x02, 0x00, 0x00}),  // CONNACK with flags 1000
          .error = malformed_packet,
          .detail = reserved_flags,
      },
      {
          .name = "puback_flags_not_0000",
          .bytes = bytes({0x42, 0x02, 0x00, 0x01}),  // PUBACK with flags 0010
          .error = malformed_packet,
          .detail = reserved_flags,
      },
      {
          .name = "pubrec_flags_not_0000",
          .bytes = bytes({0x51, 0x02, 0x00, 0x01}),  // PUBREC with flags 0001
          .error = malformed_packet,
          .detail = reserved_flags,
      },
      {
          .name = "pubcomp_flags_not_0000",
          .bytes = bytes({0x74, 0x02, 0x00, 0x01}),  // PUBCOMP with flags 0100
          .error = malformed_packet,
          .detail = reserved_flags,
      },
      {
          .name = "suback_flags_not_0000",
          .bytes = bytes({0x92, 0x03, 0x00, 0x01, 0x00}),  // SUBACK with flags 0010
          .error = malformed_packet,
          .detail = reserved_flags,
      },
      {
          .name = "unsuback_flags_not_0000",
          .bytes = bytes({0xb2, 0x02, 0x00, 0x01}),  // UNSUBACK with flags 0010
          .error = malformed_packet,
          .detail = reserved_flags,
      },
      {
          .name = "pingreq_flags_not_0000",
          .bytes = bytes({0xc1, 0x00}),  // PINGREQ with flags 0001
          .error = malformed_packet,
          .detail = reserved_flags,
      },
      {
          .name = "pingresp_flags_not_0000",
          .bytes = bytes({0xd8, 0x00}),  // PINGRESP with flags 1000
          .error = malformed_packet,
          .detail = reserved_flags,
      },
      {
          .name = "disconnect_flags_not_0000",
          .bytes = bytes({0xe2, 0x00}),  // DISCONNECT with flags 0010
          .error = malformed_packet,
          .detail = reserved_flags,
      },
      {
          .name = "pubrel_flags_not_0010",
          .bytes = bytes({0x60, 0x02, 0x00, 0x01}),  // PUBREL with flags 0000
          .error = malformed_packet,
          .detail = "[MQTT-3.6.1-1] PUBREL flags are not 0010",
      },
      {
          .name = "subscribe_flags_not_0010",
          .bytes = bytes({
              0x80,                    // SUBSCRIBE with flags 0000
              0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00,
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.8.1-1] SUBSCRIBE flags are not 0010",
      },
      {
          .name = "unsubscribe_flags_not_0010",
          .bytes = bytes({
              0xaa,                    // UNSUBSCRIBE with flags 1010 (MQTT 3.1 DUP retry)
              0x05, 0x00, 0x01, 0x00, 0x01, 'a',
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.10.1-1] UNSUBSCRIBE flags are not 0010",
      },
      {
          .name = "publish_qos_3",
          .bytes = bytes({
              0x36,                    // PUBLISH with both QoS bits set
              0x05, 0x00, 0x01, 't', 0x00, 0x01,
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.3.1-4] PUBLISH QoS is 3",
      },
      {
          .name = "publish_qos_3_on_mqtt_3_1",
          .bytes = bytes({
              0x36,                    // PUBLISH with both QoS bits set
              0x05, 0x00, 0x01, 't', 0x00, 0x01,
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.3.1-4] PUBLISH QoS is 3",
          .level = protocol_level::v3_1,
      },
      {
          .name = "publish_dup_on_qos0",
          .bytes = bytes({
              0x38,                    // PUBLISH with DUP and QoS 0
              0x03, 0x00, 0x01, 't',
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.3.1-2] PUBLISH DUP is set on QoS 0",
      },

      // ---- fixed header: Remaining Length ----
      {
          .name = "remaining_length_longer_than_four_bytes",
          .bytes = bytes({
              0x30,                    // PUBLISH
              0xff, 0xff, 0xff, 0xff,  // four length bytes, all with the continuation bit
              0x01,                    // a fifth length byte
          }),
          .error = malformed_packet,
          .detail = "Remaining Length is longer than four bytes (section 2.2.3)",
      },
      {
          .name = "packet_larger_than_maximum_packet_size",
          .bytes = bytes({
              0x30,                    // PUBLISH
              0x07,                    // remaining length 7: 9 bytes in all
              0x00, 0x03, 'a', '/', 'b', 'h', 'i',
          }),
          .error = packet_too_large,
          .detail = "packet is larger than the maximum packet size",
          .max_packet_size = 8,
      },
      {
          .name = "connack_remaining_length_not_2",
          .bytes = bytes({0x20, 0x03, 0x00, 0x00, 0x00}),
          .error = malformed_packet,
          .detail = wrong_fixed_size,
      },
      {
          .name = "puback_remaining_length_not_2",
          .bytes = bytes({0x40, 0x01, 0x01}),
          .error = malformed_packet,
          .detail = wrong_fixed_size,
      },
      {
          .name = "pubrec_remaining_length_not_2",
          .bytes = bytes({0x50, 0x03, 0x00, 0x01, 0x00}),
          .error = malformed_packet,
          .detail = wrong_fixed_size,
      },
      {
          .name = "pubrel_remaining_length_not_2",
          .bytes = bytes({0x62, 0x00}),
          .error = malformed_packet,
          .detail = wrong_fixed_size,
      },
      {
          .name = "pubcomp_remaining_length_not_2",
          .bytes = bytes({0x70, 0x04, 0x00, 0x01, 0x00, 0x02}),
          .error = malformed_packet,
          .detail = wrong_fixed_size,
      },
      {
          .name = "unsuback_remaining_length_not_2",
          .bytes = bytes({0xb0, 0x01, 0x00}),
          .error = malformed_packet,
          .detail = wrong_fixed_size,
      },
      {
          .name = "pingreq_remaining_length_not_0",
          .bytes = bytes({0xc0, 0x01, 0x00}),
          .error = malformed_packet,
          .detail = wrong_fixed_size,
      },
      {
          .name = "pingresp_remaining_length_not_0",
          .bytes = bytes({0xd0, 0x01, 0x00}),
          .error = malformed_packet,
          .detail = wrong_fixed_size,
      },
      {
          .name = "disconnect_remaining_length_not_0",
          .bytes = bytes({0xe0, 0x02, 0x00, 0x00}),
          .error = malformed_packet,
          .detail = wrong_fixed_size,
      },

      // ---- CONNECT variable header ----
      {
          .name = "connect_protocol_name_truncated",
          .bytes = bytes({
              0x10, 0x03,              // CONNECT, remaining length 3
              0x00, 0x04,              // protocol name length 4
              'M',                     // only 1 byte of it
          }),
          .error = malformed_packet,
          .detail = "CONNECT protocol name is truncated",
      },
      {
          .name = "connect_protocol_name_unknown",
          .bytes = bytes({
              0x10, 0x0e,
              0x00, 0x04, 'M', 'Q', 'T', 'X', // protocol name "MQTX"
              0x04, 0x02, 0x00, 0x3c, 0x00, 0x02, 'c', '1',
          }),
          .error = protocol_error,
          .detail = "[MQTT-3.1.2-1] CONNECT protocol name is not MQTT or MQIsdp",
      },
      {
          .name = "connect_mqtt_5",
          .bytes = bytes({
              0x10, 0x0f,              // CONNECT, remaining length 15
              0x00, 0x04, 'M', 'Q', 'T', 'T',
              0x05,                    // protocol level 5
              0x02, 0x00, 0x3c,
              0x00,                    // MQTT 5 properties length
              0x00, 0x02, 'c', '1',
          }),
          .error = unacceptable_protocol_version,
          .detail = "[MQTT-3.1.2-2] CONNECT protocol level is not supported",
      },
      {
          .name = "connect_mqtt_name_with_level_3",
          .bytes = bytes({
              0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T',
              0x03,                    // protocol level 3 belongs to "MQIsdp"
              0x02, 0x00, 0x3c, 0x00, 0x02, 'c', '1',
          }),
          .error = unacceptable_protocol_version,
          .detail = "[MQTT-3.1.2-2] CONNECT protocol level is not supported",
      },
      {
          .name = "connect_mqisdp_name_with_level_4",
          .bytes = bytes({
              0x10, 0x10, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p',
              0x04,                    // protocol level 4 belongs to "MQTT"
              0x02, 0x00, 0x3c, 0x00, 0x02, 'c', '1',
          }),
          .error = unacceptable_protocol_version,
          .detail = "[MQTT-3.1.2-2] CONNECT protocol level is not supported",
      },
      {
          .name = "connect_protocol_level_truncated",
          .bytes = bytes({0x10, 0x06, 0x00, 0x04, 'M', 'Q', 'T', 'T'}),
          .error = malformed_packet,
          .detail = "CONNECT protocol level is truncated",
      },
      {
          .name = "connect_flags_truncated",
          .bytes = bytes({0x10, 0x07, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04}),
          .error = malformed_packet,
          .detail = "CONNECT flags are truncated",
      },
      {
          .name = "connect_reserved_flag_set",
          .bytes = bytes({
              0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
              0x03,                    // flags: clean session, reserved bit 0
              0x00, 0x3c, 0x00, 0x02, 'c', '1',
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.1.2-3] CONNECT reserved flag is not 0",
      },
      {
          .name = "connect_will_qos_without_will_flag",
          .bytes = bytes({
              0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
              0x0a,                    // flags: will QoS 1, clean session, no will flag
              0x00, 0x3c, 0x00, 0x02, 'c', '1',
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.1.2-13] CONNECT will QoS is set without the will flag",
      },
      {
          .name = "connect_will_qos_3",
          .bytes = bytes({
              0x10, 0x14, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
              0x1e,                    // flags: will QoS 3, will, clean session
              0x00, 0x3c, 0x00, 0x02, 'c', '1',
              0x00, 0x01, 'w',         // will topic
              0x00, 0x01, 'x',         // will message
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.1.2-14] CONNECT will QoS is 3",
      },
      {
          .name = "connect_will_retain_without_will_flag",
          .bytes = bytes({
              0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
              0x22,                    // flags: will retain, clean session, no will flag
              0x00, 0x3c, 0x00, 0x02, 'c', '1',
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.1.2-15] CONNECT will retain is set without the will flag",
      },
      {
          .name = "connect_password_without_user_name",
          .bytes = bytes({
              0x10, 0x11, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
              0x42,                    // flags: password, clean session, no user name
              0x00, 0x3c, 0x00, 0x02, 'c', '1',
              0x00, 0x01, 'p',         // password
          }),
          .error = protocol_error,
          .detail = "[MQTT-3.1.2-22] CONNECT password flag is set without the user name flag",
      },
      {
          .name = "connect_keep_alive_truncated",
          .bytes = bytes({0x10, 0x09, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00}),
          .error = malformed_packet,
          .detail = "CONNECT keep alive is truncated",
      },

      // ---- CONNECT payload ----
      {
          .name = "connect_client_id_truncated",
          .bytes = bytes({
              0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c,
              0x00, 0x05,              // client id length 5
              'c', '1',                // only 2 bytes of it
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.1.3-3] CONNECT client identifier is truncated",
      },
      {
          .name = "connect_client_id_not_utf8",
          .bytes = bytes({
              0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c,
              0x00, 0x02,
              0xc0, 0x80,              // overlong encoding of U+0000 [MQTT-1.5.3-1]
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.1.3-4] CONNECT client identifier is not valid UTF-8",
      },
      {
          .name = "connect_will_topic_truncated",
          .bytes = bytes({
              0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
              0x06,                    // flags: will, clean session
              0x00, 0x3c, 0x00, 0x02, 'c', '1',
                                       // no will topic
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.1.2-9] CONNECT will topic is truncated",
      },
      {
          .name = "connect_will_topic_not_utf8",
          .bytes = bytes({
              0x10, 0x15, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x06, 0x00, 0x3c,
              0x00, 0x02, 'c', '1',
              0x00, 0x03,
              0xed, 0xa0, 0x80,        // will topic: surrogate U+D800 [MQTT-1.5.3-1]
              0x00, 0x00,
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.1.3-10] CONNECT will topic is not valid UTF-8",
      },
      {
          .name = "connect_will_topic_empty",
          .bytes = bytes({
              0x10, 0x12, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x06, 0x00, 0x3c,
              0x00, 0x02, 'c', '1',
              0x00, 0x00,              // will topic length 0
              0x00, 0x00,              // will message length 0
          }),
          .error = topic_name_invalid,
          .detail = "[MQTT-4.7.3-1] CONNECT will topic is empty",
      },
      {
          .name = "connect_will_topic_has_wildcard",
          .bytes = bytes({
              0x10, 0x15, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x06, 0x00, 0x3c,
              0x00, 0x02, 'c', '1',
              0x00, 0x03, 'a', '/', '#', // will topic with a wildcard
              0x00, 0x00,
          }),
          .error = topic_name_invalid,
          .detail = "[MQTT-4.7.1-1] CONNECT will topic contains a wildcard",
      },
      {
          .name = "connect_will_message_truncated",
          .bytes = bytes({
              0x10, 0x11, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x06, 0x00, 0x3c,
              0x00, 0x02, 'c', '1',
              0x00, 0x01, 'w',         // will topic, then no will message
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.1.2-9] CONNECT will message is truncated",
      },
      {
          .name = "connect_user_name_truncated",
          .bytes = bytes({
              0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
              0x82,                    // flags: user name, clean session
              0x00, 0x3c, 0x00, 0x02, 'c', '1',
                                       // no user name
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.1.2-19] CONNECT user name is truncated",
      },
      {
          .name = "connect_user_name_not_utf8",
          .bytes = bytes({
              0x10, 0x12, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x82, 0x00, 0x3c,
              0x00, 0x02, 'c', '1',
              0x00, 0x02, 'u', 0x00,   // user name containing U+0000 [MQTT-1.5.3-2]
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.1.3-11] CONNECT user name is not valid UTF-8",
      },
      {
          .name = "connect_password_truncated",
          .bytes = bytes({
              0x10, 0x14, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
              0xc2,                    // flags: user name, password, clean session
              0x00, 0x3c, 0x00, 0x02, 'c', '1',
              0x00, 0x01, 'u',         // user name
              0x00, 0x03, 'p',         // password length 3, only 1 byte of it
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.1.2-21] CONNECT password is truncated",
      },
      {
          .name = "connect_bytes_after_last_field",
          .bytes = bytes({
              0x10, 0x0f, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c,
              0x00, 0x02, 'c', '1',
              0x00,                    // a byte no flag accounts for [MQTT-3.1.4-1]
          }),
          .error = malformed_packet,
          .detail = "CONNECT has bytes after its last field",
      },
      {
          .name = "connect_empty_client_id_without_clean_session",
          .bytes = bytes({
              0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
              0x00,                    // flags: no clean session
              0x00, 0x3c,
              0x00, 0x00,              // client id length 0
          }),
          .error = identifier_rejected,
          .detail = "[MQTT-3.1.3-8] CONNECT client identifier is empty without clean session",
      },
      {
          .name = "connect_v3_1_empty_client_id",
          .bytes = bytes({
              0x10, 0x0e, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03,
              0x02,                    // flags: clean session
              0x00, 0x3c,
              0x00, 0x00,              // client id length 0: MQTT 3.1 requires 1 to 23
          }),
          .error = identifier_rejected,
          .detail = "CONNECT client identifier is empty on MQTT 3.1",
      },

      // ---- CONNACK ----
      {
          .name = "connack_acknowledge_flags_reserved_bits_set",
          .bytes = bytes({0x20, 0x02, 0x02, 0x00}),  // acknowledge flags bit 1 set
          .error = malformed_packet,
          .detail = "CONNACK acknowledge flags bits 7-1 are not 0 (section 3.2.2.1)",
      },
      {
          .name = "connack_return_code_reserved",
          .bytes = bytes({0x20, 0x02, 0x00, 0x06}),  // return code 6
          .error = malformed_packet,
          .detail = "CONNACK return code is reserved (section 3.2.2.3)",
      },
      {
          .name = "connack_session_present_on_refusal",
          .bytes = bytes({0x20, 0x02, 0x01, 0x05}),  // session present, not authorized
          .error = protocol_error,
          .detail = "[MQTT-3.2.2-4] CONNACK session present is set on a refusal",
      },

      // ---- PUBLISH ----
      {
          .name = "publish_topic_truncated",
          .bytes = bytes({0x30, 0x01, 0x00}),  // one byte of the topic length
          .error = malformed_packet,
          .detail = "PUBLISH topic name is truncated",
      },
      {
          .name = "publish_topic_not_utf8",
          .bytes = bytes({0x30, 0x03, 0x00, 0x01, 0xff}),  // topic byte 0xff [MQTT-1.5.3-1]
          .error = malformed_packet,
          .detail = "[MQTT-3.3.2-1] PUBLISH topic name is not valid UTF-8",
      },
      {
          .name = "publish_topic_contains_nul",
          .bytes = bytes({0x30, 0x04, 0x00, 0x02, 'a', 0x00}),  // U+0000 [MQTT-1.5.3-2]
          .error = malformed_packet,
          .detail = "[MQTT-3.3.2-1] PUBLISH topic name is not valid UTF-8",
      },
      {
          .name = "publish_topic_empty",
          .bytes = bytes({0x30, 0x04, 0x00, 0x00, 'h', 'i'}),  // topic length 0
          .error = topic_name_invalid,
          .detail = "[MQTT-4.7.3-1] PUBLISH topic name is empty",
      },
      {
          .name = "publish_topic_has_plus",
          .bytes = bytes({0x30, 0x05, 0x00, 0x03, 'a', '/', '+'}),
          .error = topic_name_invalid,
          .detail = "[MQTT-3.3.2-2] PUBLISH topic name contains a wildcard",
      },
      {
          .name = "publish_topic_has_hash",
          .bytes = bytes({0x30, 0x03, 0x00, 0x01, '#'}),
          .error = topic_name_invalid,
          .detail = "[MQTT-3.3.2-2] PUBLISH topic name contains a wildcard",
      },
      {
          .name = "publish_packet_id_truncated",
          .bytes = bytes({0x32, 0x04, 0x00, 0x01, 't', 0x01}),  // QoS 1, one id byte
          .error = malformed_packet,
          .detail = packet_id_truncated,
      },
      {
          .name = "publish_packet_id_zero",
          .bytes = bytes({0x34, 0x05, 0x00, 0x01, 't', 0x00, 0x00}),  // QoS 2, id 0
          .error = protocol_error,
          .detail = packet_id_zero,
      },

      // ---- acknowledgements with packet id 0 [MQTT-2.3.1-1] ----
      {
          .name = "puback_packet_id_zero",
          .bytes = bytes({0x40, 0x02, 0x00, 0x00}),
          .error = protocol_error,
          .detail = packet_id_zero,
      },
      {
          .name = "pubrec_packet_id_zero",
          .bytes = bytes({0x50, 0x02, 0x00, 0x00}),
          .error = protocol_error,
          .detail = packet_id_zero,
      },
      {
          .name = "pubrel_packet_id_zero",
          .bytes = bytes({0x62, 0x02, 0x00, 0x00}),
          .error = protocol_error,
          .detail = packet_id_zero,
      },
      {
          .name = "pubcomp_packet_id_zero",
          .bytes = bytes({0x70, 0x02, 0x00, 0x00}),
          .error = protocol_error,
          .detail = packet_id_zero,
      },
      {
          .name = "unsuback_packet_id_zero",
          .bytes = bytes({0xb0, 0x02, 0x00, 0x00}),
          .error = protocol_error,
          .detail = packet_id_zero,
      },

      // ---- SUBSCRIBE ----
      {
          .name = "subscribe_packet_id_truncated",
          .bytes = bytes({0x82, 0x01, 0x00}),
          .error = malformed_packet,
          .detail = packet_id_truncated,
      },
      {
          .name = "subscribe_packet_id_zero",
          .bytes = bytes({0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 'a', 0x00}),
          .error = protocol_error,
          .detail = packet_id_zero,
      },
      {
          .name = "subscribe_without_filters",
          .bytes = bytes({0x82, 0x02, 0x00, 0x01}),  // packet id only
          .error = protocol_error,
          .detail = "[MQTT-3.8.3-3] SUBSCRIBE has no topic filter",
      },
      {
          .name = "subscribe_filter_truncated",
          .bytes = bytes({0x82, 0x04, 0x00, 0x01, 0x00, 0x05}),  // filter length 5, no bytes
          .error = malformed_packet,
          .detail = "SUBSCRIBE topic filter is truncated",
      },
      {
          .name = "subscribe_filter_not_utf8",
          .bytes = bytes({0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0xf8, 0x00}),  // lead byte 0xf8
          .error = malformed_packet,
          .detail = "[MQTT-3.8.3-1] SUBSCRIBE topic filter is not valid UTF-8",
      },
      {
          .name = "subscribe_filter_empty",
          .bytes = bytes({0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00}),  // filter length 0
          .error = topic_filter_invalid,
          .detail = "[MQTT-4.7.3-1] SUBSCRIBE topic filter is empty",
      },
      {
          .name = "subscribe_requested_qos_truncated",
          .bytes = bytes({0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'}),  // no QoS byte
          .error = malformed_packet,
          .detail = "SUBSCRIBE requested QoS is truncated",
      },
      {
          .name = "subscribe_requested_qos_3",
          .bytes = bytes({0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03}),
          .error = malformed_packet,
          .detail = "[MQTT-3.8.3-4] SUBSCRIBE requested QoS byte is not 0, 1 or 2",
      },
      {
          .name = "subscribe_requested_qos_reserved_bits_set",
          .bytes = bytes({
              0x82, 0x0a, 0x00, 0x01,
              0x00, 0x01, 'a', 0x01,   // a valid first entry
              0x00, 0x01, 'b', 0x05,   // QoS 1 with reserved bit 2 set
          }),
          .error = malformed_packet,
          .detail = "[MQTT-3.8.3-4] SUBSCRIBE requested QoS byte is not 0, 1 or 2",
      },

      // ---- SUBACK ----
      {
          .name = "suback_packet_id_truncated",
          .bytes = bytes({0x90, 0x01, 0x00}),
          .error = malformed_packet,
          .detail = packet_id_truncated,
      },
      {
          .name = "suback_packet_id_zero",
          .bytes = bytes({0x90, 0x03, 0x00, 0x00, 0x00}),
          .error = protocol_error,
          .detail = packet_id_zero,
      },
      {
          .name = "suback_without_return_codes",
          .bytes = bytes({0x90, 0x02, 0x00, 0x01}),  // packet id only
          .error = protocol_error,
          .detail = "SUBACK has no return code",
      },
      {
          .name = "suback_return_code_reserved",
          .bytes = bytes({0x90, 0x04, 0x00, 0x01, 0x01, 0x81}),  // 0x81 is not 0x80
          .error = malformed_packet,
          .detail = "[MQTT-3.9.3-2] SUBACK return code is reserved",
      },

      // ---- UNSUBSCRIBE ----
      {
          .name = "unsubscribe_packet_id_truncated",
          .bytes = bytes({0xa2, 0x01, 0x00}),
          .error = malformed_packet,
          .detail = packet_id_truncated,
      },
      {
          .name = "unsubscribe_packet_id_zero",
          .bytes = bytes({0xa2, 0x05, 0x00, 0x00, 0x00, 0x01, 'a'}),
          .error = protocol_error,
          .detail = packet_id_zero,
      },
      {
          .name = "unsubscribe_without_filters",
          .bytes = bytes({0xa2, 0x02, 0x00, 0x01}),  // packet id only
          .error = protocol_error,
          .detail = "[MQTT-3.10.3-2] UNSUBSCRIBE has no topic filter",
      },
      {
          .name = "unsubscribe_filter_truncated",
          .bytes = bytes({0xa2, 0x05, 0x00, 0x01, 0x00, 0x03, 'a'}),  // length 3, 1 byte
          .error = malformed_packet,
          .detail = "UNSUBSCRIBE topic filter is truncated",
      },
      {
          .name = "unsubscribe_filter_not_utf8",
          .bytes = bytes({0xa2, 0x05, 0x00, 0x01, 0x00, 0x01, 0x80}),  // lone continuation
          .error = malformed_packet,
          .detail = "[MQTT-3.10.3-1] UNSUBSCRIBE topic filter is not valid UTF-8",
      },
      {
          .name = "unsubscribe_filter_empty",
          .bytes = bytes({0xa2, 0x04, 0x00, 0x01, 0x00, 0x00}),  // filter length 0
          .error = topic_filter_invalid,
          .detail = "[MQTT-4.7.3-1] UNSUBSCRIBE topic filter is empty",
      },
  };
  return vectors;
}
// clang-format on

}  // namespace ebus::mqtt::codec::test
