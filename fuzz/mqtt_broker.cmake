# Broker: the per-connection protocol rules, fed packet sequences (through the real decoder),
# time steps, closes and holds, with the rules' invariants checked after every step.
ebus_add_fuzzer(fuzz_connection_protocol ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_connection_protocol.cpp
  LIBS ebus_mqtt_broker_core)
