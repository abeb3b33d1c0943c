#include "mqtt/auth/password_file.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <utility>

#include "openssl/openssl_api.hpp"

namespace ebus::mqtt::auth {

namespace {

// A hash field is "$7$" + iterations + 16 + 88 base64 bytes and three '$': far below this.
constexpr std::size_t max_hash_field = 256;

constexpr bool is_base64_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Decodes padded standard base64 that must come to exactly out.size() bytes (mosquitto_passwd
// writes 12 salt bytes as 16 characters and 64 hash bytes as 88 with "=="). EVP_DecodeBlock
// alone would accept blanks and count padding as data, so the shape is checked first.
template <std::size_t N>
bool decode_base64(const openssl::functions& ssl, std::string_view in,
                   std::array<unsigned char, N>& out) {
  static_assert(N > 0 && N <= 96);
  constexpr std::size_t encoded = (N + 2) / 3 * 4;
  constexpr std::size_t padding = (3 - N % 3) % 3;
  if (in.size() != encoded) return false;
  for (std::size_t i = 0; i < encoded; ++i) {
    const bool pad_position = i >= encoded - padding;
    if (pad_position ? in[i] != '=' : !is_base64_char(in[i])) return false;
  }
  std::array<unsigned char, encoded / 4 * 3> buffer{};
  const int n =
      ssl.EVP_DecodeBlock(buffer.data(), reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n != static_cast<int>(buffer.size())) return false;
  std::copy_n(buffer.begin(), N, out.begin());
  return true;
}

// Splits "$a$b$c" into {"a", "b", "c"}; nothing if the text does not start with '$'.
std::vector<std::string_view> split_hash(std::string_view text) {
  std::vector<std::string_view> parts;
  if (text.empty() || text.front() != '$') return parts;
  std::size_t pos = 1;
  for (;;) {
    const std::size_t next = text.find('$', pos);
    parts.push_back(text.substr(pos, next == std::string_view::npos ? next : next - pos));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return parts;
}

}  // namespace

std::string password_file::parse_hash(const openssl::functions& ssl, std::string_view text,
                                      entry& e) {
  if (text.empty()) return "missing password hash after ':'";
  if (text.size() > max_hash_field) {
    return "password hash longer than " + std::to_string(max_hash_field) + " bytes";
  }
  const std::vector<std::string_view> parts = split_hash(text);
  std::string_view salt;
  std::string_view hash;
  if (parts.size() == 4 && parts[0] == "7") {
    const std::string_view digits = parts[1];
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos) {
      return "iteration count " + detail::quote(digits) + " is not a number";
    }
    std::uint64_t iterations = 0;
    for (const char c : digits) {
      iterations = iterations * 10 + static_cast<std::uint64_t>(c - '0');
      if (iterations > max_pbkdf2_iterations) {
        return "iteration count " + detail::quote(digits) + " is above the limit of " +
               std::to_string(max_pbkdf2_iterations) +
               " (each login would stall the broker); rehash with fewer iterations";
      }
    }
    if (iterations == 0) return "iteration count must be at least 1";
    e.kind = hash_kind::pbkdf2_sha512;
    e.iterations = static_cast<std::uint32_t>(iterations);
    salt = parts[2];
    hash = parts[3];
  } else if (parts.size() == 3 && parts[0] == "6") {
    e.kind = hash_kind::sha512;
    salt = parts[1];
    hash = parts[2];
  } else {
    std::string reason =
        "unsupported password hash: expected $7$<iterations>$<salt>$<hash> (PBKDF2-SHA512) or "
        "$6$<salt>$<hash> (SHA-512), as mosquitto_passwd writes them";
    if (parts.empty()) reason += "; plain-text passwords are hashed by mosquitto_passwd -U";
    return reason;
  }
  if (!decode_base64(ssl, salt, e.salt)) return "salt is not 12 bytes of base64";
  if (!decode_base64(ssl, hash, e.hash)) return "hash is not 64 bytes of base64";
  return {};
}

expected<password_file, std::vector<file_problem>> password_file::parse(std::string_view text) {
  const auto ssl = openssl::load();
  if (!ssl) {
    return fail(std::vector<file_problem>{{0, "its hashes need OpenSSL: " + ssl.error()}});
  }
  detail::problem_list problems;
  user_map users;
  std::unordered_map<std::string_view, std::size_t> first_line;  // views into `text`
  // How often each (kind, iterations) occurs; the most common one is the dummy's.
  std::map<std::pair<hash_kind, std::uint32_t>, std::size_t> kinds;

  detail::for_each_line(text, [&](std::size_t number, std::string_view raw) {
    const std::string_view line = detail::trim(raw);
    // mosquitto only skips '#' in the first column; with blanks before it, it reads a user named
    // "#..." whose entry is then unusable. Either way no one logs in with it.
    if (line.empty() || line.front() == '#') return;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      problems.add(number, "no ':' between user name and password hash");
      return;
    }
    const std::string_view user = detail::trim(line.substr(0, colon));
    std::string_view rest = line.substr(colon + 1);
    // mosquitto takes the hash up to a second ':' and ignores the rest; so do we.
    rest = detail::trim(rest.substr(0, rest.find(':')));

    bool ok = true;
    if (user.empty()) {
      problems.add(number, "empty user name");
      ok = false;
    } else if (user.size() > max_username_length) {
      problems.add(number,
                   "user name longer than " + std::to_string(max_username_length) + " bytes");
      ok = false;
    } else if (user.find('\0') != std::string_view::npos) {
      problems.add(number, "user name contains a NUL byte, which no MQTT user name can");
      ok = false;
    } else if (const auto [it, added] = first_line.emplace(user, number); !added) {
      // mosquitto keeps both and one of them wins; which one is not obvious to whoever edits.
      problems.add(number, "user " + detail::quote(user) + " already defined on line " +
                               std::to_string(it->second));
      ok = false;
    }
    entry e;
    if (std::string reason = parse_hash(**ssl, rest, e); !reason.empty()) {
      problems.add(number, std::move(reason));
      ok = false;
    }
    if (!ok || !problems.empty()) return;  // a refused file needs no user map
    ++kinds[{e.kind, e.iterations}];
    users.emplace(std::string(user), e);
  });

  if (!problems.empty()) return fail(std::move(problems).take());

  // The dummy costs what a real login costs: mosquitto_passwd's default unless the file mostly
  // uses something else. Its hash is no digest of anything, so no password matches it.
  entry dummy;
  dummy.kind = hash_kind::pbkdf2_sha512;
  dummy.iterations = 101;
  std::size_t best = 0;
  for (const auto& [key, count] : kinds) {
    if (count > best) {
      best = count;
      dummy.kind = key.first;
      dummy.iterations = key.second;
    }
  }
  for (std::size_t i = 0; i < dummy.salt.size(); ++i) {
    dummy.salt[i] = static_cast<unsigned char>(i);
  }
  for (std::size_t i = 0; i < dummy.hash.size(); ++i) {
    dummy.hash[i] = static_cast<unsigned char>(0xA5U ^ i);
  }
  return password_file(std::move(users), dummy, **ssl);
}

expected<password_file, std::string> password_file::load(const std::string& path) {
  auto text = detail::read_file(path);
  if (!text) return fail("password file: " + text.error());
  auto parsed = parse(*text);
  if (!parsed) return fail(detail::describe("password file", path, parsed.error()));
  return std::move(*parsed);
}

bool password_file::matches(const entry& e, std::string_view password) const {
  const openssl::functions& ssl = *ssl_;
  if (password.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) return false;
  // OpenSSL wants a non-null pointer even for zero bytes.
  const char* pw = password.empty() ? "" : password.data();
  const int pw_len = static_cast<int>(password.size());
  std::array<unsigned char, 64> digest{};
  bool ok = false;
  if (e.kind == hash_kind::pbkdf2_sha512) {
    ok = ssl.PKCS5_PBKDF2_HMAC(pw, pw_len, e.salt.data(), static_cast<int>(e.salt.size()),
                               static_cast<int>(e.iterations), ssl.EVP_sha512(),
                               static_cast<int>(digest.size()), digest.data()) == 1;
  } else {
    EVP_MD_CTX* ctx = ssl.EVP_MD_CTX_new();
    unsigned int len = 0;
    ok = ctx != nullptr && ssl.EVP_DigestInit_ex(ctx, ssl.EVP_sha512(), nullptr) == 1 &&
         ssl.EVP_DigestUpdate(ctx, pw, password.size()) == 1 &&
         ssl.EVP_DigestUpdate(ctx, e.salt.data(), e.salt.size()) == 1 &&
         ssl.EVP_DigestFinal_ex(ctx, digest.data(), &len) == 1 && len == digest.size();
    ssl.EVP_MD_CTX_free(ctx);
  }
  // Constant time, so the comparison does not leak how much of the hash matched.
  return ok && ssl.CRYPTO_memcmp(digest.data(), e.hash.data(), digest.size()) == 0;
}

login_result password_file::check(std::string_view username, std::string_view password) const {
  const auto it = users_.find(username);
  if (it == users_.end()) {
    (void)matches(dummy_, password);
    return login_result::unknown_user;
  }
  return matches(it->second, password) ? login_result::accepted : login_result::wrong_password;
}

login_result password_file::check_without_password(std::string_view username) const {
  const auto it = users_.find(username);
  const bool known = it != users_.end();
  (void)matches(known ? it->second : dummy_, {});
  return known ? login_result::wrong_password : login_result::unknown_user;
}

}  // namespace ebus::mqtt::auth
