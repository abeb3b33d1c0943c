// eventbus: the EventBus of a KubeEdge edge node as a standalone daemon.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "common/heap.hpp"
#include "common/log.hpp"
#include "config/config_loader.hpp"
#include "daemon/daemon.hpp"

namespace {

// Exit status for a command line or configuration that cannot be used (nothing was started).
constexpr int bad_config_status = 2;

void print_issue(std::FILE* out, std::string_view what, const ebus::config::config_issue& issue) {
  if (issue.path.empty()) {
    std::fprintf(out, "%.*s: %s\n", static_cast<int>(what.size()), what.data(),
                 issue.message.c_str());
  } else {
    std::fprintf(out, "%.*s: %s: %s\n", static_cast<int>(what.size()), what.data(),
                 issue.path.c_str(), issue.message.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  ebus::tune_heap();
  CLI::App app{"eventbus - MQTT event bus for KubeEdge edge nodes"};
  ebus::daemon::options opts;
  std::string config_file;
  bool print_default = false;
  bool print_min = false;
  app.add_option("--config", config_file, "edgecore-style YAML configuration file")
      ->check(CLI::ExistingFile);
  app.add_flag("--defaultconfig", print_default, "print the full default configuration and exit");
  app.add_flag("--minconfig", print_min, "print a minimal configuration and exit");
  app.add_option("--log-level", opts.log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
  app.set_version_flag("--version", std::string(EBUS_VERSION));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; CLI11's own codes for errors (105, 109, ...) mean nothing
    // to a service manager: a bad command line is a bad configuration.
    const int status = app.exit(e);
    return status == 0 ? 0 : bad_config_status;
  }

  if (print_default || print_min) {
    const auto text =
        print_default ? ebus::config::default_config_yaml() : ebus::config::min_config_yaml();
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }

  if (config_file.empty()) {
    opts.config = ebus::config::default_config();
  } else {
    auto loaded = ebus::config::load_config(config_file);
    if (!loaded) {
      for (const auto& issue : loaded.error().warnings)
        print_issue(stderr, "config warning", issue);
      for (const auto& issue : loaded.error())
        print_issue(stderr, "config error", issue);
      std::fprintf(stderr, "%s: %zu error(s), not started\n", config_file.c_str(),
                   loaded.error().size());
      return bad_config_status;
    }
    for (const auto& issue : loaded->warnings)
      print_issue(stderr, "config warning", issue);
    opts.config = std::move(loaded->config);
  }
  return ebus::daemon::run(opts);
}
