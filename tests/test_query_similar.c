/*
 * test_query_similar.c - cosine similarity on a trained model (exact solves) whose matrix has
 * two identical item columns and two identical user rows: the twin comes first with cosine 1,
 * the query itself is left out unless asked for, and zero vectors have similarity 0 (never
 * NaN) both as the query and as a candidate.
 */
#include "test_query_common.h"

#define N_RAND_USERS 24
#define N_RAND_ITEMS 18

typedef struct {
    gpuals_data *d;
    gpuals_model *m;
    int64_t item_a, item_b, user_a, user_b;
} fixture;

/* Random users r0.. rating random items x0.., plus items "twinA"/"twinB" rated identically by
 * the same users, plus users "twinU"/"twinV" with identical rows. */
static int setup(void **state)
{
    enum { CAP = 1024 };
    static char names[CAP][16];
    const char *users[CAP], *items[CAP];
    float values[CAP];
    int n = 0;
    uint64_t st = 3;
    for (int u = 0; u < N_RAND_USERS; u++) {
        snprintf(names[u], 16, "r%d", u);
        for (int k = 0; k < 4 + u % 5; k++) {
            int i = (int)(tq_uniform(&st) * N_RAND_ITEMS);
            snprintf(names[N_RAND_USERS + n], 16, "x%d", i);
            users[n] = names[u];
            items[n] = names[N_RAND_USERS + n];
            values[n++] = (float)(1 + (int)(tq_uniform(&st) * 5));
        }
        if (u % 3 == 0) {
            float v = (float)(1 + u % 4);
            users[n] = names[u], items[n] = "twinA", values[n++] = v;
            users[n] = names[u], items[n] = "twinB", values[n++] = v;
        }
    }
    const char *row_items[] = {"x1", "x4", "x9", "x2"};
    const float row_values[] = {5, 2, 3, 1};
    for (int k = 0; k < 4; k++) {
        users[n] = "twinU", items[n] = row_items[k], values[n++] = row_values[k];
        users[n] = "twinV", items[n] = row_items[k], values[n++] = row_values[k];
    }

    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    TQ_OK(dataset_from_triplets(n, users, items, values, &fx->d));
    gpuals_params p = tq_params(4, GPUALS_CONF_IMPLICIT, GPUALS_REG_NONE);
    p.iters = 4;
    TQ_OK(gpuals_train(fx->d, &p, NULL, NULL, &fx->m));
    fx->item_a = gpuals_model_item_index(fx->m, "twinA");
    fx->item_b = gpuals_model_item_index(fx->m, "twinB");
    fx->user_a = gpuals_model_user_index(fx->m, "twinU");
    fx->user_b = gpuals_model_user_index(fx->m, "twinV");
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

static void test_similar_items_finds_the_twin(void **state)
{
    fixture *fx = *state;
    const gpuals_model *m = fx->m;
    assert_true(fx->item_a >= 0 && fx->item_b >= 0);
    gpuals_hit hits[64];
    int n_out;

    /* Without self: the twin first at cosine 1, the query nowhere. */
    TQ_OK(gpuals_similar_items(m, fx->item_a, (int)m->n_items, 0, hits, &n_out));
    assert_int_equal(n_out, m->n_items - 1);
    assert_int_equal(hits[0].index, fx->item_b);
    TQ_NEAR(hits[0].score, 1.0, 1e-5);
    for (int k = 0; k < n_out; k++) {
        assert_true(hits[k].index != fx->item_a);
        assert_false(isnan(hits[k].score));
        assert_true(hits[k].score <= 1.0f + 1e-5f && hits[k].score >= -1.0f - 1e-5f);
    }

    /* The other way round, and with self included: both twins lead at 1. */
    TQ_OK(gpuals_similar_items(m, fx->item_b, 3, 0, hits, &n_out));
    assert_int_equal(hits[0].index, fx->item_a);
    TQ_OK(gpuals_similar_items(m, fx->item_a, 2, 1, hits, &n_out));
    assert_int_equal(n_out, 2);
    assert_true((hits[0].index == fx->item_a && hits[1].index == fx->item_b) ||
                (hits[0].index == fx->item_b && hits[1].index == fx->item_a));
    TQ_NEAR(hits[0].score, 1.0, 1e-5);
    TQ_NEAR(hits[1].score, 1.0, 1e-5);
}

static void test_similar_users_finds_the_twin(void **state)
{
    fixture *fx = *state;
    gpuals_hit hits[4];
    int n_out;
    assert_true(fx->user_a >= 0 && fx->user_b >= 0);
    TQ_OK(gpuals_similar_users(fx->m, fx->user_a, 4, 0, hits, &n_out));
    assert_int_equal(n_out, 4);
    assert_int_equal(hits[0].index, fx->user_b);
    TQ_NEAR(hits[0].score, 1.0, 1e-5);
    for (int k = 0; k < n_out; k++) assert_true(hits[k].index != fx->user_a);
}

static void test_similar_zero_vectors_give_zero(void **state)
{
    fixture *fx = *state;
    gpuals_model *m = fx->m;
    int f = m->factors;
    int64_t z = 0;
    while (z == fx->item_a || z == fx->item_b) z++;
    float saved[16];
    memcpy(saved, m->Y + z * f, (size_t)f * sizeof(float));
    memset(m->Y + z * f, 0, (size_t)f * sizeof(float));
    gpuals_hit hits[64];
    int n_out;

    /* The zero item as the query: like nothing, refused (every similarity would tie at 0). */
    assert_int_equal(gpuals_similar_items(m, z, (int)m->n_items, 0, hits, &n_out),
                     GPUALS_ERR_EMPTY);
    assert_non_null(strstr(gpuals_last_error(), "a factor vector of zeros"));
    assert_int_equal(n_out, 0);

    /* The zero item as a candidate: similarity 0 and no NaN anywhere. */
    TQ_OK(gpuals_similar_items(m, fx->item_a, (int)m->n_items, 0, hits, &n_out));
    int found = 0;
    for (int k = 0; k < n_out; k++) {
        assert_false(isnan(hits[k].score));
        if (hits[k].index == z) {
            assert_true(hits[k].score == 0.0f);
            found = 1;
        }
    }
    assert_true(found);
    memcpy(m->Y + z * f, saved, (size_t)f * sizeof(float));
}

static void test_similar_argument_checks(void **state)
{
    fixture *fx = *state;
    gpuals_hit hits[2];
    int n_out;
    assert_int_equal(gpuals_similar_items(fx->m, fx->m->n_items, 2, 0, hits, &n_out),
                     GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_similar_users(fx->m, -1, 2, 0, hits, &n_out), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_similar_items(fx->m, 0, 2, 0, NULL, &n_out), GPUALS_ERR_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_similar_items_finds_the_twin),
        cmocka_unit_test(test_similar_users_finds_the_twin),
        cmocka_unit_test(test_similar_zero_vectors_give_zero),
        cmocka_unit_test(test_similar_argument_checks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
