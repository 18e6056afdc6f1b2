/*
 * test_api.c - the public C API used as a program outside the project would use it: only
 * include/gpuals.h, handles and statuses, no internal header.
 *
 * Loads the embedded ratings with titles, trains a small model with a per-iteration callback,
 * reads its factors, asks each query once (score, recommend, similar, explain, fold-in), saves
 * and reloads it, and checks that failures come back as statuses with a message; and asks
 * whether a GPU is usable, checking that the device choice agrees.
 *
 * Then the contracts around the edges: NULL handles and arguments, ids outside the model, allow
 * and deny lists, the settings gpuals_train refuses, zero iterations, early stopping as the
 * saved model records it, a user with only disliked items under both solvers, fold-in as the
 * loader prepares values, and one model queried (and two trained) from several threads at once.
 */
#include <math.h>
#include <pthread.h>
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

/* ------------------------------------------------------------------------------------------ */
/* Contracts around the edges, on one small model of the embedded data                        */
/* ------------------------------------------------------------------------------------------ */

#define SMALL_FACTORS 8

typedef struct {
    gpuals_data *d;
    gpuals_model *m;
} fixture;

/* Small settings on the CPU. */
static gpuals_params small_params(void)
{
    gpuals_params p;
    gpuals_params_default(&p);
    p.factors = SMALL_FACTORS;
    p.iters = 3;
    p.device = GPUALS_DEVICE_CPU;
    return p;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    fx->d = load_embedded();
    gpuals_params p = small_params();
    if (gpuals_train(fx->d, &p, NULL, NULL, &fx->m) != GPUALS_OK) return -1;
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

/* A new temporary directory (dir holds sizeof "/tmp/gpuals-test-api-XXXXXX" bytes), and its
 * removal. */
static void make_temp_dir(char *dir)
{
    strcpy(dir, "/tmp/gpuals-test-api-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void remove_temp_dir(const char *dir)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The whole text of a (small) file, NUL-terminated; the caller frees it. */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *text = calloc(1, 1 << 16);
    assert_non_null(text);
    size_t got = fread(text, 1, (1 << 16) - 1, f);
    assert_true(got > 0);
    fclose(f);
    return text;
}

/* NULL handles and arguments: GPUALS_ERR_USAGE from calls with a status, "nothing" from the
 * getters, no effect from the *_default and *_free functions. */
static void test_null_arguments(void **state)
{
    const fixture *fx = *state;
    gpuals_load_options_default(NULL);
    gpuals_params_default(NULL);
    gpuals_rec_options_default(NULL);
    gpuals_data_free(NULL);
    gpuals_model_free(NULL);

    /* Loading. */
    gpuals_load_options lo;
    gpuals_load_options_default(&lo);
    lo.ratings_path = GPUALS_DATA "/ratings.csv";
    assert_int_equal(gpuals_data_load(&lo, NULL), GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "out is NULL"));
    gpuals_data *d = NULL;
    assert_int_equal(gpuals_data_load(NULL, &d), GPUALS_ERR_USAGE);
    assert_null(d);
    assert_null(gpuals_data_summary(NULL));

    /* Getters of a NULL model. */
    assert_int_equal(gpuals_model_users(NULL), 0);
    assert_int_equal(gpuals_model_items(NULL), 0);
    assert_int_equal(gpuals_model_factors(NULL), 0);
    assert_null(gpuals_model_user_factors(NULL));
    assert_null(gpuals_model_item_factors(NULL));
    assert_int_equal(gpuals_model_iterations(NULL), -1);
    assert_int_equal(gpuals_model_user_index(NULL, "414"), -1);
    assert_int_equal(gpuals_model_item_index(NULL, "1196"), -1);
    assert_null(gpuals_model_user_id(NULL, 0));
    assert_null(gpuals_model_item_id(NULL, 0));
    assert_null(gpuals_model_item_title(NULL, 0));

    /* Training, saving, loading. */
    gpuals_params p = small_params();
    gpuals_model *m = NULL;
    assert_int_equal(gpuals_train(NULL, &p, NULL, NULL, &m), GPUALS_ERR_USAGE);
    assert_null(m);
    assert_int_equal(gpuals_train(fx->d, NULL, NULL, NULL, &m), GPUALS_ERR_USAGE);
    assert_null(m);
    assert_int_equal(gpuals_train(fx->d, &p, NULL, NULL, NULL), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_model_save(NULL, "/tmp/gpuals-never-written"), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_model_save(fx->m, NULL), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_model_load(NULL, &m), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_model_load("/tmp", NULL), GPUALS_ERR_USAGE);

    /* Queries: *n_out is 0 after any failure, a NULL model included. */
    float score = 0;
    assert_int_equal(gpuals_score(NULL, "414", "1196", &score), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_score(fx->m, NULL, "1196", &score), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_score(fx->m, "414", "1196", NULL), GPUALS_ERR_USAGE);
    gpuals_hit hits[4];
    double total = 0, model_score = 0;
    int n_out = 7;
    assert_int_equal(gpuals_recommend(NULL, 0, 4, NULL, hits, &n_out), GPUALS_ERR_USAGE);
    assert_int_equal(n_out, 0);
    n_out = 7;
    assert_int_equal(gpuals_recommend(fx->m, 0, 4, NULL, NULL, &n_out), GPUALS_ERR_USAGE);
    assert_int_equal(n_out, 0);
    assert_int_equal(gpuals_recommend(fx->m, 0, 4, NULL, hits, NULL), GPUALS_ERR_USAGE);
    n_out = 7;
    assert_int_equal(gpuals_similar_items(NULL, 0, 4, 0, hits, &n_out), GPUALS_ERR_USAGE);
    assert_int_equal(n_out, 0);
    n_out = 7;
    assert_int_equal(gpuals_similar_users(NULL, 0, 4, 0, hits, &n_out), GPUALS_ERR_USAGE);
    assert_int_equal(n_out, 0);
    n_out = 7;
    assert_int_equal(gpuals_explain(NULL, 0, 0, 4, &total, &model_score, hits, &n_out),
                     GPUALS_ERR_USAGE);
    assert_int_equal(n_out, 0);
    assert_int_equal(gpuals_explain(fx->m, 0, 0, 4, NULL, &model_score, hits, &n_out),
                     GPUALS_ERR_USAGE);

    /* Fold-in names the missing argument. */
    int64_t items[1] = {0};
    float values[1] = {5}, x[SMALL_FACTORS];
    assert_int_equal(gpuals_fold_in(NULL, items, values, 1, x), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_fold_in(fx->m, items, NULL, 1, x), GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "values is NULL"));
    assert_int_equal(gpuals_fold_in(fx->m, NULL, values, 1, x), GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "items is NULL"));
    assert_int_equal(gpuals_fold_in(fx->m, items, values, 1, NULL), GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "factors_out is NULL"));
}

/* Ids and titles outside the model are NULL; allow and deny lists; the last error outlives
 * successes. */
static void test_ranges_lists_and_last_error(void **state)
{
    const fixture *fx = *state;
    const gpuals_model *m = fx->m;
    int64_t nu = gpuals_model_users(m), ni = gpuals_model_items(m);
    assert_null(gpuals_model_user_id(m, -1));
    assert_null(gpuals_model_user_id(m, nu));
    assert_null(gpuals_model_item_id(m, ni));
    assert_null(gpuals_model_item_title(m, -1));
    assert_null(gpuals_model_item_title(m, ni));
    assert_non_null(gpuals_model_user_id(m, nu - 1));
    assert_non_null(gpuals_model_item_title(m, ni - 1));

    /* An allow list of no items allows nothing; a NULL one allows everything. */
    gpuals_rec_options o;
    gpuals_rec_options_default(&o);
    int64_t none[1] = {0};
    gpuals_hit hits[5];
    int n_out = -1;
    o.allow = none;
    o.n_allow = 0;
    assert_int_equal(gpuals_recommend(m, 0, 5, &o, hits, &n_out), GPUALS_OK);
    assert_int_equal(n_out, 0);
    o.allow = NULL;
    assert_int_equal(gpuals_recommend(m, 0, 5, &o, hits, &n_out), GPUALS_OK);
    assert_int_equal(n_out, 5);

    /* A list and its count that disagree: the message says which list and how. */
    o.n_allow = 3;
    assert_int_equal(gpuals_recommend(m, 0, 5, &o, hits, &n_out), GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "n_allow is 3 but allow is NULL"));
    o.n_allow = 0;
    o.deny = none;
    o.n_deny = -2;
    assert_int_equal(gpuals_recommend(m, 0, 5, &o, hits, &n_out), GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "n_deny is negative (-2)"));

    /* A success does not clear the message of an earlier failure. */
    float score;
    assert_int_equal(gpuals_score(m, "no-such-user", "1196", &score), GPUALS_ERR_NOT_FOUND);
    char kept[2048];
    snprintf(kept, sizeof kept, "%s", gpuals_last_error());
    assert_true(kept[0] != '\0');
    assert_int_equal(gpuals_score(m, "414", "1196", &score), GPUALS_OK);
    assert_string_equal(gpuals_last_error(), kept);
}

/* gpuals_train with p refuses it (USAGE, no model) with a message holding text and naming no
 * internal function. */
static void expect_refused(const gpuals_data *d, const gpuals_params *p, const char *text)
{
    gpuals_model *m = NULL;
    assert_int_equal(gpuals_train(d, p, NULL, NULL, &m), GPUALS_ERR_USAGE);
    assert_null(m);
    if (!strstr(gpuals_last_error(), text) || strstr(gpuals_last_error(), "als_"))
        fail_msg("expected \"%s\", got \"%s\"", text, gpuals_last_error());
}

static void test_train_refuses_bad_settings(void **state)
{
    const fixture *fx = *state;

    /* alpha must be finite and positive under every transform. */
    const gpuals_confidence transforms[] = {GPUALS_CONF_IMPLICIT, GPUALS_CONF_HU,
                                            GPUALS_CONF_LOG};
    const double alphas[] = {0.0, -1.0, NAN, INFINITY};
    for (int t = 0; t < 3; t++) {
        for (int a = 0; a < 4; a++) {
            gpuals_params p = small_params();
            p.confidence = transforms[t];
            p.alpha = alphas[a];
            expect_refused(fx->d, &p, "alpha must be a finite number > 0");
        }
    }

    /* Enum values that are none of the constants, and out-of-range numbers. */
    gpuals_params p = small_params();
    p.dtype = (gpuals_dtype)7;
    expect_refused(fx->d, &p, "unknown dtype 7");
    p = small_params();
    p.device = (gpuals_device)9;
    expect_refused(fx->d, &p, "unknown device 9");
    p = small_params();
    p.solver = (gpuals_solver)5;
    expect_refused(fx->d, &p, "unknown solver 5");
    p = small_params();
    p.reg = -1;
    expect_refused(fx->d, &p, "reg must be a finite number >= 0");
    p = small_params();
    p.iters = -1;
    expect_refused(fx->d, &p, "iters must be >= 0");
    p = small_params();
    p.dtype = GPUALS_DTYPE_FLOAT64;
    p.device = GPUALS_DEVICE_GPU;
    expect_refused(fx->d, &p, "float64 training runs on the CPU only");

    /* Thread counts beyond GPUALS_MAX_THREADS are refused before OpenMP could fail to start them
     * (which ends the process); the bound itself is accepted. */
    const int threads[] = {-1, GPUALS_MAX_THREADS + 1, 100000};
    for (int t = 0; t < 3; t++) {
        p = small_params();
        p.threads = threads[t];
        expect_refused(fx->d, &p, "threads must be between 0 (all cores) and 4096");
    }
}

static int count_calls(int iteration, double seconds, double loss, void *user)
{
    (void)iteration, (void)seconds, (void)loss;
    (*(int *)user)++;
    return 0;
}

static int stop_after_two(int iteration, double seconds, double loss, void *user)
{
    (void)seconds, (void)loss, (void)user;
    return iteration == 2;
}

/* iters 0 gives the initial factors, untrained: the seed's values in [0, 0.01). */
static void test_zero_iterations(void **state)
{
    const fixture *fx = *state;
    gpuals_params p = small_params();
    p.iters = 0;
    p.compute_loss = 1;
    int calls = 0;
    gpuals_model *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(gpuals_train(fx->d, &p, count_calls, &calls, &a), GPUALS_OK);
    assert_int_equal(calls, 0);
    assert_int_equal(gpuals_model_iterations(a), 0);
    assert_true(isnan(gpuals_model_final_loss(a)));
    size_t nx = (size_t)gpuals_model_users(a) * SMALL_FACTORS;
    size_t ny = (size_t)gpuals_model_items(a) * SMALL_FACTORS;
    const float *X = gpuals_model_user_factors(a), *Y = gpuals_model_item_factors(a);
    for (size_t k = 0; k < nx; k++) assert_true(X[k] >= 0.0f && X[k] < 0.01f);
    for (size_t k = 0; k < ny; k++) assert_true(Y[k] >= 0.0f && Y[k] < 0.01f);

    /* The same seed gives the same factors, another seed others. */
    assert_int_equal(gpuals_train(fx->d, &p, NULL, NULL, &b), GPUALS_OK);
    assert_memory_equal(X, gpuals_model_user_factors(b), nx * sizeof *X);
    assert_memory_equal(Y, gpuals_model_item_factors(b), ny * sizeof *Y);
    p.seed = 1;
    assert_int_equal(gpuals_train(fx->d, &p, NULL, NULL, &c), GPUALS_OK);
    assert_true(memcmp(X, gpuals_model_user_factors(c), nx * sizeof *X) != 0);
    gpuals_model_free(a);
    gpuals_model_free(b);
    gpuals_model_free(c);
}

/* A callback that stops training early: the model says how many iterations ran, holds the
 * factors of the last one, and meta.json records the count, which loading brings back. */
static void test_early_stop_is_recorded(void **state)
{
    const fixture *fx = *state;
    assert_int_equal(gpuals_model_iterations(fx->m), 3);
    assert_non_null(strstr(gpuals_model_device_note(fx->m), "using the CPU ("));

    gpuals_params p = small_params();
    p.iters = 6;
    gpuals_model *stopped = NULL, *two = NULL, *back = NULL;
    assert_int_equal(gpuals_train(fx->d, &p, stop_after_two, NULL, &stopped), GPUALS_OK);
    assert_int_equal(gpuals_model_iterations(stopped), 2);
    p.iters = 2;
    assert_int_equal(gpuals_train(fx->d, &p, NULL, NULL, &two), GPUALS_OK);
    size_t nx = (size_t)gpuals_model_users(two) * SMALL_FACTORS;
    assert_memory_equal(gpuals_model_user_factors(stopped), gpuals_model_user_factors(two),
                        nx * sizeof(float));

    char dir[32], path[64];
    make_temp_dir(dir);
    snprintf(path, sizeof path, "%s/model", dir);
    assert_int_equal(gpuals_model_save(stopped, path), GPUALS_OK);
    snprintf(path, sizeof path, "%s/model/meta.json", dir);
    char *meta = read_text(path);
    assert_non_null(strstr(meta, "\"iterations_run\": 2"));
    assert_non_null(strstr(meta, "\"iters\": 6"));
    free(meta);
    snprintf(path, sizeof path, "%s/model", dir);
    assert_int_equal(gpuals_model_load(path, &back), GPUALS_OK);
    assert_int_equal(gpuals_model_iterations(back), 2);
    assert_string_equal(gpuals_model_device_note(back), gpuals_model_device_note(stopped));
    assert_non_null(strstr(gpuals_model_device_note(back), "using the CPU ("));
    remove_temp_dir(dir);
    gpuals_model_free(stopped);
    gpuals_model_free(two);
    gpuals_model_free(back);
}

/* A user whose every rating is negative (disliked) has the exact factors 0: recommend and
 * similar refuse it, saying so, under both solvers, explain has nothing to show, and no other
 * user's similar list holds it. */
static void test_user_with_only_disliked_items(void **state)
{
    (void)state;
    char dir[32], path[64];
    make_temp_dir(dir);
    snprintf(path, sizeof path, "%s/ratings.csv", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "user,item,rating\n");
    for (int u = 0; u < 6; u++)
        for (int i = 0; i < 8; i++)
            if ((u + i) % 3 != 0) fprintf(f, "u%d,i%d,%d\n", u, i, 1 + (u * i) % 5);
    fprintf(f, "grumpy,i1,-2\ngrumpy,i4,-1\ngrumpy,i6,-3\n");
    assert_int_equal(fclose(f), 0);
    gpuals_load_options lo;
    gpuals_load_options_default(&lo);
    lo.ratings_path = path;
    gpuals_data *d = NULL;
    assert_int_equal(gpuals_data_load(&lo, &d), GPUALS_OK);

    const gpuals_solver solvers[] = {GPUALS_SOLVER_CG, GPUALS_SOLVER_CHOLESKY};
    for (int s = 0; s < 2; s++) {
        gpuals_params p = small_params();
        p.factors = 3;
        p.iters = 5;
        p.reg = 0.1;
        p.solver = solvers[s];
        gpuals_model *m = NULL;
        assert_int_equal(gpuals_train(d, &p, NULL, NULL, &m), GPUALS_OK);
        int64_t g = gpuals_model_user_index(m, "grumpy");
        assert_true(g >= 0);
        gpuals_hit hits[8];
        int n_out = -1;
        assert_int_equal(gpuals_recommend(m, g, 5, NULL, hits, &n_out), GPUALS_ERR_EMPTY);
        assert_int_equal(n_out, 0);
        const char *msg = gpuals_last_error();
        if (!strstr(msg, "user grumpy has 3 interactions") || !strstr(msg, "only disliked"))
            fail_msg("unexpected message: %s", msg);
        assert_int_equal(gpuals_recommend(m, gpuals_model_user_index(m, "u1"), 5, NULL, hits,
                                          &n_out), GPUALS_OK);
        assert_true(n_out > 0);

        /* The exact solver reaches the zero vector itself. */
        if (solvers[s] == GPUALS_SOLVER_CHOLESKY) {
            const float *x = gpuals_model_user_factors(m) + g * 3;
            assert_true(x[0] == 0.0f && x[1] == 0.0f && x[2] == 0.0f);
        }
        double total = -1, model_score;
        assert_int_equal(gpuals_explain(m, g, 0, 4, &total, &model_score, hits, &n_out),
                         GPUALS_OK);
        assert_true(total == 0.0 && n_out == 0);
        /* Its factors (rounding noise under CG) point nowhere: it is like no one, and no one
         * is like it. */
        assert_int_equal(gpuals_similar_users(m, g, 3, 0, hits, &n_out), GPUALS_ERR_EMPTY);
        assert_non_null(strstr(gpuals_last_error(), "user grumpy has no interaction with a "
                                                    "positive confidence"));
        int64_t users = gpuals_model_users(m);
        assert_true(users <= 8);
        assert_int_equal(gpuals_similar_users(m, gpuals_model_user_index(m, "u1"), 8, 0, hits,
                                              &n_out), GPUALS_OK);
        assert_int_equal(n_out, users - 2);
        for (int k = 0; k < n_out; k++) assert_true(hits[k].index != g);
        gpuals_model_free(m);
    }
    gpuals_data_free(d);
    remove_temp_dir(dir);
}

/* Fold-in prepares values as the loader did for the training data (min_rating 3 here), refuses
 * what the loader refuses, and leaves factors_out alone when it fails. */
static void test_fold_in_as_the_loader(void **state)
{
    const fixture *fx = *state;
    const gpuals_model *m = fx->m;
    assert_true(gpuals_data_summary(fx->d)->min_rating == 3.0);
    int64_t i = gpuals_model_item_index(m, "1196"), j = gpuals_model_item_index(m, "260");
    assert_true(i >= 0 && j >= 0);
    int64_t both[2] = {i, j}, only_j[1] = {j};
    float ref[SMALL_FACTORS], x[SMALL_FACTORS];
    float five[1] = {5}, five_two[2] = {5, 2}, low[1] = {2.5f}, huge[1] = {2e12f};
    float nan_value[1] = {NAN};
    assert_int_equal(gpuals_fold_in(m, both, five, 1, ref), GPUALS_OK);

    /* A value below min_rating is dropped, as the loader drops such a rating. */
    assert_int_equal(gpuals_fold_in(m, both, five_two, 2, x), GPUALS_OK);
    assert_memory_equal(x, ref, sizeof x);

    /* Failures leave factors_out as it was. */
    for (int k = 0; k < SMALL_FACTORS; k++) x[k] = 42.0f;
    assert_int_equal(gpuals_fold_in(m, only_j, low, 1, x), GPUALS_ERR_EMPTY);
    assert_non_null(strstr(gpuals_last_error(), "min_rating 3"));
    assert_int_equal(gpuals_fold_in(m, only_j, huge, 1, x), GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "2e+12"));
    assert_int_equal(gpuals_fold_in(m, only_j, nan_value, 1, x), GPUALS_ERR_USAGE);
    for (int k = 0; k < SMALL_FACTORS; k++) assert_true(x[k] == 42.0f);

    /* A saved and reloaded model keeps its min_rating. */
    char dir[32], path[64];
    make_temp_dir(dir);
    snprintf(path, sizeof path, "%s/model", dir);
    gpuals_model *back = NULL;
    assert_int_equal(gpuals_model_save(m, path), GPUALS_OK);
    assert_int_equal(gpuals_model_load(path, &back), GPUALS_OK);
    assert_int_equal(gpuals_fold_in(back, both, five_two, 2, x), GPUALS_OK);
    assert_memory_equal(x, ref, sizeof x);
    assert_int_equal(gpuals_fold_in(back, only_j, low, 1, x), GPUALS_ERR_EMPTY);
    gpuals_model_free(back);
    remove_temp_dir(dir);
}

/* A min_rating that is not a float (0.7): a liked value 0.7f, the float nearest 0.7 and just
 * below it, is kept, as the line "0.7" was when the data was loaded; 0.6f is dropped. */
static void test_fold_in_decimal_min_rating(void **state)
{
    (void)state;
    char dir[32], path[64];
    make_temp_dir(dir);
    snprintf(path, sizeof path, "%s/r.csv", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("u1,a,0.7\nu1,b,1\nu2,a,1\nu2,c,0.7\nu3,b,0.7\nu3,c,1\nu3,a,0.6\n", f);
    fclose(f);
    gpuals_load_options lo;
    gpuals_load_options_default(&lo);
    lo.ratings_path = path;
    lo.min_rating = 0.7;
    gpuals_data *d = NULL;
    assert_int_equal(gpuals_data_load(&lo, &d), GPUALS_OK);
    assert_int_equal(gpuals_data_summary(d)->stored, 6);
    gpuals_params p;
    gpuals_params_default(&p);
    p.factors = 2;
    p.iters = 2;
    p.device = GPUALS_DEVICE_CPU;
    gpuals_model *m = NULL;
    assert_int_equal(gpuals_train(d, &p, NULL, NULL, &m), GPUALS_OK);
    int64_t a = gpuals_model_item_index(m, "a");
    float x[2], seven[1] = {0.7f}, six[1] = {0.6f};
    assert_int_equal(gpuals_fold_in(m, &a, seven, 1, x), GPUALS_OK);
    assert_int_equal(gpuals_fold_in(m, &a, six, 1, x), GPUALS_ERR_EMPTY);
    gpuals_model_free(m);
    gpuals_data_free(d);
    remove_temp_dir(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* Threads                                                                                    */
/* ------------------------------------------------------------------------------------------ */

#define QUERY_USERS 40
#define QUERY_N 10
#define QUERY_THREADS 4

typedef struct {
    const gpuals_model *m;
    gpuals_hit hits[QUERY_USERS][QUERY_N];
    int n_out[QUERY_USERS];
    double total[QUERY_USERS];
    gpuals_status status;
    char error[256];
} query_job;

/* Recommend and explain for the first QUERY_USERS users, then fail once to leave a message of
 * this thread's own. */
static void *run_queries(void *arg)
{
    query_job *q = arg;
    q->status = GPUALS_OK;
    for (int64_t u = 0; u < QUERY_USERS && q->status == GPUALS_OK; u++) {
        q->status = gpuals_recommend(q->m, u, QUERY_N, NULL, q->hits[u], &q->n_out[u]);
        gpuals_hit parts[3];
        double score;
        int n_parts;
        if (q->status == GPUALS_OK)
            q->status = gpuals_explain(q->m, u, q->hits[u][0].index, 3, &q->total[u], &score,
                                       parts, &n_parts);
    }
    float s;
    gpuals_score(q->m, "no-such-user-in-a-thread", "1196", &s);
    snprintf(q->error, sizeof q->error, "%s", gpuals_last_error());
    return NULL;
}

typedef struct {
    const gpuals_data *d;
    gpuals_params p;
    gpuals_model *m;
    gpuals_status status;
} train_job;

static void *run_training(void *arg)
{
    train_job *t = arg;
    t->status = gpuals_train(t->d, &t->p, NULL, NULL, &t->m);
    return NULL;
}

/* Queries of one model from several threads at once answer as one thread alone does, and each
 * thread keeps its own last error; two models trained at once match those trained alone. */
static void test_threads(void **state)
{
    const fixture *fx = *state;
    static query_job alone, together[QUERY_THREADS];
    alone.m = fx->m;
    run_queries(&alone);
    assert_int_equal(alone.status, GPUALS_OK);
    float s;
    assert_int_equal(gpuals_score(fx->m, "414", "no-such-item-here", &s), GPUALS_ERR_NOT_FOUND);
    char mine[2048];
    snprintf(mine, sizeof mine, "%s", gpuals_last_error());

    pthread_t th[QUERY_THREADS];
    for (int t = 0; t < QUERY_THREADS; t++) {
        together[t].m = fx->m;
        assert_int_equal(pthread_create(&th[t], NULL, run_queries, &together[t]), 0);
    }
    for (int t = 0; t < QUERY_THREADS; t++) assert_int_equal(pthread_join(th[t], NULL), 0);
    for (int t = 0; t < QUERY_THREADS; t++) {
        assert_int_equal(together[t].status, GPUALS_OK);
        assert_memory_equal(together[t].hits, alone.hits, sizeof alone.hits);
        assert_memory_equal(together[t].n_out, alone.n_out, sizeof alone.n_out);
        assert_memory_equal(together[t].total, alone.total, sizeof alone.total);
        assert_non_null(strstr(together[t].error, "no-such-user-in-a-thread"));
    }
    assert_string_equal(gpuals_last_error(), mine);

    /* Two trainings at once. */
    train_job jobs[2];
    pthread_t tt[2];
    for (int t = 0; t < 2; t++) {
        jobs[t] = (train_job){.d = fx->d, .p = small_params(), .m = NULL};
        jobs[t].p.seed = (uint64_t)t + 1;
        jobs[t].p.threads = 1;
        assert_int_equal(pthread_create(&tt[t], NULL, run_training, &jobs[t]), 0);
    }
    for (int t = 0; t < 2; t++) assert_int_equal(pthread_join(tt[t], NULL), 0);
    for (int t = 0; t < 2; t++) {
        assert_int_equal(jobs[t].status, GPUALS_OK);
        gpuals_model *ref = NULL;
        assert_int_equal(gpuals_train(fx->d, &jobs[t].p, NULL, NULL, &ref), GPUALS_OK);
        size_t ny = (size_t)gpuals_model_items(ref) * SMALL_FACTORS;
        const float *a = gpuals_model_item_factors(jobs[t].m), *b = gpuals_model_item_factors(ref);
        for (size_t k = 0; k < ny; k++)
            if (!(fabs((double)a[k] - b[k]) <= 1e-5 * (1.0 + fabs((double)b[k]))))
                fail_msg("model %d, item factor %zu: %g alone, %g beside another", t, k,
                         (double)b[k], (double)a[k]);
        gpuals_model_free(ref);
        gpuals_model_free(jobs[t].m);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Finding items by title, a new user's recommendations and explanations                      */
/* ------------------------------------------------------------------------------------------ */

/* x . y_i for factor vectors of f floats, in double. */
static double dot(const float *x, const float *y, int f)
{
    double s = 0;
    for (int k = 0; k < f; k++) s += (double)x[k] * y[k];
    return s;
}

/* Users and items are found as the CLI finds them: raw ids, then titles at three levels. */
static void test_find(void **state)
{
    const fixture *fx = *state;
    const gpuals_model *m = fx->m;
    int64_t at = -7;
    assert_int_equal(gpuals_find_item(m, "Alien (1979)", &at), GPUALS_OK);
    assert_int_equal(at, gpuals_model_item_index(m, "1214"));
    assert_int_equal(gpuals_find_item(m, "alien (1979)", &at), GPUALS_OK);
    assert_int_equal(at, gpuals_model_item_index(m, "1214"));
    assert_int_equal(gpuals_find_item(m, "Empire Strikes Back", &at), GPUALS_OK);
    assert_int_equal(at, gpuals_model_item_index(m, "1196"));
    assert_int_equal(gpuals_find_item(m, "1196", &at), GPUALS_OK);
    assert_int_equal(at, gpuals_model_item_index(m, "1196"));
    assert_int_equal(gpuals_find_user(m, "414", &at), GPUALS_OK);
    assert_int_equal(at, gpuals_model_user_index(m, "414"));

    /* Failures name what they found instead, and leave *index alone. */
    at = -7;
    assert_int_equal(gpuals_find_item(m, "Star Wars", &at), GPUALS_ERR_AMBIGUOUS);
    assert_non_null(strstr(gpuals_last_error(), "Empire Strikes Back"));
    assert_int_equal(gpuals_find_item(m, "Alien (1797)", &at), GPUALS_ERR_NOT_FOUND);
    assert_non_null(strstr(gpuals_last_error(), "Alien (1979)"));
    assert_int_equal(gpuals_find_user(m, "100000", &at), GPUALS_ERR_NOT_FOUND);
    assert_non_null(strstr(gpuals_last_error(), "610"));
    assert_int_equal(gpuals_find_item(m, "", &at), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_find_item(NULL, "1196", &at), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_find_item(m, NULL, &at), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_find_user(m, "414", NULL), GPUALS_ERR_USAGE);
    assert_int_equal(at, -7);
}

/* A new user from three titles: the recommendations are the best items by the folded-in
 * factors, without the liked ones unless asked; the explanation adds up to the score. */
static void test_new_user(void **state)
{
    const fixture *fx = *state;
    const gpuals_model *m = fx->m;
    const char *titles[] = {"Alien (1979)", "Heat (1995)", "Fargo (1996)"};
    int64_t items[3];
    float values[3] = {5, 5, 4.5f};
    for (int k = 0; k < 3; k++)
        assert_int_equal(gpuals_find_item(m, titles[k], &items[k]), GPUALS_OK);
    float x[SMALL_FACTORS];
    assert_int_equal(gpuals_fold_in(m, items, values, 3, x), GPUALS_OK);

    /* Brute force over every item: the best 10 by x . y_i, ties to the lower index. */
    const int64_t n_items = gpuals_model_items(m);
    const float *Y = gpuals_model_item_factors(m);
    for (int with_liked = 0; with_liked <= 1; with_liked++) {
        int64_t best[10];
        double best_s[10];
        int nb = 0;
        for (int64_t i = 0; i < n_items; i++) {
            if (!with_liked && (i == items[0] || i == items[1] || i == items[2])) continue;
            double sc = (double)(float)dot(x, Y + i * SMALL_FACTORS, SMALL_FACTORS);
            int at = nb < 10 ? nb++ : 10;
            while (at > 0 && best_s[at - 1] < sc) {
                if (at < 10) {
                    best[at] = best[at - 1];
                    best_s[at] = best_s[at - 1];
                }
                at--;
            }
            if (at < 10) {
                best[at] = i;
                best_s[at] = sc;
            }
        }
        gpuals_rec_options o;
        gpuals_rec_options_default(&o);
        o.filter_liked = with_liked ? 0 : 1;
        gpuals_hit hits[10];
        int n = 0;
        assert_int_equal(gpuals_recommend_new_user(m, items, values, 3, 10, &o, hits, &n),
                         GPUALS_OK);
        assert_int_equal(n, 10);
        for (int k = 0; k < 10; k++) {
            assert_true(fabs(hits[k].score - best_s[k]) <= 1e-5 * (1 + fabs(best_s[k])));
            if (hits[k].index != best[k])  /* only where two scores tie to float precision */
                assert_true(fabs(best_s[k] - hits[k].score) <= 1e-6 * (1 + fabs(best_s[k])));
        }
    }

    /* The explanation of the first recommendation: contributions of the liked items only, their
     * total the folded-in user's score. */
    gpuals_hit top[1], why[5];
    int n = 0;
    assert_int_equal(gpuals_recommend_new_user(m, items, values, 3, 1, NULL, top, &n), GPUALS_OK);
    double total = 0, model_score = 0;
    assert_int_equal(gpuals_explain_new_user(m, items, values, 3, top[0].index, 5, &total,
                                             &model_score, why, &n), GPUALS_OK);
    assert_int_equal(n, 3);
    for (int k = 0; k < n; k++)
        assert_true(why[k].index == items[0] || why[k].index == items[1] ||
                    why[k].index == items[2]);
    assert_true(fabs(model_score - top[0].score) <= 1e-5 * (1 + fabs(model_score)));
    assert_true(fabs(total - model_score) <= 1e-4 * (1 + fabs(model_score)));

    /* Failures: as fold-in's, and *n_out 0 with hits untouched. */
    gpuals_hit keep[2] = {{.index = 42, .score = 1}, {.index = 43, .score = 2}};
    float low[3] = {1, 2, 2.5f}; /* all below the data's min_rating 3 */
    n = 7;
    assert_int_equal(gpuals_recommend_new_user(m, items, low, 3, 2, NULL, keep, &n),
                     GPUALS_ERR_EMPTY);
    assert_non_null(strstr(gpuals_last_error(), "min_rating"));
    assert_int_equal(n, 0);
    assert_int_equal(keep[0].index, 42);
    int64_t bad[1] = {n_items};
    assert_int_equal(gpuals_recommend_new_user(m, bad, values, 1, 2, NULL, keep, &n),
                     GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_recommend_new_user(NULL, items, values, 3, 2, NULL, keep, &n),
                     GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_recommend_new_user(m, items, values, 3, 2, NULL, NULL, &n),
                     GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_explain_new_user(m, items, values, 3, n_items, 2, &total,
                                             &model_score, keep, &n), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_explain_new_user(m, items, values, 3, 0, 2, NULL, &model_score,
                                             keep, &n), GPUALS_ERR_USAGE);
    assert_int_equal(keep[1].index, 43);
}

/* ------------------------------------------------------------------------------------------ */
/* Held-out evaluation                                                                        */
/* ------------------------------------------------------------------------------------------ */

/* A split partitions the interactions and keeps the shape; a model trained on its train side
 * is evaluated on its test side; what cannot be evaluated is refused, saying why. */
static void test_split_and_evaluate(void **state)
{
    const fixture *fx = *state;
    gpuals_split_options so;
    gpuals_split_options_default(&so);
    assert_int_equal(so.kind, GPUALS_SPLIT_RANDOM);
    assert_true(so.test_fraction == 0.2);
    so.seed = 3;
    gpuals_data *train = NULL, *test = NULL;
    assert_int_equal(gpuals_data_split(fx->d, &so, &train, &test), GPUALS_OK);
    const gpuals_summary *all = gpuals_data_summary(fx->d), *tr = gpuals_data_summary(train),
                         *te = gpuals_data_summary(test);
    assert_int_equal(tr->stored + te->stored, all->stored);
    assert_true(te->stored > all->stored / 10 && te->stored < all->stored * 3 / 10);
    assert_int_equal(tr->users, all->users);
    assert_int_equal(te->items, all->items);

    gpuals_params p = small_params();
    p.iters = 8;
    gpuals_model *m = NULL;
    assert_int_equal(gpuals_train(train, &p, NULL, NULL, &m), GPUALS_OK);
    gpuals_metrics full, top;
    assert_int_equal(gpuals_evaluate(m, test, 10, 1, &full), GPUALS_OK);
    assert_int_equal(full.k, 10);
    assert_true(full.users > 500 && full.users + full.skipped == all->users);
    assert_int_equal(full.has_auc, 1);
    const double v[] = {full.implicit_precision, full.precision, full.recall, full.map,
                        full.ndcg, full.implicit_auc, full.auc};
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) assert_true(v[k] > 0 && v[k] <= 1);
    assert_true(full.auc > 0.8);              /* far better than chance */
    assert_true(full.implicit_precision > 0.1);
    assert_true(full.precision <= full.implicit_precision + 1e-12); /* as min(k, |T_u|) <= k */

    /* Ranking only the top k changes nothing but the full AUC. */
    assert_int_equal(gpuals_evaluate(m, test, 10, 0, &top), GPUALS_OK);
    assert_int_equal(top.has_auc, 0);
    assert_true(top.auc == 0);
    assert_true(top.implicit_precision == full.implicit_precision);
    assert_true(top.ndcg == full.ndcg && top.map == full.map && top.recall == full.recall);
    assert_true(top.implicit_auc == full.implicit_auc);

    /* The same settings and seed give the same numbers; a saved and reloaded model too. */
    char dir[sizeof "/tmp/gpuals-test-api-XXXXXX"], path[sizeof dir + 16];
    make_temp_dir(dir);
    snprintf(path, sizeof path, "%s/model", dir);
    assert_int_equal(gpuals_model_save(m, path), GPUALS_OK);
    gpuals_model *back = NULL;
    assert_int_equal(gpuals_model_load(path, &back), GPUALS_OK);
    gpuals_metrics again;
    assert_int_equal(gpuals_evaluate(back, test, 10, 1, &again), GPUALS_OK);
    assert_true(again.users == full.users && again.skipped == full.skipped);
    assert_true(again.implicit_precision == full.implicit_precision && again.auc == full.auc);
    assert_true(again.ndcg == full.ndcg && again.map == full.map);
    gpuals_model_free(back);
    remove_temp_dir(dir);

    /* Refusals: the training data holds nothing the model has not seen; a model of other data;
     * k < 1; bad options and NULLs. out is untouched by a failure. */
    gpuals_metrics keep = {.k = -5};
    assert_int_equal(gpuals_evaluate(m, train, 10, 0, &keep), GPUALS_ERR_EMPTY);
    assert_non_null(strstr(gpuals_last_error(), "no user to evaluate"));
    assert_int_equal(gpuals_evaluate(m, test, 0, 0, &keep), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_evaluate(NULL, test, 10, 0, &keep), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_evaluate(m, test, 10, 0, NULL), GPUALS_ERR_USAGE);
    assert_int_equal(keep.k, -5);

    gpuals_load_options lo;
    gpuals_load_options_default(&lo);
    lo.ratings_path = GPUALS_FIXTURES "/data/ml100k/u.data";
    gpuals_data *other = NULL;
    assert_int_equal(gpuals_data_load(&lo, &other), GPUALS_OK);
    assert_int_equal(gpuals_evaluate(m, other, 10, 0, &keep), GPUALS_ERR_MISMATCH);
    assert_non_null(strstr(gpuals_last_error(), "the test side"));
    gpuals_data_free(other);

    gpuals_data *a = (gpuals_data *)1, *b = (gpuals_data *)1;
    so.test_fraction = 1.5;
    assert_int_equal(gpuals_data_split(fx->d, &so, &a, &b), GPUALS_ERR_USAGE);
    assert_null(a);
    assert_null(b);
    so.test_fraction = 0;
    assert_int_equal(gpuals_data_split(fx->d, &so, &a, &b), GPUALS_ERR_EMPTY);
    so.kind = (gpuals_split_kind)7;
    assert_int_equal(gpuals_data_split(fx->d, &so, &a, &b), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_data_split(NULL, &so, &a, &b), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_data_split(fx->d, NULL, &a, &b), GPUALS_ERR_USAGE);
    assert_int_equal(gpuals_data_split(fx->d, &so, NULL, &b), GPUALS_ERR_USAGE);

    /* Leave-k-out: k per eligible user. */
    gpuals_split_options_default(&so);
    so.kind = GPUALS_SPLIT_LEAVE_K_OUT;
    so.leave_k = 2;
    assert_int_equal(gpuals_data_split(fx->d, &so, &a, &b), GPUALS_OK);
    const gpuals_summary *lt = gpuals_data_summary(b);
    assert_true(lt->stored % 2 == 0 && lt->stored > 0 && lt->stored <= 2 * all->users);
    assert_int_equal(gpuals_data_summary(a)->stored + lt->stored, all->stored);
    gpuals_data_free(a);
    gpuals_data_free(b);

    gpuals_model_free(m);
    gpuals_data_free(train);
    gpuals_data_free(test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_api),
        cmocka_unit_test(test_gpu_usable),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_ranges_lists_and_last_error),
        cmocka_unit_test(test_train_refuses_bad_settings),
        cmocka_unit_test(test_zero_iterations),
        cmocka_unit_test(test_early_stop_is_recorded),
        cmocka_unit_test(test_user_with_only_disliked_items),
        cmocka_unit_test(test_fold_in_as_the_loader),
        cmocka_unit_test(test_fold_in_decimal_min_rating),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_new_user),
        cmocka_unit_test(test_split_and_evaluate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
