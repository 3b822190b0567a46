# c2d_bench: cloud-to-device messages through a running twinhubd, with a mosquitto reference (c2d_bench.cpp, c2d_bench.sh).
add_executable(c2d_bench ${CMAKE_CURRENT_LIST_DIR}/c2d_bench.cpp)
target_link_libraries(c2d_bench PRIVATE twinhub_client twinhub_mqtt_codec twinhub_auth twinhub_asio twinhub_common)
