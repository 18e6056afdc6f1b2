/*
 * test_query_explain.c - Hu et al.'s explanation: with user factors solved exactly against the
 * current item factors, the contributions sum to the model's score (to 1e-5).
 *
 * On ml-latest-small we train with the Cholesky solver. Its last half-step solves the items, so
 * the user factors it leaves were solved against the previous Y; we first re-solve every user
 * exactly against the final Y (als_solve_row_exact), which is what "solved exactly" means for
 * explain. The same data checks that fold-in of a user's raw ratings reproduces those factors.
 * Synthetic models cover the hu and log transforms, frequency-scaled regularisation, and
 * disliked (negative) values, which shape W_u but contribute no term of their own. A failed
 * explanation writes no output but *n_out (0).
 */
#include "test_query_common.h"

/* explain(u, i) with n = everything: total equals the score, the contributions are sorted,
 * one per positive confidence, and sum to the total. */
static void check_explain_exact(const gpuals_model *m, int64_t u, int64_t i)
{
    int64_t n_liked = csr_row_len(&m->conf, u), n_pos = 0;
    for (int64_t k = m->conf.indptr[u]; k < m->conf.indptr[u + 1]; k++)
        n_pos += m->conf.data[k] > 0.0f;
    gpuals_hit *hits = malloc((size_t)(n_liked + 1) * sizeof *hits);
    assert_non_null(hits);
    double total = NAN, score = NAN;
    int n_out = -1;
    TQ_OK(gpuals_explain(m, u, i, (int)n_liked + 1, &total, &score, hits, &n_out));

    /* The model's score, and the total that must equal it. */
    double dot = 0.0;
    for (int k = 0; k < m->factors; k++)
        dot += (double)m->X[u * m->factors + k] * m->Y[i * m->factors + k];
    TQ_NEAR(score, dot, 1e-12);
    TQ_NEAR(total, score, 1e-5);

    /* The parts. */
    assert_int_equal(n_out, n_pos);
    double sum = 0.0;
    for (int k = 0; k < n_out; k++) {
        sum += hits[k].score;
        if (k) assert_true(hits[k].score <= hits[k - 1].score);
        int is_liked = 0;
        for (int64_t q = m->conf.indptr[u]; q < m->conf.indptr[u + 1]; q++)
            is_liked |= m->conf.indices[q] == hits[k].index;
        assert_true(is_liked);
    }
    TQ_NEAR(sum, total, 1e-4 * (1.0 + fabs(total)));

    /* A shorter list keeps the largest parts. */
    gpuals_hit top[3];
    TQ_OK(gpuals_explain(m, u, i, 3, &total, &score, top, &n_out));
    assert_int_equal(n_out, n_pos < 3 ? n_pos : 3);
    for (int k = 0; k < n_out; k++) assert_int_equal(top[k].index, hits[k].index);
    free(hits);
}

static void test_explain_total_equals_score_on_movielens(void **state)
{
    (void)state;

    /* Load, train with exact solves, re-solve the users against the final Y. */
    gpuals_load_options o;
    gpuals_load_options_default(&o);
    o.ratings_path = GPUALS_DATA "/ratings.csv";
    o.titles_path = GPUALS_DATA "/movies.csv";
    o.min_rating = 3;
    gpuals_data *d = NULL;
    TQ_OK(gpuals_data_load(&o, &d));
    gpuals_params p;
    gpuals_params_default(&p);
    p.factors = 12;
    p.iters = 3;
    p.solver = GPUALS_SOLVER_CHOLESKY;
    gpuals_model *m = NULL;
    TQ_OK(gpuals_train(d, &p, NULL, NULL, &m));
    tq_solve_users_exactly(m);

    /* Explain each user's top recommendation and a fixed item, for a spread of users. */
    for (int64_t u = 0; u < m->n_users; u += 61) {
        gpuals_hit best;
        int n_out;
        TQ_OK(gpuals_recommend(m, u, 1, NULL, &best, &n_out));
        assert_int_equal(n_out, 1);
        check_explain_exact(m, u, best.index);
        check_explain_exact(m, u, 0);
    }

    /* Fold-in of a user's raw ratings gives that user's exactly solved factors. */
    const csr *r = &d->ratings;
    for (int64_t u = 5; u < m->n_users; u += 97) {
        int64_t n = csr_row_len(r, u), start = r->indptr[u];
        int64_t *items = malloc((size_t)n * sizeof *items);
        assert_non_null(items);
        for (int64_t k = 0; k < n; k++) items[k] = r->indices[start + k];
        float x[12];
        TQ_OK(gpuals_fold_in(m, items, r->data + start, n, x));
        for (int k = 0; k < 12; k++) TQ_NEAR(x[k], m->X[u * 12 + k], 1e-6 * (1 + fabs(x[k])));
        free(items);
    }
    gpuals_model_free(m);
    gpuals_data_free(d);
}

static void test_explain_transforms_and_scaling(void **state)
{
    (void)state;
    gpuals_data *d = tq_make_data(25, 30, 41);
    const gpuals_confidence confs[] = {GPUALS_CONF_IMPLICIT, GPUALS_CONF_HU, GPUALS_CONF_LOG};
    const gpuals_reg_scale scales[] = {GPUALS_REG_FREQUENCY, GPUALS_REG_NONE,
                                       GPUALS_REG_FREQUENCY};
    for (int v = 0; v < 3; v++) {
        gpuals_params p = tq_params(5, confs[v], scales[v]);
        gpuals_model *m = tq_make_model(d, &p, 100 + (uint64_t)v);
        for (int64_t u = 0; u < m->n_users; u += 3)
            for (int64_t i = 0; i < m->n_items; i += 7) check_explain_exact(m, u, i);
        gpuals_model_free(m);
    }
    gpuals_data_free(d);
}

static void test_explain_with_disliked_items(void **state)
{
    (void)state;
    /* User "a" dislikes item "q" (a negative value) and likes the others. */
    const char *users[] = {"a", "a", "a", "a", "b", "b", "c", "c", "c"};
    const char *items[] = {"p", "q", "r", "s", "p", "q", "q", "r", "s"};
    const float values[] = {4, -3, 2, 5, 1, 3, 2, 2, 4};
    gpuals_data *d = NULL;
    TQ_OK(dataset_from_triplets(9, users, items, values, &d));
    gpuals_params p = tq_params(3, GPUALS_CONF_IMPLICIT, GPUALS_REG_NONE);
    gpuals_model *m = tq_make_model(d, &p, 7);
    for (int64_t i = 0; i < m->n_items; i++) check_explain_exact(m, 0, i);

    /* The disliked item is not among the parts. */
    gpuals_hit hits[4];
    int n_out;
    double total, score;
    TQ_OK(gpuals_explain(m, 0, 0, 4, &total, &score, hits, &n_out));
    assert_int_equal(n_out, 3);
    for (int k = 0; k < n_out; k++) assert_true(hits[k].index != 1);
    gpuals_model_free(m);
    gpuals_data_free(d);
}

static void test_explain_argument_checks(void **state)
{
    (void)state;
    gpuals_data *d = tq_make_data(5, 8, 2);
    gpuals_params p = tq_params(3, GPUALS_CONF_IMPLICIT, GPUALS_REG_NONE);
    gpuals_model *m = tq_make_model(d, &p, 1);
    gpuals_hit hits[2];
    int n_out;
    double total, score;
    assert_int_equal(gpuals_explain(m, 0, 8, 2, &total, &score, hits, &n_out),
                     GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "item index 8"));
    assert_int_equal(gpuals_explain(m, 5, 0, 2, &total, &score, hits, &n_out),
                     GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_explain(m, 0, 0, 2, NULL, &score, hits, &n_out), GPUALS_ERR_USAGE);

    /* W_u singular (no regularisation, item factors all zero): NUMERIC, and neither total nor
     * the model's score nor the hits are written. */
    memset(m->Y, 0, (size_t)m->n_items * 3 * sizeof *m->Y);
    m->params.reg = 0;
    total = score = 42.0;
    hits[0].index = 42;
    n_out = 7;
    assert_int_equal(gpuals_explain(m, 0, 1, 2, &total, &score, hits, &n_out),
                     GPUALS_ERR_NUMERIC);
    assert_true(total == 42.0 && score == 42.0 && hits[0].index == 42);
    assert_int_equal(n_out, 0);
    gpuals_model_free(m);
    gpuals_data_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_explain_total_equals_score_on_movielens),
        cmocka_unit_test(test_explain_transforms_and_scaling),
        cmocka_unit_test(test_explain_with_disliked_items),
        cmocka_unit_test(test_explain_argument_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
