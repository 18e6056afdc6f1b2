/*
 * test_gpu_probe.c - the CUDA backend's behaviour that does not need a GPU: the probe, the
 * argument checks that come before any device work, and a clean GPUALS_ERR_NO_DEVICE (factors
 * untouched) where no device is usable, as on CI where the driver is missing. Also checks that
 * the CPU path still trains and ranks in a binary that links the CUDA runtime, with --device
 * auto falling back and saying why.
 *
 * Label cpu: it runs (and must pass) on every machine where the CUDA backend is built; on a
 * machine with a GPU the no-device assertions are replaced by success checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "als.h"
#include "csr.h"
#include "gpuals_cuda.h"
#include "query.h"
#include "test_gpu_util.h"

static int have_device;
static char probe_text[256];

/* A 6 x 5 problem and its initial factors. */
typedef struct {
    csr Cui, Ciu;
    gpuals_params p;
    float X[6 * 4], Y[5 * 4];
} tiny;

static void tiny_make(tiny *t)
{
    memset(t, 0, sizeof *t);
    gpu_problem pr = {6, 5, 0.5, 0, 0, 0, 2.0, 3};
    gpu_make_problem(&pr, &t->Cui, &t->Ciu);
    gpuals_params_default(&t->p);
    t->p.factors = 4;
    t->p.iters = 2;
    t->p.threads = 1;
    t->p.device = GPUALS_DEVICE_GPU;
    als_init_factors(t->X, 6, 4, t->p.seed, ALS_SIDE_USERS);
    als_init_factors(t->Y, 5, 4, t->p.seed, ALS_SIDE_ITEMS);
}

static void tiny_free(tiny *t)
{
    csr_free(&t->Cui);
    csr_free(&t->Ciu);
}

/* The probe answers either way, with a reason or a description. */
static void test_probe_explains_itself(void **state)
{
    (void)state;
    char again[256];
    assert_int_equal(cuda_probe(again, sizeof again), have_device);
    assert_true(strlen(again) > 0);
    if (have_device)
        assert_non_null(strstr(again, "GiB free of"));
    else
        assert_null(strstr(again, "GiB free of"));
    assert_int_equal(cuda_probe(NULL, 0), have_device);
    if (!have_device) assert_string_equal(again, probe_text); /* the same reason every time */
}

/* float64 is a usage error before any device work. */
static void test_float64_is_usage_error(void **state)
{
    (void)state;
    tiny t;
    tiny_make(&t);
    t.p.dtype = GPUALS_DTYPE_FLOAT64;
    assert_int_equal(cuda_als_fit(&t.Cui, &t.Ciu, &t.p, t.X, t.Y, NULL, NULL, CUDA_CG_FUSED),
                     GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "float64"));
    tiny_free(&t);
}

/* Bad settings and shapes, and a non-finite confidence named by row and column. */
static void test_argument_checks(void **state)
{
    (void)state;
    tiny t;
    tiny_make(&t);
    t.p.cg_steps = 0;
    assert_int_equal(cuda_als_fit(&t.Cui, &t.Ciu, &t.p, t.X, t.Y, NULL, NULL, CUDA_CG_FUSED),
                     GPUALS_ERR_USAGE);
    t.p.cg_steps = 3;
    t.p.reg = -1;
    assert_int_equal(cuda_als_fit(&t.Cui, &t.Ciu, &t.p, t.X, t.Y, NULL, NULL, CUDA_CG_FUSED),
                     GPUALS_ERR_USAGE);
    t.p.reg = 0.01;
    assert_int_equal(cuda_als_fit(&t.Cui, &t.Cui, &t.p, t.X, t.Y, NULL, NULL, CUDA_CG_FUSED),
                     GPUALS_ERR_USAGE);
    assert_int_equal(cuda_als_fit(&t.Cui, &t.Ciu, &t.p, t.X, t.Y, NULL, NULL,
                                  (cuda_cg_form)7),
                     GPUALS_ERR_USAGE);

    /* A NaN confidence in the second stored entry of some row. */
    int64_t r = 0;
    while (r < t.Cui.rows && csr_row_len(&t.Cui, r) < 2) r++;
    assert_true(r < t.Cui.rows);
    t.Cui.data[t.Cui.indptr[r] + 1] = NAN;
    assert_int_equal(cuda_als_fit(&t.Cui, &t.Ciu, &t.p, t.X, t.Y, NULL, NULL, CUDA_CG_FUSED),
                     GPUALS_ERR_NUMERIC);
    char want[64];
    snprintf(want, sizeof want, "user %lld (row index) has a non-finite", (long long)r);
    if (!strstr(gpuals_last_error(), want))
        fail_msg("expected \"%s\" in: %s", want, gpuals_last_error());
    tiny_free(&t);
}

/* Without a device: NO_DEVICE and untouched factors; with one: success. */
static void test_no_device_is_clean(void **state)
{
    (void)state;
    tiny t;
    tiny_make(&t);
    float X0[6 * 4], Y0[5 * 4];
    memcpy(X0, t.X, sizeof X0);
    memcpy(Y0, t.Y, sizeof Y0);
    gpuals_status want = have_device ? GPUALS_OK : GPUALS_ERR_NO_DEVICE;

    assert_int_equal(cuda_als_fit(&t.Cui, &t.Ciu, &t.p, t.X, t.Y, NULL, NULL, CUDA_CG_FUSED),
                     want);
    if (!have_device) {
        assert_non_null(strstr(gpuals_last_error(), "no usable GPU"));
        assert_memory_equal(t.X, X0, sizeof X0);
        assert_memory_equal(t.Y, Y0, sizeof Y0);
    }

    float F[5 * 4];
    assert_int_equal(cuda_init_factors(F, 5, 4, 1, 0), want);
    int64_t idx[5 * 2];
    float score[5 * 2];
    int n_out[5];
    assert_int_equal(cuda_topn(t.Y, 5, t.Y, 5, 4, NULL, 2, idx, score, n_out), want);
    double gbs = -1, gflops = -1;
    if (!have_device) {
        assert_int_equal(cuda_measure_ceilings(&gbs, &gflops), GPUALS_ERR_NO_DEVICE);
        assert_true(gbs == 0 && gflops == 0);
    }
    tiny_free(&t);
}

/* The CPU path trains in this CUDA-linked binary; auto says where it went. */
static void test_auto_trains_somewhere(void **state)
{
    (void)state;
    tiny t;
    tiny_make(&t);
    t.p.device = GPUALS_DEVICE_AUTO;
    gpuals_device used = (gpuals_device)-1;
    char note[256] = "";
    assert_int_equal(als_fit(&t.Cui, &t.Ciu, &t.p, t.X, t.Y, NULL, NULL, &used, note,
                             sizeof note),
                     GPUALS_OK);
    assert_int_equal(used, have_device ? GPUALS_DEVICE_GPU : GPUALS_DEVICE_CPU);
    assert_true(strlen(note) > 0);
    for (int k = 0; k < 6 * 4; k++) assert_true(isfinite(t.X[k]));

    t.p.device = GPUALS_DEVICE_GPU;
    gpuals_status st = als_fit(&t.Cui, &t.Ciu, &t.p, t.X, t.Y, NULL, NULL, &used, note,
                               sizeof note);
    assert_int_equal(st, have_device ? GPUALS_OK : GPUALS_ERR_NO_DEVICE);
    tiny_free(&t);
}

/* Ranking under auto: the GPU when usable, else the CPU with the probe's reason; under gpu
 * without a device, NO_DEVICE with *used left alone. */
static void test_topn_on_auto_and_gpu(void **state)
{
    (void)state;
    tiny t;
    tiny_make(&t);
    int64_t idx[5 * 2];
    float score[5 * 2];
    int n_out[5];
    char note[512] = "";
    gpuals_device used = (gpuals_device)-1;
    assert_int_equal(topn_batch_on(GPUALS_DEVICE_AUTO, t.Y, 5, t.Y, 5, 4, NULL, 2, idx, score,
                                   n_out, &used, note, sizeof note),
                     GPUALS_OK);
    if (have_device) {
        assert_int_equal(used, GPUALS_DEVICE_GPU);
        assert_non_null(strstr(note, "ranking on GPU 0: "));
    } else {
        assert_int_equal(used, GPUALS_DEVICE_CPU);
        assert_non_null(strstr(note, "no usable GPU ("));
        assert_non_null(strstr(note, probe_text));
    }
    for (int q = 0; q < 5; q++) assert_int_equal(n_out[q], 2);

    used = (gpuals_device)-1;
    gpuals_status st = topn_batch_on(GPUALS_DEVICE_GPU, t.Y, 5, t.Y, 5, 4, NULL, 2, idx, score,
                                     n_out, &used, note, sizeof note);
    assert_int_equal(st, have_device ? GPUALS_OK : GPUALS_ERR_NO_DEVICE);
    assert_int_equal(used, have_device ? GPUALS_DEVICE_GPU : (gpuals_device)-1);
    if (!have_device) assert_non_null(strstr(gpuals_last_error(), "no usable GPU"));
    tiny_free(&t);
}

int main(int argc, char **argv)
{
    have_device = cuda_probe(probe_text, sizeof probe_text);
    fprintf(stderr, "probe: %s: %s\n", have_device ? "device" : "no device", probe_text);
    gpu_test_filter(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_explains_itself),
        cmocka_unit_test(test_float64_is_usage_error),
        cmocka_unit_test(test_argument_checks),
        cmocka_unit_test(test_no_device_is_clean),
        cmocka_unit_test(test_auto_trains_somewhere),
        cmocka_unit_test(test_topn_on_auto_and_gpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
