/*
 * split.h - seeded train/test splits of an interaction matrix for held-out evaluation.
 *
 * Two protocols, both exact partitions of the stored entries of a CSR (after the loader merged
 * duplicate lines): every stored (user, item, value) lands on exactly one side with its value
 * unchanged, and both sides keep the full users x items shape and the same indices.
 *
 *   random       each stored entry independently goes to test with probability F
 *                (--test-fraction, 0.2 by default), as `implicit`'s train_test_split draws one
 *                uniform number per interaction;
 *   leave-k-out  for every user with more than K + 1 stored entries (the `implicit` rule),
 *                K entries chosen uniformly at random go to test; other users stay in train.
 *
 * The draws are counter-based: each entry's uniform number is a hash of (seed, user, item), so
 * a split depends only on the seed and the set of entries, not on threads. Users and items are
 * named to the hash by keys: hashes of their raw ids (split_use_ids) for data read from a file,
 * so that the same log with its lines in another order (which numbers users and items
 * differently) is split the same way; their indices otherwise.
 *
 * A validation side can be carved out of a train side in turn (split_validation), for choosing
 * settings without looking at the test side; its draws are independent of the test split's.
 */
#ifndef GPUALS_SPLIT_H
#define GPUALS_SPLIT_H

#include <stdint.h>

#include "csr.h"
#include "dataset.h"
#include "gpuals.h"

typedef enum { SPLIT_RANDOM = 0, SPLIT_LEAVE_K_OUT } split_kind;

typedef struct {
    split_kind kind;
    double test_fraction;  /* SPLIT_RANDOM: probability of test, in [0, 1] */
    int leave_k;           /* SPLIT_LEAVE_K_OUT: entries held out per eligible user, >= 1 */
    uint64_t seed;
    uint64_t *row_keys;    /* NULL, or one key per row (user) for the draws; else the index */
    uint64_t *col_keys;    /* NULL, or one key per column (item); else the index */
} split_options;

/* Defaults: random, test fraction 0.2, leave-k 1, seed 0, keys NULL. */
void split_options_default(split_options *o);

/* Key the draws of o by d's raw ids: row_keys and col_keys become the XXH64 hashes of d's user
 * and item ids (new arrays; split_keys_free releases them). GPUALS_ERR_NOMEM when allocation
 * fails (o unchanged). */
gpuals_status split_use_ids(const gpuals_data *d, split_options *o);
void split_keys_free(split_options *o);

/* "random" or "leave-k-out"; split_kind_parse reads the same names (GPUALS_ERR_USAGE, naming
 * both, for anything else). */
const char *split_kind_name(split_kind k);
gpuals_status split_kind_parse(const char *name, split_kind *out);

/* The uniform number in [0, 1) of the entry whose row and column have keys row_key and
 * col_key, under seed: the draw both protocols use. */
double split_draw(uint64_t seed, uint64_t row_key, uint64_t col_key);

/* Split r into *train and *test (both r->rows x r->cols, new CSRs the caller frees with
 * csr_free). GPUALS_ERR_USAGE for a fraction outside [0, 1] or K < 1; GPUALS_ERR_NOMEM when
 * allocation fails. On failure *train and *test are left zeroed. */
gpuals_status split_csr(const csr *r, const split_options *o, csr *train, csr *test);

/* Whether test, the test side split_csr made of r under o, leaves both sides something:
 * GPUALS_OK when it has an entry but not all of them, else GPUALS_ERR_EMPTY with a message
 * saying why in the protocol's terms (a random split that held nothing out, or everything, as
 * test fraction 1 does; a leave-k-out split where no user has more than K + 1 entries, naming
 * the most any user has). */
gpuals_status split_check_test(const csr *r, const split_options *o, const csr *test);

/* Carve a validation side out of train (the train side of a split made with o): each stored
 * entry goes to *valid with probability fraction, the rest to *fit, as the random split draws
 * (with o's keys) but under a seed derived from o's, so that the draws do not depend on those
 * that made the test side. Same partition guarantees and failures as split_csr (fraction in
 * [0, 1]). */
gpuals_status split_validation(const csr *train, double fraction, const split_options *o,
                               csr *fit, csr *valid);

/* A gpuals_data for training on the train side of a split of d: its ratings are a copy of
 * train (which must have d's shape) with the transpose built; the id maps, titles and paths
 * are copied from d, and the summary is d's with `stored` set to train's entries. The caller
 * frees *out with gpuals_data_free. GPUALS_ERR_USAGE on a shape mismatch, GPUALS_ERR_NOMEM
 * when allocation fails (nothing is left allocated). */
gpuals_status split_train_data(const gpuals_data *d, const csr *train, gpuals_data **out);

#endif /* GPUALS_SPLIT_H */
