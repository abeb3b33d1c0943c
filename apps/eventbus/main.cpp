// eventbus: the EventBus of a KubeEdge edge node as a standalone daemon.
#include <CLI/CLI.hpp>

#include "daemon/daemon.hpp"

int main(int argc, char** argv) {
  CLI::App app{"eventbus - MQTT event bus for KubeEdge edge nodes"};
  ebus::daemon::options opts;
  app.add_option("--log-level", opts.log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
  app.set_version_flag("--version", std::string(EBUS_VERSION));
  CLI11_PARSE(app, argc, argv);
  return ebus::daemon::run(opts);
}
