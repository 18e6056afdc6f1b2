/*
 * split.c - seeded random and leave-k-out splits of an interaction CSR (see split.h).
 *
 * Draws. Entry (u, i) gets the uniform number
 *     d(u, i) = top 53 bits of mix(mix(mix(seed ^ TAG) ^ key(u)) ^ key(i)) / 2^53,
 * where mix is the SplitMix64 finaliser shared with the factor initialisation (init_rng.h), TAG
 * keeps split draws apart from initial factors made with the same seed, and key is the XXH64
 * hash (seed 0) of the raw id for data read from a file (the index for a bare matrix): the
 * dense indices follow the order of first appearance in the file, the ids do not.
 *
 * Random split: (u, i) goes to test when d(u, i) < F. `implicit` instead draws numpy uniforms
 * in the COO order of the matrix and sends r >= 1 - F to test; the distribution of the split is
 * the same, the individual draws are not (we do not reproduce numpy's Mersenne Twister).
 *
 * Leave-k-out: for a user with more than K + 1 stored entries, the K entries with the smallest
 * draws go to test (ties, which need equal 53-bit draws, go to the lower item index). Ranking
 * by independent uniforms gives every K-subset the same probability, which is what `implicit`
 * gets by shuffling and taking K tails per user. Its train_only_size option is not offered.
 *
 * Both sides are built straight from the sorted rows of the input, so they come out with the
 * CSR invariants (sorted unique columns) without a rebuild, in O(nnz + rows) plus, for
 * leave-k-out, a sort of each eligible row's draws.
 */
#include "split.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "init_rng.h"
#include "status.h"

/* Domain tag xor-ed into the seed so split draws differ from initial factors. */
#define SPLIT_TAG 0x5350524954ull /* "SPLIT" */

/* Domain tag of the validation split's seed, so its draws differ from the test split's. */
#define VALID_TAG 0x56414c4944ull /* "VALID" */

/* ------------------------------------------------------------------------------------------ */
/* Draws                                                                                      */
/* ------------------------------------------------------------------------------------------ */

void split_options_default(split_options *o)
{
    o->kind = SPLIT_RANDOM;
    o->test_fraction = 0.2;
    o->leave_k = 1;
    o->seed = 0;
    o->row_keys = NULL;
    o->col_keys = NULL;
}

/* XXH64 of each id of m, into a new array (NULL when out of memory). */
static uint64_t *id_keys(const idmap *m)
{
    int64_t n = idmap_size(m);
    uint64_t *k = malloc((size_t)(n > 0 ? n : 1) * sizeof *k);
    if (k == NULL) return NULL;
    for (int64_t i = 0; i < n; i++) {
        const char *id = idmap_name(m, i);
        k[i] = XXH64(id, strlen(id), 0);
    }
    return k;
}

gpuals_status split_use_ids(const gpuals_data *d, split_options *o)
{
    uint64_t *rows = id_keys(d->users), *cols = id_keys(d->items);
    if (rows == NULL || cols == NULL) {
        free(rows);
        free(cols);
        return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory for the split's id keys");
    }
    o->row_keys = rows;
    o->col_keys = cols;
    return GPUALS_OK;
}

void split_keys_free(split_options *o)
{
    free(o->row_keys);
    free(o->col_keys);
    o->row_keys = NULL;
    o->col_keys = NULL;
}

/* The key of row u or column i under o. */
static inline uint64_t row_key(const split_options *o, int64_t u)
{
    return o->row_keys != NULL ? o->row_keys[u] : (uint64_t)u;
}

static inline uint64_t col_key(const split_options *o, int64_t i)
{
    return o->col_keys != NULL ? o->col_keys[i] : (uint64_t)i;
}

const char *split_kind_name(split_kind k)
{
    return k == SPLIT_LEAVE_K_OUT ? "leave-k-out" : "random";
}

gpuals_status split_kind_parse(const char *name, split_kind *out)
{
    if (strcmp(name, "random") == 0) {
        *out = SPLIT_RANDOM;
        return GPUALS_OK;
    }
    if (strcmp(name, "leave-k-out") == 0) {
        *out = SPLIT_LEAVE_K_OUT;
        return GPUALS_OK;
    }
    return gpuals_fail(GPUALS_ERR_USAGE, "unknown split '%s': use random or leave-k-out", name);
}

double split_draw(uint64_t seed, uint64_t row_key, uint64_t col_key)
{
    uint64_t h = init_rng_mix(seed ^ SPLIT_TAG);
    h = init_rng_mix(h ^ row_key);
    h = init_rng_mix(h ^ col_key);
    return (double)(h >> 11) * (1.0 / 9007199254740992.0); /* 2^53 */
}

/* ------------------------------------------------------------------------------------------ */
/* Marking the test side                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Random split: to_test[j] = 1 for entries whose draw falls below the fraction. */
static void mark_random(const csr *r, const split_options *o, unsigned char *to_test)
{
#pragma omp parallel for schedule(static)
    for (int64_t u = 0; u < r->rows; u++)
        for (int64_t j = r->indptr[u]; j < r->indptr[u + 1]; j++)
            to_test[j] = split_draw(o->seed, row_key(o, u), col_key(o, r->indices[j])) <
                         o->test_fraction;
}

typedef struct {
    double draw;
    int64_t pos; /* position in the CSR; increasing with the item within a row */
} ranked_entry;

/* qsort order: smaller draw first, then earlier position. */
static int ranked_entry_cmp(const void *a, const void *b)
{
    const ranked_entry *x = a, *y = b;
    if (x->draw != y->draw) return x->draw < y->draw ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Leave-k-out: in each row with more than k + 1 entries, mark the k smallest draws. */
static gpuals_status mark_leave_k(const csr *r, const split_options *o, unsigned char *to_test)
{
    const int k = o->leave_k;
    /* One scratch buffer long enough for the longest row. */
    int64_t longest = 0;
    for (int64_t u = 0; u < r->rows; u++)
        if (csr_row_len(r, u) > longest) longest = csr_row_len(r, u);
    ranked_entry *scratch = malloc((size_t)(longest > 0 ? longest : 1) * sizeof *scratch);
    if (scratch == NULL)
        return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory splitting a user's interactions");

    /* Rank each eligible row's entries by draw and send the first k to test. */
    memset(to_test, 0, (size_t)r->nnz);
    for (int64_t u = 0; u < r->rows; u++) {
        int64_t len = csr_row_len(r, u), start = r->indptr[u];
        if (len <= (int64_t)k + 1) continue;
        for (int64_t j = 0; j < len; j++) {
            scratch[j].draw = split_draw(o->seed, row_key(o, u), col_key(o, r->indices[start + j]));
            scratch[j].pos = start + j;
        }
        qsort(scratch, (size_t)len, sizeof *scratch, ranked_entry_cmp);
        for (int j = 0; j < k; j++) to_test[scratch[j].pos] = 1;
    }
    free(scratch);
    return GPUALS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Building both sides                                                                        */
/* ------------------------------------------------------------------------------------------ */

/* Allocate a rows x cols CSR with room for nnz entries; indptr is zeroed. */
static gpuals_status csr_alloc(int64_t rows, int64_t cols, int64_t nnz, csr *out)
{
    memset(out, 0, sizeof *out);
    out->rows = rows;
    out->cols = cols;
    out->nnz = nnz;
    out->indptr = calloc((size_t)rows + 1, sizeof *out->indptr);
    out->indices = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof *out->indices);
    out->data = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof *out->data);
    if (out->indptr == NULL || out->indices == NULL || out->data == NULL) {
        csr_free(out);
        return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory for a split of %lld %s",
                           (long long)nnz, nnz == 1 ? "interaction" : "interactions");
    }
    return GPUALS_OK;
}

/* Copy the entries of r with to_test[j] == side into out (allocated here), keeping order. */
static gpuals_status copy_side(const csr *r, const unsigned char *to_test, unsigned char side,
                               csr *out)
{
    int64_t n = 0;
    for (int64_t j = 0; j < r->nnz; j++) n += to_test[j] == side;
    GPUALS_TRY(csr_alloc(r->rows, r->cols, n, out));

    int64_t w = 0;
    for (int64_t u = 0; u < r->rows; u++) {
        for (int64_t j = r->indptr[u]; j < r->indptr[u + 1]; j++) {
            if (to_test[j] != side) continue;
            out->indices[w] = r->indices[j];
            out->data[w] = r->data[j];
            w++;
        }
        out->indptr[u + 1] = w;
    }
    return GPUALS_OK;
}

gpuals_status split_csr(const csr *r, const split_options *o, csr *train, csr *test)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);

    /* Check the options. */
    if (o->kind == SPLIT_RANDOM && !(o->test_fraction >= 0.0 && o->test_fraction <= 1.0))
        return gpuals_fail(GPUALS_ERR_USAGE, "test fraction must be in [0, 1], not %g",
                           o->test_fraction);
    if (o->kind == SPLIT_LEAVE_K_OUT && o->leave_k < 1)
        return gpuals_fail(GPUALS_ERR_USAGE, "leave-k-out needs K >= 1, not %d", o->leave_k);
    if (o->kind != SPLIT_RANDOM && o->kind != SPLIT_LEAVE_K_OUT)
        return gpuals_fail(GPUALS_ERR_USAGE, "unknown split kind %d", (int)o->kind);

    /* Decide the side of every stored entry. */
    unsigned char *to_test = malloc((size_t)(r->nnz > 0 ? r->nnz : 1));
    if (to_test == NULL)
        return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory splitting %lld %s",
                           (long long)r->nnz, r->nnz == 1 ? "interaction" : "interactions");
    gpuals_status s = GPUALS_OK;
    if (o->kind == SPLIT_RANDOM)
        mark_random(r, o, to_test);
    else
        s = mark_leave_k(r, o, to_test);

    /* Copy each side out. */
    if (s == GPUALS_OK) s = copy_side(r, to_test, 0, train);
    if (s == GPUALS_OK) s = copy_side(r, to_test, 1, test);
    free(to_test);
    if (s != GPUALS_OK) {
        csr_free(train);
        csr_free(test);
    }
    return s;
}

gpuals_status split_check_test(const csr *r, const split_options *o, const csr *test)
{
    if (test->nnz > 0 && test->nnz == r->nnz)
        return gpuals_fail(GPUALS_ERR_EMPTY, "no training interactions: the random split (test "
                           "fraction %.10g) held out all of the %lld %s", o->test_fraction,
                           (long long)r->nnz, r->nnz == 1 ? "interaction" : "interactions");
    if (test->nnz > 0) return GPUALS_OK;
    if (o->kind == SPLIT_LEAVE_K_OUT) {
        int64_t most = 0;
        for (int64_t u = 0; u < r->rows; u++)
            if (csr_row_len(r, u) > most) most = csr_row_len(r, u);
        return gpuals_fail(GPUALS_ERR_EMPTY,
                           "no eligible user: leave-%d-out holds out interactions only of users "
                           "with more than %lld interactions, and the most any user has is %lld",
                           o->leave_k, (long long)o->leave_k + 1, (long long)most);
    }
    if (o->test_fraction <= 0.0)
        return gpuals_fail(GPUALS_ERR_EMPTY, "no test interactions: a random split with test "
                                             "fraction 0 holds nothing out to evaluate on");
    return gpuals_fail(GPUALS_ERR_EMPTY,
                       "no test interactions: the random split (test fraction %.10g) held out "
                       "none of the %lld %s", o->test_fraction, (long long)r->nnz,
                       r->nnz == 1 ? "interaction" : "interactions");
}

gpuals_status split_validation(const csr *train, double fraction, const split_options *o,
                               csr *fit, csr *valid)
{
    split_options v;
    split_options_default(&v);
    v.test_fraction = fraction;
    v.seed = init_rng_mix(o->seed ^ VALID_TAG);
    v.row_keys = o->row_keys;
    v.col_keys = o->col_keys;
    return split_csr(train, &v, fit, valid);
}

/* ------------------------------------------------------------------------------------------ */
/* A dataset for the train side                                                               */
/* ------------------------------------------------------------------------------------------ */

/* Free what split_train_data built so far (every field is either set or zero/NULL). */
static void train_data_discard(gpuals_data *t, int64_t n_titles)
{
    csr_free(&t->ratings);
    csr_free(&t->ratings_t);
    if (t->users != NULL) idmap_free(t->users);
    if (t->items != NULL) idmap_free(t->items);
    if (t->titles != NULL)
        for (int64_t i = 0; i < n_titles; i++) free(t->titles[i]);
    free(t->titles);
    free(t->ratings_path);
    free(t->titles_path);
    free(t);
}

/* A new map holding src's ids at the same indices, or NULL when out of memory. */
static idmap *idmap_clone(const idmap *src)
{
    idmap *m = idmap_new();
    if (m == NULL) return NULL;
    for (int64_t i = 0; i < idmap_size(src); i++) {
        const char *name = idmap_name(src, i);
        if (idmap_intern(m, name, strlen(name), NULL) != i) {
            idmap_free(m);
            return NULL;
        }
    }
    return m;
}

/* strdup that keeps NULL as NULL; *ok is cleared when a copy fails. */
static char *dup_or_null(const char *s, int *ok)
{
    if (s == NULL) return NULL;
    char *c = strdup(s);
    if (c == NULL) *ok = 0;
    return c;
}

gpuals_status split_train_data(const gpuals_data *d, const csr *train, gpuals_data **out)
{
    *out = NULL;
    if (train->rows != d->ratings.rows || train->cols != d->ratings.cols)
        return gpuals_fail(GPUALS_ERR_USAGE,
                           "train matrix is %lld x %lld but the data is %lld x %lld",
                           (long long)train->rows, (long long)train->cols,
                           (long long)d->ratings.rows, (long long)d->ratings.cols);
    gpuals_data *t = calloc(1, sizeof *t);
    if (t == NULL) return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory for the train side");
    int64_t n_items = d->ratings.cols;

    /* The matrix and its transpose. */
    gpuals_status s = csr_copy(train, &t->ratings);
    if (s == GPUALS_OK) s = csr_transpose(&t->ratings, &t->ratings_t);
    if (s != GPUALS_OK) {
        train_data_discard(t, n_items);
        return s;
    }

    /* Ids, titles and paths. */
    int ok = 1;
    t->users = idmap_clone(d->users);
    t->items = idmap_clone(d->items);
    ok = t->users != NULL && t->items != NULL;
    if (ok && d->titles != NULL) {
        t->titles = calloc((size_t)(n_items > 0 ? n_items : 1), sizeof *t->titles);
        ok = t->titles != NULL;
        for (int64_t i = 0; ok && i < n_items; i++) t->titles[i] = dup_or_null(d->titles[i], &ok);
    }
    if (ok) t->ratings_path = dup_or_null(d->ratings_path, &ok);
    if (ok) t->titles_path = dup_or_null(d->titles_path, &ok);
    if (!ok) {
        train_data_discard(t, n_items);
        return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory copying ids and titles");
    }

    /* The summary describes the file; only the stored count changes. */
    t->summary = d->summary;
    t->summary.stored = t->ratings.nnz;
    *out = t;
    return GPUALS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* The public split                                                                           */
/* ------------------------------------------------------------------------------------------ */

void gpuals_split_options_default(gpuals_split_options *o)
{
    if (o == NULL) return;
    split_options d;
    split_options_default(&d);
    o->kind = d.kind == SPLIT_RANDOM ? GPUALS_SPLIT_RANDOM : GPUALS_SPLIT_LEAVE_K_OUT;
    o->test_fraction = d.test_fraction;
    o->leave_k = d.leave_k;
    o->seed = d.seed;
}

gpuals_status gpuals_data_split(const gpuals_data *d, const gpuals_split_options *o,
                                gpuals_data **train, gpuals_data **test)
{
    if (train != NULL) *train = NULL;
    if (test != NULL) *test = NULL;
    if (d == NULL || o == NULL || train == NULL || test == NULL)
        return gpuals_fail(GPUALS_ERR_USAGE, "gpuals_data_split: NULL %s",
                           d == NULL ? "data" : o == NULL ? "options"
                           : train == NULL ? "train" : "test");
    if (o->kind != GPUALS_SPLIT_RANDOM && o->kind != GPUALS_SPLIT_LEAVE_K_OUT)
        return gpuals_fail(GPUALS_ERR_USAGE, "gpuals_data_split: unknown split kind %d",
                           (int)o->kind);
    split_options so = {
        .kind = o->kind == GPUALS_SPLIT_RANDOM ? SPLIT_RANDOM : SPLIT_LEAVE_K_OUT,
        .test_fraction = o->test_fraction,
        .leave_k = o->leave_k,
        .seed = o->seed,
    };
    csr tr, te;
    GPUALS_TRY(split_use_ids(d, &so));
    gpuals_status s = split_csr(&d->ratings, &so, &tr, &te);
    split_keys_free(&so);
    if (s != GPUALS_OK) return gpuals_fail_context(s, "gpuals_data_split");
    gpuals_data *a = NULL, *b = NULL;
    s = split_check_test(&d->ratings, &so, &te);
    if (s == GPUALS_OK) s = split_train_data(d, &tr, &a);
    if (s == GPUALS_OK) s = split_train_data(d, &te, &b);
    csr_free(&tr);
    csr_free(&te);
    if (s != GPUALS_OK) {
        gpuals_data_free(a);
        return s;
    }
    *train = a;
    *test = b;
    return GPUALS_OK;
}
