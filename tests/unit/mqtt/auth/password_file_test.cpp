#include "mqtt/auth/password_file.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include "ebus_test/process.hpp"

namespace ebus::mqtt::auth {
namespace {

using namespace std::literals;

// Lines written by mosquitto_passwd 2.0.11, with their passwords, so that verification is tested
// even where the tool is not installed.
constexpr std::string_view alice_pbkdf2 =  // password "secret"
    "alice:$7$101$2Kw0QZPB6ox97lB3$hmHrzi6Sm+O+D5w0z5twQuyt0I3pFPRJHB5xDvU+CgD1BAlCtedAQy0IS+"
    "ShHugWX3HqtZPOkdtkXsGy24ikIw==";
constexpr std::string_view carol_sha512 =  // password "hunter2", -H sha512
    "carol:$6$Rhp43W5KqkGoGUwq$SyW5/IVyueKXaOWrZoUwSKizMgGldGlMW8b2Otyw53EX/RiU8X7Hq9WK/KI+"
    "KKqOcE0tHjWFNftYt2BcY9EMGw==";
constexpr std::string_view dave_5_iterations =  // password "x", -I 5
    "dave:$7$5$Bst5843vOQM6cUYT$LTlidicXVBSFM2LiSxInoHF0JUqkOG61wE3THpK51dfbdIj8HcLm8pLuXaNlgaYZ+"
    "hR1ir45H9F2bVD1ZX0jbg==";
constexpr std::string_view empty_password =  // password ""
    "emptyp:$7$101$0387xFNYmpXFM8Oc$/"
    "6wLwMJKsoBPn4ZmplOL8t7uDo8W4tkdvGk0JHpgi9iNA8QBmTcdyOtFDWK3kUiiH"
    "FEYzYqOUmax1uCSTk5YXw==";

// The part after "name:" of a vector line.
std::string hash_of(std::string_view line) {
  return std::string(line.substr(line.find(':') + 1));
}

std::vector<std::size_t> problem_lines(std::string_view text) {
  const auto parsed = password_file::parse(text);
  std::vector<std::size_t> lines;
  if (!parsed) {
    for (const file_problem& p : parsed.error())
      lines.push_back(p.line);
  }
  return lines;
}

std::string first_reason(std::string_view text) {
  const auto parsed = password_file::parse(text);
  return parsed || parsed.error().empty() ? std::string() : parsed.error().front().reason;
}

bool has_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return true;
  }
  return false;
}

class temp_dir {
 public:
  temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/ebus-auth-XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void write_file(const std::string& path, std::string_view text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Runs mosquitto_passwd with `args`; fails the test when it does not exit 0.
void run_mosquitto_passwd(std::vector<std::string> args) {
  args.insert(args.begin(), "mosquitto_passwd");
  test::process p(args);
  const auto status = p.wait(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value()) << "mosquitto_passwd did not finish";
  ASSERT_EQ(*status, 0) << p.output();
}

class password_file_made_by_mosquitto_passwd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!has_program("mosquitto_passwd")) {
      GTEST_SKIP() << "mosquitto_passwd is not installed (Debian package mosquitto)";
    }
    ASSERT_FALSE(dir_.path().empty()) << "mkdtemp failed";
  }
  [[nodiscard]] std::string file(const std::string& name) const { return dir_.path() + "/" + name; }

 private:
  temp_dir dir_;
};

// --- files made by the real mosquitto_passwd ----------------------------------------------------

TEST_F(password_file_made_by_mosquitto_passwd, pbkdf2_file_accepts_right_password_only) {
  const std::string path = file("passwd");
  run_mosquitto_passwd({"-c", "-b", path, "alice", "secret"});
  run_mosquitto_passwd({"-b", path, "bob", "p:w d$7$"});  // ':' and '$' inside the password
  const auto pw = password_file::load(path);
  ASSERT_TRUE(pw) << pw.error();
  EXPECT_EQ(pw->size(), 2U);
  EXPECT_EQ(pw->check("alice", "secret"), login_result::accepted);
  EXPECT_EQ(pw->check("alice", "Secret"), login_result::wrong_password);
  EXPECT_EQ(pw->check("alice", "secret "), login_result::wrong_password);
  EXPECT_EQ(pw->check("alice", ""), login_result::wrong_password);
  EXPECT_EQ(pw->check("bob", "p:w d$7$"), login_result::accepted);
  EXPECT_EQ(pw->check("bob", "secret"), login_result::wrong_password);
  EXPECT_EQ(pw->check("carol", "secret"), login_result::unknown_user);
  EXPECT_EQ(pw->check("Alice", "secret"), login_result::unknown_user);  // names are exact
}

TEST_F(password_file_made_by_mosquitto_passwd, sha512_file_accepts_right_password_only) {
  const std::string path = file("passwd");
  run_mosquitto_passwd({"-H", "sha512", "-c", "-b", path, "carol", "hunter2"});
  const auto pw = password_file::load(path);
  ASSERT_TRUE(pw) << pw.error();
  EXPECT_EQ(pw->size(), 1U);
  EXPECT_EQ(pw->check("carol", "hunter2"), login_result::accepted);
  EXPECT_EQ(pw->check("carol", "hunter3"), login_result::wrong_password);
  EXPECT_EQ(pw->check("dave", "hunter2"), login_result::unknown_user);
}

TEST_F(password_file_made_by_mosquitto_passwd, mixed_kinds_and_updated_entries) {
  const std::string path = file("passwd");
  run_mosquitto_passwd({"-c", "-b", path, "alice", "one"});
  run_mosquitto_passwd({"-H", "sha512", "-b", path, "carol", "two"});
  run_mosquitto_passwd({"-b", path, "alice", "three"});  // replaces alice's entry
  run_mosquitto_passwd({"-b", path, "empty", ""});
  const auto pw = password_file::load(path);
  ASSERT_TRUE(pw) << pw.error();
  EXPECT_EQ(pw->size(), 3U);
  EXPECT_EQ(pw->check("alice", "three"), login_result::accepted);
  EXPECT_EQ(pw->check("alice", "one"), login_result::wrong_password);
  EXPECT_EQ(pw->check("carol", "two"), login_result::accepted);
  EXPECT_EQ(pw->check("empty", ""), login_result::accepted);
  EXPECT_EQ(pw->check_without_password("empty"), login_result::wrong_password);
}

TEST_F(password_file_made_by_mosquitto_passwd, deleted_user_is_unknown) {
  const std::string path = file("passwd");
  run_mosquitto_passwd({"-c", "-b", path, "alice", "a"});
  run_mosquitto_passwd({"-b", path, "bob", "b"});
  run_mosquitto_passwd({"-D", path, "alice"});
  const auto pw = password_file::load(path);
  ASSERT_TRUE(pw) << pw.error();
  EXPECT_EQ(pw->check("alice", "a"), login_result::unknown_user);
  EXPECT_EQ(pw->check("bob", "b"), login_result::accepted);
}

// --- verification against fixed vectors ----------------------------------------------------------

TEST(password_file, verifies_vectors_of_both_kinds) {
  const std::string text = std::string(alice_pbkdf2) + "\n" + std::string(carol_sha512) + "\n" +
                           std::string(dave_5_iterations) + "\n" + std::string(empty_password) +
                           "\n";
  const auto pw = password_file::parse(text);
  ASSERT_TRUE(pw);
  EXPECT_EQ(pw->size(), 4U);
  EXPECT_EQ(pw->check("alice", "secret"), login_result::accepted);
  EXPECT_EQ(pw->check("alice", "hunter2"), login_result::wrong_password);
  EXPECT_EQ(pw->check("carol", "hunter2"), login_result::accepted);
  EXPECT_EQ(pw->check("carol", "secret"), login_result::wrong_password);
  EXPECT_EQ(pw->check("dave", "x"), login_result::accepted);  // iterations from the file
  EXPECT_EQ(pw->check("emptyp", ""), login_result::accepted);
  EXPECT_EQ(pw->check("emptyp", "x"), login_result::wrong_password);
  EXPECT_EQ(pw->check("nobody", "secret"), login_result::unknown_user);
}

TEST(password_file, password_bytes_after_nul_count) {
  // mosquitto compares up to a NUL byte; here every byte is part of the password.
  const auto pw =
      password_file::parse(std::string(alice_pbkdf2) + "\n" + std::string(carol_sha512));
  ASSERT_TRUE(pw);
  EXPECT_EQ(pw->check("alice", "secret\0x"sv), login_result::wrong_password);
  EXPECT_EQ(pw->check("alice", "sec\0ret"sv), login_result::wrong_password);
  EXPECT_EQ(pw->check("carol", "hunter2\0"sv), login_result::wrong_password);
  // HMAC pads a short key with zero bytes, so under PBKDF2 trailing NULs cannot be told apart.
  EXPECT_EQ(pw->check("alice", "secret\0"sv), login_result::accepted);
}

TEST(password_file, connect_without_password_is_refused) {
  const auto pw = password_file::parse(alice_pbkdf2);
  ASSERT_TRUE(pw);
  EXPECT_EQ(pw->check_without_password("alice"), login_result::wrong_password);
  EXPECT_EQ(pw->check_without_password("bob"), login_result::unknown_user);
}

// --- the text format
// -------------------------------------------------------------------------------

TEST(password_file, empty_file_has_no_users) {
  for (const std::string_view text : {""sv, "\n"sv, "\n\n  \n\t\n"sv, "# only a comment\n"sv}) {
    const auto pw = password_file::parse(text);
    ASSERT_TRUE(pw) << text;
    EXPECT_EQ(pw->size(), 0U);
    EXPECT_EQ(pw->check("alice", "secret"), login_result::unknown_user);
    EXPECT_EQ(pw->check_without_password("alice"), login_result::unknown_user);
  }
}

TEST(password_file, comments_blanks_and_crlf_are_skipped) {
  const std::string text = "# users\r\n\r\n   # indented comment\n" + std::string(alice_pbkdf2) +
                           "\r\n\n" + std::string(carol_sha512);  // last line without '\n'
  const auto pw = password_file::parse(text);
  ASSERT_TRUE(pw);
  EXPECT_EQ(pw->size(), 2U);
  EXPECT_EQ(pw->check("alice", "secret"), login_result::accepted);
  EXPECT_EQ(pw->check("carol", "hunter2"), login_result::accepted);
}

TEST(password_file, blanks_around_fields_and_text_after_a_second_colon_are_ignored) {
  // As mosquitto 2.0.11 does (checked by logging in to it with such a file).
  const std::string text = "  alice \t:  " + hash_of(alice_pbkdf2) + "  :extra\n";
  const auto pw = password_file::parse(text);
  ASSERT_TRUE(pw);
  EXPECT_EQ(pw->check("alice", "secret"), login_result::accepted);
  EXPECT_EQ(pw->check(" alice ", "secret"), login_result::unknown_user);
}

TEST(password_file, user_name_may_contain_blanks_inside) {
  const auto pw = password_file::parse("john doe:" + hash_of(alice_pbkdf2));
  ASSERT_TRUE(pw);
  EXPECT_EQ(pw->check("john doe", "secret"), login_result::accepted);
}

TEST(password_file, malformed_lines_each_give_a_problem_on_their_line) {
  const std::string salt = "2Kw0QZPB6ox97lB3";
  const std::string hash = hash_of(alice_pbkdf2).substr(hash_of(alice_pbkdf2).rfind('$') + 1);
  const std::string text =
      "# header\n"                                               // 1
      "\n"                                                       // 2
      + std::string(alice_pbkdf2) + "\n"                         // 3 fine
      + "no colon here\n"                                        // 4
      + ":" + hash_of(carol_sha512) + "\n"                       // 5 empty name
      + "bob:\n"                                                 // 6 no hash
      + "bob2:plaintext\n"                                       // 7 not hashed
      + "bob3:$7$many$" + salt + "$" + hash + "\n"               // 8 iterations
      + "bob4:$7$0$" + salt + "$" + hash + "\n"                  // 9 zero
      + "bob5:$6$c2hvcnQ=$" + hash + "\n"                        // 10 salt size
      + "bob6:$7$101$" + salt + "$" + hash.substr(0, 86) + "\n"  // 11 no pad
      + "bob7:$5$" + salt + "$" + hash + "\n"                    // 12 kind
      + "bob8:$7$101$" + salt + "\n"                             // 13 no hash
      + std::string(alice_pbkdf2) + "\n"                         // 14 duplicate
      + "bob9:$7$101$" + salt + "$" + hash + "$\n"               // 15 extra '$'
      + "bob10:$7$101$" + salt + "!$" + hash + "\n";             // 16 bad base64
  EXPECT_EQ(problem_lines(text),
            (std::vector<std::size_t>{4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}));
}

TEST(password_file, problem_reasons_say_what_is_wrong) {
  EXPECT_NE(first_reason("alice\n").find("no ':'"), std::string::npos);
  EXPECT_NE(first_reason("alice:\n").find("missing password hash"), std::string::npos);
  EXPECT_NE(first_reason("alice:secret\n").find("mosquitto_passwd -U"), std::string::npos);
  EXPECT_NE(first_reason(std::string(alice_pbkdf2) + "\n" + std::string(alice_pbkdf2))
                .find("already defined on line 1"),
            std::string::npos);
  EXPECT_NE(first_reason("a:$6$AAAA$" + std::string(88, 'A')).find("salt"), std::string::npos);
}

TEST(password_file, iteration_count_is_bounded) {
  std::string at_limit(alice_pbkdf2);
  at_limit.replace(at_limit.find("$101$"), 5, "$" + std::to_string(max_pbkdf2_iterations) + "$");
  EXPECT_TRUE(password_file::parse(at_limit));  // only parsed: checking it would take a while

  for (const std::string count : {"1000001", "1000000000", "99999999999999999999999"}) {
    std::string above(alice_pbkdf2);
    above.replace(above.find("$101$"), 5, "$" + count + "$");
    const auto parsed = password_file::parse("# x\n" + above);
    ASSERT_FALSE(parsed) << count;
    ASSERT_EQ(parsed.error().size(), 1U);
    EXPECT_EQ(parsed.error()[0].line, 2U);
    EXPECT_NE(parsed.error()[0].reason.find("above the limit of 1000000"), std::string::npos)
        << parsed.error()[0].reason;
  }
}

TEST(password_file, user_name_limits) {
  const std::string hash = hash_of(alice_pbkdf2);
  EXPECT_TRUE(password_file::parse(std::string(max_username_length, 'u') + ":" + hash));
  EXPECT_EQ(problem_lines(std::string(max_username_length + 1, 'u') + ":" + hash),
            std::vector<std::size_t>{1});
  EXPECT_EQ(problem_lines("a\0b:"s + hash), std::vector<std::size_t>{1});
}

TEST(password_file, problem_list_is_capped) {
  std::string text;
  for (int i = 0; i < 1000; ++i)
    text += "garbage\n";
  const auto parsed = password_file::parse(text);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().size(), max_reported_problems + 1);
  EXPECT_EQ(parsed.error().back().line, max_reported_problems + 1);
}

TEST(password_file, load_names_the_path_and_the_lines) {
  temp_dir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/passwd";
  write_file(path, std::string(alice_pbkdf2) + "\nbroken\nalso broken\n");
  const auto pw = password_file::load(path);
  ASSERT_FALSE(pw);
  EXPECT_NE(pw.error().find(path), std::string::npos) << pw.error();
  EXPECT_NE(pw.error().find("line 2: "), std::string::npos) << pw.error();
  EXPECT_NE(pw.error().find("line 3: "), std::string::npos) << pw.error();

  const auto missing = password_file::load(dir.path() + "/absent");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find(dir.path() + "/absent"), std::string::npos) << missing.error();

  EXPECT_FALSE(password_file::load(dir.path()));  // a directory
}

}  // namespace
}  // namespace ebus::mqtt::auth
