#pragma once
// Errors of bus operations: "did the bus deliver?" — never what a module answered; the answer
// lives in the response message.

#include <system_error>

namespace ebus::bus {

enum class bus_errc : int {
  no_route = 1,        ///< no module of that name, or a group without members
  queue_full,          ///< the destination's queue (inbox, group backlog or a remote module's
                       ///< outbound queue) is at its message or byte limit; not queued
  timeout,             ///< no (complete) response before the deadline
  cancelled,           ///< the bus shut down, or the inbox was closed while waiting
  module_removed,      ///< the destination left the bus while a request to it was pending
  duplicate_module,    ///< a module of that name is already registered
  no_pending_request,  ///< a response whose parent_msg_id matches no waiting request
  duplicate_request,   ///< a sync request reused the id of one still pending
  invalid_message,     ///< a message the operation cannot accept (e.g. response without parent id)
  memory_budget,       ///< the daemon's memory budget is used up; the message was not kept
  too_large,           ///< larger than the destination can ever take (e.g. once encoded for a
                       ///< remote module, over its per-message limit); not delivered
};

[[nodiscard]] const std::error_category& bus_category() noexcept;

[[nodiscard]] inline std::error_code make_error_code(bus_errc e) noexcept {
  return {static_cast<int>(e), bus_category()};
}

}  // namespace ebus::bus

template <>
struct std::is_error_code_enum<ebus::bus::bus_errc> : std::true_type {};
