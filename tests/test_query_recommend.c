/*
 * test_query_recommend.c - score, recommend and fold-in on synthetic models: liked items never
 * come back (also when n exceeds the candidates, which returns exactly the candidates), the
 * ranking equals a brute-force one, allow/deny lists, users whose ranking would be ties (no
 * interactions, only disliked items, zero factors: each refused with its own reason), and
 * fold-in of an existing user's raw ratings reproducing that user's exact solve under every
 * confidence transform and regularisation scaling, the model's min_rating applied to the values
 * as the loader applies it, and factors_out left alone by a failure.
 */
#include "test_query_common.h"

#define N_USERS 30
#define N_ITEMS 40

typedef struct {
    gpuals_data *d;
    gpuals_model *m;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    fx->d = tq_make_data(N_USERS, N_ITEMS, 5);
    gpuals_params p = tq_params(6, GPUALS_CONF_IMPLICIT, GPUALS_REG_NONE);
    fx->m = tq_make_model(fx->d, &p, 17);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    gpuals_model_free(fx->m);
    gpuals_data_free(fx->d);
    free(fx);
    return 0;
}

/* 1 when item i is in user u's training row. */
static int liked(const gpuals_model *m, int64_t u, int64_t i)
{
    for (int64_t k = m->conf.indptr[u]; k < m->conf.indptr[u + 1]; k++)
        if (m->conf.indices[k] == i) return 1;
    return 0;
}

static double score_of(const gpuals_model *m, int64_t u, int64_t i)
{
    double s = 0.0;
    for (int k = 0; k < m->factors; k++)
        s += (double)m->X[u * m->factors + k] * m->Y[i * m->factors + k];
    return s;
}

static void test_recommend_never_returns_liked(void **state)
{
    fixture *fx = *state;
    gpuals_model *m = fx->m;
    gpuals_hit hits[N_ITEMS + 10];
    for (int64_t u = 0; u < m->n_users; u++) {
        int64_t n_liked = csr_row_len(&m->conf, u);
        int n_out = -1;

        /* Ten best: none liked, best first, each score the model's own. */
        TQ_OK(gpuals_recommend(m, u, 10, NULL, hits, &n_out));
        assert_int_equal(n_out, N_ITEMS - n_liked < 10 ? N_ITEMS - n_liked : 10);
        for (int k = 0; k < n_out; k++) {
            assert_false(liked(m, u, hits[k].index));
            TQ_NEAR(hits[k].score, score_of(m, u, hits[k].index), 1e-5);
            if (k) assert_true(hits[k].score <= hits[k - 1].score);
        }

        /* More than there are candidates: exactly the unliked items, each once. */
        TQ_OK(gpuals_recommend(m, u, N_ITEMS + 10, NULL, hits, &n_out));
        assert_int_equal(n_out, N_ITEMS - n_liked);
        unsigned char seen[N_ITEMS] = {0};
        for (int k = 0; k < n_out; k++) {
            assert_false(liked(m, u, hits[k].index));
            assert_false(seen[hits[k].index]);
            seen[hits[k].index] = 1;
        }
    }

    /* User 0 likes most items: the check above ran with very few candidates. */
    assert_true(csr_row_len(&m->conf, 0) >= N_ITEMS - 5);
}

static void test_recommend_ranking_is_brute_force(void **state)
{
    fixture *fx = *state;
    gpuals_model *m = fx->m;
    gpuals_hit hits[N_ITEMS];
    int n_out;
    for (int64_t u = 1; u < m->n_users; u += 4) {
        TQ_OK(gpuals_recommend(m, u, N_ITEMS, NULL, hits, &n_out));
        /* Every unliked item not returned would be a bug; every pair must be in order. */
        for (int k = 1; k < n_out; k++)
            assert_true(score_of(m, u, hits[k - 1].index) >= score_of(m, u, hits[k].index) - 1e-6);
        int64_t best = -1;
        for (int64_t i = 0; i < N_ITEMS; i++)
            if (!liked(m, u, i) && (best < 0 || score_of(m, u, i) > score_of(m, u, best)))
                best = i;
        assert_int_equal(hits[0].index, best);
    }
}

static void test_recommend_unfiltered_and_lists(void **state)
{
    fixture *fx = *state;
    gpuals_model *m = fx->m;
    gpuals_hit hits[N_ITEMS];
    int n_out;
    gpuals_rec_options o;
    const int64_t u = 3;

    /* filter_liked off: every item is a candidate. */
    gpuals_rec_options_default(&o);
    assert_int_equal(o.filter_liked, 1);
    o.filter_liked = 0;
    TQ_OK(gpuals_recommend(m, u, N_ITEMS, &o, hits, &n_out));
    assert_int_equal(n_out, N_ITEMS);

    /* Allow list (with a liked item and a denied item in it), deny list. */
    int64_t allow[6] = {0, 5, 9, 13, 21, 39};
    int64_t deny[2] = {9, 30};
    int64_t expected = 0;
    for (int k = 0; k < 6; k++) expected += !liked(m, u, allow[k]) && allow[k] != 9;
    gpuals_rec_options_default(&o);
    o.allow = allow;
    o.n_allow = 6;
    o.deny = deny;
    o.n_deny = 2;
    TQ_OK(gpuals_recommend(m, u, N_ITEMS, &o, hits, &n_out));
    assert_int_equal(n_out, expected);
    for (int k = 0; k < n_out; k++) {
        int in_allow = 0;
        for (int j = 0; j < 6; j++) in_allow |= hits[k].index == allow[j];
        assert_true(in_allow);
        assert_true(hits[k].index != 9);
        assert_false(liked(m, u, hits[k].index));
    }

    /* Deny alone. */
    gpuals_rec_options_default(&o);
    o.deny = deny;
    o.n_deny = 2;
    TQ_OK(gpuals_recommend(m, u, N_ITEMS, &o, hits, &n_out));
    for (int k = 0; k < n_out; k++) assert_true(hits[k].index != 9 && hits[k].index != 30);
    assert_int_equal(n_out, N_ITEMS - csr_row_len(&m->conf, u) - !liked(m, u, 9) -
                                !liked(m, u, 30));

    /* A bad index in a list is refused. */
    int64_t bad[1] = {N_ITEMS};
    o.deny = bad;
    o.n_deny = 1;
    assert_int_equal(gpuals_recommend(m, u, 5, &o, hits, &n_out), GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "deny"));
}

static void test_recommend_errors(void **state)
{
    fixture *fx = *state;
    gpuals_model *m = fx->m;
    gpuals_hit hits[5];
    int n_out;
    assert_int_equal(gpuals_recommend(m, N_USERS, 5, NULL, hits, &n_out), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_recommend(m, 0, -1, NULL, hits, &n_out), GPUALS_ERR_USAGE);
    TQ_OK(gpuals_recommend(m, 0, 0, NULL, NULL, &n_out));
    assert_int_equal(n_out, 0);

    /* A user whose factors are zero although it has liked items gets a refusal that says so,
     * not ties. */
    float saved[6];
    memcpy(saved, m->X + 7 * 6, sizeof saved);
    memset(m->X + 7 * 6, 0, sizeof saved);
    assert_int_equal(gpuals_recommend(m, 7, 5, NULL, hits, &n_out), GPUALS_ERR_EMPTY);
    assert_non_null(strstr(gpuals_last_error(), "user u7 has a factor vector of zeros"));
    assert_int_equal(n_out, 0);
    memcpy(m->X + 7 * 6, saved, sizeof saved);

    /* Only disliked items (confidences <= 0): refused by its interactions, whatever factors a
     * solver left it. */
    int64_t start = m->conf.indptr[8], len = csr_row_len(&m->conf, 8);
    float *conf = m->conf.data + start;
    float *kept = malloc((size_t)len * sizeof *kept);
    assert_non_null(kept);
    memcpy(kept, conf, (size_t)len * sizeof *kept);
    for (int64_t k = 0; k < len; k++) conf[k] = -conf[k];
    conf[0] = 0.0f;
    assert_int_equal(gpuals_recommend(m, 8, 5, NULL, hits, &n_out), GPUALS_ERR_EMPTY);
    char expected[128];
    tq_format(expected, sizeof expected, "user u8 has %lld interactions in the training data "
              "but none with a positive confidence (only disliked items)", (long long)len);
    assert_non_null(strstr(gpuals_last_error(), expected));
    memcpy(conf, kept, (size_t)len * sizeof *kept);
    free(kept);

    /* No stored interaction at all: the last user's row emptied for the moment. */
    int64_t last = N_USERS - 1, was = m->conf.indptr[last];
    m->conf.indptr[last] = m->conf.indptr[last + 1];
    assert_int_equal(gpuals_recommend(m, last, 5, NULL, hits, &n_out), GPUALS_ERR_EMPTY);
    assert_non_null(strstr(gpuals_last_error(), "user u29 has no interactions in the training "
                                                "data"));
    m->conf.indptr[last] = was;
    TQ_OK(gpuals_recommend(m, last, 5, NULL, hits, &n_out));
}

static void test_score(void **state)
{
    fixture *fx = *state;
    gpuals_model *m = fx->m;
    float s;
    TQ_OK(gpuals_score(m, "u4", "i11", &s));
    TQ_NEAR(s, score_of(m, 4, 11), 1e-6);
    assert_int_equal(gpuals_score(m, "u99", "i11", &s), GPUALS_ERR_NOT_FOUND);
    assert_non_null(strstr(gpuals_last_error(), "unknown user \"u99\""));
    assert_int_equal(gpuals_score(m, "u4", "x", &s), GPUALS_ERR_NOT_FOUND);
    assert_non_null(strstr(gpuals_last_error(), "closest ids"));
}

/* Fold-in of user u's raw ratings (each split in two halves, to exercise the summing) equals
 * the exact solve from the model's own confidences, for the given settings. */
static void check_fold_in(const gpuals_data *d, gpuals_confidence conf, gpuals_reg_scale scale)
{
    gpuals_params p = tq_params(5, conf, scale);
    gpuals_model *m = tq_make_model(d, &p, 23);
    const csr *r = &d->ratings;
    for (int64_t u = 0; u < m->n_users; u++) {
        int64_t n = csr_row_len(r, u), start = r->indptr[u];
        int64_t *items = malloc((size_t)(2 * n) * sizeof *items);
        float *values = malloc((size_t)(2 * n) * sizeof *values);
        assert_true(items && values);
        for (int64_t k = 0; k < n; k++) {
            items[2 * k] = items[2 * k + 1] = r->indices[start + k];
            values[2 * k] = 0.25f * r->data[start + k];
            values[2 * k + 1] = 0.75f * r->data[start + k];
        }
        float x[5];
        TQ_OK(gpuals_fold_in(m, items, values, 2 * n, x));
        for (int k = 0; k < 5; k++) TQ_NEAR(x[k], m->X[u * 5 + k], 1e-6 * (1 + fabs(x[k])));
        free(items);
        free(values);
    }
    gpuals_model_free(m);
}

static void test_fold_in_reproduces_exact_users(void **state)
{
    fixture *fx = *state;
    check_fold_in(fx->d, GPUALS_CONF_IMPLICIT, GPUALS_REG_NONE);
    check_fold_in(fx->d, GPUALS_CONF_HU, GPUALS_REG_FREQUENCY);
    check_fold_in(fx->d, GPUALS_CONF_LOG, GPUALS_REG_NONE);
}

static void test_fold_in_errors_and_vector_queries(void **state)
{
    fixture *fx = *state;
    gpuals_model *m = fx->m;
    float x[6];
    int64_t items[2] = {1, N_ITEMS};
    float values[2] = {1, 1};
    assert_int_equal(gpuals_fold_in(m, items, values, 2, x), GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "liked item 1"));
    values[0] = 0;
    assert_int_equal(gpuals_fold_in(m, items, values, 1, x), GPUALS_ERR_EMPTY);

    /* A folded-in copy of user 5 is recommended and explained exactly as user 5. */
    const csr *r = &fx->d->ratings;
    int64_t n = csr_row_len(r, 5), start = r->indptr[5];
    int64_t *its = malloc((size_t)n * sizeof *its);
    assert_non_null(its);
    for (int64_t k = 0; k < n; k++) its[k] = r->indices[start + k];
    TQ_OK(gpuals_fold_in(m, its, r->data + start, n, x));
    csr liked_row;
    TQ_OK(query_user_confidences(m, its, r->data + start, n, &liked_row));
    gpuals_hit a[N_ITEMS], b[N_ITEMS];
    int na, nb;
    TQ_OK(gpuals_recommend(m, 5, N_ITEMS, NULL, a, &na));
    TQ_OK(query_recommend_vector(m, x, &liked_row, N_ITEMS, NULL, b, &nb));
    assert_int_equal(na, nb);
    for (int k = 0; k < na; k++) {
        assert_int_equal(a[k].index, b[k].index);
        assert_true(a[k].score == b[k].score);
    }
    double ta, sa, tb, sb;
    TQ_OK(gpuals_explain(m, 5, 2, 5, &ta, &sa, a, &na));
    TQ_OK(query_explain_vector(m, x, &liked_row, 2, 5, &tb, &sb, b, &nb));
    assert_true(ta == tb && sa == sb && na == nb);
    csr_free(&liked_row);
    free(its);

    /* A zero vector is refused like a user without interactions, and so is a vector whose
     * liked items are all disliked, saying so. */
    memset(x, 0, sizeof x);
    assert_int_equal(query_recommend_vector(m, x, NULL, 5, NULL, a, &na), GPUALS_ERR_EMPTY);
    assert_non_null(strstr(gpuals_last_error(), "factor vector is all zeros"));
    int64_t one[1] = {3};
    float minus[1] = {-2};
    TQ_OK(query_user_confidences(m, one, minus, 1, &liked_row));
    TQ_OK(gpuals_fold_in(m, one, minus, 1, x));
    for (int k = 0; k < 6; k++) assert_true(x[k] == 0.0f);
    assert_int_equal(query_recommend_vector(m, x, &liked_row, 5, NULL, a, &na),
                     GPUALS_ERR_EMPTY);
    assert_non_null(strstr(gpuals_last_error(), "only disliked items"));
    csr_free(&liked_row);
}

/* Values pass the loader's steps before the solve: below the model's min_rating dropped, of
 * magnitude above 1e12 refused; a failure of any kind leaves factors_out as it was. */
static void test_fold_in_prepares_values_as_the_loader(void **state)
{
    fixture *fx = *state;
    gpuals_model *m = fx->m;
    float ref[6], x[6];
    int64_t items[3] = {2, 5, 9};
    float values[3] = {4, 1, 3};

    /* With min_rating 2 the 1 is dropped, so the answer is that of the other two. */
    TQ_OK(gpuals_fold_in(m, (int64_t[]){2, 9}, (float[]){4, 3}, 2, ref));
    assert_true(isinf(m->summary.min_rating) && m->summary.min_rating < 0);
    m->summary.min_rating = 2;
    TQ_OK(gpuals_fold_in(m, items, values, 3, x));
    assert_memory_equal(x, ref, sizeof x);
    csr row;
    TQ_OK(query_user_confidences(m, items, values, 3, &row));
    assert_int_equal(row.nnz, 2);
    csr_free(&row);

    /* Every value below it: nothing remains. */
    for (int k = 0; k < 6; k++) x[k] = 42.0f;
    assert_int_equal(gpuals_fold_in(m, items + 1, values + 1, 1, x), GPUALS_ERR_EMPTY);
    assert_non_null(strstr(gpuals_last_error(), "min_rating 2 (1 below it dropped)"));
    m->summary.min_rating = -INFINITY;

    /* The loader's bound on magnitudes, a NULL list, and a singular system. */
    float huge[1] = {-3e12f};
    assert_int_equal(gpuals_fold_in(m, items, huge, 1, x), GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "-3e+12 is of magnitude above 1e12"));
    assert_int_equal(gpuals_fold_in(m, items, NULL, 1, x), GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "values is NULL"));
    gpuals_params p = tq_params(6, GPUALS_CONF_IMPLICIT, GPUALS_REG_NONE);
    gpuals_model *flat = tq_make_model(fx->d, &p, 3);
    memset(flat->Y, 0, (size_t)flat->n_items * 6 * sizeof *flat->Y);
    flat->params.reg = 0;
    assert_int_equal(gpuals_fold_in(flat, items, values, 3, x), GPUALS_ERR_NUMERIC);
    const char *msg = gpuals_last_error();
    if (!strstr(msg, "fold-in: the new user's system is singular") ||
        !strstr(msg, "a larger reg (--reg)") || strstr(msg, "als_"))
        fail_msg("unexpected message: %s", msg);
    for (int k = 0; k < 6; k++) assert_true(x[k] == 42.0f);
    gpuals_model_free(flat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recommend_never_returns_liked),
        cmocka_unit_test(test_recommend_ranking_is_brute_force),
        cmocka_unit_test(test_recommend_unfiltered_and_lists),
        cmocka_unit_test(test_recommend_errors),
        cmocka_unit_test(test_score),
        cmocka_unit_test(test_fold_in_reproduces_exact_users),
        cmocka_unit_test(test_fold_in_errors_and_vector_queries),
        cmocka_unit_test(test_fold_in_prepares_values_as_the_loader),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
