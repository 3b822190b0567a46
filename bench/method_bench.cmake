# method_bench: direct-method round trips through a running twinhubd (see method_bench.cpp, method_bench.sh).
add_executable(method_bench ${CMAKE_CURRENT_LIST_DIR}/method_bench.cpp)
target_link_libraries(method_bench PRIVATE twinhub_mqtt_codec twinhub_auth twinhub_asio twinhub_common)
