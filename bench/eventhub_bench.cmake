# eventhub_bench: the built-in Event Hubs-compatible endpoint of a running twinhubd, with mosquitto
# and store references (eventhub_bench.cpp, eventhub_bench.sh).
add_executable(eventhub_bench ${CMAKE_CURRENT_LIST_DIR}/eventhub_bench.cpp)
target_link_libraries(eventhub_bench PRIVATE twinhub_client twinhub_mqtt_codec twinhub_auth twinhub_asio twinhub_common
                                             twinhub_store twinhub_store_sqlite)
# The partition receivers are written directly on Qpid Proton C++, as src/client's event_consumer is.
target_include_directories(eventhub_bench PRIVATE ${TWINHUB_PROTON_INCLUDE})
target_link_libraries(eventhub_bench PRIVATE ${TWINHUB_PROTON_CPP} ${TWINHUB_PROTON_C})
