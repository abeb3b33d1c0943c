# Code that runs once, at start-up (the command line, the configuration, wiring the modules), is
# compiled for size in Release builds: an idle daemon keeps all of its text mapped, and -Os takes
# 0.2 MB off it (docs/BROKER.md, "The idle daemon"). The message paths stay at -O3.
function(ebus_optimize_for_size target)
  target_compile_options(${target} PRIVATE $<$<CONFIG:Release>:-Os>)
endfunction()

function(ebus_optimize_sources_for_size)
  set_property(SOURCE ${ARGN} APPEND PROPERTY COMPILE_OPTIONS $<$<CONFIG:Release>:-Os>)
endfunction()
