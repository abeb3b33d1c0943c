# EBUS_SANITIZE=address,undefined instruments every target of the build.
if(EBUS_SANITIZE)
  add_compile_options(-fsanitize=${EBUS_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${EBUS_SANITIZE})
endif()
