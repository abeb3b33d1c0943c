ebus_add_fuzzer(fuzz_bus_message ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_bus_message.cpp LIBS ebus_bus_message)
