#include "openssl/openssl_api.hpp"

#include <array>

#include "common/shared_library.hpp"

namespace ebus::openssl {
namespace {

expected<functions, std::string> open_library() {
  return load_function_table<functions>(EBUS_LIBSSL_SONAME, [](functions& table, auto&& one) {
  // NOLINTNEXTLINE(cppcoreguidelines-macro-usage)
#define EBUS_OPENSSL_RESOLVE(name) one(table.name, #name);
    EBUS_OPENSSL_FUNCTIONS(EBUS_OPENSSL_RESOLVE)
#undef EBUS_OPENSSL_RESOLVE
  });
}

}  // namespace

expected<const functions*, std::string> load() {
  static const expected<functions, std::string> loaded = open_library();
  if (!loaded) return fail(loaded.error());
  return &*loaded;
}

std::string last_error(const functions& ssl) {
  const unsigned long code = ssl.ERR_get_error();  // NOLINT(google-runtime-int): OpenSSL's type
  ssl.ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  std::array<char, 256> text{};
  ssl.ERR_error_string_n(code, text.data(), text.size());
  return text.data();
}

int refuse_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) {
  return 0;
}

}  // namespace ebus::openssl
