/*
 * bench_query.c - the query phases of gpuals-bench, shared by the CPU and the GPU runs.
 *
 * topn:    for every user, the best n items by x_u.y_i with the user's liked items left out
 *          (topn_filter.exclude = the training CSR), 2*U*I*f flops of scoring.
 * similar: for every item, the best n items by cosine y_i.y_j / (|y_i| |y_j|), the item itself
 *          left out; the reciprocal norms (row_inv_norms) are computed inside the timed region,
 *          since a query on a fresh model has to compute them too. 2*I*I*f flops of scoring.
 * The device's top-n function does the rest (topn_batch on the CPU, cuda_topn on a GPU; for the
 * GPU that includes moving the factors and results across the bus, as its contract says).
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "status.h"

#define EXIT_FAILED 1

/* Warm up, then time --reps top-n calls of Q's rows against C's rows under filter flt. When
 * norms_of is not NULL, cosine: the reciprocal norms of norms_of's nc rows become both scales,
 * computed inside each timed call. Samples go to t. */
static int time_topn(const bench_ctx *ctx, bench_topn_fn topn, const float *Q, int64_t nq,
                     const float *C, int64_t nc, const topn_filter *flt, const float *norms_of,
                     double *t)
{
    int f = ctx->p.factors, n = ctx->o.topn, rc = 0;
    size_t results = (size_t)(nq ? nq : 1) * (size_t)n;
    int64_t *idx = malloc(results * sizeof *idx);
    float *score = malloc(results * sizeof *score);
    int *n_out = malloc((size_t)(nq ? nq : 1) * sizeof *n_out);
    float *inv = norms_of ? malloc((size_t)(nc ? nc : 1) * sizeof *inv) : NULL;
    if (!idx || !score || !n_out || (norms_of && !inv)) {
        rc = bench_fail("top-n", gpuals_fail(GPUALS_ERR_NOMEM, "top-n results"));
        goto done;
    }

    /* Warm-up calls first (k < 0), then the timed ones. */
    topn_filter local = *flt;
    for (int k = -ctx->o.warmup; k < ctx->o.reps; k++) {
        double t0 = bench_now();
        if (norms_of) {
            row_inv_norms(norms_of, nc, f, inv);
            local.col_scale = inv;
            local.query_scale = inv;
        }
        gpuals_status s = topn(Q, nq, C, nc, f, &local, n, idx, score, n_out);
        if (k >= 0) t[k] = bench_now() - t0;
        if (s != GPUALS_OK) {
            rc = bench_fail("top-n", s);
            goto done;
        }
    }
done:
    free(idx);
    free(score);
    free(n_out);
    free(inv);
    return rc;
}

int bench_phase_topn(bench_ctx *ctx, bench_topn_fn topn)
{
    int n = ctx->o.reps;
    double *t = calloc((size_t)n, sizeof *t);
    if (!t) return bench_fail("top-n", gpuals_fail(GPUALS_ERR_NOMEM, "top-n timings"));

    /* Query q is user q; its row of the training CSR is what it already liked. */
    topn_filter flt;
    memset(&flt, 0, sizeof flt);
    flt.exclude = &ctx->Cui;
    bench_progress(ctx, "top-%d for %lld users", ctx->o.topn, (long long)ctx->users);
    int rc = time_topn(ctx, topn, ctx->X, ctx->users, ctx->Y, ctx->items, &flt, NULL, t);
    if (rc == 0) {
        bench_record r = bench_record_none("topn", "all users, liked items filtered");
        r.samples = t;
        r.n = n;
        r.work = bench_work_topn(ctx->users, ctx->items, ctx->nnz, ctx->p.factors, ctx->o.topn);
        if (bench_emit(ctx, &r)) rc = EXIT_FAILED;
    }
    free(t);
    return rc;
}

int bench_phase_similar(bench_ctx *ctx, bench_topn_fn topn)
{
    int n = ctx->o.reps, rc = 0;
    double *t = calloc((size_t)n, sizeof *t);
    int64_t *self = malloc((size_t)(ctx->items ? ctx->items : 1) * sizeof *self);
    if (!t || !self) {
        rc = bench_fail("similar", gpuals_fail(GPUALS_ERR_NOMEM, "similar-items buffers"));
        goto done;
    }

    /* Query q is item q, which must not come back as its own neighbour. */
    for (int64_t i = 0; i < ctx->items; i++)
        self[i] = i;
    topn_filter flt;
    memset(&flt, 0, sizeof flt);
    flt.self = self;
    bench_progress(ctx, "similar items for %lld items", (long long)ctx->items);
    rc = time_topn(ctx, topn, ctx->Y, ctx->items, ctx->Y, ctx->items, &flt, ctx->Y, t);
    if (rc == 0) {
        bench_record r = bench_record_none("similar", "all items, cosine (norms included), "
                                                      "self excluded");
        r.samples = t;
        r.n = n;
        r.work = bench_work_topn(ctx->items, ctx->items, 0, ctx->p.factors, ctx->o.topn);
        if (bench_emit(ctx, &r)) rc = EXIT_FAILED;
    }
done:
    free(t);
    free(self);
    return rc;
}
