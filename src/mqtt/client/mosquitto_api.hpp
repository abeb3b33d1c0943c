#pragma once
// libmosquitto's functions, from the library opened when the daemon first connects to an
// external broker (mqttMode 1 or 2): at mqttMode 0 neither libmosquitto nor the OpenSSL it links
// is mapped (docs/BROKER.md, "The idle daemon"). Call sites name the functions as libmosquitto
// does: `mq.mosquitto_publish(...)`.
//
// Thread safety: load() may be called from any thread; the table never changes once loaded.

#include <string>

#include <mosquitto.h>

#include "common/expected.hpp"

namespace ebus::mqtt::client::mosquitto_api {

// NOLINTBEGIN(cppcoreguidelines-macro-usage): one list makes both the table and its loading.
#define EBUS_MOSQUITTO_FUNCTIONS(X)    \
  X(mosquitto_connack_string)          \
  X(mosquitto_connect_async)           \
  X(mosquitto_connect_callback_set)    \
  X(mosquitto_destroy)                 \
  X(mosquitto_disconnect)              \
  X(mosquitto_disconnect_callback_set) \
  X(mosquitto_int_option)              \
  X(mosquitto_lib_init)                \
  X(mosquitto_log_callback_set)        \
  X(mosquitto_loop_misc)               \
  X(mosquitto_loop_read)               \
  X(mosquitto_loop_write)              \
  X(mosquitto_message_callback_set)    \
  X(mosquitto_new)                     \
  X(mosquitto_pub_topic_check2)        \
  X(mosquitto_publish)                 \
  X(mosquitto_publish_callback_set)    \
  X(mosquitto_socket)                  \
  X(mosquitto_strerror)                \
  X(mosquitto_sub_topic_check2)        \
  X(mosquitto_subscribe)               \
  X(mosquitto_subscribe_callback_set)  \
  X(mosquitto_unsubscribe)             \
  X(mosquitto_username_pw_set)         \
  X(mosquitto_validate_utf8)           \
  X(mosquitto_void_option)             \
  X(mosquitto_want_write)

// NOLINTBEGIN(readability-identifier-naming): the members carry libmosquitto's names.
struct functions {
#define EBUS_MOSQUITTO_MEMBER(name) \
  decltype(&::name) name = nullptr;  // NOLINT(bugprone-macro-parentheses)
  EBUS_MOSQUITTO_FUNCTIONS(EBUS_MOSQUITTO_MEMBER)
#undef EBUS_MOSQUITTO_MEMBER
};
// NOLINTEND(readability-identifier-naming)
// NOLINTEND(cppcoreguidelines-macro-usage)

/// Opens libmosquitto, resolves the table and runs mosquitto_lib_init(), once; later calls
/// return the same table or the same error ("cannot load libmosquitto.so.1: <reason>").
[[nodiscard]] expected<const functions*, std::string> load();

}  // namespace ebus::mqtt::client::mosquitto_api
