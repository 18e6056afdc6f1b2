/*
 * cuda_common.cu - status texts, the debug switch, device selection and probing, memory
 * checks, and two small device services (initial factors, measured ceilings).
 *
 * cuda_probe() must work where no CUDA driver is installed (as on CI): the runtime is linked
 * statically, so the binary starts, and cudaGetDeviceCount() then fails with
 * cudaErrorInsufficientDriver or cudaErrorNoDevice, which we turn into a reason string and a
 * return of 0, leaving no error behind. A device counts as usable only when a trivial kernel
 * of this build runs on it, so a card whose architecture the build does not cover is reported
 * as such instead of failing later in the middle of training. The probe runs once per process;
 * every entry point checks it again through cuda_select_device() at no further cost.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_common.cuh"

extern "C" {
#include "init_rng.h"
}

/* ========================================================================================== */
/* Status texts                                                                               */
/* ========================================================================================== */

const char *cusolver_status_name(cusolverStatus_t s)
{
    switch (s) {
    case CUSOLVER_STATUS_SUCCESS: return "CUSOLVER_STATUS_SUCCESS";
    case CUSOLVER_STATUS_NOT_INITIALIZED: return "CUSOLVER_STATUS_NOT_INITIALIZED";
    case CUSOLVER_STATUS_ALLOC_FAILED: return "CUSOLVER_STATUS_ALLOC_FAILED";
    case CUSOLVER_STATUS_INVALID_VALUE: return "CUSOLVER_STATUS_INVALID_VALUE";
    case CUSOLVER_STATUS_ARCH_MISMATCH: return "CUSOLVER_STATUS_ARCH_MISMATCH";
    case CUSOLVER_STATUS_MAPPING_ERROR: return "CUSOLVER_STATUS_MAPPING_ERROR";
    case CUSOLVER_STATUS_EXECUTION_FAILED: return "CUSOLVER_STATUS_EXECUTION_FAILED";
    case CUSOLVER_STATUS_INTERNAL_ERROR: return "CUSOLVER_STATUS_INTERNAL_ERROR";
    case CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED:
        return "CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED";
    case CUSOLVER_STATUS_NOT_SUPPORTED: return "CUSOLVER_STATUS_NOT_SUPPORTED";
    case CUSOLVER_STATUS_ZERO_PIVOT: return "CUSOLVER_STATUS_ZERO_PIVOT";
    case CUSOLVER_STATUS_INVALID_LICENSE: return "CUSOLVER_STATUS_INVALID_LICENSE";
    case CUSOLVER_STATUS_INVALID_WORKSPACE: return "CUSOLVER_STATUS_INVALID_WORKSPACE";
    default: return "CUSOLVER_STATUS_(other)";
    }
}

/* The file name without its directories, for shorter messages. */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* The current device, or -1 when even that cannot be asked. */
static int current_device(void)
{
    int dev = -1;
    if (cudaGetDevice(&dev) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    return dev;
}

/* Record "file:line: call failed: name (text) on device N" and return s. */
static gpuals_status record(gpuals_status s, const char *call, const char *file, int line,
                            const char *name, const char *text)
{
    return gpuals_fail(s, "%s:%d: %s failed: %s (%s) on device %d", base_name(file), line, call,
                       name, text, current_device());
}

gpuals_status cuda_failed(cudaError_t s, const char *call, const char *file, int line)
{
    gpuals_status st = s == cudaErrorMemoryAllocation ? GPUALS_ERR_NOMEM : GPUALS_ERR_DEVICE;
    return record(st, call, file, line, cudaGetErrorName(s), cudaGetErrorString(s));
}

gpuals_status cuda_failed(cublasStatus_t s, const char *call, const char *file, int line)
{
    gpuals_status st = s == CUBLAS_STATUS_ALLOC_FAILED ? GPUALS_ERR_NOMEM : GPUALS_ERR_DEVICE;
    return record(st, call, file, line, cublasGetStatusName(s), cublasGetStatusString(s));
}

gpuals_status cuda_failed(cusparseStatus_t s, const char *call, const char *file, int line)
{
    gpuals_status st = s == CUSPARSE_STATUS_ALLOC_FAILED ? GPUALS_ERR_NOMEM : GPUALS_ERR_DEVICE;
    return record(st, call, file, line, cusparseGetErrorName(s), cusparseGetErrorString(s));
}

gpuals_status cuda_failed(cusolverStatus_t s, const char *call, const char *file, int line)
{
    gpuals_status st = s == CUSOLVER_STATUS_ALLOC_FAILED ? GPUALS_ERR_NOMEM : GPUALS_ERR_DEVICE;
    return record(st, call, file, line, cusolver_status_name(s), "cuSOLVER status");
}

/* ========================================================================================== */
/* The debug switch                                                                           */
/* ========================================================================================== */

int cuda_debug_sync(void)
{
    /* Read once; a race between threads only computes the same value twice. */
    static int cached = -1;
    if (cached < 0) {
        const char *v = getenv("GPUALS_CUDA_SYNC");
        cached = (v && strcmp(v, "1") == 0) ? 1 : 0;
    }
    return cached;
}

gpuals_status cuda_debug_sync_check(const char *call, const char *file, int line)
{
    if (!cuda_debug_sync()) return GPUALS_OK;
    cudaError_t e = cudaDeviceSynchronize();
    if (e == cudaSuccess) return GPUALS_OK;
    char what[512];
    snprintf(what, sizeof what, "%s (at the synchronisation after it)", call);
    return cuda_failed(e, what, file, line);
}

/* ========================================================================================== */
/* Devices and memory                                                                         */
/* ========================================================================================== */

/* Writes 42 to *out: proof that this build's kernels run on the device. */
static __global__ void probe_kernel(int *out) { *out = 42; }

/* snprintf into name when there is one. */
static void say(char *name, size_t name_len, const char *fmt, ...) GPUALS_PRINTF(3, 4);
static void say(char *name, size_t name_len, const char *fmt, ...)
{
    if (!name || name_len == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, name_len, fmt, ap);
    va_end(ap);
}

/* Run probe_kernel on the current device: cudaSuccess when it wrote its value. */
static cudaError_t probe_run_kernel(void)
{
    int *d = NULL;
    int h = 0;
    cudaError_t e = cudaMalloc(&d, sizeof *d);
    if (e != cudaSuccess) return e;
    probe_kernel<<<1, 1>>>(d);
    e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaMemcpy(&h, d, sizeof h, cudaMemcpyDeviceToHost);
    cudaFree(d);
    if (e == cudaSuccess && h != 42) e = cudaErrorUnknown;
    return e;
}

/* 1 for the errors of a kernel compiled for other architectures than the device's. */
static int is_missing_kernel_image(cudaError_t e)
{
    return e == cudaErrorNoKernelImageForDevice || e == cudaErrorInvalidDeviceFunction ||
           e == cudaErrorUnsupportedPtxVersion;
}

/* What probing found: whether device 0 is usable, and its name or the reason it is not. */
typedef struct {
    int usable;
    char text[256];
} probe_result;

/* Probe the driver and device 0, and run a kernel of this build on it. */
static probe_result probe_device(void)
{
    probe_result r;
    r.usable = 0;
    r.text[0] = '\0';

    /* Is there a driver, and a device? */
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        int rt = 0;
        cudaRuntimeGetVersion(&rt);
        if (e == cudaErrorInsufficientDriver)
            say(r.text, sizeof r.text, "no CUDA driver, or one older than CUDA runtime %d.%d",
                rt / 1000, (rt % 1000) / 10);
        else if (e == cudaErrorNoDevice)
            say(r.text, sizeof r.text, "no CUDA device found");
        else
            say(r.text, sizeof r.text, "CUDA is unavailable: %s (%s)", cudaGetErrorName(e),
                cudaGetErrorString(e));
        cudaGetLastError();
        return r;
    }
    if (count <= 0) {
        say(r.text, sizeof r.text, "no CUDA device found");
        return r;
    }

    /* Device 0: its properties, and whether our kernels run on it. */
    cudaDeviceProp prop;
    e = cudaSetDevice(0);
    if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, 0);
    if (e != cudaSuccess) {
        say(r.text, sizeof r.text, "CUDA device 0 is unusable: %s (%s)", cudaGetErrorName(e),
            cudaGetErrorString(e));
        cudaGetLastError();
        return r;
    }
    e = probe_run_kernel();
    if (e != cudaSuccess) {
        if (is_missing_kernel_image(e))
            say(r.text, sizeof r.text,
                "CUDA device 0 (%s, compute capability %d.%d) cannot run this build's kernels: "
                "%s (rebuild with -DCMAKE_CUDA_ARCHITECTURES=%d%d)",
                prop.name, prop.major, prop.minor, cudaGetErrorString(e), prop.major,
                prop.minor);
        else
            say(r.text, sizeof r.text,
                "CUDA device 0 (%s, compute capability %d.%d) failed a test kernel: %s (%s)",
                prop.name, prop.major, prop.minor, cudaGetErrorName(e), cudaGetErrorString(e));
        cudaGetLastError();
        return r;
    }
    r.usable = 1;
    say(r.text, sizeof r.text, "%s", prop.name);
    return r;
}

int cuda_probe(char *name, size_t name_len)
{
    /* Whether device 0 is usable does not change while the process runs, so it is probed once
     * (a function-local static is initialised exactly once, even when threads race to it); the
     * free memory is read anew on every call. */
    static const probe_result probed = probe_device();
    if (!probed.usable) {
        say(name, name_len, "%s", probed.text);
        return 0;
    }
    if (!name || name_len == 0) return 1;
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
        cudaGetLastError();
        free_b = total_b = 0;
    }
    const double gib = 1024.0 * 1024.0 * 1024.0;
    say(name, name_len, "%s (%.1f GiB free of %.1f GiB)", probed.text, (double)free_b / gib,
        (double)total_b / gib);
    return 1;
}

gpuals_status cuda_select_device(void)
{
    char reason[256];
    if (!cuda_probe(reason, sizeof reason))
        return gpuals_fail(GPUALS_ERR_NO_DEVICE, "no usable GPU: %s", reason);
    CUDA_TRY(cudaSetDevice(0));
    return GPUALS_OK;
}

gpuals_status cuda_check_fits(size_t need, const char *what, size_t *free_out)
{
    size_t free_b = 0, total_b = 0;
    CUDA_TRY(cudaMemGetInfo(&free_b, &total_b));
    if (free_out) *free_out = free_b;
    if (need > free_b)
        return gpuals_fail(GPUALS_ERR_NOMEM,
                           "%s needs %.1f MiB of device memory, but only %.1f MiB of %.1f MiB "
                           "is free",
                           what, cuda_mib(need), cuda_mib(free_b), cuda_mib(total_b));
    return GPUALS_OK;
}

gpuals_status cuda_alloc_bytes(void **p, size_t bytes, const char *what)
{
    *p = NULL;
    if (bytes == 0) return GPUALS_OK;
    cudaError_t e = cudaMalloc(p, bytes);
    if (e != cudaSuccess) {
        cudaGetLastError();
        *p = NULL;
        return gpuals_fail(e == cudaErrorMemoryAllocation ? GPUALS_ERR_NOMEM : GPUALS_ERR_DEVICE,
                           "cudaMalloc of %.1f MiB for %s failed: %s", cuda_mib(bytes), what,
                           cudaGetErrorString(e));
    }
    return GPUALS_OK;
}

void cuda_free_quiet(void *p)
{
    if (!p) return;
    if (cudaFree(p) != cudaSuccess) cudaGetLastError();
}

/* ========================================================================================== */
/* Initial factors                                                                            */
/* ========================================================================================== */

/* F[r * f + c] = init_rng_value(seed, side, r, c) for every element (grid-stride). */
static __global__ void init_factors_kernel(float *F, int64_t rows, int f, uint64_t seed,
                                           int side)
{
    const int64_t total = rows * (int64_t)f;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride)
        F[e] = init_rng_value(seed, side, e / f, (int)(e % f));
}

/* The body of cuda_init_factors once the arguments are checked; *dev is freed by the caller. */
static gpuals_status init_factors_run(float *F, int64_t rows, int f, uint64_t seed, int side,
                                      float **dev)
{
    const size_t bytes = (size_t)rows * (size_t)f * sizeof(float);
    CUDA_STEP(cuda_check_fits(bytes, "the initial factors", NULL));
    CUDA_STEP(cuda_alloc(dev, (size_t)rows * (size_t)f, "the initial factors"));
    init_factors_kernel<<<cuda_grid_for(rows * (int64_t)f, 256, 65535), 256>>>(*dev, rows, f,
                                                                             seed, side);
    CUDA_CHECK_LAUNCH("init_factors_kernel");
    CUDA_TRY(cudaMemcpy(F, *dev, bytes, cudaMemcpyDeviceToHost));
    return GPUALS_OK;
}

gpuals_status cuda_init_factors(float *F, int64_t rows, int f, uint64_t seed, int side)
{
    if (!F || rows < 0 || f < 1 || (side != 0 && side != 1))
        return gpuals_fail(GPUALS_ERR_USAGE,
                           "cuda_init_factors: bad arguments (F %s, rows %lld, f %d, side %d)",
                           F ? "set" : "NULL", (long long)rows, f, side);
    if (rows == 0) return GPUALS_OK;
    CUDA_STEP(cuda_select_device());
    float *dev = NULL;
    gpuals_status st = init_factors_run(F, rows, f, seed, side, &dev);
    cuda_free_quiet(dev);
    return st;
}

/* ========================================================================================== */
/* Measured ceilings                                                                          */
/* ========================================================================================== */

/* Buffers and events of cuda_measure_ceilings, released together. */
typedef struct {
    char *a, *b;
    float *m;
    cudaEvent_t t0, t1;
    cublasHandle_t blas;
} ceiling_bufs;

/* Best-of-reps device copy bandwidth over `bytes` bytes, counting read + write. */
static gpuals_status measure_copy(ceiling_bufs *c, size_t bytes, double *gbs)
{
    float best = 1e30f;
    CUDA_TRY(cudaMemcpy(c->b, c->a, bytes, cudaMemcpyDeviceToDevice));
    for (int rep = 0; rep < 5; ++rep) {
        float ms = 0;
        CUDA_TRY(cudaEventRecord(c->t0));
        CUDA_TRY(cudaMemcpy(c->b, c->a, bytes, cudaMemcpyDeviceToDevice));
        CUDA_TRY(cudaEventRecord(c->t1));
        CUDA_TRY(cudaEventSynchronize(c->t1));
        CUDA_TRY(cudaEventElapsedTime(&ms, c->t0, c->t1));
        if (ms < best) best = ms;
    }
    *gbs = 2.0 * (double)bytes / ((double)best * 1e-3) / 1e9;
    return GPUALS_OK;
}

/* Best-of-reps SGEMM of n x n matrices (2 n^3 flops) on the buffer m (3 n^2 floats). */
static gpuals_status measure_sgemm(ceiling_bufs *c, int n, double *gflops)
{
    const float one = 1.0f, zero = 0.0f;
    const size_t nn = (size_t)n * (size_t)n;
    float *A = c->m, *B = c->m + nn, *C = c->m + 2 * nn;
    CUDA_TRY(cudaMemset(c->m, 0, 3 * nn * sizeof(float)));
    CUDA_TRY(cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, A, n, B, n, &zero,
                         C, n));
    float best = 1e30f;
    for (int rep = 0; rep < 5; ++rep) {
        float ms = 0;
        CUDA_TRY(cudaEventRecord(c->t0));
        CUDA_TRY(cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, A, n, B, n,
                             &zero, C, n));
        CUDA_TRY(cudaEventRecord(c->t1));
        CUDA_TRY(cudaEventSynchronize(c->t1));
        CUDA_TRY(cudaEventElapsedTime(&ms, c->t0, c->t1));
        if (ms < best) best = ms;
    }
    *gflops = 2.0 * (double)n * (double)n * (double)n / ((double)best * 1e-3) / 1e9;
    return GPUALS_OK;
}

/* Allocate, measure both ceilings; the caller releases c. */
static gpuals_status ceilings_run(ceiling_bufs *c, double *copy_gbs, double *sgemm_gflops)
{
    /* Sizes: a 512 MiB copy and a 4096^3 GEMM, smaller when memory is short. */
    size_t free_b = 0;
    CUDA_STEP(cuda_check_fits(0, "the ceiling measurement", &free_b));
    size_t copy_bytes = (size_t)512 << 20;
    while (copy_bytes > ((size_t)1 << 20) && 2 * copy_bytes > free_b / 2) copy_bytes /= 2;
    int n = 4096;
    while (n > 256 && 3 * (size_t)n * n * sizeof(float) > free_b / 4) n /= 2;

    /* Resources. */
    CUDA_TRY(cudaEventCreate(&c->t0));
    CUDA_TRY(cudaEventCreate(&c->t1));
    CUDA_TRY(cublasCreate(&c->blas));
    CUDA_TRY(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH));
    CUDA_STEP(cuda_alloc(&c->a, copy_bytes, "the copy-bandwidth source"));
    CUDA_STEP(cuda_alloc(&c->b, copy_bytes, "the copy-bandwidth target"));
    CUDA_TRY(cudaMemset(c->a, 1, copy_bytes));

    /* The two measurements. */
    CUDA_STEP(measure_copy(c, copy_bytes, copy_gbs));
    cuda_free_quiet(c->a);
    cuda_free_quiet(c->b);
    c->a = c->b = NULL;
    CUDA_STEP(cuda_alloc(&c->m, 3 * (size_t)n * (size_t)n, "the GEMM-throughput matrices"));
    CUDA_STEP(measure_sgemm(c, n, sgemm_gflops));
    return GPUALS_OK;
}

gpuals_status cuda_measure_ceilings(double *copy_gbs, double *sgemm_gflops)
{
    if (!copy_gbs || !sgemm_gflops)
        return gpuals_fail(GPUALS_ERR_USAGE, "cuda_measure_ceilings: NULL output");
    *copy_gbs = *sgemm_gflops = 0.0;
    CUDA_STEP(cuda_select_device());
    ceiling_bufs c;
    memset(&c, 0, sizeof c);
    gpuals_status st = ceilings_run(&c, copy_gbs, sgemm_gflops);
    cuda_free_quiet(c.a);
    cuda_free_quiet(c.b);
    cuda_free_quiet(c.m);
    if (c.blas) cublasDestroy(c.blas);
    if (c.t0) cudaEventDestroy(c.t0);
    if (c.t1) cudaEventDestroy(c.t1);
    return st;
}
