/*
 * model.c - creating and freeing a gpuals_model, and its read-only accessors.
 *
 * A model is built in two steps: model_alloc sizes it (zeroed factors, empty id maps), then
 * model_new copies the ids and titles of the training data into it (gpuals_train's path) or
 * gpuals_model_load fills it from a model directory. Everything a model points to is owned by
 * it and released by gpuals_model_free. An empty title is stored as "no title" (NULL), so a
 * model written to disk and read back holds exactly the same titles.
 */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "status.h"

gpuals_status model_alloc(int64_t n_users, int64_t n_items, const gpuals_params *p,
                          gpuals_model **out)
{
    /* Check the arguments. */
    if (!p || !out) return gpuals_fail(GPUALS_ERR_USAGE, "model_alloc: NULL argument");
    *out = NULL;
    if (n_users < 0 || n_items < 0 || p->factors <= 0)
        return gpuals_fail(GPUALS_ERR_USAGE,
                           "model_alloc: invalid shape %lld users x %lld items x %d factors",
                           (long long)n_users, (long long)n_items, p->factors);
    size_t f = (size_t)p->factors;
    if ((uint64_t)n_users > SIZE_MAX / sizeof(float) / f ||
        (uint64_t)n_items > SIZE_MAX / sizeof(float) / f)
        return gpuals_fail(GPUALS_ERR_NOMEM, "the factors of %lld users and %lld items (%d "
                           "each) are too large to hold", (long long)n_users,
                           (long long)n_items, p->factors);

    /* The struct, the factor matrices and the id maps. */
    gpuals_model *m = calloc(1, sizeof *m);
    if (!m) return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory for a model");
    m->params = *p;
    m->factors = p->factors;
    m->n_users = n_users;
    m->n_items = n_items;
    m->final_loss = NAN;
    m->iterations_run = -1;
    m->summary.min_rating = -INFINITY;
    m->device_used = GPUALS_DEVICE_CPU;
    m->X = calloc(n_users ? (size_t)n_users * f : 1, sizeof(float));
    m->Y = calloc(n_items ? (size_t)n_items * f : 1, sizeof(float));
    m->users = idmap_new();
    m->items = idmap_new();
    if (!m->X || !m->Y || !m->users || !m->items) {
        gpuals_model_free(m);
        return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory for the factors of %lld users and "
                           "%lld items (%d each)", (long long)n_users, (long long)n_items,
                           p->factors);
    }
    *out = m;
    return GPUALS_OK;
}

/* Copy the ids of src (n of them) into dst in index order. */
static gpuals_status copy_ids(idmap *dst, const idmap *src, int64_t n, const char *what)
{
    for (int64_t k = 0; k < n; k++) {
        const char *name = idmap_name(src, k);
        int added = 0;
        int64_t at = idmap_intern(dst, name, strlen(name), &added);
        if (at < 0) return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory for the model's ids");
        if (!added || at != k)
            return gpuals_fail(GPUALS_ERR_INTERNAL, "model_new: %s id \"%s\" (index %lld) "
                               "is not unique", what, name, (long long)k);
    }
    return GPUALS_OK;
}

/* Copy d's titles (n of them) into m, leaving m->titles NULL when d has none. */
static gpuals_status copy_titles(gpuals_model *m, char *const *titles, int64_t n)
{
    if (!titles) return GPUALS_OK;
    m->titles = calloc(n > 0 ? (size_t)n : 1, sizeof *m->titles);
    if (!m->titles) return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory for the model's titles");
    for (int64_t i = 0; i < n; i++) {
        if (!titles[i] || !titles[i][0]) continue;
        m->titles[i] = strdup(titles[i]);
        if (!m->titles[i])
            return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory for the model's titles");
    }
    return GPUALS_OK;
}

gpuals_status model_new(const gpuals_data *d, const gpuals_params *p, csr *conf,
                        gpuals_model **out)
{
    /* Check the arguments; conf is consumed whatever happens. */
    if (out) *out = NULL;
    if (!d || !p || !conf || !out) {
        if (conf) csr_free(conf);
        return gpuals_fail(GPUALS_ERR_USAGE, "model_new: NULL argument");
    }
    int64_t nu = idmap_size(d->users), ni = idmap_size(d->items);
    if (conf->rows != nu || conf->cols != ni) {
        long long r = (long long)conf->rows, c = (long long)conf->cols;
        csr_free(conf);
        return gpuals_fail(GPUALS_ERR_INTERNAL, "model_new: confidence matrix is %lld x %lld "
                           "but the data has %lld users and %lld items", r, c, (long long)nu,
                           (long long)ni);
    }

    /* Size the model, then copy ids, titles and the summary, and take conf. */
    gpuals_model *m = NULL;
    gpuals_status s = model_alloc(nu, ni, p, &m);
    if (s == GPUALS_OK) s = copy_ids(m->users, d->users, nu, "user");
    if (s == GPUALS_OK) s = copy_ids(m->items, d->items, ni, "item");
    if (s == GPUALS_OK) s = copy_titles(m, d->titles, ni);
    if (s != GPUALS_OK) {
        gpuals_model_free(m);
        csr_free(conf);
        return s;
    }
    m->summary = d->summary;
    /* Data built in memory rather than read from a file (it has no ratings path) was never
     * filtered, whatever its zero-initialised summary holds. */
    if (!d->ratings_path) m->summary.min_rating = -INFINITY;
    m->conf = *conf;
    memset(conf, 0, sizeof *conf);
    *out = m;
    return GPUALS_OK;
}

void gpuals_model_free(gpuals_model *m)
{
    if (!m) return;
    free(m->X);
    free(m->Y);
    csr_free(&m->conf);
    idmap_free(m->users);
    idmap_free(m->items);
    if (m->titles) {
        for (int64_t i = 0; i < m->n_items; i++) free(m->titles[i]);
        free(m->titles);
    }
    free(m);
}

/* ------------------------------------------------------------------------------------------ */
/* Accessors (contracts in gpuals.h; each also accepts a NULL model: 0, NULL or -1)            */
/* ------------------------------------------------------------------------------------------ */

int64_t gpuals_model_users(const gpuals_model *m) { return m ? m->n_users : 0; }

int64_t gpuals_model_items(const gpuals_model *m) { return m ? m->n_items : 0; }

int gpuals_model_factors(const gpuals_model *m) { return m ? m->factors : 0; }

const float *gpuals_model_user_factors(const gpuals_model *m) { return m ? m->X : NULL; }

const float *gpuals_model_item_factors(const gpuals_model *m) { return m ? m->Y : NULL; }

int gpuals_model_iterations(const gpuals_model *m) { return m ? m->iterations_run : -1; }

/* Dense index of raw_id in map, or -1 (also for NULL arguments). */
static int64_t find_id(const idmap *map, const char *raw_id)
{
    if (!map || !raw_id) return -1;
    return idmap_find(map, raw_id, strlen(raw_id));
}

int64_t gpuals_model_user_index(const gpuals_model *m, const char *raw_id)
{
    return m ? find_id(m->users, raw_id) : -1;
}

int64_t gpuals_model_item_index(const gpuals_model *m, const char *raw_id)
{
    return m ? find_id(m->items, raw_id) : -1;
}

/* Raw ids and titles: NULL for an index out of range (or a NULL model). An item in range
 * without a title has the title "", so callers may print it as it is. */
const char *gpuals_model_user_id(const gpuals_model *m, int64_t u)
{
    if (!m || u < 0 || u >= m->n_users) return NULL;
    return idmap_name(m->users, u);
}

const char *gpuals_model_item_id(const gpuals_model *m, int64_t i)
{
    if (!m || i < 0 || i >= m->n_items) return NULL;
    return idmap_name(m->items, i);
}

const char *gpuals_model_item_title(const gpuals_model *m, int64_t i)
{
    if (!m || i < 0 || i >= m->n_items) return NULL;
    if (!m->titles || !m->titles[i]) return "";
    return m->titles[i];
}
