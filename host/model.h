/*
 * model.h - the definition of gpuals_model and the helpers queries share.
 *
 * A model owns everything it needs to answer queries without the data it was trained on:
 * factors, the training matrix as confidences (for filtering liked items, explain and fold-in),
 * the id maps and titles, the settings and the data summary.
 */
#ifndef GPUALS_MODEL_H
#define GPUALS_MODEL_H

#include "csr.h"
#include "gpuals.h"
#include "idmap.h"

struct gpuals_model {
    gpuals_params params;
    int factors;
    int64_t n_users, n_items;
    float *X;            /* n_users x factors */
    float *Y;            /* n_items x factors */
    csr conf;            /* n_users x n_items confidences used in training */
    idmap *users;
    idmap *items;
    char **titles;       /* n_items entries (each may be NULL), or NULL */
    gpuals_summary summary;
    double final_loss;   /* NaN when not computed */
    double train_seconds;
    int iterations_run;  /* iterations training ran (< params.iters when stopped); -1 unknown */
    gpuals_device device_used;  /* where gpuals_train ran: CPU or GPU */
    char device_note[256];      /* als_fit's note: the GPU used, or why AUTO fell back */
};

/* An empty model for d's users, items, ids, titles and summary (copied), settings p, and conf
 * (moved into the model: the caller's struct is zeroed). X and Y are allocated, zero-filled. */
gpuals_status model_new(const gpuals_data *d, const gpuals_params *p, csr *conf,
                        gpuals_model **out);

/* A model of n_users x n_items with settings p (p->factors columns): X and Y allocated and
 * zero-filled, empty id maps, no titles, conf empty (zeroed), summary zeroed but for min_rating
 * (-inf), final_loss NaN, iterations_run -1. Used by model_new and by gpuals_model_load, which
 * fill in the rest. */
gpuals_status model_alloc(int64_t n_users, int64_t n_items, const gpuals_params *p,
                          gpuals_model **out);

/* Whether gpuals_model_save may write to path: GPUALS_OK when nothing is there (*exists 0) or
 * when it is an empty directory or a model directory holding the model's files and nothing else
 * (*exists 1); otherwise GPUALS_ERR_IO saying what is in the way (a file, a symbolic link, a
 * directory with other files or without a model's meta.json). */
gpuals_status model_check_save_target(const char *path, int *exists);

/* Every setting of p in the range gpuals.h gives it, and every enum one of its constants:
 * GPUALS_OK, or GPUALS_ERR_USAGE naming the first that is not (gpuals_train's check, also
 * applied to a loaded model's settings). */
gpuals_status model_check_params(const gpuals_params *p);

#endif /* GPUALS_MODEL_H */
