/*
 * dataset.h - what loading a ratings file produces (the definition of gpuals_data).
 *
 * ratings holds the kept interactions as a users x items CSR of summed raw rating values (not
 * yet confidences); ratings_t is its transpose. users/items map raw ids to rows/columns.
 * titles[i] is the title of item i, or NULL when no titles file was given or it has none.
 */
#ifndef GPUALS_DATASET_H
#define GPUALS_DATASET_H

#include "csr.h"
#include "gpuals.h"
#include "idmap.h"

struct gpuals_data {
    csr ratings;     /* users x items, summed raw values */
    csr ratings_t;   /* items x users */
    idmap *users;
    idmap *items;
    char **titles;   /* items entries (each may be NULL), or NULL */
    int64_t title_duplicates;  /* lines of the titles file whose id repeats an earlier one
                                * (the first title is kept); 0 without titles */
    int64_t guessed_header_line;  /* the reader's (see reader_result): 0 when none */
    char guessed_header[96];
    gpuals_summary summary;
    char *ratings_path;
    char *titles_path;
};

/* Build a gpuals_data from an in-memory list of (raw user, raw item, value) triplets, as the
 * readers do after parsing; used by tests and by the CLI's demo user. Takes no ownership. */
gpuals_status dataset_from_triplets(int64_t n, const char *const *users,
                                    const char *const *items, const float *values,
                                    gpuals_data **out);

/* Add a new user with the given raw item ids and values (items must exist) and rebuild both
 * CSRs; returns the new user's row in *row. */
gpuals_status dataset_add_user(gpuals_data *d, const char *raw_user, int64_t n,
                               const int64_t *items, const float *values, int64_t *row);

/* Load titles from path (movies.csv, movies.dat or u.item, detected from the content) and
 * attach them to d's items. Items without a title keep NULL; a titles file that names none of
 * d's items is GPUALS_ERR_MISMATCH. */
gpuals_status dataset_load_titles(gpuals_data *d, const char *path);

/* The confidence CSR for training: same pattern as r, values transformed as p says. A value whose
 * confidence is not finite (with the log transform, a summed rating at or below -eps; with any,
 * an alpha too large for the ratings) is GPUALS_ERR_NUMERIC naming the value and the transform;
 * bad settings are GPUALS_ERR_USAGE. */
gpuals_status dataset_confidence(const csr *r, const gpuals_params *p, csr *out);

/* dataset_confidence for a matrix whose users and items have the raw ids of users and items
 * (the rows are items when rows_are_items, as in ratings_t): a value whose confidence is not
 * finite is named by its raw user and item ids as well. */
gpuals_status dataset_confidence_ids(const csr *r, const idmap *users, const idmap *items,
                                     int rows_are_items, const gpuals_params *p, csr *out);

#endif /* GPUALS_DATASET_H */
