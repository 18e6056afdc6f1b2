/*
 * bench_ceiling.c - STREAM-like copy and triad, and a large sgemm: the CPU's measured ceilings.
 *
 * copy:  c[i] = a[i]              2 * 8 bytes per element (STREAM's count)
 * triad: a[i] = b[i] + s * c[i]   3 * 8 bytes per element, 2 flops
 * sgemm: C = A B, n x n floats    2 n^3 flops
 * The arrays are first touched by the threads that later stream them, so on a NUMA machine each
 * thread's pages sit near it (STREAM does the same). The STREAM arrays must be several times the
 * last-level cache for the figure to be a DRAM bandwidth; bench/run picks the size.
 */
#include "bench_ceiling.h"

#include <cblas.h>
#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best time of `reps` copies (after one warm-up), seconds. */
static double time_copy(double *c, const double *a, int64_t n, int threads, int reps)
{
    double best = -1.0;
    for (int r = 0; r <= reps; r++) {
        double t0 = now_seconds();
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int64_t i = 0; i < n; i++)
            c[i] = a[i];
        double t = now_seconds() - t0;
        if (r > 0 && (best < 0.0 || t < best)) best = t;
    }
    return best;
}

/* Best time of `reps` triads (after one warm-up), seconds. */
static double time_triad(double *a, const double *b, const double *c, int64_t n, int threads,
                         int reps)
{
    const double s = 3.0;
    double best = -1.0;
    for (int r = 0; r <= reps; r++) {
        double t0 = now_seconds();
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int64_t i = 0; i < n; i++)
            a[i] = b[i] + s * c[i];
        double t = now_seconds() - t0;
        if (r > 0 && (best < 0.0 || t < best)) best = t;
    }
    return best;
}

/* Best time of `reps` n x n sgemms (after one warm-up) on `threads` OpenBLAS threads; -1 when
 * the matrices cannot be allocated. */
static double time_sgemm(int n, int threads, int reps)
{
    size_t count = (size_t)n * (size_t)n;
    float *A = malloc(count * sizeof *A);
    float *B = malloc(count * sizeof *B);
    float *C = malloc(count * sizeof *C);
    double best = -1.0;
    if (A && B && C) {
        /* Operands with values of order one, so nothing overflows or underflows. */
        for (size_t i = 0; i < count; i++) {
            A[i] = (float)((i * 7u) % 13u) / 13.0f;
            B[i] = (float)((i * 5u) % 11u) / 11.0f;
        }

        int saved = openblas_get_num_threads();
        openblas_set_num_threads(threads);
        for (int r = 0; r <= reps; r++) {
            double t0 = now_seconds();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f,
                        C, n);
            double t = now_seconds() - t0;
            if (r > 0 && (best < 0.0 || t < best)) best = t;
        }
        openblas_set_num_threads(saved);
    }
    free(A);
    free(B);
    free(C);
    return best;
}

int bench_measure_cpu_ceilings(int threads, double array_mib, int gemm_n, int reps,
                               bench_ceilings *out)
{
    int64_t n = (int64_t)(array_mib * 1024.0 * 1024.0 / sizeof(double));
    if (n < 1024) n = 1024;
    if (reps < 1) reps = 1;

    /* Allocate and first-touch the three arrays on the threads that stream them. */
    double *a = malloc((size_t)n * sizeof *a);
    double *b = malloc((size_t)n * sizeof *b);
    double *c = malloc((size_t)n * sizeof *c);
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        errno = ENOMEM;
        return -1;
    }
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < n; i++) {
        a[i] = 1.0;
        b[i] = 2.0;
        c[i] = 0.5;
    }

    /* Stream, then multiply. */
    double bytes = (double)n * sizeof(double);
    out->copy_s = time_copy(c, a, n, threads, reps);
    out->triad_s = time_triad(a, b, c, n, threads, reps);
    free(a);
    free(b);
    free(c);
    out->sgemm_s = time_sgemm(gemm_n, threads, reps);
    if (out->sgemm_s < 0.0) {
        errno = ENOMEM;
        return -1;
    }

    /* Rates as STREAM counts them. */
    double dn = gemm_n;
    out->copy_gbps = 2.0 * bytes / out->copy_s * 1e-9;
    out->triad_gbps = 3.0 * bytes / out->triad_s * 1e-9;
    out->sgemm_gflops = 2.0 * dn * dn * dn / out->sgemm_s * 1e-9;
    out->array_bytes = (int64_t)bytes;
    out->gemm_n = gemm_n;
    out->threads = threads;
    return 0;
}
