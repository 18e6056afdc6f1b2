/*
 * bench_gpu.c - the GPU phases of gpuals-bench, timed through cuda/gpuals_cuda.h.
 *
 * The CUDA backend trains whole fits, so the phases come from fits:
 *   warm-up     a one-iteration fit first: it creates the CUDA context and loads the kernels,
 *               and its cuda_fit_stats give the fit's device memory.
 *   iteration   one cuda_als_fit of max(warmup, 1) + reps iterations without statistics (no
 *               extra synchronisation); iteration k's time is the gap between callbacks k-1 and
 *               k, the first max(warmup, 1) dropped (the first also holds the upload). This
 *               relies on the backend calling back once an iteration's work has finished on the
 *               device, as it must to report the iteration's seconds.
 *   breakdown   --reps pairs of cuda_als_fit_ex calls, same iteration count, from the initial
 *               factors; the device times (CUDA events) of the first call of a pair, with the
 *               loss off, give one sample of upload, download, gram (YtY + XtX per iteration),
 *               half_users and half_items (solves per iteration); the second, with the loss on,
 *               one sample of the loss per iteration (its YtY included, as the CPU's als_loss
 *               includes it: with the loss on, the backend computes YtY there and the next
 *               iteration reuses it) and the final loss. The events add a synchronisation per
 *               phase, so the parts can add up to a little more than the iteration above.
 *   fit         --reps whole cuda_als_fit calls of --fit-iters iterations (upload and download
 *               included), from the initial factors.
 *   topn, similar  bench_query.c with cuda_topn (which moves its inputs and results itself).
 * Ceilings: cuda_measure_ceilings (a device-to-device copy and a cuBLAS SGEMM).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "als.h"
#include "bench.h"
#include "status.h"

#ifdef GPUALS_HAVE_CUDA
#include "gpuals_cuda.h"
#endif

#define EXIT_FAILED 1
#define EXIT_NO_GPU 77

#ifndef GPUALS_HAVE_CUDA

int bench_gpu_open(bench_ctx *ctx)
{
    (void)ctx;
    fprintf(stderr, "gpuals-bench: this build has no CUDA backend (configure with "
                    "-DGPUALS_CUDA=ON on a machine with nvcc)\n");
    return EXIT_NO_GPU;
}

int bench_run_gpu(bench_ctx *ctx) { return bench_gpu_open(ctx); }

int bench_gpu_ceilings(bench_ctx *ctx) { return bench_gpu_open(ctx); }

#else

int bench_gpu_open(bench_ctx *ctx)
{
    char name[256];
    if (!cuda_probe(name, sizeof name)) {
        fprintf(stderr, "gpuals-bench: no usable GPU: %s\n", name);
        return EXIT_NO_GPU;
    }
    snprintf(ctx->device_name, sizeof ctx->device_name, "%.*s", (int)strcspn(name, "("), name);
    size_t len = strlen(ctx->device_name);
    while (len > 0 && ctx->device_name[len - 1] == ' ')
        ctx->device_name[--len] = '\0';
    return 0;
}

static float *alloc_factors(int64_t rows, int f)
{
    size_t count = (size_t)rows * (size_t)f;
    return malloc((count ? count : 1) * sizeof(float));
}

/* What the GPU phases share. */
typedef struct {
    float *X0, *Y0; /* the initial factors */
    float *X, *Y;   /* scratch factors for fits that start from X0, Y0 */
    double mem_mib; /* device memory of a fit, NaN when unknown */
    int iters;      /* iterations of the iteration and breakdown fits */
} gpu_run;

static cuda_cg_form cg_form(const bench_ctx *ctx)
{
    return ctx->o.cg_form ? CUDA_CG_LIBRARY : CUDA_CG_FUSED;
}

/* A fit of `iters` iterations from the initial factors into g->X, g->Y, optionally with the
 * loss, callbacks into clk (may be NULL) and statistics into stats (may be NULL); *seconds is
 * the call's wall time. */
static gpuals_status fit_from_start(const bench_ctx *ctx, gpu_run *g, int iters, int compute_loss,
                                    bench_clock *clk, cuda_fit_stats *stats, double *seconds)
{
    gpuals_params p = ctx->p;
    p.iters = iters;
    p.compute_loss = compute_loss;
    memcpy(g->X, g->X0, (size_t)ctx->users * (size_t)p.factors * sizeof(float));
    memcpy(g->Y, g->Y0, (size_t)ctx->items * (size_t)p.factors * sizeof(float));
    if (clk) clk->n = 0;
    double t0 = bench_now();
    gpuals_status s = cuda_als_fit_ex(&ctx->Cui, &ctx->Ciu, &p, g->X, g->Y,
                                      clk ? bench_on_iteration : NULL, clk, cg_form(ctx), stats);
    *seconds = bench_now() - t0;
    if (s == GPUALS_OK && clk && clk->n != iters)
        s = gpuals_fail(GPUALS_ERR_INTERNAL,
                        "cuda_als_fit called back %d times for %d "
                        "iterations",
                        clk->n, iters);
    return s;
}

/* The warm-up fit: context, kernels, and the device memory a fit allocates. */
static int gpu_warmup(bench_ctx *ctx, gpu_run *g)
{
    cuda_fit_stats st;
    double seconds;
    memset(&st, 0, sizeof st);
    gpuals_status s = fit_from_start(ctx, g, 1, 0, NULL, &st, &seconds);
    if (s != GPUALS_OK) return bench_fail("cuda_als_fit_ex", s);
    bench_progress(ctx, "warm-up fit (CUDA context included): %.3f s", seconds);
    g->mem_mib = (double)st.device_bytes / 1048576.0;
    return 0;
}

/* Steady-state iterations from the callback gaps of one fit; ctx->X and ctx->Y keep its result
 * for the queries. */
static int gpu_iterations(bench_ctx *ctx, gpu_run *g)
{
    int w = g->iters - ctx->o.reps, n = ctx->o.reps, rc = 0;
    bench_clock clk;
    double *t = calloc((size_t)n, sizeof *t), seconds;
    if (bench_clock_init(&clk, g->iters) != 0 || !t) {
        free(t);
        return bench_fail("iterations", gpuals_fail(GPUALS_ERR_NOMEM, "timestamps"));
    }
    bench_progress(ctx, "%d device iterations (%d warm-up)", g->iters, w);
    gpuals_status s = fit_from_start(ctx, g, g->iters, 0, &clk, NULL, &seconds);
    if (s != GPUALS_OK) {
        rc = bench_fail("cuda_als_fit", s);
    } else {
        for (int k = 0; k < n; k++)
            t[k] = clk.t[w + k] - clk.t[w + k - 1];
        memcpy(ctx->X, g->X, (size_t)ctx->users * ctx->p.factors * sizeof(float));
        memcpy(ctx->Y, g->Y, (size_t)ctx->items * ctx->p.factors * sizeof(float));
        if (ctx->o.phases & BENCH_PH_ITER) {
            bench_record r = bench_record_none("iteration", "YtY, users, XtX, items; gaps "
                                                            "between cuda_als_fit callbacks");
            r.samples = t;
            r.n = n;
            r.work = bench_iteration_work(ctx, 1, 1, 1);
            r.device_mem_mib = g->mem_mib;
            if (bench_emit(ctx, &r)) rc = EXIT_FAILED;
        }
    }
    bench_clock_free(&clk);
    free(t);
    return rc;
}

/* The rows of the breakdown, in table order. */
enum { B_UPLOAD, B_DOWNLOAD, B_GRAM, B_USERS, B_ITEMS, B_LOSS, B_COUNT };

/* One sample of each breakdown row from the statistics of a call without the loss (st) and of
 * one with it (lt), in seconds. */
static void breakdown_sample(const cuda_fit_stats *st, const cuda_fit_stats *lt,
                             double *row[B_COUNT], int k)
{
    double it = st->iterations > 0 ? st->iterations : 1;
    double lit = lt->iterations > 0 ? lt->iterations : 1;
    row[B_UPLOAD][k] = st->upload_ms * 1e-3;
    row[B_DOWNLOAD][k] = st->download_ms * 1e-3;
    row[B_GRAM][k] = st->gram_ms * 1e-3 / it;
    row[B_USERS][k] = st->users_ms * 1e-3 / it;
    row[B_ITEMS][k] = st->items_ms * 1e-3 / it;
    row[B_LOSS][k] = lt->loss_ms * 1e-3 / lit;
}

/* Emit the breakdown rows the phases ask for. */
static int emit_breakdown(bench_ctx *ctx, const gpu_run *g, double *row[B_COUNT], int n,
                          double final_loss, const char *form_note)
{
    static const char *const phases[B_COUNT] = {"upload",     "download",   "gram",
                                                "half_users", "half_items", "loss"};
    static const unsigned bits[B_COUNT] = {BENCH_PH_UPLOAD, BENCH_PH_UPLOAD, BENCH_PH_GRAM,
                                           BENCH_PH_HALF,   BENCH_PH_HALF,   BENCH_PH_LOSS};
    bench_work works[B_COUNT];
    int f = ctx->p.factors;
    works[B_UPLOAD] = bench_work_upload(ctx->users, ctx->items, ctx->nnz, f);
    works[B_DOWNLOAD].bytes = (double)(ctx->users + ctx->items) * f * 4.0;
    works[B_DOWNLOAD].flops = 0.0;
    works[B_GRAM] = bench_iteration_work(ctx, 1, 0, 0);
    works[B_USERS] = bench_iteration_work(ctx, 0, 1, 0);
    works[B_ITEMS] = bench_iteration_work(ctx, 0, 0, 1);
    works[B_LOSS] = bench_work_loss(ctx->users, ctx->items, ctx->nnz, f);

    char note[200];
    for (int k = 0; k < B_COUNT; k++) {
        if (!(ctx->o.phases & bits[k])) continue;
        snprintf(note, sizeof note, "cuda_fit_stats (CUDA events), %s%s",
                 k <= B_DOWNLOAD ? "per fit" : "per iteration", form_note);
        bench_record r = bench_record_none(phases[k], note);
        r.samples = row[k];
        r.n = n;
        r.work = works[k];
        r.device_mem_mib = g->mem_mib;
        if (k == B_LOSS) {
            r.final_loss = final_loss;
            r.loss_iters = g->iters;
        }
        if (bench_emit(ctx, &r)) return EXIT_FAILED;
    }
    return 0;
}

/* --reps pairs of fits with device statistics (loss off, loss on): the per-phase breakdown. */
static int gpu_breakdown(bench_ctx *ctx, gpu_run *g)
{
    int n = ctx->o.reps, rc = 0;
    double *row[B_COUNT] = {0};
    bench_clock clk;
    if (bench_clock_init(&clk, g->iters) != 0)
        return bench_fail("breakdown", gpuals_fail(GPUALS_ERR_NOMEM, "timestamps"));
    for (int k = 0; k < B_COUNT; k++) {
        row[k] = calloc((size_t)n, sizeof *row[k]);
        if (!row[k]) rc = bench_fail("breakdown", gpuals_fail(GPUALS_ERR_NOMEM, "timings"));
    }

    /* The fits; the last one's final loss is the comparable figure. */
    double final_loss = NAN;
    cuda_fit_stats st, lt;
    memset(&st, 0, sizeof st);
    bench_progress(ctx, "%d pairs of device fits with statistics", n);
    for (int k = 0; rc == 0 && k < n; k++) {
        double seconds;
        memset(&st, 0, sizeof st);
        memset(&lt, 0, sizeof lt);
        gpuals_status s = fit_from_start(ctx, g, g->iters, 0, NULL, &st, &seconds);
        if (s == GPUALS_OK) s = fit_from_start(ctx, g, g->iters, 1, &clk, &lt, &seconds);
        if (s != GPUALS_OK) {
            rc = bench_fail("cuda_als_fit_ex", s);
            break;
        }
        breakdown_sample(&st, &lt, row, k);
        final_loss = clk.loss[g->iters - 1];
    }

    /* The CG form that ran, when the backend fell back from the one asked for. */
    char form_note[64] = "";
    if (rc == 0 && ctx->p.solver == GPUALS_SOLVER_CG && st.form_used != cg_form(ctx))
        snprintf(form_note, sizeof form_note, "; the %s CG form ran",
                 st.form_used == CUDA_CG_LIBRARY ? "library" : "fused");
    if (rc == 0) rc = emit_breakdown(ctx, g, row, n, final_loss, form_note);
    bench_clock_free(&clk);
    for (int k = 0; k < B_COUNT; k++)
        free(row[k]);
    return rc;
}

/* Whole fits of --fit-iters iterations from the initial factors. */
static int gpu_whole_fits(bench_ctx *ctx, gpu_run *g)
{
    int n = ctx->o.reps, rc = 0;
    double *t = calloc((size_t)n, sizeof *t);
    if (!t) return bench_fail("fit", gpuals_fail(GPUALS_ERR_NOMEM, "fit timings"));
    bench_progress(ctx, "%d device fits of %d iterations", n, ctx->o.fit_iters);
    for (int k = 0; k < n; k++) {
        gpuals_status s = fit_from_start(ctx, g, ctx->o.fit_iters, 0, NULL, NULL, &t[k]);
        if (s != GPUALS_OK) {
            rc = bench_fail("cuda_als_fit", s);
            break;
        }
    }
    if (rc == 0) {
        char note[128];
        snprintf(note, sizeof note,
                 "cuda_als_fit, %d iterations from the initial factors, "
                 "upload and download included",
                 ctx->o.fit_iters);
        bench_record r = bench_record_none("fit", note);
        r.samples = t;
        r.n = n;
        bench_work w = bench_iteration_work(ctx, 1, 1, 1);
        r.work.bytes = w.bytes * ctx->o.fit_iters;
        r.work.flops = w.flops * ctx->o.fit_iters;
        r.device_mem_mib = g->mem_mib;
        if (bench_emit(ctx, &r)) rc = EXIT_FAILED;
    }
    free(t);
    return rc;
}

int bench_run_gpu(bench_ctx *ctx)
{
    gpu_run g;
    memset(&g, 0, sizeof g);
    g.mem_mib = NAN;
    unsigned ph = ctx->o.phases;
    int f = ctx->p.factors, rc = 0;

    /* The initial factors, kept for the fits that start from them. */
    ctx->X = alloc_factors(ctx->users, f);
    ctx->Y = alloc_factors(ctx->items, f);
    g.X0 = alloc_factors(ctx->users, f);
    g.Y0 = alloc_factors(ctx->items, f);
    g.X = alloc_factors(ctx->users, f);
    g.Y = alloc_factors(ctx->items, f);
    if (!ctx->X || !ctx->Y || !g.X0 || !g.Y0 || !g.X || !g.Y) {
        rc = bench_fail("factors", gpuals_fail(GPUALS_ERR_NOMEM, "factors"));
        goto done;
    }
    als_init_factors(g.X0, ctx->users, f, ctx->p.seed, ALS_SIDE_USERS);
    als_init_factors(g.Y0, ctx->items, f, ctx->p.seed, ALS_SIDE_ITEMS);
    g.iters = (ctx->o.warmup > 0 ? ctx->o.warmup : 1) + ctx->o.reps;

    /* Training phases. */
    if ((rc = gpu_warmup(ctx, &g)) != 0) goto done;
    if ((rc = gpu_iterations(ctx, &g)) != 0) goto done;
    if ((ph & (BENCH_PH_UPLOAD | BENCH_PH_GRAM | BENCH_PH_HALF | BENCH_PH_LOSS)) &&
        (rc = gpu_breakdown(ctx, &g)) != 0)
        goto done;
    if ((ph & BENCH_PH_FIT) && (rc = gpu_whole_fits(ctx, &g)) != 0) goto done;

    /* Queries on the device-trained factors. */
    if ((ph & BENCH_PH_TOPN) && (rc = bench_phase_topn(ctx, cuda_topn)) != 0) goto done;
    if ((ph & BENCH_PH_SIMILAR) && (rc = bench_phase_similar(ctx, cuda_topn)) != 0) goto done;
done:
    free(g.X0);
    free(g.Y0);
    free(g.X);
    free(g.Y);
    return rc;
}

int bench_gpu_ceilings(bench_ctx *ctx)
{
    /* The backend measures both; only the rates come back. */
    double copy_gbs = 0.0, gemm_gflops = 0.0;
    bench_progress(ctx, "measuring GPU ceilings");
    gpuals_status s = cuda_measure_ceilings(&copy_gbs, &gemm_gflops);
    if (s != GPUALS_OK) return bench_fail("cuda_measure_ceilings", s);
    ctx->o.peak_dev_gbps = copy_gbs;
    ctx->o.peak_dev_gflops = gemm_gflops;

    bench_record r = bench_record_none("ceiling_dev_copy", "cuda_measure_ceilings: best "
                                                           "device-to-device copy, read + write");
    r.gbps = copy_gbs;
    if (bench_emit(ctx, &r)) return EXIT_FAILED;
    r = bench_record_none("ceiling_dev_gemm", "cuda_measure_ceilings: best cuBLAS SGEMM");
    r.gflops = gemm_gflops;
    return bench_emit(ctx, &r) ? EXIT_FAILED : 0;
}

#endif /* GPUALS_HAVE_CUDA */
