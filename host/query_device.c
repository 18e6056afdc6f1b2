/*
 * query_device.c - batched top-N on the device the settings name.
 *
 * Scoring many users at once is one matrix product per batch, which the GPU does far faster
 * than the CPU; the answers are the same (host/query.h's contract, ties to the lower index).
 * Under AUTO a GPU too small for the problem is no error: the CPU answers instead, and the note
 * says so, as training does (host/als.c).
 */
#include "query.h"

#include <stdio.h>

#include "status.h"

#ifdef GPUALS_HAVE_CUDA
#include "gpuals_cuda.h"
#endif

gpuals_status topn_batch_on(gpuals_device dev, const float *Q, int64_t nq, const float *C,
                            int64_t n_cand, int f, const topn_filter *flt, int n, int64_t *idx,
                            float *score, int *n_out, gpuals_device *used, char *note,
                            size_t note_len)
{
    gpuals_put_note(note, note_len, "ranking on the CPU");
    if (dev != GPUALS_DEVICE_CPU) {
        char why[256];
        const int usable = gpuals_gpu_usable(why, sizeof why);
        if (!usable && dev == GPUALS_DEVICE_GPU)
            return gpuals_fail(GPUALS_ERR_NO_DEVICE, "no usable GPU: %s", why);
        if (!usable)
            gpuals_put_note(note, note_len, "no usable GPU (%s); ranking on the CPU", why);
#ifdef GPUALS_HAVE_CUDA
        /* The GPU; under AUTO, a problem too large for its memory goes to the CPU instead
         * (cuda_topn writes the answers only once a batch is done, and the CPU rewrites them
         * all). */
        if (usable) {
            gpuals_status st = cuda_topn(Q, nq, C, n_cand, f, flt, n, idx, score, n_out);
            if (st == GPUALS_OK) {
                gpuals_put_note(note, note_len, "ranking on GPU 0: %s", why);
                if (used != NULL) *used = GPUALS_DEVICE_GPU;
                return GPUALS_OK;
            }
            if (st != GPUALS_ERR_NOMEM || dev != GPUALS_DEVICE_AUTO) return st;
            gpuals_put_note(note, note_len,
                            GPUALS_NOTE_GPU_TOO_SMALL " (%s); ranking on the CPU",
                            gpuals_last_error());
        }
#endif
    }
    gpuals_status st = topn_batch(Q, nq, C, n_cand, f, flt, n, idx, score, n_out);
    if (st == GPUALS_OK && used != NULL) *used = GPUALS_DEVICE_CPU;
    return st;
}
