/*
 * test_split.c - train/test splits: an exact partition of the stored entries for both
 * protocols on random matrices and several seeds, the leave-k-out eligibility rule, the seed's
 * effect, bad options, the train-side dataset, the empty-test check and the validation split.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "csr.h"
#include "dataset.h"
#include "idmap.h"
#include "split.h"

/* A random rows x cols CSR from n triplets drawn by a small LCG (duplicates merged). */
static void random_csr(uint64_t state, int64_t rows, int64_t cols, int n, csr *out)
{
    int32_t *r = malloc((size_t)n * sizeof *r), *c = malloc((size_t)n * sizeof *c);
    float *v = malloc((size_t)n * sizeof *v);
    assert_non_null(r);
    assert_non_null(c);
    assert_non_null(v);
    for (int k = 0; k < n; k++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t x = state >> 16;
        /* Skew rows so that some users have many entries and some very few. */
        int64_t row = (int64_t)((x % (uint64_t)rows) * ((x >> 20) % (uint64_t)rows) /
                                (uint64_t)rows);
        r[k] = (int32_t)row;
        c[k] = (int32_t)((x >> 8) % (uint64_t)cols);
        v[k] = 0.5f * (float)(1 + (x >> 40) % 10);
    }
    assert_int_equal(csr_from_triplets(rows, cols, n, r, c, v, out, NULL), GPUALS_OK);
    free(r);
    free(c);
    free(v);
}

/* Every stored entry of a is in exactly one of train and test, with the same value, and both
 * are valid CSRs of a's shape. */
static void assert_partition(const csr *a, const csr *train, const csr *test)
{
    assert_int_equal(csr_validate(train), GPUALS_OK);
    assert_int_equal(csr_validate(test), GPUALS_OK);
    assert_int_equal(train->rows, a->rows);
    assert_int_equal(test->rows, a->rows);
    assert_int_equal(train->cols, a->cols);
    assert_int_equal(test->cols, a->cols);
    assert_int_equal(train->nnz + test->nnz, a->nnz);
    for (int64_t u = 0; u < a->rows; u++) {
        int64_t p = train->indptr[u], q = test->indptr[u];
        for (int64_t j = a->indptr[u]; j < a->indptr[u + 1]; j++) {
            int in_train = p < train->indptr[u + 1] && train->indices[p] == a->indices[j];
            int in_test = q < test->indptr[u + 1] && test->indices[q] == a->indices[j];
            assert_true(in_train + in_test == 1);
            if (in_train) assert_true(train->data[p++] == a->data[j]);
            if (in_test) assert_true(test->data[q++] == a->data[j]);
        }
        assert_int_equal(p, train->indptr[u + 1]);
        assert_int_equal(q, test->indptr[u + 1]);
    }
}

static void test_random_split_partitions(void **state)
{
    (void)state;
    const uint64_t seeds[] = {0, 1, 42, 123456789, 0xffffffffffffffffull};
    for (int m = 0; m < 3; m++) {
        csr a;
        random_csr(1000 + (uint64_t)m, 60, 45, 1500, &a);
        for (int s = 0; s < 5; s++) {
            split_options o;
            split_options_default(&o);
            o.seed = seeds[s];
            csr train, test;
            assert_int_equal(split_csr(&a, &o, &train, &test), GPUALS_OK);
            assert_partition(&a, &train, &test);
            /* About a fifth goes to test: sd sqrt(nnz * 0.16) is about 14 here, allow 5 sd. */
            double share = (double)test.nnz / (double)a.nnz;
            assert_true(share > 0.2 - 70.0 / (double)a.nnz);
            assert_true(share < 0.2 + 70.0 / (double)a.nnz);
            csr_free(&train);
            csr_free(&test);
        }
        csr_free(&a);
    }
}

static void test_random_split_edges(void **state)
{
    (void)state;
    csr a, train, test;
    random_csr(7, 20, 20, 200, &a);
    split_options o;
    split_options_default(&o);

    /* Fraction 0 keeps everything in train, fraction 1 moves everything to test. */
    o.test_fraction = 0.0;
    assert_int_equal(split_csr(&a, &o, &train, &test), GPUALS_OK);
    assert_partition(&a, &train, &test);
    assert_int_equal(test.nnz, 0);
    csr_free(&train);
    csr_free(&test);
    o.test_fraction = 1.0;
    assert_int_equal(split_csr(&a, &o, &train, &test), GPUALS_OK);
    assert_partition(&a, &train, &test);
    assert_int_equal(train.nnz, 0);
    csr_free(&train);
    csr_free(&test);

    /* Out-of-range options are refused. */
    o.test_fraction = 1.5;
    assert_int_equal(split_csr(&a, &o, &train, &test), GPUALS_ERR_USAGE);
    o.test_fraction = -0.1;
    assert_int_equal(split_csr(&a, &o, &train, &test), GPUALS_ERR_USAGE);
    o.kind = SPLIT_LEAVE_K_OUT;
    o.leave_k = 0;
    assert_int_equal(split_csr(&a, &o, &train, &test), GPUALS_ERR_USAGE);
    csr_free(&a);
}

static void test_leave_k_out_partitions(void **state)
{
    (void)state;
    const int ks[] = {1, 2, 5};
    for (int m = 0; m < 3; m++) {
        csr a;
        random_csr(2000 + (uint64_t)m, 50, 40, 900, &a);
        for (int s = 0; s < 4; s++) {
            split_options o;
            split_options_default(&o);
            o.kind = SPLIT_LEAVE_K_OUT;
            o.leave_k = ks[m];
            o.seed = (uint64_t)s * 977;
            csr train, test;
            assert_int_equal(split_csr(&a, &o, &train, &test), GPUALS_OK);
            assert_partition(&a, &train, &test);

            /* Exactly K held out of each user with more than K + 1 entries, none elsewhere. */
            int eligible = 0, ineligible = 0;
            for (int64_t u = 0; u < a.rows; u++) {
                int64_t len = csr_row_len(&a, u);
                if (len > ks[m] + 1) {
                    assert_int_equal(csr_row_len(&test, u), ks[m]);
                    eligible++;
                } else {
                    assert_int_equal(csr_row_len(&test, u), 0);
                    ineligible++;
                }
            }
            /* The skewed generator gives both kinds of user. */
            assert_true(eligible > 0);
            assert_true(ineligible > 0);
            csr_free(&train);
            csr_free(&test);
        }
        csr_free(&a);
    }
}

/* The same seed gives the same split; another seed a different one. */
static void test_seed_decides(void **state)
{
    (void)state;
    csr a;
    random_csr(99, 40, 40, 1000, &a);
    for (int kind = 0; kind < 2; kind++) {
        split_options o;
        split_options_default(&o);
        o.kind = kind == 0 ? SPLIT_RANDOM : SPLIT_LEAVE_K_OUT;
        o.seed = 5;
        csr tr1, te1, tr2, te2, tr3, te3;
        assert_int_equal(split_csr(&a, &o, &tr1, &te1), GPUALS_OK);
        assert_int_equal(split_csr(&a, &o, &tr2, &te2), GPUALS_OK);
        o.seed = 6;
        assert_int_equal(split_csr(&a, &o, &tr3, &te3), GPUALS_OK);
        assert_int_equal(te1.nnz, te2.nnz);
        assert_memory_equal(te1.indptr, te2.indptr, (size_t)(a.rows + 1) * sizeof(int64_t));
        assert_memory_equal(te1.indices, te2.indices, (size_t)te1.nnz * sizeof(int32_t));
        int same = te1.nnz == te3.nnz &&
                   memcmp(te1.indptr, te3.indptr, (size_t)(a.rows + 1) * sizeof(int64_t)) == 0 &&
                   memcmp(te1.indices, te3.indices, (size_t)te1.nnz * sizeof(int32_t)) == 0;
        assert_false(same);
        csr_free(&tr1);
        csr_free(&te1);
        csr_free(&tr2);
        csr_free(&te2);
        csr_free(&tr3);
        csr_free(&te3);
    }
    csr_free(&a);
}

/* The draw is a pure function of (seed, row, col) in [0, 1). */
static void test_draw_is_stable(void **state)
{
    (void)state;
    double d = split_draw(3, 10, 20);
    assert_true(d >= 0.0 && d < 1.0);
    assert_true(d == split_draw(3, 10, 20));
    assert_true(d != split_draw(4, 10, 20));
    assert_true(d != split_draw(3, 20, 10));
}

/* Split kinds by name, both ways. */
static void test_kind_names(void **state)
{
    (void)state;
    split_kind k = SPLIT_RANDOM;
    assert_int_equal(split_kind_parse("leave-k-out", &k), GPUALS_OK);
    assert_int_equal(k, SPLIT_LEAVE_K_OUT);
    assert_string_equal(split_kind_name(k), "leave-k-out");
    assert_int_equal(split_kind_parse("random", &k), GPUALS_OK);
    assert_int_equal(k, SPLIT_RANDOM);
    assert_string_equal(split_kind_name(k), "random");
    assert_int_equal(split_kind_parse("leave-one-out", &k), GPUALS_ERR_USAGE);
}

/* The train-side dataset has the train matrix, its transpose, the same ids and titles. */
static void test_train_data(void **state)
{
    (void)state;
    const char *users[] = {"u7", "u3", "u7", "u9", "u3", "u9", "u9"};
    const char *items[] = {"a", "b", "c", "a", "c", "b", "c"};
    const float values[] = {5, 4, 3, 2, 1, 4, 5};
    gpuals_data *d = NULL;
    assert_int_equal(dataset_from_triplets(7, users, items, values, &d), GPUALS_OK);
    d->titles = calloc(3, sizeof *d->titles);
    assert_non_null(d->titles);
    d->titles[0] = strdup("Alpha (1999)");
    d->titles[2] = strdup("Gamma, The");

    split_options o;
    split_options_default(&o);
    o.test_fraction = 0.5;
    o.seed = 11;
    csr train, test;
    assert_int_equal(split_csr(&d->ratings, &o, &train, &test), GPUALS_OK);
    gpuals_data *t = NULL;
    assert_int_equal(split_train_data(d, &train, &t), GPUALS_OK);

    /* Matrix and transpose. */
    assert_int_equal(t->ratings.nnz, train.nnz);
    assert_memory_equal(t->ratings.indptr, train.indptr, 4 * sizeof(int64_t));
    assert_int_equal(t->summary.stored, train.nnz);
    csr tt;
    assert_int_equal(csr_transpose(&train, &tt), GPUALS_OK);
    assert_int_equal(t->ratings_t.rows, 3);
    assert_int_equal(t->ratings_t.nnz, tt.nnz);
    assert_memory_equal(t->ratings_t.indptr, tt.indptr, 4 * sizeof(int64_t));
    csr_free(&tt);

    /* Ids and titles. */
    for (int64_t u = 0; u < 3; u++)
        assert_string_equal(idmap_name(t->users, u), idmap_name(d->users, u));
    for (int64_t i = 0; i < 3; i++)
        assert_string_equal(idmap_name(t->items, i), idmap_name(d->items, i));
    assert_string_equal(t->titles[0], "Alpha (1999)");
    assert_null(t->titles[1]);
    assert_string_equal(t->titles[2], "Gamma, The");
    gpuals_data_free(t);

    /* A matrix of another shape is refused. */
    csr small;
    const int32_t r0[] = {0}, c0[] = {0};
    const float v0[] = {1};
    assert_int_equal(csr_from_triplets(2, 3, 1, r0, c0, v0, &small, NULL), GPUALS_OK);
    assert_int_equal(split_train_data(d, &small, &t), GPUALS_ERR_USAGE);
    assert_null(t);
    csr_free(&small);
    csr_free(&train);
    csr_free(&test);
    gpuals_data_free(d);
}

/* split_check_test: an empty test side is GPUALS_ERR_EMPTY with a reason in the protocol's
 * terms; a test side with an entry passes. */
static void test_check_test(void **state)
{
    (void)state;
    csr a, train, test;
    random_csr(31, 30, 30, 400, &a);
    split_options o;
    split_options_default(&o);

    /* Random: fraction 0 holds nothing out; the default holds something out. */
    o.test_fraction = 0.0;
    assert_int_equal(split_csr(&a, &o, &train, &test), GPUALS_OK);
    assert_int_equal(split_check_test(&a, &o, &test), GPUALS_ERR_EMPTY);
    assert_non_null(strstr(gpuals_last_error(), "no test interactions"));
    csr_free(&train);
    csr_free(&test);
    o.test_fraction = 0.2;
    assert_int_equal(split_csr(&a, &o, &train, &test), GPUALS_OK);
    assert_int_equal(split_check_test(&a, &o, &test), GPUALS_OK);
    csr_free(&train);
    csr_free(&test);

    /* Fraction 1 holds everything out, leaving nothing to train on. */
    o.test_fraction = 1.0;
    assert_int_equal(split_csr(&a, &o, &train, &test), GPUALS_OK);
    assert_int_equal(split_check_test(&a, &o, &test), GPUALS_ERR_EMPTY);
    char all[128];
    snprintf(all, sizeof all, "no training interactions: the random split (test fraction 1) "
             "held out all of the %lld interactions", (long long)a.nnz);
    assert_non_null(strstr(gpuals_last_error(), all));
    csr_free(&train);
    csr_free(&test);

    /* Leave-k-out with K past every row: no eligible user, and the longest row is named. */
    int64_t most = 0;
    for (int64_t u = 0; u < a.rows; u++)
        if (csr_row_len(&a, u) > most) most = csr_row_len(&a, u);
    o.kind = SPLIT_LEAVE_K_OUT;
    o.leave_k = (int)most;
    assert_int_equal(split_csr(&a, &o, &train, &test), GPUALS_OK);
    assert_int_equal(test.nnz, 0);
    assert_int_equal(split_check_test(&a, &o, &test), GPUALS_ERR_EMPTY);
    assert_non_null(strstr(gpuals_last_error(), "no eligible user"));
    char longest[64];
    snprintf(longest, sizeof longest, "the most any user has is %lld", (long long)most);
    assert_non_null(strstr(gpuals_last_error(), longest));
    csr_free(&train);
    csr_free(&test);
    csr_free(&a);
}

/* qsort order of C strings. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The test ("t") and validation ("v") entries of a split of d as "side user item" lines, sorted
 * (the caller frees each and the array). */
static char **test_pairs(const gpuals_data *d, split_kind kind, int *n)
{
    split_options o;
    split_options_default(&o);
    o.kind = kind;
    o.test_fraction = 0.4;
    o.leave_k = 2;
    o.seed = 5;
    assert_int_equal(split_use_ids(d, &o), GPUALS_OK);
    csr train, test, fit, valid;
    assert_int_equal(split_csr(&d->ratings, &o, &train, &test), GPUALS_OK);
    assert_int_equal(split_validation(&train, 0.5, &o, &fit, &valid), GPUALS_OK);
    split_keys_free(&o);
    char **pairs = calloc((size_t)(test.nnz + valid.nnz), sizeof *pairs);
    assert_non_null(pairs);
    *n = 0;
    const csr *sides[2] = {&test, &valid};
    for (int k = 0; k < 2; k++)
        for (int64_t u = 0; u < sides[k]->rows; u++)
            for (int64_t j = sides[k]->indptr[u]; j < sides[k]->indptr[u + 1]; j++) {
                char line[64];
                snprintf(line, sizeof line, "%c %s %s", k ? 'v' : 't', idmap_name(d->users, u),
                         idmap_name(d->items, sides[k]->indices[j]));
                pairs[(*n)++] = strdup(line);
            }
    qsort(pairs, (size_t)*n, sizeof *pairs, cmp_str);
    csr_free(&train);
    csr_free(&test);
    csr_free(&fit);
    csr_free(&valid);
    return pairs;
}

/* The same interactions in another order (which numbers users and items differently) are
 * split the same way, test and validation sides alike, by either protocol. */
static void test_split_ignores_file_order(void **state)
{
    (void)state;
    enum { N = 240 };
    static char ubuf[N][8], ibuf[N][8];
    const char *users[N], *items[N], *ru[N], *ri[N];
    float values[N], rv[N];
    for (int k = 0; k < N; k++) {
        snprintf(ubuf[k], sizeof ubuf[k], "u%d", k % 12);
        snprintf(ibuf[k], sizeof ibuf[k], "i%d", (k * 7) % 20 + (k / 120) * 20);
        users[k] = ubuf[k], items[k] = ibuf[k], values[k] = (float)(1 + k % 5);
        ru[N - 1 - k] = ubuf[k], ri[N - 1 - k] = ibuf[k], rv[N - 1 - k] = values[k];
    }
    gpuals_data *a = NULL, *b = NULL;
    assert_int_equal(dataset_from_triplets(N, users, items, values, &a), GPUALS_OK);
    assert_int_equal(dataset_from_triplets(N, ru, ri, rv, &b), GPUALS_OK);
    assert_string_not_equal(idmap_name(a->users, 0), idmap_name(b->users, 0));
    for (int kind = 0; kind < 2; kind++) {
        int na = 0, nb = 0;
        char **pa = test_pairs(a, kind ? SPLIT_LEAVE_K_OUT : SPLIT_RANDOM, &na);
        char **pb = test_pairs(b, kind ? SPLIT_LEAVE_K_OUT : SPLIT_RANDOM, &nb);
        assert_true(na > 10);
        assert_int_equal(na, nb);
        for (int k = 0; k < na; k++) assert_string_equal(pa[k], pb[k]);
        for (int k = 0; k < na; k++) free(pa[k]), free(pb[k]);
        free(pa);
        free(pb);
    }
    gpuals_data_free(a);
    gpuals_data_free(b);
}

/* split_validation partitions the train side, holds out about the fraction asked, depends on
 * the seed only, and draws apart from the test split: with the same seed and fraction as the
 * test split (whose train side has only entries drawn at or above it) it still holds entries
 * out. */
static void test_validation_split(void **state)
{
    (void)state;
    csr a, train, test;
    random_csr(77, 60, 45, 1500, &a);
    split_options o;
    split_options_default(&o);
    o.seed = 9;
    assert_int_equal(split_csr(&a, &o, &train, &test), GPUALS_OK);

    csr fit, valid, fit2, valid2;
    assert_int_equal(split_validation(&train, 0.2, &o, &fit, &valid), GPUALS_OK);
    assert_partition(&train, &fit, &valid);
    double share = (double)valid.nnz / (double)train.nnz;
    assert_true(share > 0.2 - 70.0 / (double)train.nnz);
    assert_true(share < 0.2 + 70.0 / (double)train.nnz);

    /* The same seed again: the same split. */
    assert_int_equal(split_validation(&train, 0.2, &o, &fit2, &valid2), GPUALS_OK);
    assert_int_equal(valid.nnz, valid2.nnz);
    assert_memory_equal(valid.indptr, valid2.indptr, (size_t)(a.rows + 1) * sizeof(int64_t));
    assert_memory_equal(valid.indices, valid2.indices, (size_t)valid.nnz * sizeof(int32_t));
    csr_free(&fit2);
    csr_free(&valid2);

    /* Fraction 0 holds nothing out; a bad fraction is refused. */
    assert_int_equal(split_validation(&train, 0.0, &o, &fit2, &valid2), GPUALS_OK);
    assert_int_equal(valid2.nnz, 0);
    assert_int_equal(fit2.nnz, train.nnz);
    csr_free(&fit2);
    csr_free(&valid2);
    assert_int_equal(split_validation(&train, 1.5, &o, &fit2, &valid2), GPUALS_ERR_USAGE);
    csr_free(&fit);
    csr_free(&valid);
    csr_free(&train);
    csr_free(&test);
    csr_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_split_partitions),
        cmocka_unit_test(test_random_split_edges),
        cmocka_unit_test(test_leave_k_out_partitions),
        cmocka_unit_test(test_seed_decides),
        cmocka_unit_test(test_draw_is_stable),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_train_data),
        cmocka_unit_test(test_check_test),
        cmocka_unit_test(test_validation_split),
        cmocka_unit_test(test_split_ignores_file_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
