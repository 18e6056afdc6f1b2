/*
 * test_gpu_topn.c - cuda_topn against topn_batch (host/query.h), the CPU reference (label gpu;
 * exit 77 without a usable device).
 *
 * Two kinds of data. With random float factors, scores computed by the GPU's and the CPU's
 * GEMMs differ in the last bits, so ids must agree except where two candidates' scores are
 * equal within the tolerance (a swap of near-ties), and scores agree to 1e-5 relative. With
 * small integer factors (and scales that are powers of two) every score is exact on both sides,
 * so everything must agree exactly, including the tie-break (the lower index first): those
 * tests exercise the filters (liked items through exclude_row, the query itself, the allow
 * list), fewer candidates than n, cosine with zero vectors, NaN scores, an n too large for
 * the shared-memory sort, queries with nothing left to return, and more queries than one batch.
 *
 * topn_batch_on (host/query_device.c) under --device auto: the GPU answers when it is usable,
 * and when most of its memory is taken (the test allocates it) the CPU answers instead, with a
 * note that says why, while --device gpu reports the shortage as an error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "csr.h"
#include "gpuals_cuda.h"
#include "query.h"
#include "status.h"
#include "test_gpu_util.h"

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Answers of one top-n call. */
typedef struct {
    int64_t *idx;
    float *score;
    int *n_out;
} answers;

static answers answers_new(int64_t nq, int n)
{
    answers a;
    size_t cells = (size_t)nq * (size_t)(n > 0 ? n : 1);
    a.idx = calloc(cells, sizeof *a.idx);
    a.score = calloc(cells, sizeof *a.score);
    a.n_out = calloc((size_t)(nq > 0 ? nq : 1), sizeof *a.n_out);
    assert_true(a.idx && a.score && a.n_out);
    return a;
}

static void answers_free(answers *a)
{
    free(a->idx);
    free(a->score);
    free(a->n_out);
}

/* Fill every cell with a marker no answer can hold (index -7, score -7.5, count -1), so that
 * cells written by a call can be told from those left alone. */
static void answers_mark(answers *a, int64_t nq, int n)
{
    for (size_t e = 0; e < (size_t)nq * (size_t)n; e++) {
        a->idx[e] = -7;
        a->score[e] = -7.5f;
    }
    for (int64_t q = 0; q < nq; q++) a->n_out[q] = -1;
}

/* Assert that no cell past a query's count was written (answers_mark was called before). */
static void assert_rest_untouched(const char *what, int64_t nq, int n, const answers *a)
{
    for (int64_t q = 0; q < nq; q++)
        for (int k = a->n_out[q]; k < n; k++) {
            size_t at = (size_t)q * (size_t)n + (size_t)k;
            if (a->idx[at] != -7 || a->score[at] != -7.5f)
                fail_msg("%s: query %lld rank %d written past its %d answers (item %lld)", what,
                         (long long)q, k, a->n_out[q], (long long)a->idx[at]);
        }
}

/* Run both implementations on the same input, into answers already allocated. */
static void run_both_into(const float *Q, int64_t nq, const float *C, int64_t n_cand, int f,
                          const topn_filter *flt, int n, answers *cpu, answers *gpu)
{
    gpuals_status st = topn_batch(Q, nq, C, n_cand, f, flt, n, cpu->idx, cpu->score,
                                  cpu->n_out);
    if (st != GPUALS_OK) fail_msg("topn_batch: %s", gpuals_last_error());
    st = cuda_topn(Q, nq, C, n_cand, f, flt, n, gpu->idx, gpu->score, gpu->n_out);
    if (st != GPUALS_OK) fail_msg("cuda_topn: %s", gpuals_last_error());
}

/* Run both implementations on the same input. */
static void run_both(const float *Q, int64_t nq, const float *C, int64_t n_cand, int f,
                     const topn_filter *flt, int n, answers *cpu, answers *gpu)
{
    *cpu = answers_new(nq, n);
    *gpu = answers_new(nq, n);
    run_both_into(Q, nq, C, n_cand, f, flt, n, cpu, gpu);
}

/* 1 when two scores are the same answer: equal, both NaN, or within tol (tol > 0). */
static int same_score(float a, float b, double tol)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    if (tol == 0) return a == b;
    return fabs((double)a - (double)b) <= tol * fmax(1.0, fabs((double)b));
}

/* GPU answers against the CPU's: counts equal; per rank the same id, or (tol > 0) a near-tie
 * swap; scores the same within tol (exactly when tol is 0). */
static void assert_answers(const char *what, int64_t nq, int n, const answers *gpu,
                           const answers *cpu, double tol)
{
    for (int64_t q = 0; q < nq; q++) {
        if (gpu->n_out[q] != cpu->n_out[q])
            fail_msg("%s: query %lld: %d answers, the CPU %d", what, (long long)q,
                     gpu->n_out[q], cpu->n_out[q]);
        for (int k = 0; k < cpu->n_out[q]; k++) {
            size_t at = (size_t)q * (size_t)n + (size_t)k;
            if (!same_score(gpu->score[at], cpu->score[at], tol))
                fail_msg("%s: query %lld rank %d: score %.9g (item %lld), the CPU %.9g (item "
                         "%lld)", what, (long long)q, k, (double)gpu->score[at],
                         (long long)gpu->idx[at], (double)cpu->score[at],
                         (long long)cpu->idx[at]);
            if (gpu->idx[at] != cpu->idx[at] && tol == 0)
                fail_msg("%s: query %lld rank %d: item %lld, the CPU item %lld (score %.9g)",
                         what, (long long)q, k, (long long)gpu->idx[at],
                         (long long)cpu->idx[at], (double)cpu->score[at]);
        }
    }
}

/* rows x f floats, uniform in [-1, 1). */
static float *random_floats(int64_t rows, int f, uint64_t seed)
{
    gpu_rng r = {seed};
    float *F = malloc((size_t)rows * (size_t)f * sizeof *F);
    assert_non_null(F);
    for (size_t e = 0; e < (size_t)rows * (size_t)f; e++)
        F[e] = (float)(2.0 * gpu_rng_unit(&r) - 1.0);
    return F;
}

/* rows x f small integers in {-1, 0, 1, 2}: every dot product is exact. */
static float *random_ints(int64_t rows, int f, uint64_t seed)
{
    gpu_rng r = {seed};
    float *F = malloc((size_t)rows * (size_t)f * sizeof *F);
    assert_non_null(F);
    for (size_t e = 0; e < (size_t)rows * (size_t)f; e++)
        F[e] = (float)((int)(gpu_rng_next(&r) % 4) - 1);
    return F;
}

/* A rows x cols CSR with each entry present with probability p. */
static void random_pattern(int64_t rows, int64_t cols, double p, uint64_t seed, csr *out)
{
    gpu_rng r = {seed};
    size_t cap = (size_t)(rows * cols) + 1, n = 0;
    int32_t *ri = malloc(cap * sizeof *ri), *ci = malloc(cap * sizeof *ci);
    float *v = malloc(cap * sizeof *v);
    assert_true(ri && ci && v);
    for (int64_t a = 0; a < rows; a++)
        for (int64_t b = 0; b < cols; b++)
            if (gpu_rng_unit(&r) < p) ri[n] = (int32_t)a, ci[n] = (int32_t)b, v[n++] = 1.0f;
    assert_int_equal(csr_from_triplets(rows, cols, (int64_t)n, ri, ci, v, out, NULL), GPUALS_OK);
    free(ri);
    free(ci);
    free(v);
}

/* ------------------------------------------------------------------------------------------ */
/* Tests                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Plain dot-product top-10 on random data. */
static void test_topn_random_dot(void **state)
{
    (void)state;
    const int64_t nq = 70, n_cand = 900;
    const int f = 24, n = 10;
    float *Q = random_floats(nq, f, 1), *C = random_floats(n_cand, f, 2);
    answers cpu, gpu;
    run_both(Q, nq, C, n_cand, f, NULL, n, &cpu, &gpu);
    assert_answers("random dot", nq, n, &gpu, &cpu, 1e-5);
    answers_free(&cpu);
    answers_free(&gpu);
    free(Q);
    free(C);
}

/* Exact scores with many ties: identical ids, the lower index first. */
static void test_topn_exact_ties(void **state)
{
    (void)state;
    const int64_t nq = 40, n_cand = 300;
    const int f = 4, n = 25;
    float *Q = random_ints(nq, f, 3), *C = random_ints(n_cand, f, 4);
    answers cpu, gpu;
    run_both(Q, nq, C, n_cand, f, NULL, n, &cpu, &gpu);
    assert_answers("exact ties", nq, n, &gpu, &cpu, 0);
    answers_free(&cpu);
    answers_free(&gpu);
    free(Q);
    free(C);
}

/* Liked items (through exclude_row, some queries with none), the query itself, an allow
 * list and power-of-two scales; n larger than what is left for some queries. No excluded
 * candidate may come back. */
static void test_topn_filters_and_short_answers(void **state)
{
    (void)state;
    const int64_t nq = 50, n_cand = 260, rows = 30;
    const int f = 5, n = 240;
    float *Q = random_ints(nq, f, 5), *C = random_ints(n_cand, f, 6);
    csr liked = {0};
    random_pattern(rows, n_cand, 0.15, 7, &liked);

    int64_t *exclude_row = malloc((size_t)nq * sizeof *exclude_row);
    int64_t *self = malloc((size_t)nq * sizeof *self);
    float *col_scale = malloc((size_t)n_cand * sizeof *col_scale);
    float *query_scale = malloc((size_t)nq * sizeof *query_scale);
    unsigned char *allowed = malloc((size_t)n_cand);
    gpu_rng r = {8};
    for (int64_t q = 0; q < nq; q++) {
        exclude_row[q] = q % 7 == 0 ? -1 : (int64_t)(gpu_rng_next(&r) % rows);
        self[q] = q % 3 == 0 ? -1 : q * 5;
        query_scale[q] = q % 2 ? 2.0f : 1.0f;
    }
    for (int64_t c = 0; c < n_cand; c++) {
        col_scale[c] = c % 3 == 0 ? 0.5f : (c % 3 == 1 ? 1.0f : 2.0f);
        allowed[c] = gpu_rng_unit(&r) < 0.8;
    }
    topn_filter flt = {&liked, exclude_row, col_scale, query_scale, self, allowed};

    answers cpu, gpu;
    run_both(Q, nq, C, n_cand, f, &flt, n, &cpu, &gpu);
    assert_answers("filters", nq, n, &gpu, &cpu, 0);

    /* Some rows came up short, and nothing filtered came back. */
    int short_rows = 0;
    for (int64_t q = 0; q < nq; q++) {
        short_rows += gpu.n_out[q] < n;
        for (int k = 0; k < gpu.n_out[q]; k++) {
            int64_t c = gpu.idx[(size_t)q * n + (size_t)k];
            assert_true(allowed[c]);
            assert_true(c != self[q]);
            if (exclude_row[q] < 0) continue;
            for (int64_t e = liked.indptr[exclude_row[q]]; e < liked.indptr[exclude_row[q] + 1];
                 e++)
                assert_true(liked.indices[e] != c);
        }
    }
    assert_true(short_rows > 0);

    answers_free(&cpu);
    answers_free(&gpu);
    csr_free(&liked);
    free(exclude_row);
    free(self);
    free(col_scale);
    free(query_scale);
    free(allowed);
    free(Q);
    free(C);
}

/* Similar items by cosine: every item queries all items, itself left out; zero vectors have
 * similarity 0 with everything (ties, broken by index). */
static void test_topn_cosine_similar_items(void **state)
{
    (void)state;
    const int64_t items = 400;
    const int f = 16, n = 10;
    float *Y = random_floats(items, f, 9);
    for (int j = 0; j < f; j++) Y[7 * f + j] = Y[123 * f + j] = 0.0f;
    float *inv = malloc((size_t)items * sizeof *inv);
    int64_t *self = malloc((size_t)items * sizeof *self);
    row_inv_norms(Y, items, f, inv);
    for (int64_t i = 0; i < items; i++) self[i] = i;
    topn_filter flt = {NULL, NULL, inv, inv, self, NULL};

    answers cpu, gpu;
    run_both(Y, items, Y, items, f, &flt, n, &cpu, &gpu);
    assert_answers("cosine", items, n, &gpu, &cpu, 1e-5);
    for (int k = 0; k < n; k++) {
        assert_true(gpu.score[7 * n + k] == 0.0f);
        assert_true(gpu.score[(size_t)k] <= 1.0f + 1e-5f);
    }
    assert_int_equal(gpu.idx[7 * n], 0); /* all ties: the lowest index first */

    answers_free(&cpu);
    answers_free(&gpu);
    free(Y);
    free(inv);
    free(self);
}

/* n beyond the shared-memory sort (2048 keys): the global scratch path, exact data. */
static void test_topn_large_n(void **state)
{
    (void)state;
    const int64_t nq = 6, n_cand = 5000;
    const int f = 3, n = 3000;
    float *Q = random_ints(nq, f, 10), *C = random_ints(n_cand, f, 11);
    answers cpu, gpu;
    run_both(Q, nq, C, n_cand, f, NULL, n, &cpu, &gpu);
    assert_answers("large n", nq, n, &gpu, &cpu, 0);
    for (int64_t q = 0; q < nq; q++) assert_int_equal(gpu.n_out[q], n);
    answers_free(&cpu);
    answers_free(&gpu);
    free(Q);
    free(C);
}

/* A NaN score ranks below every number but is still a candidate, as on the CPU. */
static void test_topn_nan_ranks_last(void **state)
{
    (void)state;
    const int64_t nq = 3, n_cand = 50;
    const int f = 4, n = 50;
    float *Q = random_ints(nq, f, 12), *C = random_ints(n_cand, f, 13);
    C[17 * f + 1] = NAN;
    answers cpu, gpu;
    run_both(Q, nq, C, n_cand, f, NULL, n, &cpu, &gpu);
    assert_answers("NaN", nq, n, &gpu, &cpu, 0);
    for (int64_t q = 0; q < nq; q++) {
        assert_int_equal(gpu.n_out[q], n_cand);
        assert_int_equal(gpu.idx[(size_t)q * n + (size_t)(n_cand - 1)], 17);
        assert_true(isnan(gpu.score[(size_t)q * n + (size_t)(n_cand - 1)]));
    }
    answers_free(&cpu);
    answers_free(&gpu);
    free(Q);
    free(C);
}

/* n = 0, no queries, no candidates: empty answers, no device work needed. */
static void test_topn_edge_sizes(void **state)
{
    (void)state;
    float Q[8] = {1, 2, 3, 4, 5, 6, 7, 8}, C[4] = {1, 0, 0, 1};
    int64_t idx[4];
    float score[4];
    int n_out[4] = {9, 9, 9, 9};
    assert_int_equal(cuda_topn(Q, 4, C, 2, 2, NULL, 0, idx, score, n_out), GPUALS_OK);
    for (int q = 0; q < 4; q++) assert_int_equal(n_out[q], 0);
    assert_int_equal(cuda_topn(Q, 0, C, 2, 2, NULL, 3, idx, score, n_out), GPUALS_OK);
    n_out[0] = 9;
    assert_int_equal(cuda_topn(Q, 1, C, 0, 2, NULL, 3, idx, score, n_out), GPUALS_OK);
    assert_int_equal(n_out[0], 0);
    assert_int_equal(cuda_topn(Q, 1, C, 2, 0, NULL, 3, idx, score, n_out), GPUALS_ERR_USAGE);
}

/* The most queries cuda_topn puts in one batch (TOPN_MAX_BATCH in cuda/topn.cu); with few
 * candidates every batch is this full. */
#define TOPN_BATCH_QUERIES 16384

/* Two full batches and a partial third, exact data: each batch's queries, scales, self
 * exclusions and liked rows must line up with the rows its answers go to. */
static void test_topn_many_batches(void **state)
{
    (void)state;
    const int64_t nq = 2 * TOPN_BATCH_QUERIES + 77, n_cand = 40, rows = 500;
    const int f = 3, n = 12;
    float *Q = random_ints(nq, f, 14), *C = random_ints(n_cand, f, 15);
    csr liked = {0};
    random_pattern(rows, n_cand, 0.25, 16, &liked);
    int64_t *exclude_row = malloc((size_t)nq * sizeof *exclude_row);
    int64_t *self = malloc((size_t)nq * sizeof *self);
    float *query_scale = malloc((size_t)nq * sizeof *query_scale);
    assert_true(exclude_row && self && query_scale);
    gpu_rng r = {17};
    for (int64_t q = 0; q < nq; q++) {
        exclude_row[q] = q % 5 == 0 ? -1 : (int64_t)(gpu_rng_next(&r) % rows);
        self[q] = q % 4 == 0 ? -1 : q % n_cand;
        query_scale[q] = q % 3 == 0 ? 2.0f : 1.0f;
    }
    topn_filter flt = {&liked, exclude_row, NULL, query_scale, self, NULL};

    answers cpu, gpu;
    run_both(Q, nq, C, n_cand, f, &flt, n, &cpu, &gpu);
    assert_answers("many batches", nq, n, &gpu, &cpu, 0);
    for (int64_t q = 0; q < nq; q++) assert_true(gpu.n_out[q] > 0);

    answers_free(&cpu);
    answers_free(&gpu);
    csr_free(&liked);
    free(exclude_row);
    free(self);
    free(query_scale);
    free(Q);
    free(C);
}

/* Queries with nothing left: liked items that cover every allowed one, the query itself as the
 * last allowed item, and an allow list with no item. Their count is 0 and no cell is written,
 * on either side. */
static void test_topn_nothing_left(void **state)
{
    (void)state;
    const int64_t nq = 4, n_cand = 30;
    const int f = 3, n = 5;
    float *Q = random_ints(nq, f, 18), *C = random_ints(n_cand, f, 19);

    /* Allowed: items 3, 11 and 20. Row 0 of the liked items holds all three (and 25), row 1
     * holds 3 and 11. Query 0 likes row 0 (nothing left), query 1 nothing (three left), query 2
     * row 1 (item 20 left), query 3 row 1 and is item 20 itself (nothing left). */
    unsigned char allowed[30] = {0};
    allowed[3] = allowed[11] = allowed[20] = 1;
    int32_t ri[] = {0, 0, 0, 0, 1, 1}, ci[] = {3, 11, 20, 25, 3, 11};
    float v[] = {1, 1, 1, 1, 1, 1};
    csr liked = {0};
    assert_int_equal(csr_from_triplets(2, n_cand, 6, ri, ci, v, &liked, NULL), GPUALS_OK);
    int64_t exclude_row[] = {0, -1, 1, 1}, self[] = {-1, -1, -1, 20};
    topn_filter flt = {&liked, exclude_row, NULL, NULL, self, allowed};

    answers cpu = answers_new(nq, n), gpu = answers_new(nq, n);
    answers_mark(&cpu, nq, n);
    answers_mark(&gpu, nq, n);
    run_both_into(Q, nq, C, n_cand, f, &flt, n, &cpu, &gpu);
    assert_answers("nothing left", nq, n, &gpu, &cpu, 0);
    const int want[] = {0, 3, 1, 0};
    for (int64_t q = 0; q < nq; q++) assert_int_equal(gpu.n_out[q], want[q]);
    assert_rest_untouched("nothing left (GPU)", nq, n, &gpu);
    assert_rest_untouched("nothing left (CPU)", nq, n, &cpu);

    /* No item allowed at all. */
    memset(allowed, 0, sizeof allowed);
    answers_mark(&cpu, nq, n);
    answers_mark(&gpu, nq, n);
    run_both_into(Q, nq, C, n_cand, f, &flt, n, &cpu, &gpu);
    for (int64_t q = 0; q < nq; q++) {
        assert_int_equal(gpu.n_out[q], 0);
        assert_int_equal(cpu.n_out[q], 0);
    }
    assert_rest_untouched("none allowed (GPU)", nq, n, &gpu);
    assert_rest_untouched("none allowed (CPU)", nq, n, &cpu);

    answers_free(&cpu);
    answers_free(&gpu);
    csr_free(&liked);
    free(Q);
    free(C);
}

/* topn_batch_on under auto with a usable GPU: the GPU answers, and the note names it. */
static void test_topn_auto_uses_gpu(void **state)
{
    (void)state;
    const int64_t nq = 30, n_cand = 200;
    const int f = 4, n = 10;
    float *Q = random_ints(nq, f, 20), *C = random_ints(n_cand, f, 21);
    answers cpu = answers_new(nq, n), got = answers_new(nq, n);
    assert_int_equal(topn_batch(Q, nq, C, n_cand, f, NULL, n, cpu.idx, cpu.score, cpu.n_out),
                     GPUALS_OK);
    gpuals_device used = (gpuals_device)-1;
    char note[512] = "";
    gpuals_status st = topn_batch_on(GPUALS_DEVICE_AUTO, Q, nq, C, n_cand, f, NULL, n, got.idx,
                                     got.score, got.n_out, &used, note, sizeof note);
    if (st != GPUALS_OK) fail_msg("topn_batch_on: %s", gpuals_last_error());
    assert_int_equal(used, GPUALS_DEVICE_GPU);
    if (strncmp(note, "ranking on GPU 0: ", 18) != 0) fail_msg("note: %s", note);
    assert_answers("auto", nq, n, &got, &cpu, 0);
    answers_free(&cpu);
    answers_free(&got);
    free(Q);
    free(C);
}

/* Device memory held by the fallback test, so that a problem no longer fits. */
#define HOG_LEFT ((size_t)128 << 20) /* bytes left free */
#define HOG_MAX_BLOCKS 4096
static void *hog_blocks[HOG_MAX_BLOCKS];
static int hog_count;

/* Give back what hog_setup took. */
static int hog_teardown(void **state)
{
    (void)state;
    while (hog_count > 0) cudaFree(hog_blocks[--hog_count]);
    cudaGetLastError();
    return 0;
}

/* Allocate device memory until about HOG_LEFT bytes are free (blocks of at most 1 GiB, halved
 * when an allocation fails). */
static int hog_setup(void **state)
{
    size_t free_b = 0, total_b = 0, block = (size_t)1 << 30;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return -1;
    while (hog_count < HOG_MAX_BLOCKS && free_b > HOG_LEFT + ((size_t)1 << 20)) {
        size_t take = free_b - HOG_LEFT < block ? free_b - HOG_LEFT : block;
        void *p = NULL;
        if (cudaMalloc(&p, take) != cudaSuccess) {
            cudaGetLastError();
            if (block <= ((size_t)1 << 20)) break;
            block /= 2;
            continue;
        }
        hog_blocks[hog_count++] = p;
        if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
            hog_teardown(state);
            return -1;
        }
    }
    return 0;
}

/* With the GPU's memory nearly all taken, auto answers on the CPU (the same answers) and says
 * that the GPU had too little memory; --device gpu fails with the shortage and leaves *used
 * alone. The candidates alone need about 276 MiB on the device. */
static void test_topn_auto_falls_back_when_gpu_memory_is_short(void **state)
{
    (void)state;
    size_t free_b = 0, total_b = 0;
    assert_int_equal(cudaMemGetInfo(&free_b, &total_b), cudaSuccess);
    const int64_t nq = 3, n_cand = (int64_t)1 << 22;
    const int f = 16, n = 20;
    const size_t need = (size_t)n_cand * ((size_t)f * sizeof(float) + sizeof(float) + 1);
    if (free_b >= need)
        fail_msg("%.1f MiB still free after taking device memory; the test needs under %.1f",
                 (double)free_b / (1 << 20), (double)need / (1 << 20));

    float *Q = random_ints(nq, f, 22), *C = random_ints(n_cand, f, 23);
    answers cpu = answers_new(nq, n), got = answers_new(nq, n);
    assert_int_equal(topn_batch(Q, nq, C, n_cand, f, NULL, n, cpu.idx, cpu.score, cpu.n_out),
                     GPUALS_OK);
    gpuals_device used = (gpuals_device)-1;
    char note[512] = "";
    gpuals_status st = topn_batch_on(GPUALS_DEVICE_AUTO, Q, nq, C, n_cand, f, NULL, n, got.idx,
                                     got.score, got.n_out, &used, note, sizeof note);
    if (st != GPUALS_OK) fail_msg("topn_batch_on (auto): %s", gpuals_last_error());
    assert_int_equal(used, GPUALS_DEVICE_CPU);
    if (strncmp(note, GPUALS_NOTE_GPU_TOO_SMALL, strlen(GPUALS_NOTE_GPU_TOO_SMALL)) != 0)
        fail_msg("note: %s", note);
    assert_answers("fallback", nq, n, &got, &cpu, 0);

    used = (gpuals_device)-1;
    assert_int_equal(topn_batch_on(GPUALS_DEVICE_GPU, Q, nq, C, n_cand, f, NULL, n, got.idx,
                                   got.score, got.n_out, &used, note, sizeof note),
                     GPUALS_ERR_NOMEM);
    assert_int_equal(used, (gpuals_device)-1);

    answers_free(&cpu);
    answers_free(&got);
    free(Q);
    free(C);
}

int main(int argc, char **argv)
{
    gpu_test_skip_unless_device();
    gpu_test_filter(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topn_random_dot),
        cmocka_unit_test(test_topn_exact_ties),
        cmocka_unit_test(test_topn_filters_and_short_answers),
        cmocka_unit_test(test_topn_cosine_similar_items),
        cmocka_unit_test(test_topn_large_n),
        cmocka_unit_test(test_topn_nan_ranks_last),
        cmocka_unit_test(test_topn_edge_sizes),
        cmocka_unit_test(test_topn_many_batches),
        cmocka_unit_test(test_topn_nothing_left),
        cmocka_unit_test(test_topn_auto_uses_gpu),
        cmocka_unit_test_setup_teardown(test_topn_auto_falls_back_when_gpu_memory_is_short,
                                        hog_setup, hog_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
