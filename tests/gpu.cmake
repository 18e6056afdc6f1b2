# GPU tests (the CUDA backend, cuda/). Only built when the backend is (GPUALS_HAVE_CUDA).
#   test_gpu_als    device training against the CPU engine      label gpu  (77 = no device)
#   test_gpu_topn   device top-n against topn_batch             label gpu  (77 = no device)
#   test_gpu_probe  probe, argument checks, clean NO_DEVICE      label cpu  (runs everywhere)
# Each binary takes an optional cmocka test-name filter (glob) as its first argument, which
# bench/gpu-check.sh uses to run a few small tests under compute-sanitizer.
if(GPUALS_HAVE_CUDA)
  gpuals_add_test(NAME test_gpu_als SOURCES test_gpu_als.c test_gpu_util.c LABELS gpu)
  gpuals_add_test(NAME test_gpu_topn SOURCES test_gpu_topn.c test_gpu_util.c LABELS gpu)
  gpuals_add_test(NAME test_gpu_probe SOURCES test_gpu_probe.c test_gpu_util.c LABELS cpu)
  foreach(t test_gpu_als test_gpu_topn test_gpu_probe)
    target_include_directories(${t} PRIVATE ${PROJECT_SOURCE_DIR}/cuda)
  endforeach()
  set_tests_properties(test_gpu_als PROPERTIES TIMEOUT 140)
  # One GPU test at a time under ctest -j: a top-n test takes nearly all device memory.
  set_tests_properties(test_gpu_als test_gpu_topn test_gpu_probe PROPERTIES RESOURCE_LOCK gpu)
endif()
