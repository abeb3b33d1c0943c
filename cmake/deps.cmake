# Every dependency comes from Debian's packages (scripts/install-deps.sh).
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(simdjson 3 REQUIRED)
find_package(spdlog REQUIRED)
# spdlog and fmt compiled in, header only: the daemon formats with a few of fmt's functions and
# maps no libfmt.so (its relocations and symbol tables, 0.13 MiB of an idle daemon's Pss).
add_library(ebus_spdlog INTERFACE)
target_include_directories(ebus_spdlog SYSTEM INTERFACE
                           $<TARGET_PROPERTY:spdlog::spdlog_header_only,INTERFACE_INCLUDE_DIRECTORIES>)
target_compile_definitions(ebus_spdlog INTERFACE SPDLOG_FMT_EXTERNAL)
target_link_libraries(ebus_spdlog INTERFACE fmt::fmt-header-only Threads::Threads)
find_package(tl-expected REQUIRED)
find_package(CLI11 REQUIRED)
find_package(yaml-cpp REQUIRED)
# yaml-cpp reads the configuration at start-up and on reload only: linked from the static archive
# libyaml-cpp-dev ships, the daemon maps none of the shared library's symbol tables (0.25 MiB of
# an idle daemon's Pss; docs/BROKER.md, "The idle daemon").
find_library(EBUS_YAML_CPP_ARCHIVE NAMES libyaml-cpp.a)
add_library(ebus_yaml_cpp INTERFACE)
if(EBUS_YAML_CPP_ARCHIVE)
  target_include_directories(ebus_yaml_cpp SYSTEM INTERFACE
                             $<TARGET_PROPERTY:yaml-cpp,INTERFACE_INCLUDE_DIRECTORIES>)
  target_link_libraries(ebus_yaml_cpp INTERFACE ${EBUS_YAML_CPP_ARCHIVE})
else()
  target_link_libraries(ebus_yaml_cpp INTERFACE yaml-cpp)
endif()
find_package(SQLite3 REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(MOSQUITTO REQUIRED IMPORTED_TARGET libmosquitto)

# The soname a development library links to (libssl.so -> libssl.so.3): what the daemon opens at
# run time for the libraries only some configurations use (src/common/shared_library.hpp). Read
# from the library's dynamic section; the symlink's target where readelf is missing (for
# libhttp_parser.so that is the file name, libhttp_parser.so.2.9.4, not its soname).
function(ebus_soname_of out library)
  if(CMAKE_READELF)
    execute_process(COMMAND ${CMAKE_READELF} -d "${library}" OUTPUT_VARIABLE dynamic
                    RESULT_VARIABLE failed ERROR_QUIET)
    if(NOT failed AND dynamic MATCHES "\\(SONAME\\)[^[]*\\[([^]]+)\\]")
      set(${out} "${CMAKE_MATCH_1}" PARENT_SCOPE)
      return()
    endif()
  endif()
  if(IS_SYMLINK "${library}")
    file(READ_SYMLINK "${library}" library)
  endif()
  get_filename_component(name "${library}" NAME)
  set(${out} "${name}" PARENT_SCOPE)
endfunction()

# libasio-dev (standalone Asio 1.22) ships no CMake package: wrap its headers.
find_path(ASIO_INCLUDE_DIR asio.hpp REQUIRED)
add_library(ebus_asio INTERFACE)
target_include_directories(ebus_asio SYSTEM INTERFACE ${ASIO_INCLUDE_DIR})
target_compile_definitions(ebus_asio INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED)
target_link_libraries(ebus_asio INTERFACE Threads::Threads)

# libxxhash-dev: XXH3 for the string-keyed maps, used inline (header only).
find_path(XXHASH_INCLUDE_DIR xxhash.h REQUIRED)
add_library(ebus_xxhash INTERFACE)
target_include_directories(ebus_xxhash SYSTEM INTERFACE ${XXHASH_INCLUDE_DIR})

if(EBUS_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(EBUS_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
