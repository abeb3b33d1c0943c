#include "ebus_test/transport.hpp"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

#include "ebus_test/process.hpp"

namespace ebus::test {
namespace {

transport_kind parse_transport(std::string_view value) {
  if (value.empty()) return transport_kind::tcp;
  if (const auto kind = mqtt::transport::parse_transport_kind(value)) return *kind;
  throw std::invalid_argument("EBUS_TEST_TRANSPORT='" + std::string(value) +
                              "': expected tcp, tls, ws or wss");
}

/// The generated files and their directory, removed when the process exits.
class generated_tls_files {
 public:
  generated_tls_files() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ebus-test-tls-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp");
    }
    dir_ = pattern;
    files_.cert_file = (dir_ / "cert.pem").string();
    files_.key_file = (dir_ / "key.pem").string();
    // P-256 rather than RSA: ctest runs every test in its own process, and an RSA key costs
    // up to a second of key generation each time on a busy machine, an EC key milliseconds.
    process openssl({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                     "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
                     files_.key_file, "-out", files_.cert_file});
    if (const auto status = openssl.wait(std::chrono::seconds(30)); status != 0) {
      const std::string output = openssl.output();
      remove();
      throw std::runtime_error("openssl req failed: " + output);
    }
  }
  generated_tls_files(const generated_tls_files&) = delete;
  generated_tls_files& operator=(const generated_tls_files&) = delete;
  ~generated_tls_files() { remove(); }

  [[nodiscard]] const tls_files& files() const noexcept { return files_; }

 private:
  void remove() noexcept {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::filesystem::path dir_;
  tls_files files_;
};

}  // namespace

transport_kind test_transport() {
  static const transport_kind kind = [] {
    const char* value = std::getenv("EBUS_TEST_TRANSPORT");
    return parse_transport(value == nullptr ? "" : value);
  }();
  return kind;
}

const tls_files& test_tls_files() {
  static const generated_tls_files generated;
  return generated.files();
}

}  // namespace ebus::test
