/*
 * bench_work.h - the work model of the benchmark: how many bytes must move and how many floating
 * point operations must be done for each timed phase, and the statistics of repeated timings.
 *
 * Every time gpuals-bench prints is judged against a floor: the compulsory bytes (every input
 * read once, every output written once; caches can only make the real traffic larger) and the
 * arithmetic the algorithm cannot avoid. Achieved rates are bytes / time and flops / time; a
 * multiply and an add count as two flops. The formulas are written out in bench_work.c beside
 * the code, and tests/test_bench_work.c checks them on hand-computed cases.
 */
#ifndef GPUALS_BENCH_WORK_H
#define GPUALS_BENCH_WORK_H

#include <stdint.h>

/* The floor of one phase: bytes that must move and flops that must be done (0 when the phase
 * does no floating point work worth counting, such as parsing). */
typedef struct {
    double bytes;
    double flops;
} bench_work;

/* The Gram matrix F^T F (f x f, double) of F (rows x f, float). */
bench_work bench_work_gram(int64_t rows, int f);

/* The solves of one conjugate-gradient half-iteration: `steps` warm-started CG steps for each
 * of `rows` rows holding `nnz` entries in all, against the fixed side's `other` rows and their
 * Gram matrix (not included: see bench_work_gram). */
bench_work bench_work_half_cg(int64_t rows, int64_t other, int64_t nnz, int f, int steps);

/* The solves of one exact (Cholesky) half-iteration: for each row the f x f system built from
 * the Gram matrix and its entries, factorised and solved (the Gram matrix not included). */
bench_work bench_work_half_cholesky(int64_t rows, int64_t other, int64_t nnz, int f);

/* The training loss as the `implicit` library defines it (host/als.h), users x items, nnz
 * stored entries. */
bench_work bench_work_loss(int64_t users, int64_t items, int64_t nnz, int f);

/* Top-n of every one of `queries` rows against `cands` candidate rows by dot product, with an
 * exclusion CSR of `exclude_nnz` entries (0 for none). */
bench_work bench_work_topn(int64_t queries, int64_t cands, int64_t exclude_nnz, int f, int n);

/* Reading a ratings file of file_bytes bytes and building the users x items CSR and its
 * transpose, plus the two confidence CSRs. */
bench_work bench_work_load(int64_t file_bytes, int64_t users, int64_t items, int64_t nnz);

/* Host -> device: both CSR orientations and both factor matrices. */
bench_work bench_work_upload(int64_t users, int64_t items, int64_t nnz, int f);

/* Order statistics of n timings (seconds); the input array is sorted in place. Quartiles are
 * linear interpolations between order statistics (numpy's default). n == 0 gives all zeros. */
typedef struct {
    double median, min, max, q1, q3;
} bench_stats;

bench_stats bench_stats_of(double *samples, int n);

#endif /* GPUALS_BENCH_WORK_H */
