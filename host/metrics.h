/*
 * metrics.h - ranking metrics at K on held-out interactions, and training with evaluation.
 *
 * For a user u with relevant test items T_u (test entries with a positive value that are not
 * among u's training items) and a ranking of u's candidates (every item that is not a training
 * item, best first), let hits_u be the number of T_u in the first K positions and m = min(K,
 * |T_u|). The metrics, named so that no two definitions share a name:
 *
 *   implicit_precision@K  sum_u hits_u / sum_u m             (`implicit`'s "precision": micro)
 *   precision@K           mean_u hits_u / K                  (true precision)
 *   recall@K              mean_u hits_u / m                  (per user; Liang et al. 2018)
 *   map@K                 mean_u (sum_{hit at rank i} hits_so_far / (i+1)) / m
 *   ndcg@K                mean_u (sum_{hit at rank i} 1/log2(i+2)) / (sum_{i<m} 1/log2(i+2))
 *   implicit_auc@K        `implicit`'s AUC@K: per user, with n_neg = items - |T_u| (training
 *                         items count as negatives) and misses among the first K positions,
 *                         [sum_{miss} hits_before + (hits + |T_u|)/2 (n_neg - misses)]
 *                         / (|T_u| n_neg), averaged
 *   auc                   full AUC over the user's candidates: the share of (relevant,
 *                         non-relevant candidate) pairs the ranking orders correctly, ties
 *                         counted as half, averaged over users
 *
 * Ranks i are 0-based. Only users with |T_u| >= 1 are evaluated; the others are counted as
 * skipped. A user with relevant test items but no training entry with a value > 0 is left out
 * too and counted apart (cold): their factors are zero in exact arithmetic, so their ranking
 * is ties and rounding noise, a score of the item order rather than of the model (Spark's
 * coldStartStrategy "drop" leaves out such users as well). A user without any non-relevant
 * candidate has AUCs of 1 (no pair to misorder).
 * When no user is evaluated every metric is 0, never NaN.
 */
#ifndef GPUALS_METRICS_H
#define GPUALS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "csr.h"
#include "gpuals.h"
#include "idmap.h"

typedef enum {
    METRIC_IMPLICIT_PRECISION = 0,
    METRIC_PRECISION,
    METRIC_RECALL,
    METRIC_MAP,
    METRIC_NDCG,
    METRIC_IMPLICIT_AUC,
    METRIC_AUC,
    METRIC_COUNT
} metric_id;

/* The metrics of one evaluation. */
typedef struct {
    int k;
    int64_t users;    /* users evaluated: at least one relevant test item */
    int64_t skipped;  /* users with no relevant test item (none, or all of them in training) */
    int64_t cold;     /* users with relevant test items but no positive training entry */
    int has_auc;      /* 0 when only the top K were ranked: value[METRIC_AUC] is then 0 */
    double value[METRIC_COUNT];
} metrics_result;

/* The name of metric m at k, e.g. "implicit_precision@10" or "auc", written into buf (len
 * bytes, NUL-terminated, truncated if short). Returns buf. */
const char *metrics_name(metric_id m, int k, char *buf, size_t len);

/* Parse a name as metrics_name writes it ("ndcg@5"; "auc" has no @K) into *m and *k (*k is 10
 * for "auc"). GPUALS_ERR_USAGE naming the known metrics when it is not one. */
gpuals_status metrics_parse_name(const char *s, metric_id *m, int *k);

/* ------------------------------------------------------------------------------------------ */
/* From given rankings                                                                        */
/* ------------------------------------------------------------------------------------------ */

/* Running sums over users; fill with metrics_acc_init, add users, read with metrics_acc_result.
 * The order users are added in does not change the result beyond rounding. */
typedef struct {
    int k;
    int64_t n_items;
    double hits, hit_div;       /* implicit_precision: sum_u hits_u, sum_u min(K, |T_u|) */
    double sum[METRIC_COUNT];   /* sums of the per-user values of the averaged metrics */
    int64_t users, skipped;
    int full;                   /* rankings are complete: compute `auc` (1 after init) */
} metrics_acc;

/* Start sums for metrics at k (>= 1) over n_items items, full rankings expected. Set a->full
 * to 0 to feed only the top K of each ranking; `auc` is then not computed (0, has_auc 0). */
void metrics_acc_init(metrics_acc *a, int k, int64_t n_items);

/* Add one user. ranked[0..n_ranked) are the user's candidates best first: all items that are
 * not training items of the user for `auc` to be the full AUC (the other metrics read only the
 * first K; positions past n_ranked count as misses, as `implicit` counts missing
 * recommendations). scores (NULL, or n_ranked non-increasing values) lets equal scores count as
 * ties in `auc`; NULL means the order is strict. test[0..n_test) are the user's relevant items,
 * sorted ascending and unique; a relevant item absent from ranked counts as ranked below every
 * candidate. n_test == 0 counts the user as skipped. */
void metrics_acc_add(metrics_acc *a, const int64_t *ranked, const float *scores,
                     int64_t n_ranked, const int32_t *test, int64_t n_test);

/* The metrics of the users added so far (all 0 when none was evaluated). */
void metrics_acc_result(const metrics_acc *a, metrics_result *out);

/* ------------------------------------------------------------------------------------------ */
/* From factors                                                                               */
/* ------------------------------------------------------------------------------------------ */

/* Evaluate factors X (train->rows x f) and Y (train->cols x f), row-major, at k: each user with
 * a relevant test item gets the full ranking of its non-training items by x_u . y_i from
 * topn_batch (exclude = train; ties by lower index, equal scores counted as ties in `auc`).
 * With full_auc 0 only the top k are ranked (much cheaper: a heap of k instead of a sort of
 * every item) and `auc` is left out (has_auc 0); the other metrics are the same.
 * test must have train's shape; T_u is test's row u less entries with value <= 0 (dislikes,
 * which `implicit` drops from its test matrix) and less u's training items. Users are taken in
 * batches so that the rankings held at once stay near 4M entries. GPUALS_ERR_USAGE on a shape
 * mismatch or k < 1, GPUALS_ERR_NOMEM, or topn_batch's failure. */
gpuals_status metrics_evaluate(const float *X, const float *Y, int f, const csr *train,
                               const csr *test, int k, int full_auc, metrics_result *out);

/* The users metrics_evaluate would evaluate on train and test: those whose row of test holds a
 * relevant item (an entry with a value > 0 that is not in their row of train) and whose row of
 * train holds a value > 0. -1 when the shapes differ. Lets a command refuse up front a split
 * that leaves nobody to evaluate. */
int64_t metrics_eligible_users(const csr *train, const csr *test);

/* ------------------------------------------------------------------------------------------ */
/* Training with evaluation                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Called after every iteration with the cumulative training seconds (evaluation excluded), the
 * loss (NaN when not computed) and, after evaluated iterations, the metrics (else NULL). After
 * an evaluated iteration the caller's X and Y hold that iteration's factors (a caller may copy
 * them, e.g. to keep the best). A non-zero return stops training after that iteration. */
typedef int (*metrics_iter_fn)(int iteration, double seconds, double loss,
                               const metrics_result *m, void *user);

/* What metrics_fit evaluates on. */
typedef struct {
    const csr *train;  /* ratings of the train side: trained on, and left out of rankings */
    const csr *test;   /* ratings of the test side */
    int k;
    int eval_every;    /* evaluate after iterations E, 2E, ... and the last; 0: the last only */
    int full_auc;      /* rank every item and compute `auc` (else the top k only) */
    const idmap *users, *items; /* raw ids of the rows and columns, for messages (may be NULL) */
} metrics_track;

/* How a metrics_fit run went. */
typedef struct {
    metrics_result last;  /* the metrics after the last iteration run */
    int iterations;       /* iterations run: p->iters unless the callback stopped training */
    double seconds;       /* training time, evaluation excluded */
    double loss;          /* loss after the last iteration, NaN when not computed */
    gpuals_device used;   /* the device that trained */
    char note[256];       /* als_fit's device note */
} metrics_fit_report;

/* Train on t->train from the initial factors of p->seed (als_init_factors) for p->iters
 * iterations with als_fit, on the confidences dataset_confidence makes of t->train under p,
 * evaluating as t says. Training runs in chunks that end at the evaluated iterations, each
 * chunk an als_fit call warm-started from the factors the previous one left, so the factors are
 * read on the host whichever device trains (the CUDA backend returns them only at the end of a
 * call); as the factors carry all the state from one iteration to the next, chunking does not
 * change the result. X (users x f) and Y (items x f) are the caller's buffers and hold the
 * final factors. cb may be NULL. Fails with dataset_confidence's, als_fit's or
 * metrics_evaluate's status; *rep is filled on success. */
gpuals_status metrics_fit(const metrics_track *t, const gpuals_params *p, float *X, float *Y,
                          metrics_iter_fn cb, void *user, metrics_fit_report *rep);

#endif /* GPUALS_METRICS_H */
