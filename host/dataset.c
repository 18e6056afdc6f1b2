/*
 * dataset.c - gpuals_data: loading, building from triplets, titles, confidences.
 *
 * A load is: reader_load (parse, filter, intern ids, collect triplets) -> the CSR of summed raw
 * ratings, built by csr_from_triplets_consume (which frees the triplets as early as it can) ->
 * its transpose -> titles, when a titles file is given. The matrix has exactly the users and
 * items that kept at least one interaction, indexed in order of first appearance.
 *
 * Confidence transforms of a summed rating r (Hu, Koren & Volinsky 2008; the default is what
 * the `implicit` library does, which leaves the "1 +" of the paper to the caller):
 *   implicit  c = alpha * r
 *   hu        c = 1 + alpha * r
 *   log       c = 1 + alpha * log(1 + r / eps)
 * computed in double and stored as float; a non-finite result is an error naming the value, the
 * transform and, when the caller gives the id maps, the raw user and item ids. The readers refuse
 * ratings of magnitude above READER_MAX_VALUE, so with the CLI's alpha (at most 1e12) only the
 * log of a rating at or below -eps can fail.
 */
#include "dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader.h"
#include "status.h"
#include "titles.h"

/* ------------------------------------------------------------------------------------------ */
/* Public data API                                                                            */
/* ------------------------------------------------------------------------------------------ */

/* Defaults: no titles, format detection, keep every rating, stop at the first bad line. NULL
 * is ignored. */
void gpuals_load_options_default(gpuals_load_options *o)
{
    if (!o) return;
    *o = (gpuals_load_options){
        .ratings_path = NULL,
        .titles_path = NULL,
        .format = GPUALS_FORMAT_AUTO,
        .min_rating = -INFINITY,
        .skip_bad_lines = 0,
    };
}

/* Release everything a gpuals_data owns; accepts NULL. */
void gpuals_data_free(gpuals_data *d)
{
    if (!d) return;
    if (d->titles) {
        for (int64_t i = 0; i < d->ratings.cols; i++) free(d->titles[i]);
        free(d->titles);
    }
    csr_free(&d->ratings);
    csr_free(&d->ratings_t);
    idmap_free(d->users);
    idmap_free(d->items);
    free(d->ratings_path);
    free(d->titles_path);
    free(d);
}

/* The summary of d (borrowed; lives as long as d), or NULL for a NULL d. */
const gpuals_summary *gpuals_data_summary(const gpuals_data *d)
{
    return d ? &d->summary : NULL;
}

/* Build both CSRs of d from the reader's triplets (consumed) and take its maps; fills the CSR
 * part of the summary. res is zeroed whatever happens. */
static gpuals_status build_matrices(gpuals_data *d, reader_result *res)
{
    /* Take the maps and counts. */
    d->users = res->users;
    d->items = res->items;
    d->summary = res->counts;
    d->guessed_header_line = res->guessed_header_line;
    memcpy(d->guessed_header, res->guessed_header, sizeof d->guessed_header);
    int64_t rows = idmap_size(d->users), cols = idmap_size(d->items), n = res->n;
    int32_t *row = res->row, *col = res->col;
    float *val = res->val;
    *res = (reader_result){0};

    /* users x items, then items x users. */
    int64_t duplicates = 0;
    GPUALS_TRY(csr_from_triplets_consume(rows, cols, n, row, col, val, &d->ratings,
                                         &duplicates));
    GPUALS_TRY(csr_transpose(&d->ratings, &d->ratings_t));
#ifndef NDEBUG
    GPUALS_TRY(csr_validate(&d->ratings));
    GPUALS_TRY(csr_validate(&d->ratings_t));
#endif

    /* The summary's matrix figures. */
    d->summary.duplicates = duplicates;
    d->summary.users = rows;
    d->summary.items = cols;
    d->summary.stored = d->ratings.nnz;
    return GPUALS_OK;
}

static char *copy_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c) memcpy(c, s, n);
    return c;
}

/* Load ratings (and titles) as o says; see gpuals.h. The summary records o->min_rating, which
 * a model trained on d applies to the values it folds in. */
gpuals_status gpuals_data_load(const gpuals_load_options *o, gpuals_data **out)
{
    if (!out) return gpuals_fail(GPUALS_ERR_USAGE, "gpuals_data_load: out is NULL");
    *out = NULL;
    if (!o) return gpuals_fail(GPUALS_ERR_USAGE, "gpuals_data_load: the options are NULL");
    if (!o->ratings_path || !*o->ratings_path)
        return gpuals_fail(GPUALS_ERR_USAGE, "no ratings file given");

    /* Parse. */
    reader_result res;
    GPUALS_TRY(reader_load(o->ratings_path, o->format, o->min_rating, o->skip_bad_lines, &res));

    /* Matrices. */
    gpuals_data *d = calloc(1, sizeof *d);
    if (!d) {
        reader_result_free(&res);
        return gpuals_fail(GPUALS_ERR_NOMEM, "%s: out of memory", o->ratings_path);
    }
    gpuals_status st = build_matrices(d, &res);
    if (st != GPUALS_OK) goto fail;
    d->summary.min_rating = o->min_rating;

    /* Titles and paths. */
    if (o->titles_path) {
        st = dataset_load_titles(d, o->titles_path);
        if (st != GPUALS_OK) goto fail;
    }
    d->ratings_path = copy_string(o->ratings_path);
    if (!d->ratings_path) {
        st = gpuals_fail(GPUALS_ERR_NOMEM, "%s: out of memory", o->ratings_path);
        goto fail;
    }
    *out = d;
    return GPUALS_OK;

fail:
    gpuals_data_free(d);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Internal construction                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* A dataset from in-memory raw triplets (see dataset.h): zeros are dropped and counted like a
 * reader's; NULL or empty ids, non-finite values and values of magnitude above
 * READER_MAX_VALUE (which a reader refuses too) are GPUALS_ERR_USAGE naming the index. */
gpuals_status dataset_from_triplets(int64_t n, const char *const *users,
                                    const char *const *items, const float *values,
                                    gpuals_data **out)
{
    *out = NULL;

    /* Check the input. */
    if (n < 0 || (n > 0 && (!users || !items || !values)))
        return gpuals_fail(GPUALS_ERR_USAGE, "dataset_from_triplets: %lld triplets with NULL "
                           "arrays", (long long)n);
    for (int64_t k = 0; k < n; k++) {
        if (!users[k] || !*users[k] || !items[k] || !*items[k])
            return gpuals_fail(GPUALS_ERR_USAGE, "dataset_from_triplets: triplet %lld has an "
                               "empty user or item id", (long long)k);
        if (!isfinite(values[k]))
            return gpuals_fail(GPUALS_ERR_USAGE, "dataset_from_triplets: triplet %lld has the "
                               "non-finite value %g", (long long)k, (double)values[k]);
        if (fabs(values[k]) > READER_MAX_VALUE)
            return gpuals_fail(GPUALS_ERR_USAGE, "dataset_from_triplets: triplet %lld (user "
                               "'%s', item '%s') has the value %g, of magnitude above "
                               READER_MAX_VALUE_TEXT, (long long)k, users[k], items[k],
                               (double)values[k]);
    }

    /* Intern and collect, as a reader would. */
    reader_result res = {0};
    gpuals_status st = GPUALS_OK;
    res.users = idmap_new();
    res.items = idmap_new();
    res.row = malloc((size_t)(n ? n : 1) * sizeof *res.row);
    res.col = malloc((size_t)(n ? n : 1) * sizeof *res.col);
    res.val = malloc((size_t)(n ? n : 1) * sizeof *res.val);
    if (!res.users || !res.items || !res.row || !res.col || !res.val) {
        st = gpuals_fail(GPUALS_ERR_NOMEM, "dataset_from_triplets: out of memory");
        goto fail;
    }
    res.counts.raw_lines = n;
    for (int64_t k = 0; k < n; k++) {
        if (values[k] == 0.0f) {
            res.counts.zero_lines++;
            continue;
        }
        int64_t u = idmap_intern(res.users, users[k], strlen(users[k]), NULL);
        int64_t i = idmap_intern(res.items, items[k], strlen(items[k]), NULL);
        if (u < 0 || i < 0 || u > INT32_MAX || i > INT32_MAX) {
            st = gpuals_fail(GPUALS_ERR_NOMEM, "dataset_from_triplets: cannot index triplet "
                             "%lld (out of memory or more than 2^31 ids)", (long long)k);
            goto fail;
        }
        res.row[res.n] = (int32_t)u;
        res.col[res.n] = (int32_t)i;
        res.val[res.n] = values[k];
        res.n++;
    }
    res.counts.kept_lines = res.n;
    if (res.n == 0) {
        st = gpuals_fail(GPUALS_ERR_EMPTY, "dataset_from_triplets: no non-zero values among "
                         "%lld triplets", (long long)n);
        goto fail;
    }

    /* Matrices. */
    gpuals_data *d = calloc(1, sizeof *d);
    if (!d) {
        st = gpuals_fail(GPUALS_ERR_NOMEM, "dataset_from_triplets: out of memory");
        goto fail;
    }
    st = build_matrices(d, &res);
    if (st != GPUALS_OK) {
        gpuals_data_free(d);
        return st;
    }
    d->summary.min_rating = -INFINITY; /* triplets are taken as they are */
    *out = d;
    return GPUALS_OK;

fail:
    reader_result_free(&res);
    return st;
}

/* Order (item, input position) pairs by item, then position. */
static int compare_entries(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    if (x[0] != y[0]) return (x[0] > y[0]) - (x[0] < y[0]);
    return (x[1] > y[1]) - (x[1] < y[1]);
}

/* Append a user row and rebuild the transpose (see dataset.h). Either everything changes or
 * nothing does. */
gpuals_status dataset_add_user(gpuals_data *d, const char *raw_user, int64_t n,
                               const int64_t *items, const float *values, int64_t *row)
{
    /* Check the arguments. */
    if (!d || !raw_user || !*raw_user)
        return gpuals_fail(GPUALS_ERR_USAGE, "dataset_add_user: no user id given");
    if (idmap_find(d->users, raw_user, strlen(raw_user)) >= 0)
        return gpuals_fail(GPUALS_ERR_USAGE, "user '%s' exists already in the data", raw_user);
    if (n <= 0 || !items || !values)
        return gpuals_fail(GPUALS_ERR_USAGE, "user '%s' needs at least one item", raw_user);
    if (d->ratings.rows >= INT32_MAX)
        return gpuals_fail(GPUALS_ERR_USAGE, "cannot add user '%s': the data has the most users "
                           "32-bit indices allow", raw_user);
    for (int64_t k = 0; k < n; k++) {
        if (items[k] < 0 || items[k] >= d->ratings.cols)
            return gpuals_fail(GPUALS_ERR_USAGE, "dataset_add_user: item index %lld (entry "
                               "%lld) is outside [0, %lld)", (long long)items[k], (long long)k,
                               (long long)d->ratings.cols);
        const char *item = idmap_name(d->items, items[k]);
        if (!isfinite(values[k]))
            return gpuals_fail(GPUALS_ERR_USAGE, "user '%s', item '%s': the value %g is not "
                               "finite", raw_user, item, (double)values[k]);
        if (fabs(values[k]) > READER_MAX_VALUE)
            return gpuals_fail(GPUALS_ERR_USAGE, "user '%s', item '%s': the value %g is of "
                               "magnitude above " READER_MAX_VALUE_TEXT, raw_user, item,
                               (double)values[k]);
    }

    /* The new row: sorted by item (stable on input order), duplicates summed, zeros dropped. */
    int64_t *pairs = malloc((size_t)n * 2 * sizeof *pairs);
    if (!pairs) return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory adding user '%s'", raw_user);
    for (int64_t k = 0; k < n; k++) {
        pairs[2 * k] = items[k];
        pairs[2 * k + 1] = k;
    }
    qsort(pairs, (size_t)n, 2 * sizeof *pairs, compare_entries);
    int64_t old_nnz = d->ratings.nnz, len = 0, zeros = 0, merged = 0;
    int32_t *new_cols = malloc((size_t)n * sizeof *new_cols);
    float *new_vals = malloc((size_t)n * sizeof *new_vals);
    if (!new_cols || !new_vals) {
        free(pairs);
        free(new_cols);
        free(new_vals);
        return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory adding user '%s'", raw_user);
    }
    for (int64_t k = 0; k < n; k++) {
        int64_t src = pairs[2 * k + 1];
        int32_t item = (int32_t)items[src];
        if (values[src] == 0.0f) {
            zeros++;
        } else if (len > 0 && new_cols[len - 1] == item) {
            new_vals[len - 1] += values[src];
            merged++;
        } else {
            new_cols[len] = item;
            new_vals[len] = values[src];
            len++;
        }
    }
    free(pairs);
    if (len == 0) {
        free(new_cols);
        free(new_vals);
        return gpuals_fail(GPUALS_ERR_USAGE, "user '%s' has only zero values", raw_user);
    }

    /* Grow the arrays (d still describes the old matrix) and write the row past its end. */
    gpuals_status st = GPUALS_OK;
    csr grown = d->ratings;
    int64_t *indptr = realloc(d->ratings.indptr, (size_t)(grown.rows + 2) * sizeof *indptr);
    if (indptr) d->ratings.indptr = indptr;
    int32_t *indices = realloc(d->ratings.indices, (size_t)(old_nnz + len) * sizeof *indices);
    if (indices) d->ratings.indices = indices;
    float *data = realloc(d->ratings.data, (size_t)(old_nnz + len) * sizeof *data);
    if (data) d->ratings.data = data;
    if (!indptr || !indices || !data) {
        st = gpuals_fail(GPUALS_ERR_NOMEM, "out of memory adding user '%s'", raw_user);
        goto done;
    }
    memcpy(indices + old_nnz, new_cols, (size_t)len * sizeof *indices);
    memcpy(data + old_nnz, new_vals, (size_t)len * sizeof *data);
    indptr[grown.rows + 1] = old_nnz + len;
    grown = (csr){.rows = d->ratings.rows + 1, .cols = d->ratings.cols, .nnz = old_nnz + len,
                  .indptr = indptr, .indices = indices, .data = data};

    /* The transpose of the grown matrix and the id, then commit. */
    csr t = {0};
    st = csr_transpose(&grown, &t);
    if (st != GPUALS_OK) goto done;
    int added = 0;
    int64_t u = idmap_intern(d->users, raw_user, strlen(raw_user), &added);
    if (u != grown.rows - 1 || !added) {
        csr_free(&t);
        st = u < 0 ? gpuals_fail(GPUALS_ERR_NOMEM, "out of memory adding user '%s'", raw_user)
                   : gpuals_fail(GPUALS_ERR_INTERNAL, "dataset_add_user: user map (%lld ids) "
                                 "and matrix (%lld rows) disagree",
                                 (long long)idmap_size(d->users), (long long)d->ratings.rows);
        goto done;
    }
    d->ratings = grown;
    csr_free(&d->ratings_t);
    d->ratings_t = t;
    d->summary.raw_lines += n;
    d->summary.kept_lines += n - zeros;
    d->summary.zero_lines += zeros;
    d->summary.duplicates += merged;
    d->summary.users = d->ratings.rows;
    d->summary.stored = d->ratings.nnz;
    if (row) *row = grown.rows - 1;

done:
    free(new_cols);
    free(new_vals);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Titles and confidences                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Attach the titles of path to d's items (see dataset.h). */
gpuals_status dataset_load_titles(gpuals_data *d, const char *path)
{
    if (!d || !path) return gpuals_fail(GPUALS_ERR_USAGE, "dataset_load_titles: NULL argument");
    if (!*path) return gpuals_fail(GPUALS_ERR_USAGE, "no titles file given");

    /* Read them all, then match by raw id. */
    titles_list list;
    GPUALS_TRY(titles_read(path, &list));
    int64_t n_items = d->ratings.cols, matched = 0;
    char **titles = calloc((size_t)(n_items ? n_items : 1), sizeof *titles);
    char *path_copy = copy_string(path);
    gpuals_status st = GPUALS_OK;
    if (!titles || !path_copy) {
        st = gpuals_fail(GPUALS_ERR_NOMEM, "%s: out of memory attaching titles", path);
        goto done;
    }
    for (int64_t k = 0; k < list.n; k++) {
        int64_t i = idmap_find(d->items, list.ids[k], strlen(list.ids[k]));
        if (i < 0 || titles[i]) continue;
        titles[i] = copy_string(list.titles[k]);
        if (!titles[i]) {
            st = gpuals_fail(GPUALS_ERR_NOMEM, "%s: out of memory attaching titles", path);
            goto done;
        }
        matched++;
    }
    if (matched == 0) {
        st = gpuals_fail(GPUALS_ERR_MISMATCH, "%s: none of its %lld titles belongs to one of "
                         "the %lld rated items (its first id is '%s', the first rated item is "
                         "'%s'): is it the titles file of another data set?", path,
                         (long long)list.n, (long long)n_items, list.ids[0],
                         n_items ? idmap_name(d->items, 0) : "");
        goto done;
    }

    /* Replace any earlier titles. */
    if (d->titles) {
        for (int64_t i = 0; i < n_items; i++) free(d->titles[i]);
        free(d->titles);
    }
    free(d->titles_path);
    d->titles = titles;
    d->titles_path = path_copy;
    d->title_duplicates = list.duplicates;
    titles = NULL;
    path_copy = NULL;

done:
    if (titles) {
        for (int64_t i = 0; i < n_items; i++) free(titles[i]);
        free(titles);
    }
    free(path_copy);
    titles_list_free(&list);
    return st;
}

/* GPUALS_ERR_NUMERIC for the summed rating v at (row, col), whose confidence conf is not
 * finite: the raw ids when the maps are given, the value, the transform and what would help. */
static gpuals_status confidence_failure(int64_t row, int64_t col, double v, double conf,
                                        const idmap *users, const idmap *items,
                                        int rows_are_items, const gpuals_params *p)
{
    char where[600] = "";
    if (users && items) {
        int64_t u = rows_are_items ? col : row, i = rows_are_items ? row : col;
        snprintf(where, sizeof where, "user '%s', item '%s': ", idmap_name(users, u),
                 idmap_name(items, i));
    }
    char how[160];
    if (p->confidence == GPUALS_CONF_IMPLICIT)
        snprintf(how, sizeof how, "implicit: alpha*r with alpha %g", p->alpha);
    else if (p->confidence == GPUALS_CONF_HU)
        snprintf(how, sizeof how, "hu: 1 + alpha*r with alpha %g", p->alpha);
    else
        snprintf(how, sizeof how, "log: 1 + alpha*log(1 + r/eps) with alpha %g, eps %g",
                 p->alpha, p->eps);
    const char *hint = p->confidence == GPUALS_CONF_LOG && v / p->eps <= -1.0
                           ? "the log confidence needs every summed rating above -eps"
                           : "a smaller alpha keeps it finite";
    char value[32] = "nan"; /* whatever the sign bit of a NaN */
    if (!isnan(conf)) snprintf(value, sizeof value, "%g", conf);
    return gpuals_fail(GPUALS_ERR_NUMERIC, "%sthe summed rating %g gives the non-finite "
                       "confidence %s (%s): %s", where, v, value, how, hint);
}

/* The confidence matrix of r under p (see dataset.h and the equations above). */
gpuals_status dataset_confidence_ids(const csr *r, const idmap *users, const idmap *items,
                                     int rows_are_items, const gpuals_params *p, csr *out)
{
    /* Check the settings. */
    if (!r || !p || !out)
        return gpuals_fail(GPUALS_ERR_USAGE, "dataset_confidence: NULL argument");
    if (!isfinite(p->alpha))
        return gpuals_fail(GPUALS_ERR_USAGE, "alpha %g is not finite", p->alpha);
    if (p->confidence != GPUALS_CONF_IMPLICIT && p->confidence != GPUALS_CONF_HU &&
        p->confidence != GPUALS_CONF_LOG)
        return gpuals_fail(GPUALS_ERR_USAGE, "unknown confidence transform %d",
                           (int)p->confidence);
    if (p->confidence == GPUALS_CONF_LOG && !(p->eps > 0 && isfinite(p->eps)))
        return gpuals_fail(GPUALS_ERR_USAGE, "the log confidence needs eps > 0, got %g", p->eps);

    /* Same pattern, transformed values. */
    csr c;
    GPUALS_TRY(csr_copy(r, &c));
    double alpha = p->alpha, eps = p->eps;
    for (int64_t u = 0; u < c.rows; u++) {
        for (int64_t q = c.indptr[u]; q < c.indptr[u + 1]; q++) {
            double v = c.data[q], conf;
            if (p->confidence == GPUALS_CONF_IMPLICIT) conf = alpha * v;
            else if (p->confidence == GPUALS_CONF_HU) conf = 1.0 + alpha * v;
            else conf = 1.0 + alpha * log1p(v / eps);
            float f = (float)conf;
            if (!isfinite(f)) {
                gpuals_status st = confidence_failure(u, c.indices[q], v, conf, users, items,
                                                      rows_are_items, p);
                csr_free(&c);
                return st;
            }
            c.data[q] = f;
        }
    }
    *out = c;
    return GPUALS_OK;
}

gpuals_status dataset_confidence(const csr *r, const gpuals_params *p, csr *out)
{
    return dataset_confidence_ids(r, NULL, NULL, 0, p, out);
}
