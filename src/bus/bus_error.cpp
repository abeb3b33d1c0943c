#include "bus/bus_error.hpp"

#include <string>

namespace ebus::bus {
namespace {

class bus_category_impl final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "bus"; }

  [[nodiscard]] std::string message(int value) const override {
    switch (static_cast<bus_errc>(value)) {
      case bus_errc::no_route:
        return "no route: unknown module or empty group";
      case bus_errc::queue_full:
        return "queue full: the destination's inbox, outbound queue or group backlog is at its "
               "message or byte limit";
      case bus_errc::timeout:
        return "timed out waiting for a response";
      case bus_errc::cancelled:
        return "cancelled: the bus is shutting down or the inbox closed";
      case bus_errc::module_removed:
        return "destination module left the bus";
      case bus_errc::duplicate_module:
        return "a module with this name is already registered";
      case bus_errc::no_pending_request:
        return "no pending request matches the response";
      case bus_errc::duplicate_request:
        return "a request with this message id is already pending";
      case bus_errc::invalid_message:
        return "invalid message for this operation";
      case bus_errc::memory_budget:
        return "memory budget exhausted: the daemon holds as many queued bytes as it may";
      case bus_errc::too_large:
        return "message too large for the destination";
    }
    return "unknown bus error";
  }
};

}  // namespace

const std::error_category& bus_category() noexcept {
  static const bus_category_impl category;
  return category;
}

}  // namespace ebus::bus
