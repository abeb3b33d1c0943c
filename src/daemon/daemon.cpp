#include "daemon/daemon.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <malloc.h>
#include <sys/resource.h>

#include <spdlog/spdlog.h>

#include "common/asio.hpp"
#include "common/log.hpp"
#include "daemon/app.hpp"

namespace ebus::daemon {
namespace {

// How long buffered publishes to the external broker may delay the exit.
constexpr auto flush_timeout = std::chrono::seconds(3);

// Without a hard limit, the kernel still refuses a soft limit above fs.nr_open (2^20 by default).
constexpr rlim_t unlimited_soft_target = rlim_t{1} << 20;

const char* signal_name(int signo) {
  switch (signo) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGQUIT:
      return "SIGQUIT";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "unknown";
  }
}

}  // namespace

void raise_descriptor_limit() {
  auto log = log::get("daemon");
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
    log->warn("fd_limit unknown: getrlimit failed ({})", std::strerror(errno));
    return;
  }
  const rlim_t before = lim.rlim_cur;
  const rlim_t target = lim.rlim_max == RLIM_INFINITY ? unlimited_soft_target : lim.rlim_max;
  if (before != RLIM_INFINITY && before < target) {
    lim.rlim_cur = target;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
      log->warn("fd_limit soft={} hard={}: cannot raise the soft limit ({})", before, lim.rlim_max,
                std::strerror(errno));
      return;
    }
  }
  (void)::getrlimit(RLIMIT_NOFILE, &lim);
  const auto text = [](rlim_t v) {
    return v == RLIM_INFINITY ? std::string("unlimited") : std::to_string(v);
  };
  log->info("fd_limit soft={} hard={} raised_from={}", text(lim.rlim_cur), text(lim.rlim_max),
            text(before));
}

int serve(asio::io_context& io, app& node) {
  auto log = log::get("daemon");
  int status = 0;
  bool stopping = false;
  bool stopped = false;

  // Installed before start(), so that a stop signal during start-up waits for the loop instead
  // of killing the process halfway.
  asio::signal_set signals(io, SIGINT, SIGTERM, SIGQUIT);
  signals.add(SIGHUP);
  auto stop = [&] {
    if (stopping) return;
    stopping = true;
    node.stop(flush_timeout, [&] {
      stopped = true;
      signals.cancel();  // the last work of the loop: run() returns
    });
  };
  std::function<void(std::error_code, int)> on_signal = [&](std::error_code ec, int signo) {
    if (ec || stopped) return;
    if (signo == SIGHUP) {
      // The password file, the ACL file and the certificates are reloaded; the rest of the
      // configuration needs a restart, and the log goes to stderr, so there is nothing to reopen.
      if (auto reloaded = node.reload_security(); reloaded) {
        log->info(
            "signal=SIGHUP: password file, ACL file and certificates reloaded; other "
            "configuration changes need a restart");
      } else {
        log->error("signal=SIGHUP: reload failed, the previous rules stay in force: {}",
                   reloaded.error());
      }
    } else if (stopping) {
      log->info("signal={}: already stopping", signal_name(signo));
    } else {
      log->info("shutdown signal={}", signal_name(signo));
      stop();
    }
    if (!stopped) signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);

  const auto fatal = [&](const std::string& what) {
    if (stopping) return;
    log->critical("fatal {}: stopping, exit status {} (for a restart)", what, failure_status);
    status = failure_status;
    stop();
  };
  node.on_failure(fatal);

  if (auto started = node.start(); !started) {
    log->error("startup_failed {}", started.error());
    return failure_status;
  }
  log->info("ready {}", node.describe());
  // Start-up (the configuration, the store, the socket probes) frees more than an idle daemon
  // keeps; hand those heap pages back now instead of holding them for the daemon's life.
  ::malloc_trim(0);
  for (;;) {
    try {
      io.run();
      break;
    } catch (const std::exception& e) {
      // run() may be called again after a handler threw; stop in order, then exit non-zero.
      const auto what =
          fmt::format("unhandled exception on the loop: {}", log::escape(e.what(), 1024));
      if (stopping) log->critical("fatal {} while stopping", what);
      fatal(what);
      status = failure_status;
    }
  }
  log->info("stopped exit_status={}", status);
  return status;
}

int run(const options& opts) {
  if (!log::set_level(opts.log_level)) {
    log::get("daemon")->error("unknown log level '{}'", opts.log_level);
    return 2;
  }
  // A closed stderr pipe must not kill the daemon; sockets use MSG_NOSIGNAL anyway.
  std::signal(SIGPIPE, SIG_IGN);
  raise_descriptor_limit();

  // One loop thread runs the bus, the brokers, the modules and all timers
  // (docs/ARCHITECTURE.md); SQLite runs on the store thread.
  asio::io_context io(1);
  app node(io, opts.config);
  return serve(io, node);
}

}  // namespace ebus::daemon
