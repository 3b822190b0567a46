# jobs_bench: a scheduled twin update job vs the same updates one by one (see jobs_bench.cpp, jobs_bench.sh).
add_executable(jobs_bench ${CMAKE_CURRENT_LIST_DIR}/jobs_bench.cpp)
target_link_libraries(jobs_bench PRIVATE twinhub_auth twinhub_asio twinhub_common Boost::json)
