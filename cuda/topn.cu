/*
 * topn.cu - cuda_topn: the best n candidates of every query by (scaled) dot product, on the
 * device, with the contract of topn_batch (host/query.h, host/query.c).
 *
 * Per batch of B queries:
 *   1. S = Q_b C^T (B x n_cand) with one cuBLAS SGEMM;
 *   2. a prep kernel scales S in place, s = s * col_scale[c] * query_scale[q] (the CPU's
 *      order), and marks in a byte mask the candidates that may not be returned (outside the
 *      allow list, the query itself); a second kernel marks each query's liked items from a
 *      batch-local copy of its row of the exclude CSR. Excluded candidates are masked, never
 *      given sentinel scores, so they cannot come back however large n is;
 *   3. the selection kernel (one block per query) finds the top min(n, candidates left) by a
 *      radix select on a 64-bit key, then sorts only those with a bitonic sort.
 *
 * The key. "Best" means a higher score, ties to the lower index, a NaN ranking as -infinity
 * (topn_batch's order). With u the float's bits mapped to an unsigned integer of the same order
 * (negative: all bits flipped; positive: sign bit set; -0 and NaN first turned into +0 and
 * -infinity), the key (u << 32) | (2^32 - 1 - index) orders candidates exactly as wanted, and
 * no two candidates share a key. The radix select walks the key's eight bytes from the top,
 * counting in a 256-bin shared histogram only candidates that still match the prefix chosen so
 * far, and stops as soon as the candidates matching the prefix are exactly the ones still
 * needed: every candidate whose key is at least that prefix (lower bytes zero) is selected.
 * The selected keys (at most n) are sorted descending in shared memory, or in a global scratch
 * buffer when n is large; the output scores are read back from S, so a NaN stays a NaN.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_common.cuh"

/* Largest sort buffer kept in shared memory (keys), and the most queries per batch. */
#define TOPN_SMEM_KEYS 2048
#define TOPN_MAX_BATCH 16384
#define TOPN_THREADS 256

/* Device and host buffers of one cuda_topn call; topn_teardown releases whatever is set. */
typedef struct {
    cudaStream_t stream;
    cublasHandle_t blas;
    float *C, *col_scale;             /* candidates, n_cand x f; scales */
    unsigned char *allowed;           /* n_cand, or NULL */
    float *Q, *qscale;                /* batch x f; batch */
    int64_t *self;                    /* batch */
    float *S;                         /* batch x n_cand scores */
    unsigned char *mask;              /* batch x n_cand: 1 = may not be returned */
    int64_t *ex_ptr;                  /* batch + 1 */
    int32_t *ex_idx;                  /* ex_cap */
    size_t ex_cap;
    unsigned long long *sortbuf;      /* batch x sort_keys, when they do not fit shared memory */
    int64_t *idx_d;                   /* batch x cap (cap = min(n, n_cand)) */
    float *score_d;                   /* batch x cap */
    int *nout_d;                      /* batch */
    int64_t *h_ex_ptr, *h_idx;        /* host staging */
    int32_t *h_ex_idx;
    float *h_score;
    int *h_nout;
    size_t h_ex_cap;
} topn_state;

/* ========================================================================================== */
/* Kernels                                                                                    */
/* ========================================================================================== */

/* The 64-bit ranking key of score s at candidate c (file comment). */
static __device__ __forceinline__ unsigned long long topn_key(float s, int64_t c)
{
    if (isnan(s)) s = -INFINITY;
    if (s == 0.0f) s = 0.0f; /* -0 ranks as +0 */
    unsigned u = __float_as_uint(s);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ((unsigned long long)u << 32) | (unsigned long long)(0xffffffffu - (unsigned)c);
}

/* Scale the scores and mark the allow-list and self exclusions (one element per thread). */
static __global__ void topn_prep_kernel(float *S, unsigned char *mask, int64_t nb,
                                        int64_t n_cand, const float *col_scale,
                                        const float *qscale, const unsigned char *allowed,
                                        const int64_t *self)
{
    const int64_t total = nb * n_cand;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        const int64_t b = e / n_cand, c = e % n_cand;
        float s = S[e];
        if (col_scale) s *= col_scale[c];
        if (qscale) s *= qscale[b];
        S[e] = s;
        mask[e] = (allowed && !allowed[c]) || (self && self[b] == c);
    }
}

/* Mark each query's excluded columns (block b walks its row of the batch CSR). */
static __global__ void topn_exclude_kernel(unsigned char *mask, int64_t n_cand,
                                           const int64_t *ex_ptr, const int32_t *ex_idx)
{
    const int64_t b = blockIdx.x;
    for (int64_t k = ex_ptr[b] + threadIdx.x; k < ex_ptr[b + 1]; k += blockDim.x) {
        const int64_t c = ex_idx[k];
        if (c >= 0 && c < n_cand) mask[b * n_cand + c] = 1;
    }
}

/* Sort buf[0..m) descending (m a power of two) with a bitonic network; all threads call it. */
static __device__ void bitonic_sort_desc(unsigned long long *buf, int64_t m)
{
    for (int64_t k = 2; k <= m; k <<= 1) {
        for (int64_t j = k >> 1; j > 0; j >>= 1) {
            for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
                const int64_t p = i ^ j;
                if (p > i) {
                    const unsigned long long a = buf[i], c = buf[p];
                    const bool desc = (i & k) == 0;
                    if (desc ? a < c : a > c) {
                        buf[i] = c;
                        buf[p] = a;
                    }
                }
            }
            __syncthreads();
        }
    }
}

/* Top-cap of query b (one block per query): radix select, collect, sort, write its answers to
 * row b of idx_out and score_out (stride cap). */
static __global__ void topn_select_kernel(const float *S, const unsigned char *mask,
                                          int64_t n_cand, int cap, unsigned long long *sortbuf,
                                          int64_t sort_keys, int64_t *idx_out,
                                          float *score_out, int *nout)
{
    extern __shared__ unsigned long long smem_keys[];
    __shared__ int hist[256];
    __shared__ unsigned long long sh_prefix;
    __shared__ long long sh_need;
    __shared__ int sh_sel, sh_exact, sh_count;

    const int64_t b = blockIdx.x;
    const float *Sb = S + b * n_cand;
    const unsigned char *Mb = mask + b * n_cand;
    unsigned long long *buf = sortbuf ? sortbuf + b * sort_keys : smem_keys;
    unsigned long long prefix = 0, hi = 0;

    /* Radix select, a byte at a time from the top. */
    for (int shift = 56; shift >= 0; shift -= 8) {
        for (int d = threadIdx.x; d < 256; d += blockDim.x) hist[d] = 0;
        __syncthreads();
        for (int64_t c = threadIdx.x; c < n_cand; c += blockDim.x) {
            if (Mb[c]) continue;
            const unsigned long long key = topn_key(Sb[c], c);
            if ((key & hi) == prefix) atomicAdd(&hist[(key >> shift) & 255], 1);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            /* The first pass counts every candidate: that fixes how many are selected. */
            if (shift == 56) {
                long long left = 0;
                for (int d = 0; d < 256; ++d) left += hist[d];
                sh_sel = (int)(left < cap ? left : cap);
                sh_need = sh_sel;
            }
            /* The byte at which the needed count is reached, from the top. */
            if (sh_sel > 0) {
                long long above = 0;
                int d = 255;
                while (above + hist[d] < sh_need) above += hist[d--];
                sh_prefix = prefix | ((unsigned long long)d << shift);
                sh_need -= above;
                sh_exact = hist[d] == sh_need;
            }
            sh_count = 0;
        }
        __syncthreads();
        if (sh_sel == 0) {
            if (threadIdx.x == 0) nout[b] = 0;
            return;
        }
        prefix = sh_prefix;
        hi |= 0xffull << shift;
        if (sh_exact) break;
    }

    /* Collect every candidate at or above the threshold: exactly sh_sel of them. */
    const int sel = sh_sel;
    for (int64_t c = threadIdx.x; c < n_cand; c += blockDim.x) {
        if (Mb[c]) continue;
        const unsigned long long key = topn_key(Sb[c], c);
        if (key >= prefix) buf[atomicAdd(&sh_count, 1)] = key;
    }
    int64_t m = 1;
    while (m < sel) m <<= 1;
    __syncthreads();
    for (int64_t i = sel + threadIdx.x; i < m; i += blockDim.x) buf[i] = 0;
    __syncthreads();

    /* Sort them best first and write the indices and (scaled) scores. */
    bitonic_sort_desc(buf, m);
    for (int k = threadIdx.x; k < sel; k += blockDim.x) {
        const int64_t c = (int64_t)(0xffffffffu - (unsigned)(buf[k] & 0xffffffffull));
        idx_out[b * cap + k] = c;
        score_out[b * cap + k] = Sb[c];
    }
    if (threadIdx.x == 0) nout[b] = sel;
}

/* ========================================================================================== */
/* Host side                                                                                  */
/* ========================================================================================== */

/* topn_batch's argument checks, with the same statuses. */
static gpuals_status topn_check(const float *Q, int64_t nq, const float *C, int64_t n_cand,
                                int f, const topn_filter *flt, int n, const int64_t *idx,
                                const float *score, const int *n_out)
{
    if (nq < 0 || n_cand < 0 || f <= 0 || n < 0)
        return gpuals_fail(GPUALS_ERR_USAGE, "cuda_topn: invalid sizes nq=%lld n_cand=%lld "
                           "f=%d n=%d", (long long)nq, (long long)n_cand, f, n);
    if (n_cand > INT_MAX)
        return gpuals_fail(GPUALS_ERR_USAGE, "cuda_topn: %lld candidates exceed the BLAS limit "
                           "of %d", (long long)n_cand, INT_MAX);
    if (nq > 0 && (!Q || !n_out || (n > 0 && (!idx || !score))))
        return gpuals_fail(GPUALS_ERR_USAGE, "cuda_topn: NULL query or output array");
    if (nq > 0 && n_cand > 0 && !C)
        return gpuals_fail(GPUALS_ERR_USAGE, "cuda_topn: NULL candidate matrix");
    if (!flt || !flt->exclude) return GPUALS_OK;
    for (int64_t q = 0; q < nq; q++) {
        int64_t r = flt->exclude_row ? flt->exclude_row[q] : q;
        if (r < -1 || r >= flt->exclude->rows)
            return gpuals_fail(GPUALS_ERR_USAGE, "cuda_topn: query %lld excludes row %lld of a "
                               "matrix with %lld rows", (long long)q, (long long)r,
                               (long long)flt->exclude->rows);
    }
    return GPUALS_OK;
}

/* Release everything (errors ignored). */
static void topn_teardown(topn_state *t)
{
    void *dev[] = {t->C, t->col_scale, t->allowed, t->Q, t->qscale, t->self, t->S, t->mask,
                   t->ex_ptr, t->ex_idx, t->sortbuf, t->idx_d, t->score_d, t->nout_d};
    for (size_t k = 0; k < sizeof dev / sizeof dev[0]; k++) cuda_free_quiet(dev[k]);
    free(t->h_ex_ptr);
    free(t->h_ex_idx);
    free(t->h_idx);
    free(t->h_score);
    free(t->h_nout);
    if (t->blas) cublasDestroy(t->blas);
    if (t->stream) cudaStreamDestroy(t->stream);
    cudaGetLastError();
}

/* Copy n host bytes to a fresh device buffer. */
static gpuals_status upload(topn_state *t, void **dst, const void *src, size_t bytes,
                            const char *what)
{
    CUDA_STEP(cuda_alloc_bytes(dst, bytes, what));
    if (bytes) CUDA_TRY(cudaMemcpyAsync(*dst, src, bytes, cudaMemcpyHostToDevice, t->stream));
    return GPUALS_OK;
}

/* Gather the exclude rows of queries q0..q0+nb into the batch CSR and upload it. */
static gpuals_status upload_excludes(topn_state *t, const topn_filter *flt, int64_t q0,
                                     int64_t nb)
{
    /* Row pointers of the batch, then the gathered columns. */
    const csr *E = flt->exclude;
    t->h_ex_ptr[0] = 0;
    for (int64_t b = 0; b < nb; b++) {
        int64_t r = flt->exclude_row ? flt->exclude_row[q0 + b] : q0 + b;
        t->h_ex_ptr[b + 1] = t->h_ex_ptr[b] + (r >= 0 ? csr_row_len(E, r) : 0);
    }
    const size_t total = (size_t)t->h_ex_ptr[nb];
    if (total > t->h_ex_cap) {
        int32_t *grown = (int32_t *)realloc(t->h_ex_idx, total * sizeof(int32_t));
        if (!grown) return gpuals_fail(GPUALS_ERR_NOMEM, "cuda_topn: out of host memory for "
                                       "%zu excluded entries", total);
        t->h_ex_idx = grown;
        t->h_ex_cap = total;
    }
    for (int64_t b = 0; b < nb; b++) {
        int64_t r = flt->exclude_row ? flt->exclude_row[q0 + b] : q0 + b;
        if (r >= 0)
            memcpy(t->h_ex_idx + t->h_ex_ptr[b], E->indices + E->indptr[r],
                   (size_t)csr_row_len(E, r) * sizeof(int32_t));
    }

    /* The device copy (grown when needed). */
    if (total > t->ex_cap) {
        cuda_free_quiet(t->ex_idx);
        t->ex_idx = NULL;
        t->ex_cap = 0;
        CUDA_STEP(cuda_alloc(&t->ex_idx, total, "excluded entries"));
        t->ex_cap = total;
    }
    CUDA_TRY(cudaMemcpyAsync(t->ex_ptr, t->h_ex_ptr, (size_t)(nb + 1) * sizeof(int64_t),
                             cudaMemcpyHostToDevice, t->stream));
    if (total)
        CUDA_TRY(cudaMemcpyAsync(t->ex_idx, t->h_ex_idx, total * sizeof(int32_t),
                                 cudaMemcpyHostToDevice, t->stream));
    return GPUALS_OK;
}

/* Per-query device bytes of a batch (answers staged cap to a query). */
static size_t per_query_bytes(int64_t n_cand, int f, int cap, int64_t sort_keys_global)
{
    return (size_t)n_cand * (sizeof(float) + 1) + (size_t)f * sizeof(float) + sizeof(float) +
           sizeof(int64_t) * 2 + (size_t)cap * (sizeof(int64_t) + sizeof(float)) + sizeof(int) +
           (size_t)sort_keys_global * sizeof(unsigned long long);
}

/* One batch of queries q0..q0+nb: score, mask, select, copy the answers out (staged cap to a
 * query, written to the caller's rows of n). */
static gpuals_status run_batch(topn_state *t, const float *Q, int64_t q0, int64_t nb,
                               int64_t n_cand, int f, const topn_filter *flt, int n, int cap,
                               int64_t sort_keys, int use_smem, int64_t *idx, float *score,
                               int *n_out)
{
    /* This batch's queries, scales and self exclusions. */
    CUDA_TRY(cudaMemcpyAsync(t->Q, Q + q0 * f, (size_t)nb * f * sizeof(float),
                             cudaMemcpyHostToDevice, t->stream));
    const float *qscale = NULL;
    const int64_t *self = NULL;
    if (flt && flt->query_scale) {
        CUDA_TRY(cudaMemcpyAsync(t->qscale, flt->query_scale + q0, (size_t)nb * sizeof(float),
                                 cudaMemcpyHostToDevice, t->stream));
        qscale = t->qscale;
    }
    if (flt && flt->self) {
        CUDA_TRY(cudaMemcpyAsync(t->self, flt->self + q0, (size_t)nb * sizeof(int64_t),
                                 cudaMemcpyHostToDevice, t->stream));
        self = t->self;
    }

    /* S^T (n_cand x nb, column-major) = C (as f x n_cand)^T * Q_b (as f x nb). */
    const float one = 1.0f, zero = 0.0f;
    CUDA_TRY(cublasSgemm(t->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)n_cand, (int)nb, f, &one, t->C,
                         f, t->Q, f, &zero, t->S, (int)n_cand));

    /* Scales and masks. */
    topn_prep_kernel<<<cuda_grid_for(nb * n_cand, TOPN_THREADS, 65535), TOPN_THREADS, 0,
                       t->stream>>>(t->S, t->mask, nb, n_cand, t->col_scale, qscale,
                                    t->allowed, self);
    CUDA_CHECK_LAUNCH("topn_prep_kernel");
    if (flt && flt->exclude) {
        CUDA_STEP(upload_excludes(t, flt, q0, nb));
        topn_exclude_kernel<<<(unsigned)nb, 128, 0, t->stream>>>(t->mask, n_cand, t->ex_ptr,
                                                                  t->ex_idx);
        CUDA_CHECK_LAUNCH("topn_exclude_kernel");
    }

    /* Select, and copy the answers to the caller's rows. */
    const size_t smem = use_smem ? (size_t)sort_keys * sizeof(unsigned long long) : 0;
    topn_select_kernel<<<(unsigned)nb, TOPN_THREADS, smem, t->stream>>>(
        t->S, t->mask, n_cand, cap, use_smem ? NULL : t->sortbuf, sort_keys, t->idx_d,
        t->score_d, t->nout_d);
    CUDA_CHECK_LAUNCH("topn_select_kernel");
    CUDA_TRY(cudaMemcpyAsync(t->h_idx, t->idx_d, (size_t)nb * cap * sizeof(int64_t),
                             cudaMemcpyDeviceToHost, t->stream));
    CUDA_TRY(cudaMemcpyAsync(t->h_score, t->score_d, (size_t)nb * cap * sizeof(float),
                             cudaMemcpyDeviceToHost, t->stream));
    CUDA_TRY(cudaMemcpyAsync(t->h_nout, t->nout_d, (size_t)nb * sizeof(int),
                             cudaMemcpyDeviceToHost, t->stream));
    CUDA_TRY(cudaStreamSynchronize(t->stream));
    for (int64_t b = 0; b < nb; b++) {
        const int64_t q = q0 + b;
        const int k = t->h_nout[b];
        n_out[q] = k;
        memcpy(idx + q * n, t->h_idx + b * cap, (size_t)k * sizeof(int64_t));
        memcpy(score + q * n, t->h_score + b * cap, (size_t)k * sizeof(float));
    }
    return GPUALS_OK;
}

/* Everything after the checks; t is torn down by the caller. */
static gpuals_status topn_run(topn_state *t, const float *Q, int64_t nq, const float *C,
                              int64_t n_cand, int f, const topn_filter *flt, int n, int cap,
                              int64_t *idx, float *score, int *n_out)
{
    /* Device, stream, cuBLAS. */
    CUDA_STEP(cuda_select_device());
    CUDA_TRY(cudaStreamCreate(&t->stream));
    CUDA_TRY(cublasCreate(&t->blas));
    CUDA_TRY(cublasSetStream(t->blas, t->stream));
    CUDA_TRY(cublasSetMathMode(t->blas, CUBLAS_DEFAULT_MATH));

    /* Where the sort happens, and how many queries a batch takes. */
    int64_t sort_keys = 1;
    while (sort_keys < cap) sort_keys <<= 1;
    const int use_smem = sort_keys <= TOPN_SMEM_KEYS;
    const size_t fixed = (size_t)n_cand * ((size_t)f * sizeof(float) + sizeof(float) + 1);
    size_t free_b = 0;
    const size_t per_q = per_query_bytes(n_cand, f, cap, use_smem ? 0 : sort_keys);
    CUDA_STEP(cuda_check_fits(fixed + per_q, "top-n selection on the GPU", &free_b));
    /* Half of what is free goes to the batch; the other half leaves room for the batch's
     * excluded entries, which upload_excludes sizes per batch: a query excludes each candidate
     * at most once (the rows of a CSR hold distinct columns), so they take at most
     * 4 * n_cand bytes a query, less than the query's scores and mask in per_q. */
    size_t budget = (free_b - fixed) / 2;
    if (budget > ((size_t)512 << 20)) budget = (size_t)512 << 20;
    int64_t batch = (int64_t)(budget / per_q);
    if (batch < 1) batch = 1;
    if (batch > nq) batch = nq;
    if (batch > TOPN_MAX_BATCH) batch = TOPN_MAX_BATCH;

    /* The candidates and their filters, once. */
    CUDA_STEP(upload(t, (void **)&t->C, C, (size_t)n_cand * f * sizeof(float), "candidates"));
    if (flt && flt->col_scale)
        CUDA_STEP(upload(t, (void **)&t->col_scale, flt->col_scale, (size_t)n_cand * 4,
                         "candidate scales"));
    if (flt && flt->allowed)
        CUDA_STEP(upload(t, (void **)&t->allowed, flt->allowed, (size_t)n_cand, "allow list"));

    /* Per-batch buffers, device and host. */
    const size_t bs = (size_t)batch;
    CUDA_STEP(cuda_alloc(&t->Q, bs * f, "query vectors"));
    CUDA_STEP(cuda_alloc(&t->qscale, bs, "query scales"));
    CUDA_STEP(cuda_alloc(&t->self, bs, "self exclusions"));
    CUDA_STEP(cuda_alloc(&t->S, bs * (size_t)n_cand, "scores"));
    CUDA_STEP(cuda_alloc(&t->mask, bs * (size_t)n_cand, "candidate masks"));
    CUDA_STEP(cuda_alloc(&t->ex_ptr, bs + 1, "exclude row pointers"));
    CUDA_STEP(cuda_alloc(&t->idx_d, bs * (size_t)cap, "top-n indices"));
    CUDA_STEP(cuda_alloc(&t->score_d, bs * (size_t)cap, "top-n scores"));
    CUDA_STEP(cuda_alloc(&t->nout_d, bs, "top-n counts"));
    if (!use_smem) CUDA_STEP(cuda_alloc(&t->sortbuf, bs * (size_t)sort_keys, "sort buffers"));
    t->h_ex_ptr = (int64_t *)malloc((bs + 1) * sizeof(int64_t));
    t->h_idx = (int64_t *)malloc(bs * (size_t)cap * sizeof(int64_t));
    t->h_score = (float *)malloc(bs * (size_t)cap * sizeof(float));
    t->h_nout = (int *)malloc(bs * sizeof(int));
    if (!t->h_ex_ptr || !t->h_idx || !t->h_score || !t->h_nout)
        return gpuals_fail(GPUALS_ERR_NOMEM, "cuda_topn: out of host memory for a batch of "
                           "%lld queries", (long long)batch);

    /* The batches. */
    for (int64_t q0 = 0; q0 < nq; q0 += batch) {
        const int64_t nb = nq - q0 < batch ? nq - q0 : batch;
        CUDA_STEP(run_batch(t, Q, q0, nb, n_cand, f, flt, n, cap, sort_keys, use_smem, idx,
                            score, n_out));
    }
    return GPUALS_OK;
}

gpuals_status cuda_topn(const float *Q, int64_t nq, const float *C, int64_t n_cand, int f,
                        const topn_filter *flt, int n, int64_t *idx, float *score,
                        int *n_out)
{
    /* Check the arguments; nothing to select leaves every row empty. */
    CUDA_STEP(topn_check(Q, nq, C, n_cand, f, flt, n, idx, score, n_out));
    if (nq == 0) return GPUALS_OK;
    const int cap = (int64_t)n < n_cand ? n : (int)n_cand;
    if (cap == 0) {
        memset(n_out, 0, (size_t)nq * sizeof *n_out);
        return GPUALS_OK;
    }

    /* Select on the device, then release it whatever happened. */
    topn_state t;
    memset(&t, 0, sizeof t);
    gpuals_status st = topn_run(&t, Q, nq, C, n_cand, f, flt, n, cap, idx, score, n_out);
    topn_teardown(&t);
    return st;
}
