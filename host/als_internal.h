/*
 * als_internal.h - what the parts of the CPU ALS engine share (private to host/als*.c).
 *
 * The engine is written once, as a template over the floating-point type (als_engine.h), and
 * compiled twice: float32 in als_f32.c (the training path) and float64 in als_f64.c (the
 * reference the tests compare against). This header holds what is not type-specific: argument
 * checks, the record of the first row that failed in a half-iteration, the guard that keeps
 * OpenBLAS single-threaded inside our OpenMP regions, and the multiversioning attribute of the
 * hot loops.
 */
#ifndef GPUALS_ALS_INTERNAL_H
#define GPUALS_ALS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "als.h"
#include "csr.h"
#include "gpuals.h"

/* ALS_HOT marks the sparse inner loops. On x86-64 with GCC each is compiled three times (AVX-512,
 * AVX2 + FMA, and the baseline) and the loader picks the best clone for the running CPU, so
 * the default build stays portable. The clones name the x86-64-v4 / v3 levels rather than plain
 * "avx512f" / "avx2" because GCC's option sets for those leave FMA out. Multiply-adds are
 * contracted into FMA in the clones (ISO C mode turns contraction off by default), which
 * changes rounding but not what the code computes. Other compilers and targets get the
 * portable build of the same loops. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ALS_HOT                                                                               \
    __attribute__((optimize("fp-contract=fast"),                                              \
                   target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ALS_HOT
#endif

/* CG stops early once r.r falls below this (the `implicit` library's threshold). */
#define ALS_CG_EPS 1e-20

/* Cholesky treats a pivot as zero when L_kk^2 <= ALS_PIVOT_RTOL * f * eps * A_kk, A_kk being the
 * diagonal entry before factorising and eps the machine epsilon of the type. L_kk^2 / A_kk
 * bounds the reciprocal of the (diagonally scaled) condition number from above, and f * eps is
 * the size of the rounding in a pivot, so such a pivot means the system is singular to working
 * precision: typically a rank-deficient system (reg 0, more factors than rows on the other
 * side) whose last pivots came out as rounding noise of either sign; dividing by them would
 * give a finite but meaningless solution. For scale: training on the embedded MovieLens data
 * (reg 0.01, float32, 32 to 256 factors) the smallest ratio seen in any row is about 0.06. */
#define ALS_PIVOT_RTOL 1.0

/* Rows per chunk and chunks per wave of the deterministic Gram matrix (see als_gram). */
#define ALS_GRAM_CHUNK 256
#define ALS_GRAM_WAVE 8

/* The lowest-index row that failed in one half-iteration. Rows are solved in parallel and all
 * of them are attempted, so the row reported does not depend on the thread count. */
typedef struct {
    int64_t row;         /* -1 while nothing failed */
    als_fail_kind kind;
    int detail;          /* the pivot (1-based) for SINGULAR, LAPACK's info for LAPACK */
} als_failure;

/* Forget any failure. */
void als_failure_reset(als_failure *fl);

/* The benchmark's half-iteration hook (als.h: als_set_half_hook): run it if one is set. */
void als_half_hook(int end, int side);

/* Record that row failed for kind (thread-safe; keeps the lowest row). */
void als_failure_record(als_failure *fl, int64_t row, als_fail_kind kind, int detail);

/* GPUALS_OK when nothing failed, else als_fail_row's status for the failed row. Call from the
 * thread that returns the status (the message is thread-local). */
gpuals_status als_failure_status(const als_failure *fl, int side, int iteration);

/* "user" or "item". */
const char *als_side_name(int side);


/* Threads to use: p->threads, or every core OpenMP offers when it is 0. */
int als_thread_count(const gpuals_params *p);

/* Make OpenBLAS single-threaded (our OpenMP threads already use every core; BLAS threads on top
 * would oversubscribe them) and return the previous setting for als_blas_restore. */
int als_blas_single(void);
void als_blas_restore(int saved);

/* bytes of memory aligned to 64 (a cache line, an AVX-512 register), released with free();
 * NULL when out of memory. */
void *als_alloc64(size_t bytes);

/* Seconds on a monotonic clock. */
double als_now(void);

/* The regularisation of a row with n entries: lambda, or lambda * n under FREQUENCY. */
static inline double als_row_lambda(const gpuals_params *p, int64_t n)
{
    return p->reg_scale == GPUALS_REG_FREQUENCY ? p->reg * (double)n : p->reg;
}

/* Sum of |c| over the stored confidences, in storage order (deterministic). */
double als_total_confidence(const csr *C);

/* The f32 and f64 instances of the deterministic Gram matrix: out (f x f, row-major, both
 * triangles) = F^T F over the first f columns of F (rows x f, rows ld apart), accumulated in
 * double, identical for any thread count. GPUALS_ERR_NOMEM when the scratch space cannot be
 * allocated (out untouched). */
gpuals_status als_gram_f32(const float *F, int64_t rows, int f, size_t ld, int threads,
                           double *out);
gpuals_status als_gram_f64(const double *F, int64_t rows, int f, size_t ld, int threads,
                           double *out);

/* The loss (als.h) of X, Y (rows ld apart, entries past f zero or ignored as the caller
 * guarantees: they enter the dot products) given their Gram matrices; threads as above; NaN
 * when out of memory. item_counts (C->cols entries, the column counts of C) is needed only
 * under FREQUENCY and may be NULL otherwise. */
double als_loss_grams_f32(const csr *C, const float *X, const float *Y, int f, size_t ld,
                          const gpuals_params *p, const double *Gx, const double *Gy,
                          const int64_t *item_counts, int threads);
double als_loss_grams_f64(const csr *C, const double *X, const double *Y, int f, size_t ld,
                          const gpuals_params *p, const double *Gx, const double *Gy,
                          const int64_t *item_counts, int threads);

/* The column counts of C (C->cols entries, malloc'd; NULL when out of memory). */
int64_t *als_column_counts(const csr *C);

#endif /* GPUALS_ALS_INTERNAL_H */
