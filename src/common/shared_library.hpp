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

/// Opens `soname` and fills a table of function pointers: `resolve_all(table, one)` calls
/// `one(table.member, "name")` for each member. Fails, naming the first missing function, unless
/// all of them resolve.
template <class Table, class ResolveAll>
[[nodiscard]] expected<Table, std::string> load_function_table(const char* soname,
                                                               ResolveAll resolve_all) {
  auto handle = open_shared_library(soname);
  if (!handle) return fail(std::move(handle.error()));
  Table table;
  std::string error;
  resolve_all(table, [&](auto& slot, const char* name) {
    (void)resolve(slot, *handle, soname, name, error);
  });
  if (!error.empty()) return fail(std::move(error));
  return table;
}

}  // namespace ebus
