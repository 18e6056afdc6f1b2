/*
 * cg_library.cu - batched conjugate gradient, library form: each CG step for all rows of a side
 * is a short sequence of library calls and two small kernels, the sparse part never written as
 * a per-row loop of ours.
 *
 * The maths is the fused form's (cg_fused.cu), written for the whole side at once. With T the
 * side's factors (rows x f), O the other side's, S a sparse matrix with the pattern of C and
 * P, R, AP dense rows x f:
 *
 *   residual  AP = T G                      (cuBLAS GEMM, the dense part)
 *             S  = (T O^T) o spy(C)         (cuSPARSE SDDMM: s_ui = t_u . o_i)
 *             s_ui = max(c,0) - (|c|-1) s_ui  (scaling kernel)
 *             AP = S O - AP                 (cuSPARSE SpMM, beta = -1)
 *             R = AP - lambda_u T;  P = R;  rs = r.r   (row kernel; empty rows -> 0)
 *   step      AP = P G                      (GEMM)
 *             S  = (P O^T) o spy(C);  s_ui = (|c|-1) s_ui
 *             AP = S O + AP                 (SpMM, beta = 1)
 *             Ap = AP + lambda_u P; alpha = rs / p.Ap; t += alpha p; r -= alpha Ap;
 *             rs' = r.r; p = r + (rs'/rs) p      (row kernel, one warp per row)
 *
 * A row whose r.r falls below 1e-20 is marked done and left alone by later steps (the CPU
 * breaks out of its loop there); the library calls still compute its products, which are then
 * ignored. Index types: cuSPARSE wants the row pointers and the column indices of one type, so
 * while nnz and every dense operand's element count fit in 32 bits the side keeps a 32-bit copy
 * of its row pointers, and beyond that a 64-bit copy of its column indices. SDDMM's B operand is O^T, described as what the memory of
 * O already is when read column-major: an f x cols matrix with leading dimension f, used
 * without transposition (SpMM reads the same memory as row-major cols x f). Each (side,
 * operation) pair has a workspace of its own, so no call can see another's scratch state.
 */
#include <stdlib.h>
#include <string.h>

#include "als_device.cuh"

/* One side's library objects. */
typedef struct {
    const dev_csr *C;
    float *self;                    /* the side's factors (descriptor `selfm` points here) */
    int32_t *indptr32;              /* 32-bit row pointers (32-bit path) */
    int64_t *indices64;             /* 64-bit column indices (64-bit path) */
    cusparseSpMatDescr_t S;         /* pattern of C, values in cg_lib.s */
    cusparseDnMatDescr_t selfm, pm, apm, otherm;
    cusparseDnMatDescr_t otherc;    /* the same memory as f x cols column-major (SDDMM's B) */
    void *sddmm_work, *spmm_work;   /* the two calls' workspaces */
    size_t sddmm_bytes, spmm_bytes;
} lib_side;

struct cg_lib {
    cusparseHandle_t sp;
    float *R, *P, *AP;              /* max_rows x f each */
    float *s;                       /* nnz sampled values */
    float *rs;                      /* per-row r.r */
    unsigned char *done;            /* per-row convergence flag */
    size_t held;
    int index64;
    int f;
    lib_side side[2];
};

/* ========================================================================================== */
/* Kernels                                                                                    */
/* ========================================================================================== */

static __global__ void narrow_indptr_kernel(const int64_t *in, int32_t *out, int64_t n)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += stride)
        out[e] = (int32_t)in[e];
}

static __global__ void widen_indices_kernel(const int32_t *in, int64_t *out, int64_t n)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += stride)
        out[e] = in[e];
}

/* s = max(c,0) - (|c|-1) s for the residual, else s = (|c|-1) s, entry by entry. */
static __global__ void conf_scale_kernel(int64_t nnz, const float *conf, float *s, int residual)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < nnz; k += stride) {
        const float c = conf[k], wgt = fabsf(c) - 1.0f, d = s[k];
        s[k] = residual ? (c > 0.0f ? c : 0.0f) - wgt * d : wgt * d;
    }
}

/* lambda_u of a row with n entries. */
static __device__ __forceinline__ float row_lambda(double lambda, int reg_freq, int64_t n)
{
    return (float)(reg_freq ? lambda * (double)n : lambda);
}

/* Start of CG, one warp per row: R = AP - lambda_u T, P = R, rs = r.r, done = rs < 1e-20;
 * rows without entries get T = 0 and done. */
static __global__ void cg_lib_start_kernel(int64_t rows, int f, const int64_t *indptr, float *T,
                                           const float *AP, float *R, float *P, float *rs,
                                           unsigned char *done, double lambda, int reg_freq)
{
    const int lane = threadIdx.x & 31;
    const int64_t nwarps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t u = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; u < rows;
         u += nwarps) {
        const int64_t n = indptr[u + 1] - indptr[u];
        const int64_t off = u * f;
        if (n == 0) {
            for (int j = lane; j < f; j += 32) T[off + j] = 0.0f;
            if (lane == 0) {
                rs[u] = 0.0f;
                done[u] = 1;
            }
            continue;
        }
        const float lam = row_lambda(lambda, reg_freq, n);
        float loc = 0.0f;
        for (int j = lane; j < f; j += 32) {
            const float r = AP[off + j] - lam * T[off + j];
            R[off + j] = r;
            P[off + j] = r;
            loc += r * r;
        }
        const float s = warp_sum(loc);
        if (lane == 0) {
            rs[u] = s;
            done[u] = s < 1e-20f ? 1 : 0;
        }
    }
}

/* One CG step, one warp per row not yet done (see the file comment). */
static __global__ void cg_lib_step_kernel(int64_t rows, int f, const int64_t *indptr, float *T,
                                          const float *AP, float *R, float *P, float *rs,
                                          unsigned char *done, double lambda, int reg_freq)
{
    const int lane = threadIdx.x & 31;
    const int64_t nwarps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t u = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; u < rows;
         u += nwarps) {
        /* Read the row's state once: lane 0 rewrites it below. */
        if (done[u]) continue;
        const float rs_old = rs[u];
        const int64_t off = u * f;
        const float lam = row_lambda(lambda, reg_freq, indptr[u + 1] - indptr[u]);

        /* alpha = rs / p.Ap with Ap = AP + lambda_u p. */
        float loc = 0.0f;
        for (int j = lane; j < f; j += 32) {
            const float p = P[off + j];
            loc += p * (AP[off + j] + lam * p);
        }
        const float alpha = rs_old / warp_sum(loc);

        /* t += alpha p, r -= alpha Ap, and the new r.r. */
        loc = 0.0f;
        for (int j = lane; j < f; j += 32) {
            const float p = P[off + j];
            const float r = R[off + j] - alpha * (AP[off + j] + lam * p);
            T[off + j] += alpha * p;
            R[off + j] = r;
            loc += r * r;
        }
        const float rs_new = warp_sum(loc);
        if (rs_new < 1e-20f) {
            if (lane == 0) done[u] = 1;
            continue;
        }

        /* p = r + (rs'/rs) p. */
        const float beta = rs_new / rs_old;
        for (int j = lane; j < f; j += 32) P[off + j] = R[off + j] + beta * P[off + j];
        if (lane == 0) rs[u] = rs_new;
    }
}

/* ========================================================================================== */
/* Set-up and teardown                                                                        */
/* ========================================================================================== */

/* Whether the sparse descriptors take 64-bit indices: when nnz does not fit in 32 bits, or a
 * dense operand holds more than 2^31 - 1 elements (the library's offsets into it follow the
 * index type). */
static int needs_index64(int64_t max_rows, int64_t nnz, int f)
{
    return nnz > INT32_MAX || max_rows > INT32_MAX / f;
}

size_t cg_lib_bytes(int64_t max_rows, int64_t nnz, int64_t users, int64_t items, int f)
{
    size_t b = 3 * (size_t)max_rows * (size_t)f * sizeof(float);   /* R, P, AP */
    b += (size_t)nnz * sizeof(float);                                /* s */
    b += (size_t)max_rows * (sizeof(float) + 1);                     /* rs, done */
    if (!needs_index64(max_rows, nnz, f))
        b += (size_t)(users + 1 + items + 1) * sizeof(int32_t);      /* 32-bit row pointers */
    else
        b += 2 * (size_t)nnz * sizeof(int64_t);                      /* 64-bit columns */
    return b;
}

/* Index copies and descriptors of one side; `self` and `other` are its factor matrices. */
static gpuals_status side_setup(cg_lib *L, const dev_env *env, lib_side *sd, const dev_csr *C,
                                float *self, float *other)
{
    const int f = L->f;
    sd->C = C;
    sd->self = self;
    if (C->nnz == 0) return GPUALS_OK; /* solved by zeroing; no cuSPARSE objects needed */

    /* Row pointers and column indices of one index type. */
    void *rowptr, *colind;
    cusparseIndexType_t it;
    if (!L->index64) {
        CUDA_STEP(cuda_alloc(&sd->indptr32, (size_t)C->rows + 1, "32-bit row pointers"));
        narrow_indptr_kernel<<<cuda_grid_for(C->rows + 1, 256, 4096), 256, 0, env->stream>>>(
            C->indptr, sd->indptr32, C->rows + 1);
        CUDA_CHECK_LAUNCH("narrow_indptr_kernel");
        rowptr = sd->indptr32;
        colind = C->indices;
        it = CUSPARSE_INDEX_32I;
    } else {
        CUDA_STEP(cuda_alloc(&sd->indices64, (size_t)C->nnz, "64-bit column indices"));
        widen_indices_kernel<<<cuda_grid_for(C->nnz, 256, 65535), 256, 0, env->stream>>>(
            C->indices, sd->indices64, C->nnz);
        CUDA_CHECK_LAUNCH("widen_indices_kernel");
        rowptr = C->indptr;
        colind = sd->indices64;
        it = CUSPARSE_INDEX_64I;
    }

    /* The sparse matrix (values: the shared sample buffer) and the dense views. */
    CUDA_TRY(cusparseCreateCsr(&sd->S, C->rows, C->cols, C->nnz, rowptr, colind, L->s, it, it,
                               CUSPARSE_INDEX_BASE_ZERO, CUDA_R_32F));
    CUDA_TRY(cusparseCreateDnMat(&sd->selfm, C->rows, f, f, self, CUDA_R_32F,
                                 CUSPARSE_ORDER_ROW));
    CUDA_TRY(cusparseCreateDnMat(&sd->pm, C->rows, f, f, L->P, CUDA_R_32F, CUSPARSE_ORDER_ROW));
    CUDA_TRY(cusparseCreateDnMat(&sd->apm, C->rows, f, f, L->AP, CUDA_R_32F,
                                 CUSPARSE_ORDER_ROW));
    CUDA_TRY(cusparseCreateDnMat(&sd->otherm, C->cols, f, f, other, CUDA_R_32F,
                                 CUSPARSE_ORDER_ROW));
    CUDA_TRY(cusparseCreateDnMat(&sd->otherc, f, C->cols, f, other, CUDA_R_32F,
                                 CUSPARSE_ORDER_COL));

    /* The workspaces, at least a little even where the library asks for none, so that no
     * call is handed a null buffer. */
    const float one = 1.0f, zero = 0.0f;
    CUDA_TRY(cusparseSDDMM_bufferSize(L->sp, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                      CUSPARSE_OPERATION_NON_TRANSPOSE, &one, sd->selfm,
                                      sd->otherc, &zero, sd->S, CUDA_R_32F,
                                      CUSPARSE_SDDMM_ALG_DEFAULT, &sd->sddmm_bytes));
    CUDA_TRY(cusparseSpMM_bufferSize(L->sp, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                     CUSPARSE_OPERATION_NON_TRANSPOSE, &one, sd->S, sd->otherm,
                                     &one, sd->apm, CUDA_R_32F, CUSPARSE_SPMM_ALG_DEFAULT,
                                     &sd->spmm_bytes));
    if (sd->sddmm_bytes < 256) sd->sddmm_bytes = 256;
    if (sd->spmm_bytes < 256) sd->spmm_bytes = 256;
    CUDA_STEP(cuda_check_fits(sd->sddmm_bytes + sd->spmm_bytes, "the cuSPARSE workspaces",
                              NULL));
    CUDA_STEP(cuda_alloc_bytes(&sd->sddmm_work, sd->sddmm_bytes, "the SDDMM workspace"));
    CUDA_STEP(cuda_alloc_bytes(&sd->spmm_work, sd->spmm_bytes, "the SpMM workspace"));
    L->held += sd->sddmm_bytes + sd->spmm_bytes;
    return GPUALS_OK;
}

gpuals_status cg_lib_new(const dev_env *env, const dev_csr *Cui, const dev_csr *Ciu, float *X,
                         float *Y, int f, cg_lib **out)
{
    cg_lib *L = (cg_lib *)calloc(1, sizeof *L);
    *out = L;
    if (!L) return gpuals_fail(GPUALS_ERR_NOMEM, "cg_lib_new: out of host memory");
    L->f = f;
    const int64_t max_rows = Cui->rows > Ciu->rows ? Cui->rows : Ciu->rows;
    L->index64 = needs_index64(max_rows, Cui->nnz, f);

    /* The handle, on the fit's stream. */
    CUDA_TRY(cusparseCreate(&L->sp));
    CUDA_TRY(cusparseSetStream(L->sp, env->stream));

    /* Buffers shared by both sides. */
    const size_t mf = (size_t)max_rows * (size_t)f;
    CUDA_STEP(cuda_alloc(&L->R, mf, "CG residuals"));
    CUDA_STEP(cuda_alloc(&L->P, mf, "CG directions"));
    CUDA_STEP(cuda_alloc(&L->AP, mf, "CG products"));
    CUDA_STEP(cuda_alloc(&L->s, (size_t)Cui->nnz, "SDDMM samples"));
    CUDA_STEP(cuda_alloc(&L->rs, (size_t)max_rows, "CG residual norms"));
    CUDA_STEP(cuda_alloc(&L->done, (size_t)max_rows, "CG convergence flags"));
    if (Cui->nnz > 0) CUDA_TRY(cudaMemsetAsync(L->s, 0, (size_t)Cui->nnz * 4, env->stream));
    /* Rows without entries never write P, but the first product P G reads every row. */
    CUDA_TRY(cudaMemsetAsync(L->P, 0, mf * sizeof(float), env->stream));

    /* Both sides, each with its descriptors and workspaces. */
    L->held = cg_lib_bytes(max_rows, Cui->nnz, Cui->rows, Ciu->rows, f);
    CUDA_STEP(side_setup(L, env, &L->side[0], Cui, X, Y));
    CUDA_STEP(side_setup(L, env, &L->side[1], Ciu, Y, X));
    return GPUALS_OK;
}

size_t cg_lib_held(const cg_lib *L) { return L ? L->held : 0; }

/* Release one side's objects (errors ignored: teardown carries on). */
static void side_free(lib_side *sd)
{
    if (sd->S) cusparseDestroySpMat(sd->S);
    if (sd->selfm) cusparseDestroyDnMat(sd->selfm);
    if (sd->pm) cusparseDestroyDnMat(sd->pm);
    if (sd->apm) cusparseDestroyDnMat(sd->apm);
    if (sd->otherm) cusparseDestroyDnMat(sd->otherm);
    if (sd->otherc) cusparseDestroyDnMat(sd->otherc);
    cuda_free_quiet(sd->indptr32);
    cuda_free_quiet(sd->indices64);
    cuda_free_quiet(sd->sddmm_work);
    cuda_free_quiet(sd->spmm_work);
}

void cg_lib_free(cg_lib *L)
{
    if (!L) return;
    side_free(&L->side[0]);
    side_free(&L->side[1]);
    cuda_free_quiet(L->R);
    cuda_free_quiet(L->P);
    cuda_free_quiet(L->AP);
    cuda_free_quiet(L->s);
    cuda_free_quiet(L->rs);
    cuda_free_quiet(L->done);
    if (L->sp) cusparseDestroy(L->sp);
    free(L);
}

/* ========================================================================================== */
/* Solve                                                                                      */
/* ========================================================================================== */

/* The sparse part for direction matrix `v`: S = (V O^T) o spy(C), scaled, then
 * AP = S O + beta AP. */
static gpuals_status sparse_part(cg_lib *L, const dev_env *env, lib_side *sd,
                                 cusparseDnMatDescr_t v, int residual, float beta)
{
    const float one = 1.0f, zero = 0.0f;
    CUDA_TRY(cusparseSDDMM(L->sp, CUSPARSE_OPERATION_NON_TRANSPOSE,
                           CUSPARSE_OPERATION_NON_TRANSPOSE, &one, v, sd->otherc, &zero, sd->S,
                           CUDA_R_32F, CUSPARSE_SDDMM_ALG_DEFAULT, sd->sddmm_work));
    const int64_t nnz = sd->C->nnz;
    conf_scale_kernel<<<cuda_grid_for(nnz, 256, (int64_t)env->sm_count * 16), 256, 0,
                        env->stream>>>(nnz, sd->C->data, L->s, residual);
    CUDA_CHECK_LAUNCH("conf_scale_kernel");
    CUDA_TRY(cusparseSpMM(L->sp, CUSPARSE_OPERATION_NON_TRANSPOSE,
                          CUSPARSE_OPERATION_NON_TRANSPOSE, &one, sd->S, sd->otherm, &beta,
                          sd->apm, CUDA_R_32F, CUSPARSE_SPMM_ALG_DEFAULT, sd->spmm_work));
    return GPUALS_OK;
}

gpuals_status cg_lib_solve(cg_lib *L, const dev_env *env, const half_iter *h)
{
    lib_side *sd = &L->side[h->side];
    const dev_csr *C = h->C;
    const int f = h->f;
    if (sd->C != C || sd->self != h->self)
        return gpuals_fail(GPUALS_ERR_INTERNAL, "cg_lib_solve: side %d does not match set-up",
                           h->side);
    if (C->rows == 0) return GPUALS_OK;

    /* No entries at all: every row is empty, so every factor is zero. */
    if (C->nnz == 0) {
        CUDA_TRY(cudaMemsetAsync(h->self, 0, (size_t)C->rows * f * sizeof(float), env->stream));
        return GPUALS_OK;
    }
    const unsigned grid = cuda_grid_for(cuda_ceil_div(C->rows, 8), 1, (int64_t)env->sm_count * 16);

    /* Residual of the warm start: AP = S O - T G, then R, P, rs, done. */
    CUDA_STEP(dev_times_gram(env, h->self, C->rows, f, h->G, L->AP));
    CUDA_STEP(sparse_part(L, env, sd, sd->selfm, 1, -1.0f));
    cg_lib_start_kernel<<<grid, 256, 0, env->stream>>>(C->rows, f, C->indptr, h->self, L->AP,
                                                        L->R, L->P, L->rs, L->done, h->lambda,
                                                        h->reg_freq);
    CUDA_CHECK_LAUNCH("cg_lib_start_kernel");

    /* The CG steps: AP = P G + S O, then the row update. */
    for (int it = 0; it < h->cg_steps; ++it) {
        CUDA_STEP(dev_times_gram(env, L->P, C->rows, f, h->G, L->AP));
        CUDA_STEP(sparse_part(L, env, sd, sd->pm, 0, 1.0f));
        cg_lib_step_kernel<<<grid, 256, 0, env->stream>>>(C->rows, f, C->indptr, h->self, L->AP,
                                                           L->R, L->P, L->rs, L->done, h->lambda,
                                                           h->reg_freq);
        CUDA_CHECK_LAUNCH("cg_lib_step_kernel");
    }
    return GPUALS_OK;
}
