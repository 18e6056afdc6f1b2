/*
 * als.c - the parts of the ALS engine that are not tied to one floating-point type: initial
 * factors, argument checks, failure reports, the exact one-row solve used by fold-in, and
 * als_fit, which sends a training run to the CPU or the GPU.
 *
 * The solvers themselves live in als_engine.h (instantiated in als_f32.c and als_f64.c).
 *
 * The exact row solve (Hu et al. 2008, eq. 4, with the `implicit` library's confidences):
 *     x = (YtY + lambda I + sum_i (|c_i| - 1) y_i y_i^T)^-1 sum_{c_i > 0} c_i y_i
 * built in double with one symmetric rank-1 update (BLAS dsyr) per item and solved by
 * LAPACK dpotrf/dpotrs; a pivot that is not clearly positive is reported, not divided by.
 */
#include "als.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "als_internal.h"
#include "init_rng.h"
#include "status.h"

#ifdef GPUALS_HAVE_CUDA
#include "gpuals_cuda.h"
#endif

/* ------------------------------------------------------------------------------------------ */
/* Shared helpers (als_internal.h)                                                            */
/* ------------------------------------------------------------------------------------------ */

const char *als_side_name(int side) { return side == ALS_SIDE_ITEMS ? "item" : "user"; }

static als_half_hook_fn half_hook;
static void *half_hook_user;

void als_set_half_hook(als_half_hook_fn fn, void *user)
{
    half_hook = fn;
    half_hook_user = user;
}

void als_half_hook(int end, int side)
{
    if (half_hook != NULL) half_hook(end, side, half_hook_user);
}

void als_failure_reset(als_failure *fl)
{
    fl->row = -1;
    fl->kind = ALS_FAIL_NONE;
    fl->detail = 0;
}

void als_failure_record(als_failure *fl, int64_t row, als_fail_kind kind, int detail)
{
#pragma omp critical(als_failure_record)
    {
        if (fl->row < 0 || row < fl->row) {
            fl->row = row;
            fl->kind = kind;
            fl->detail = detail;
        }
    }
}

gpuals_status als_failure_status(const als_failure *fl, int side, int iteration)
{
    if (fl->kind == ALS_FAIL_NONE) return GPUALS_OK;
    return als_fail_row(side, fl->row, fl->kind, iteration, fl->detail);
}

/* The last failure als_fail_row reported on this thread, and the message it made. */
static _Thread_local struct {
    int side, iteration, detail;
    int64_t row;
    als_fail_kind kind;
    char message[512];
} last_failure;

/* The failure of last_failure with the row called `who` (e.g. "user 12 (row index)") and the
 * iteration counted as `iteration`. */
static gpuals_status state_failure(const char *who, int iteration)
{
    const int detail = last_failure.detail;
    switch (last_failure.kind) {
    case ALS_FAIL_NONE:
        break;
    case ALS_FAIL_NONFINITE:
        return gpuals_fail(GPUALS_ERR_NUMERIC, "%s became non-finite at iteration %d (a "
                           "smaller alpha or a larger reg keeps the values in range)", who,
                           iteration);
    case ALS_FAIL_SINGULAR: {
        char pivot[48] = "a Cholesky pivot is not positive";
        if (detail > 0) snprintf(pivot, sizeof pivot, "Cholesky pivot %d is not positive", detail);
        return gpuals_fail(GPUALS_ERR_NUMERIC, "singular system for %s at iteration %d (%s): try "
                           "a larger reg (--reg) or a smaller alpha (--alpha) (confidences "
                           "below 1 can also make it indefinite)", who, iteration, pivot);
    }
    case ALS_FAIL_LAPACK:
        return gpuals_fail(GPUALS_ERR_INTERNAL, "LAPACK rejected argument %d while solving %s at "
                           "iteration %d", -detail, who, iteration);
    }
    return gpuals_fail(GPUALS_ERR_INTERNAL, "a failure of unknown kind %d",
                       (int)last_failure.kind);
}

gpuals_status als_fail_row(int side, int64_t row, als_fail_kind kind, int iteration,
                           int detail)
{
    last_failure.side = side;
    last_failure.row = row;
    last_failure.kind = kind;
    last_failure.iteration = iteration;
    last_failure.detail = detail;
    char who[64];
    snprintf(who, sizeof who, "%s %lld (row index)", als_side_name(side), (long long)row);
    gpuals_status st = state_failure(who, iteration);
    snprintf(last_failure.message, sizeof last_failure.message, "%s", gpuals_last_error());
    return st;
}

gpuals_status als_failure_restate(gpuals_status st, const idmap *users, const idmap *items,
                                  int iteration_base)
{
    if (st == GPUALS_OK || last_failure.kind == ALS_FAIL_NONE ||
        strcmp(gpuals_last_error(), last_failure.message) != 0)
        return st;
    const idmap *map = last_failure.side == ALS_SIDE_ITEMS ? items : users;
    const char *side = als_side_name(last_failure.side);
    char who[320];
    if (map != NULL && last_failure.row >= 0 && last_failure.row < idmap_size(map))
        snprintf(who, sizeof who, "%s '%s'", side, idmap_name(map, last_failure.row));
    else
        snprintf(who, sizeof who, "%s %lld (row index)", side, (long long)last_failure.row);
    return state_failure(who, last_failure.iteration + iteration_base);
}

/* The structure of C (rows of `side`): row pointers, column bounds, finite values. */
static gpuals_status als_check_matrix(const char *fn, const csr *C, int side)
{
    const char *who = als_side_name(side), *other = als_side_name(1 - side);

    /* Row pointers. */
    if (C->rows < 0 || C->cols < 0 || C->nnz < 0 || (C->rows > 0 && !C->indptr) ||
        (C->nnz > 0 && (!C->indices || !C->data)))
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: the %s matrix is malformed (%lld x %lld, "
                           "%lld stored)", fn, who, (long long)C->rows, (long long)C->cols,
                           (long long)C->nnz);
    if (C->rows > 0 && (C->indptr[0] != 0 || C->indptr[C->rows] != C->nnz))
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: the %s matrix's row pointers do not span its "
                           "%lld entries", fn, who, (long long)C->nnz);

    /* Entries, row by row. */
    for (int64_t r = 0; r < C->rows; r++) {
        if (C->indptr[r + 1] < C->indptr[r])
            return gpuals_fail(GPUALS_ERR_USAGE, "%s: %s %lld (row index) has a decreasing "
                               "row pointer", fn, who, (long long)r);
        for (int64_t k = C->indptr[r]; k < C->indptr[r + 1]; k++) {
            if (C->indices[k] < 0 || C->indices[k] >= C->cols)
                return gpuals_fail(GPUALS_ERR_USAGE, "%s: %s %lld (row index) has column %d "
                                   "outside 0..%lld", fn, who, (long long)r, C->indices[k],
                                   (long long)C->cols - 1);
            if (!isfinite(C->data[k]))
                return gpuals_fail(GPUALS_ERR_NUMERIC, "%s: %s %lld (row index) has a "
                                   "non-finite confidence (%g) for %s %d (column index)", fn,
                                   who, (long long)r, (double)C->data[k], other,
                                   C->indices[k]);
        }
    }
    return GPUALS_OK;
}

gpuals_status als_check_fit_args(const char *fn, const csr *Cui, const csr *Ciu,
                                 const gpuals_params *p, const void *X, const void *Y)
{
    /* Pointers and settings. */
    if (!Cui || !Ciu || !p || !X || !Y)
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: NULL argument", fn);
    if (p->factors < 1)
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: factors must be at least 1 (got %d)", fn,
                           p->factors);
    if (p->iters < 0)
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: iters must be >= 0 (got %d)", fn, p->iters);
    if (!(p->reg >= 0) || !isfinite(p->reg))
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: reg must be a finite number >= 0 (got %g)", fn,
                           p->reg);
    if (p->solver != GPUALS_SOLVER_CG && p->solver != GPUALS_SOLVER_CHOLESKY)
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: unknown solver %d", fn, (int)p->solver);
    if (p->solver == GPUALS_SOLVER_CG && p->cg_steps < 1)
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: cg_steps must be at least 1 (got %d)", fn,
                           p->cg_steps);
    if (p->reg_scale != GPUALS_REG_NONE && p->reg_scale != GPUALS_REG_FREQUENCY)
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: unknown reg_scale %d", fn, (int)p->reg_scale);
    if (p->threads < 0 || p->threads > GPUALS_MAX_THREADS)
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: threads must be between 0 and %d (got %d)", fn,
                           GPUALS_MAX_THREADS, p->threads);

    /* Ciu must have the transpose's shape. */
    if (Ciu->rows != Cui->cols || Ciu->cols != Cui->rows || Ciu->nnz != Cui->nnz)
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: the item matrix (%lld x %lld, %lld stored) is "
                           "not the transpose of the user matrix (%lld x %lld, %lld stored)", fn,
                           (long long)Ciu->rows, (long long)Ciu->cols, (long long)Ciu->nnz,
                           (long long)Cui->rows, (long long)Cui->cols, (long long)Cui->nnz);

    /* Every entry of both. */
    GPUALS_TRY(als_check_matrix(fn, Cui, ALS_SIDE_USERS));
    return als_check_matrix(fn, Ciu, ALS_SIDE_ITEMS);
}

int als_thread_count(const gpuals_params *p)
{
    if (p && p->threads > 0) return p->threads;
    int n = omp_get_max_threads();
    return n > 0 ? n : 1;
}

int als_blas_single(void)
{
    int saved = openblas_get_num_threads();
    if (saved != 1) openblas_set_num_threads(1);
    return saved;
}

void als_blas_restore(int saved)
{
    if (saved != 1 && saved > 0) openblas_set_num_threads(saved);
}

void *als_alloc64(size_t bytes)
{
    size_t rounded = (bytes + 63) / 64 * 64;
    return aligned_alloc(64, rounded ? rounded : 64);
}

double als_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double als_total_confidence(const csr *C)
{
    double s = 0;
    for (int64_t k = 0; k < C->nnz; k++) s += fabs((double)C->data[k]);
    return s;
}

int64_t *als_column_counts(const csr *C)
{
    int64_t *counts = calloc((size_t)(C->cols > 0 ? C->cols : 1), sizeof *counts);
    if (!counts) return NULL;
    for (int64_t k = 0; k < C->nnz; k++) counts[C->indices[k]]++;
    return counts;
}

/* ------------------------------------------------------------------------------------------ */
/* Initial factors                                                                            */
/* ------------------------------------------------------------------------------------------ */

/* als.h: F (rows x f) = uniform [0, 0.01) values keyed by (seed, side, row, column). */
void als_init_factors(float *F, int64_t rows, int f, uint64_t seed, int side)
{
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
        for (int c = 0; c < f; c++)
            F[(size_t)r * (size_t)f + (size_t)c] = init_rng_value(seed, side, r, c);
}

/* als.h: the same values as als_init_factors, widened to double. */
void als_init_factors_f64(double *F, int64_t rows, int f, uint64_t seed, int side)
{
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
        for (int c = 0; c < f; c++)
            F[(size_t)r * (size_t)f + (size_t)c] = (double)init_rng_value(seed, side, r, c);
}

/* ------------------------------------------------------------------------------------------ */
/* Exact solve of one row                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Check als_solve_row_exact's arguments. */
static gpuals_status check_row_args(const float *Y, int64_t n_items, int f, double lambda,
                                    const int32_t *items, const float *conf, int64_t n,
                                    const float *x_out)
{
    const char *fn = "als_solve_row_exact";
    if (!Y || !x_out || (n > 0 && (!items || !conf)))
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: NULL argument", fn);
    if (f < 1 || n < 0 || n_items < 0)
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: invalid sizes (%d factors, %lld items, %lld "
                           "entries)", fn, f, (long long)n_items, (long long)n);
    if (!(lambda >= 0) || !isfinite(lambda))
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: lambda must be a finite number >= 0 (got %g)",
                           fn, lambda);
    for (int64_t k = 0; k < n; k++) {
        if (items[k] < 0 || items[k] >= n_items)
            return gpuals_fail(GPUALS_ERR_USAGE, "%s: items[%lld] = %d is outside 0..%lld", fn,
                               (long long)k, items[k], (long long)n_items - 1);
        if (!isfinite(conf[k]))
            return gpuals_fail(GPUALS_ERR_NUMERIC, "%s: conf[%lld] (item %d) is not finite",
                               fn, (long long)k, items[k]);
    }
    return GPUALS_OK;
}

/* Factorise A (f x f, upper triangle of row-major = lower of column-major) and solve A x = b in
 * place; GPUALS_ERR_NUMERIC for a pivot that is not clearly positive. */
static gpuals_status solve_spd(double *A, double *b, int f)
{
    /* Keep the diagonal to judge the pivots by. */
    double *diag = malloc((size_t)f * sizeof *diag);
    if (!diag) return gpuals_fail(GPUALS_ERR_NOMEM, "als_solve_row_exact: out of memory");
    for (int k = 0; k < f; k++) diag[k] = A[(size_t)k * f + k];

    /* Factorise; check every pivot. */
    lapack_int info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', f, A, f);
    double tol = ALS_PIVOT_RTOL * (double)f * DBL_EPSILON;
    for (int k = 0; info == 0 && k < f; k++) {
        double l = A[(size_t)k * f + k];
        if (!(l * l > tol * diag[k])) info = k + 1;
    }
    free(diag);
    if (info != 0)
        return gpuals_fail(info < 0 ? GPUALS_ERR_INTERNAL : GPUALS_ERR_NUMERIC,
                           "singular system (Cholesky pivot %d is not positive): try a larger "
                           "reg (--reg)", (int)info);

    /* Solve. */
    info = LAPACKE_dpotrs_work(LAPACK_COL_MAJOR, 'L', f, 1, A, f, b, f);
    if (info != 0)
        return gpuals_fail(GPUALS_ERR_INTERNAL, "als_solve_row_exact: dpotrs rejected argument "
                           "%d", (int)-info);
    return GPUALS_OK;
}

/* als.h: x_out (f floats) = the exact solution of one row's normal equations, computed in
 * double. USAGE for bad arguments (an item outside 0..n_items-1 is named), NUMERIC for a
 * non-finite confidence or a singular system, NOMEM; x_out is written only on success. */
gpuals_status als_solve_row_exact(const float *Y, int64_t n_items, int f, const double *YtY,
                                  double lambda, const int32_t *items, const float *conf,
                                  int64_t n, float *x_out)
{
    /* Check the arguments; an empty row is zero. */
    GPUALS_TRY(check_row_args(Y, n_items, f, lambda, items, conf, n, x_out));
    size_t fs = (size_t)f;
    if (n == 0) {
        memset(x_out, 0, fs * sizeof *x_out);
        return GPUALS_OK;
    }

    /* A = YtY + lambda I, b = 0. */
    double *A = malloc(fs * fs * sizeof *A), *b = calloc(fs, sizeof *b);
    double *y = malloc(fs * sizeof *y);
    if (!A || !b || !y) {
        free(A), free(b), free(y);
        return gpuals_fail(GPUALS_ERR_NOMEM, "als_solve_row_exact: out of memory at %d factors",
                           f);
    }
    if (YtY)
        memcpy(A, YtY, fs * fs * sizeof *A);
    else
        als_gram(Y, n_items, f, A);
    for (size_t k = 0; k < fs; k++) A[k * fs + k] += lambda;

    /* Each item: A += (|c| - 1) y y^T, and b += c y when c > 0. */
    for (int64_t k = 0; k < n; k++) {
        const float *yk = Y + (size_t)items[k] * fs;
        for (size_t j = 0; j < fs; j++) y[j] = yk[j];
        double c = conf[k], w = fabs(c) - 1;
        if (w != 0) cblas_dsyr(CblasRowMajor, CblasUpper, f, w, y, 1, A, f);
        if (c > 0) cblas_daxpy(f, c, y, 1, b, 1);
    }

    /* Solve and narrow to float. */
    gpuals_status st = solve_spd(A, b, f);
    if (st == GPUALS_OK)
        for (size_t j = 0; j < fs; j++) x_out[j] = (float)b[j];
    free(A), free(b), free(y);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Device dispatch                                                                            */
/* ------------------------------------------------------------------------------------------ */

/* Train in float64 on float factors: widen, fit, narrow (on success only). */
static gpuals_status fit_cpu_widened(const csr *Cui, const csr *Ciu, const gpuals_params *p,
                                     float *X, float *Y, gpuals_iter_fn cb, void *cb_user)
{
    /* Check the arguments before sizing anything from them. */
    GPUALS_TRY(als_check_fit_args("als_fit", Cui, Ciu, p, X, Y));
    size_t nx = (size_t)Cui->rows * (size_t)p->factors;
    size_t ny = (size_t)Ciu->rows * (size_t)p->factors;

    /* Widen. */
    double *X64 = malloc((nx ? nx : 1) * sizeof *X64), *Y64 = malloc((ny ? ny : 1) * sizeof *Y64);
    if (!X64 || !Y64) {
        free(X64), free(Y64);
        return gpuals_fail(GPUALS_ERR_NOMEM, "als_fit: out of memory for float64 factors");
    }
    for (size_t e = 0; e < nx; e++) X64[e] = X[e];
    for (size_t e = 0; e < ny; e++) Y64[e] = Y[e];

    /* Fit and narrow. */
    gpuals_status st = als_fit_cpu_f64(Cui, Ciu, p, X64, Y64, cb, cb_user);
    if (st == GPUALS_OK) {
        for (size_t e = 0; e < nx; e++) X[e] = (float)X64[e];
        for (size_t e = 0; e < ny; e++) Y[e] = (float)Y64[e];
    }
    free(X64), free(Y64);
    return st;
}

/* Decide where p asks to train: *gpu is set to 1 for the GPU; the note says why. */
static gpuals_status choose_device(const gpuals_params *p, int *gpu, char *note, size_t note_len)
{
    *gpu = 0;

    /* Only the CPU trains in float64. */
    if (p->device == GPUALS_DEVICE_CPU) {
        gpuals_put_note(note, note_len, "using the CPU (%d threads)", als_thread_count(p));
        return GPUALS_OK;
    }
    if (p->device != GPUALS_DEVICE_AUTO && p->device != GPUALS_DEVICE_GPU)
        return gpuals_fail(GPUALS_ERR_USAGE, "als_fit: unknown device %d", (int)p->device);
    if (p->dtype == GPUALS_DTYPE_FLOAT64) {
        if (p->device == GPUALS_DEVICE_GPU)
            return gpuals_fail(GPUALS_ERR_USAGE, "als_fit: float64 training runs on the CPU "
                               "only (use --device cpu or auto)");
        gpuals_put_note(note, note_len,
                        "using the CPU (%d threads): float64 training is CPU-only",
                        als_thread_count(p));
        return GPUALS_OK;
    }
    char probe[256];
    const int usable = gpuals_gpu_usable(probe, sizeof probe);

    /* GPU demands a device; AUTO takes one when there is one. */
    if (usable) {
        *gpu = 1;
        gpuals_put_note(note, note_len, "using GPU 0: %s", probe);
        return GPUALS_OK;
    }
    if (p->device == GPUALS_DEVICE_GPU)
        return gpuals_fail(GPUALS_ERR_NO_DEVICE, "no usable GPU: %s", probe);
    gpuals_put_note(note, note_len, "no usable GPU (%s); using the CPU (%d threads)", probe,
                    als_thread_count(p));
    return GPUALS_OK;
}

#ifdef GPUALS_HAVE_CUDA
/* The batched CG form the GPU uses. The library form (cuBLAS + cuSPARSE) is the default until
 * the fused kernel has been verified against it and the CPU on a GPU (bench/gpu-check.sh runs
 * both); GPUALS_CUDA_CG=fused or =library in the environment picks one explicitly. */
static cuda_cg_form cuda_cg_form_default(void)
{
    const char *v = getenv("GPUALS_CUDA_CG");
    return v != NULL && strcmp(v, "fused") == 0 ? CUDA_CG_FUSED : CUDA_CG_LIBRARY;
}

/* A callback and how many iterations it has been shown. */
typedef struct {
    gpuals_iter_fn cb;
    void *user;
    int calls;
} counted_cb;

static int count_and_forward(int iteration, double seconds, double loss, void *user)
{
    counted_cb *c = user;
    c->calls++;
    return c->cb(iteration, seconds, loss, c->user);
}
#endif

/* als.h: train on the device p->device names. CPU: als_fit_cpu, or the float64 engine on widened
 * copies when p->dtype is FLOAT64. GPU: cuda_als_fit with the CG form above; NO_DEVICE with
 * the probe's reason when no device is usable (or "built without CUDA"); USAGE with FLOAT64.
 * AUTO: the GPU when one is usable and the dtype is float32, else the CPU, and the CPU also when
 * the GPU reports too little memory before cb has been told of an iteration (with no cb, at
 * any point: X and Y are only written at the end); the note says which and why. */
gpuals_status als_fit(const csr *Cui, const csr *Ciu, const gpuals_params *p, float *X,
                      float *Y, gpuals_iter_fn cb, void *cb_user, gpuals_device *used,
                      char *note, size_t note_len)
{
    /* Choose the device. */
    if (note && note_len) note[0] = '\0';
    if (!p) return gpuals_fail(GPUALS_ERR_USAGE, "als_fit: NULL argument");
    int gpu = 0;
    GPUALS_TRY(choose_device(p, &gpu, note, note_len));
    if (used) *used = gpu ? GPUALS_DEVICE_GPU : GPUALS_DEVICE_CPU;

#ifdef GPUALS_HAVE_CUDA
    /* The GPU; under AUTO, a problem too large for its memory goes to the CPU instead (the
     * factors are copied back only at the end, so X and Y are still the starting point), unless
     * the callback has already seen an iteration: starting again would show it that iteration
     * twice. */
    if (gpu) {
        counted_cb counted = {cb, cb_user, 0};
        gpuals_status st = cuda_als_fit(Cui, Ciu, p, X, Y, cb ? count_and_forward : NULL,
                                        &counted, cuda_cg_form_default());
        if (st != GPUALS_ERR_NOMEM || p->device != GPUALS_DEVICE_AUTO || counted.calls > 0)
            return st;
        gpuals_put_note(note, note_len, GPUALS_NOTE_GPU_TOO_SMALL " (%s); using the CPU",
                        gpuals_last_error());
        if (used) *used = GPUALS_DEVICE_CPU;
    }
#endif

    /* The CPU. */
    if (p->dtype == GPUALS_DTYPE_FLOAT64) return fit_cpu_widened(Cui, Ciu, p, X, Y, cb, cb_user);
    return als_fit_cpu(Cui, Ciu, p, X, Y, cb, cb_user);
}
