/*
 * test_als_util.h - helpers shared by the ALS engine's tests (tests/test_als_*.c): building a
 * confidence matrix and its transpose from triplets or at random, default settings for a test,
 * a recording callback, and the float64 dense reference that solves each row's normal equations
 * over the full matrix (every unstored entry weighing 1 with preference 0).
 *
 * Everything here is static (and marked unused, as no program needs all of it): each test
 * program includes it once, after <cmocka.h>.
 */
#ifndef GPUALS_TEST_ALS_UTIL_H
#define GPUALS_TEST_ALS_UTIL_H

#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "als.h"
#include "csr.h"
#include "gpuals.h"

#define TEST_HELPER static __attribute__((unused))

/* A confidence matrix (users x items) and its transpose. */
typedef struct {
    csr ui, iu;
} test_pair;

/* Build both orientations from n triplets (users x items). */
TEST_HELPER void pair_from_triplets(test_pair *t, int64_t users, int64_t items, int64_t n,
                               const int32_t *u, const int32_t *i, const float *c)
{
    memset(t, 0, sizeof *t);
    assert_int_equal(csr_from_triplets(users, items, n, u, i, c, &t->ui, NULL), GPUALS_OK);
    assert_int_equal(csr_transpose(&t->ui, &t->iu), GPUALS_OK);
}

TEST_HELPER void pair_free(test_pair *t)
{
    csr_free(&t->ui);
    csr_free(&t->iu);
}

/* A small deterministic generator for test data (xorshift64*). */
static uint64_t test_rand_state = 0x2545F4914F6CDD1Dull;

TEST_HELPER double test_uniform(void)
{
    test_rand_state ^= test_rand_state >> 12;
    test_rand_state ^= test_rand_state << 25;
    test_rand_state ^= test_rand_state >> 27;
    return (double)((test_rand_state * 0x2545F4914F6CDD1Dull) >> 11) * 0x1.0p-53;
}

/* A random users x items matrix with about density * users * items entries, confidences drawn
 * from {1, 2, 3, 4, 5} (plus 0.5 and -2 when odd_values, to exercise weights below zero and
 * "disliked" entries). Rows and columns listed in empty_user / empty_item (-1: none) get no
 * entries. */
TEST_HELPER void pair_random(test_pair *t, int users, int items, double density, int odd_values,
                        int empty_user, int empty_item)
{
    int64_t cap = (int64_t)users * items;
    int32_t *u = malloc((size_t)cap * sizeof *u), *i = malloc((size_t)cap * sizeof *i);
    float *c = malloc((size_t)cap * sizeof *c);
    assert_non_null(u), assert_non_null(i), assert_non_null(c);
    int64_t n = 0;
    for (int a = 0; a < users; a++) {
        for (int b = 0; b < items; b++) {
            if (a == empty_user || b == empty_item || test_uniform() >= density) continue;
            double v = 1 + floor(5 * test_uniform());
            if (odd_values && test_uniform() < 0.1) v = test_uniform() < 0.5 ? 0.5 : -2;
            u[n] = a, i[n] = b, c[n] = (float)v;
            n++;
        }
    }
    pair_from_triplets(t, users, items, n, u, i, c);
    free(u), free(i), free(c);
}

/* The defaults with the given factors, solver, iterations and regularisation, on one thread
 * unless the test says otherwise. */
TEST_HELPER gpuals_params test_params(int f, gpuals_solver solver, int iters, double reg)
{
    gpuals_params p;
    gpuals_params_default(&p);
    p.factors = f;
    p.solver = solver;
    p.iters = iters;
    p.reg = reg;
    p.threads = 1;
    p.device = GPUALS_DEVICE_CPU;
    return p;
}

/* Records what the fit reports after each iteration. */
typedef struct {
    int calls;
    int iteration[64];
    double seconds[64];
    double loss[64];
    int stop_after;  /* return 1 at this iteration (0: never) */
} test_record;

TEST_HELPER int record_iteration(int iteration, double seconds, double loss, void *user)
{
    test_record *r = user;
    if (r->calls < 64) {
        r->iteration[r->calls] = iteration;
        r->seconds[r->calls] = seconds;
        r->loss[r->calls] = loss;
    }
    r->calls++;
    return r->stop_after > 0 && iteration >= r->stop_after;
}

/* Starting factors for both sides (float64 copies of the float32 generator's values). */
TEST_HELPER double *test_init_f64(int64_t rows, int f, uint64_t seed, int side)
{
    double *F = malloc((size_t)(rows > 0 ? rows : 1) * (size_t)f * sizeof *F);
    assert_non_null(F);
    als_init_factors_f64(F, rows, f, seed, side);
    return F;
}

TEST_HELPER float *test_init_f32(int64_t rows, int f, uint64_t seed, int side)
{
    float *F = malloc((size_t)(rows > 0 ? rows : 1) * (size_t)f * sizeof *F);
    assert_non_null(F);
    als_init_factors(F, rows, f, seed, side);
    return F;
}

/* The dense reference of one half-iteration: for every row u of C (rows x cols), solve
 *     (sum_i c_ui y_i y_i^T + lambda_u I) x_u = sum_i c_ui p_ui y_i
 * over ALL columns i, with c = 1, p = 0 where C stores nothing, c = v, p = 1 for a stored v > 0
 * and c = -v, p = 0 for a stored v < 0 (the `implicit` convention), by forming the full f x f
 * matrix in double and calling LAPACKE_dposv. Rows without entries get zeros. */
TEST_HELPER void reference_half(const csr *C, const double *Y, int f, double reg, int frequency,
                           double *X)
{
    size_t fs = (size_t)f;
    double *A = malloc(fs * fs * sizeof *A), *b = malloc(fs * sizeof *b);
    double *cw = malloc((size_t)C->cols * sizeof *cw), *pw = malloc((size_t)C->cols * sizeof *pw);
    assert_non_null(A), assert_non_null(b), assert_non_null(cw), assert_non_null(pw);
    for (int64_t u = 0; u < C->rows; u++) {
        int64_t n = C->indptr[u + 1] - C->indptr[u];
        if (n == 0) {
            memset(X + u * f, 0, fs * sizeof *X);
            continue;
        }

        /* The full row of weights and preferences. */
        for (int64_t i = 0; i < C->cols; i++) cw[i] = 1, pw[i] = 0;
        for (int64_t k = C->indptr[u]; k < C->indptr[u + 1]; k++) {
            double v = C->data[k];
            cw[C->indices[k]] = fabs(v);
            pw[C->indices[k]] = v > 0 ? 1 : 0;
        }

        /* The normal equations, term by term. */
        double lambda = frequency ? reg * (double)n : reg;
        memset(A, 0, fs * fs * sizeof *A);
        memset(b, 0, fs * sizeof *b);
        for (int64_t i = 0; i < C->cols; i++) {
            const double *y = Y + i * f;
            for (size_t a = 0; a < fs; a++) {
                b[a] += cw[i] * pw[i] * y[a];
                for (size_t c = 0; c < fs; c++) A[a * fs + c] += cw[i] * y[a] * y[c];
            }
        }
        for (size_t a = 0; a < fs; a++) A[a * fs + a] += lambda;
        assert_int_equal(LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', f, 1, A, f, b, 1), 0);
        memcpy(X + u * f, b, fs * sizeof *X);
    }
    free(A), free(b), free(cw), free(pw);
}

/* max |a - b| / max |b| over n entries (infinite when anything is NaN). */
TEST_HELPER double max_rel_diff(const double *a, const double *b, size_t n)
{
    double diff = 0, scale = 0;
    for (size_t k = 0; k < n; k++) {
        if (isnan(a[k]) || isnan(b[k])) return INFINITY;
        diff = fmax(diff, fabs(a[k] - b[k]));
        scale = fmax(scale, fabs(b[k]));
    }
    return scale > 0 ? diff / scale : diff;
}

#endif /* GPUALS_TEST_ALS_UTIL_H */
