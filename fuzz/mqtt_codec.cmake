# MQTT codec: the stream decoder, with a re-encode/re-decode consistency check on every packet.
ebus_add_fuzzer(fuzz_mqtt_decode ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_mqtt_decode.cpp
  LIBS ebus_mqtt_codec)
