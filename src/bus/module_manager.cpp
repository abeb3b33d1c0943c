#include "bus/module_manager.hpp"

#include <spdlog/spdlog.h>

#include "common/log.hpp"

namespace ebus::bus {

module_manager::module_manager(bus& b) : bus_(b), state_(std::make_shared<shared_state>()) {
  state_->owner = &b;
}

module_manager::~module_manager() {
  stop_all();
  state_->owner = nullptr;  // handlers of runs that outlive the manager leave the bus alone
}

void module_manager::add(std::unique_ptr<module> m) {
  modules_.push_back(std::move(m));
}

expected<void, std::error_code> module_manager::start_all(const asio::any_io_executor& executor) {
  auto log = log::get("bus");
  std::vector<module*> to_start;
  for (const auto& m : modules_) {
    if (!m->enabled()) {
      log->info("module_disabled name={}", m->name());
      continue;
    }
    if (auto added = bus_.add_module(m->name(), m->group()); !added) {
      for (auto* s : to_start)
        bus_.remove_module(s->name());
      log->error("module_register_failed name={} error={}", m->name(), added.error().message());
      return fail(added.error());
    }
    to_start.push_back(m.get());
  }
  for (auto* m : to_start) {
    started_.push_back(m);
    ++state_->running;
    // The completion handler owns the error path: an exception is logged, never dropped.
    asio::co_spawn(executor, m->run(bus_),
                   [name = m->name(), log, state = state_](const std::exception_ptr& e) {
                     --state->running;
                     if (!e && (state->stopping || state->owner == nullptr)) {
                       log->debug("module_finished name={}", name);
                       return;
                     }
                     std::string what = "returned before it was stopped";
                     if (e) {
                       try {
                         std::rethrow_exception(e);
                       } catch (const std::exception& ex) {
                         what = "threw: " + log::escape(ex.what(), 1024);
                       } catch (...) {
                         what = "threw an unknown exception";
                       }
                     }
                     if (state->owner != nullptr) state->owner->remove_module(name);
                     const auto line = fmt::format("module {} {}", name, what);
                     if (state->on_failure) {
                       state->on_failure(line);
                     } else {
                       log->error("module_failed {}; unregistered", line);
                     }
                   });
    log->info("module_started name={} group={}", m->name(), m->group());
  }
  return {};
}

void module_manager::stop_all() {
  state_->stopping = true;
  while (!started_.empty()) {
    module* m = started_.back();
    started_.pop_back();
    m->stop();
    bus_.remove_module(m->name());
  }
}

}  // namespace ebus::bus
