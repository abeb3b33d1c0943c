#pragma once
// Libraries that only some configurations use (OpenSSL for TLS, WebSocket and password files,
// libmosquitto for an external broker) are opened when first needed rather than linked: an idle
// daemon at the defaults then maps none of their pages (docs/BROKER.md, "The idle daemon").
//
// A library stays loaded for the life of the process once opened; its functions are resolved
// into a table of typed pointers, all at once, so that a missing one fails the load, not a call.

#include <string>

#include "common/expected.hpp"

namespace ebus {

/// dlopen(soname). The error reads "cannot load <soname>: <reason>".
[[nodiscard]] expected<void*, std::string> open_shared_library(const char* soname);

/// The address of `name` in the library `handle` or in the libraries it depends on. The error
/// reads "<soname> has no <name>".
[[nodiscard]] expected<void*, std::string> find_symbol(void* handle, const char* soname,
                                                       const char* name);

/// Sets `slot` (a function pointer) to `name` in `handle`; false, with `error` set, if missing.
template <class Function>
bool resolve(Function*& slot, void* handle, const char* soname, const char* name,
             std::string& error) {
  auto address = find_symbol(handle, soname, name);
  if (!address) {
    if (error.empty()) error = std::move(address.error());
    return false;
  }
  // dlsym returns functions as void*; POSIX guarantees the conversion.
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast)
  slot = reinterpret_cast<Function*>(*address);
  return true;
}

}  // namespace ebus
