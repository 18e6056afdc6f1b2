#!/usr/bin/env bash
# The whole test suite, as the README and CI run it: configure, build and run every ctest test
# (labels cpu, cli, gpu, slow; the gpu tests report "skipped" where no GPU is usable).
#
#   tests/run-all.sh              build in build-test/ (CUDA compiled when nvcc is found)
#   tests/run-all.sh --sanitize   build in build-asan/ with ASan + UBSan, CPU path, cpu + cli tests
set -euo pipefail
cd "$(dirname "$0")/.."

build=build-test
cmake_args=(-DCMAKE_BUILD_TYPE=Release -DGPUALS_CUDA=AUTO)
ctest_args=()
if [ "${1:-}" = "--sanitize" ]; then
  build=build-asan
  cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DGPUALS_CUDA=OFF -DGPUALS_SANITIZE=ON)
  ctest_args=(-L "cpu|cli")
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi

# nvcc is often installed outside PATH.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$build" "${cmake_args[@]}"
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs" "${ctest_args[@]}"
