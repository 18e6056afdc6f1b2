/*
 * gpuals_cuda.h - the C interface of the CUDA backend (the .cu files in cuda/), called from host/.
 *
 * Only C types cross this boundary: the host never sees a CUDA type. Every function returns a
 * gpuals_status and records a message with gpuals_fail(); a failing CUDA, cuBLAS, cuSPARSE or
 * cuSOLVER call is GPUALS_ERR_DEVICE with the call and file:line in the message (an allocation
 * failure inside them is GPUALS_ERR_NOMEM). Nothing here prints. Where the CUDA driver is
 * missing, cuda_probe() returns 0 quietly and every other function returns
 * GPUALS_ERR_NO_DEVICE with the probe's reason, after checking its arguments, except where
 * those arguments leave no work to do (zero iterations, queries, answers or rows): that returns
 * GPUALS_OK without touching a device, as the CPU path does.
 */
#ifndef GPUALS_CUDA_H
#define GPUALS_CUDA_H

#include <stddef.h>

#include "csr.h"
#include "gpuals.h"
#include "query.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when a usable CUDA device exists (device 0 is used: it must be able to run this build's
 * kernels), with its name and free/total memory written as
 * "NVIDIA H200 (139.8 GiB free of 139.8 GiB)" into name; 0 otherwise, with the reason (e.g. "no
 * CUDA driver ...") written into name. name may be NULL. Never records an error message. */
int cuda_probe(char *name, size_t name_len);

/* Which batched CG implementation cuda_als_fit uses. */
typedef enum {
    CUDA_CG_FUSED = 0,  /* one block per row, one pass over its items per CG step */
    CUDA_CG_LIBRARY,    /* GEMM + cuSPARSE SDDMM + scaling + SpMM + a row-update kernel */
} cuda_cg_form;

/* Train on the device: the same contract as als_fit_cpu (host/als.h), float32 only (a
 * float64 request is GPUALS_ERR_USAGE). Both CSRs and both factor matrices are uploaded once;
 * X and Y are copied back once at the end (and are the warm start on entry; on failure they are
 * left as they were). Before allocating, the need is compared with free device memory:
 * GPUALS_ERR_NOMEM with both figures when it does not fit. form is ignored by the Cholesky
 * solver; the fused form falls back to the library form when f is too large for one block's
 * shared memory (about 11,000 factors on an H100/H200). Non-finite factors and singular
 * Cholesky systems are GPUALS_ERR_NUMERIC naming side, row and iteration. */
gpuals_status cuda_als_fit(const csr *Cui, const csr *Ciu, const gpuals_params *p, float *X,
                           float *Y, gpuals_iter_fn cb, void *cb_user, cuda_cg_form form);

/* Device time spent in each phase of one cuda_als_fit_ex call, in milliseconds (CUDA events;
 * filling them adds a synchronisation per phase, so plain calls pass NULL). */
typedef struct {
    double upload_ms;      /* both CSRs and both factor matrices, host -> device */
    double gram_ms;        /* YtY / XtX (cuBLAS syrk), all iterations */
    double users_ms;       /* user half-iterations (solves + checks), all iterations */
    double items_ms;       /* item half-iterations, all iterations */
    double loss_ms;        /* loss evaluations, all iterations */
    double download_ms;    /* factors, device -> host */
    double first_iter_ms;  /* gram + users + items of iteration 1 (warm-up) */
    double iters_ms;       /* gram + users + items of all iterations */
    int iterations;        /* iterations run */
    cuda_cg_form form_used;/* the CG form that ran (see the fallback above) */
    size_t device_bytes;   /* device memory allocated by the fit */
} cuda_fit_stats;

/* cuda_als_fit, also filling *stats (may be NULL). */
gpuals_status cuda_als_fit_ex(const csr *Cui, const csr *Ciu, const gpuals_params *p, float *X,
                              float *Y, gpuals_iter_fn cb, void *cb_user, cuda_cg_form form,
                              cuda_fit_stats *stats);

/* The same contract as topn_batch (host/query.h), computed on the device: one cuBLAS GEMM per
 * batch of queries, the scales, the liked-item mask and a per-row top-n selection kernel. */
gpuals_status cuda_topn(const float *Q, int64_t nq, const float *C, int64_t n_cand, int f,
                        const topn_filter *flt, int n, int64_t *idx, float *score,
                        int *n_out);

/* The initial factors of als_init_factors (host/als.h), generated on the device from the shared
 * counter-based generator (host/init_rng.h) and copied into F (rows x f, host memory): the two
 * must agree bit for bit. */
gpuals_status cuda_init_factors(float *F, int64_t rows, int f, uint64_t seed, int side);

/* The device's measured ceilings, for judging benchmark figures: device-to-device copy
 * bandwidth in GB/s (bytes read + written) and float32 cuBLAS GEMM throughput in GFLOP/s,
 * each the best of a few repetitions. */
gpuals_status cuda_measure_ceilings(double *copy_gbs, double *sgemm_gflops);

#ifdef __cplusplus
}
#endif

#endif /* GPUALS_CUDA_H */
