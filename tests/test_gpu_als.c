/*
 * test_gpu_als.c - device training (cuda_als_fit) against the CPU engine (als_fit_cpu), the
 * reference, on small seeded problems (label gpu; exit 77 without a usable device).
 *
 * What is compared: the factors after 1 and after 5 iterations for 1, 3, 33, 100, 257 and 1100
 * factors with both CG forms (and the two forms against each other), the Cholesky solver, the
 * loss of every iteration (also against als_loss evaluated on the GPU's own factors, with
 * reg_scale none and frequency), rows without entries, a user holding half of all entries, the
 * callback stopping training, and the failures (non-finite factors, singular systems) with the
 * same statuses and row as the CPU.
 *
 * Factors are compared two ways. Step by step: each of iterations 1..5 starts both engines from
 * the CPU's factors after the iteration before, so one iteration's arithmetic is compared and
 * nothing accumulates. In one run: 5 iterations on the device in a row, which is what catches
 * state carried wrongly from one iteration to the next (Gram matrices, warm starts, buffers).
 *
 * Tolerances, and why. Both engines start from identical factors and differ only in float32
 * summation order, but ALS amplifies such rounding from iteration to iteration, strongly on
 * some problems (with --reg-scale frequency, a change of one unit in the last place of the
 * starting factors moves the factors after 5 iterations by about 4e-3). So every comparison
 * measures how far rounding alone moves that very computation: the float32 CPU engine against
 * the float64 one from the same starting point (the "drift"). The bar is 1e-4 normwise
 * relative (the CPU engine's own bar for float32), raised to 10 x the drift where the drift is
 * larger; GPU against GPU gets twice that, as both carry their own rounding. A wrong kernel
 * misses by orders of magnitude more than either. The loss of each iteration is held to 1e-5
 * relative, raised likewise to 10 x the loss's drift; the device loss against als_loss on the
 * same factors to 1e-6 (the same formula, only the order of the sums differs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "als.h"
#include "csr.h"
#include "gpuals_cuda.h"
#include "test_gpu_util.h"

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */
/* ------------------------------------------------------------------------------------------ */

#define MAX_ITERS 8

typedef enum { RUN_CPU, RUN_FUSED, RUN_LIBRARY } run_kind;

static const char *run_name(run_kind k)
{
    return k == RUN_CPU ? "CPU" : k == RUN_FUSED ? "GPU fused CG" : "GPU library CG";
}

/* One training run: its factors, the loss of each iteration, where to stop. */
typedef struct {
    float *X, *Y;
    double loss[MAX_ITERS];
    int iterations;
    int stop_after;  /* the callback asks to stop after this iteration (0: never) */
} run_out;

static int record_iteration(int iteration, double seconds, double loss, void *user)
{
    run_out *o = user;
    (void)seconds;
    if (iteration >= 1 && iteration <= MAX_ITERS) o->loss[iteration - 1] = loss;
    o->iterations = iteration;
    return o->stop_after > 0 && iteration >= o->stop_after;
}

/* Settings of the comparisons: f factors, iters iterations, CG with 3 steps, reg 0.05. */
static gpuals_params params_for(int f, int iters)
{
    gpuals_params p;
    gpuals_params_default(&p);
    p.factors = f;
    p.iters = iters;
    p.reg = 0.05;
    p.cg_steps = 3;
    p.seed = 1234;
    p.threads = 0; /* all cores: the CPU engine's result does not depend on the count */
    p.compute_loss = 0;
    p.device = GPUALS_DEVICE_CPU;
    p.dtype = GPUALS_DTYPE_FLOAT32;
    return p;
}

/* Start both factor matrices from the shared initialiser. */
static void init_run(run_out *o, const csr *Cui, const csr *Ciu, const gpuals_params *p)
{
    size_t f = (size_t)p->factors;
    o->X = malloc(((size_t)Cui->rows * f + 1) * sizeof *o->X);
    o->Y = malloc(((size_t)Ciu->rows * f + 1) * sizeof *o->Y);
    assert_non_null(o->X);
    assert_non_null(o->Y);
    als_init_factors(o->X, Cui->rows, p->factors, p->seed, ALS_SIDE_USERS);
    als_init_factors(o->Y, Ciu->rows, p->factors, p->seed, ALS_SIDE_ITEMS);
}

/* Train with k from the initial factors; the status is returned (message in last_error). */
static gpuals_status try_train(run_kind k, const csr *Cui, const csr *Ciu,
                               const gpuals_params *p, run_out *o)
{
    if (k == RUN_CPU) return als_fit_cpu(Cui, Ciu, p, o->X, o->Y, record_iteration, o);
    return cuda_als_fit(Cui, Ciu, p, o->X, o->Y, record_iteration, o,
                        k == RUN_FUSED ? CUDA_CG_FUSED : CUDA_CG_LIBRARY);
}

/* Train and insist on success. */
static void train(run_kind k, const csr *Cui, const csr *Ciu, const gpuals_params *p,
                  run_out *o)
{
    init_run(o, Cui, Ciu, p);
    gpuals_status st = try_train(k, Cui, Ciu, p, o);
    if (st != GPUALS_OK) fail_msg("%s training failed: %s", run_name(k), gpuals_last_error());
}

static void free_run(run_out *o)
{
    free(o->X);
    free(o->Y);
    memset(o, 0, sizeof *o);
}

/* Both factor matrices of a against b. */
static void assert_runs_close(const char *what, const run_out *a, const run_out *b,
                              const csr *Cui, const csr *Ciu, int f, double tol)
{
    char label[320];
    snprintf(label, sizeof label, "%s, user factors", what);
    gpu_assert_close(label, a->X, b->X, Cui->rows, f, tol);
    snprintf(label, sizeof label, "%s, item factors", what);
    gpu_assert_close(label, a->Y, b->Y, Ciu->rows, f, tol);
}

/* ------------------------------------------------------------------------------------------ */
/* Comparisons with a tolerance measured on the problem (see the file comment)                */
/* ------------------------------------------------------------------------------------------ */

enum { FORM_FUSED = 1, FORM_LIBRARY = 2, FORMS_BOTH = 3 };

#define FACTOR_BAR 1e-4
#define LOSS_BAR 1e-5
#define DRIFT_MARGIN 10.0

/* The float64 engine from (X0, Y0), widened, with callback cb; its factors narrowed into
 * (X_out, Y_out) when those are given. */
static void fit_float64(const csr *Cui, const csr *Ciu, const gpuals_params *p, const float *X0,
                        const float *Y0, gpuals_iter_fn cb, void *cb_user, float *X_out,
                        float *Y_out)
{
    const size_t nx = (size_t)Cui->rows * (size_t)p->factors;
    const size_t ny = (size_t)Ciu->rows * (size_t)p->factors;
    double *X = malloc((nx + 1) * sizeof *X), *Y = malloc((ny + 1) * sizeof *Y);
    assert_non_null(X);
    assert_non_null(Y);
    for (size_t k = 0; k < nx; k++) X[k] = X0[k];
    for (size_t k = 0; k < ny; k++) Y[k] = Y0[k];
    if (als_fit_cpu_f64(Cui, Ciu, p, X, Y, cb, cb_user) != GPUALS_OK)
        fail_msg("float64 reference failed: %s", gpuals_last_error());
    for (size_t k = 0; X_out && k < nx; k++) X_out[k] = (float)X[k];
    for (size_t k = 0; Y_out && k < ny; k++) Y_out[k] = (float)Y[k];
    free(X);
    free(Y);
}

/* How far rounding alone moves p->iters iterations from (X0, Y0): the float32 CPU result
 * (X32, Y32) against the float64 engine's from the same factors, the larger of both sides. */
static double rounding_drift(const csr *Cui, const csr *Ciu, const gpuals_params *p,
                             const float *X0, const float *Y0, const float *X32,
                             const float *Y32)
{
    const size_t nx = (size_t)Cui->rows * (size_t)p->factors;
    const size_t ny = (size_t)Ciu->rows * (size_t)p->factors;
    float *X = malloc((nx + 1) * sizeof *X), *Y = malloc((ny + 1) * sizeof *Y);
    assert_non_null(X);
    assert_non_null(Y);
    gpuals_params q = *p;
    q.compute_loss = 0;
    fit_float64(Cui, Ciu, &q, X0, Y0, NULL, NULL, X, Y);
    double dx = gpu_rel_err(X32, X, nx), dy = gpu_rel_err(Y32, Y, ny);
    free(X);
    free(Y);
    return dx > dy ? dx : dy;
}

/* The factor tolerance for a computation whose rounding drift is `drift`. */
static double factor_tol(double drift)
{
    return fmax(FACTOR_BAR, DRIFT_MARGIN * drift);
}

/* A run of kind k from copies of (X0, Y0); the caller frees it. */
static void train_from(run_kind k, const csr *Cui, const csr *Ciu, const gpuals_params *p,
                       const float *X0, const float *Y0, run_out *o)
{
    const size_t f = (size_t)p->factors;
    o->X = gpu_copy(X0, (size_t)Cui->rows * f);
    o->Y = gpu_copy(Y0, (size_t)Ciu->rows * f);
    gpuals_status st = try_train(k, Cui, Ciu, p, o);
    if (st != GPUALS_OK) fail_msg("%s training failed: %s", run_name(k), gpuals_last_error());
}

/* From (X0, Y0), p->iters iterations on the CPU and on each GPU form in `forms`, compared
 * with the tolerance of their drift; the CPU's factors are returned in *cpu_out. */
static void compare_from(const char *what, int forms, const csr *Cui, const csr *Ciu,
                         const gpuals_params *p, const float *X0, const float *Y0,
                         run_out *cpu_out)
{
    const int f = p->factors;
    run_out cpu = {0}, gpu[2] = {{0}};
    train_from(RUN_CPU, Cui, Ciu, p, X0, Y0, &cpu);
    const double drift = rounding_drift(Cui, Ciu, p, X0, Y0, cpu.X, cpu.Y);
    const double tol = factor_tol(drift);
    char label[256];
    for (int g = 0; g < 2; g++) {
        if (!(forms & (1 << g))) continue;
        run_kind k = g == 0 ? RUN_FUSED : RUN_LIBRARY;
        train_from(k, Cui, Ciu, p, X0, Y0, &gpu[g]);
        const char *name = p->solver == GPUALS_SOLVER_CHOLESKY ? "GPU" : run_name(k);
        snprintf(label, sizeof label, "%s, %s vs CPU (drift %.2g)", what, name, drift);
        assert_runs_close(label, &gpu[g], &cpu, Cui, Ciu, f, tol);
    }
    if (forms == FORMS_BOTH) {
        snprintf(label, sizeof label, "%s, fused vs library (drift %.2g)", what, drift);
        assert_runs_close(label, &gpu[0], &gpu[1], Cui, Ciu, f, 2 * tol);
    }
    free_run(&gpu[0]);
    free_run(&gpu[1]);
    if (cpu_out)
        *cpu_out = cpu;
    else
        free_run(&cpu);
}

/* Iterations 1..p->iters one at a time, each from the CPU's factors after the one before. */
static void compare_stepwise(const char *what, int forms, const csr *Cui, const csr *Ciu,
                             const gpuals_params *p)
{
    gpuals_params one = *p;
    one.iters = 1;
    run_out state = {0};
    init_run(&state, Cui, Ciu, p);
    for (int it = 1; it <= p->iters; it++) {
        char label[160];
        snprintf(label, sizeof label, "%s, iteration %d of %d from the CPU's factors", what, it,
                 p->iters);
        run_out next = {0};
        compare_from(label, forms, Cui, Ciu, &one, state.X, state.Y, &next);
        free_run(&state);
        state = next;
    }
    free_run(&state);
}

/* All p->iters iterations in one run from the initial factors. */
static void compare_run(const char *what, int forms, const csr *Cui, const csr *Ciu,
                        const gpuals_params *p)
{
    char label[160];
    snprintf(label, sizeof label, "%s, %d iteration(s) in one run", what, p->iters);
    run_out init = {0};
    init_run(&init, Cui, Ciu, p);
    compare_from(label, forms, Cui, Ciu, p, init.X, init.Y, NULL);
    free_run(&init);
}

/* Both comparisons. */
static void compare_all(const char *what, int forms, const csr *Cui, const csr *Ciu,
                        const gpuals_params *p)
{
    compare_stepwise(what, forms, Cui, Ciu, p);
    compare_run(what, forms, Cui, Ciu, p);
}

/* The standard random problem: users x items at 4% density, every 17th row and column empty,
 * every 29th entry "disliked", confidences 2 * r. */
static void make_standard(int64_t users, int64_t items, uint64_t seed, csr *Cui, csr *Ciu)
{
    gpu_problem pr = {users, items, 0.04, 17, 29, 0, 2.0, seed};
    gpu_make_problem(&pr, Cui, Ciu);
}

/* ------------------------------------------------------------------------------------------ */
/* CG: both forms against the CPU and each other, for several factor counts                    */
/* ------------------------------------------------------------------------------------------ */

/* Iterations 1 to 5 one at a time, and 5 in one run, for both forms. */
static void check_cg_forms(int f, int64_t users, int64_t items, double reg)
{
    csr Cui = {0}, Ciu = {0};
    make_standard(users, items, (uint64_t)f, &Cui, &Ciu);
    gpuals_params p = params_for(f, 5);
    p.reg = reg;
    char what[64];
    snprintf(what, sizeof what, "CG f=%d", f);
    compare_all(what, FORMS_BOTH, &Cui, &Ciu, &p);
    csr_free(&Cui);
    csr_free(&Ciu);
}

static void test_cg_factors_1(void **state)
{
    (void)state;
    check_cg_forms(1, 300, 280, 0.05);
}

static void test_cg_factors_3(void **state)
{
    (void)state;
    check_cg_forms(3, 300, 280, 0.05);
}

static void test_cg_factors_33(void **state)
{
    (void)state;
    check_cg_forms(33, 300, 280, 0.05);
}

static void test_cg_factors_100(void **state)
{
    (void)state;
    check_cg_forms(100, 300, 280, 0.05);
}

static void test_cg_factors_257(void **state)
{
    (void)state;
    check_cg_forms(257, 400, 320, 0.05);
}

/* More than 1024 factors: the fused kernel opts in to more shared memory; a larger reg keeps
 * the rank-deficient item systems (50 users) well conditioned. */
static void test_cg_factors_1100(void **state)
{
    (void)state;
    csr Cui = {0}, Ciu = {0};
    gpu_problem pr = {50, 1150, 0.05, 0, 0, 0, 2.0, 99};
    gpu_make_problem(&pr, &Cui, &Ciu);
    gpuals_params p = params_for(1100, 1);
    p.reg = 1.0;

    /* The fused form really runs at this size (it is not replaced by the library form). */
    run_out fused = {0};
    init_run(&fused, &Cui, &Ciu, &p);
    cuda_fit_stats stats;
    gpuals_status st = cuda_als_fit_ex(&Cui, &Ciu, &p, fused.X, fused.Y, NULL, NULL,
                                       CUDA_CG_FUSED, &stats);
    if (st != GPUALS_OK) fail_msg("fused training failed: %s", gpuals_last_error());
    assert_int_equal(stats.form_used, CUDA_CG_FUSED);
    free_run(&fused);

    compare_run("CG f=1100", FORMS_BOTH, &Cui, &Ciu, &p);
    csr_free(&Cui);
    csr_free(&Ciu);
}

/* ------------------------------------------------------------------------------------------ */
/* Cholesky                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* The CG form is ignored by Cholesky: one GPU run per comparison. */
static void check_cholesky(int f)
{
    csr Cui = {0}, Ciu = {0};
    make_standard(300, 280, 500 + (uint64_t)f, &Cui, &Ciu);
    gpuals_params p = params_for(f, 5);
    p.solver = GPUALS_SOLVER_CHOLESKY;
    char what[64];
    snprintf(what, sizeof what, "Cholesky f=%d", f);
    compare_all(what, FORM_FUSED, &Cui, &Ciu, &p);
    csr_free(&Cui);
    csr_free(&Ciu);
}

static void test_cholesky_factors_1(void **state)
{
    (void)state;
    check_cholesky(1);
}

static void test_cholesky_factors_33(void **state)
{
    (void)state;
    check_cholesky(33);
}

static void test_cholesky_factors_100(void **state)
{
    (void)state;
    check_cholesky(100);
}

/* ------------------------------------------------------------------------------------------ */
/* Loss                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* The loss of one iteration, recorded in double by the float64 engine's callback. */
static int record_loss64(int iteration, double seconds, double loss, void *user)
{
    double *losses = user;
    (void)seconds;
    if (iteration >= 1 && iteration <= MAX_ITERS) losses[iteration - 1] = loss;
    return 0;
}

/* The tolerance of each iteration's loss: LOSS_BAR, raised to DRIFT_MARGIN x how far the
 * float32 CPU run's loss (cpu) lies from the float64 engine's on the same problem. */
static void loss_tolerances(const csr *Cui, const csr *Ciu, const gpuals_params *p,
                            const run_out *cpu, double tol[MAX_ITERS])
{
    run_out init = {0};
    init_run(&init, Cui, Ciu, p);
    double loss64[MAX_ITERS] = {0};
    fit_float64(Cui, Ciu, p, init.X, init.Y, record_loss64, loss64, NULL, NULL);
    for (int it = 0; it < p->iters && it < MAX_ITERS; it++)
        tol[it] = fmax(LOSS_BAR, DRIFT_MARGIN * fabs(cpu->loss[it] - loss64[it]) /
                                     fabs(loss64[it]));
    free_run(&init);
}

/* Losses of 5 iterations: each GPU solver against the CPU, and the GPU's last loss against
 * als_loss evaluated on the GPU's own factors. */
static void check_loss(gpuals_reg_scale scale)
{
    csr Cui = {0}, Ciu = {0};
    make_standard(250, 230, 77, &Cui, &Ciu);
    const int f = 24, iters = 5;
    const gpuals_solver solvers[2] = {GPUALS_SOLVER_CG, GPUALS_SOLVER_CHOLESKY};
    for (int s = 0; s < 2; s++) {
        gpuals_params p = params_for(f, iters);
        p.solver = solvers[s];
        p.reg_scale = scale;
        p.compute_loss = 1;
        run_out cpu = {0};
        train(RUN_CPU, &Cui, &Ciu, &p, &cpu);
        assert_int_equal(cpu.iterations, iters);
        double tol[MAX_ITERS];
        loss_tolerances(&Cui, &Ciu, &p, &cpu, tol);

        for (run_kind k = RUN_FUSED; k <= RUN_LIBRARY; k++) {
            run_out gpu = {0};
            train(k, &Cui, &Ciu, &p, &gpu);
            assert_int_equal(gpu.iterations, iters);
            for (int it = 0; it < iters; it++) {
                double rel = fabs(gpu.loss[it] - cpu.loss[it]) / fabs(cpu.loss[it]);
                if (!(rel <= tol[it]))
                    fail_msg("%s (solver %d, reg_scale %d): loss of iteration %d is %.10g, the "
                             "CPU's %.10g (relative %.3g > %.3g)", run_name(k), (int)p.solver,
                             (int)scale, it + 1, gpu.loss[it], cpu.loss[it], rel, tol[it]);
            }
            double ref = als_loss(&Cui, gpu.X, gpu.Y, f, &p);
            double rel = fabs(gpu.loss[iters - 1] - ref) / fabs(ref);
            if (!(rel <= 1e-6))
                fail_msg("%s: device loss %.12g vs als_loss on the same factors %.12g (%.3g)",
                         run_name(k), gpu.loss[iters - 1], ref, rel);
            free_run(&gpu);
        }
        free_run(&cpu);
    }
    csr_free(&Cui);
    csr_free(&Ciu);
}

static void test_loss_per_iteration(void **state)
{
    (void)state;
    check_loss(GPUALS_REG_NONE);
}

static void test_loss_and_factors_reg_frequency(void **state)
{
    (void)state;
    check_loss(GPUALS_REG_FREQUENCY);

    /* The factors too, under frequency scaling, with CG and with Cholesky. */
    csr Cui = {0}, Ciu = {0};
    make_standard(250, 230, 78, &Cui, &Ciu);
    gpuals_params p = params_for(40, 5);
    p.reg_scale = GPUALS_REG_FREQUENCY;
    compare_all("CG, frequency reg", FORMS_BOTH, &Cui, &Ciu, &p);
    p.solver = GPUALS_SOLVER_CHOLESKY;
    compare_all("Cholesky, frequency reg", FORM_FUSED, &Cui, &Ciu, &p);
    csr_free(&Cui);
    csr_free(&Ciu);
}

/* ------------------------------------------------------------------------------------------ */
/* Shapes that broke other implementations                                                    */
/* ------------------------------------------------------------------------------------------ */

/* 1 when every factor of row r is exactly zero. */
static int row_is_zero(const float *F, int64_t r, int f)
{
    for (int j = 0; j < f; j++)
        if (F[(size_t)r * (size_t)f + (size_t)j] != 0.0f) return 0;
    return 1;
}

/* Rows without entries (every 17th user and item) come out exactly zero with every solver. */
static void test_empty_rows_get_zero_factors(void **state)
{
    (void)state;
    csr Cui = {0}, Ciu = {0};
    make_standard(200, 190, 5, &Cui, &Ciu);
    const int f = 16;
    for (int s = 0; s < 3; s++) {
        gpuals_params p = params_for(f, 3);
        if (s == 2) p.solver = GPUALS_SOLVER_CHOLESKY;
        run_out gpu = {0};
        train(s == 1 ? RUN_LIBRARY : RUN_FUSED, &Cui, &Ciu, &p, &gpu);
        int empty_users = 0, empty_items = 0;
        for (int64_t u = 0; u < Cui.rows; u++) {
            if (csr_row_len(&Cui, u) != 0) continue;
            empty_users++;
            if (!row_is_zero(gpu.X, u, f)) fail_msg("solver %d: empty user %lld is not zero", s,
                                                    (long long)u);
        }
        for (int64_t i = 0; i < Ciu.rows; i++) {
            if (csr_row_len(&Ciu, i) != 0) continue;
            empty_items++;
            if (!row_is_zero(gpu.Y, i, f)) fail_msg("solver %d: empty item %lld is not zero", s,
                                                    (long long)i);
        }
        assert_true(empty_users >= 10);
        assert_true(empty_items >= 10);
        free_run(&gpu);
    }
    csr_free(&Cui);
    csr_free(&Ciu);
}

/* One user holds half of all entries: a long row next to many short ones. */
static void test_one_row_holds_half_the_entries(void **state)
{
    (void)state;
    csr Cui = {0}, Ciu = {0};
    gpu_problem pr = {200, 600, 0.005, 0, 0, 1, 2.0, 11};
    gpu_make_problem(&pr, &Cui, &Ciu);
    assert_true(10 * csr_row_len(&Cui, 0) >= 4 * Cui.nnz); /* about half; at least 40% */

    gpuals_params p = params_for(33, 5);
    compare_all("heavy row", FORMS_BOTH, &Cui, &Ciu, &p);
    csr_free(&Cui);
    csr_free(&Ciu);
}

/* ------------------------------------------------------------------------------------------ */
/* Callback, determinism, statistics                                                          */
/* ------------------------------------------------------------------------------------------ */

/* A callback that stops after iteration 2 leaves the factors of iteration 2; the fused form
 * is deterministic, so a 2-iteration run gives the same bits, and so does a second run. */
static void test_callback_stop_and_determinism(void **state)
{
    (void)state;
    csr Cui = {0}, Ciu = {0};
    make_standard(150, 140, 21, &Cui, &Ciu);
    const int f = 20;
    gpuals_params p5 = params_for(f, 5), p2 = params_for(f, 2);
    run_out stopped = {0}, two = {0}, again = {0};
    stopped.stop_after = 2;
    train(RUN_FUSED, &Cui, &Ciu, &p5, &stopped);
    assert_int_equal(stopped.iterations, 2);
    train(RUN_FUSED, &Cui, &Ciu, &p2, &two);
    train(RUN_FUSED, &Cui, &Ciu, &p2, &again);

    size_t nx = (size_t)Cui.rows * f, ny = (size_t)Ciu.rows * f;
    assert_memory_equal(stopped.X, two.X, nx * sizeof(float));
    assert_memory_equal(stopped.Y, two.Y, ny * sizeof(float));
    assert_memory_equal(again.X, two.X, nx * sizeof(float));
    assert_memory_equal(again.Y, two.Y, ny * sizeof(float));
    free_run(&stopped);
    free_run(&two);
    free_run(&again);
    csr_free(&Cui);
    csr_free(&Ciu);
}

/* cuda_als_fit_ex reports its phases. */
static void test_fit_statistics(void **state)
{
    (void)state;
    csr Cui = {0}, Ciu = {0};
    make_standard(120, 110, 3, &Cui, &Ciu);
    gpuals_params p = params_for(8, 3);
    p.compute_loss = 1;
    run_out o = {0};
    init_run(&o, &Cui, &Ciu, &p);
    cuda_fit_stats st;
    assert_int_equal(cuda_als_fit_ex(&Cui, &Ciu, &p, o.X, o.Y, NULL, NULL, CUDA_CG_LIBRARY,
                                     &st),
                     GPUALS_OK);
    assert_int_equal(st.iterations, 3);
    assert_int_equal(st.form_used, CUDA_CG_LIBRARY);
    assert_true(st.iters_ms > 0 && st.first_iter_ms > 0 && st.first_iter_ms <= st.iters_ms);
    assert_true(st.users_ms > 0 && st.items_ms > 0 && st.gram_ms > 0 && st.loss_ms > 0);
    assert_true(st.device_bytes > 0);
    free_run(&o);
    csr_free(&Cui);
    csr_free(&Ciu);
}

/* The device's initial factors equal the host's, bit for bit. */
static void test_initial_factors_match_host(void **state)
{
    (void)state;
    const int64_t rows = 1000;
    const int f = 33;
    float *host = malloc((size_t)rows * f * sizeof *host);
    float *dev = malloc((size_t)rows * f * sizeof *dev);
    assert_non_null(host);
    assert_non_null(dev);
    for (int side = 0; side < 2; side++) {
        als_init_factors(host, rows, f, 42, side);
        assert_int_equal(cuda_init_factors(dev, rows, f, 42, side), GPUALS_OK);
        assert_memory_equal(host, dev, (size_t)rows * f * sizeof *host);
    }
    free(host);
    free(dev);
}

/* als_fit with device GPU (what gpuals_train calls) trains on the GPU, says so, and matches
 * the CPU; with device CPU it never touches the GPU. */
static void test_als_fit_dispatch(void **state)
{
    (void)state;
    csr Cui = {0}, Ciu = {0};
    make_standard(160, 150, 31, &Cui, &Ciu);
    gpuals_params p = params_for(12, 3);
    run_out cpu = {0}, gpu = {0};
    train(RUN_CPU, &Cui, &Ciu, &p, &cpu);
    init_run(&gpu, &Cui, &Ciu, &p);
    p.device = GPUALS_DEVICE_GPU;
    gpuals_device used = GPUALS_DEVICE_CPU;
    char note[256] = "";
    gpuals_status st = als_fit(&Cui, &Ciu, &p, gpu.X, gpu.Y, NULL, NULL, &used, note,
                               sizeof note);
    if (st != GPUALS_OK) fail_msg("als_fit on the GPU: %s", gpuals_last_error());
    assert_int_equal(used, GPUALS_DEVICE_GPU);
    assert_non_null(strstr(note, "GPU"));
    run_out init = {0};
    init_run(&init, &Cui, &Ciu, &p);
    const double drift = rounding_drift(&Cui, &Ciu, &p, init.X, init.Y, cpu.X, cpu.Y);
    assert_runs_close("als_fit(GPU) vs CPU", &gpu, &cpu, &Cui, &Ciu, 12, factor_tol(drift));
    free_run(&init);
    free_run(&cpu);
    free_run(&gpu);
    csr_free(&Cui);
    csr_free(&Ciu);
}

/* ------------------------------------------------------------------------------------------ */
/* Failures                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* A NaN in the item factors spreads to every user with entries: both engines stop with
 * GPUALS_ERR_NUMERIC naming the same (lowest) row and iteration. */
static void test_nonfinite_factors_reported_like_cpu(void **state)
{
    (void)state;
    csr Cui = {0}, Ciu = {0};
    make_standard(80, 70, 8, &Cui, &Ciu);
    gpuals_params p = params_for(6, 2);
    char cpu_msg[512];
    for (run_kind k = RUN_CPU; k <= RUN_LIBRARY; k++) {
        run_out o = {0};
        init_run(&o, &Cui, &Ciu, &p);
        o.Y[3 * 6 + 2] = NAN;
        gpuals_status st = try_train(k, &Cui, &Ciu, &p, &o);
        assert_int_equal(st, GPUALS_ERR_NUMERIC);
        assert_non_null(strstr(gpuals_last_error(), "became non-finite at iteration 1"));
        if (k == RUN_CPU)
            snprintf(cpu_msg, sizeof cpu_msg, "%s", gpuals_last_error());
        else
            assert_string_equal(gpuals_last_error(), cpu_msg);
        free_run(&o);
    }
    csr_free(&Cui);
    csr_free(&Ciu);
}

/* reg 0 and zero item factors make every user's system zero: a singular system, reported
 * for the first user with entries (row 0), never turned into NaN. */
static void test_singular_cholesky_reported(void **state)
{
    (void)state;
    csr Cui = {0}, Ciu = {0};
    gpu_problem pr = {60, 50, 0.3, 17, 0, 0, 2.0, 9};
    gpu_make_problem(&pr, &Cui, &Ciu);
    assert_true(csr_row_len(&Cui, 0) > 0);
    gpuals_params p = params_for(5, 1);
    p.solver = GPUALS_SOLVER_CHOLESKY;
    p.reg = 0.0;
    for (run_kind k = RUN_CPU; k <= RUN_FUSED; k++) {
        run_out o = {0};
        init_run(&o, &Cui, &Ciu, &p);
        memset(o.Y, 0, (size_t)Ciu.rows * 5 * sizeof *o.Y);
        assert_int_equal(try_train(k, &Cui, &Ciu, &p, &o), GPUALS_ERR_NUMERIC);
        if (!strstr(gpuals_last_error(), "singular system for user 0 (row index) at iteration 1"))
            fail_msg("%s: unexpected message: %s", run_name(k), gpuals_last_error());
        free_run(&o);
    }
    csr_free(&Cui);
    csr_free(&Ciu);
}

int main(int argc, char **argv)
{
    gpu_test_skip_unless_device();
    gpu_test_filter(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initial_factors_match_host),
        cmocka_unit_test(test_cg_factors_1),
        cmocka_unit_test(test_cg_factors_3),
        cmocka_unit_test(test_cg_factors_33),
        cmocka_unit_test(test_cg_factors_100),
        cmocka_unit_test(test_cg_factors_257),
        cmocka_unit_test(test_cg_factors_1100),
        cmocka_unit_test(test_cholesky_factors_1),
        cmocka_unit_test(test_cholesky_factors_33),
        cmocka_unit_test(test_cholesky_factors_100),
        cmocka_unit_test(test_loss_per_iteration),
        cmocka_unit_test(test_loss_and_factors_reg_frequency),
        cmocka_unit_test(test_empty_rows_get_zero_factors),
        cmocka_unit_test(test_one_row_holds_half_the_entries),
        cmocka_unit_test(test_callback_stop_and_determinism),
        cmocka_unit_test(test_fit_statistics),
        cmocka_unit_test(test_als_fit_dispatch),
        cmocka_unit_test(test_nonfinite_factors_reported_like_cpu),
        cmocka_unit_test(test_singular_cholesky_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
