# gpuals-bench: times each phase of training and querying (load, YtY, half-iterations, loss,
# top-n, similar items; upload on a GPU) through the library's internal functions, with the
# bytes/flops floor and the machine's measured ceilings beside every time. bench/run drives it.
add_executable(gpuals-bench
  ${CMAKE_CURRENT_SOURCE_DIR}/bench.c
  ${CMAKE_CURRENT_SOURCE_DIR}/bench_ceiling.c
  ${CMAKE_CURRENT_SOURCE_DIR}/bench_cpu.c
  ${CMAKE_CURRENT_SOURCE_DIR}/bench_gpu.c
  ${CMAKE_CURRENT_SOURCE_DIR}/bench_hooks.c
  ${CMAKE_CURRENT_SOURCE_DIR}/bench_query.c
  ${CMAKE_CURRENT_SOURCE_DIR}/bench_work.c)
target_include_directories(gpuals-bench PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/host)
target_link_libraries(gpuals-bench PRIVATE gpuals)
if(GPUALS_HAVE_CUDA)
  target_compile_definitions(gpuals-bench PRIVATE GPUALS_HAVE_CUDA=1)
  target_include_directories(gpuals-bench PRIVATE ${PROJECT_SOURCE_DIR}/cuda)
  set_target_properties(gpuals-bench PROPERTIES LINKER_LANGUAGE CUDA)
endif()
