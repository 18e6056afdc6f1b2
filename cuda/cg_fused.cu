/*
 * cg_fused.cu - batched conjugate gradient, fused form: one thread block per row runs every CG
 * step of that row in one launch, keeping the row's vectors in shared memory and passing once
 * over the row's entries per step.
 *
 * The maths is the `implicit` library's least_squares_cg (Takacs et al. 2011), the same as the
 * CPU engine (host/als.h), warm-started from the current t_u, with A = G + lambda_u I +
 * O_u^T (C_u - I) O_u never formed:
 *
 *     r   = sum_i [max(c_i,0) - (|c_i|-1)(o_i.t)] o_i - (G + lambda_u I) t
 *     p   = r,  rs = r.r;  stop at once when rs < 1e-20
 *     repeat cg_steps times:
 *         Ap    = (G + lambda_u I) p + sum_i (|c_i|-1)(o_i.p) o_i
 *         alpha = rs / p.Ap;  t += alpha p;  r -= alpha Ap
 *         rs'   = r.r;  stop when rs' < 1e-20
 *         p     = r + (rs'/rs) p;  rs = rs'
 *
 * Layout. A block has W = 8 warps (fewer when shared memory is short). Shared memory holds t,
 * r, p, Ap (f floats each), one partial-sum vector per warp (W x f) and W reduction slots. One
 * "pass" computes sum_i coef_i o_i + sign * G v: warp w takes the entries w, w + W, ... of the
 * row, four at a time (warp-wide dots o_i.v with lanes striding over the f factors, then
 * coef_i o_i added to the warp's partial vector), and the rows w*ceil(f/W) ... of G; the block
 * then adds the W partials in warp order. Eight warps per row and four rows of O in flight per
 * warp keep a long row (a popular item) from holding up the whole launch for long. Scalars
 * (r.r, p.Ap) are block sums in a fixed order. Nothing depends on scheduling, so results are
 * bit-reproducible, and any f works (not only multiples of 32) as long as (4 + W) f + W floats
 * fit in a block's shared memory.
 *
 * Departures from `implicit`: a block of W warps per row instead of one thread per factor (so f
 * is not limited to 1024, and long rows are shared among W warps); G is read from global memory
 * through the read-only cache as there, but by warps owning disjoint rows of it; a non-finite
 * result is not zeroed with a warning but reported (by the driver's finite check).
 */
#include "als_device.cuh"

/* Arguments of the kernel, by value. */
typedef struct {
    int64_t rows;
    int f;
    const int64_t *indptr;
    const int32_t *indices;
    const float *conf;
    const float *O;   /* other side's factors, cols x f */
    const float *G;   /* O^T O, f x f, symmetric */
    float *T;         /* this side's factors, rows x f */
    double lambda;
    int reg_freq;
    int cg_steps;
} fused_args;

/* Floats of shared memory the kernel needs for f factors and W warps. */
static size_t fused_smem_bytes(int f, int warps)
{
    return ((size_t)(4 + warps) * (size_t)f + (size_t)warps) * sizeof(float);
}

/* ========================================================================================== */
/* Kernel                                                                                     */
/* ========================================================================================== */

/* The weight of an entry with confidence c and d = o_i . v: max(c,0) - (|c|-1) d for the
 * residual, (|c|-1) d for the product with a direction. */
static __device__ __forceinline__ float entry_coef(float c, float d, bool residual)
{
    const float wgt = fabsf(c) - 1.0f;
    return residual ? (c > 0.0f ? c : 0.0f) - wgt * d : wgt * d;
}

/* Four warp sums at once (independent shuffles overlap). */
static __device__ __forceinline__ void warp_sum4(float &a, float &b, float &c, float &d)
{
    for (int o = 16; o > 0; o >>= 1) {
        a += __shfl_xor_sync(CUDA_FULL_MASK, a, o);
        b += __shfl_xor_sync(CUDA_FULL_MASK, b, o);
        c += __shfl_xor_sync(CUDA_FULL_MASK, c, o);
        d += __shfl_xor_sync(CUDA_FULL_MASK, d, o);
    }
}

/* out = sum over the row's entries [start, end) of coef_i o_i + sign * (G + lam I) v, where
 * coef_i = entry_coef(c_i, o_i.v, residual). v and out are shared vectors of f floats; part is
 * W x f shared scratch. Every thread of the block calls it; it begins with a barrier (v must be
 * complete) and ends after the combine, where each thread has written only its own elements of
 * out (j = threadIdx.x + k blockDim.x). Warp w takes entries start + w, start + w + W, ...,
 * four at a time so that four rows of O are in flight at once. */
static __device__ void fused_pass(const fused_args &a, int64_t start, int64_t end,
                                  const float *v, float *part, float *out, float sign, float lam,
                                  bool residual)
{
    const int f = a.f;
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int nw = (int)(blockDim.x >> 5);
    float *mine = part + (size_t)w * f;
    __syncthreads();

    /* This warp's entries, four at a time: dots with v, then coef * o_i into the partial. */
    for (int j = lane; j < f; j += 32) mine[j] = 0.0f;
    int64_t k = start + w;
    for (; k + 3 * (int64_t)nw < end; k += 4 * (int64_t)nw) {
        const float *o0 = a.O + (int64_t)a.indices[k] * f;
        const float *o1 = a.O + (int64_t)a.indices[k + nw] * f;
        const float *o2 = a.O + (int64_t)a.indices[k + 2 * nw] * f;
        const float *o3 = a.O + (int64_t)a.indices[k + 3 * nw] * f;
        float d0 = 0.0f, d1 = 0.0f, d2 = 0.0f, d3 = 0.0f;
        for (int j = lane; j < f; j += 32) {
            const float vj = v[j];
            d0 += __ldg(o0 + j) * vj;
            d1 += __ldg(o1 + j) * vj;
            d2 += __ldg(o2 + j) * vj;
            d3 += __ldg(o3 + j) * vj;
        }
        warp_sum4(d0, d1, d2, d3);
        const float e0 = entry_coef(a.conf[k], d0, residual);
        const float e1 = entry_coef(a.conf[k + nw], d1, residual);
        const float e2 = entry_coef(a.conf[k + 2 * nw], d2, residual);
        const float e3 = entry_coef(a.conf[k + 3 * nw], d3, residual);
        for (int j = lane; j < f; j += 32)
            mine[j] += e0 * __ldg(o0 + j) + e1 * __ldg(o1 + j) + e2 * __ldg(o2 + j) +
                       e3 * __ldg(o3 + j);
    }
    for (; k < end; k += nw) {
        const float *o = a.O + (int64_t)a.indices[k] * f;
        float d = 0.0f;
        for (int j = lane; j < f; j += 32) d += __ldg(o + j) * v[j];
        d = warp_sum(d);
        const float e = entry_coef(a.conf[k], d, residual);
        for (int j = lane; j < f; j += 32) mine[j] += e * __ldg(o + j);
    }

    /* This warp's rows of G: sign * G[k][:] v_k (G symmetric, so row k is column k). */
    const int chunk = (f + nw - 1) / nw;
    const int k0 = w * chunk, k1 = min(f, k0 + chunk);
    for (int kk = k0; kk < k1; ++kk) {
        const float *g = a.G + (int64_t)kk * f;
        const float vk = sign * v[kk];
        for (int j = lane; j < f; j += 32) mine[j] += __ldg(g + j) * vk;
    }
    __syncthreads();

    /* Combine the warps' partials in warp order, plus sign * lambda v. */
    for (int j = threadIdx.x; j < f; j += blockDim.x) {
        float s = 0.0f;
        for (int q = 0; q < nw; ++q) s += part[(size_t)q * f + j];
        out[j] = s + sign * lam * v[j];
    }
}

/* Every CG step for rows blockIdx.x, blockIdx.x + gridDim.x, ... (see the file comment). */
static __global__ void cg_rows_fused_kernel(fused_args a)
{
    extern __shared__ float smem[];
    const int f = a.f;
    const int nw = (int)(blockDim.x >> 5);
    float *t = smem, *r = t + f, *p = r + f, *ap = p + f, *part = ap + f;
    float *red = part + (size_t)nw * f;

    for (int64_t u = blockIdx.x; u < a.rows; u += gridDim.x) {
        const int64_t start = a.indptr[u], end = a.indptr[u + 1];
        float *tu = a.T + u * f;
        __syncthreads(); /* the previous row is finished with shared memory */

        /* A row with no entries gets zero factors. */
        if (start == end) {
            for (int j = threadIdx.x; j < f; j += blockDim.x) tu[j] = 0.0f;
            continue;
        }
        const float lam = (float)(a.reg_freq ? a.lambda * (double)(end - start) : a.lambda);

        /* Residual of the warm start, and the first direction. */
        for (int j = threadIdx.x; j < f; j += blockDim.x) t[j] = tu[j];
        fused_pass(a, start, end, t, part, r, -1.0f, lam, true);
        float loc = 0.0f;
        for (int j = threadIdx.x; j < f; j += blockDim.x) {
            p[j] = r[j];
            loc += r[j] * r[j];
        }
        float rs = block_sum(loc, red);

        /* The CG steps (none when the warm start is already converged). */
        if (!(rs < 1e-20f)) {
            for (int it = 0; it < a.cg_steps; ++it) {
                fused_pass(a, start, end, p, part, ap, 1.0f, lam, false);
                loc = 0.0f;
                for (int j = threadIdx.x; j < f; j += blockDim.x) loc += p[j] * ap[j];
                const float alpha = rs / block_sum(loc, red);
                loc = 0.0f;
                for (int j = threadIdx.x; j < f; j += blockDim.x) {
                    t[j] += alpha * p[j];
                    r[j] -= alpha * ap[j];
                    loc += r[j] * r[j];
                }
                const float rs_new = block_sum(loc, red);
                if (rs_new < 1e-20f) break;
                const float beta = rs_new / rs;
                for (int j = threadIdx.x; j < f; j += blockDim.x) p[j] = r[j] + beta * p[j];
                rs = rs_new;
            }
        }

        /* The solution back to global memory (each thread its own elements). */
        for (int j = threadIdx.x; j < f; j += blockDim.x) tu[j] = t[j];
    }
}

/* ========================================================================================== */
/* Launcher                                                                                   */
/* ========================================================================================== */

/* The warps per block for f factors within the device's shared memory, or 0 when not even one
 * warp fits. */
static int fused_warps(const dev_env *env, int f)
{
    int warps = 8;
    while (warps > 0 && fused_smem_bytes(f, warps) > (size_t)env->max_smem_optin) warps /= 2;
    return warps;
}

int cg_fused_fits(const dev_env *env, int f) { return fused_warps(env, f) > 0; }

gpuals_status cg_fused_solve(const dev_env *env, const half_iter *h)
{
    const int warps = fused_warps(env, h->f);
    if (warps == 0)
        return gpuals_fail(GPUALS_ERR_INTERNAL,
                           "cg_fused_solve: %d factors do not fit in shared memory (%d bytes)",
                           h->f, env->max_smem_optin);
    if (h->C->rows == 0) return GPUALS_OK;

    /* Shared memory beyond the default 48 KiB must be opted in to. */
    const size_t smem = fused_smem_bytes(h->f, warps);
    const int threads = 32 * warps;
    CUDA_TRY(cudaFuncSetAttribute(cg_rows_fused_kernel,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));

    /* Enough blocks to fill the device; each then strides over the rows. */
    int per_sm = 0;
    CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, cg_rows_fused_kernel,
                                                           threads, smem));
    if (per_sm < 1) per_sm = 1;
    const unsigned grid = cuda_grid_for(h->C->rows, 1, (int64_t)env->sm_count * per_sm * 4);

    fused_args a;
    a.rows = h->C->rows;
    a.f = h->f;
    a.indptr = h->C->indptr;
    a.indices = h->C->indices;
    a.conf = h->C->data;
    a.O = h->other;
    a.G = h->G;
    a.T = h->self;
    a.lambda = h->lambda;
    a.reg_freq = h->reg_freq;
    a.cg_steps = h->cg_steps;
    cg_rows_fused_kernel<<<grid, threads, smem, env->stream>>>(a);
    CUDA_CHECK_LAUNCH("cg_rows_fused_kernel");
    return GPUALS_OK;
}
