/*
 * query_device.c - batched top-N on the device the settings name.
 *
 * Scoring many users at once is one matrix product per batch, which the GPU does far faster
 * than the CPU; the answers are the same (host/query.h's contract, ties to the lower index).
 */
#include "query.h"

#include <stdio.h>

#include "status.h"

#ifdef GPUALS_HAVE_CUDA
#include "gpuals_cuda.h"
#endif

gpuals_status topn_batch_on(gpuals_device dev, const float *Q, int64_t nq, const float *C,
                            int64_t n_cand, int f, const topn_filter *flt, int n, int64_t *idx,
                            float *score, int *n_out, gpuals_device *used)
{
    if (used != NULL) *used = GPUALS_DEVICE_CPU;
    if (dev != GPUALS_DEVICE_CPU) {
#ifdef GPUALS_HAVE_CUDA
        char why[256];
        if (cuda_probe(why, sizeof why)) {
            if (used != NULL) *used = GPUALS_DEVICE_GPU;
            return cuda_topn(Q, nq, C, n_cand, f, flt, n, idx, score, n_out);
        }
        if (dev == GPUALS_DEVICE_GPU)
            return gpuals_fail(GPUALS_ERR_NO_DEVICE, "no usable GPU: %s", why);
#else
        if (dev == GPUALS_DEVICE_GPU)
            return gpuals_fail(GPUALS_ERR_NO_DEVICE, "no usable GPU: built without CUDA");
#endif
    }
    return topn_batch(Q, nq, C, n_cand, f, flt, n, idx, score, n_out);
}
