/*
 * als_kernels.cu - the kernels every solver shares: the Gram matrix, the product with it, the
 * check for non-finite factors, and the training loss.
 *
 * Gram matrix. The CPU engine accumulates F^T F in double and rounds it to float for its
 * solves; we do the same so that both paths solve against (almost always bit-) identical
 * matrices: chunks of rows are widened to double and added with cuBLAS dsyrk into the lower
 * triangle, then one kernel mirrors the triangle and rounds a float copy. A row-major rows x f
 * matrix is a column-major f x rows matrix with leading dimension f, which is how cuBLAS sees
 * every factor matrix here.
 *
 * Loss (host/als.h, the `implicit` library's definition):
 *
 *   [ sum_u ( x_u^T G x_u + sum_{i in u} ((|c|-1)(x.y)^2 - 2 max(c,0)(x.y) + |c|) )
 *     + lambda (sum_u w_u |x_u|^2 + sum_i w_i |y_i|^2) ] / (sum |c| + U*I - nnz)
 *
 * with G = Y^T Y and w = 1 (or the row's entry count under reg_scale frequency). As on the CPU,
 * sum_u x_u^T G x_u is the elementwise product <X^T X, Y^T Y> of the two double Gram matrices,
 * and the entry terms are formed in double from float dot products. The device sums the three
 * factor-dependent parts; the host adds nothing but lambda and the denominator. Each warp takes
 * whole rows, each block writes its partial sums, and one final thread adds the blocks in
 * order: the result does not depend on scheduling. Every offset is formed in int64_t (the
 * `implicit` library's loss once overflowed past 2^31 elements).
 */
#include "als_device.cuh"

/* ========================================================================================== */
/* Kernels                                                                                    */
/* ========================================================================================== */

/* out[e] = in[e] for n elements, float to double. */
static __global__ void widen_kernel(const float *in, double *out, int64_t n)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += stride)
        out[e] = (double)in[e];
}

/* Copy the lower triangle of the column-major f x f matrix Gd onto its upper triangle, and
 * round every element into G. Only upper elements are written, only lower ones read. */
static __global__ void gram_finish_kernel(double *Gd, float *G, int f)
{
    const int64_t total = (int64_t)f * f;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        const int64_t i = e % f, j = e / f; /* element (i, j) at Gd[i + j f] */
        double v = Gd[e];
        if (i < j) {
            v = Gd[j + i * f];
            Gd[e] = v;
        }
        G[e] = (float)v;
    }
}

/* atomicMin of the key of the first (lowest-row) non-finite element each thread sees. */
static __global__ void finite_check_kernel(const float *F, int64_t rows, int f, int iteration,
                                           int side, unsigned long long *fail)
{
    const int64_t total = rows * (int64_t)f;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        if (!isfinite(F[e])) {
            atomicMin(fail, cuda_fail_key(iteration, side, CUDA_FAIL_NONFINITE, e / f));
            return; /* later elements of this thread are in later rows */
        }
    }
}

/* Users' part of the loss, one warp per row, 256 threads per block: parts[b] = the entry
 * terms of block b's rows, parts[DEV_LOSS_BLOCKS + b] = their sum of w_u |x_u|^2. */
static __global__ void loss_users_kernel(int64_t rows, int f, const int64_t *indptr,
                                         const int32_t *indices, const float *conf,
                                         const float *X, const float *Y, int reg_freq,
                                         double *parts)
{
    __shared__ double red[8];
    const int lane = threadIdx.x & 31;
    const int64_t warp0 = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int64_t nwarps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    double data = 0.0, norm = 0.0;

    for (int64_t u = warp0; u < rows; u += nwarps) {
        const float *x = X + u * f;
        const int64_t start = indptr[u], end = indptr[u + 1];

        /* w_u |x|^2, lanes striding over the factors. */
        float nx = 0.0f;
        for (int j = lane; j < f; j += 32) nx += x[j] * x[j];
        norm += (double)nx * (reg_freq ? (double)(end - start) : 1.0);

        /* The entries: (|c|-1) d^2 - 2 max(c,0) d + |c| with d = x . y_i. */
        for (int64_t k = start; k < end; ++k) {
            const float *y = Y + (int64_t)indices[k] * f;
            float d = 0.0f;
            for (int j = lane; j < f; j += 32) d += y[j] * x[j];
            d = warp_sum(d);
            if (lane == 0) {
                const double c = conf[k], ac = fabs(c), dd = d;
                data += (ac - 1.0) * dd * dd - 2.0 * (c > 0.0 ? c : 0.0) * dd + ac;
            }
        }
    }

    data = block_sum(data, red);
    norm = block_sum(norm, red);
    if (threadIdx.x == 0) {
        parts[blockIdx.x] = data;
        parts[DEV_LOSS_BLOCKS + blockIdx.x] = norm;
    }
}

/* Items' part of the loss: parts[b] = sum over block b's rows of w_i |y_i|^2 (one warp per
 * row), and parts[DEV_LOSS_BLOCKS + b] = block b's share of <Gx, Gy>. */
static __global__ void loss_items_kernel(int64_t rows, int f, const int64_t *indptr,
                                         const float *Y, const double *Gx, const double *Gy,
                                         int reg_freq, double *parts)
{
    __shared__ double red[8];
    const int lane = threadIdx.x & 31;
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t nthreads = (int64_t)gridDim.x * blockDim.x;
    double norm = 0.0, dense = 0.0;

    for (int64_t i = tid >> 5; i < rows; i += nthreads >> 5) {
        const float *y = Y + i * f;
        float ny = 0.0f;
        for (int j = lane; j < f; j += 32) ny += y[j] * y[j];
        norm += (double)ny * (reg_freq ? (double)(indptr[i + 1] - indptr[i]) : 1.0);
    }
    for (int64_t e = tid; e < (int64_t)f * f; e += nthreads) dense += Gx[e] * Gy[e];

    norm = block_sum(norm, red);
    dense = block_sum(dense, red);
    if (threadIdx.x == 0) {
        parts[blockIdx.x] = norm;
        parts[DEV_LOSS_BLOCKS + blockIdx.x] = dense;
    }
}

/* From the four rows of per-block parts (users' entry terms, users' norms, items' norms,
 * <Gx, Gy>), each added in block order: out = {dense + entries, users' norms, items' norms}. */
static __global__ void loss_final_kernel(const double *parts, double *out)
{
    if (threadIdx.x != 0) return;
    double s[4];
    for (int k = 0; k < 4; ++k) {
        s[k] = 0.0;
        for (int b = 0; b < DEV_LOSS_BLOCKS; ++b) s[k] += parts[k * DEV_LOSS_BLOCKS + b];
    }
    out[0] = s[3] + s[0];
    out[1] = s[1];
    out[2] = s[2];
}

/* ========================================================================================== */
/* Launchers                                                                                  */
/* ========================================================================================== */

int64_t dev_gram_chunk_rows(int f)
{
    int64_t rows = ((int64_t)64 << 20) / ((int64_t)f * (int64_t)sizeof(double));
    return rows < 1 ? 1 : rows;
}

gpuals_status dev_gram(const dev_env *env, const float *F, int64_t rows, int f, double *wide,
                       double *Gd, float *G)
{
    const double one = 1.0;
    const int64_t chunk = dev_gram_chunk_rows(f);
    CUDA_TRY(cudaMemsetAsync(Gd, 0, (size_t)f * f * sizeof(double), env->stream));

    /* Gd (lower) += W^T W for each chunk W of rows, widened to double. */
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        const int64_t m = rows - r0 < chunk ? rows - r0 : chunk;
        widen_kernel<<<cuda_grid_for(m * f, 256, 8192), 256, 0, env->stream>>>(F + r0 * f, wide,
                                                                               m * f);
        CUDA_CHECK_LAUNCH("widen_kernel");
        CUDA_TRY(cublasDsyrk(env->blas, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, f, (int)m, &one,
                             wide, f, &one, Gd, f));
    }

    /* Both triangles, and the float copy. */
    gram_finish_kernel<<<cuda_grid_for((int64_t)f * f, 256, 4096), 256, 0, env->stream>>>(Gd, G,
                                                                                        f);
    CUDA_CHECK_LAUNCH("gram_finish_kernel");
    return GPUALS_OK;
}

gpuals_status dev_times_gram(const dev_env *env, const float *V, int64_t rows, int f,
                             const float *G, float *AP)
{
    /* Column-major: AP^T (f x rows) = G (f x f) * V^T (f x rows); G symmetric. */
    const float one = 1.0f, zero = 0.0f;
    if (rows == 0) return GPUALS_OK;
    CUDA_TRY(cublasSgemm(env->blas, CUBLAS_OP_N, CUBLAS_OP_N, f, (int)rows, f, &one, G, f, V, f,
                         &zero, AP, f));
    return GPUALS_OK;
}

gpuals_status dev_check_finite(const dev_env *env, const float *F, int64_t rows, int f,
                               int iteration, int side, unsigned long long *fail)
{
    if (rows == 0) return GPUALS_OK;
    const unsigned grid = cuda_grid_for(rows * (int64_t)f, 256, (int64_t)env->sm_count * 8);
    finite_check_kernel<<<grid, 256, 0, env->stream>>>(F, rows, f, iteration, side, fail);
    CUDA_CHECK_LAUNCH("finite_check_kernel");
    return GPUALS_OK;
}

gpuals_status dev_loss_parts(const dev_env *env, const dev_csr *Cui, const dev_csr *Ciu,
                             const float *X, const float *Y, const double *Gx,
                             const double *Gy, int f, int reg_freq, double *parts,
                             double *out)
{
    /* Per-block partial sums of both sides, then their ordered totals. */
    loss_users_kernel<<<DEV_LOSS_BLOCKS, 256, 0, env->stream>>>(
        Cui->rows, f, Cui->indptr, Cui->indices, Cui->data, X, Y, reg_freq, parts);
    CUDA_CHECK_LAUNCH("loss_users_kernel");
    loss_items_kernel<<<DEV_LOSS_BLOCKS, 256, 0, env->stream>>>(
        Ciu->rows, f, Ciu->indptr, Y, Gx, Gy, reg_freq, parts + 2 * DEV_LOSS_BLOCKS);
    CUDA_CHECK_LAUNCH("loss_items_kernel");
    loss_final_kernel<<<1, 1, 0, env->stream>>>(parts, out);
    CUDA_CHECK_LAUNCH("loss_final_kernel");
    return GPUALS_OK;
}
