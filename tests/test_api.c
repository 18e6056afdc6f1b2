/*
 * test_api.c - the public C API used as a program outside the project would use it: only
 * include/gpuals.h, handles and statuses, no internal header.
 *
 * Loads the embedded ratings with titles, trains a small model with a per-iteration callback,
 * reads its factors, asks each query once (score, recommend, similar, explain, fold-in), saves
 * and reloads it, and checks that failures come back as statuses with a message; and asks
 * whether a GPU is usable, checking that the device choice agrees.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gpuals.h"

typedef struct {
    int calls;
    double last_loss;
} progress;

static int on_iteration(int iteration, double seconds, double loss, void *user)
{
    progress *p = user;
    p->calls++;
    assert_int_equal(iteration, p->calls);
    assert_true(seconds >= 0);
    p->last_loss = loss;
    return 0;
}

static gpuals_data *load_embedded(void)
{
    gpuals_load_options lo;
    gpuals_load_options_default(&lo);
    lo.ratings_path = GPUALS_DATA "/ratings.csv";
    lo.titles_path = GPUALS_DATA "/movies.csv";
    lo.min_rating = 3;
    gpuals_data *d = NULL;
    assert_int_equal(gpuals_data_load(&lo, &d), GPUALS_OK);
    return d;
}

static void test_whole_api(void **state)
{
    (void)state;
    gpuals_data *d = load_embedded();
    const gpuals_summary *sum = gpuals_data_summary(d);
    assert_int_equal(sum->users, 609);
    assert_int_equal(sum->items, 8452);

    /* Train with a callback that sees every iteration and its loss. */
    gpuals_params p;
    gpuals_params_default(&p);
    p.factors = 16;
    p.iters = 4;
    p.compute_loss = 1;
    p.device = GPUALS_DEVICE_CPU;
    progress pr = {0, NAN};
    gpuals_model *m = NULL;
    assert_int_equal(gpuals_train(d, &p, on_iteration, &pr, &m), GPUALS_OK);
    assert_int_equal(pr.calls, 4);
    assert_true(isfinite(pr.last_loss) && pr.last_loss > 0);
    assert_true(fabs(gpuals_model_final_loss(m) - pr.last_loss) < 1e-12);
    assert_int_equal(gpuals_model_factors(m), 16);
    assert_non_null(gpuals_model_user_factors(m));
    assert_non_null(gpuals_model_item_factors(m));

    /* Queries by raw id. */
    int64_t u = gpuals_model_user_index(m, "414");
    int64_t i = gpuals_model_item_index(m, "1196");
    assert_true(u >= 0 && i >= 0);
    assert_string_equal(gpuals_model_item_title(m, i),
                        "Star Wars: Episode V - The Empire Strikes Back (1980)");
    float score;
    assert_int_equal(gpuals_score(m, "414", "1196", &score), GPUALS_OK);
    gpuals_hit hits[10];
    int n = 0;
    assert_int_equal(gpuals_recommend(m, u, 10, NULL, hits, &n), GPUALS_OK);
    assert_int_equal(n, 10);
    assert_int_equal(gpuals_similar_items(m, i, 5, 0, hits, &n), GPUALS_OK);
    assert_int_equal(n, 5);
    double total, model_score;
    assert_int_equal(gpuals_explain(m, u, i, 5, &total, &model_score, hits, &n), GPUALS_OK);
    assert_true(fabs(model_score - score) < 1e-4);
    float x[16];
    int64_t liked[] = {i};
    float values[] = {5};
    assert_int_equal(gpuals_fold_in(m, liked, values, 1, x), GPUALS_OK);

    /* Save, reload, same answers. */
    char dir[] = "/tmp/gpuals-test-api-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[sizeof dir + 16];
    snprintf(path, sizeof path, "%s/model", dir);
    assert_int_equal(gpuals_model_save(m, path), GPUALS_OK);
    gpuals_model *back = NULL;
    assert_int_equal(gpuals_model_load(path, &back), GPUALS_OK);
    float again;
    assert_int_equal(gpuals_score(back, "414", "1196", &again), GPUALS_OK);
    assert_true(again == score);

    /* Failures are statuses with messages, never exits. */
    assert_int_equal(gpuals_score(m, "no-such-user", "1196", &again), GPUALS_ERR_NOT_FOUND);
    assert_true(strlen(gpuals_last_error()) > 0);
    assert_int_equal(gpuals_status_exit_code(GPUALS_ERR_NOT_FOUND), 7);

    gpuals_model_free(back);
    gpuals_model_free(m);
    gpuals_data_free(d);
    char cmd[sizeof dir + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Whether a GPU is usable: a stable yes or no with a description, and the device choice
 * follows it (GPU demands one, AUTO takes one if there is one). */
static void test_gpu_usable(void **state)
{
    (void)state;
    char first[256] = "", again[256] = "";
    const int usable = gpuals_gpu_usable(first, sizeof first);
    assert_int_equal(gpuals_gpu_usable(again, sizeof again), usable);
    assert_int_equal(gpuals_gpu_usable(NULL, 0), usable);
    assert_true(strlen(first) > 0);
    if (!usable) assert_string_equal(first, again);

    gpuals_data *d = load_embedded();
    gpuals_params p;
    gpuals_params_default(&p);
    p.factors = 4;
    p.iters = 1;
    p.device = GPUALS_DEVICE_GPU;
    gpuals_model *m = NULL;
    gpuals_status s = gpuals_train(d, &p, NULL, NULL, &m);
    assert_int_equal(s, usable ? GPUALS_OK : GPUALS_ERR_NO_DEVICE);
    if (!usable) assert_non_null(strstr(gpuals_last_error(), first));
    gpuals_model_free(m);
    m = NULL;
    p.device = GPUALS_DEVICE_AUTO;
    assert_int_equal(gpuals_train(d, &p, NULL, NULL, &m), GPUALS_OK);
    gpuals_model_free(m);
    gpuals_data_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_whole_api),
                                       cmocka_unit_test(test_gpu_usable)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
