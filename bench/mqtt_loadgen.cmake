# MQTT head benchmark: the load generator / in-process benchmark hub (bench/mqtt_bench.sh drives it).
add_executable(mqtt_loadgen ${CMAKE_CURRENT_SOURCE_DIR}/mqtt_loadgen.cpp)
target_link_libraries(mqtt_loadgen PRIVATE twinhub_mqtt twinhub_store twinhub_store_sqlite twinhub_server_core twinhub_malloc)
