#include "mqtt/client/mosquitto_api.hpp"

#include "common/shared_library.hpp"

namespace ebus::mqtt::client::mosquitto_api {
namespace {

expected<functions, std::string> open_library() {
  auto table =
      load_function_table<functions>(EBUS_LIBMOSQUITTO_SONAME, [](functions& t, auto&& one) {
  // NOLINTNEXTLINE(cppcoreguidelines-macro-usage)
#define EBUS_MOSQUITTO_RESOLVE(name) one(t.name, #name);
        EBUS_MOSQUITTO_FUNCTIONS(EBUS_MOSQUITTO_RESOLVE)
#undef EBUS_MOSQUITTO_RESOLVE
      });
  if (table) table->mosquitto_lib_init();
  return table;
}

}  // namespace

expected<const functions*, std::string> load() {
  static const expected<functions, std::string> loaded = open_library();
  if (!loaded) return fail(loaded.error());
  return &*loaded;
}

}  // namespace ebus::mqtt::client::mosquitto_api
