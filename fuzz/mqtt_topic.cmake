# Topic layer: validation must never crash; the trees must agree with topic::matches().
ebus_add_fuzzer(fuzz_topic_filter ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_topic_filter.cpp LIBS ebus_mqtt_topic)
ebus_add_fuzzer(fuzz_topic_tree ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_topic_tree.cpp LIBS ebus_mqtt_topic)
