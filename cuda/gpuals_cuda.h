/*
 * gpuals_cuda.h - the C interface of the CUDA backend (cuda/*.cu), called from host/.
 *
 * Only C types cross this boundary: the host never sees a CUDA type. Every function returns a
 * gpuals_status and records a message with gpuals_fail(); a failing CUDA, cuBLAS, cuSPARSE or
 * cuSOLVER call is GPUALS_ERR_DEVICE with the call and file:line in the message. Nothing here
 * prints. Where the CUDA driver is missing, cuda_probe() returns 0 quietly.
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

/* 1 when a usable CUDA device exists (device 0 is used), with its name and free/total memory
 * written as "NVIDIA H200 (139.8 GiB free of 139.8 GiB)" into name; 0 otherwise, with the
 * reason (e.g. "no CUDA driver") written into name. name may be NULL. */
int cuda_probe(char *name, size_t name_len);

/* Which batched CG implementation cuda_als_fit uses. */
typedef enum {
    CUDA_CG_FUSED = 0,  /* one warp/block per row, one pass over its items per CG step */
    CUDA_CG_LIBRARY,    /* GEMM + cuSPARSE SDDMM + scaling + SpMM + a row-update kernel */
} cuda_cg_form;

/* Train on the device: the same contract as als_fit_cpu (host/als.h). Both CSRs and both factor
 * matrices are uploaded once; X and Y are copied back once at the end (and are the warm start
 * on entry). Before allocating, the need is compared with free device memory:
 * GPUALS_ERR_NOMEM with both figures when it does not fit. */
gpuals_status cuda_als_fit(const csr *Cui, const csr *Ciu, const gpuals_params *p, float *X,
                           float *Y, gpuals_iter_fn cb, void *cb_user, cuda_cg_form form);

/* The same contract as topn_batch (host/query.h), computed on the device. */
gpuals_status cuda_topn(const float *Q, int64_t nq, const float *C, int64_t n_cand, int f,
                        const topn_filter *flt, int n, int64_t *idx, float *score,
                        int *n_out);

#ifdef __cplusplus
}
#endif

#endif /* GPUALS_CUDA_H */
