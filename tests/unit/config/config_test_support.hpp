#pragma once
// Helpers shared by the config tests: matchers for issues, loading documents that must load or
// must fail, and temporary files.

#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <string_view>
#include <system_error>
#include <unistd.h>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config_loader.hpp"

namespace ebus::config {

inline void PrintTo(const config_issue& i, std::ostream* os) {
  *os << '{' << i.path << ": " << i.message << '}';
}

namespace test {

/// Matches an issue at exactly `path` whose message contains `message_part`.
inline auto issue(const std::string& path, const std::string& message_part) {
  return ::testing::AllOf(
      ::testing::Field(&config_issue::path, path),
      ::testing::Field(&config_issue::message, ::testing::HasSubstr(message_part)));
}

/// The configuration of a document that must load; fails the test with the errors otherwise.
inline loaded_config load(std::string_view yaml) {
  auto r = parse_config(yaml);
  if (!r) {
    for (const auto& e : r.error())
      ADD_FAILURE() << e.path << ": " << e.message;
    return {};
  }
  return std::move(*r);
}

/// The errors of a document that must not load.
inline std::vector<config_issue> errors_of(std::string_view yaml) {
  auto r = parse_config(yaml);
  if (r) {
    ADD_FAILURE() << "loaded:\n" << yaml;
    return {};
  }
  return std::move(r.error());
}

inline std::string eventbus_doc(std::string_view keys) {
  return "modules:\n  eventBus:\n" + std::string(keys);
}

/// A file (or directory) under the temp directory, removed when the test ends.
class temp_path {
 public:
  explicit temp_path(std::string_view name) {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("ebus_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(++counter) +
             "_" + std::string(name));
  }
  temp_path(const temp_path&) = delete;
  temp_path& operator=(const temp_path&) = delete;
  ~temp_path() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }

  const temp_path& write(std::string_view content) const {
    std::ofstream(path_) << content;
    return *this;
  }
  const temp_path& make_directory() const {
    std::filesystem::create_directory(path_);
    return *this;
  }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace test
}  // namespace ebus::config
