/*
 * test_gpu_util.h - helpers shared by the GPU tests (tests/test_gpu_*.c): seeded random
 * problems built as CSRs, a normwise comparator that explains its verdict, and the skip rule.
 *
 * A GPU test binary calls gpu_test_skip_unless_device() first: without a usable device it
 * prints the probe's reason and exits 77, which tests/gpu.cmake declares as the skip code (via
 * gpuals_add_test), so a GPU-less ctest run is green and honest about what it did not run.
 */
#ifndef GPUALS_TEST_GPU_UTIL_H
#define GPUALS_TEST_GPU_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "csr.h"

/* Exit 77 (skip) with the probe's reason on stderr when there is no usable CUDA device; exit 1
 * instead when GPUALS_REQUIRE_GPU=1 says that one should be there. */
void gpu_test_skip_unless_device(void);

/* If argv[1] is given, run only the cmocka tests whose names match it (a glob). */
void gpu_test_filter(int argc, char **argv);

/* A reproducible stream of pseudo-random numbers (SplitMix64). */
typedef struct {
    uint64_t s;
} gpu_rng;

uint64_t gpu_rng_next(gpu_rng *r);
double gpu_rng_unit(gpu_rng *r); /* uniform in [0, 1) */

/* How a random problem is shaped. */
typedef struct {
    int64_t users, items;
    double density;       /* probability that a (user, item) pair is stored */
    int empty_every;      /* rows u with u % empty_every == 1 have no entries (0: none) */
    int negative_every;   /* every n-th entry is stored negated ("disliked"; 0: none) */
    int heavy_user;       /* 1: user 0 also likes enough items to hold half the entries */
    double alpha;         /* confidence = alpha * r, r uniform in {1, ..., 5} */
    uint64_t seed;
} gpu_problem;

/* Build the users x items confidence CSR and its transpose (both owned by the caller). Items
 * i with i % empty_every == 2 also get no entries. */
void gpu_make_problem(const gpu_problem *pr, csr *Cui, csr *Ciu);

/* ||got - want|| / ||want|| over n floats (||got|| when want is zero). */
double gpu_rel_err(const float *got, const float *want, size_t n);

/* Assert gpu_rel_err(got, want) <= tol; on failure print the error, the worst element with its
 * row and column (rows of f), and the first few differing pairs. `what` names the comparison. */
void gpu_assert_close(const char *what, const float *got, const float *want, int64_t rows,
                      int f, double tol);

/* A copy of n floats (malloc'd; the caller frees it). */
float *gpu_copy(const float *src, size_t n);

#endif /* GPUALS_TEST_GPU_UTIL_H */
