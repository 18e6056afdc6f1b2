# Tests of the benchmark harness (bench/): the work model and statistics (a cmocka unit test),
# and bench/run end to end at a tiny shape with the built gpuals-bench and gpuals-synth. No test
# asserts a speed.
gpuals_add_test(NAME test_bench_work
  SOURCES test_bench_work.c ${PROJECT_SOURCE_DIR}/bench/bench_work.c
          ${PROJECT_SOURCE_DIR}/bench/bench_ceiling.c
  LABELS cpu)
target_include_directories(test_bench_work PRIVATE ${PROJECT_SOURCE_DIR}/bench)

find_program(GPUALS_PYTHON3 python3)
if(GPUALS_PYTHON3 AND TARGET gpuals-bench AND TARGET gpuals-synth)
  add_test(NAME test_bench_run
           COMMAND ${GPUALS_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/test_bench.py
                   ${PROJECT_SOURCE_DIR}/bench/run $<TARGET_FILE:gpuals-bench>
                   $<TARGET_FILE:gpuals-synth> ${CMAKE_CURRENT_BINARY_DIR}/bench-run)
  set_tests_properties(test_bench_run PROPERTIES LABELS "cpu" TIMEOUT 300)
elseif(NOT GPUALS_PYTHON3)
  message(STATUS "gpu-als: python3 not found; test_bench_run is not registered")
endif()
