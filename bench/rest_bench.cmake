# rest_bench: service REST throughput against a running twinhubd (see rest_bench.cpp, rest_bench.sh).
add_executable(rest_bench ${CMAKE_CURRENT_LIST_DIR}/rest_bench.cpp)
target_link_libraries(rest_bench PRIVATE twinhub_auth twinhub_asio twinhub_common)
