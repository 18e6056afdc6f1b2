/*
 * bench_cpu.c - the CPU phases of gpuals-bench, each timed through the library's own functions.
 *
 * Order: initial factors (als_init_factors) -> full iterations (one als_fit_cpu call of warmup +
 * reps iterations) -> the loss (als_loss) -> top-n for all users and cosine top-n for all items
 * (bench_query.c with topn_batch) -> optionally whole fits.
 *
 * One fit gives five timings per iteration without running anything a normal fit does not. The
 * iteration is the gap between the fit's callbacks; inside it the engine computes the Gram
 * matrix of Y, solves the users, computes the Gram matrix of X and solves the items, and
 * bench_hooks.c timestamps the start and the end of each solve, so
 *     yty   = start of the users' solves - previous callback
 *     users = end - start of the users' solves
 *     xtx   = start of the items' solves - end of the users' solves
 *     items = end - start of the items' solves
 * which add up to the iteration less the callback itself. The hook events are checked
 * (check_half_log) before they are trusted.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "als.h"
#include "bench.h"
#include "query.h"
#include "status.h"

#define EXIT_FAILED 1

static float *alloc_factors(int64_t rows, int f)
{
    size_t count = (size_t)rows * (size_t)f;
    return malloc((count ? count : 1) * sizeof(float));
}

/* ------------------------------------------------------------------------------------------ */
/* Phases                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Check that the hook events of a fit of `iters` iterations have the expected shape: per
 * iteration a start, an end naming the users, a start, an end naming the items, in time order.
 * NULL when they do, else the reason, written into why. */
static const char *check_half_log(const bench_half_log *log, int iters, char *why, size_t len)
{
    if (log->n != 4 * iters) {
        snprintf(why, len,
                 "the engine's half-iteration hooks fired %d times for %d iterations "
                 "(expected %d)",
                 log->n, iters, 4 * iters);
        return why;
    }
    for (int k = 0; k < log->n; k++) {
        int want_kind = k % 2 == 0 ? BENCH_HALF_START : BENCH_HALF_END;
        int want_side = k % 2 == 0 ? -1 : (k % 4 == 1 ? ALS_SIDE_USERS : ALS_SIDE_ITEMS);
        if (log->kind[k] != want_kind || log->side[k] != want_side ||
            (k > 0 && log->t[k] < log->t[k - 1])) {
            snprintf(why, len, "the engine's half-iteration hooks fired out of order (event %d)",
                     k);
            return why;
        }
    }
    return NULL;
}

/* The four parts of iterations w .. w+n-1 from the hook events and the callback times (t0: the
 * fit's entry): part[0] YtY, part[1] users' solves, part[2] XtX, part[3] items' solves. */
static void part_samples(const bench_half_log *log, const bench_clock *clk, double t0, int w, int n,
                         double *part[4])
{
    for (int k = 0; k < n; k++) {
        int it = w + k;
        const double *e = log->t + 4 * it;
        double before = it == 0 ? t0 : clk->t[it - 1];
        part[0][k] = e[0] - before;
        part[1][k] = e[1] - e[0];
        part[2][k] = e[2] - e[1];
        part[3][k] = e[3] - e[2];
    }
}

/* Emit the rows of the four parts: timed, or with the reason they are not. */
static int emit_parts(bench_ctx *ctx, double *part[4], int n, const char *why)
{
    static const char *const phases[4] = {"yty", "half_users", "xtx", "half_items"};
    static const char *const notes[4] = {
        "inside the fit: previous callback to the users' solves (YtY and the half's setup)",
        "inside the fit: the users' solves (bench_hooks.c); YtY not included",
        "inside the fit: users' solves to the items' solves (XtX and the half's setup)",
        "inside the fit: the items' solves (bench_hooks.c); XtX not included",
    };
    bench_work works[4];
    bench_work gy = bench_work_gram(ctx->items, ctx->p.factors);
    bench_work gx = bench_work_gram(ctx->users, ctx->p.factors);
    works[0] = gy;
    works[1] = bench_iteration_work(ctx, 0, 1, 0);
    works[2] = gx;
    works[3] = bench_iteration_work(ctx, 0, 0, 1);
    for (int k = 0; k < 4; k++) {
        unsigned bit = k % 2 == 0 ? BENCH_PH_GRAM : BENCH_PH_HALF;
        if (!(ctx->o.phases & bit)) continue;
        bench_record r = bench_record_none(phases[k], why ? why : notes[k]);
        if (!why) {
            r.samples = part[k];
            r.n = n;
            r.work = works[k];
        }
        if (bench_emit(ctx, &r)) return EXIT_FAILED;
    }
    return 0;
}

/* Buffers of the iteration phase. */
typedef struct {
    bench_clock clk;
    bench_half_log log;
    double *iter;
    double *part[4]; /* YtY, users' solves, XtX, items' solves */
} iter_buffers;

static void iter_buffers_free(iter_buffers *b)
{
    bench_clock_free(&b->clk);
    free(b->log.t);
    free(b->log.kind);
    free(b->log.side);
    free(b->iter);
    for (int k = 0; k < 4; k++)
        free(b->part[k]);
}

static int iter_buffers_init(iter_buffers *b, int total, int n)
{
    memset(b, 0, sizeof *b);
    int cap = 4 * total + 4;
    b->log.cap = cap;
    b->log.t = calloc((size_t)cap, sizeof *b->log.t);
    b->log.kind = calloc((size_t)cap, sizeof *b->log.kind);
    b->log.side = calloc((size_t)cap, sizeof *b->log.side);
    b->iter = calloc((size_t)n, sizeof *b->iter);
    int ok =
        bench_clock_init(&b->clk, total) == 0 && b->log.t && b->log.kind && b->log.side && b->iter;
    for (int k = 0; k < 4; k++) {
        b->part[k] = calloc((size_t)n, sizeof *b->part[k]);
        ok = ok && b->part[k];
    }
    if (!ok) iter_buffers_free(b);
    return ok ? 0 : -1;
}

/* warmup + reps full iterations in one als_fit_cpu call, timed per iteration and per half; then
 * the loss of the result. Emits "iteration" and the halves when asked. */
static int phase_iterations(bench_ctx *ctx, double *final_loss, int *loss_iters)
{
    int w = ctx->o.warmup, n = ctx->o.reps, total = w + n, rc = 0;
    iter_buffers b;
    if (iter_buffers_init(&b, total, n) != 0)
        return bench_fail("iterations", gpuals_fail(GPUALS_ERR_NOMEM, "iteration timestamps"));

    /* One fit, its callbacks and its half-iteration hooks timed. */
    gpuals_params p = ctx->p;
    p.iters = total;
    bench_progress(ctx, "%d iterations (%d warm-up)", total, w);
    bench_half_log_start(&b.log);
    double t0 = bench_now();
    gpuals_status s =
        als_fit_cpu(&ctx->Cui, &ctx->Ciu, &p, ctx->X, ctx->Y, bench_on_iteration, &b.clk);
    bench_half_log_stop();
    if (s == GPUALS_OK && b.clk.n != total)
        s = gpuals_fail(GPUALS_ERR_INTERNAL, "the fit called back %d times for %d iterations",
                        b.clk.n, total);
    if (s != GPUALS_OK) {
        iter_buffers_free(&b);
        return bench_fail("iterations", s);
    }

    /* Iteration k's time is the gap between callbacks k-1 and k (the fit's entry for k = 0). */
    for (int k = 0; k < n; k++) {
        int it = w + k;
        b.iter[k] = b.clk.t[it] - (it == 0 ? t0 : b.clk.t[it - 1]);
    }
    char why[160];
    const char *bad = check_half_log(&b.log, total, why, sizeof why);
    if (!bad) part_samples(&b.log, &b.clk, t0, w, n, b.part);

    /* The loss after all of them, for the record beside the peer's. */
    *final_loss = als_loss(&ctx->Cui, ctx->X, ctx->Y, p.factors, &ctx->p);
    *loss_iters = total;
    if (ctx->o.phases & BENCH_PH_ITER) {
        bench_record r = bench_record_none("iteration", "YtY, users, XtX, items; gaps between "
                                                        "fit callbacks");
        r.samples = b.iter;
        r.n = n;
        r.work = bench_iteration_work(ctx, 1, 1, 1);
        r.final_loss = *final_loss;
        r.loss_iters = total;
        if (bench_emit(ctx, &r)) rc = EXIT_FAILED;
    }
    if (emit_parts(ctx, b.part, n, bad)) rc = EXIT_FAILED;
    iter_buffers_free(&b);
    return rc;
}

/* The training loss of the current factors. */
static int phase_loss(bench_ctx *ctx, double final_loss, int loss_iters)
{
    int n = ctx->o.reps;
    double *t = calloc((size_t)n, sizeof *t);
    if (!t) return bench_fail("loss", gpuals_fail(GPUALS_ERR_NOMEM, "loss timings"));
    volatile double sink = 0.0;
    for (int k = -ctx->o.warmup; k < n; k++) {
        double t0 = bench_now();
        sink += als_loss(&ctx->Cui, ctx->X, ctx->Y, ctx->p.factors, &ctx->p);
        if (k >= 0) t[k] = bench_now() - t0;
    }
    (void)sink;
    bench_record r = bench_record_none("loss", "als_loss; final_loss is after loss_iters "
                                               "iterations from the initial factors");
    r.samples = t;
    r.n = n;
    r.work = bench_work_loss(ctx->users, ctx->items, ctx->nnz, ctx->p.factors);
    r.final_loss = final_loss;
    r.loss_iters = loss_iters;
    int rc = bench_emit(ctx, &r) ? EXIT_FAILED : 0;
    free(t);
    return rc;
}

/* Whole fits of --fit-iters iterations from the initial factors (no warm-up: the phases before
 * have warmed everything). */
static int phase_fit(bench_ctx *ctx)
{
    int n = ctx->o.reps, f = ctx->p.factors, rc = 0;
    double *t = calloc((size_t)n, sizeof *t);
    float *X = alloc_factors(ctx->users, f), *Y = alloc_factors(ctx->items, f);
    if (!t || !X || !Y) {
        rc = bench_fail("fit", gpuals_fail(GPUALS_ERR_NOMEM, "fit buffers"));
        goto done;
    }
    gpuals_params p = ctx->p;
    p.iters = ctx->o.fit_iters;
    bench_progress(ctx, "%d fits of %d iterations", n, p.iters);
    for (int k = 0; k < n; k++) {
        als_init_factors(X, ctx->users, f, p.seed, ALS_SIDE_USERS);
        als_init_factors(Y, ctx->items, f, p.seed, ALS_SIDE_ITEMS);
        double t0 = bench_now();
        gpuals_status s = als_fit_cpu(&ctx->Cui, &ctx->Ciu, &p, X, Y, NULL, NULL);
        t[k] = bench_now() - t0;
        if (s != GPUALS_OK) {
            rc = bench_fail("fit", s);
            goto done;
        }
    }
    char note[96];
    snprintf(note, sizeof note, "als_fit_cpu, %d iterations from the initial factors", p.iters);
    bench_record r = bench_record_none("fit", note);
    r.samples = t;
    r.n = n;
    bench_work w = bench_iteration_work(ctx, 1, 1, 1);
    r.work.bytes = w.bytes * p.iters;
    r.work.flops = w.flops * p.iters;
    if (bench_emit(ctx, &r)) rc = EXIT_FAILED;
done:
    free(t);
    free(X);
    free(Y);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Entry point                                                                                */
/* ------------------------------------------------------------------------------------------ */

int bench_run_cpu(bench_ctx *ctx)
{
    unsigned ph = ctx->o.phases;
    int f = ctx->p.factors, rc;
    double final_loss = NAN;
    int loss_iters = 0;

    /* The initial factors every fit of gpu-als starts from. */
    ctx->X = alloc_factors(ctx->users, f);
    ctx->Y = alloc_factors(ctx->items, f);
    if (!ctx->X || !ctx->Y) return bench_fail("factors", gpuals_fail(GPUALS_ERR_NOMEM, "factors"));
    als_init_factors(ctx->X, ctx->users, f, ctx->p.seed, ALS_SIDE_USERS);
    als_init_factors(ctx->Y, ctx->items, f, ctx->p.seed, ALS_SIDE_ITEMS);

    /* Training phases: full iterations (and their halves) bring the factors to a steady state
     * for everything after them. */
    if ((rc = phase_iterations(ctx, &final_loss, &loss_iters)) != 0) return rc;
    if ((ph & BENCH_PH_LOSS) && (rc = phase_loss(ctx, final_loss, loss_iters)) != 0) return rc;

    /* Queries on the trained factors, then whole fits if asked. */
    if ((ph & BENCH_PH_TOPN) && (rc = bench_phase_topn(ctx, topn_batch)) != 0) return rc;
    if ((ph & BENCH_PH_SIMILAR) && (rc = bench_phase_similar(ctx, topn_batch)) != 0) return rc;
    if ((ph & BENCH_PH_FIT) && (rc = phase_fit(ctx)) != 0) return rc;
    return 0;
}
