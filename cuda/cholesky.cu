/*
 * cholesky.cu - exact row solves on the device: build each row's normal equations, factorise
 * and solve them with cuSOLVER's batched Cholesky, a batch of rows at a time.
 *
 * For row u of the side being solved (factors T) against the fixed factors O:
 *
 *     A_u = G + lambda_u I + sum_{i in u} (|c_i| - 1) o_i o_i^T      (f x f)
 *     b_u = sum_{i in u} max(c_i, 0) o_i
 *     A_u t_u = b_u     by potrf (A_u = L L^T) and potrs
 *
 * as in the `implicit` library's least_squares and the CPU engine's Cholesky solver.
 * One block builds one row's A_u and b_u: the row's entries are staged in shared memory a tile
 * at a time, and each thread owns a fixed set of A_u's elements, adding w_i o_i[j] o_i[k] for the
 * tile (the product o_i[j] o_i[k] is formed first, so A_u comes out exactly symmetric). b_u is
 * accumulated straight into t_u's row, which potrsBatched then solves in place. A row without
 * entries gets A = I and b = 0, hence t_u = 0. The batch size comes from the driver, sized to
 * the free memory. As on the CPU, a factorisation that fails (info > 0: A_u not positive
 * definite) or leaves a pivot that is not clearly positive (L_kk^2 <= f eps A_kk, the pivot
 * lost to rounding in a rank-deficient system) records the failure key of that row, and the
 * driver reports it as a singular system instead of returning a solution made of noise.
 */
#include <float.h>
#include <stdlib.h>

#include "als_device.cuh"

struct chol_batch {
    cusolverDnHandle_t solver;
    float *A;          /* max_batch matrices of f x f */
    float *diag;       /* max_batch x f: the diagonals before factorising */
    float **Aptr;      /* max_batch pointers into A */
    float **Bptr;      /* max_batch pointers to the rows of T being solved */
    int *info;         /* max_batch potrf results */
    int *info_rs;      /* potrs result (one value for the batch) */
    int64_t max_batch;
    int f;
    size_t held;
};

/* Largest tile of entries staged per block, and the shared memory budget for it. */
#define CHOL_MAX_TILE 32
#define CHOL_SMEM_BUDGET (48 * 1024)

/* ========================================================================================== */
/* Kernels                                                                                    */
/* ========================================================================================== */

/* ptr[b] = base + b * stride for b < n. */
static __global__ void chol_pointers_kernel(float **ptr, float *base, int64_t stride, int64_t n)
{
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; b < n; b += step)
        ptr[b] = base + b * stride;
}

/* Block b builds A_{r0+b} into A + b f^2 (its diagonal also into diag + b f) and b_{r0+b} into
 * T's row r0+b. */
static __global__ void chol_build_kernel(int64_t r0, int f, const int64_t *indptr,
                                         const int32_t *indices, const float *conf,
                                         const float *O, const float *G, double lambda,
                                         int reg_freq, float *A, float *diag, float *T,
                                         int tile)
{
    extern __shared__ float smem[];
    float *ys = smem, *wgt = ys + (size_t)tile * f, *tgt = wgt + tile;
    const int64_t b = blockIdx.x, u = r0 + b;
    const int64_t ff = (int64_t)f * f;
    float *Ab = A + b * ff;
    float *db = diag + b * f;
    float *tu = T + u * f;
    const int64_t start = indptr[u], end = indptr[u + 1];

    /* A row without entries: the identity and a zero right-hand side. */
    if (start == end) {
        for (int64_t e = threadIdx.x; e < ff; e += blockDim.x)
            Ab[e] = e % f == e / f ? 1.0f : 0.0f;
        for (int j = threadIdx.x; j < f; j += blockDim.x) {
            tu[j] = 0.0f;
            db[j] = 1.0f;
        }
        return;
    }

    /* A = G + lambda_u I, b = 0. */
    const float lam = (float)(reg_freq ? lambda * (double)(end - start) : lambda);
    for (int64_t e = threadIdx.x; e < ff; e += blockDim.x)
        Ab[e] = G[e] + (e % f == e / f ? lam : 0.0f);
    for (int j = threadIdx.x; j < f; j += blockDim.x) tu[j] = 0.0f;

    /* The entries, a tile at a time. */
    for (int64_t base = start; base < end; base += tile) {
        const int cnt = (int)min((int64_t)tile, end - base);
        __syncthreads(); /* the previous tile is no longer read */
        for (int64_t e = threadIdx.x; e < (int64_t)cnt * f; e += blockDim.x)
            ys[e] = O[(int64_t)indices[base + e / f] * f + e % f];
        for (int t = threadIdx.x; t < cnt; t += blockDim.x) {
            const float c = conf[base + t];
            wgt[t] = fabsf(c) - 1.0f;
            tgt[t] = c > 0.0f ? c : 0.0f;
        }
        __syncthreads();

        for (int64_t e = threadIdx.x; e < ff; e += blockDim.x) {
            const int j = (int)(e % f), k = (int)(e / f);
            float acc = Ab[e];
            for (int t = 0; t < cnt; ++t) acc += wgt[t] * (ys[t * f + j] * ys[t * f + k]);
            Ab[e] = acc;
        }
        for (int j = threadIdx.x; j < f; j += blockDim.x) {
            float acc = tu[j];
            for (int t = 0; t < cnt; ++t) acc += tgt[t] * ys[t * f + j];
            tu[j] = acc;
        }
    }

    /* The diagonal, to judge the pivots by. */
    __syncthreads();
    for (int k = threadIdx.x; k < f; k += blockDim.x) db[k] = Ab[(int64_t)k * f + k];
}

/* Record the failure key of the first row whose factorisation failed (info != 0) or left a
 * pivot L_kk with L_kk^2 <= tol * A_kk; one thread per (row, pivot). */
static __global__ void chol_pivot_kernel(const float *A, const float *diag, const int *info,
                                         int64_t n, int f, float tol, int64_t r0, int iteration,
                                         int side, unsigned long long *fail)
{
    const int64_t total = n * f;
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        const int64_t b = e / f, k = e % f;
        const float l = A[b * f * f + k * f + k];
        const bool bad = (k == 0 && info[b] != 0) || !(l * l > tol * diag[e]);
        if (bad) atomicMin(fail, cuda_fail_key(iteration, side, CUDA_FAIL_SINGULAR, r0 + b));
    }
}

/* ========================================================================================== */
/* Set-up and teardown                                                                        */
/* ========================================================================================== */

size_t chol_bytes_per_row(int f)
{
    return ((size_t)f * (size_t)f + (size_t)f) * sizeof(float) + 2 * sizeof(float *) +
           sizeof(int);
}

/* Entries staged per tile for f factors (0 when f is too large for the budget). */
static int chol_tile(int f)
{
    int64_t t = CHOL_SMEM_BUDGET / (((int64_t)f + 2) * (int64_t)sizeof(float));
    return (int)(t > CHOL_MAX_TILE ? CHOL_MAX_TILE : t);
}

gpuals_status chol_new(const dev_env *env, int f, int64_t max_batch, chol_batch **out)
{
    chol_batch *B = (chol_batch *)calloc(1, sizeof *B);
    *out = B;
    if (!B) return gpuals_fail(GPUALS_ERR_NOMEM, "chol_new: out of host memory");
    /* Too many factors for the build kernel's shared memory is a lack of device memory like
     * any other: under --device auto the CPU takes over. */
    if (chol_tile(f) < 1)
        return gpuals_fail(GPUALS_ERR_NOMEM,
                           "the GPU's Cholesky solver holds at most %d factors in shared memory "
                           "(asked for %d); use --solver cg or --device cpu",
                           (int)(CHOL_SMEM_BUDGET / sizeof(float)) - 2, f);
    if (max_batch < 1 || max_batch > INT32_MAX)
        return gpuals_fail(GPUALS_ERR_INTERNAL, "chol_new: batch of %lld rows",
                           (long long)max_batch);
    B->f = f;
    B->max_batch = max_batch;

    /* cuSOLVER on the fit's stream. */
    CUDA_TRY(cusolverDnCreate(&B->solver));
    CUDA_TRY(cusolverDnSetStream(B->solver, env->stream));

    /* The batch's matrices, pointers and results. */
    CUDA_STEP(cuda_alloc(&B->A, (size_t)max_batch * f * f, "Cholesky batch matrices"));
    CUDA_STEP(cuda_alloc(&B->diag, (size_t)max_batch * f, "Cholesky diagonals"));
    CUDA_STEP(cuda_alloc(&B->Aptr, (size_t)max_batch, "Cholesky matrix pointers"));
    CUDA_STEP(cuda_alloc(&B->Bptr, (size_t)max_batch, "Cholesky right-hand-side pointers"));
    CUDA_STEP(cuda_alloc(&B->info, (size_t)max_batch, "Cholesky results"));
    CUDA_STEP(cuda_alloc(&B->info_rs, 1, "Cholesky solve result"));
    chol_pointers_kernel<<<cuda_grid_for(max_batch, 256, 4096), 256, 0, env->stream>>>(
        B->Aptr, B->A, (int64_t)f * f, max_batch);
    CUDA_CHECK_LAUNCH("chol_pointers_kernel");
    B->held = (size_t)max_batch * chol_bytes_per_row(f) + sizeof(int);
    return GPUALS_OK;
}

size_t chol_held(const chol_batch *B) { return B ? B->held : 0; }

void chol_free(chol_batch *B)
{
    if (!B) return;
    cuda_free_quiet(B->A);
    cuda_free_quiet(B->diag);
    cuda_free_quiet(B->Aptr);
    cuda_free_quiet(B->Bptr);
    cuda_free_quiet(B->info);
    cuda_free_quiet(B->info_rs);
    if (B->solver) cusolverDnDestroy(B->solver);
    free(B);
}

/* ========================================================================================== */
/* Solve                                                                                      */
/* ========================================================================================== */

gpuals_status chol_solve(chol_batch *B, const dev_env *env, const half_iter *h)
{
    const dev_csr *C = h->C;
    const int f = h->f;
    const int tile = chol_tile(f);
    const size_t smem = (size_t)tile * ((size_t)f + 2) * sizeof(float);
    if (f != B->f) return gpuals_fail(GPUALS_ERR_INTERNAL, "chol_solve: f %d != %d", f, B->f);

    for (int64_t r0 = 0; r0 < C->rows; r0 += B->max_batch) {
        const int64_t nb = C->rows - r0 < B->max_batch ? C->rows - r0 : B->max_batch;

        /* Point the right-hand sides at this batch's rows of T (solved in place). */
        chol_pointers_kernel<<<cuda_grid_for(nb, 256, 4096), 256, 0, env->stream>>>(
            B->Bptr, h->self + r0 * f, f, nb);
        CUDA_CHECK_LAUNCH("chol_pointers_kernel");

        /* Build A_u and b_u, one block per row. */
        chol_build_kernel<<<(unsigned)nb, 256, smem, env->stream>>>(
            r0, f, C->indptr, C->indices, C->data, h->other, h->G, h->lambda, h->reg_freq, B->A,
            B->diag, h->self, tile);
        CUDA_CHECK_LAUNCH("chol_build_kernel");

        /* Factorise, record failures, solve. */
        CUDA_TRY(cusolverDnSpotrfBatched(B->solver, CUBLAS_FILL_MODE_LOWER, f, B->Aptr, f,
                                         B->info, (int)nb));
        chol_pivot_kernel<<<cuda_grid_for(nb * f, 256, 4096), 256, 0, env->stream>>>(
            B->A, B->diag, B->info, nb, f, (float)f * FLT_EPSILON, r0, h->iteration, h->side,
            h->fail);
        CUDA_CHECK_LAUNCH("chol_pivot_kernel");
        CUDA_TRY(cusolverDnSpotrsBatched(B->solver, CUBLAS_FILL_MODE_LOWER, f, 1, B->Aptr, f,
                                         B->Bptr, f, B->info_rs, (int)nb));
    }
    return GPUALS_OK;
}
