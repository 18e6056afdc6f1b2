/*
 * test_als_solvers.c - the ALS engine's maths on tiny matrices with known answers.
 *
 * - Cholesky (float64) equals a dense float64 closed-form solve of every row's normal equations
 *   over the full matrix, built term by term and solved with LAPACKE_dposv, to 1e-6 relative;
 *   with confidences below 1, "disliked" (negative) entries, empty rows and both reg scales.
 * - CG with as many steps as factors equals Cholesky (float64), and float32 follows float64.
 * - Under Cholesky the training loss never rises.
 * - The loss of a 3 x 3 case worked out by hand (the working is in the test).
 * - A 7 x 6 binary matrix is reconstructed by 6 factors with reg 0.
 * - A singular system is reported as such, never turned into NaN.
 * - als_solve_row_exact and als_gram against direct computations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "als_internal.h"
#include "test_als_util.h"

/* Run the float64 engine from the standard starting point and return X and Y. */
static void fit_f64(const test_pair *t, const gpuals_params *p, double **X, double **Y,
                    test_record *rec)
{
    *X = test_init_f64(t->ui.rows, p->factors, p->seed, ALS_SIDE_USERS);
    *Y = test_init_f64(t->ui.cols, p->factors, p->seed, ALS_SIDE_ITEMS);
    assert_int_equal(als_fit_cpu_f64(&t->ui, &t->iu, p, *X, *Y, rec ? record_iteration : NULL,
                                     rec),
                     GPUALS_OK);
}

/* The dense reference of p->iters iterations from the same starting point. */
static void reference_fit(const test_pair *t, const gpuals_params *p, double **X, double **Y)
{
    *X = test_init_f64(t->ui.rows, p->factors, p->seed, ALS_SIDE_USERS);
    *Y = test_init_f64(t->ui.cols, p->factors, p->seed, ALS_SIDE_ITEMS);
    int freq = p->reg_scale == GPUALS_REG_FREQUENCY;
    for (int it = 0; it < p->iters; it++) {
        reference_half(&t->ui, *Y, p->factors, p->reg, freq, *X);
        reference_half(&t->iu, *X, p->factors, p->reg, freq, *Y);
    }
}

/* ------------------------------------------------------------------------------------------ */

static void test_cholesky_matches_dense_reference(void **state)
{
    (void)state;
    test_pair t;
    pair_random(&t, 12, 9, 0.35, 1, 3, 4);
    for (int freq = 0; freq <= 1; freq++) {
        gpuals_params p = test_params(4, GPUALS_SOLVER_CHOLESKY, 3, 0.1);
        p.reg_scale = freq ? GPUALS_REG_FREQUENCY : GPUALS_REG_NONE;
        double *X, *Y, *Xr, *Yr;
        fit_f64(&t, &p, &X, &Y, NULL);
        reference_fit(&t, &p, &Xr, &Yr);
        double ex = max_rel_diff(X, Xr, 12 * 4), ey = max_rel_diff(Y, Yr, 9 * 4);
        print_message("reg scale %d: Cholesky vs dense reference: X %.2e, Y %.2e\n", freq, ex,
                      ey);
        assert_true(ex < 1e-6);
        assert_true(ey < 1e-6);
        free(X), free(Y), free(Xr), free(Yr);
    }
    pair_free(&t);
}

static void test_cg_with_f_steps_matches_cholesky(void **state)
{
    (void)state;
    test_pair t;
    pair_random(&t, 15, 11, 0.3, 1, 2, -1);
    gpuals_params p = test_params(5, GPUALS_SOLVER_CHOLESKY, 4, 0.05);
    double *Xc, *Yc, *Xg, *Yg;
    fit_f64(&t, &p, &Xc, &Yc, NULL);
    p.solver = GPUALS_SOLVER_CG;
    p.cg_steps = p.factors;
    fit_f64(&t, &p, &Xg, &Yg, NULL);
    double ex = max_rel_diff(Xg, Xc, 15 * 5), ey = max_rel_diff(Yg, Yc, 11 * 5);
    print_message("CG (f steps) vs Cholesky: X %.2e, Y %.2e\n", ex, ey);
    assert_true(ex < 1e-6);
    assert_true(ey < 1e-6);
    free(Xc), free(Yc), free(Xg), free(Yg);
    pair_free(&t);
}

/* float32 follows float64 for both solvers through 4 iterations. In float32, CG loses
 * conjugacy to rounding and needs more than f steps to converge, so it gets 2f here; the 1e-4
 * bound is float32's epsilon times the conditioning of these systems (about 1e3). */
static void test_float32_follows_float64(void **state)
{
    (void)state;
    test_pair t;
    pair_random(&t, 20, 14, 0.3, 1, -1, -1);
    for (int s = 0; s < 2; s++) {
        gpuals_params p = test_params(6, s ? GPUALS_SOLVER_CHOLESKY : GPUALS_SOLVER_CG, 4, 0.1);
        p.cg_steps = 12;
        double *X64, *Y64;
        fit_f64(&t, &p, &X64, &Y64, NULL);
        float *X = test_init_f32(20, 6, p.seed, ALS_SIDE_USERS);
        float *Y = test_init_f32(14, 6, p.seed, ALS_SIDE_ITEMS);
        assert_int_equal(als_fit_cpu(&t.ui, &t.iu, &p, X, Y, NULL, NULL), GPUALS_OK);
        double Xd[20 * 6], Yd[14 * 6];
        for (int k = 0; k < 20 * 6; k++) Xd[k] = X[k];
        for (int k = 0; k < 14 * 6; k++) Yd[k] = Y[k];
        double ex = max_rel_diff(Xd, X64, 20 * 6), ey = max_rel_diff(Yd, Y64, 14 * 6);
        print_message("%s float32 vs float64: X %.2e, Y %.2e\n", s ? "Cholesky" : "CG", ex, ey);
        assert_true(ex < 1e-4);
        assert_true(ey < 1e-4);
        free(X), free(Y), free(X64), free(Y64);
    }
    pair_free(&t);
}

static void test_loss_never_rises_under_cholesky(void **state)
{
    (void)state;
    test_pair t;
    pair_random(&t, 40, 30, 0.2, 1, 5, 7);
    for (int freq = 0; freq <= 1; freq++) {
        gpuals_params p = test_params(5, GPUALS_SOLVER_CHOLESKY, 12, 0.05);
        p.reg_scale = freq ? GPUALS_REG_FREQUENCY : GPUALS_REG_NONE;
        p.compute_loss = 1;
        test_record rec = {0};
        double *X, *Y;
        fit_f64(&t, &p, &X, &Y, &rec);
        assert_int_equal(rec.calls, 12);

        /* Exact half-steps minimise the objective the loss measures, so each iteration can
         * only lower it; 1e-12 relative leaves room for float64 rounding alone. */
        for (int k = 1; k < rec.calls; k++)
            assert_true(rec.loss[k] <= rec.loss[k - 1] * (1 + 1e-12));
        assert_true(rec.loss[rec.calls - 1] < rec.loss[0]);

        /* The loss reported equals als_loss_f64 on the final factors. */
        double direct = als_loss_f64(&t.ui, X, Y, 5, &p);
        assert_true(fabs(direct - rec.loss[rec.calls - 1]) <= 1e-12 * direct);
        free(X), free(Y);
    }
    pair_free(&t);
}

/*
 * The hand-computed case: 3 users x 3 items, f = 2, lambda = 0.1.
 *   X: u0 = (1, 0), u1 = (0.5, 1), u2 = (0, 1)      Y: i0 = (1, 0), i1 = (2, 1), i2 = (0.5, 0)
 *   stored confidences: u0: i0 2, i1 3;  u1: i0 1, i2 4;  u2: none (4 stored)
 * Scores x_u.y_i:   u0: 1, 2, 0.5    u1: 0.5, 2, 0.25    u2: 0, 1, 0
 * Weighted errors c (p - s)^2 (unstored: c = 1, p = 0):
 *   u0: 2 (1-1)^2 + 3 (1-2)^2 + 1 (0.5)^2          = 0 + 3 + 0.25     = 3.25
 *   u1: 1 (1-0.5)^2 + 1 (2)^2 + 4 (1-0.25)^2       = 0.25 + 4 + 2.25  = 6.5
 *   u2: 0 + 1 + 0                                                      = 1
 *   total 10.75
 * |X|^2 = 1 + 1.25 + 1 = 3.25, |Y|^2 = 1 + 5 + 0.25 = 6.25: regulariser 0.1 * 9.5 = 0.95.
 * Total weight: sum c + U*I - nnz = 10 + 9 - 4 = 15.
 * Loss = (10.75 + 0.95) / 15 = 11.7 / 15 = 0.78.
 * Under FREQUENCY each squared norm is weighted by its row's count: users 2, 2, 0 and items
 * 2, 1, 1, so 0.1 * (2*1 + 2*1.25 + 0*1) + 0.1 * (2*1 + 1*5 + 1*0.25) = 0.45 + 0.725 = 1.175,
 * and the loss is (10.75 + 1.175) / 15 = 11.925 / 15 = 0.795.
 */
static void test_loss_hand_computed_3x3(void **state)
{
    (void)state;
    const int32_t u[] = {0, 0, 1, 1};
    const int32_t i[] = {0, 1, 0, 2};
    const float c[] = {2, 3, 1, 4};
    test_pair t;
    pair_from_triplets(&t, 3, 3, 4, u, i, c);
    const double X64[] = {1, 0, 0.5, 1, 0, 1}, Y64[] = {1, 0, 2, 1, 0.5, 0};
    const float X32[] = {1, 0, 0.5f, 1, 0, 1}, Y32[] = {1, 0, 2, 1, 0.5f, 0};

    gpuals_params p = test_params(2, GPUALS_SOLVER_CG, 1, 0.1);
    assert_true(fabs(als_loss_f64(&t.ui, X64, Y64, 2, &p) - 0.78) < 1e-12);
    assert_true(fabs(als_loss(&t.ui, X32, Y32, 2, &p) - 0.78) < 1e-6);
    p.reg_scale = GPUALS_REG_FREQUENCY;
    assert_true(fabs(als_loss_f64(&t.ui, X64, Y64, 2, &p) - 0.795) < 1e-12);
    assert_true(fabs(als_loss(&t.ui, X32, Y32, 2, &p) - 0.795) < 1e-6);
    pair_free(&t);
}

/* A binary 7 x 6 matrix (every stored confidence 2) is reproduced by 6 factors with no
 * regularisation: with as many factors as items the fit can be exact. Cholesky runs in float64;
 * float32 runs CG. (float32 Cholesky solves these reg-0 systems exactly, which from a start at
 * the 0.01 scale means factors near 1e4 whose products cancel down to 0 or 1, so its error is
 * float32 rounding times 1e4 and depends on the draw: 1e-5 to 1e-2.) */
static void test_reconstructs_binary_matrix(void **state)
{
    (void)state;
    static const int B[7][6] = {
        {1, 0, 0, 1, 1, 0}, {0, 1, 0, 0, 1, 0}, {1, 1, 1, 0, 0, 0}, {0, 0, 1, 1, 0, 1},
        {0, 1, 0, 1, 0, 0}, {1, 0, 0, 0, 0, 1}, {0, 0, 1, 0, 1, 1},
    };
    int32_t u[42], i[42];
    float c[42];
    int n = 0;
    for (int a = 0; a < 7; a++)
        for (int b = 0; b < 6; b++)
            if (B[a][b]) u[n] = a, i[n] = b, c[n] = 2, n++;
    test_pair t;
    pair_from_triplets(&t, 7, 6, n, u, i, c);
    gpuals_params p = test_params(6, GPUALS_SOLVER_CHOLESKY, 15, 0);

    /* float64 Cholesky, float32 CG. */
    double *X64, *Y64;
    fit_f64(&t, &p, &X64, &Y64, NULL);
    p.solver = GPUALS_SOLVER_CG;
    float *X = test_init_f32(7, 6, p.seed, ALS_SIDE_USERS), *Y = test_init_f32(6, 6, p.seed, 1);
    assert_int_equal(als_fit_cpu(&t.ui, &t.iu, &p, X, Y, NULL, NULL), GPUALS_OK);
    double worst32 = 0, worst64 = 0;
    for (int a = 0; a < 7; a++) {
        for (int b = 0; b < 6; b++) {
            double s32 = 0, s64 = 0;
            for (int k = 0; k < 6; k++) {
                s32 += (double)X[a * 6 + k] * Y[b * 6 + k];
                s64 += X64[a * 6 + k] * Y64[b * 6 + k];
            }
            worst32 = fmax(worst32, fabs(s32 - B[a][b]));
            worst64 = fmax(worst64, fabs(s64 - B[a][b]));
        }
    }
    print_message("reconstruction error: float32 CG %.2e, float64 Cholesky %.2e\n", worst32,
                  worst64);
    assert_true(worst32 < 1e-3);
    assert_true(worst64 < 1e-3);
    free(X), free(Y), free(X64), free(Y64);
    pair_free(&t);
}

/* With reg 0 and a factor column that is zero for every item, every user's system has a zero
 * row and column: exactly singular, in any precision. Then a system singular up to rounding. */
static void test_singular_system_is_reported(void **state)
{
    (void)state;
    test_pair t;
    pair_random(&t, 6, 5, 0.5, 0, -1, -1);
    assert_true(csr_row_len(&t.ui, 0) > 0);
    gpuals_params p = test_params(3, GPUALS_SOLVER_CHOLESKY, 2, 0);

    /* float64 */
    double *X64 = test_init_f64(6, 3, 0, ALS_SIDE_USERS), *Y64 = test_init_f64(5, 3, 0, 1);
    for (int i = 0; i < 5; i++) Y64[i * 3 + 1] = 0;
    assert_int_equal(als_fit_cpu_f64(&t.ui, &t.iu, &p, X64, Y64, NULL, NULL),
                     GPUALS_ERR_NUMERIC);
    print_message("float64: %s\n", gpuals_last_error());
    assert_non_null(strstr(gpuals_last_error(), "singular system for user 0 (row index) at "
                                                "iteration 1"));
    assert_non_null(strstr(gpuals_last_error(), "--reg"));
    for (int k = 0; k < 6 * 3; k++) assert_true(isfinite(X64[k]));

    /* float32 */
    float *X = test_init_f32(6, 3, 0, ALS_SIDE_USERS), *Y = test_init_f32(5, 3, 0, 1);
    for (int i = 0; i < 5; i++) Y[i * 3 + 1] = 0;
    assert_int_equal(als_fit_cpu(&t.ui, &t.iu, &p, X, Y, NULL, NULL), GPUALS_ERR_NUMERIC);
    assert_non_null(strstr(gpuals_last_error(), "singular system for user 0"));
    free(X), free(Y), free(X64), free(Y64);
    pair_free(&t);

    /* More factors (3) than items (2) with reg 0: rank-deficient only up to rounding, so the
     * last pivot is noise of either sign; the pivot test catches it in both precisions. */
    const int32_t u[] = {0, 0, 1, 2, 3, 3}, i[] = {0, 1, 1, 0, 0, 1};
    const float c[] = {2, 3, 4, 2, 5, 1.5f};
    pair_from_triplets(&t, 4, 2, 6, u, i, c);
    X64 = test_init_f64(4, 3, 0, ALS_SIDE_USERS), Y64 = test_init_f64(2, 3, 0, 1);
    assert_int_equal(als_fit_cpu_f64(&t.ui, &t.iu, &p, X64, Y64, NULL, NULL),
                     GPUALS_ERR_NUMERIC);
    assert_non_null(strstr(gpuals_last_error(), "singular system for user"));
    X = test_init_f32(4, 3, 0, ALS_SIDE_USERS), Y = test_init_f32(2, 3, 0, 1);
    assert_int_equal(als_fit_cpu(&t.ui, &t.iu, &p, X, Y, NULL, NULL), GPUALS_ERR_NUMERIC);
    assert_non_null(strstr(gpuals_last_error(), "singular system for user"));
    free(X), free(Y), free(X64), free(Y64);
    pair_free(&t);
}

/* als_solve_row_exact: the dense reference on a one-row matrix, YtY given or not, an empty row,
 * a singular row and a bad item index. */
static void test_solve_row_exact(void **state)
{
    (void)state;
    enum { N_ITEMS = 9, F = 4 };
    float Y[N_ITEMS * F];
    double Yd[N_ITEMS * F];
    for (int k = 0; k < N_ITEMS * F; k++) Yd[k] = Y[k] = (float)(test_uniform() - 0.3);
    const int32_t items[] = {1, 4, 5, 8};
    const float conf[] = {3, 0.5f, -2, 1};
    const int32_t zeros[] = {0, 0, 0, 0};

    /* Reference: a 1 x N_ITEMS matrix holding the row. */
    csr row = {0};
    assert_int_equal(csr_from_triplets(1, N_ITEMS, 4, zeros, items, conf, &row, NULL), GPUALS_OK);
    double xr[F];
    reference_half(&row, Yd, F, 0.2, 0, xr);

    /* With and without a precomputed YtY. */
    double G[F * F];
    als_gram(Y, N_ITEMS, F, G);
    float x1[F], x2[F];
    assert_int_equal(als_solve_row_exact(Y, N_ITEMS, F, NULL, 0.2, items, conf, 4, x1), GPUALS_OK);
    assert_int_equal(als_solve_row_exact(Y, N_ITEMS, F, G, 0.2, items, conf, 4, x2), GPUALS_OK);
    double d1[F], d2[F];
    for (int k = 0; k < F; k++) d1[k] = x1[k], d2[k] = x2[k];
    assert_true(max_rel_diff(d1, xr, F) < 1e-6);
    assert_true(max_rel_diff(d2, xr, F) < 1e-6);

    /* Empty row: zeros. */
    float x3[F] = {1, 1, 1, 1};
    assert_int_equal(als_solve_row_exact(Y, N_ITEMS, F, G, 0.2, NULL, NULL, 0, x3), GPUALS_OK);
    for (int k = 0; k < F; k++) assert_true(x3[k] == 0.0f);

    /* Singular: a zero factor column and lambda 0. */
    for (int i = 0; i < N_ITEMS; i++) Y[i * F + 2] = 0;
    assert_int_equal(als_solve_row_exact(Y, N_ITEMS, F, NULL, 0, items, conf, 4, x3),
                     GPUALS_ERR_NUMERIC);
    assert_non_null(strstr(gpuals_last_error(), "singular"));

    /* An item outside the matrix. */
    const int32_t bad[] = {1, 9};
    assert_int_equal(als_solve_row_exact(Y, N_ITEMS, F, NULL, 0.2, bad, conf, 2, x3),
                     GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "items[1] = 9"));
    csr_free(&row);
}

/* als_gram equals the direct double sum, and the chunked sum does not depend on the thread
 * count (bit for bit), over several waves of chunks. */
static void test_gram_exact_and_thread_independent(void **state)
{
    (void)state;
    enum { ROWS = 5000, F = 7 };
    float *F32 = malloc(ROWS * F * sizeof *F32);
    assert_non_null(F32);
    for (int k = 0; k < ROWS * F; k++) F32[k] = (float)(test_uniform() - 0.5);
    double direct[F * F] = {0}, g1[F * F], g2[F * F], g3[F * F];
    for (int r = 0; r < ROWS; r++)
        for (int a = 0; a < F; a++)
            for (int b = 0; b < F; b++)
                direct[a * F + b] += (double)F32[r * F + a] * F32[r * F + b];
    als_gram(F32, ROWS, F, g1);
    assert_true(max_rel_diff(g1, direct, F * F) < 1e-13);
    assert_int_equal(als_gram_f32(F32, ROWS, F, F, 1, g2), GPUALS_OK);
    assert_int_equal(als_gram_f32(F32, ROWS, F, F, 3, g3), GPUALS_OK);
    assert_memory_equal(g2, g3, sizeof g2);
    for (int a = 0; a < F; a++)
        for (int b = 0; b < F; b++) assert_true(g2[a * F + b] == g2[b * F + a]);
    free(F32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cholesky_matches_dense_reference),
        cmocka_unit_test(test_cg_with_f_steps_matches_cholesky),
        cmocka_unit_test(test_float32_follows_float64),
        cmocka_unit_test(test_loss_never_rises_under_cholesky),
        cmocka_unit_test(test_loss_hand_computed_3x3),
        cmocka_unit_test(test_reconstructs_binary_matrix),
        cmocka_unit_test(test_singular_system_is_reported),
        cmocka_unit_test(test_solve_row_exact),
        cmocka_unit_test(test_gram_exact_and_thread_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
