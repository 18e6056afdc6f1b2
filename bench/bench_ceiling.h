/*
 * bench_ceiling.h - the machine's measured ceilings, against which every phase is judged.
 *
 * Memory bandwidth: STREAM-like copy (c = a) and triad (a = b + s c) over double arrays, OpenMP
 * over the given thread count, counted as STREAM counts them (copy moves 2 arrays, triad 3; the
 * write-allocate traffic of the stores is not counted). Arithmetic: one large single-precision
 * cblas_sgemm (2 n^3 flops) with OpenBLAS running on the same thread count. Each figure is the
 * best of several repetitions after a warm-up, as STREAM reports it.
 */
#ifndef GPUALS_BENCH_CEILING_H
#define GPUALS_BENCH_CEILING_H

#include <stdint.h>

typedef struct {
    double copy_gbps;                /* best copy rate, GB/s (1e9 bytes per second) */
    double triad_gbps;               /* best triad rate, GB/s */
    double sgemm_gflops;             /* best sgemm rate, GFLOP/s */
    double copy_s, triad_s, sgemm_s; /* the best times behind those rates, seconds */
    int64_t array_bytes;             /* bytes of each STREAM array */
    int gemm_n;                      /* sgemm of n x n by n x n */
    int threads;
} bench_ceilings;

/* Measure the CPU ceilings with `threads` threads, STREAM arrays of array_mib MiB each and an
 * n x n sgemm, `reps` timed repetitions after one warm-up. Returns 0, or -1 when the arrays
 * cannot be allocated (errno is then ENOMEM). Restores OpenBLAS's thread count. */
int bench_measure_cpu_ceilings(int threads, double array_mib, int gemm_n, int reps,
                               bench_ceilings *out);

#endif /* GPUALS_BENCH_CEILING_H */
