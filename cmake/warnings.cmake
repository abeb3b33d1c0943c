# ebus_warnings: the warning set every project target links against.
add_library(ebus_warnings INTERFACE)
target_compile_options(ebus_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  -Wcast-align -Wimplicit-fallthrough
  $<$<BOOL:${EBUS_WERROR}>:-Werror>
  # GCC 12 reports false -Wrestrict positives on std::string concatenation at -O3 (GCC PR 105329).
  $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>)
