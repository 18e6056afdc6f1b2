/*
 * als_fit.cu - cuda_als_fit: implicit-feedback ALS trained on the device, with the contract of
 * the CPU engine (host/als.h, host/als_engine.h) so that either can stand in for the other.
 *
 * One fit:
 *   1. check the arguments as the CPU engine does (same statuses, similar messages), including
 *      every confidence being finite, before touching the device;
 *   2. select device 0, create a stream and the cuBLAS handle, and compare the memory the fit
 *      needs with the free device memory (GPUALS_ERR_NOMEM with both figures if it does not
 *      fit: under --device auto, als_fit then trains on the CPU instead);
 *   3. upload both CSR orientations and both factor matrices, once;
 *   4. per iteration: G = YtY (double, rounded to float; reused from the previous loss when
 *      that computed it), solve the users, check them, G = XtX, solve the items, check them,
 *      then (when asked) YtY again and the loss; read back the failure key (and the loss) -
 *      the one synchronisation per iteration - and call the callback;
 *   5. copy X and Y back, once, and release everything.
 *
 * The solver is the fused CG kernel (cg_fused.cu), the library CG form (cg_library.cu) or the
 * batched Cholesky (cholesky.cu). A failure found on the device (a non-finite factor, a
 * singular system) is a 64-bit key kept with atomicMin (cuda_common.cuh), so the earliest
 * iteration, then users before items, then the lowest row is reported, as the CPU reports the
 * lowest row of the half-iteration that failed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "als.h"
#include "als_device.cuh"

/* Phases timed with CUDA events when stats are asked for. */
enum { EV_START, EV_GRAM1, EV_USERS, EV_GRAM2, EV_ITEMS, EV_LOSS, EV_COUNT };

/* Everything one fit holds; fit_teardown releases whatever is set. */
typedef struct {
    dev_env env;
    dev_csr cui, ciu;
    float *X, *Y;          /* users x f, items x f */
    float *G;              /* the Gram matrix being solved against, float */
    double *Gd, *Gx;       /* double Gram matrices: of Y (or scratch), of X */
    double *wide;          /* dev_gram's widened rows */
    unsigned long long *fail;
    double *loss_parts, *loss_out;
    cg_lib *lib;
    chol_batch *chol;
    cudaEvent_t ev[EV_COUNT];
    int have_events;
    size_t bytes;          /* device memory allocated */
} fit_state;

/* ========================================================================================== */
/* Checks                                                                                     */
/* ========================================================================================== */


/* The arguments, before anything touches the device. */
static gpuals_status check_args(const csr *Cui, const csr *Ciu, const gpuals_params *p,
                                const float *X, const float *Y, cuda_cg_form form)
{
    const char *fn = "cuda_als_fit";

    /* What the CPU engine checks: pointers, settings, shapes and every entry of both. */
    GPUALS_TRY(als_check_fit_args(fn, Cui, Ciu, p, X, Y));

    /* What only the device path needs: float32, a known CG form, 32-bit row and column
     * counts for the kernels' indexing. */
    if (p->dtype != GPUALS_DTYPE_FLOAT32)
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: float64 training is not supported on the GPU "
                           "(it runs on the CPU only: use --device cpu or auto)", fn);
    if (form != CUDA_CG_FUSED && form != CUDA_CG_LIBRARY)
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: unknown CG form %d", fn, (int)form);
    if (Cui->rows > INT32_MAX || Cui->cols > INT32_MAX)
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: the matrix has %lld x %lld rows and columns; "
                           "the GPU path takes at most 2^31 - 1 of each", fn,
                           (long long)Cui->rows, (long long)Cui->cols);
    return GPUALS_OK;
}

/* ========================================================================================== */
/* Set-up and teardown                                                                        */
/* ========================================================================================== */

/* The device memory a fit needs before the solver's own buffers. */
static size_t base_bytes(const csr *Cui, const csr *Ciu, int f)
{
    const size_t fs = (size_t)f;
    size_t b = 0;
    b += ((size_t)Cui->rows + 1 + (size_t)Ciu->rows + 1) * sizeof(int64_t);   /* indptr */
    b += 2 * (size_t)Cui->nnz * (sizeof(int32_t) + sizeof(float));            /* entries */
    b += ((size_t)Cui->rows + (size_t)Ciu->rows) * fs * sizeof(float);        /* X, Y */
    b += fs * fs * (sizeof(float) + 2 * sizeof(double));                       /* G, Gd, Gx */
    b += (size_t)dev_gram_chunk_rows(f) * fs * sizeof(double);                 /* wide */
    b += (DEV_LOSS_PARTS + 3) * sizeof(double) + sizeof(unsigned long long);
    return b;
}

/* Upload one CSR into d (allocating its arrays). */
static gpuals_status upload_csr(fit_state *s, const csr *C, dev_csr *d, const char *what)
{
    d->rows = C->rows;
    d->cols = C->cols;
    d->nnz = C->nnz;
    CUDA_STEP(cuda_alloc(&d->indptr, (size_t)C->rows + 1, what));
    CUDA_STEP(cuda_alloc(&d->indices, (size_t)C->nnz, what));
    CUDA_STEP(cuda_alloc(&d->data, (size_t)C->nnz, what));
    s->bytes += ((size_t)C->rows + 1) * sizeof(int64_t) + (size_t)C->nnz * 8;
    CUDA_TRY(cudaMemcpyAsync(d->indptr, C->indptr, ((size_t)C->rows + 1) * sizeof(int64_t),
                             cudaMemcpyHostToDevice, s->env.stream));
    if (C->nnz > 0) {
        CUDA_TRY(cudaMemcpyAsync(d->indices, C->indices, (size_t)C->nnz * sizeof(int32_t),
                                 cudaMemcpyHostToDevice, s->env.stream));
        CUDA_TRY(cudaMemcpyAsync(d->data, C->data, (size_t)C->nnz * sizeof(float),
                                 cudaMemcpyHostToDevice, s->env.stream));
    }
    return GPUALS_OK;
}

/* Stream, cuBLAS, device attributes and (for stats) events. */
static gpuals_status setup_env(fit_state *s, int want_events)
{
    CUDA_TRY(cudaStreamCreate(&s->env.stream));
    CUDA_TRY(cublasCreate(&s->env.blas));
    CUDA_TRY(cublasSetStream(s->env.blas, s->env.stream));
    CUDA_TRY(cublasSetMathMode(s->env.blas, CUBLAS_DEFAULT_MATH));
    CUDA_TRY(cudaDeviceGetAttribute(&s->env.sm_count, cudaDevAttrMultiProcessorCount, 0));
    CUDA_TRY(cudaDeviceGetAttribute(&s->env.max_smem_optin,
                                    cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
    if (want_events) {
        /* fit_teardown destroys every event created, also when a later creation fails. */
        for (int e = 0; e < EV_COUNT; e++) CUDA_TRY(cudaEventCreate(&s->ev[e]));
        s->have_events = 1;
    }
    return GPUALS_OK;
}

/* Check the memory, allocate the shared buffers, upload the data and the factors. */
static gpuals_status setup_data(fit_state *s, const csr *Cui, const csr *Ciu,
                                const gpuals_params *p, const float *X, const float *Y,
                                cuda_cg_form form, double *upload_ms)
{
    const int f = p->factors;
    const size_t fs = (size_t)f;
    const int64_t max_rows = Cui->rows > Ciu->rows ? Cui->rows : Ciu->rows;

    /* What the fit needs, against what is free. */
    size_t need = base_bytes(Cui, Ciu, f);
    if (p->solver == GPUALS_SOLVER_CG && form == CUDA_CG_LIBRARY)
        need += cg_lib_bytes(max_rows, Cui->nnz, Cui->rows, Ciu->rows, f);
    if (p->solver == GPUALS_SOLVER_CHOLESKY) need += chol_bytes_per_row(f);
    CUDA_STEP(cuda_check_fits(need, "training on the GPU", NULL));

    /* Shared buffers. */
    CUDA_STEP(cuda_alloc(&s->X, (size_t)Cui->rows * fs, "user factors"));
    CUDA_STEP(cuda_alloc(&s->Y, (size_t)Ciu->rows * fs, "item factors"));
    CUDA_STEP(cuda_alloc(&s->G, fs * fs, "the Gram matrix"));
    CUDA_STEP(cuda_alloc(&s->Gd, fs * fs, "the double Gram matrix"));
    CUDA_STEP(cuda_alloc(&s->Gx, fs * fs, "the double Gram matrix of X"));
    CUDA_STEP(cuda_alloc(&s->wide, (size_t)dev_gram_chunk_rows(f) * fs, "widened rows"));
    CUDA_STEP(cuda_alloc(&s->fail, 1, "the failure key"));
    CUDA_STEP(cuda_alloc(&s->loss_parts, DEV_LOSS_PARTS, "loss partial sums"));
    CUDA_STEP(cuda_alloc(&s->loss_out, 3, "the loss"));
    s->bytes += ((size_t)Cui->rows + (size_t)Ciu->rows) * fs * sizeof(float) +
                fs * fs * (sizeof(float) + 2 * sizeof(double)) +
                (size_t)dev_gram_chunk_rows(f) * fs * sizeof(double) +
                (DEV_LOSS_PARTS + 3) * sizeof(double) + sizeof(unsigned long long);

    /* Upload, timed when asked. */
    if (s->have_events) CUDA_TRY(cudaEventRecord(s->ev[EV_START], s->env.stream));
    CUDA_STEP(upload_csr(s, Cui, &s->cui, "the user matrix"));
    CUDA_STEP(upload_csr(s, Ciu, &s->ciu, "the item matrix"));
    /* A side without rows has no device buffer (cuda_alloc of 0 gives NULL): copy nothing. */
    if (Cui->rows > 0)
        CUDA_TRY(cudaMemcpyAsync(s->X, X, (size_t)Cui->rows * fs * sizeof(float),
                                 cudaMemcpyHostToDevice, s->env.stream));
    if (Ciu->rows > 0)
        CUDA_TRY(cudaMemcpyAsync(s->Y, Y, (size_t)Ciu->rows * fs * sizeof(float),
                                 cudaMemcpyHostToDevice, s->env.stream));
    CUDA_TRY(cudaMemsetAsync(s->fail, 0xff, sizeof *s->fail, s->env.stream));
    if (s->have_events) {
        float ms = 0;
        CUDA_TRY(cudaEventRecord(s->ev[EV_GRAM1], s->env.stream));
        CUDA_TRY(cudaEventSynchronize(s->ev[EV_GRAM1]));
        CUDA_TRY(cudaEventElapsedTime(&ms, s->ev[EV_START], s->ev[EV_GRAM1]));
        *upload_ms = ms;
    }
    return GPUALS_OK;
}

/* The solver's own state: library CG buffers, or Cholesky batches sized to the free memory. */
static gpuals_status setup_solver(fit_state *s, const gpuals_params *p, cuda_cg_form form)
{
    const int f = p->factors;
    if (p->solver == GPUALS_SOLVER_CG) {
        if (form != CUDA_CG_LIBRARY) return GPUALS_OK;
        CUDA_STEP(cg_lib_new(&s->env, &s->cui, &s->ciu, s->X, s->Y, f, &s->lib));
        s->bytes += cg_lib_held(s->lib);
        return GPUALS_OK;
    }

    /* Cholesky: as many rows per batch as fit in most of the free memory (cuSOLVER and the
     * allocator keep the rest), at most 65536, at least one. */
    size_t free_b = 0;
    CUDA_STEP(cuda_check_fits(chol_bytes_per_row(f), "one row of the Cholesky solver", &free_b));
    const size_t reserve = ((size_t)64 << 20) + free_b / 10;
    const size_t usable = free_b > reserve ? free_b - reserve : 0;
    int64_t batch = (int64_t)(usable / chol_bytes_per_row(f));
    const int64_t max_rows = s->cui.rows > s->ciu.rows ? s->cui.rows : s->ciu.rows;
    if (batch > max_rows) batch = max_rows > 0 ? max_rows : 1; /* 0 x 0 trains nothing */
    if (batch > 65536) batch = 65536;
    if (batch < 1)
        return gpuals_fail(GPUALS_ERR_NOMEM, "the Cholesky solver needs %.1f MiB of device "
                           "memory for one row's %d x %d system, but only %.1f MiB is free",
                           cuda_mib(chol_bytes_per_row(f) + reserve), f, f, cuda_mib(free_b));
    CUDA_STEP(chol_new(&s->env, f, batch, &s->chol));
    s->bytes += chol_held(s->chol);
    return GPUALS_OK;
}

/* Release everything (errors ignored, so the first failure's message survives). */
static void fit_teardown(fit_state *s)
{
    cg_lib_free(s->lib);
    chol_free(s->chol);
    cuda_free_quiet(s->cui.indptr);
    cuda_free_quiet(s->cui.indices);
    cuda_free_quiet(s->cui.data);
    cuda_free_quiet(s->ciu.indptr);
    cuda_free_quiet(s->ciu.indices);
    cuda_free_quiet(s->ciu.data);
    cuda_free_quiet(s->X);
    cuda_free_quiet(s->Y);
    cuda_free_quiet(s->G);
    cuda_free_quiet(s->Gd);
    cuda_free_quiet(s->Gx);
    cuda_free_quiet(s->wide);
    cuda_free_quiet(s->fail);
    cuda_free_quiet(s->loss_parts);
    cuda_free_quiet(s->loss_out);
    for (int e = 0; e < EV_COUNT; e++)
        if (s->ev[e]) cudaEventDestroy(s->ev[e]);
    if (s->env.blas) cublasDestroy(s->env.blas);
    if (s->env.stream) cudaStreamDestroy(s->env.stream);
    cudaGetLastError();
}

/* ========================================================================================== */
/* Iterations                                                                                 */
/* ========================================================================================== */

/* Seconds on a monotonic clock. */
static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Record phase event e when timing. */
static gpuals_status mark(fit_state *s, int e)
{
    if (s->have_events) CUDA_TRY(cudaEventRecord(s->ev[e], s->env.stream));
    return GPUALS_OK;
}

/* One half-iteration with the chosen solver, then the finite check of its factors. */
static gpuals_status solve_side(fit_state *s, const gpuals_params *p, cuda_cg_form form,
                                int side, int iteration)
{
    half_iter h;
    h.C = side ? &s->ciu : &s->cui;
    h.self = side ? s->Y : s->X;
    h.other = side ? s->X : s->Y;
    h.G = s->G;
    h.f = p->factors;
    h.lambda = p->reg;
    h.reg_freq = p->reg_scale == GPUALS_REG_FREQUENCY;
    h.cg_steps = p->cg_steps;
    h.side = side;
    h.iteration = iteration;
    h.fail = s->fail;
    if (p->solver == GPUALS_SOLVER_CHOLESKY)
        CUDA_STEP(chol_solve(s->chol, &s->env, &h));
    else if (form == CUDA_CG_LIBRARY)
        CUDA_STEP(cg_lib_solve(s->lib, &s->env, &h));
    else
        CUDA_STEP(cg_fused_solve(&s->env, &h));
    return dev_check_finite(&s->env, h.self, h.C->rows, h.f, iteration, side, s->fail);
}

/* The status for a failure key read back from the device (GPUALS_OK for none), reported as
 * the CPU engine reports it (the GPU's Cholesky does not say which pivot failed). */
static gpuals_status failure_status(unsigned long long key)
{
    if (key == CUDA_NO_FAILURE) return GPUALS_OK;
    return als_fail_row(cuda_fail_side(key), (int64_t)cuda_fail_row(key),
                        cuda_fail_kind(key) == CUDA_FAIL_SINGULAR ? ALS_FAIL_SINGULAR
                                                                  : ALS_FAIL_NONFINITE,
                        cuda_fail_iteration(key), 0);
}

/* Milliseconds between two recorded events. */
static gpuals_status elapsed(fit_state *s, int a, int b, double *acc)
{
    float ms = 0;
    CUDA_TRY(cudaEventElapsedTime(&ms, s->ev[a], s->ev[b]));
    *acc += ms;
    return GPUALS_OK;
}

/* Add this iteration's phase times to stats (events already complete). */
static gpuals_status add_times(fit_state *s, int iteration, int with_loss, cuda_fit_stats *st)
{
    double it_ms = 0;
    CUDA_STEP(elapsed(s, EV_START, EV_GRAM1, &st->gram_ms));
    CUDA_STEP(elapsed(s, EV_GRAM1, EV_USERS, &st->users_ms));
    CUDA_STEP(elapsed(s, EV_USERS, EV_GRAM2, &st->gram_ms));
    CUDA_STEP(elapsed(s, EV_GRAM2, EV_ITEMS, &st->items_ms));
    if (with_loss) CUDA_STEP(elapsed(s, EV_ITEMS, EV_LOSS, &st->loss_ms));
    CUDA_STEP(elapsed(s, EV_START, EV_ITEMS, &it_ms));
    st->iters_ms += it_ms;
    if (iteration == 1) st->first_iter_ms = it_ms;
    return GPUALS_OK;
}

/* The iterations (file comment, step 4). */
static gpuals_status run_loop(fit_state *s, const csr *Cui, const gpuals_params *p,
                              cuda_cg_form form, gpuals_iter_fn cb, void *cb_user,
                              cuda_fit_stats *stats)
{
    const int f = p->factors;
    const int reg_freq = p->reg_scale == GPUALS_REG_FREQUENCY;
    const double weight = [&] {
        double c = 0;
        for (int64_t k = 0; k < Cui->nnz; k++) c += fabs((double)Cui->data[k]);
        return c + (double)Cui->rows * (double)Cui->cols - (double)Cui->nnz;
    }();
    int gy_fresh = 0;

    for (int it = 1; it <= p->iters; it++) {
        const double t0 = now_seconds();

        /* Users against Y. */
        CUDA_STEP(mark(s, EV_START));
        if (!gy_fresh) CUDA_STEP(dev_gram(&s->env, s->Y, s->ciu.rows, f, s->wide, s->Gd, s->G));
        CUDA_STEP(mark(s, EV_GRAM1));
        CUDA_STEP(solve_side(s, p, form, 0, it));
        CUDA_STEP(mark(s, EV_USERS));

        /* Items against the new X. */
        CUDA_STEP(dev_gram(&s->env, s->X, s->cui.rows, f, s->wide, s->Gx, s->G));
        CUDA_STEP(mark(s, EV_GRAM2));
        CUDA_STEP(solve_side(s, p, form, 1, it));
        CUDA_STEP(mark(s, EV_ITEMS));
        gy_fresh = 0;

        /* The loss needs YtY of the new Y, which the next iteration reuses. */
        if (p->compute_loss) {
            CUDA_STEP(dev_gram(&s->env, s->Y, s->ciu.rows, f, s->wide, s->Gd, s->G));
            gy_fresh = 1;
            CUDA_STEP(dev_loss_parts(&s->env, &s->cui, &s->ciu, s->X, s->Y, s->Gx, s->Gd, f,
                                     reg_freq, s->loss_parts, s->loss_out));
            CUDA_STEP(mark(s, EV_LOSS));
        }

        /* Read back the failure key and the loss: the iteration's one synchronisation. */
        unsigned long long key = CUDA_NO_FAILURE;
        double parts[3] = {0, 0, 0};
        CUDA_TRY(cudaMemcpyAsync(&key, s->fail, sizeof key, cudaMemcpyDeviceToHost,
                                 s->env.stream));
        if (p->compute_loss)
            CUDA_TRY(cudaMemcpyAsync(parts, s->loss_out, sizeof parts, cudaMemcpyDeviceToHost,
                                     s->env.stream));
        CUDA_TRY(cudaStreamSynchronize(s->env.stream));
        CUDA_STEP(failure_status(key));
        if (stats) {
            CUDA_STEP(add_times(s, it, p->compute_loss, stats));
            stats->iterations = it;
        }

        /* Report; a non-zero answer stops training here. */
        double loss = NAN;
        if (p->compute_loss && weight > 0)  /* as als_loss_grams: NaN without any weight */
            loss = (parts[0] + p->reg * (parts[1] + parts[2])) / weight;
        if (cb && cb(it, now_seconds() - t0, loss, cb_user)) break;
    }
    return GPUALS_OK;
}

/* Everything after the checks; s is torn down by the caller. */
static gpuals_status fit_run(fit_state *s, const csr *Cui, const csr *Ciu,
                             const gpuals_params *p, float *X, float *Y, gpuals_iter_fn cb,
                             void *cb_user, cuda_cg_form form, cuda_fit_stats *stats)
{
    /* Device, handles, and the form that fits this f. */
    CUDA_STEP(cuda_select_device());
    CUDA_STEP(setup_env(s, stats != NULL));
    if (p->solver == GPUALS_SOLVER_CG && form == CUDA_CG_FUSED &&
        !cg_fused_fits(&s->env, p->factors))
        form = CUDA_CG_LIBRARY;
    if (stats) stats->form_used = form;

    /* Data, solver state, iterations. */
    double upload_ms = 0;
    CUDA_STEP(setup_data(s, Cui, Ciu, p, X, Y, form, &upload_ms));
    CUDA_STEP(setup_solver(s, p, form));
    CUDA_STEP(run_loop(s, Cui, p, form, cb, cb_user, stats));

    /* The factors come back once. */
    const size_t fs = (size_t)p->factors;
    CUDA_STEP(mark(s, EV_START));
    if (Cui->rows > 0)
        CUDA_TRY(cudaMemcpyAsync(X, s->X, (size_t)Cui->rows * fs * sizeof(float),
                                 cudaMemcpyDeviceToHost, s->env.stream));
    if (Ciu->rows > 0)
        CUDA_TRY(cudaMemcpyAsync(Y, s->Y, (size_t)Ciu->rows * fs * sizeof(float),
                                 cudaMemcpyDeviceToHost, s->env.stream));
    CUDA_STEP(mark(s, EV_GRAM1));
    CUDA_TRY(cudaStreamSynchronize(s->env.stream));
    if (stats) {
        double down = 0;
        CUDA_STEP(elapsed(s, EV_START, EV_GRAM1, &down));
        stats->upload_ms = upload_ms;
        stats->download_ms = down;
        stats->device_bytes = s->bytes;
    }
    return GPUALS_OK;
}

/* ========================================================================================== */
/* Public API                                                                                 */
/* ========================================================================================== */

gpuals_status cuda_als_fit_ex(const csr *Cui, const csr *Ciu, const gpuals_params *p, float *X,
                              float *Y, gpuals_iter_fn cb, void *cb_user, cuda_cg_form form,
                              cuda_fit_stats *stats)
{
    /* Check the arguments; zero iterations leave the factors as they are. */
    if (stats) memset(stats, 0, sizeof *stats);
    CUDA_STEP(check_args(Cui, Ciu, p, X, Y, form));
    if (stats) stats->form_used = form;
    if (p->iters == 0) return GPUALS_OK;

    /* Train, then release the device state whatever happened. */
    fit_state s;
    memset(&s, 0, sizeof s);
    gpuals_status st = fit_run(&s, Cui, Ciu, p, X, Y, cb, cb_user, form, stats);
    fit_teardown(&s);
    return st;
}

gpuals_status cuda_als_fit(const csr *Cui, const csr *Ciu, const gpuals_params *p, float *X,
                           float *Y, gpuals_iter_fn cb, void *cb_user, cuda_cg_form form)
{
    return cuda_als_fit_ex(Cui, Ciu, p, X, Y, cb, cb_user, form, NULL);
}
