#pragma once
// mosquitto's password file, as `mosquitto_passwd` (2.0) writes it: one `username:hash` per line,
// with the hash in one of two forms:
//
//   $7$<iterations>$<base64 salt>$<base64 hash>   PBKDF2-HMAC-SHA512 (mosquitto_passwd's default)
//   $6$<base64 salt>$<base64 hash>                SHA-512 over password then salt (-H sha512)
//
// The salt is 12 bytes and the hash 64, in padded standard base64. Like mosquitto 2.0: blank
// lines and lines starting with '#' are skipped, blanks around the user name and the hash are
// trimmed, and text after a second ':' is ignored. Unlike mosquitto, which skips a bad entry
// with a log line (or silently, for a line without ':'), any problem refuses the whole file: a
// user whose entry is ignored would be locked out without anyone noticing.
//
// Thread safety: distinct objects safe; const member functions of a shared object safe.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/expected.hpp"
#include "common/string_hash.hpp"
#include "mqtt/auth/file_problem.hpp"

namespace ebus::openssl {
struct functions;
}

namespace ebus::mqtt::auth {

/// Most PBKDF2 iterations a file may ask for. mosquitto_passwd writes 101; a much larger count
/// would make every CONNECT of that user stall the broker's single loop thread, so a file asking
/// for more is refused at load rather than at each login.
inline constexpr std::uint32_t max_pbkdf2_iterations = 1'000'000;

enum class login_result : std::uint8_t { accepted, unknown_user, wrong_password };

class password_file {
 public:
  /// Every problem of the text, each with its line; a file with any problem is refused as a
  /// whole. An empty text (or only comments) is a valid file with no users.
  static expected<password_file, std::vector<file_problem>> parse(std::string_view text);

  /// Reads and parses; the error text names the path and, per problem, `line N: reason`.
  static expected<password_file, std::string> load(const std::string& path);

  /// Hashes `password` as the user's entry says and compares in constant time. An unknown user
  /// is checked against a dummy entry of the file's most common hash kind, so the time taken does
  /// not tell whether a user name exists. The password is all of its bytes (mosquitto stops at a
  /// NUL byte; mosquitto_passwd cannot write such a password anyway), except that PBKDF2's HMAC
  /// cannot tell trailing NUL bytes from none.
  [[nodiscard]] login_result check(std::string_view username, std::string_view password) const;

  /// For a CONNECT that names a user but carries no password: mosquitto refuses a known user
  /// then, and so does this, after the same work as check() so that timing reveals nothing.
  /// Returns unknown_user or wrong_password, never accepted.
  [[nodiscard]] login_result check_without_password(std::string_view username) const;

  /// Number of users.
  [[nodiscard]] std::size_t size() const noexcept { return users_.size(); }

 private:
  enum class hash_kind : std::uint8_t { sha512, pbkdf2_sha512 };
  struct entry {
    hash_kind kind = hash_kind::pbkdf2_sha512;
    std::uint32_t iterations = 0;  // pbkdf2 only
    std::array<unsigned char, 12> salt{};
    std::array<unsigned char, 64> hash{};
  };
  using user_map = std::unordered_map<std::string, entry, string_hash, std::equal_to<>>;

  password_file(user_map users, entry dummy, const openssl::functions& ssl)
      : users_(std::move(users)), dummy_(dummy), ssl_(&ssl) {}
  /// Parses one hash field into `e`; returns why it is unusable, or an empty string.
  static std::string parse_hash(const openssl::functions& ssl, std::string_view text, entry& e);
  [[nodiscard]] bool matches(const entry& e, std::string_view password) const;

  user_map users_;
  entry dummy_;
  const openssl::functions* ssl_;  // the hashes' implementation, loaded by parse()
};

}  // namespace ebus::mqtt::auth
