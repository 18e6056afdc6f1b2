/*
 * bench.h - what the parts of gpuals-bench share: options, the run's context and the record
 * writer.
 *
 * gpuals-bench loads one ratings file, trains on it and times each phase separately by calling
 * the library's internal functions (host/als.h, host/query.h, cuda/gpuals_cuda.h). Each timed
 * phase becomes one JSON line (see bench_emit) holding its timing statistics, its floor (bytes
 * and flops, bench_work.h), the achieved rates and their share of the measured ceilings.
 */
#ifndef GPUALS_BENCH_H
#define GPUALS_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include "bench_work.h"
#include "csr.h"
#include "gpuals.h"
#include "query.h"

/* The phases that can be asked for with --phases. */
enum {
    BENCH_PH_LOAD = 1 << 0,    /* read the file, build both CSRs and the confidences */
    BENCH_PH_GRAM = 1 << 1,    /* YtY and XtX alone */
    BENCH_PH_ITER = 1 << 2,    /* full iterations (both halves), steady state */
    BENCH_PH_HALF = 1 << 3,    /* the users half and the items half separately */
    BENCH_PH_LOSS = 1 << 4,    /* the training loss */
    BENCH_PH_TOPN = 1 << 5,    /* top-n for all users, liked items filtered */
    BENCH_PH_SIMILAR = 1 << 6, /* cosine top-n for all items */
    BENCH_PH_FIT = 1 << 7,     /* a whole fit of --fit-iters iterations from the initial factors */
    BENCH_PH_UPLOAD = 1 << 8,  /* GPU only: upload and download of a fit (cuda_fit_stats) */
};

typedef struct {
    const char *data; /* ratings file (required unless ceilings_only) */
    gpuals_format format;
    gpuals_device device; /* CPU or GPU */
    gpuals_solver solver;
    int factors, cg_steps;
    int reps, warmup, load_reps;
    int threads; /* >= 1 */
    int topn;
    int fit_iters;
    unsigned phases; /* BENCH_PH_* */
    int cg_form;     /* GPU: 0 fused, 1 library (cuda_cg_form) */
    uint64_t seed;
    double reg, alpha;
    int ceilings;                          /* measure the ceilings in this process first */
    int ceilings_only;                     /* measure the ceilings and stop */
    double stream_mib;                     /* size of each STREAM array */
    int gemm_n;                            /* size of the ceiling sgemm */
    double peak_gbps, peak_gflops;         /* CPU ceilings; 0 when unknown */
    double peak_dev_gbps, peak_dev_gflops; /* GPU ceilings; 0 when unknown */
    const char *json_path;                 /* NULL: stdout */
    int verbose;
} bench_opts;

/* One record: the timing samples of a phase and what it is judged against. */
typedef struct {
    const char *phase;
    double *samples; /* seconds; sorted in place by bench_emit; NULL when not timed */
    int n;
    bench_work work;       /* the floor; a 0 field is written as null */
    double gbps, gflops;   /* rates measured by someone else (NaN: derive from the floor) */
    double final_loss;     /* NaN when none */
    int loss_iters;        /* iterations behind final_loss, 0 when none */
    double device_mem_mib; /* NaN when none */
    const char *note;      /* "" or a short explanation */
} bench_record;

typedef struct {
    bench_opts o;
    FILE *out;
    gpuals_data *data;
    gpuals_params p; /* training settings derived from the options */
    csr Cui, Ciu;    /* confidences, users x items and items x users */
    int64_t users, items, nnz;
    int64_t file_bytes;
    float *X, *Y;          /* users x f and items x f, row-major */
    char device_name[256]; /* CPU model or GPU name: what the run's device is */
    char cpu_name[256];    /* CPU model */
} bench_ctx;

/* Write one record as a JSON line to ctx->out with every field present (null where a value does
 * not apply): settings, shape, timing statistics, floor, rates, shares of the ceilings, process
 * peak memory. Returns 0, or -1 when writing fails (a message is printed). */
int bench_emit(bench_ctx *ctx, const bench_record *r);

/* The floor of parts of one iteration with ctx's solver, factors and CG steps: both Gram
 * matrices (grams), the users' solves (users), the items' solves (items); 1 includes a part. */
bench_work bench_iteration_work(const bench_ctx *ctx, int grams, int users, int items);

/* A record with no samples, no floor and the given note. */
bench_record bench_record_none(const char *phase, const char *note);

/* Seconds on the monotonic clock. */
double bench_now(void);

/* Timestamps taken by a fit's per-iteration callback (bench_on_iteration). */
typedef struct {
    double *t;    /* t[k]: bench_now() when iteration k + 1 called back */
    double *loss; /* the loss passed with iteration k + 1 (NaN when not computed) */
    int n, cap;
} bench_clock;

/* Room for cap callbacks; 0, or -1 when out of memory. bench_clock_free releases it. */
int bench_clock_init(bench_clock *c, int cap);
void bench_clock_free(bench_clock *c);

/* A gpuals_iter_fn recording the time and loss into the bench_clock passed as user. */
int bench_on_iteration(int iteration, double seconds, double loss, void *user);

/* Events seen inside a CPU fit at the start and end of each half-iteration's solve
 * (bench_hooks.c): kind[k] is BENCH_HALF_START or BENCH_HALF_END, side[k] the side an end names
 * (0 users, 1 items; -1 for a start), t[k] its bench_now(). n counts every event, also those
 * past cap, which are not stored. */
enum { BENCH_HALF_START = 0, BENCH_HALF_END = 1 };

typedef struct {
    double *t;
    int *kind, *side;
    int n, cap;
} bench_half_log;

/* Record the events of the fits run until bench_half_log_stop into log (n reset to 0). */
void bench_half_log_start(bench_half_log *log);
void bench_half_log_stop(void);

/* Print "gpuals-bench: what: status: message" for a failed library call; returns 1. */
int bench_fail(const char *what, gpuals_status s);

/* The top-n function of a device: topn_batch (host/query.h) or cuda_topn. */
typedef gpuals_status (*bench_topn_fn)(const float *Q, int64_t nq, const float *C, int64_t n_cand,
                                       int f, const topn_filter *flt, int n, int64_t *idx,
                                       float *score, int *n_out);

/* Top-n for every user (liked items filtered) and cosine top-n for every item (itself left
 * out), on ctx->X and ctx->Y with the given top-n function; each emits its record. 0 on
 * success, 1 after printing a failure. */
int bench_phase_topn(bench_ctx *ctx, bench_topn_fn topn);
int bench_phase_similar(bench_ctx *ctx, bench_topn_fn topn);

/* Print a progress line on stderr under --verbose. */
void bench_progress(const bench_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Run the CPU phases on ctx's data; 0 on success, 1 after printing a library failure. */
int bench_run_cpu(bench_ctx *ctx);

/* Check that a GPU is usable and name it in ctx->device_name (the probe's text without its
 * memory figures); 0, or 77 after printing why not (no device, no driver, or a build without
 * CUDA). Call before bench_run_gpu and bench_gpu_ceilings. */
int bench_gpu_open(bench_ctx *ctx);

/* Run the GPU phases; 0 on success, 1 after printing a failure. */
int bench_run_gpu(bench_ctx *ctx);

/* Measure the GPU ceilings (cuda_measure_ceilings), record them in ctx's options and emit their
 * records; 0, or 1 after printing a failure. */
int bench_gpu_ceilings(bench_ctx *ctx);

#endif /* GPUALS_BENCH_H */
