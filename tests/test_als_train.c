/*
 * test_als_train.c - the ALS engine's behaviour around the maths: reproducibility across thread
 * counts, empty rows and columns, failures (non-finite input, overflow, bad arguments), the
 * per-iteration callback, device dispatch (als_fit) and gpuals_train from data to model.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dataset.h"
#include "model.h"
#include "test_als_util.h"

/* Train in float32 from the standard start with the given thread count. */
static void fit_f32(const test_pair *t, gpuals_params p, int threads, float **X, float **Y)
{
    p.threads = threads;
    *X = test_init_f32(t->ui.rows, p.factors, p.seed, ALS_SIDE_USERS);
    *Y = test_init_f32(t->ui.cols, p.factors, p.seed, ALS_SIDE_ITEMS);
    assert_int_equal(als_fit_cpu(&t->ui, &t->iu, &p, *X, *Y, NULL, NULL), GPUALS_OK);
}

/* The same seed gives bit-identical factors on 1, 2 and 3 threads, for both solvers. The
 * matrix is large enough (300 users) for dynamic scheduling to interleave the threads. */
static void test_same_seed_identical_for_any_thread_count(void **state)
{
    (void)state;
    test_pair t;
    pair_random(&t, 300, 200, 0.05, 0, -1, -1);
    for (int s = 0; s < 2; s++) {
        gpuals_params p = test_params(16, s ? GPUALS_SOLVER_CHOLESKY : GPUALS_SOLVER_CG, 3, 0.1);
        p.seed = 12345;
        float *X1, *Y1, *X2, *Y2, *X3, *Y3;
        fit_f32(&t, p, 1, &X1, &Y1);
        fit_f32(&t, p, 2, &X2, &Y2);
        fit_f32(&t, p, 3, &X3, &Y3);
        assert_memory_equal(X1, X2, 300 * 16 * sizeof *X1);
        assert_memory_equal(Y1, Y2, 200 * 16 * sizeof *Y1);
        assert_memory_equal(X1, X3, 300 * 16 * sizeof *X1);
        assert_memory_equal(Y1, Y3, 200 * 16 * sizeof *Y1);

        /* And a different seed gives different factors. */
        p.seed = 54321;
        float *X4, *Y4;
        fit_f32(&t, p, 2, &X4, &Y4);
        assert_memory_not_equal(X1, X4, 300 * 16 * sizeof *X1);
        free(X1), free(Y1), free(X2), free(Y2), free(X3), free(Y3), free(X4), free(Y4);
    }
    pair_free(&t);
}

/* A user without interactions and an item nobody interacted with (an all-zero column) end with
 * zero factors although they start non-zero; every other row is non-zero. */
static void test_empty_rows_and_columns_stay_zero(void **state)
{
    (void)state;
    test_pair t;
    pair_random(&t, 30, 20, 0.3, 0, 7, 11);
    assert_int_equal(csr_row_len(&t.ui, 7), 0);
    assert_int_equal(csr_row_len(&t.iu, 11), 0);
    for (int s = 0; s < 2; s++) {
        gpuals_params p = test_params(4, s ? GPUALS_SOLVER_CHOLESKY : GPUALS_SOLVER_CG, 2, 0.1);
        float *X = test_init_f32(30, 4, 0, ALS_SIDE_USERS), *Y = test_init_f32(20, 4, 0, 1);
        assert_true(X[7 * 4] != 0.0f && Y[11 * 4] != 0.0f);
        assert_int_equal(als_fit_cpu(&t.ui, &t.iu, &p, X, Y, NULL, NULL), GPUALS_OK);
        for (int k = 0; k < 4; k++) {
            assert_true(X[7 * 4 + k] == 0.0f);
            assert_true(Y[11 * 4 + k] == 0.0f);
        }
        double norm = 0;
        for (int k = 0; k < 4; k++) norm += fabs(X[6 * 4 + k]) + fabs(Y[10 * 4 + k]);
        assert_true(norm > 0);
        free(X), free(Y);
    }
    pair_free(&t);
}

/* A NaN confidence is refused before training, naming the user row and the item column. */
static void test_nan_confidence_names_the_row(void **state)
{
    (void)state;
    const int32_t u[] = {0, 1, 2, 2, 3};
    const int32_t i[] = {1, 0, 1, 2, 0};
    const float c[] = {1, 2, NAN, 3, 4};
    test_pair t;
    pair_from_triplets(&t, 4, 3, 5, u, i, c);
    gpuals_params p = test_params(3, GPUALS_SOLVER_CG, 2, 0.1);
    float *X = test_init_f32(4, 3, 0, ALS_SIDE_USERS), *Y = test_init_f32(3, 3, 0, 1);
    assert_int_equal(als_fit_cpu(&t.ui, &t.iu, &p, X, Y, NULL, NULL), GPUALS_ERR_NUMERIC);
    print_message("%s\n", gpuals_last_error());
    assert_non_null(strstr(gpuals_last_error(), "user 2 (row index)"));
    assert_non_null(strstr(gpuals_last_error(), "item 1 (column index)"));
    double *X64 = test_init_f64(4, 3, 0, 0), *Y64 = test_init_f64(3, 3, 0, 1);
    assert_int_equal(als_fit_cpu_f64(&t.ui, &t.iu, &p, X64, Y64, NULL, NULL),
                     GPUALS_ERR_NUMERIC);
    assert_non_null(strstr(gpuals_last_error(), "user 2 (row index)"));
    free(X), free(Y), free(X64), free(Y64);
    pair_free(&t);
}

/* A confidence near FLT_MAX overflows float32 CG: training stops with the side, the row and the
 * iteration, instead of carrying NaN on. */
static void test_overflow_stops_training_naming_the_row(void **state)
{
    (void)state;
    const int32_t u[] = {0, 0, 1, 2, 2};
    const int32_t i[] = {0, 2, 1, 0, 1};
    const float c[] = {2, 3, 3e38f, 1, 2};
    test_pair t;
    pair_from_triplets(&t, 3, 3, 5, u, i, c);
    gpuals_params p = test_params(2, GPUALS_SOLVER_CG, 3, 0.1);
    test_record rec = {0};
    float *X = test_init_f32(3, 2, 0, ALS_SIDE_USERS), *Y = test_init_f32(3, 2, 0, 1);
    assert_int_equal(als_fit_cpu(&t.ui, &t.iu, &p, X, Y, record_iteration, &rec),
                     GPUALS_ERR_NUMERIC);
    print_message("%s\n", gpuals_last_error());
    assert_non_null(strstr(gpuals_last_error(), "user 1 (row index) became non-finite at "
                                                "iteration 1"));
    assert_int_equal(rec.calls, 0);
    free(X), free(Y);
    pair_free(&t);
}

/* The callback sees iterations 1..n with their time and the loss (NaN unless asked for), and a
 * non-zero answer stops training with GPUALS_OK. */
static void test_callback_reports_and_can_stop(void **state)
{
    (void)state;
    test_pair t;
    pair_random(&t, 25, 15, 0.3, 0, -1, -1);
    gpuals_params p = test_params(4, GPUALS_SOLVER_CG, 5, 0.1);
    float *X = test_init_f32(25, 4, 0, ALS_SIDE_USERS), *Y = test_init_f32(15, 4, 0, 1);

    /* Without the loss. */
    test_record rec = {0};
    assert_int_equal(als_fit_cpu(&t.ui, &t.iu, &p, X, Y, record_iteration, &rec), GPUALS_OK);
    assert_int_equal(rec.calls, 5);
    for (int k = 0; k < 5; k++) {
        assert_int_equal(rec.iteration[k], k + 1);
        assert_true(rec.seconds[k] >= 0);
        assert_true(isnan(rec.loss[k]));
    }

    /* With the loss, stopped after the second iteration. */
    test_record rec2 = {0};
    rec2.stop_after = 2;
    p.compute_loss = 1;
    assert_int_equal(als_fit_cpu(&t.ui, &t.iu, &p, X, Y, record_iteration, &rec2), GPUALS_OK);
    assert_int_equal(rec2.calls, 2);
    assert_true(isfinite(rec2.loss[0]) && rec2.loss[0] > 0);
    /* The engine's float32 dot products run over padded rows, als_loss's over f entries: the
     * sums agree to float32 rounding. */
    assert_true(fabs(rec2.loss[1] - als_loss(&t.ui, X, Y, 4, &p)) <= 1e-6 * rec2.loss[1]);
    free(X), free(Y);
    pair_free(&t);
}

/* More factors than items (and than users) trains to finite factors with reg > 0. */
static void test_more_factors_than_items(void **state)
{
    (void)state;
    const int32_t u[] = {0, 0, 1, 2, 3, 4};
    const int32_t i[] = {0, 2, 1, 0, 2, 1};
    const float c[] = {2, 3, 4, 1, 5, 2};
    test_pair t;
    pair_from_triplets(&t, 5, 3, 6, u, i, c);
    for (int s = 0; s < 2; s++) {
        gpuals_params p = test_params(8, s ? GPUALS_SOLVER_CHOLESKY : GPUALS_SOLVER_CG, 10, 0.01);
        p.compute_loss = 1;
        test_record rec = {0};
        float *X = test_init_f32(5, 8, 0, ALS_SIDE_USERS), *Y = test_init_f32(3, 8, 0, 1);
        assert_int_equal(als_fit_cpu(&t.ui, &t.iu, &p, X, Y, record_iteration, &rec),
                         GPUALS_OK);
        for (int k = 0; k < 5 * 8; k++) assert_true(isfinite(X[k]));
        for (int k = 0; k < 3 * 8; k++) assert_true(isfinite(Y[k]));
        assert_true(rec.loss[9] < rec.loss[0]);
        free(X), free(Y);
    }
    pair_free(&t);
}

/* Bad arguments are usage errors that name what is wrong. */
static void test_bad_arguments(void **state)
{
    (void)state;
    test_pair t, other;
    pair_random(&t, 6, 5, 0.5, 0, -1, -1);
    pair_random(&other, 5, 5, 0.5, 0, -1, -1);
    float *X = test_init_f32(6, 3, 0, 0), *Y = test_init_f32(5, 3, 0, 1);
    gpuals_params p = test_params(3, GPUALS_SOLVER_CG, 1, 0.1);
    assert_int_equal(als_fit_cpu(NULL, &t.iu, &p, X, Y, NULL, NULL), GPUALS_ERR_USAGE);
    assert_int_equal(als_fit_cpu(&t.ui, &other.iu, &p, X, Y, NULL, NULL), GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "not the transpose"));
    gpuals_params q = p;
    q.factors = 0;
    assert_int_equal(als_fit_cpu(&t.ui, &t.iu, &q, X, Y, NULL, NULL), GPUALS_ERR_USAGE);
    q = p, q.cg_steps = 0;
    assert_int_equal(als_fit_cpu(&t.ui, &t.iu, &q, X, Y, NULL, NULL), GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "cg_steps"));
    q = p, q.reg = -1;
    assert_int_equal(als_fit_cpu(&t.ui, &t.iu, &q, X, Y, NULL, NULL), GPUALS_ERR_USAGE);
    q = p, q.iters = 0;
    assert_int_equal(als_fit_cpu(&t.ui, &t.iu, &q, X, Y, NULL, NULL), GPUALS_OK);
    free(X), free(Y);
    pair_free(&t), pair_free(&other);
}

/* als_fit: CPU runs als_fit_cpu; FLOAT64 runs the float64 engine and narrows; GPU either runs
 * on a usable device or is NO_DEVICE; GPU with FLOAT64 is a usage error; AUTO always trains. */
static void test_als_fit_dispatch(void **state)
{
    (void)state;
    test_pair t;
    pair_random(&t, 20, 12, 0.3, 0, -1, -1);
    gpuals_params p = test_params(4, GPUALS_SOLVER_CG, 3, 0.1);
    gpuals_device used = GPUALS_DEVICE_AUTO;
    char note[256];

    /* CPU, float32: the same bits as als_fit_cpu. */
    float *Xa, *Ya;
    fit_f32(&t, p, 1, &Xa, &Ya);
    float *X = test_init_f32(20, 4, 0, 0), *Y = test_init_f32(12, 4, 0, 1);
    assert_int_equal(als_fit(&t.ui, &t.iu, &p, X, Y, NULL, NULL, &used, note, sizeof note),
                     GPUALS_OK);
    assert_int_equal(used, GPUALS_DEVICE_CPU);
    assert_memory_equal(X, Xa, 20 * 4 * sizeof *X);

    /* CPU, float64: the float64 engine's result, narrowed. */
    p.dtype = GPUALS_DTYPE_FLOAT64;
    als_init_factors(X, 20, 4, 0, 0), als_init_factors(Y, 12, 4, 0, 1);
    assert_int_equal(als_fit(&t.ui, &t.iu, &p, X, Y, NULL, NULL, &used, note, sizeof note),
                     GPUALS_OK);
    double *X64 = test_init_f64(20, 4, 0, 0), *Y64 = test_init_f64(12, 4, 0, 1);
    assert_int_equal(als_fit_cpu_f64(&t.ui, &t.iu, &p, X64, Y64, NULL, NULL), GPUALS_OK);
    for (int k = 0; k < 20 * 4; k++) assert_true(X[k] == (float)X64[k]);

    /* GPU with float64 is refused; GPU alone runs or says why not. */
    p.device = GPUALS_DEVICE_GPU;
    assert_int_equal(als_fit(&t.ui, &t.iu, &p, X, Y, NULL, NULL, &used, note, sizeof note),
                     GPUALS_ERR_USAGE);
    p.dtype = GPUALS_DTYPE_FLOAT32;
    gpuals_status st = als_fit(&t.ui, &t.iu, &p, X, Y, NULL, NULL, &used, note, sizeof note);
    print_message("--device gpu: %s (%s)\n", gpuals_status_name(st),
                  st == GPUALS_OK ? note : gpuals_last_error());
    assert_true(st == GPUALS_OK || st == GPUALS_ERR_NO_DEVICE);
    if (st == GPUALS_OK) assert_int_equal(used, GPUALS_DEVICE_GPU);

    /* AUTO trains somewhere and says where. */
    p.device = GPUALS_DEVICE_AUTO;
    assert_int_equal(als_fit(&t.ui, &t.iu, &p, X, Y, NULL, NULL, &used, note, sizeof note),
                     GPUALS_OK);
    print_message("--device auto: %s\n", note);
    assert_true(note[0] != '\0');
    free(X), free(Y), free(Xa), free(Ya), free(X64), free(Y64);
    pair_free(&t);
}

/* The defaults are the `implicit` library's. */
static void test_params_default(void **state)
{
    (void)state;
    gpuals_params p;
    memset(&p, 0xff, sizeof p);
    gpuals_params_default(&p);
    assert_int_equal(p.factors, 100);
    assert_true(p.reg == 0.01 && p.alpha == 1.0);
    assert_int_equal(p.iters, 15);
    assert_int_equal(p.solver, GPUALS_SOLVER_CG);
    assert_int_equal(p.cg_steps, 3);
    assert_int_equal(p.reg_scale, GPUALS_REG_NONE);
    assert_int_equal(p.confidence, GPUALS_CONF_IMPLICIT);
    assert_int_equal(p.dtype, GPUALS_DTYPE_FLOAT32);
    assert_int_equal(p.device, GPUALS_DEVICE_AUTO);
    assert_int_equal(p.threads, 0);
    assert_int_equal(p.compute_loss, 0);
}

/* gpuals_train from triplets: the model holds the factors the engine gives on the same
 * confidences and start, the last loss, the device and a positive training time. */
static void test_gpuals_train_end_to_end(void **state)
{
    (void)state;
    const char *users[] = {"u1", "u1", "u2", "u3", "u3", "u3", "u4", "u5", "u5"};
    const char *items[] = {"a", "b", "b", "a", "c", "d", "d", "b", "e"};
    const float values[] = {5, 3, 4, 2, 5, 1, 4, 5, 3};
    gpuals_data *d = NULL;
    assert_int_equal(dataset_from_triplets(9, users, items, values, &d), GPUALS_OK);

    gpuals_params p = test_params(3, GPUALS_SOLVER_CG, 4, 0.05);
    p.alpha = 2;
    p.compute_loss = 1;
    p.seed = 7;
    test_record rec = {0};
    gpuals_model *m = NULL;
    assert_int_equal(gpuals_train(d, &p, record_iteration, &rec, &m), GPUALS_OK);
    assert_non_null(m);
    assert_int_equal(rec.calls, 4);
    assert_true(m->final_loss == rec.loss[3]);
    assert_true(m->train_seconds > 0);
    assert_int_equal(m->device_used, GPUALS_DEVICE_CPU);

    /* The same run by hand. */
    test_pair t;
    memset(&t, 0, sizeof t);
    assert_int_equal(dataset_confidence(&d->ratings, &p, &t.ui), GPUALS_OK);
    assert_int_equal(dataset_confidence(&d->ratings_t, &p, &t.iu), GPUALS_OK);
    assert_true(t.ui.data[0] == 2 * d->ratings.data[0]);
    float *X = test_init_f32(5, 3, 7, ALS_SIDE_USERS), *Y = test_init_f32(5, 3, 7, 1);
    assert_int_equal(als_fit_cpu(&t.ui, &t.iu, &p, X, Y, NULL, NULL), GPUALS_OK);
    assert_memory_equal(X, m->X, 5 * 3 * sizeof *X);
    assert_memory_equal(Y, m->Y, 5 * 3 * sizeof *Y);

    /* A failing run returns no model. */
    gpuals_model *none = NULL;
    p.cg_steps = 0;
    assert_int_equal(gpuals_train(d, &p, NULL, NULL, &none), GPUALS_ERR_USAGE);
    assert_null(none);
    free(X), free(Y);
    pair_free(&t);
    gpuals_model_free(m);
    gpuals_data_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_identical_for_any_thread_count),
        cmocka_unit_test(test_empty_rows_and_columns_stay_zero),
        cmocka_unit_test(test_nan_confidence_names_the_row),
        cmocka_unit_test(test_overflow_stops_training_naming_the_row),
        cmocka_unit_test(test_callback_reports_and_can_stop),
        cmocka_unit_test(test_more_factors_than_items),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_als_fit_dispatch),
        cmocka_unit_test(test_params_default),
        cmocka_unit_test(test_gpuals_train_end_to_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
