/*
 * bench_hooks.c - timestamps at the start and end of each half-iteration inside a real fit.
 *
 * host/als.h trains whole fits only, yet the benchmark must time the users half and the items
 * half separately, without running anything the real fit does not run. The CPU engine calls the
 * hook set with als_set_half_hook() just before and just after it solves the rows of each
 * half-iteration (after the Gram matrix is ready); the hook below takes a timestamp. Nothing
 * else about the fit changes: same code, same threads, same data.
 *
 * The events are checked before use (bench_cpu.c): two starts and two ends per iteration, ends
 * naming the users side then the items side. If the engine is restructured so that this no longer
 * holds, the half-iteration rows say so instead of printing wrong times.
 */
#include "als.h"
#include "bench.h"

/* Only the thread that runs the fit's loop calls the hook (outside the engine's parallel
 * regions). */
static void record(int end, int side, void *user)
{
    bench_half_log *log = user;
    if (log->n < log->cap) {
        log->t[log->n] = bench_now();
        log->kind[log->n] = end ? BENCH_HALF_END : BENCH_HALF_START;
        log->side[log->n] = end ? side : -1;
    }
    log->n++; /* counts past cap too, so an overflow is visible */
}

void bench_half_log_start(bench_half_log *log)
{
    log->n = 0;
    als_set_half_hook(record, log);
}

void bench_half_log_stop(void) { als_set_half_hook(NULL, NULL); }
