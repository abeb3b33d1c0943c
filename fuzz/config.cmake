# Configuration loader: any bytes either load or are refused with reasons, never a crash.
ebus_add_fuzzer(fuzz_config ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_config.cpp LIBS ebus_config)
