/*
 * als_f32.c - the float32 instance of the CPU ALS engine (als_engine.h): the training path.
 *
 * Factors, the Gram matrix the rows are solved against and every CG vector are float, as in
 * the `implicit` library's default float32 model; the Gram matrices themselves and the loss are
 * accumulated in double. Public entry points: als_fit_cpu, als_loss and als_gram.
 */
#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <stdlib.h>

#include "als.h"
#include "als_internal.h"
#include "status.h"

#define ALS_T float
#define ALS_FN(name) name##_f32
#define ALS_IS_DOUBLE 0
#define ALS_GEMV cblas_sgemv
#define ALS_SYRK cblas_ssyrk
#define ALS_POTRF LAPACKE_spotrf_work
#define ALS_POTRS LAPACKE_spotrs_work
#define ALS_EPSILON FLT_EPSILON
#include "als_engine.h"

/* als.h: train X and Y (rows x f, row-major float, the warm start on entry) in place for
 * p->iters iterations. The callback sees iterations numbered from 1; a non-zero answer stops
 * with GPUALS_OK. Failures: USAGE (bad settings or shapes), NUMERIC (a non-finite confidence,
 * or a row that became non-finite or singular: the message names side, row and iteration),
 * NOMEM. */
gpuals_status als_fit_cpu(const csr *Cui, const csr *Ciu, const gpuals_params *p, float *X,
                          float *Y, gpuals_iter_fn cb, void *cb_user)
{
    return als_fit_engine_f32("als_fit_cpu", Cui, Ciu, p, X, Y, cb, cb_user);
}

/* als.h: the training loss of X (Cui->rows x f) and Y (Cui->cols x f); NaN when an argument
 * is NULL or memory runs out. */
double als_loss(const csr *Cui, const float *X, const float *Y, int f, const gpuals_params *p)
{
    return als_loss_standalone_f32(Cui, X, Y, f, p);
}

/* als.h: out (f x f, row-major, both triangles, double) = F^T F, the same bits for any thread
 * count. */
void als_gram(const float *F, int64_t rows, int f, double *out)
{
    /* The parallel, deterministic path; without memory for it, the same sum row by row. */
    int saved = als_blas_single();
    gpuals_status st = als_gram_f32(F, rows, f, (size_t)f, als_thread_count(NULL), out);
    als_blas_restore(saved);
    if (st == GPUALS_OK) return;
    size_t fs = (size_t)f;
    for (size_t e = 0; e < fs * fs; e++) out[e] = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *x = F + (size_t)r * fs;
        for (size_t a = 0; a < fs; a++)
            for (size_t b = 0; b < fs; b++) out[a * fs + b] += (double)x[a] * (double)x[b];
    }
}
