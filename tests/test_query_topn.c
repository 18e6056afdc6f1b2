/*
 * test_query_topn.c - topn_batch against a brute-force full sort on random data (with every
 * kind of filter, n below, at and above the candidate count, more queries than one batch),
 * exact ties going to the lower index, NaN scores ranking last, argument checks,
 * row_inv_norms, and topn_batch_on's device choice as far as it shows without a GPU.
 */
#include "test_query_common.h"

/* A reference candidate: its score in double and its index. */
typedef struct {
    double score;
    int64_t index;
} ref_entry;

static int ref_order(const void *pa, const void *pb)
{
    const ref_entry *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

static void fill_uniform(float *v, int64_t n, uint64_t *st)
{
    for (int64_t k = 0; k < n; k++) v[k] = (float)(2.0 * tq_uniform(st) - 1.0);
}

/* 1 when candidate j may be returned for query q under flt (brute force, no shortcuts). */
static int eligible(const topn_filter *flt, int64_t q, int64_t j)
{
    if (!flt) return 1;
    if (flt->allowed && !flt->allowed[j]) return 0;
    if (flt->self && flt->self[q] == j) return 0;
    if (flt->exclude) {
        int64_t r = flt->exclude_row ? flt->exclude_row[q] : q;
        if (r >= 0)
            for (int64_t k = flt->exclude->indptr[r]; k < flt->exclude->indptr[r + 1]; k++)
                if (flt->exclude->indices[k] == j) return 0;
    }
    return 1;
}

/* Check topn_batch's answer for every query against a full sort of double-precision scores:
 * the count, eligibility, distinctness, each score, the order, and that nothing left out
 * scores clearly above the last one kept. */
static void check_against_sort(const float *Q, int64_t nq, const float *C, int64_t nc, int f,
                               const topn_filter *flt, int n)
{
    int64_t *idx = malloc((size_t)(nq * (n ? n : 1)) * sizeof *idx);
    float *score = malloc((size_t)(nq * (n ? n : 1)) * sizeof *score);
    int *n_out = malloc((size_t)nq * sizeof *n_out);
    ref_entry *ref = malloc((size_t)nc * sizeof *ref);
    unsigned char *seen = malloc((size_t)nc);
    assert_true(idx && score && n_out && ref && seen);
    TQ_OK(topn_batch(Q, nq, C, nc, f, flt, n, idx, score, n_out));

    for (int64_t q = 0; q < nq; q++) {
        /* The reference ranking. */
        int64_t m = 0;
        for (int64_t j = 0; j < nc; j++) {
            if (!eligible(flt, q, j)) continue;
            double s = 0.0;
            for (int k = 0; k < f; k++) s += (double)Q[q * f + k] * C[j * f + k];
            if (flt && flt->col_scale) s *= flt->col_scale[j];
            if (flt && flt->query_scale) s *= flt->query_scale[q];
            ref[m].score = s;
            ref[m++].index = j;
        }
        qsort(ref, (size_t)m, sizeof *ref, ref_order);
        int64_t want = m < n ? m : n;
        assert_int_equal(n_out[q], want);

        /* Each answer: eligible, new, its own score, in order, and truly among the best. */
        memset(seen, 0, (size_t)nc);
        for (int k = 0; k < n_out[q]; k++) {
            int64_t j = idx[q * n + k];
            assert_true(j >= 0 && j < nc);
            assert_true(eligible(flt, q, j));
            assert_false(seen[j]);
            seen[j] = 1;
            double s = 0.0;
            for (int d = 0; d < f; d++) s += (double)Q[q * f + d] * C[j * f + d];
            if (flt && flt->col_scale) s *= flt->col_scale[j];
            if (flt && flt->query_scale) s *= flt->query_scale[q];
            TQ_NEAR(score[q * n + k], s, 1e-5);
            if (k > 0) assert_true(score[q * n + k] <= score[q * n + k - 1]);
            TQ_NEAR(score[q * n + k], ref[k].score, 1e-5);
        }
        if (want > 0 && want < m) {
            double last = score[q * n + want - 1];
            for (int64_t r = 0; r < m; r++)
                if (!seen[ref[r].index]) assert_true(ref[r].score <= last + 1e-5);
        }
    }
    free(idx);
    free(score);
    free(n_out);
    free(ref);
    free(seen);
}

static void test_topn_matches_full_sort(void **state)
{
    (void)state;
    const int f = 7;
    const int64_t nq = 37, nc = 503;
    uint64_t st = 11;
    float *Q = malloc((size_t)(nq * f) * sizeof *Q), *C = malloc((size_t)(nc * f) * sizeof *C);
    assert_true(Q && C);
    fill_uniform(Q, nq * f, &st);
    fill_uniform(C, nc * f, &st);
    int ns[] = {0, 1, 10, 502, 503, 600};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
        check_against_sort(Q, nq, C, nc, f, NULL, ns[k]);
    free(Q);
    free(C);
}

static void test_topn_filters_match_full_sort(void **state)
{
    (void)state;
    const int f = 5;
    const int64_t nq = 300, nc = 211; /* more queries than one batch of 256 */
    uint64_t st = 29;
    float *Q = malloc((size_t)(nq * f) * sizeof *Q), *C = malloc((size_t)(nc * f) * sizeof *C);
    assert_true(Q && C);
    fill_uniform(Q, nq * f, &st);
    fill_uniform(C, nc * f, &st);

    /* Exclusions: 40 rows with random columns; queries use row q % 41 (40 means none). */
    int nt = 1200;
    int32_t *r = malloc((size_t)nt * sizeof *r), *c = malloc((size_t)nt * sizeof *c);
    float *v = malloc((size_t)nt * sizeof *v);
    assert_true(r && c && v);
    for (int k = 0; k < nt; k++) {
        r[k] = (int32_t)(tq_uniform(&st) * 40);
        c[k] = (int32_t)(tq_uniform(&st) * (double)nc);
        v[k] = 1.0f;
    }
    csr ex;
    TQ_OK(csr_from_triplets(40, nc, nt, r, c, v, &ex, NULL));
    int64_t *ex_row = malloc((size_t)nq * sizeof *ex_row);
    int64_t *self = malloc((size_t)nq * sizeof *self);
    unsigned char *allowed = malloc((size_t)nc);
    float *inv_c = malloc((size_t)nc * sizeof *inv_c);
    float *inv_q = malloc((size_t)nq * sizeof *inv_q);
    assert_true(ex_row && self && allowed && inv_c && inv_q);
    for (int64_t q = 0; q < nq; q++) {
        ex_row[q] = q % 41 == 40 ? -1 : q % 41;
        self[q] = q % 3 == 0 ? -1 : (q * 7) % nc;
    }
    for (int64_t j = 0; j < nc; j++) allowed[j] = tq_uniform(&st) < 0.7;
    row_inv_norms(C, nc, f, inv_c);
    row_inv_norms(Q, nq, f, inv_q);

    /* Every filter alone, then all of them together. */
    topn_filter flt;
    int ns[] = {1, 9, 150, 250};
    for (int variant = 0; variant < 5; variant++) {
        memset(&flt, 0, sizeof flt);
        if (variant == 0 || variant == 4) {
            flt.exclude = &ex;
            flt.exclude_row = ex_row;
        }
        if (variant == 1 || variant == 4) flt.self = self;
        if (variant == 2 || variant == 4) flt.allowed = allowed;
        if (variant == 3 || variant == 4) {
            flt.col_scale = inv_c;
            flt.query_scale = inv_q;
        }
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
            check_against_sort(Q, nq, C, nc, f, &flt, ns[k]);
    }

    csr_free(&ex);
    free(r);
    free(c);
    free(v);
    free(ex_row);
    free(self);
    free(allowed);
    free(inv_c);
    free(inv_q);
    free(Q);
    free(C);
}

/* Integer factors make every dot product exact, so equal scores are truly equal. */
static void test_topn_ties_go_to_lower_index(void **state)
{
    (void)state;
    const int f = 2;
    const float Q[] = {1, 1};
    /* Scores: 3, 2, 3, 1, 3, 2, 5. */
    const float C[] = {1, 2, 2, 0, 0, 3, 1, 0, 3, 0, 1, 1, 4, 1};
    int64_t idx[7];
    float score[7];
    int n_out;
    TQ_OK(topn_batch(Q, 1, C, 7, f, NULL, 7, idx, score, &n_out));
    const int64_t want[] = {6, 0, 2, 4, 1, 5, 3};
    assert_int_equal(n_out, 7);
    for (int k = 0; k < 7; k++) assert_int_equal(idx[k], want[k]);

    /* With room for only two of the three 3s, the two lowest indices stay. */
    TQ_OK(topn_batch(Q, 1, C, 7, f, NULL, 3, idx, score, &n_out));
    assert_int_equal(n_out, 3);
    assert_int_equal(idx[0], 6);
    assert_int_equal(idx[1], 0);
    assert_int_equal(idx[2], 2);
}

static void test_topn_nan_ranks_last(void **state)
{
    (void)state;
    const float Q[] = {1, 0};
    const float C[] = {0.5f, 0, NAN, 0, -2, 0, 1, 0};
    int64_t idx[4];
    float score[4];
    int n_out;
    TQ_OK(topn_batch(Q, 1, C, 4, 2, NULL, 4, idx, score, &n_out));
    assert_int_equal(n_out, 4);
    assert_int_equal(idx[0], 3);
    assert_int_equal(idx[1], 0);
    /* NaN is below -2: the order is 3, 0, 2 (-2), then the NaN row 1. */
    assert_int_equal(idx[2], 2);
    assert_int_equal(idx[3], 1);
    assert_true(isnan(score[3]));
}

static void test_topn_rejects_bad_arguments(void **state)
{
    (void)state;
    const float Q[] = {1, 0}, C[] = {1, 0, 0, 1};
    int64_t idx[2];
    float score[2];
    int n_out = -1;
    assert_int_equal(topn_batch(Q, 1, C, 2, 0, NULL, 2, idx, score, &n_out), GPUALS_ERR_USAGE);
    assert_int_equal(topn_batch(Q, 1, C, 2, 2, NULL, -1, idx, score, &n_out), GPUALS_ERR_USAGE);

    /* An exclusion row beyond the matrix is refused before any work. */
    int32_t r[] = {0}, c[] = {1};
    float v[] = {1};
    csr ex;
    TQ_OK(csr_from_triplets(1, 2, 1, r, c, v, &ex, NULL));
    int64_t row = 1;
    topn_filter flt = {.exclude = &ex, .exclude_row = &row};
    assert_int_equal(topn_batch(Q, 1, C, 2, 2, &flt, 2, idx, score, &n_out), GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "row 1"));
    row = 0;
    TQ_OK(topn_batch(Q, 1, C, 2, 2, &flt, 2, idx, score, &n_out));
    assert_int_equal(n_out, 1);
    assert_int_equal(idx[0], 0);
    csr_free(&ex);

    /* No candidates: nothing returned, no error. */
    TQ_OK(topn_batch(Q, 1, C, 0, 2, NULL, 2, idx, score, &n_out));
    assert_int_equal(n_out, 0);
}

static void test_row_inv_norms(void **state)
{
    (void)state;
    const float F[] = {3, 4, 0, 0, 0, -2};
    float out[3];
    row_inv_norms(F, 3, 2, out);
    TQ_NEAR(out[0], 0.2, 1e-7);
    assert_true(out[1] == 0.0f);
    TQ_NEAR(out[2], 0.5, 1e-7);
}

/* topn_batch_on: the CPU answers as topn_batch does, with a note; auto answers the same
 * (exact scores: integer factors) on whichever device it names; gpu either answers on the GPU or
 * fails with NO_DEVICE, leaving *used alone. */
static void test_topn_on_devices(void **state)
{
    (void)state;
    const int f = 2;
    const float Q[] = {1, 1, 2, -1};
    const float C[] = {1, 2, 2, 0, 0, 3, 1, 0, 3, 0, 1, 1, 4, 1};
    int64_t want_idx[2 * 4], idx[2 * 4];
    float want_score[2 * 4], score[2 * 4];
    int want_n[2], n_out[2];
    TQ_OK(topn_batch(Q, 2, C, 7, f, NULL, 4, want_idx, want_score, want_n));

    const gpuals_device devs[] = {GPUALS_DEVICE_CPU, GPUALS_DEVICE_AUTO};
    for (int d = 0; d < 2; d++) {
        gpuals_device used = (gpuals_device)-1;
        char note[512] = "";
        TQ_OK(topn_batch_on(devs[d], Q, 2, C, 7, f, NULL, 4, idx, score, n_out, &used, note,
                            sizeof note));
        if (devs[d] == GPUALS_DEVICE_CPU) assert_string_equal(note, "ranking on the CPU");
        if (used == GPUALS_DEVICE_GPU)
            assert_non_null(strstr(note, "ranking on GPU 0: "));
        else
            assert_true(used == GPUALS_DEVICE_CPU && strstr(note, "ranking on the CPU"));
        for (int q = 0; q < 2; q++) assert_int_equal(n_out[q], want_n[q]);
        assert_memory_equal(idx, want_idx, sizeof idx);
        assert_memory_equal(score, want_score, sizeof score);
    }

    gpuals_device used = (gpuals_device)-1;
    gpuals_status s = topn_batch_on(GPUALS_DEVICE_GPU, Q, 2, C, 7, f, NULL, 4, idx, score,
                                    n_out, &used, NULL, 0);
    if (s == GPUALS_OK) {
        assert_int_equal(used, GPUALS_DEVICE_GPU);
    } else {
        assert_int_equal(s, GPUALS_ERR_NO_DEVICE);
        assert_int_equal(used, (gpuals_device)-1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topn_matches_full_sort),
        cmocka_unit_test(test_topn_filters_match_full_sort),
        cmocka_unit_test(test_topn_ties_go_to_lower_index),
        cmocka_unit_test(test_topn_nan_ranks_last),
        cmocka_unit_test(test_topn_rejects_bad_arguments),
        cmocka_unit_test(test_row_inv_norms),
        cmocka_unit_test(test_topn_on_devices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
