/*
 * train.c - gpuals_params_default and gpuals_train: from loaded data to a trained model.
 *
 * gpuals_train turns the summed ratings of both orientations into confidences
 * (dataset_confidence), creates the model (model_new, which takes the users x items confidences),
 * fills both factor matrices from the counter-based generator (als_init_factors) and trains them
 * with als_fit on the device the settings ask for. The defaults are those of the `implicit`
 * library, so results can be compared with it.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "als.h"
#include "als_internal.h"
#include "dataset.h"
#include "gpuals.h"
#include "idmap.h"
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

/* Passes each iteration on to the caller's callback and keeps the last loss. */
typedef struct {
    gpuals_iter_fn cb;
    void *cb_user;
    double last_loss;
} train_relay;

static int relay_iteration(int iteration, double seconds, double loss, void *user)
{
    train_relay *t = user;
    t->last_loss = loss;
    return t->cb ? t->cb(iteration, seconds, loss, t->cb_user) : 0;
}

/* The engines name a failing row by its index ("user 12 (row index) became non-finite ...");
 * the user knows it by its raw id. Rewrite the current message so when it has that form. */
static void name_failed_row(const gpuals_data *d)
{
    static const char mark_text[] = " (row index)";
    const char *msg = gpuals_last_error();
    const char *mark = strstr(msg, mark_text);
    if (!mark) return;
    const char *num = mark;
    while (num > msg && isdigit((unsigned char)num[-1])) num--;
    if (num == mark || num - msg < 5 || num[-1] != ' ') return;
    const char *word = num - 5; /* "user " or "item " */
    const idmap *map = strncmp(word, "user ", 5) == 0   ? d->users
                       : strncmp(word, "item ", 5) == 0 ? d->items
                                                        : NULL;
    const long long row = strtoll(num, NULL, 10);
    if (!map || row < 0 || row >= idmap_size(map)) return;
    char text[2048];
    snprintf(text, sizeof text, "%.*s'%s'%s", (int)(num - msg), msg, idmap_name(map, row),
             mark + sizeof mark_text - 1);
    gpuals_fail(GPUALS_ERR_NUMERIC, "%s", text);
}

/* Train a new model on d with p (gpuals.h). On success *out is a model the caller owns (free it
 * with gpuals_model_free) holding the factors, the users x items confidences, the device used
 * and its note, train_seconds (wall time of the fit) and final_loss (the last iteration's loss
 * when p->compute_loss, else NaN). cb (may be NULL) sees iterations numbered from 1. On failure
 * *out is NULL and the status says why: USAGE for bad settings, EMPTY for data without
 * interactions, NUMERIC for a non-finite or singular row, NO_DEVICE when a GPU was demanded. */
gpuals_status gpuals_train(const gpuals_data *d, const gpuals_params *p, gpuals_iter_fn cb,
                           void *cb_user, gpuals_model **out)
{
    /* Check the arguments. */
    if (!d || !p || !out) return gpuals_fail(GPUALS_ERR_USAGE, "gpuals_train: NULL argument");
    *out = NULL;
    if (p->factors < 1)
        return gpuals_fail(GPUALS_ERR_USAGE, "factors must be at least 1 (got %d)", p->factors);
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
    train_relay relay = {cb, cb_user, NAN};
    double t0 = als_now();
    st = als_fit(&m->conf, &ciu, p, m->X, m->Y, relay_iteration, &relay, &m->device_used,
                 m->device_note, sizeof m->device_note);
    m->train_seconds = als_now() - t0;
    m->final_loss = relay.last_loss;
    csr_free(&ciu);
    if (st != GPUALS_OK) {
        gpuals_model_free(m);
        if (st == GPUALS_ERR_NUMERIC) name_failed_row(d);
        return st;
    }
    *out = m;
    return GPUALS_OK;
}
