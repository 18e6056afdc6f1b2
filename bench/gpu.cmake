# gpuals-gpu-bench: the built-in timing of device training on in-memory synthetic data
# (bench/gpu_bench.c), printed by bench/gpu-check.sh. Built only with the CUDA backend; it
# compiles without a GPU and exits 77 when none is usable at run time.
if(GPUALS_HAVE_CUDA)
  add_executable(gpuals-gpu-bench ${CMAKE_CURRENT_SOURCE_DIR}/gpu_bench.c)
  target_include_directories(gpuals-gpu-bench PRIVATE
    ${PROJECT_SOURCE_DIR}/host ${PROJECT_SOURCE_DIR}/cuda)
  target_link_libraries(gpuals-gpu-bench PRIVATE gpuals)
  set_target_properties(gpuals-gpu-bench PROPERTIES LINKER_LANGUAGE CUDA)
endif()
