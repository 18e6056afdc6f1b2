/*
 * train.c - gpuals_params_default and gpuals_train: from loaded data to a trained model.
 *
 * gpuals_train turns the summed ratings of both orientations into confidences
 * (dataset_confidence), creates the model (model_new, which takes the users x items confidences),
 * fills both factor matrices from the counter-based generator (als_init_factors) and trains them
 * with als_fit on the device the settings ask for. The defaults are those of the `implicit`
 * library, so results can be compared with it.
 */
#include <math.h>
#include <string.h>

#include "als.h"
#include "als_internal.h"
#include "dataset.h"
#include "gpuals.h"
#include "model.h"
#include "status.h"

/* Fill p with the defaults (gpuals.h): the `implicit` library's, plus seed 0, eps 1 for the log
 * confidence, every core, float32, no loss, device AUTO. NULL is ignored. */
void gpuals_params_default(gpuals_params *p)
{
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->factors = 100;
    p->reg = 0.01;
    p->reg_scale = GPUALS_REG_NONE;
    p->alpha = 1.0;
    p->confidence = GPUALS_CONF_IMPLICIT;
    p->eps = 1.0;
    p->iters = 15;
    p->solver = GPUALS_SOLVER_CG;
    p->cg_steps = 3;
    p->seed = 0;
    p->threads = 0;
    p->dtype = GPUALS_DTYPE_FLOAT32;
    p->compute_loss = 0;
    p->device = GPUALS_DEVICE_AUTO;
}

/* Every setting of p in the range gpuals.h gives it, and every enum one of its constants:
 * GPUALS_ERR_USAGE naming the first that is not. The engines check again, but their messages
 * name their own functions; these speak of the settings as the caller set them. */
gpuals_status model_check_params(const gpuals_params *p)
{
    if (p->factors < 1)
        return gpuals_fail(GPUALS_ERR_USAGE, "factors must be at least 1 (got %d)", p->factors);
    if (!(p->reg >= 0) || !isfinite(p->reg))
        return gpuals_fail(GPUALS_ERR_USAGE, "reg must be a finite number >= 0 (got %g)", p->reg);
    if (p->reg_scale != GPUALS_REG_NONE && p->reg_scale != GPUALS_REG_FREQUENCY)
        return gpuals_fail(GPUALS_ERR_USAGE, "unknown reg_scale %d", (int)p->reg_scale);
    if (!(p->alpha > 0) || !isfinite(p->alpha))
        return gpuals_fail(GPUALS_ERR_USAGE, "alpha must be a finite number > 0 (got %g)",
                           p->alpha);
    if (p->confidence != GPUALS_CONF_IMPLICIT && p->confidence != GPUALS_CONF_HU &&
        p->confidence != GPUALS_CONF_LOG)
        return gpuals_fail(GPUALS_ERR_USAGE, "unknown confidence transform %d",
                           (int)p->confidence);
    if (p->confidence == GPUALS_CONF_LOG && (!(p->eps > 0) || !isfinite(p->eps)))
        return gpuals_fail(GPUALS_ERR_USAGE, "the log confidence needs a finite eps > 0 (got "
                           "%g)", p->eps);
    if (p->iters < 0)
        return gpuals_fail(GPUALS_ERR_USAGE, "iters must be >= 0 (got %d)", p->iters);
    if (p->solver != GPUALS_SOLVER_CG && p->solver != GPUALS_SOLVER_CHOLESKY)
        return gpuals_fail(GPUALS_ERR_USAGE, "unknown solver %d", (int)p->solver);
    if (p->solver == GPUALS_SOLVER_CG && p->cg_steps < 1)
        return gpuals_fail(GPUALS_ERR_USAGE, "cg_steps must be at least 1 with the CG solver "
                           "(got %d)", p->cg_steps);
    if (p->threads < 0 || p->threads > GPUALS_MAX_THREADS)
        return gpuals_fail(GPUALS_ERR_USAGE, "threads must be between 0 (all cores) and %d "
                           "(got %d)", GPUALS_MAX_THREADS, p->threads);
    if (p->dtype != GPUALS_DTYPE_FLOAT32 && p->dtype != GPUALS_DTYPE_FLOAT64)
        return gpuals_fail(GPUALS_ERR_USAGE, "unknown dtype %d", (int)p->dtype);
    if (p->device != GPUALS_DEVICE_AUTO && p->device != GPUALS_DEVICE_CPU &&
        p->device != GPUALS_DEVICE_GPU)
        return gpuals_fail(GPUALS_ERR_USAGE, "unknown device %d", (int)p->device);
    if (p->dtype == GPUALS_DTYPE_FLOAT64 && p->device == GPUALS_DEVICE_GPU)
        return gpuals_fail(GPUALS_ERR_USAGE, "float64 training runs on the CPU only (device "
                           "GPU asked for; use CPU or AUTO)");
    return GPUALS_OK;
}

/* Passes each iteration on to the caller's callback, keeping the last loss and counting the
 * iterations that ran. */
typedef struct {
    gpuals_iter_fn cb;
    void *cb_user;
    double last_loss;
    int iterations;
} train_relay;

static int relay_iteration(int iteration, double seconds, double loss, void *user)
{
    train_relay *t = user;
    t->last_loss = loss;
    t->iterations = iteration;
    return t->cb ? t->cb(iteration, seconds, loss, t->cb_user) : 0;
}

/* Train a new model on d with p (gpuals.h). On success *out is a model the caller owns (free it
 * with gpuals_model_free) holding the factors, the users x items confidences, the device used
 * and its note, train_seconds (wall time of the fit), iterations_run (the iterations the fit
 * reported: p->iters unless cb stopped it) and final_loss (the last iteration's loss when
 * p->compute_loss, else NaN). cb (may be NULL) sees iterations numbered from 1. On failure
 * *out is NULL and the status says why: USAGE for bad settings, EMPTY for data without
 * interactions, NUMERIC for a non-finite or singular row, NO_DEVICE when a GPU was demanded. */
gpuals_status gpuals_train(const gpuals_data *d, const gpuals_params *p, gpuals_iter_fn cb,
                           void *cb_user, gpuals_model **out)
{
    /* Check the arguments. */
    if (!out) return gpuals_fail(GPUALS_ERR_USAGE, "gpuals_train: out is NULL");
    *out = NULL;
    if (!d) return gpuals_fail(GPUALS_ERR_USAGE, "gpuals_train: the data is NULL");
    if (!p) return gpuals_fail(GPUALS_ERR_USAGE, "gpuals_train: the settings are NULL");
    GPUALS_TRY(model_check_params(p));
    if (d->ratings.nnz == 0) return gpuals_fail(GPUALS_ERR_EMPTY, "no interactions to train on");

    /* Confidences in both orientations. */
    csr cui = {0}, ciu = {0};
    gpuals_status st = dataset_confidence_ids(&d->ratings, d->users, d->items, 0, p, &cui);
    if (st == GPUALS_OK)
        st = dataset_confidence_ids(&d->ratings_t, d->users, d->items, 1, p, &ciu);

    /* The model, which takes cui, with its initial factors. */
    gpuals_model *m = NULL;
    if (st == GPUALS_OK) st = model_new(d, p, &cui, &m);
    csr_free(&cui);
    if (st != GPUALS_OK) {
        csr_free(&ciu);
        return st;
    }
    als_init_factors(m->X, m->n_users, p->factors, p->seed, ALS_SIDE_USERS);
    als_init_factors(m->Y, m->n_items, p->factors, p->seed, ALS_SIDE_ITEMS);

    /* Train, timing it and keeping the last loss. */
    train_relay relay = {cb, cb_user, NAN, 0};
    double t0 = als_now();
    st = als_fit(&m->conf, &ciu, p, m->X, m->Y, relay_iteration, &relay, &m->device_used,
                 m->device_note, sizeof m->device_note);
    m->train_seconds = als_now() - t0;
    m->final_loss = relay.last_loss;
    m->iterations_run = relay.iterations;
    csr_free(&ciu);
    if (st != GPUALS_OK) {
        gpuals_model_free(m);
        return als_failure_restate(st, d->users, d->items, 0); /* rows by raw id */
    }
    *out = m;
    return GPUALS_OK;
}
