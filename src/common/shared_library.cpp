#include "common/shared_library.hpp"

#include <dlfcn.h>

namespace ebus {

expected<void*, std::string> open_shared_library(const char* soname) {
  // RTLD_LOCAL: its symbols serve only the lookups made here, never interpose on others.
  void* handle = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = ::dlerror();
    return fail("cannot load " + std::string(soname) + ": " +
                (reason != nullptr ? reason : "unknown error"));
  }
  return handle;
}

expected<void*, std::string> find_symbol(void* handle, const char* soname, const char* name) {
  ::dlerror();
  void* address = ::dlsym(handle, name);
  if (address == nullptr) return fail(std::string(soname) + " has no " + name);
  return address;
}

}  // namespace ebus
