# MQTT over WebSocket: the upgrade request and client frames, fed whole and in pieces, with the
# results compared.
ebus_add_fuzzer(fuzz_websocket_server ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_websocket_server.cpp
  LIBS ebus_mqtt_websocket)
