/*
 * test_bench_work.c - the benchmark's floors (bench/bench_work.c) against hand-computed values,
 * its timing statistics against numpy's quantile definition, and a sanity run of the ceiling
 * measurement (bench/bench_ceiling.c) on tiny sizes (rates positive and finite; no speed is
 * asserted).
 *
 * The small cases use rows = 2, other = 3, nnz = 5, f = 4, 3 CG steps; each expected number is
 * worked out in the comment beside it from the formulas in bench_work.c.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "bench_ceiling.h"
#include "bench_work.h"

/* Exact for these small integers (and the thirds of the Cholesky count to 1e-9). */
static void assert_close(double got, double want)
{
    if (fabs(got - want) > 1e-9 * (fabs(want) > 1.0 ? fabs(want) : 1.0)) {
        print_error("got %.12g, want %.12g\n", got, want);
        fail();
    }
}

static void test_gram(void **state)
{
    (void)state;
    /* flops: rows*f*(f+1) = 10*4*5 = 200; bytes: F read 10*4*4 = 160 + f*f*8 = 128. */
    bench_work w = bench_work_gram(10, 4);
    assert_close(w.flops, 200.0);
    assert_close(w.bytes, 288.0);
}

static void test_half_cg_small(void **state)
{
    (void)state;
    /* setup: rows*(2f^2 + 5f) = 2*(32 + 20) = 104, nnz*(4f + 3) = 5*19 = 95 -> 199.
     * step: rows*(2f^2 + 12f + 2) = 2*82 = 164, nnz*(4f + 2) = 5*18 = 90 -> 254; 3 steps 762.
     * flops 961. bytes: CSR (rows+1)*8 + nnz*8 = 24 + 40 = 64; other factors 3*4*4 = 48;
     * Gram read 16*8 = 128; own factors read and written 2*2*4*4 = 64 -> 304. */
    bench_work w = bench_work_half_cg(2, 3, 5, 4, 3);
    assert_close(w.flops, 961.0);
    assert_close(w.bytes, 304.0);
}

static void test_half_cg_leading_order(void **state)
{
    (void)state;
    /* For large f the count approaches rows*2f^2*(s+1) + nnz*4f*(s+1); here the vector terms
     * add well under 1%: 100*(5f + 3*(12f + 2)) + 10000*(3 + 3*2) = 4,190,600 on 9.6e8. */
    int64_t rows = 100, nnz = 10000;
    int f = 1000, s = 3;
    double leading = (double)rows * 2.0 * f * f * (s + 1) + (double)nnz * 4.0 * f * (s + 1);
    bench_work w = bench_work_half_cg(rows, 50, nnz, f, s);
    assert_close(w.flops, leading + 4190600.0);
    assert_true(w.flops / leading < 1.01);
}

static void test_half_cholesky_small(void **state)
{
    (void)state;
    /* per entry f^2 + 4f = 32, 5 entries -> 160; per row f + f^3/3 + f^2/2 + f/6 + 2f^2
     * = 4 + 64/3 + 8 + 2/3 + 32 = 66, 2 rows -> 132; flops 292. bytes as CG without the warm
     * start read: 64 + 48 + 128 + 32 = 272. */
    bench_work w = bench_work_half_cholesky(2, 3, 5, 4);
    assert_close(w.flops, 292.0);
    assert_close(w.bytes, 272.0);
}

static void test_loss(void **state)
{
    (void)state;
    /* YtY 3*4*5 = 60; users 2*(2f^2 + 2f) = 80; entries 5*(2f + 9) = 85; norms 2f*(2+3) = 40:
     * 265 flops. bytes: CSR 64 + factors (2+3)*4*4 = 80 + YtY 128 = 272. */
    bench_work w = bench_work_loss(2, 3, 5, 4);
    assert_close(w.flops, 265.0);
    assert_close(w.bytes, 272.0);
}

static void test_topn(void **state)
{
    (void)state;
    /* scores 2*q*c*f = 2*2*3*4 = 48 flops; bytes: factors (2+3)*16 = 80, results 2*2*12 = 48,
     * counts 2*4 = 8 -> 136; with 5 excluded entries add row pointers 3*8 and columns 5*4. */
    bench_work w = bench_work_topn(2, 3, 0, 4, 2);
    assert_close(w.flops, 48.0);
    assert_close(w.bytes, 136.0);
    w = bench_work_topn(2, 3, 5, 4, 2);
    assert_close(w.flops, 48.0);
    assert_close(w.bytes, 180.0);
}

static void test_load_and_upload(void **state)
{
    (void)state;
    /* load: the file plus 2 * (CSR 2x3: 64 + CSR 3x2: 32 + 40 = 72) = 1000 + 272, no flops.
     * upload: both CSRs 64 + 72 and both factor matrices (2+3)*4*4 = 80 -> 216. */
    bench_work w = bench_work_load(1000, 2, 3, 5);
    assert_close(w.bytes, 1272.0);
    assert_close(w.flops, 0.0);
    w = bench_work_upload(2, 3, 5, 4);
    assert_close(w.bytes, 216.0);
}

static void test_stats(void **state)
{
    (void)state;
    /* Odd count: the order statistics themselves. */
    double odd[] = {5, 1, 4, 2, 3};
    bench_stats s = bench_stats_of(odd, 5);
    assert_close(s.median, 3);
    assert_close(s.min, 1);
    assert_close(s.max, 5);
    assert_close(s.q1, 2);
    assert_close(s.q3, 4);

    /* Even count, interpolated like numpy.quantile: 1 2 3 4 -> 2.5, 1.75, 3.25. */
    double even[] = {4, 1, 3, 2};
    s = bench_stats_of(even, 4);
    assert_close(s.median, 2.5);
    assert_close(s.q1, 1.75);
    assert_close(s.q3, 3.25);

    /* One sample, and none. */
    double one[] = {0.25};
    s = bench_stats_of(one, 1);
    assert_close(s.median, 0.25);
    assert_close(s.q1, 0.25);
    assert_close(s.max, 0.25);
    s = bench_stats_of(NULL, 0);
    assert_close(s.median, 0.0);
}

static void test_ceilings_run(void **state)
{
    (void)state;
    /* Tiny sizes: only that the measurement runs and yields usable numbers. */
    bench_ceilings c;
    assert_int_equal(bench_measure_cpu_ceilings(1, 1.0, 64, 2, &c), 0);
    assert_true(isfinite(c.copy_gbps) && c.copy_gbps > 0.0);
    assert_true(isfinite(c.triad_gbps) && c.triad_gbps > 0.0);
    assert_true(isfinite(c.sgemm_gflops) && c.sgemm_gflops > 0.0);
    assert_int_equal(c.array_bytes, 1024 * 1024);
    assert_int_equal(c.gemm_n, 64);
    assert_int_equal(c.threads, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gram),
        cmocka_unit_test(test_half_cg_small),
        cmocka_unit_test(test_half_cg_leading_order),
        cmocka_unit_test(test_half_cholesky_small),
        cmocka_unit_test(test_loss),
        cmocka_unit_test(test_topn),
        cmocka_unit_test(test_load_and_upload),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_ceilings_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
