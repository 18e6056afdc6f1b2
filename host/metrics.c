/*
 * metrics.c - ranking metrics at K (definitions in metrics.h), evaluation of factors on a
 * held-out side, and training with evaluation every E iterations.
 *
 * Per user, one pass over the first K positions of the ranking gives hits_u, the average
 * precision, the DCG and `implicit`'s AUC@K exactly as its evaluation loop accumulates them:
 * a hit at rank i adds hits_so_far/(i+1) to AP and 1/log2(i+2) to DCG; a miss adds the hits
 * before it to the AUC@K numerator, and the n_neg - misses negatives below the cut are credited
 * with (hits + |T_u|)/2 each (every found positive beats them, half of the unfound ones do).
 * The full AUC walks the whole ranking in groups of equal scores: a group with p relevant and
 * n non-relevant items adds p * (non-relevant items below the group) + p * n / 2.
 *
 * Departures from `implicit`: its AUC@K divides by zero for a user whose test items cover every
 * item; we count such a user's AUCs as 1 and never return NaN (0 for every metric when no user
 * is evaluated). Its misses can exceed its negatives when K > items; we cap them. The relevant
 * set excludes test items that are also training items (impossible after split_csr, possible
 * with hand-made matrices), so a user with nothing left to find is skipped, not scored 0.
 */
#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "als.h"
#include "dataset.h"
#include "model.h"
#include "query.h"
#include "status.h"

/* Rankings held at once by metrics_evaluate (entries of users x items). */
#define METRICS_BATCH_ENTRIES (1 << 22)
#define METRICS_BATCH_MAX_USERS 1024

/* ------------------------------------------------------------------------------------------ */
/* Names                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static const char *const metric_base[METRIC_COUNT] = {
    "implicit_precision", "precision", "recall", "map", "ndcg", "implicit_auc", "auc",
};

const char *metrics_name(metric_id m, int k, char *buf, size_t len)
{
    if (m == METRIC_AUC)
        snprintf(buf, len, "%s", metric_base[m]);
    else
        snprintf(buf, len, "%s@%d", metric_base[m], k);
    return buf;
}

gpuals_status metrics_parse_name(const char *s, metric_id *m, int *k)
{
    /* Split "name@K" and look the name up. */
    const char *at = strchr(s, '@');
    size_t base_len = at != NULL ? (size_t)(at - s) : strlen(s);
    int found = -1;
    for (int j = 0; j < METRIC_COUNT; j++)
        if (strlen(metric_base[j]) == base_len && strncmp(s, metric_base[j], base_len) == 0)
            found = j;

    /* "auc" takes no @K; every other metric needs a positive K. */
    long kk = 10;
    int ok = found >= 0;
    if (ok && found == METRIC_AUC) ok = at == NULL;
    if (ok && found != METRIC_AUC) {
        char *end = NULL;
        ok = at != NULL && at[1] >= '0' && at[1] <= '9';
        if (ok) kk = strtol(at + 1, &end, 10);
        ok = ok && *end == '\0' && kk >= 1 && kk <= 1000000;
    }
    if (!ok)
        return gpuals_fail(GPUALS_ERR_USAGE,
                           "unknown metric '%s': use implicit_precision@K, precision@K, "
                           "recall@K, map@K, ndcg@K, implicit_auc@K or auc",
                           s);
    *m = (metric_id)found;
    *k = (int)kk;
    return GPUALS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Accumulating over users                                                                    */
/* ------------------------------------------------------------------------------------------ */

void metrics_acc_init(metrics_acc *a, int k, int64_t n_items)
{
    memset(a, 0, sizeof *a);
    a->k = k;
    a->n_items = n_items;
    a->full = 1;
}

/* bsearch order of item indices. */
static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* 1 when item is among the sorted test items. */
static int is_relevant(int64_t item, const int32_t *test, int64_t n_test)
{
    if (item < 0 || item > INT32_MAX) return 0;
    int32_t key = (int32_t)item;
    return bsearch(&key, test, (size_t)n_test, sizeof *test, cmp_i32) != NULL;
}

/* The full AUC of one ranking (see the file comment), 1 when there is no negative. */
static double full_auc(const int64_t *ranked, const float *scores, int64_t n_ranked,
                       const int32_t *test, int64_t n_test)
{
    /* Count the relevant items found in the ranking; the rest are negatives. */
    int64_t found = 0;
    for (int64_t j = 0; j < n_ranked; j++) found += is_relevant(ranked[j], test, n_test);
    double n_neg = (double)(n_ranked - found);
    if (n_neg <= 0) return 1.0;

    /* Walk groups of equal scores from the top, crediting each positive with the negatives
     * below its group and half of those in it. */
    double correct = 0, neg_seen = 0;
    for (int64_t j = 0; j < n_ranked;) {
        int64_t end = j + 1;
        while (scores != NULL && end < n_ranked && scores[end] == scores[j]) end++;
        double pos = 0, neg = 0;
        for (int64_t q = j; q < end; q++) {
            if (is_relevant(ranked[q], test, n_test))
                pos++;
            else
                neg++;
        }
        correct += pos * (n_neg - neg_seen - neg) + 0.5 * pos * neg;
        neg_seen += neg;
        j = end;
    }
    return correct / ((double)n_test * n_neg);
}

void metrics_acc_add(metrics_acc *a, const int64_t *ranked, const float *scores,
                     int64_t n_ranked, const int32_t *test, int64_t n_test)
{
    if (n_test <= 0) {
        a->skipped++;
        return;
    }
    int k = a->k;
    double m = (double)(n_test < k ? n_test : k);

    /* One pass over the first K positions. Missing positions are misses, as in `implicit`, whose
     * lists are padded with filtered items; but a list never holds more than every item, so
     * positions past n_items count for nothing (that keeps AUC@K within [0, 1] when K exceeds
     * the number of items). */
    double hits = 0, ap = 0, dcg = 0, idcg = 0, misses = 0, auc_k = 0;
    int64_t last = n_ranked > a->n_items ? n_ranked : a->n_items; /* nothing counts past it */
    if (last < (int64_t)m) last = (int64_t)m;
    const int64_t stop = k < last ? k : last;
    for (int64_t i = 0; i < stop; i++) {
        if (i < n_ranked && is_relevant(ranked[i], test, n_test)) {
            hits++;
            ap += hits / (double)(i + 1);
            dcg += 1.0 / log2((double)i + 2.0);
        } else if (i < a->n_items) {
            misses++;
            auc_k += hits;
        }
        if (i < m) idcg += 1.0 / log2((double)i + 2.0);
    }

    /* implicit's AUC@K: negatives include training items; n_neg = 0 has no pair (1). */
    double n_neg = (double)(a->n_items - n_test), auc_at_k = 1.0;
    if (n_neg > 0) {
        if (misses > n_neg) misses = n_neg;
        auc_k += (hits + (double)n_test) / 2.0 * (n_neg - misses);
        auc_at_k = auc_k / ((double)n_test * n_neg);
    }

    /* Add this user's values. */
    a->hits += hits;
    a->hit_div += m;
    a->sum[METRIC_PRECISION] += hits / k;
    a->sum[METRIC_RECALL] += hits / m;
    a->sum[METRIC_MAP] += ap / m;
    a->sum[METRIC_NDCG] += dcg / idcg;
    a->sum[METRIC_IMPLICIT_AUC] += auc_at_k;
    if (a->full) a->sum[METRIC_AUC] += full_auc(ranked, scores, n_ranked, test, n_test);
    a->users++;
}

void metrics_acc_result(const metrics_acc *a, metrics_result *out)
{
    memset(out, 0, sizeof *out);
    out->k = a->k;
    out->users = a->users;
    out->skipped = a->skipped;
    out->has_auc = a->full;
    if (a->users == 0) return;
    for (int j = 0; j < METRIC_COUNT; j++) out->value[j] = a->sum[j] / (double)a->users;
    out->value[METRIC_IMPLICIT_PRECISION] = a->hits / a->hit_div;
}

/* ------------------------------------------------------------------------------------------ */
/* Evaluating factors                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* T_u: the positive test entries of row u that are not in train's row u (both sorted), written
 * to out; returns how many. */
static int64_t relevant_items(const csr *train, const csr *test, int64_t u, int32_t *out)
{
    int64_t n = 0, t = train->indptr[u], t_end = train->indptr[u + 1];
    for (int64_t j = test->indptr[u]; j < test->indptr[u + 1]; j++) {
        int32_t item = test->indices[j];
        while (t < t_end && train->indices[t] < item) t++;
        if (t < t_end && train->indices[t] == item) continue;
        if (!(test->data[j] > 0)) continue;
        out[n++] = item;
    }
    return n;
}

/* Scratch of metrics_evaluate, freed together. */
typedef struct {
    int64_t *users;    /* users with a relevant test item */
    float *Q;          /* their factor rows, one batch */
    int64_t *idx;      /* rankings of one batch */
    float *score;
    int *n_out;
    int32_t *rel;      /* one user's relevant items */
} eval_scratch;

/* Free every buffer (NULL ones included). */
static void eval_scratch_free(eval_scratch *w)
{
    free(w->users);
    free(w->Q);
    free(w->idx);
    free(w->score);
    free(w->n_out);
    free(w->rel);
}

/* Room for n_users users, batches of `batch` rankings of `depth` items, one user's test items. */
static gpuals_status eval_scratch_alloc(eval_scratch *w, int64_t n_users, int64_t batch,
                                        int64_t depth, int f, int64_t longest_test)
{
    memset(w, 0, sizeof *w);
    size_t entries = (size_t)batch * (size_t)(depth > 0 ? depth : 1);
    w->users = malloc((size_t)(n_users > 0 ? n_users : 1) * sizeof *w->users);
    w->Q = malloc((size_t)batch * (size_t)f * sizeof *w->Q);
    w->idx = malloc(entries * sizeof *w->idx);
    w->score = malloc(entries * sizeof *w->score);
    w->n_out = malloc((size_t)batch * sizeof *w->n_out);
    w->rel = malloc((size_t)(longest_test > 0 ? longest_test : 1) * sizeof *w->rel);
    if (!w->users || !w->Q || !w->idx || !w->score || !w->n_out || !w->rel) {
        eval_scratch_free(w);
        return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory ranking items for evaluation "
                                             "(%lld %s at a time)", (long long)batch,
                           batch == 1 ? "user" : "users");
    }
    return GPUALS_OK;
}

/* 1 when row u of train holds a value > 0 (a user the model can rank for). */
static int has_positive(const csr *train, int64_t u)
{
    for (int64_t t = train->indptr[u]; t < train->indptr[u + 1]; t++)
        if (train->data[t] > 0) return 1;
    return 0;
}

int64_t metrics_eligible_users(const csr *train, const csr *test)
{
    if (train->rows != test->rows || train->cols != test->cols) return -1;
    int64_t n = 0;
    for (int64_t u = 0; u < test->rows; u++) {
        if (!has_positive(train, u)) continue;
        int64_t t = train->indptr[u], t_end = train->indptr[u + 1];
        for (int64_t j = test->indptr[u]; j < test->indptr[u + 1]; j++) {
            int32_t item = test->indices[j];
            while (t < t_end && train->indices[t] < item) t++;
            if (test->data[j] > 0 && !(t < t_end && train->indices[t] == item)) {
                n++;
                break;
            }
        }
    }
    return n;
}

gpuals_status metrics_evaluate(const float *X, const float *Y, int f, const csr *train,
                               const csr *test, int k, int full_auc, metrics_result *out)
{
    /* Check the arguments. */
    if (k < 1) return gpuals_fail(GPUALS_ERR_USAGE, "metrics need K >= 1, not %d", k);
    if (train->rows != test->rows || train->cols != test->cols)
        return gpuals_fail(GPUALS_ERR_USAGE, "test matrix is %lld x %lld but train is %lld x %lld",
                           (long long)test->rows, (long long)test->cols,
                           (long long)train->rows, (long long)train->cols);
    if (train->cols > INT32_MAX)
        return gpuals_fail(GPUALS_ERR_USAGE, "%lld items are too many to rank in one list",
                           (long long)train->cols);
    int64_t n_users = train->rows, n_items = train->cols;
    int64_t depth = full_auc || k > n_items ? n_items : k; /* ranking length */

    /* Batch size and scratch. */
    int64_t batch = METRICS_BATCH_ENTRIES / (depth > 0 ? depth : 1);
    if (batch < 1) batch = 1;
    if (batch > METRICS_BATCH_MAX_USERS) batch = METRICS_BATCH_MAX_USERS;
    int64_t longest = 0;
    for (int64_t u = 0; u < n_users; u++)
        if (csr_row_len(test, u) > longest) longest = csr_row_len(test, u);
    eval_scratch w;
    GPUALS_TRY(eval_scratch_alloc(&w, n_users, batch, depth, f, longest));

    /* Users with something to find are ranked; the others are counted as skipped, and those
     * with nothing to rank from as cold. */
    metrics_acc acc;
    metrics_acc_init(&acc, k, n_items);
    acc.full = full_auc != 0;
    int64_t n_eval = 0, cold = 0;
    for (int64_t u = 0; u < n_users; u++) {
        if (relevant_items(train, test, u, w.rel) == 0)
            metrics_acc_add(&acc, NULL, NULL, 0, NULL, 0);
        else if (!has_positive(train, u))
            cold++;
        else
            w.users[n_eval++] = u;
    }

    /* Rank a batch at a time and score each user of the batch. */
    gpuals_status s = GPUALS_OK;
    for (int64_t b0 = 0; b0 < n_eval && s == GPUALS_OK; b0 += batch) {
        int64_t nb = n_eval - b0 < batch ? n_eval - b0 : batch;
        for (int64_t q = 0; q < nb; q++)
            memcpy(w.Q + q * f, X + w.users[b0 + q] * f, (size_t)f * sizeof *w.Q);
        topn_filter flt = {.exclude = train, .exclude_row = w.users + b0};
        s = topn_batch(w.Q, nb, Y, n_items, f, &flt, (int)depth, w.idx, w.score, w.n_out);
        for (int64_t q = 0; q < nb && s == GPUALS_OK; q++) {
            int64_t n_rel = relevant_items(train, test, w.users[b0 + q], w.rel);
            metrics_acc_add(&acc, w.idx + q * depth, w.score + q * depth, w.n_out[q], w.rel,
                            n_rel);
        }
    }
    eval_scratch_free(&w);
    if (s != GPUALS_OK) return s;
    metrics_acc_result(&acc, out);
    out->cold = cold;
    return GPUALS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Training with evaluation                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Seconds on a monotonic clock. */
static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* State of one chunk (one als_fit call) of metrics_fit. Time is measured here, between
 * callbacks, so it is cumulative whatever als_fit passes as seconds, and leaves out the
 * evaluations that run between chunks. */
typedef struct {
    int base;              /* iterations before this chunk */
    int chunk;             /* iterations in this chunk */
    double *elapsed;       /* training seconds so far, all chunks */
    double mark;           /* clock at the chunk's start or its last callback */
    int ran;               /* iterations of the chunk run so far */
    double loss;           /* loss after its last iteration */
    int stopped;           /* the user callback asked to stop */
    metrics_iter_fn cb;
    void *user;
} chunk_state;

/* als_fit's callback: pass every iteration but the chunk's last straight on; the last one is
 * reported by metrics_fit after the evaluation. */
static int chunk_iteration(int iteration, double seconds, double loss, void *user)
{
    (void)seconds;
    chunk_state *c = user;
    double now = now_seconds();
    *c->elapsed += now - c->mark;
    c->mark = now;
    c->ran = iteration;
    c->loss = loss;
    if (iteration >= c->chunk || c->cb == NULL) return 0;
    if (c->cb(c->base + iteration, *c->elapsed, loss, NULL, c->user) != 0) {
        c->stopped = 1;
        return 1;
    }
    return 0;
}

/* The chunked training loop of metrics_fit on confidences Cui and their transpose Ciu. */
static gpuals_status fit_chunks(const csr *Cui, const csr *Ciu, const metrics_track *t,
                                const gpuals_params *p, float *X, float *Y, metrics_iter_fn cb,
                                void *user, metrics_fit_report *rep)
{
    int done = 0, stop = 0;
    while (done < p->iters && !stop) {
        /* The chunk runs up to the next evaluated iteration. */
        int chunk = p->iters - done;
        if (t->eval_every > 0 && t->eval_every - done % t->eval_every < chunk)
            chunk = t->eval_every - done % t->eval_every;
        chunk_state c = {.base = done, .chunk = chunk, .elapsed = &rep->seconds,
                         .mark = now_seconds(), .loss = NAN, .cb = cb, .user = user};
        gpuals_params pc = *p;
        pc.iters = chunk;
        gpuals_status st = als_fit(Cui, Ciu, &pc, X, Y, chunk_iteration, &c, &rep->used,
                                   rep->note, sizeof rep->note);
        /* A failure names its row by raw id and its iteration as the whole run counts. */
        if (st != GPUALS_OK) return als_failure_restate(st, t->users, t->items, done);

        /* Evaluate where it ended and report its last iteration with the metrics. */
        done += c.ran;
        rep->loss = c.loss;
        GPUALS_TRY(metrics_evaluate(X, Y, p->factors, t->train, t->test, t->k, t->full_auc,
                                    &rep->last));
        if (c.stopped || c.ran < chunk)
            stop = 1;
        else if (cb != NULL && cb(done, rep->seconds, c.loss, &rep->last, user) != 0)
            stop = 1;
    }
    rep->iterations = done;
    return GPUALS_OK;
}

gpuals_status metrics_fit(const metrics_track *t, const gpuals_params *p, float *X, float *Y,
                          metrics_iter_fn cb, void *user, metrics_fit_report *rep)
{
    memset(rep, 0, sizeof *rep);
    rep->loss = NAN;
    rep->used = GPUALS_DEVICE_CPU;
    if (p->iters < 0) return gpuals_fail(GPUALS_ERR_USAGE, "iterations must be >= 0");
    if (t->eval_every < 0) return gpuals_fail(GPUALS_ERR_USAGE, "eval-every must be >= 0");

    /* Confidences, both orientations. */
    csr Cui = {0}, Ciu = {0};
    gpuals_status s = dataset_confidence_ids(t->train, t->users, t->items, 0, p, &Cui);
    if (s == GPUALS_OK) s = csr_transpose(&Cui, &Ciu);

    /* Initial factors as gpuals_train starts, then train; no iteration at all evaluates the
     * initial factors. */
    if (s == GPUALS_OK) {
        als_init_factors(X, Cui.rows, p->factors, p->seed, ALS_SIDE_USERS);
        als_init_factors(Y, Cui.cols, p->factors, p->seed, ALS_SIDE_ITEMS);
        if (p->iters > 0)
            s = fit_chunks(&Cui, &Ciu, t, p, X, Y, cb, user, rep);
        else
            s = metrics_evaluate(X, Y, p->factors, t->train, t->test, t->k, t->full_auc,
                                 &rep->last);
    }
    csr_free(&Cui);
    csr_free(&Ciu);
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* The public evaluation                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* GPUALS_OK when ids a and b (the model's and the test side's, of one side) hold the same raw
 * ids at the same indices; else GPUALS_ERR_MISMATCH naming the first difference. */
static gpuals_status same_ids(const idmap *a, const idmap *b, const char *what)
{
    int64_t na = a ? idmap_size(a) : 0, nb = b ? idmap_size(b) : 0;
    if (na != nb)
        return gpuals_fail(GPUALS_ERR_MISMATCH, "gpuals_evaluate: the model has %lld %s but the "
                           "test side has %lld", (long long)na, what, (long long)nb);
    for (int64_t i = 0; i < na; i++)
        if (strcmp(idmap_name(a, i), idmap_name(b, i)) != 0)
            return gpuals_fail(GPUALS_ERR_MISMATCH, "gpuals_evaluate: %s index %lld is '%s' in "
                               "the model but '%s' on the test side (is the model trained on "
                               "the train side of this split?)", what, (long long)i,
                               idmap_name(a, i), idmap_name(b, i));
    return GPUALS_OK;
}

gpuals_status gpuals_evaluate(const gpuals_model *m, const gpuals_data *test, int k, int full_auc,
                              gpuals_metrics *out)
{
    if (m == NULL || test == NULL || out == NULL)
        return gpuals_fail(GPUALS_ERR_USAGE, "gpuals_evaluate: NULL %s",
                           m == NULL ? "model" : test == NULL ? "test" : "out");
    if (k < 1) return gpuals_fail(GPUALS_ERR_USAGE, "gpuals_evaluate: k must be >= 1, not %d", k);
    GPUALS_TRY(same_ids(m->users, test->users, "users"));
    GPUALS_TRY(same_ids(m->items, test->items, "items"));
    const csr *train = &m->conf;
    if (train->rows != test->ratings.rows || train->cols != test->ratings.cols)
        return gpuals_fail(GPUALS_ERR_MISMATCH, "gpuals_evaluate: the test side is %lld x %lld "
                           "but the model's training matrix is %lld x %lld",
                           (long long)test->ratings.rows, (long long)test->ratings.cols,
                           (long long)train->rows, (long long)train->cols);
    int64_t eligible = metrics_eligible_users(train, &test->ratings);
    if (eligible == 0)
        return gpuals_fail(GPUALS_ERR_EMPTY, "gpuals_evaluate: no user to evaluate: none of the "
                           "%lld test interactions has a positive value on an item outside the "
                           "training items of a user with a positive training interaction",
                           (long long)test->ratings.nnz);
    metrics_result r;
    GPUALS_TRY(metrics_evaluate(m->X, m->Y, m->factors, train, &test->ratings, k, full_auc, &r));
    out->k = r.k;
    out->users = r.users;
    out->skipped = r.skipped;
    out->cold = r.cold;
    out->has_auc = r.has_auc;
    out->implicit_precision = r.value[METRIC_IMPLICIT_PRECISION];
    out->precision = r.value[METRIC_PRECISION];
    out->recall = r.value[METRIC_RECALL];
    out->map = r.value[METRIC_MAP];
    out->ndcg = r.value[METRIC_NDCG];
    out->implicit_auc = r.value[METRIC_IMPLICIT_AUC];
    out->auc = r.value[METRIC_AUC];
    return GPUALS_OK;
}
