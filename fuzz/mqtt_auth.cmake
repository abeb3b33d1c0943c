# Password file and ACL file: any text is accepted or refused with reasons, never a crash; an
# accepted ACL rule agrees with topic::matches().
ebus_add_fuzzer(fuzz_password_file ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_password_file.cpp
                LIBS ebus_mqtt_auth)
ebus_add_fuzzer(fuzz_acl_file ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_acl_file.cpp LIBS ebus_mqtt_auth)
