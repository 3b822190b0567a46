# query_bench: twin query latency and throughput over a large fleet (src/query).
if(TARGET twinhub_query AND TARGET twinhub_store)
  add_executable(query_bench ${CMAKE_CURRENT_LIST_DIR}/query_bench.cpp)
  target_link_libraries(query_bench PRIVATE twinhub_query twinhub_store)
endif()
