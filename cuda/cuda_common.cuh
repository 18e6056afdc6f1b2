/*
 * cuda_common.cuh - what every file of the CUDA backend shares: the host headers (with C
 * linkage), the one status-check macro for the CUDA runtime, cuBLAS, cuSPARSE and cuSOLVER,
 * the debug switch that synchronises after every call, device-memory bookkeeping, grid
 * arithmetic and the warp/block reductions.
 *
 * The check macro. CUDA_TRY(call) evaluates a call returning any of cudaError_t,
 * cublasStatus_t, cusparseStatus_t or cusolverStatus_t. On failure it records, through
 * gpuals_fail(), "file:line: call failed: NAME (text) on device N" and returns the status from
 * the enclosing function: GPUALS_ERR_NOMEM for the libraries' allocation failures,
 * GPUALS_ERR_DEVICE for everything else. Overloads of cuda_ok()/cuda_failed() pick the
 * library; cuSOLVER has no status-to-text function, so cuda_common.cu holds one switch for it.
 * Functions that own resources therefore keep them in a struct that a separate teardown
 * releases, and never need a goto across initialisations (which C++ forbids).
 *
 * The debug switch. With GPUALS_CUDA_SYNC=1 in the environment every checked call and every
 * kernel launch is followed by cudaDeviceSynchronize(), so an asynchronous fault is reported at
 * the call that caused it. Without it nothing synchronises except where a result must be read
 * back (flags, the loss, the final factors).
 *
 * Sizes. Row counts and nnz are int64_t everywhere; element offsets such as row * f are formed
 * in int64_t (or size_t) before they index memory, so nothing overflows past 2^31.
 */
#ifndef GPUALS_CUDA_COMMON_CUH
#define GPUALS_CUDA_COMMON_CUH

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>
#include <cusparse.h>

/* The host headers are C; pull them in with C linkage (their own C headers are already
 * included above, so the block holds only our declarations). */
extern "C" {
#include "csr.h"
#include "gpuals.h"
#include "query.h"
#include "status.h"
}
#include "gpuals_cuda.h"

/* ------------------------------------------------------------------------------------------ */
/* Status checks                                                                              */
/* ------------------------------------------------------------------------------------------ */

static inline bool cuda_ok(cudaError_t s) { return s == cudaSuccess; }
static inline bool cuda_ok(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS; }
static inline bool cuda_ok(cusparseStatus_t s) { return s == CUSPARSE_STATUS_SUCCESS; }
static inline bool cuda_ok(cusolverStatus_t s) { return s == CUSOLVER_STATUS_SUCCESS; }

/* Record the failure of `call` (its source text) at file:line and return the status to pass
 * up: GPUALS_ERR_NOMEM for allocation failures, GPUALS_ERR_DEVICE otherwise. */
gpuals_status cuda_failed(cudaError_t s, const char *call, const char *file, int line);
gpuals_status cuda_failed(cublasStatus_t s, const char *call, const char *file, int line);
gpuals_status cuda_failed(cusparseStatus_t s, const char *call, const char *file, int line);
gpuals_status cuda_failed(cusolverStatus_t s, const char *call, const char *file, int line);

/* The name of a cuSOLVER status, e.g. "CUSOLVER_STATUS_INVALID_VALUE" (the library has no such
 * function). Never NULL. */
const char *cusolver_status_name(cusolverStatus_t s);

/* 1 when GPUALS_CUDA_SYNC=1 is set in the environment (read once). */
int cuda_debug_sync(void);

/* Under the debug switch: synchronise the device and report a fault as raised by `call`.
 * GPUALS_OK when the switch is off or nothing failed. */
gpuals_status cuda_debug_sync_check(const char *call, const char *file, int line);

#define CUDA_TRY_TEXT(call, text)                                                             \
    do {                                                                                      \
        auto cuda_try_s_ = (call);                                                            \
        if (!cuda_ok(cuda_try_s_)) return cuda_failed(cuda_try_s_, text, __FILE__, __LINE__); \
        if (cuda_debug_sync()) {                                                              \
            gpuals_status cuda_try_d_ = cuda_debug_sync_check(text, __FILE__, __LINE__);      \
            if (cuda_try_d_ != GPUALS_OK) return cuda_try_d_;                                 \
        }                                                                                     \
    } while (0)

/* Evaluate a CUDA / cuBLAS / cuSPARSE / cuSOLVER call; on failure record it and return. */
#define CUDA_TRY(call) CUDA_TRY_TEXT(call, #call)

/* After a kernel launch: report a launch failure (bad configuration, missing kernel image)
 * naming the kernel, and under the debug switch any fault of the kernel itself. */
#define CUDA_CHECK_LAUNCH(kernel_name) CUDA_TRY_TEXT(cudaGetLastError(), "launch of " kernel_name)

/* Evaluate a call returning gpuals_status and return it on failure. */
#define CUDA_STEP(call)                                                                       \
    do {                                                                                      \
        gpuals_status cuda_step_s_ = (call);                                                  \
        if (cuda_step_s_ != GPUALS_OK) return cuda_step_s_;                                   \
    } while (0)

/* ------------------------------------------------------------------------------------------ */
/* Devices and memory                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* Select device 0 after checking that a usable device exists (cuda_probe's answer, found once
 * per process): GPUALS_ERR_NO_DEVICE with the probe's reason otherwise. Every entry point of
 * the backend starts here. */
gpuals_status cuda_select_device(void);

/* Compare `need` bytes with the device's free memory: GPUALS_ERR_NOMEM naming `what` and both
 * figures when need > free. *free_out (may be NULL) receives the free bytes. */
gpuals_status cuda_check_fits(size_t need, const char *what, size_t *free_out);

/* cudaMalloc of count elements of T, with a message naming `what` and the size on failure
 * (GPUALS_ERR_NOMEM). count 0 allocates nothing and sets *p to NULL. */
gpuals_status cuda_alloc_bytes(void **p, size_t bytes, const char *what);

template <class T>
static inline gpuals_status cuda_alloc(T **p, size_t count, const char *what)
{
    void *v = NULL;
    gpuals_status st = cuda_alloc_bytes(&v, count * sizeof(T), what);
    *p = (T *)v;
    return st;
}

/* cudaFree that ignores NULL and errors (teardown must carry on and keep the first message). */
void cuda_free_quiet(void *p);

/* Bytes as MiB, for messages. */
static inline double cuda_mib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

/* ------------------------------------------------------------------------------------------ */
/* Grid arithmetic                                                                            */
/* ------------------------------------------------------------------------------------------ */

static inline int64_t cuda_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Blocks for a grid-stride loop over n items with `threads` per block, at most `cap`. */
static inline unsigned cuda_grid_for(int64_t n, int threads, int64_t cap)
{
    int64_t g = cuda_ceil_div(n > 0 ? n : 1, threads);
    if (g > cap) g = cap;
    return (unsigned)g;
}

/* ------------------------------------------------------------------------------------------ */
/* Reductions (device)                                                                        */
/* ------------------------------------------------------------------------------------------ */

#define CUDA_FULL_MASK 0xffffffffu

/* Sum over the 32 lanes of a warp, the result in every lane (xor butterfly: every lane adds
 * the same values in the same order, so all lanes hold bit-identical sums). */
template <class T>
static __device__ __forceinline__ T warp_sum(T v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(CUDA_FULL_MASK, v, o);
    return v;
}

/* Sum over a whole block (blockDim.x a multiple of 32), the result in every thread, summed in
 * a fixed order (deterministic). red holds blockDim.x / 32 elements of shared memory. Contains
 * two __syncthreads(): every thread of the block must call it. */
template <class T>
static __device__ __forceinline__ T block_sum(T v, T *red)
{
    v = warp_sum(v);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    T s = 0;
    const int nw = (int)(blockDim.x >> 5);
    for (int w = 0; w < nw; ++w) s += red[w];
    __syncthreads();
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Failure keys                                                                               */
/* ------------------------------------------------------------------------------------------ */

/* A training failure found on the device is recorded as one 64-bit key with atomicMin, so the
 * earliest one wins: iteration (bits 40..63), side (bit 32: users 0, items 1), row (bits 1..31;
 * the driver admits at most 2^31 - 1 rows) and kind (bit 0: singular system 0, non-finite
 * factor 1). The row comes before the kind because the CPU reports the lowest failing row of a
 * half-iteration whatever its kind; the kind only decides between two failures of one row (a
 * singular Cholesky row is also non-finite after the solve, and is reported as singular, as on
 * the CPU). CUDA_NO_FAILURE means none; cuda_fail_row/side/kind take a key apart. */
#define CUDA_NO_FAILURE 0xffffffffffffffffull
enum { CUDA_FAIL_SINGULAR = 0, CUDA_FAIL_NONFINITE = 1 };

static __host__ __device__ __forceinline__ unsigned long long cuda_fail_key(int iteration,
                                                                           int side, int kind,
                                                                           int64_t row)
{
    return ((unsigned long long)iteration << 40) | ((unsigned long long)side << 32) |
           ((unsigned long long)((uint32_t)row & 0x7fffffffu) << 1) |
           (unsigned long long)(kind & 1);
}

static inline int cuda_fail_iteration(unsigned long long key) { return (int)(key >> 40); }
static inline int cuda_fail_side(unsigned long long key) { return (int)((key >> 32) & 1); }
static inline int cuda_fail_kind(unsigned long long key) { return (int)(key & 1); }
static inline int64_t cuda_fail_row(unsigned long long key)
{
    return (int64_t)((key >> 1) & 0x7fffffffull);
}

#endif /* GPUALS_CUDA_COMMON_CUH */
