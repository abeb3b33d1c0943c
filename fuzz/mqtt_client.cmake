# External broker URL: any bytes parse or are refused with a reason; the password never shows.
ebus_add_fuzzer(fuzz_broker_url ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_broker_url.cpp
  LIBS ebus_mqtt_client_url)
