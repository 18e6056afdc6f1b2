/*
 * als_device.cuh - the pieces of device training shared by als_fit.cu (the driver) and the
 * solver files: the device CSR, the description of one half-iteration, and the launchers of
 * the fused CG, the library CG, the batched Cholesky, the Gram matrix, the finite check and the
 * loss.
 *
 * One half-iteration solves, for every row u of one side (the "this" side, factors T) against
 * the fixed factors O of the other side,
 *
 *     (G + lambda_u I + O_u^T (C_u - I) O_u) t_u = O_u^T C_u p_u,      G = O^T O,
 *
 * with the `implicit` library's conventions: the stored value v of an entry is its confidence
 * when positive (|v| with preference 0 when negative, as `implicit` treats "disliked" entries),
 * so an entry contributes the weight |v| - 1 to the matrix and max(v, 0) to the right-hand
 * side; lambda_u is lambda, or lambda * n_u under reg_scale frequency; rows without entries
 * get t_u = 0.
 */
#ifndef GPUALS_ALS_DEVICE_CUH
#define GPUALS_ALS_DEVICE_CUH

#include "cuda_common.cuh"

/* A CSR on the device (the same layout as host/csr.h: 64-bit row pointers, 32-bit columns). */
typedef struct {
    int64_t rows, cols, nnz;
    int64_t *indptr;
    int32_t *indices;
    float *data;
} dev_csr;

/* One half-iteration: solve every row of C against the fixed factors `other`. */
typedef struct {
    const dev_csr *C;     /* rows = this side, cols = other side */
    float *self;          /* this side's factors, rows x f: warm start in, solution out */
    const float *other;   /* the other side's factors, cols x f */
    const float *G;       /* other^T other, f x f, exactly symmetric */
    int f;
    double lambda;
    int reg_freq;         /* 1: lambda * n_u */
    int cg_steps;
    int side;             /* ALS side of `self`: 0 users, 1 items (for failure keys) */
    int iteration;        /* 1-based, for failure keys */
    unsigned long long *fail;  /* device failure key (see cuda_common.cuh) */
} half_iter;

/* Resources every solver may use, owned by the driver. */
typedef struct {
    cudaStream_t stream;
    cublasHandle_t blas;
    int sm_count;
    int max_smem_optin;   /* bytes of shared memory one block may opt in to */
} dev_env;

/* ------------------------------------------------------------------------------------------ */
/* Shared kernels (als_kernels.cu)                                                            */
/* ------------------------------------------------------------------------------------------ */

/* Rows of a factor matrix widened to double per DSYRK call in dev_gram (about 64 MiB). */
int64_t dev_gram_chunk_rows(int f);

/* The Gram matrix of F (rows x f, row-major), as the CPU engine computes it: accumulated in
 * double (cuBLAS dsyrk over chunks of rows widened into `wide`, dev_gram_chunk_rows(f) x f
 * doubles) into Gd (f x f, both triangles), then rounded to float into G. Both come out
 * exactly symmetric. */
gpuals_status dev_gram(const dev_env *env, const float *F, int64_t rows, int f, double *wide,
                       double *Gd, float *G);

/* AP = V G (rows x f, row-major) for an exactly symmetric G: one cuBLAS GEMM. */
gpuals_status dev_times_gram(const dev_env *env, const float *V, int64_t rows, int f,
                             const float *G, float *AP);

/* Record, for the first non-finite element of F (rows x f), the failure key
 * (iteration, side, non-finite, row) in *fail (atomicMin). */
gpuals_status dev_check_finite(const dev_env *env, const float *F, int64_t rows, int f,
                               int iteration, int side, unsigned long long *fail);

/* The parts of the loss (host/als.h) that depend on the factors, summed on the device as the
 * CPU engine sums them: out[0] = <XtX, YtY> (= sum_u x_u^T YtY x_u, from the double Gram
 * matrices Gx and Gy) + sum_{u,i} ((|c|-1)(x.y)^2 - 2 max(c,0)(x.y) + |c|), out[1] =
 * sum_u w_u |x_u|^2, out[2] = sum_i w_i |y_i|^2 (w = 1, or the row's entry count under
 * reg_scale frequency). parts is scratch of DEV_LOSS_PARTS doubles; out is 3 device doubles.
 * Deterministic (fixed summation order). */
#define DEV_LOSS_BLOCKS 512
#define DEV_LOSS_PARTS (4 * DEV_LOSS_BLOCKS)
gpuals_status dev_loss_parts(const dev_env *env, const dev_csr *Cui, const dev_csr *Ciu,
                             const float *X, const float *Y, const double *Gx,
                             const double *Gy, int f, int reg_freq, double *parts,
                             double *out);

/* ------------------------------------------------------------------------------------------ */
/* Fused CG (cg_fused.cu)                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* 1 when the fused kernel can run with f factors on this device (its vectors fit in one
 * block's shared memory). */
int cg_fused_fits(const dev_env *env, int f);

/* One CG half-iteration with the fused kernel: one block per row, all steps in one launch. */
gpuals_status cg_fused_solve(const dev_env *env, const half_iter *h);

/* ------------------------------------------------------------------------------------------ */
/* Library CG (cg_library.cu)                                                                 */
/* ------------------------------------------------------------------------------------------ */

typedef struct cg_lib cg_lib;

/* Bytes cg_lib_new will allocate for sides of at most max_rows rows and nnz entries, not
 * counting cuSPARSE's workspace. */
size_t cg_lib_bytes(int64_t max_rows, int64_t nnz, int64_t users, int64_t items, int f);

/* Buffers, cuSPARSE handle and descriptors for both sides (users: Cui with X against Y;
 * items: Ciu with Y against X). *out is freed with cg_lib_free, also on failure. */
gpuals_status cg_lib_new(const dev_env *env, const dev_csr *Cui, const dev_csr *Ciu, float *X,
                         float *Y, int f, cg_lib **out);

/* One CG half-iteration in the library form (h->self must be the X or Y given to cg_lib_new). */
gpuals_status cg_lib_solve(cg_lib *L, const dev_env *env, const half_iter *h);

/* Device bytes cg_lib holds (buffers and workspace). */
size_t cg_lib_held(const cg_lib *L);

void cg_lib_free(cg_lib *L);

/* ------------------------------------------------------------------------------------------ */
/* Batched Cholesky (cholesky.cu)                                                             */
/* ------------------------------------------------------------------------------------------ */

typedef struct chol_batch chol_batch;

/* Bytes of one row's share of a batch (its f x f matrix and bookkeeping). */
size_t chol_bytes_per_row(int f);

/* Batch buffers for up to max_batch rows, and the cuSOLVER handle. */
gpuals_status chol_new(const dev_env *env, int f, int64_t max_batch, chol_batch **out);

/* One exact half-iteration: build every row's matrix and right-hand side, factorise and solve
 * (potrfBatched / potrsBatched), batch by batch; a failed factorisation records the failure key
 * (iteration, side, singular, row). */
gpuals_status chol_solve(chol_batch *B, const dev_env *env, const half_iter *h);

size_t chol_held(const chol_batch *B);

void chol_free(chol_batch *B);

#endif /* GPUALS_ALS_DEVICE_CUH */
