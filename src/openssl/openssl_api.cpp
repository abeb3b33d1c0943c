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

expected<void, key_pair_failure> use_key_pair(const functions& ssl, SSL_CTX* ctx,
                                              const std::string& cert_file,
                                              const std::string& key_file) {
  using kind = key_pair_failure::kind;
  const auto failure = [&](kind what) { return fail(key_pair_failure{what, last_error(ssl)}); };
  ssl.SSL_CTX_set_default_passwd_cb(ctx, refuse_passphrase);
  ssl.ERR_clear_error();
  if (ssl.SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return failure(kind::certificate);
  }
  if (ssl.SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL compares the key with the certificate as it loads it (X509_check_private_key).
    return failure(ERR_GET_LIB(ssl.ERR_peek_error()) == ERR_LIB_X509 ? kind::mismatch : kind::key);
  }
  // A key of another type (EC for an RSA certificate) loads, and fails here.
  if (ssl.SSL_CTX_check_private_key(ctx) != 1) return failure(kind::mismatch);
  return {};
}

std::string describe(const key_pair_failure& failure, const std::string& cert_file,
                     const std::string& key_file) {
  switch (failure.what) {
    case key_pair_failure::kind::certificate:
      return "certificate '" + cert_file + "': " + failure.detail;
    case key_pair_failure::kind::key:
      return "key '" + key_file + "': " + failure.detail;
    case key_pair_failure::kind::mismatch:
      break;
  }
  return "key '" + key_file + "' does not match certificate '" + cert_file + "': " + failure.detail;
}

}  // namespace ebus::openssl
