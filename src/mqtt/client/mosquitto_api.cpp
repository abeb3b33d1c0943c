#include "mqtt/client/mosquitto_api.hpp"

#include "common/shared_library.hpp"

namespace ebus::mqtt::client::mosquitto_api {
namespace {

expected<functions, std::string> open_library() {
  constexpr const char* soname = EBUS_LIBMOSQUITTO_SONAME;
  auto handle = open_shared_library(soname);
  if (!handle) return fail(std::move(handle.error()));
  functions table;
  std::string error;
  // NOLINTNEXTLINE(cppcoreguidelines-macro-usage)
#define EBUS_MOSQUITTO_RESOLVE(name) resolve(table.name, *handle, soname, #name, error);
  EBUS_MOSQUITTO_FUNCTIONS(EBUS_MOSQUITTO_RESOLVE)
#undef EBUS_MOSQUITTO_RESOLVE
  if (!error.empty()) return fail(std::move(error));
  table.mosquitto_lib_init();
  return table;
}

}  // namespace

expected<const functions*, std::string> load() {
  static const expected<functions, std::string> loaded = open_library();
  if (!loaded) return fail(loaded.error());
  return &*loaded;
}

}  // namespace ebus::mqtt::client::mosquitto_api
