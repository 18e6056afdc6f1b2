#!/usr/bin/env bash
# bench/gpu-check.sh - everything a machine with a GPU should run, in one go, within 8 minutes:
#
#   1. configure a fresh build for sm_90 (-DCMAKE_CUDA_ARCHITECTURES=90 -DGPUALS_CUDA=ON, Ninja
#      where there is one, warnings reported but not fatal: the compiler there may be newer)
#      and build it; check that every library the binaries need is found, and that the probe
#      sees the GPU (else stop at once: nothing after it can run);
#   2. run the GPU tests (ctest: test_gpu_als, test_gpu_topn, test_gpu_probe) with
#      GPUALS_REQUIRE_GPU=1, so a test that finds no GPU fails instead of skipping, rerunning
#      any failure with GPUALS_CUDA_SYNC=1;
#   3. print the built-in benchmark (gpuals-gpu-bench): ML-20M shape at 128 factors and 3 CG
#      steps (ms per full iteration, GB/s, GFLOP/s) and ML-1M shape at 100 factors for 30
#      iterations (total ms), both CG forms, plus Cholesky and a check against the CPU;
#   4. run compute-sanitizer (memcheck, racecheck, synccheck) on a few small GPU tests (all
#      skipped if the first shows that the sanitizer cannot reach the device);
#   5. if time remains, the full harness: bench/run --device gpu (ML-1M shape, both forms).
#
# Steps run in order of value and each gets what is left of an overall deadline (default 470 s,
# GPU_CHECK_DEADLINE to change), so the script ends in time even when a step hangs. With $OUT
# set, the log (gpu-check.log), the harness results and a summary are written there.
#
# The GPU machine has CUDA, CMake and a compiler but not the Debian libraries gpu-als links
# (OpenBLAS, LAPACKE, libcsv, Jansson, uthash, xxHash, cmocka) and cannot install them. Where
# they are missing, gather them first on a development machine with bench/gpu-deps.sh and send
# .gpudeps/ along (the device tool's `carry`); this script unpacks them outside the tree (a
# fresh ${TMPDIR:-/tmp}/gpuals-sysroot.XXXXXX, removed at the end; never into /) and builds
# against them.
#
# Usage: bench/gpu-check.sh [BUILD_DIR]     (default: build-gpucheck in the repository root)
# Exit: 0 when the build and every test passed, 1 otherwise (the summary says which step).
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-gpucheck}
deadline=${GPU_CHECK_DEADLINE:-470}
jobs=$(nproc 2>/dev/null || echo 4)
out=${OUT:-}
start=$SECONDS
summary=()
failed=0

# Everything also goes to the log when $OUT is set.
if [ -n "$out" ]; then
    mkdir -p "$out"
    exec > >(tee -a "$out/gpu-check.log") 2>&1
fi

# Seconds left before the deadline.
left() { echo $((deadline - (SECONDS - start))); }

# run_step NAME CAP CMD...: run CMD with a timeout of min(CAP, time left - 15) (the 10 s grace
# of --kill-after included, so a step never runs past the deadline), record the result. A step
# that does not get at least 20 seconds is skipped, and returns 75: a step not run has not
# passed. Its output is also kept in $steplog.
steplog=$(mktemp)
sysroot=
trap 'rm -f "$steplog"; [ -n "$sysroot" ] && rm -rf "$sysroot"' EXIT
run_step() {
    local name=$1 cap=$2
    shift 2
    local budget=$(($(left) - 15))
    [ "$budget" -gt "$cap" ] && budget=$cap
    if [ "$budget" -lt 20 ]; then
        echo "=== $name: skipped (only $(left) s left)"
        summary+=("$(printf '%-34s skipped (time)' "$name")")
        : > "$steplog"
        return 75
    fi
    echo "=== $name (timeout ${budget} s)"
    local t0=$SECONDS rc=0
    timeout --kill-after=10 "$budget" "$@" < /dev/null 2>&1 | tee "$steplog"
    rc=${PIPESTATUS[0]}
    local took=$((SECONDS - t0)) verdict=ok
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        verdict="TIMED OUT"
    elif [ "$rc" -ne 0 ]; then
        verdict="FAILED (exit $rc)"
    fi
    summary+=("$(printf '%-34s %-18s %4d s' "$name" "$verdict" "$took")")
    echo "=== $name: $verdict in ${took} s"
    return "$rc"
}

# The machine.
echo "gpu-check: $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname), $jobs cores"
echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
else
    echo "nvidia-smi: not found"
fi
nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
"$nvcc_bin" --version 2>/dev/null | tail -2
# The toolkit's libraries (cuBLAS, cuSPARSE, cuSOLVER) are linked dynamically, and the build
# records no path to them: name the toolkit's library folders for the loader.
cuda_root=$(dirname "$(dirname "$(readlink -f "$nvcc_bin")")")
for d in "$cuda_root/targets/x86_64-linux/lib" "$cuda_root/lib64" "$cuda_root/lib"; do
    [ -d "$d" ] && export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
done
export GPUALS_REQUIRE_GPU=1

# 0. Carried libraries (bench/gpu-deps.sh), unpacked beside the tree, never into /.
deps=$root/.gpudeps
if ls "$deps"/*.deb > /dev/null 2>&1; then
    sysroot=$(mktemp -d "${TMPDIR:-/tmp}/gpuals-sysroot.XXXXXX")
    for f in "$deps"/*.deb; do
        dpkg-deb -x "$f" "$sysroot" 2> /dev/null && continue
        # No dpkg: a .deb is an ar archive whose data.tar.* member holds the files.
        member=$(ar t "$f" 2> /dev/null | grep '^data\.tar' | head -1)
        if [ -n "$member" ] && ar p "$f" "$member" > "$sysroot/.member" &&
                tar -xf "$sysroot/.member" -C "$sysroot"; then
            rm -f "$sysroot/.member"
        else
            echo "gpu-check: could not unpack $f"
        fi
    done
    lib=$sysroot/usr/lib/x86_64-linux-gnu
    # Debian places BLAS and LAPACK behind alternatives, which unpacking does not set up: name
    # OpenBLAS's folder directly, and give pkg-config the blas and lapack it would link.
    ln -sf blas-openblas.pc "$lib/openblas-pthread/pkgconfig/blas.pc"
    ln -sf lapack-openblas.pc "$lib/openblas-pthread/pkgconfig/lapack.pc"
    libdirs=$lib:$lib/openblas-pthread:$lib/blas:$lib/lapack
    export PATH=$sysroot/usr/bin:$PATH
    export LD_LIBRARY_PATH=$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LIBRARY_PATH=$libdirs${LIBRARY_PATH:+:$LIBRARY_PATH}
    export CPATH=$sysroot/usr/include:$sysroot/usr/include/x86_64-linux-gnu${CPATH:+:$CPATH}
    export PKG_CONFIG_PATH=$lib/pkgconfig:$lib/openblas-pthread/pkgconfig
    export PKG_CONFIG_SYSROOT_DIR=$sysroot
    export CMAKE_PREFIX_PATH=$sysroot/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
    echo "carried libraries: $(ls "$deps"/*.deb | wc -l) packages unpacked into $sysroot"
fi

# 1. Build, then check that the binaries load and see the GPU.
rm -rf "$build"
gen=()
command -v ninja > /dev/null && gen=(-G Ninja)
if ! run_step "configure (sm_90, CUDA ON)" 90 \
        cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CUDA_ARCHITECTURES=90 -DGPUALS_CUDA=ON -DGPUALS_WERROR=OFF \
        -DCMAKE_CUDA_COMPILER="$nvcc_bin"; then
    failed=1
elif ! run_step "build" 240 cmake --build "$build" -j "$jobs"; then
    failed=1
fi

# probe_gpu: 0 when the probe test sees a GPU (its first line names it, or says why not); a
# driver that hangs is given 30 s.
probe_gpu() {
    timeout --kill-after=5 30 "$build/tests/test_gpu_probe" '*probe_explains*' < /dev/null \
        > "$steplog" 2>&1
    head -1 "$steplog"
    grep -q '^probe: device' "$steplog"
}
if [ "$failed" -eq 0 ]; then
    missing=$(for b in "$build/gpu-als" "$build"/tests/test_gpu_* "$build/bench/gpuals-gpu-bench"
              do ldd "$b" 2>&1 | grep 'not found'; done | sort -u)
    if [ -n "$missing" ]; then
        echo "=== libraries not found by the loader:"
        echo "$missing"
        summary+=("$(printf '%-34s FAILED' "libraries found")")
        failed=1
    elif ! probe_gpu; then
        # A driver older than the toolkit: the toolkit's forward-compatibility libraries, where
        # the image has them, let the newer runtime run on it.
        if [ -d "$cuda_root/compat" ] && grep -q 'older than' "$steplog"; then
            export LD_LIBRARY_PATH=$cuda_root/compat:$LD_LIBRARY_PATH
            echo "=== retrying the probe with $cuda_root/compat"
        fi
        if ! probe_gpu; then
            echo "=== the probe finds no usable GPU: nothing else can run"
            summary+=("$(printf '%-34s FAILED' "probe sees the GPU")")
            failed=1
        fi
    fi
fi

if [ "$failed" -eq 0 ]; then
    # 2. The GPU tests (and the probe test, labelled cpu).
    # A failure is rerun with GPUALS_CUDA_SYNC=1, which synchronises after every CUDA call so
    # that an asynchronous fault is reported at the call that caused it.
    # One at a time (a top-n test takes nearly all device memory), the short ones first so
    # that a training test hanging until its timeout cannot keep them from running.
    rerun=()
    run_step "ctest GPU tests: probe, top-n" 90 \
        ctest --test-dir "$build" -R '^test_gpu_(probe|topn)$' --output-on-failure \
        --timeout 80 || rerun+=('^test_gpu_(probe|topn)$')
    run_step "ctest GPU tests: training" 150 \
        ctest --test-dir "$build" -R '^test_gpu_als$' --output-on-failure --timeout 140 ||
        rerun+=('^test_gpu_als$')
    for re in "${rerun[@]}"; do
        failed=1
        run_step "rerun $re, GPUALS_CUDA_SYNC=1" 90 \
            env GPUALS_CUDA_SYNC=1 ctest --test-dir "$build" -R "$re" --output-on-failure \
            --timeout 80 || true
    done

    # 3. The built-in benchmark.
    run_step "gpuals-gpu-bench (built-in)" 150 "$build/bench/gpuals-gpu-bench" || true

    # 4. compute-sanitizer on small tests (a test-name glob as argument keeps them short).
    sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
    if [ -x "$sanitizer" ]; then
        als=$build/tests/test_gpu_als
        topn=$build/tests/test_gpu_topn
        # In order of value: the training kernels (shared memory, syncs), then top-n; racecheck
        # and synccheck on the smallest tests that run the shared-memory kernels. When the
        # first run shows that the sanitizer cannot reach the device (some virtual machines),
        # the rest are skipped rather than each failing the same way.
        reachable=1
        while read -r tool bin filter cap; do
            name="sanitizer $tool: $(basename "$bin") $filter"
            if [ "$reachable" -eq 0 ]; then
                summary+=("$(printf '%-34s skipped (no device)' "$name")")
                continue
            fi
            if ! run_step "$name" "$cap" "$sanitizer" --tool "$tool" --error-exitcode 99 \
                    --print-limit 20 "$bin" "$filter"; then
                failed=1
                if grep -q -i -E 'not supported|no usable GPU|unknown error' "$steplog"; then
                    echo "=== compute-sanitizer cannot reach the device here; skipping the rest"
                    reachable=0
                fi
            fi
        done <<STEPS
memcheck $als *_33 90
racecheck $als *callback_stop* 60
memcheck $topn *filters* 40
racecheck $topn *filters* 40
synccheck $als *callback_stop* 40
racecheck $als *cholesky_factors_1 40
memcheck $topn *large_n* 40
memcheck $als *holds_half* 40
STEPS
    else
        echo "=== compute-sanitizer: not found (looked in PATH and /usr/local/cuda/bin)"
        summary+=("$(printf '%-34s not found' "compute-sanitizer")")
    fi

    # 5. The full harness, when it exists and time remains.
    if [ -x "$root/bench/run" ]; then
        results=${out:+$out/results.jsonl}
        results=${results:-$root/bench/out/results.jsonl}
        run_step "bench/run --device gpu (ml-1m)" 120 \
            "$root/bench/run" --device gpu --shape ml-1m --factors 100 --cg-form fused,library \
            --reps 3 --no-peers --no-build --build-dir "$build" \
            --bench "$build/bench/gpuals-bench" --synth "$build/bench/gpuals-synth" \
            --results "$results" --markdown || true
    else
        echo "=== bench/run: not present"
    fi
fi

# Summary.
echo
echo "gpu-check summary ($((SECONDS - start)) s of a ${deadline} s budget):"
for line in "${summary[@]}"; do echo "  $line"; done
if [ -n "$out" ]; then
    printf '%s\n' "${summary[@]}" > "$out/gpu-check-summary.txt"
fi
exit "$failed"
