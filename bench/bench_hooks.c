/*
 * bench_hooks.c - timestamps at the start and end of each half-iteration inside a real fit.
 *
 * host/als.h trains whole fits only, yet the benchmark must time the users half and the items
 * half separately, without running anything the real fit does not run. The CPU engine
 * (host/als_engine.h, run_half) brackets the solve of every half-iteration with two calls into
 * host/als.c:
 *     als_failure_reset(&fail);                       -- after the Gram matrix is ready
 *     solve every row of the side
 *     return als_failure_status(&fail, side, iter);   -- side 0 users, 1 items
 * gpuals-bench is linked with `--wrap=als_failure_reset --wrap=als_failure_status` (bench.cmake),
 * so those calls from the engine's object file reach the __wrap_ functions below, which take a
 * timestamp while recording is on and then call the real functions unchanged. Nothing else about
 * the fit changes: same code, same threads, same data.
 *
 * The events are checked before use (bench_cpu.c): two starts and two ends per iteration, ends
 * naming the users side then the items side. If the engine is restructured so that this no longer
 * holds, the half-iteration rows say so instead of printing wrong times. The real functions are
 * referenced weakly so that the link never fails if they are renamed; a call reaching a wrapper
 * whose real function is absent is a broken build and stops the program.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

/* The engine's functions, through the names --wrap gives the originals. Their argument is a
 * pointer to the engine's private failure record, passed through untouched. */
extern void __real_als_failure_reset(void *fl) __attribute__((weak));
extern gpuals_status __real_als_failure_status(const void *fl, int side, int iteration)
    __attribute__((weak));
void __wrap_als_failure_reset(void *fl);
gpuals_status __wrap_als_failure_status(const void *fl, int side, int iteration);

/* The log being filled, or NULL when recording is off. Only the thread that runs the fit's
 * loop calls the wrappers (outside the engine's parallel regions). */
static bench_half_log *recording;

static void record(int kind, int side)
{
    bench_half_log *log = recording;
    if (!log) return;
    if (log->n < log->cap) {
        log->t[log->n] = bench_now();
        log->kind[log->n] = kind;
        log->side[log->n] = side;
    }
    log->n++; /* counts past cap too, so an overflow is visible */
}

void __wrap_als_failure_reset(void *fl)
{
    if (!__real_als_failure_reset) {
        fputs("gpuals-bench: als_failure_reset is wrapped but not linked\n", stderr);
        abort();
    }
    record(BENCH_HALF_START, -1);
    __real_als_failure_reset(fl);
}

gpuals_status __wrap_als_failure_status(const void *fl, int side, int iteration)
{
    if (!__real_als_failure_status) {
        fputs("gpuals-bench: als_failure_status is wrapped but not linked\n", stderr);
        abort();
    }
    record(BENCH_HALF_END, side);
    return __real_als_failure_status(fl, side, iteration);
}

void bench_half_log_start(bench_half_log *log)
{
    log->n = 0;
    recording = log;
}

void bench_half_log_stop(void) { recording = NULL; }
