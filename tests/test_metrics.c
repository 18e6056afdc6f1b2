/*
 * test_metrics.c - ranking metrics: hand-computed answers, perfect rankings, skipped users,
 * eligible users; the public split and evaluation against the path `gpu-als eval` takes.
 *
 * The known-answer example has 10 items and three users, fed to the metric code as fixed
 * rankings (0-based ranks; "h" marks a relevant item):
 *
 *   A  trains on {9}, T = {1, 4}     ranking 1h 0 4h 2 3 5 6 7 8         (9 candidates)
 *   B  trains on {0, 1}, T = {2, 5, 7}  ranking 3 2h 4 5h 6 8 9 7h       (8 candidates)
 *   C  trains on {}, T = {6}         ranking 0 1 2 3 6h 4 5 7 8 9        (10 candidates)
 *
 * implicit_auc@K uses n_neg = 10 - |T|: 8 for A, 7 for B, 9 for C. The arithmetic for each K
 * sits next to the expected values below; L3 = 1/log2(3) = 0.6309298, L5 = 1/log2(5),
 * L6 = 1/log2(6), and 1/log2(2) = 1, 1/log2(4) = 0.5.
 */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "csr.h"
#include "metrics.h"
#include "split.h"

#define TOL 1e-9

/* |a - b| <= tol, with both values in the failure message. */
#define assert_near(a, b, tol) near_or_fail((a), (b), (tol), #a, __FILE__, __LINE__)

static void near_or_fail(double a, double b, double tol, const char *expr, const char *file,
                         int line)
{
    if (fabs(a - b) <= tol) return;
    print_error("%s = %.12g, expected %.12g (tolerance %g)\n", expr, a, b, tol);
    _fail(file, line);
}

static const int64_t rank_a[] = {1, 0, 4, 2, 3, 5, 6, 7, 8};
static const int32_t test_a[] = {1, 4};
static const int64_t rank_b[] = {3, 2, 4, 5, 6, 8, 9, 7};
static const int32_t test_b[] = {2, 5, 7};
static const int64_t rank_c[] = {0, 1, 2, 3, 6, 4, 5, 7, 8, 9};
static const int32_t test_c[] = {6};

/* The three users at k, plus one user with no test item (skipped). */
static void example_at(int k, metrics_result *r)
{
    metrics_acc acc;
    metrics_acc_init(&acc, k, 10);
    metrics_acc_add(&acc, rank_a, NULL, 9, test_a, 2);
    metrics_acc_add(&acc, rank_b, NULL, 8, test_b, 3);
    metrics_acc_add(&acc, rank_c, NULL, 10, test_c, 1);
    metrics_acc_add(&acc, rank_c, NULL, 10, NULL, 0);
    metrics_acc_result(&acc, r);
    assert_int_equal(r->k, k);
    assert_int_equal(r->users, 3);
    assert_int_equal(r->skipped, 1);
}

/* Full AUC does not depend on K. A: n_neg 7; item 1 has 7 negatives below, item 4 has 6
 * (item 0 above it): 13/14. B: n_neg 5 (3 4 6 8 9); 2 beats 4, 5 beats 3, 7 beats 0: 7/15.
 * C: n_neg 9; 6 beats the 5 below it: 5/9. Mean (13/14 + 7/15 + 5/9)/3 = 1229/1890. */
static const double full_auc_expected = 1229.0 / 1890.0;

static void test_known_answers_k1(void **state)
{
    (void)state;
    metrics_result r;
    example_at(1, &r);
    /* A: 1 hit (rank 0), m = 1. B: miss, m = 1. C: miss, m = 1.
     * implicit precision (1+0+0)/(1+1+1); precision, recall, map, ndcg all (1+0+0)/3. */
    assert_near(r.value[METRIC_IMPLICIT_PRECISION], 1.0 / 3, TOL);
    assert_near(r.value[METRIC_PRECISION], 1.0 / 3, TOL);
    assert_near(r.value[METRIC_RECALL], 1.0 / 3, TOL);
    assert_near(r.value[METRIC_MAP], 1.0 / 3, TOL);
    assert_near(r.value[METRIC_NDCG], 1.0 / 3, TOL);
    /* AUC@1. A: no miss; tail (1+2)/2 * (8-0) = 12; 12/16 = 3/4.
     * B: miss at 0 adds 0; tail (0+3)/2 * (7-1) = 9; 9/21 = 3/7.
     * C: miss at 0 adds 0; tail (0+1)/2 * (9-1) = 4; 4/9.   Mean 409/756. */
    assert_near(r.value[METRIC_IMPLICIT_AUC], 409.0 / 756.0, TOL);
    assert_near(r.value[METRIC_AUC], full_auc_expected, TOL);
}

static void test_known_answers_k2(void **state)
{
    (void)state;
    metrics_result r;
    example_at(2, &r);
    double idcg2 = 1 + 1 / log2(3.0);
    /* A: hit, miss: 1 hit, m = 2; AP 1/1 / 2 = 1/2; DCG 1, IDCG 1 + L3.
     * B: miss, hit: 1 hit, m = 2; AP (1/2) / 2 = 1/4; DCG L3, IDCG 1 + L3.
     * C: miss, miss: 0 hits, m = 1.
     * implicit precision (1+1+0)/(2+2+1) = 2/5; precision (1/2+1/2+0)/3 = 1/3;
     * recall (1/2+1/2+0)/3 = 1/3; map (1/2+1/4+0)/3 = 1/4; ndcg (1 + L3)/(1 + L3)/3 = 1/3. */
    assert_near(r.value[METRIC_IMPLICIT_PRECISION], 2.0 / 5, TOL);
    assert_near(r.value[METRIC_PRECISION], 1.0 / 3, TOL);
    assert_near(r.value[METRIC_RECALL], 1.0 / 3, TOL);
    assert_near(r.value[METRIC_MAP], 1.0 / 4, TOL);
    assert_near(r.value[METRIC_NDCG], (1 / idcg2 + (1 / log2(3.0)) / idcg2) / 3, TOL);
    assert_near(r.value[METRIC_NDCG], 1.0 / 3, TOL);
    /* AUC@2. A: hit then a miss adding 1; tail (1+2)/2 * (8-1) = 10.5; 11.5/16 = 23/32.
     * B: miss adding 0, hit; tail (1+3)/2 * (7-1) = 12; 12/21 = 4/7.
     * C: two misses adding 0; tail (0+1)/2 * (9-2) = 3.5; 3.5/9 = 7/18.
     * Mean (1449 + 1152 + 784)/2016/3 = 3385/6048. */
    assert_near(r.value[METRIC_IMPLICIT_AUC], 3385.0 / 6048.0, TOL);
    assert_near(r.value[METRIC_AUC], full_auc_expected, TOL);
}

static void test_known_answers_k3(void **state)
{
    (void)state;
    metrics_result r;
    example_at(3, &r);
    double l3 = 1 / log2(3.0);
    /* A: hit, miss, hit: 2 hits, m = 2; AP (1/1 + 2/3)/2 = 5/6; DCG 1 + 1/2, IDCG 1 + L3.
     * B: miss, hit, miss: 1 hit, m = 3; AP (1/2)/3 = 1/6; DCG L3, IDCG 1 + L3 + 1/2.
     * C: three misses, m = 1.
     * implicit precision (2+1+0)/(2+3+1) = 1/2; precision (2/3+1/3+0)/3 = 1/3;
     * recall (2/2 + 1/3 + 0)/3 = 4/9; map (5/6 + 1/6 + 0)/3 = 1/3;
     * ndcg (1.5/(1 + L3) + L3/(1.5 + L3))/3 = (0.9197208 + 0.2960819)/3 = 0.4052676. */
    assert_near(r.value[METRIC_IMPLICIT_PRECISION], 1.0 / 2, TOL);
    assert_near(r.value[METRIC_PRECISION], 1.0 / 3, TOL);
    assert_near(r.value[METRIC_RECALL], 4.0 / 9, TOL);
    assert_near(r.value[METRIC_MAP], 1.0 / 3, TOL);
    assert_near(r.value[METRIC_NDCG], (1.5 / (1 + l3) + l3 / (1.5 + l3)) / 3, TOL);
    assert_near(r.value[METRIC_NDCG], 0.4052676, 1e-7);
    /* AUC@3. A: hit (1), miss adds 1, hit (2); tail (2+2)/2 * (8-1) = 14; 15/16.
     * B: miss adds 0, hit (1), miss adds 1; tail (1+3)/2 * (7-2) = 10; 11/21.
     * C: three misses adding 0; tail (0+1)/2 * (9-3) = 3; 3/9 = 1/3.
     * Mean (315 + 176 + 112)/336/3 = 67/112. */
    assert_near(r.value[METRIC_IMPLICIT_AUC], 67.0 / 112.0, TOL);
    assert_near(r.value[METRIC_AUC], full_auc_expected, TOL);
}

static void test_known_answers_k5(void **state)
{
    (void)state;
    metrics_result r;
    example_at(5, &r);
    double l3 = 1 / log2(3.0), l5 = 1 / log2(5.0), l6 = 1 / log2(6.0);
    /* A: h m h m m: 2 hits, m = 2; AP (1 + 2/3)/2 = 5/6; DCG 1.5, IDCG 1 + L3.
     * B: m h m h m: 2 hits, m = 3; AP (1/2 + 2/4)/3 = 1/3; DCG L3 + L5, IDCG 1 + L3 + 1/2.
     * C: m m m m h: 1 hit, m = 1; AP (1/5)/1 = 1/5; DCG L6, IDCG 1.
     * implicit precision (2+2+1)/(2+3+1) = 5/6; precision (2/5 + 2/5 + 1/5)/3 = 1/3;
     * recall (1 + 2/3 + 1)/3 = 8/9; map (5/6 + 1/3 + 1/5)/3 = 41/90;
     * ndcg (0.9197208 + 0.4981893 + 0.3868528)/3 = 0.6015876. */
    assert_near(r.value[METRIC_IMPLICIT_PRECISION], 5.0 / 6, TOL);
    assert_near(r.value[METRIC_PRECISION], 1.0 / 3, TOL);
    assert_near(r.value[METRIC_RECALL], 8.0 / 9, TOL);
    assert_near(r.value[METRIC_MAP], 41.0 / 90, TOL);
    assert_near(r.value[METRIC_NDCG],
                        (1.5 / (1 + l3) + (l3 + l5) / (1.5 + l3) + l6) / 3, TOL);
    assert_near(r.value[METRIC_NDCG], 0.6015876, 1e-7);
    /* AUC@5. A: h(1) m+1 h(2) m+2 m+2 = 5, 3 misses; tail (2+2)/2 * (8-3) = 10; 15/16.
     * B: m+0 h(1) m+1 h(2) m+2 = 3, 3 misses; tail (2+3)/2 * (7-3) = 10; 13/21.
     * C: four misses adding 0, then h; tail (1+1)/2 * (9-4) = 5; 5/9.
     * Mean (945 + 624 + 560)/1008/3 = 2129/3024. */
    assert_near(r.value[METRIC_IMPLICIT_AUC], 2129.0 / 3024.0, TOL);
    assert_near(r.value[METRIC_AUC], full_auc_expected, TOL);
}

/* Equal scores are ties in the full AUC: ranking 0 (3.0), 1h (2.0), 2 (2.0), 3 (1.0). Item 1
 * beats item 3, loses to item 0 and ties item 2: (1 + 0.5)/3 = 1/2. Without scores the order
 * is strict and item 1 beats 2 and 3: 2/3. */
static void test_full_auc_ties(void **state)
{
    (void)state;
    const int64_t ranked[] = {0, 1, 2, 3};
    const float scores[] = {3.0f, 2.0f, 2.0f, 1.0f};
    const int32_t test[] = {1};
    metrics_acc acc;
    metrics_result r;
    metrics_acc_init(&acc, 2, 4);
    metrics_acc_add(&acc, ranked, scores, 4, test, 1);
    metrics_acc_result(&acc, &r);
    assert_near(r.value[METRIC_AUC], 0.5, TOL);
    metrics_acc_init(&acc, 2, 4);
    metrics_acc_add(&acc, ranked, NULL, 4, test, 1);
    metrics_acc_result(&acc, &r);
    assert_near(r.value[METRIC_AUC], 2.0 / 3, TOL);
}

/* A perfect ranking with |T_u| = K (so that true precision and AUC@K can reach 1) scores 1 on
 * every metric. */
static void test_perfect_ranking_given(void **state)
{
    (void)state;
    const int64_t ranked[] = {4, 7, 2, 0, 1, 3, 5, 6};
    const int32_t test[] = {2, 4, 7};
    metrics_acc acc;
    metrics_result r;
    metrics_acc_init(&acc, 3, 8);
    metrics_acc_add(&acc, ranked, NULL, 8, test, 3);
    metrics_acc_result(&acc, &r);
    for (int m = 0; m < METRIC_COUNT; m++) assert_near(r.value[m], 1.0, TOL);
}

/* AUC@K with K larger than the number of items stays within [0, 1]: positions past the last
 * item are not misses. 4 items, K = 10, test {0}, ranking [1, 0] (items 2 and 3 filtered):
 * position 0 misses (0 hits before it), position 1 hits, positions 2 and 3 (padding within the 4
 * items) miss with 1 hit before each: sum 2; n_neg = 3, misses = 3, so the tail adds
 * (1 + 1) / 2 * (3 - 3) = 0 and AUC@K = 2 / (1 * 3). */
static void test_auc_at_k_beyond_items(void **state)
{
    (void)state;
    const int64_t ranked[] = {1, 0};
    const int32_t test[] = {0};
    metrics_acc acc;
    metrics_result r;
    metrics_acc_init(&acc, 10, 4);
    metrics_acc_add(&acc, ranked, NULL, 2, test, 1);
    metrics_acc_result(&acc, &r);
    assert_near(r.value[METRIC_IMPLICIT_AUC], 2.0 / 3, TOL);
}

/* No user evaluated: every metric is 0 (not NaN) and the skipped users are counted. */
static void test_no_users_is_zero(void **state)
{
    (void)state;
    metrics_acc acc;
    metrics_result r;
    metrics_acc_init(&acc, 10, 5);
    metrics_acc_add(&acc, NULL, NULL, 0, NULL, 0);
    metrics_acc_add(&acc, NULL, NULL, 0, NULL, 0);
    metrics_acc_result(&acc, &r);
    assert_int_equal(r.users, 0);
    assert_int_equal(r.skipped, 2);
    for (int m = 0; m < METRIC_COUNT; m++) {
        assert_false(isnan(r.value[m]));
        assert_near(r.value[m], 0.0, 0.0);
    }
}

/* A user whose test items cover every item has no negative: AUCs of 1, not NaN. */
static void test_no_negatives_is_not_nan(void **state)
{
    (void)state;
    const int64_t ranked[] = {1, 0};
    const int32_t test[] = {0, 1};
    metrics_acc acc;
    metrics_result r;
    metrics_acc_init(&acc, 5, 2);
    metrics_acc_add(&acc, ranked, NULL, 2, test, 2);
    metrics_acc_result(&acc, &r);
    assert_near(r.value[METRIC_IMPLICIT_AUC], 1.0, TOL);
    assert_near(r.value[METRIC_AUC], 1.0, TOL);
    /* Both found in the top 5: precision 2/5, recall 2/2. */
    assert_near(r.value[METRIC_PRECISION], 0.4, TOL);
    assert_near(r.value[METRIC_RECALL], 1.0, TOL);
}

static void test_names(void **state)
{
    (void)state;
    char buf[64];
    metric_id m;
    int k;
    assert_string_equal(metrics_name(METRIC_IMPLICIT_PRECISION, 10, buf, sizeof buf),
                        "implicit_precision@10");
    assert_string_equal(metrics_name(METRIC_AUC, 10, buf, sizeof buf), "auc");
    assert_string_equal(metrics_name(METRIC_IMPLICIT_AUC, 5, buf, sizeof buf), "implicit_auc@5");
    assert_int_equal(metrics_parse_name("ndcg@5", &m, &k), GPUALS_OK);
    assert_int_equal(m, METRIC_NDCG);
    assert_int_equal(k, 5);
    assert_int_equal(metrics_parse_name("precision@20", &m, &k), GPUALS_OK);
    assert_int_equal(m, METRIC_PRECISION);
    assert_int_equal(k, 20);
    assert_int_equal(metrics_parse_name("auc", &m, &k), GPUALS_OK);
    assert_int_equal(m, METRIC_AUC);
    assert_int_equal(metrics_parse_name("precision", &m, &k), GPUALS_ERR_USAGE);
    assert_int_equal(metrics_parse_name("ndcg@0", &m, &k), GPUALS_ERR_USAGE);
    assert_int_equal(metrics_parse_name("ndcg@5x", &m, &k), GPUALS_ERR_USAGE);
    assert_int_equal(metrics_parse_name("auc@10", &m, &k), GPUALS_ERR_USAGE);
    assert_int_equal(metrics_parse_name("hitrate@10", &m, &k), GPUALS_ERR_USAGE);
}

/* ------------------------------------------------------------------------------------------ */
/* From factors: metrics_evaluate ranks with topn_batch                                        */
/* ------------------------------------------------------------------------------------------ */

static void build(int64_t rows, int64_t cols, int n, const int32_t *r, const int32_t *c,
                  const float *v, csr *out)
{
    assert_int_equal(csr_from_triplets(rows, cols, n, r, c, v, out, NULL), GPUALS_OK);
}

/* Items are unit vectors (Y = I, f = 6); user u's vector is 1 on its test items and 0.5 on the
 * others, so the test items rank first among the non-training ones. Each user has K = 2 test
 * items: every metric is 1. */
static void test_perfect_recommender_factors(void **state)
{
    (void)state;
    enum { U = 3, I = 6, F = 6, K = 2 };
    const int32_t tr_r[] = {0, 0, 1, 2, 2}, tr_c[] = {0, 5, 3, 1, 2};
    const float tr_v[] = {1, 1, 1, 1, 1};
    const int32_t te_r[] = {0, 0, 1, 1, 2, 2}, te_c[] = {2, 4, 0, 5, 3, 5};
    const float te_v[] = {1, 1, 1, 1, 1, 1};
    csr train, test;
    build(U, I, 5, tr_r, tr_c, tr_v, &train);
    build(U, I, 6, te_r, te_c, te_v, &test);
    float X[U * F], Y[I * F];
    for (int i = 0; i < I * F; i++) Y[i] = i % (F + 1) == 0 ? 1.0f : 0.0f;
    for (int u = 0; u < U; u++)
        for (int j = 0; j < F; j++) X[u * F + j] = 0.5f;
    for (int e = 0; e < 6; e++) X[te_r[e] * F + te_c[e]] = 1.0f;
    /* Training items would score highest if they were not left out. */
    for (int e = 0; e < 5; e++) X[tr_r[e] * F + tr_c[e]] = 5.0f;

    metrics_result r;
    assert_int_equal(metrics_evaluate(X, Y, F, &train, &test, K, 1, &r), GPUALS_OK);
    assert_int_equal(r.users, 3);
    assert_int_equal(r.skipped, 0);
    for (int m = 0; m < METRIC_COUNT; m++) assert_near(r.value[m], 1.0, 1e-6);
    csr_free(&train);
    csr_free(&test);
}

/* User 1's only test item is also a training item: nothing to find, so it is skipped rather
 * than scored 0. User 2's test entry has a negative value (a dislike): not relevant either.
 * User 0 ranks its test item 1 first: all its metrics are 1, and they are the averages. */
static void test_user_with_nothing_to_find_is_skipped(void **state)
{
    (void)state;
    enum { U = 3, I = 3, F = 3 };
    const int32_t tr_r[] = {0, 1}, tr_c[] = {0, 2};
    const float tr_v[] = {1, 1};
    const int32_t te_r[] = {0, 1, 2}, te_c[] = {1, 2, 1};
    const float te_v[] = {1, 1, -1};
    csr train, test;
    build(U, I, 2, tr_r, tr_c, tr_v, &train);
    build(U, I, 3, te_r, te_c, te_v, &test);
    const float Y[I * F] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    const float X[U * F] = {0.1f, 0.9f, 0.2f, 0.3f, 0.2f, 0.1f, 0.5f, 0.5f, 0.5f};

    metrics_result r;
    assert_int_equal(metrics_evaluate(X, Y, F, &train, &test, 1, 1, &r), GPUALS_OK);
    assert_int_equal(r.users, 1);
    assert_int_equal(r.skipped, 2);
    for (int m = 0; m < METRIC_COUNT; m++) assert_near(r.value[m], 1.0, 1e-6);

    /* metrics_eligible_users counts the same users up front. */
    assert_int_equal(metrics_eligible_users(&train, &test), 1);
    csr_free(&train);
    csr_free(&test);
}

/* metrics_eligible_users: 0 when no test entry is relevant (none at all, only dislikes, or
 * only training items), the users with one otherwise, -1 on a shape mismatch. */
static void test_eligible_users(void **state)
{
    (void)state;
    enum { U = 4, I = 5 };
    const int32_t tr_r[] = {0, 1, 2}, tr_c[] = {0, 1, 2};
    const float tr_v[] = {1, 1, 1};
    csr train, empty, dislikes, in_train, some, other;
    build(U, I, 3, tr_r, tr_c, tr_v, &train);
    build(U, I, 0, NULL, NULL, NULL, &empty);
    const int32_t d_r[] = {0, 3}, d_c[] = {3, 4};
    const float d_v[] = {-1, -2};
    build(U, I, 2, d_r, d_c, d_v, &dislikes);
    const int32_t t_r[] = {0, 1}, t_c[] = {0, 1};
    const float t_v[] = {1, 1};
    build(U, I, 2, t_r, t_c, t_v, &in_train);
    const int32_t s_r[] = {0, 0, 2, 3}, s_c[] = {0, 4, 3, 1};
    const float s_v[] = {1, 1, -1, 2};
    build(U, I, 4, s_r, s_c, s_v, &some);
    build(U, I + 1, 0, NULL, NULL, NULL, &other);

    assert_int_equal(metrics_eligible_users(&train, &empty), 0);
    assert_int_equal(metrics_eligible_users(&train, &dislikes), 0);
    assert_int_equal(metrics_eligible_users(&train, &in_train), 0);
    /* User 0 (item 4); user 3's item 1 is relevant but user 3 has no training interaction. */
    assert_int_equal(metrics_eligible_users(&train, &some), 1);
    /* The other way round: user 0's test item is one of its training items, user 1 has no
     * training interaction, and user 2's only one is a dislike. */
    assert_int_equal(metrics_eligible_users(&some, &train), 0);
    assert_int_equal(metrics_eligible_users(&train, &other), -1);
    csr_free(&train);
    csr_free(&empty);
    csr_free(&dislikes);
    csr_free(&in_train);
    csr_free(&some);
    csr_free(&other);
}

/* K beyond the number of items: every metric but precision (hits / K) is what K = n_items
 * gives, and K = INT_MAX costs no more than that (positions past every item count for
 * nothing, so they are not walked). */
static void test_k_beyond_items(void **state)
{
    (void)state;
    metrics_result at_items, huge;
    example_at(10, &at_items);
    example_at(INT_MAX, &huge);
    for (int m = 0; m < METRIC_COUNT; m++) {
        if (m == METRIC_PRECISION)
            assert_near(huge.value[m] * INT_MAX, at_items.value[m] * 10, 1e-6);
        else
            assert_near(huge.value[m], at_items.value[m], 1e-12);
    }
}

/* metrics_evaluate agrees with the hand-checked accumulator on the known-answer example when
 * the factors reproduce its rankings: item i is e_i and user u's vector gives each candidate a
 * score that decreases with its rank in the example (10 - rank). User c trains on item 9, the
 * last of its ranking, so its candidates are the first nine. A fourth user with a test item,
 * a vector and no training interaction is left out as cold. Ranking only the top K gives the
 * same metrics except `auc`, which is then left out. */
static void test_evaluate_matches_given_rankings(void **state)
{
    (void)state;
    enum { U = 4, I = 10, F = 10 };
    const int32_t tr_r[] = {0, 1, 1, 2}, tr_c[] = {9, 0, 1, 9};
    const float tr_v[] = {1, 1, 1, 1};
    const int32_t te_r[] = {0, 0, 1, 1, 1, 2, 3}, te_c[] = {1, 4, 2, 5, 7, 6, 3};
    const float te_v[] = {1, 1, 1, 1, 1, 1, 1};
    csr train, test;
    build(U, I, 4, tr_r, tr_c, tr_v, &train);
    build(U, I, 7, te_r, te_c, te_v, &test);
    float X[U * F] = {0}, Y[I * F] = {0};
    for (int i = 0; i < I; i++) Y[i * F + i] = 1.0f;
    const int64_t *ranks[U] = {rank_a, rank_b, rank_c, rank_c};
    const int lens[U] = {9, 8, 9, 10};
    for (int u = 0; u < U; u++)
        for (int j = 0; j < lens[u]; j++) X[u * F + ranks[u][j]] = (float)(10 - j);

    const int ks[] = {1, 2, 3, 5};
    for (int t = 0; t < 4; t++) {
        metrics_result got, top, want;
        assert_int_equal(metrics_evaluate(X, Y, F, &train, &test, ks[t], 1, &got), GPUALS_OK);
        assert_int_equal(metrics_evaluate(X, Y, F, &train, &test, ks[t], 0, &top), GPUALS_OK);
        metrics_acc acc;
        metrics_acc_init(&acc, ks[t], 10);
        metrics_acc_add(&acc, rank_a, NULL, 9, test_a, 2);
        metrics_acc_add(&acc, rank_b, NULL, 8, test_b, 3);
        metrics_acc_add(&acc, rank_c, NULL, 9, test_c, 1);
        metrics_acc_result(&acc, &want);
        assert_int_equal(got.users, 3);
        assert_int_equal(got.skipped, 0);
        assert_int_equal(got.cold, 1);
        assert_int_equal(top.cold, 1);
        assert_int_equal(got.has_auc, 1);
        assert_int_equal(top.has_auc, 0);
        assert_int_equal(top.users, 3);
        for (int m = 0; m < METRIC_COUNT; m++) {
            assert_near(got.value[m], want.value[m], 1e-9);
            if (m != METRIC_AUC) assert_near(top.value[m], want.value[m], 1e-9);
        }
        assert_near(top.value[METRIC_AUC], 0.0, 0.0);
    }
    csr_free(&train);
    csr_free(&test);
}

/* A failure in a later evaluation chunk is named by the run's iteration, not the chunk's: with
 * reg 0, the items that only have dislikes get zero factors, the item Gram matrix loses rank,
 * and user 1's exact system is singular at iteration 3 (as a single 3-iteration fit says). */
static void test_fit_failure_names_run_iteration(void **state)
{
    (void)state;
    const int32_t r[] = {0, 1, 1, 2, 2, 3}, c[] = {0, 0, 1, 2, 3, 1};
    const float v[] = {1, 2, 1, -1, -1, 1};
    const int32_t tr[] = {0}, tc[] = {1};
    const float tv[] = {1};
    csr train = {0}, test = {0};
    build(4, 4, 6, r, c, v, &train);
    build(4, 4, 1, tr, tc, tv, &test);
    gpuals_params p;
    gpuals_params_default(&p);
    p.factors = 3;
    p.iters = 3;
    p.reg = 0;
    p.solver = GPUALS_SOLVER_CHOLESKY;
    p.device = GPUALS_DEVICE_CPU;
    float X[4 * 3], Y[4 * 3];
    for (int every = 0; every <= 1; every++) {
        metrics_track t = {&train, &test, 2, every, 0, NULL, NULL};
        metrics_fit_report rep;
        assert_int_equal(metrics_fit(&t, &p, X, Y, NULL, NULL, &rep), GPUALS_ERR_NUMERIC);
        if (!strstr(gpuals_last_error(), "singular system for user 1 (row index) at iteration 3"))
            fail_msg("eval-every %d: %s", every, gpuals_last_error());
    }
    csr_free(&train);
    csr_free(&test);
}

/* gpuals_data_split + gpuals_evaluate give exactly what `gpu-als eval` computes: split_csr of
 * the ratings, a model trained on split_train_data of the train side, metrics_evaluate of its
 * factors against the raw train and test matrices. Both protocols. */
static void test_public_evaluation_is_the_cli_path(void **state)
{
    (void)state;
    gpuals_load_options lo;
    gpuals_load_options_default(&lo);
    lo.ratings_path = GPUALS_DATA "/ratings.csv";
    lo.min_rating = 3;
    gpuals_data *d = NULL;
    assert_int_equal(gpuals_data_load(&lo, &d), GPUALS_OK);
    gpuals_params p;
    gpuals_params_default(&p);
    p.factors = 8;
    p.iters = 3;
    p.device = GPUALS_DEVICE_CPU;

    for (int protocol = 0; protocol < 2; protocol++) {
        split_options so;
        split_options_default(&so);
        so.kind = protocol ? SPLIT_LEAVE_K_OUT : SPLIT_RANDOM;
        so.leave_k = 3;
        so.seed = 11;
        csr train, test;
        assert_int_equal(split_use_ids(d, &so), GPUALS_OK);
        assert_int_equal(split_csr(&d->ratings, &so, &train, &test), GPUALS_OK);
        split_keys_free(&so);
        gpuals_data *td = NULL;
        gpuals_model *m = NULL;
        assert_int_equal(split_train_data(d, &train, &td), GPUALS_OK);
        assert_int_equal(gpuals_train(td, &p, NULL, NULL, &m), GPUALS_OK);
        metrics_result want;
        assert_int_equal(metrics_evaluate(gpuals_model_user_factors(m),
                                          gpuals_model_item_factors(m), p.factors, &train,
                                          &test, 10, 1, &want), GPUALS_OK);

        gpuals_split_options po;
        gpuals_split_options_default(&po);
        po.kind = protocol ? GPUALS_SPLIT_LEAVE_K_OUT : GPUALS_SPLIT_RANDOM;
        po.leave_k = 3;
        po.seed = 11;
        gpuals_data *ptrain = NULL, *ptest = NULL;
        gpuals_model *pm = NULL;
        assert_int_equal(gpuals_data_split(d, &po, &ptrain, &ptest), GPUALS_OK);
        assert_int_equal(ptest->ratings.nnz, test.nnz);
        assert_memory_equal(ptest->ratings.indices, test.indices,
                            (size_t)test.nnz * sizeof *test.indices);
        assert_int_equal(gpuals_train(ptrain, &p, NULL, NULL, &pm), GPUALS_OK);
        gpuals_metrics got;
        assert_int_equal(gpuals_evaluate(pm, ptest, 10, 1, &got), GPUALS_OK);
        assert_int_equal(got.users, want.users);
        assert_int_equal(got.skipped, want.skipped);
        const double g[] = {got.implicit_precision, got.precision, got.recall, got.map,
                            got.ndcg, got.implicit_auc, got.auc};
        for (int k = 0; k < METRIC_COUNT; k++)
            if (g[k] != want.value[k])
                fail_msg("protocol %d, metric %d: %.17g public, %.17g as eval", protocol, k,
                         g[k], want.value[k]);

        gpuals_model_free(pm);
        gpuals_data_free(ptrain);
        gpuals_data_free(ptest);
        gpuals_model_free(m);
        gpuals_data_free(td);
        csr_free(&train);
        csr_free(&test);
    }
    gpuals_data_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers_k1),
        cmocka_unit_test(test_known_answers_k2),
        cmocka_unit_test(test_known_answers_k3),
        cmocka_unit_test(test_known_answers_k5),
        cmocka_unit_test(test_full_auc_ties),
        cmocka_unit_test(test_perfect_ranking_given),
        cmocka_unit_test(test_auc_at_k_beyond_items),
        cmocka_unit_test(test_no_users_is_zero),
        cmocka_unit_test(test_no_negatives_is_not_nan),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_perfect_recommender_factors),
        cmocka_unit_test(test_user_with_nothing_to_find_is_skipped),
        cmocka_unit_test(test_k_beyond_items),
        cmocka_unit_test(test_eligible_users),
        cmocka_unit_test(test_evaluate_matches_given_rankings),
        cmocka_unit_test(test_fit_failure_names_run_iteration),
        cmocka_unit_test(test_public_evaluation_is_the_cli_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
