/*
 * test_gpu_util.c - helpers shared by the GPU tests (see test_gpu_util.h).
 *
 * Random problems are drawn pair by pair with a seeded SplitMix64 stream, so every run and every
 * machine builds the same matrices; csr_from_triplets (host/csr.h) makes the users x items CSR
 * and csr_transpose its transpose, exactly as training data is built.
 */
#include "test_gpu_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpuals_cuda.h"

void gpu_test_skip_unless_device(void)
{
    char why[256];
    if (!cuda_probe(why, sizeof why)) {
        /* Where a GPU is known to be present (bench/gpu-check.sh), not finding it is a
         * failure, never a quiet skip. */
        const char *require = getenv("GPUALS_REQUIRE_GPU");
        if (require && strcmp(require, "1") == 0) {
            fprintf(stderr, "FAILED: GPUALS_REQUIRE_GPU=1 but no usable GPU (%s)\n", why);
            exit(1);
        }
        fprintf(stderr, "skipped: no usable GPU (%s)\n", why);
        exit(77);
    }
    fprintf(stderr, "device: %s\n", why);
}

void gpu_test_filter(int argc, char **argv)
{
    if (argc > 1) cmocka_set_test_filter(argv[1]);
}

uint64_t gpu_rng_next(gpu_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double gpu_rng_unit(gpu_rng *r) { return (double)(gpu_rng_next(r) >> 11) * 0x1.0p-53; }

/* 1 when row or column k of the problem is meant to be empty (rows use offset 1, columns 2). */
static int is_empty(int every, int64_t k, int offset)
{
    return every > 0 && k % every == offset;
}

void gpu_make_problem(const gpu_problem *pr, csr *Cui, csr *Ciu)
{
    gpu_rng rng = {pr->seed};
    size_t cap = 1024, n = 0;
    int32_t *row = malloc(cap * sizeof *row), *col = malloc(cap * sizeof *col);
    float *val = malloc(cap * sizeof *val);
    assert_non_null(row);
    assert_non_null(col);
    assert_non_null(val);

    /* Pairs: each stored with probability density; user 0 heavy when asked. */
    int64_t heavy_items = 0;
    if (pr->heavy_user) {
        double others = pr->density * (double)(pr->users - 1) * (double)pr->items;
        heavy_items = (int64_t)others < pr->items ? (int64_t)others : pr->items;
    }
    for (int64_t u = 0; u < pr->users; u++) {
        if (is_empty(pr->empty_every, u, 1)) continue;
        for (int64_t i = 0; i < pr->items; i++) {
            if (is_empty(pr->empty_every, i, 2)) continue;
            int keep = (u == 0 && pr->heavy_user) ? i < heavy_items
                                                  : gpu_rng_unit(&rng) < pr->density;
            if (!keep) continue;
            if (n == cap) {
                cap *= 2;
                row = realloc(row, cap * sizeof *row);
                col = realloc(col, cap * sizeof *col);
                val = realloc(val, cap * sizeof *val);
                assert_true(row && col && val);
            }
            double r = 1.0 + (double)(gpu_rng_next(&rng) % 5);
            float c = (float)(pr->alpha * r);
            if (pr->negative_every > 0 && (n + 1) % (size_t)pr->negative_every == 0) c = -c;
            row[n] = (int32_t)u;
            col[n] = (int32_t)i;
            val[n] = c;
            n++;
        }
    }

    /* The CSR and its transpose. */
    assert_int_equal(csr_from_triplets(pr->users, pr->items, (int64_t)n, row, col, val, Cui,
                                       NULL),
                     GPUALS_OK);
    assert_int_equal(csr_transpose(Cui, Ciu), GPUALS_OK);
    free(row);
    free(col);
    free(val);
}

double gpu_rel_err(const float *got, const float *want, size_t n)
{
    double d = 0, w = 0, g = 0;
    for (size_t k = 0; k < n; k++) {
        double e = (double)got[k] - (double)want[k];
        d += e * e;
        w += (double)want[k] * (double)want[k];
        g += (double)got[k] * (double)got[k];
    }
    if (w > 0) return sqrt(d / w);
    return sqrt(g);
}

void gpu_assert_close(const char *what, const float *got, const float *want, int64_t rows,
                      int f, double tol)
{
    size_t n = (size_t)rows * (size_t)f;
    double err = gpu_rel_err(got, want, n);
    if (err <= tol) return;

    /* Explain: the worst element and the first few that differ. */
    size_t worst = 0;
    double worst_d = -1;
    int shown = 0;
    fprintf(stderr, "%s: normwise relative error %.3g > %.3g\n", what, err, tol);
    for (size_t k = 0; k < n; k++) {
        double d = fabs((double)got[k] - (double)want[k]);
        if (!(d <= worst_d)) worst_d = d, worst = k;
        if (d > tol * (fabs((double)want[k]) + 1e-3) && shown < 5) {
            fprintf(stderr, "  row %zu col %zu: got %.9g want %.9g\n", k / (size_t)f,
                    k % (size_t)f, (double)got[k], (double)want[k]);
            shown++;
        }
    }
    fprintf(stderr, "  worst: row %zu col %zu: got %.9g want %.9g (|diff| %.3g)\n",
            worst / (size_t)f, worst % (size_t)f, (double)got[worst], (double)want[worst],
            worst_d);
    fail_msg("%s differs from the reference (%.3g > %.3g)", what, err, tol);
}

float *gpu_copy(const float *src, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    if (n) memcpy(p, src, n * sizeof *p);
    return p;
}
