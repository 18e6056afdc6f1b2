/*
 * als.h - the implicit-feedback ALS engine behind gpuals_train.
 *
 * Minimises  sum_{u,i} c_ui (p_ui - x_u.y_i)^2 + lambda (|X|^2 + |Y|^2)
 * with p_ui = 1 where observed and c_ui = 1 elsewhere (the confidences in C are used as the
 * `implicit` library uses them: an observed entry weighs c, an unobserved one 1). Each
 * half-iteration solves, for every row u of one side against the fixed factors Y of the other,
 *
 *     (YtY + lambda_u I + Y_u^T (C_u - I) Y_u) x_u = Y_u^T C_u p_u
 *
 * Cui is users x items, Ciu its transpose, both holding confidences. X (users x f) and Y
 * (items x f) are row-major and are both input (warm start; see als_init_factors) and output.
 */
#ifndef GPUALS_ALS_H
#define GPUALS_ALS_H

#include <stdint.h>

#include "csr.h"
#include "gpuals.h"
#include "idmap.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { ALS_SIDE_USERS = 0, ALS_SIDE_ITEMS = 1 };

/* Fill F (rows x f) with the uniform [0, 0.01) initial values of the counter-based generator
 * in init_rng.h, keyed by (seed, side, row, column): identical on every thread count and on the
 * GPU. Rows with no interactions are zeroed by the solvers, not here. */
void als_init_factors(float *F, int64_t rows, int f, uint64_t seed, int side);
void als_init_factors_f64(double *F, int64_t rows, int f, uint64_t seed, int side);

/* Train on the CPU in float32 for p->iters iterations (users, then items). cb (may be NULL)
 * runs after each iteration with the loss when p->compute_loss, else NaN. */
gpuals_status als_fit_cpu(const csr *Cui, const csr *Ciu, const gpuals_params *p, float *X,
                          float *Y, gpuals_iter_fn cb, void *cb_user);

/* The same in float64: the reference the tests compare against. */
gpuals_status als_fit_cpu_f64(const csr *Cui, const csr *Ciu, const gpuals_params *p,
                              double *X, double *Y, gpuals_iter_fn cb, void *cb_user);

/* The training loss as the `implicit` library defines it:
 *   [ sum_u ( x_u^T YtY x_u + sum_{i in u} ((c-1)(x.y)^2 - 2c(x.y) + c) )
 *     + lambda (|X|^2 + |Y|^2) ] / (sum c + U*I - nnz)
 * (with reg_scale FREQUENCY the lambda terms are weighted per row like the solves). */
double als_loss(const csr *Cui, const float *X, const float *Y, int f, const gpuals_params *p);
double als_loss_f64(const csr *Cui, const double *X, const double *Y, int f,
                    const gpuals_params *p);

/* Exact solve of one row against fixed Y (items x f) given its liked items and confidences:
 * x = (YtY + lambda I + Y_u^T (C_u - I) Y_u)^-1 Y_u^T C_u p_u, in double. YtY may be NULL (it
 * is then computed). A row with no items gives zeros. GPUALS_ERR_NUMERIC when singular. */
gpuals_status als_solve_row_exact(const float *Y, int64_t n_items, int f, const double *YtY,
                                  double lambda, const int32_t *items, const float *conf,
                                  int64_t n, float *x_out);

/* Check the arguments of a fit, on the CPU and the GPU path alike (fn names the caller in
 * messages): non-NULL pointers, settings in range, Ciu the transpose shape of Cui, every column
 * index inside its matrix and every confidence finite. GPUALS_ERR_USAGE for a bad argument,
 * GPUALS_ERR_NUMERIC naming the row and column of a non-finite confidence. */
gpuals_status als_check_fit_args(const char *fn, const csr *Cui, const csr *Ciu,
                                 const gpuals_params *p, const void *X, const void *Y);

/* Why a row's solve failed during training. */
typedef enum {
    ALS_FAIL_NONE = 0,
    ALS_FAIL_NONFINITE,  /* a solved row holds NaN or infinity */
    ALS_FAIL_SINGULAR,   /* Cholesky found a pivot that is not clearly positive */
    ALS_FAIL_LAPACK,     /* LAPACK rejected an argument (a bug) */
} als_fail_kind;

/* Report a row's failure, as every engine (CPU and GPU) does: GPUALS_ERR_NUMERIC (INTERNAL for
 * LAPACK) with a message naming the side, the row index and the 1-based iteration of this fit;
 * detail is the 1-based pivot for SINGULAR (0 when not known) or LAPACK's info. The failure is
 * also kept, per thread, for als_failure_restate. */
gpuals_status als_fail_row(int side, int64_t row, als_fail_kind kind, int iteration,
                           int detail);

/* st, with its message restated when it is the failure als_fail_row last reported on this
 * thread: the row named by its raw id in users or items (when given), the iteration counted
 * after iteration_base earlier ones (a fit that continues a longer run). Any other status or
 * message is returned as it is. */
gpuals_status als_failure_restate(gpuals_status st, const idmap *users, const idmap *items,
                                  int iteration_base);

/* An instrumentation hook for the benchmark (bench/): when set, fn(0, side, user) runs just
 * before the CPU engine solves the rows of a half-iteration (after its Gram matrix is ready) and
 * fn(1, side, user) just after, on the thread that runs the training loop; side is
 * ALS_SIDE_USERS or ALS_SIDE_ITEMS. Process-wide; NULL (the default) turns it off. */
typedef void (*als_half_hook_fn)(int end, int side, void *user);
void als_set_half_hook(als_half_hook_fn fn, void *user);

/* YtY (f x f, row-major, double) of F (rows x f). */
void als_gram(const float *F, int64_t rows, int f, double *out);

/* Run the training on the device p->device chooses: CPU, or GPU through cuda/ when built with
 * CUDA and a device is usable (AUTO falls back to the CPU; GPU fails with NO_DEVICE). *used
 * (may be NULL) receives GPUALS_DEVICE_CPU or GPUALS_DEVICE_GPU; note (may be NULL, size
 * note_len) receives a line such as "using GPU 0: NVIDIA H200" or why AUTO fell back. */
gpuals_status als_fit(const csr *Cui, const csr *Ciu, const gpuals_params *p, float *X,
                      float *Y, gpuals_iter_fn cb, void *cb_user, gpuals_device *used,
                      char *note, size_t note_len);

#ifdef __cplusplus
}
#endif

#endif /* GPUALS_ALS_H */
