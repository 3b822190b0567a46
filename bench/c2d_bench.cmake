# c2d_bench: cloud-to-device messages through a running twinhubd, with a mosquitto reference (c2d_bench.cpp, c2d_bench.sh).
add_executable(c2d_bench ${CMAKE_CURRENT_LIST_DIR}/c2d_bench.cpp)
target_link_libraries(c2d_bench PRIVATE twinhub_client twinhub_mqtt_codec twinhub_auth twinhub_asio twinhub_common)
# The Proton-direct sender (many unsettled deliveries) uses Qpid Proton C++ as src/client does.
target_include_directories(c2d_bench PRIVATE ${TWINHUB_PROTON_INCLUDE})
target_link_libraries(c2d_bench PRIVATE ${TWINHUB_PROTON_CPP} ${TWINHUB_PROTON_C})
