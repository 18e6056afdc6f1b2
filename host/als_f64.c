/*
 * als_f64.c - the float64 instance of the CPU ALS engine (als_engine.h): the reference.
 *
 * The same algorithm as als_f32.c with every factor and vector in double; the tests compare the
 * float32 path and the GPU against it. Public entry points: als_fit_cpu_f64 and als_loss_f64.
 */
#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <stdlib.h>

#include "als.h"
#include "als_internal.h"
#include "status.h"

#define ALS_T double
#define ALS_FN(name) name##_f64
#define ALS_IS_DOUBLE 1
#define ALS_GEMV cblas_dgemv
#define ALS_SYRK cblas_dsyrk
#define ALS_POTRF LAPACKE_dpotrf_work
#define ALS_POTRS LAPACKE_dpotrs_work
#define ALS_EPSILON DBL_EPSILON
#include "als_engine.h"

/* als.h: als_fit_cpu in float64 (same contract, double factors). */
gpuals_status als_fit_cpu_f64(const csr *Cui, const csr *Ciu, const gpuals_params *p,
                              double *X, double *Y, gpuals_iter_fn cb, void *cb_user)
{
    return als_fit_engine_f64("als_fit_cpu_f64", Cui, Ciu, p, X, Y, cb, cb_user);
}

/* als.h: als_loss on double factors. */
double als_loss_f64(const csr *Cui, const double *X, const double *Y, int f,
                    const gpuals_params *p)
{
    return als_loss_standalone_f64(Cui, X, Y, f, p);
}
