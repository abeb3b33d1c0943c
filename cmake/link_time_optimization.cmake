# Release builds are linked with LTO. Without it every object file keeps its own copy of the
# header-only code it instantiates (fmt's float formatting alone came 13 times): the daemon's
# text was 2.1 MB, of which an idle daemon touches nearly all. With it the text is 1.5 MB
# (docs/BROKER.md, "The idle daemon").
option(EBUS_LTO "Link Release builds with link-time optimization" ON)
if(EBUS_LTO AND NOT EBUS_BUILD_FUZZ AND NOT EBUS_SANITIZE)
  include(CheckIPOSupported)
  check_ipo_supported(RESULT ebus_lto_supported OUTPUT ebus_lto_error LANGUAGES CXX)
  if(ebus_lto_supported)
    set(CMAKE_INTERPROCEDURAL_OPTIMIZATION_RELEASE ON)
  else()
    message(STATUS "LTO unavailable, Release builds link without it: ${ebus_lto_error}")
  endif()
endif()
