/*
 * query.c - answering questions with a trained model: score, recommend, similar, explain and
 * fold-in, all on the CPU, and the batched top-N selection they share.
 *
 * Scores. For a user factor vector x_u and item factors y_i the score is x_u . y_i. Cosine
 * similarity of two rows a, b of one factor matrix is a . b / (|a| |b|), computed as the dot
 * product times the reciprocal norms of both rows; a zero row has reciprocal norm 0, so it has
 * similarity 0 with everything instead of 0/0.
 *
 * Top-N (topn_batch). Queries go in batches of up to 256 rows: one SGEMM gives the batch x
 * candidates score block, then each row keeps its best n in a bounded heap whose root is the
 * worst kept entry (O(candidates log n), no full sort) and finally sorts those n. "Best" means a
 * higher score, ties going to the lower index; a NaN ranks below every number. Excluded
 * candidates (liked items, the query itself, items outside an allow list) are skipped while
 * scanning, never given sentinel scores, so they cannot come back however large n is; when
 * fewer than n candidates remain, fewer are returned. Batches run in parallel (OpenMP) with
 * OpenBLAS held to one thread, so the GEMMs do not oversubscribe the cores.
 *
 * Explain (Hu, Koren & Volinsky 2008, section 5). With the user's confidences c_uj over liked
 * items j,
 *     W_u = Y^T C_u Y + lambda_u I = YtY + lambda_u I + sum_j (|c_uj| - 1) y_j y_j^T
 * (lambda_u = lambda, or lambda * n_u under frequency scaling; |c| because, as in training and
 * in the `implicit` library, a negative value means "disliked": weight |c|, preference 0), the
 * exact solution is x_u = W_u^-1 sum_{c_uj > 0} c_uj y_j, so the score of item i splits into
 * per-item parts
 *     y_i . x_u = sum_{c_uj > 0} c_uj (y_i^T W_u^-1 y_j).
 * Disliked items shape W_u but contribute no term of their own, so they are not listed.
 * We factor W_u once (Cholesky, double), solve W_u v = y_i once, and take c_uj (v . y_j) as
 * item j's contribution (a user without liked items has total 0 and no parts). The sum
 * equals the model's score exactly when x_u was solved exactly against the current Y; after CG
 * training, or for users solved against an earlier Y, the two differ and both are reported.
 *
 * Fold-in. A new user's liked items go through the loader's steps (values below the min_rating
 * the training data was loaded with dropped, then zeros; repeats summed) and are turned into
 * confidences like the training matrix (dataset_confidence), then solved exactly against the
 * fixed Y (als_solve_row_exact), the same system the Cholesky solver uses in training.
 *
 * Users whose ranking would be ties. A user none of whose interactions has a positive
 * confidence has preference 0 for every item, so the exact solution of its row is x_u = 0
 * (W_u x_u = 0): every score ties. The Cholesky solver reaches that zero; CG, starting from the
 * previous factors, only approaches it. Recommend therefore refuses such a user by its
 * interactions, not by its factors, which treats both solvers alike without a threshold on
 * "small" factors; a zero factor vector for any other reason is refused as well.
 */
#include "query.h"

#include <cblas.h>
#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "als.h"
#include "dataset.h"
#include "lookup.h"
#include "model.h"
#include "reader.h"
#include "status.h"

/* Queries scored per GEMM, and the most floats of scores one thread holds at a time. */
#define TOPN_BATCH 256
#define TOPN_MAX_SCORES ((int64_t)1 << 24)

/* ------------------------------------------------------------------------------------------ */
/* Bounded selection                                                                          */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    float score;
    int64_t index;
} ranked;

/* 1 when a ranks before b: a higher score, or an equal score and a lower index. */
static inline int ranks_before(ranked a, ranked b)
{
    float ka = isnan(a.score) ? -INFINITY : a.score;
    float kb = isnan(b.score) ? -INFINITY : b.score;
    if (ka != kb) return ka > kb;
    return a.index < b.index;
}

static inline void swap_ranked(ranked *a, ranked *b)
{
    ranked t = *a;
    *a = *b;
    *b = t;
}

/* Restore the heap (root = the entry that ranks last) below position at. */
static void heap_sift_down(ranked *h, int len, int at)
{
    for (;;) {
        int l = 2 * at + 1, r = l + 1, last = at;
        if (l < len && ranks_before(h[last], h[l])) last = l;
        if (r < len && ranks_before(h[last], h[r])) last = r;
        if (last == at) return;
        swap_ranked(&h[at], &h[last]);
        at = last;
    }
}

static void heap_sift_up(ranked *h, int at)
{
    while (at > 0) {
        int parent = (at - 1) / 2;
        if (!ranks_before(h[parent], h[at])) return;
        swap_ranked(&h[parent], &h[at]);
        at = parent;
    }
}

/* Offer c to a heap of at most cap entries: it enters if there is room or it ranks before
 * the worst kept entry, which it then replaces. */
static inline void heap_offer(ranked *h, int *len, int cap, ranked c)
{
    if (*len < cap) {
        h[*len] = c;
        heap_sift_up(h, *len);
        (*len)++;
    } else if (ranks_before(c, h[0])) {
        h[0] = c;
        heap_sift_down(h, *len, 0);
    }
}

/* Turn the heap into a list sorted best first, in place. */
static void heap_drain(ranked *h, int len)
{
    for (int end = len - 1; end > 0; end--) {
        swap_ranked(&h[0], &h[end]);
        heap_sift_down(h, end, 0);
    }
}

/* Select the best cap candidates of query q from its scores S[0..n_cand) into heap (sorted
 * best first on return); returns how many were kept. */
static int select_row(const float *S, int64_t n_cand, int64_t q, const topn_filter *flt,
                      int cap, ranked *heap)
{
    /* What this row leaves out, and how its scores are scaled. */
    const int32_t *ex = NULL;
    int64_t ex_n = 0, ex_at = 0, self = -1;
    const float *col_scale = NULL;
    const unsigned char *allowed = NULL;
    float qs = 1.0f;
    int scale_q = 0;
    if (flt) {
        int64_t r = flt->exclude ? (flt->exclude_row ? flt->exclude_row[q] : q) : -1;
        if (r >= 0) {
            ex = flt->exclude->indices + flt->exclude->indptr[r];
            ex_n = csr_row_len(flt->exclude, r);
        }
        if (flt->self) self = flt->self[q];
        if (flt->query_scale) {
            qs = flt->query_scale[q];
            scale_q = 1;
        }
        col_scale = flt->col_scale;
        allowed = flt->allowed;
    }

    /* Scan the candidates in index order; the excluded columns are sorted, so one pointer
     * walks them alongside. */
    int len = 0;
    for (int64_t j = 0; j < n_cand; j++) {
        if (allowed && !allowed[j]) continue;
        if (j == self) continue;
        while (ex_at < ex_n && ex[ex_at] < j) ex_at++;
        if (ex_at < ex_n && ex[ex_at] == j) continue;
        float s = S[j];
        if (col_scale) s *= col_scale[j];
        if (scale_q) s *= qs;
        ranked c = {s, j};
        heap_offer(heap, &len, cap, c);
    }
    heap_drain(heap, len);
    return len;
}

/* Check topn_batch's arguments before any work starts (nothing inside the parallel region
 * can fail). */
static gpuals_status topn_check(const float *Q, int64_t nq, const float *C, int64_t n_cand,
                                int f, const topn_filter *flt, int n, const int64_t *idx,
                                const float *score, const int *n_out)
{
    if (nq < 0 || n_cand < 0 || f <= 0 || n < 0)
        return gpuals_fail(GPUALS_ERR_USAGE, "topn_batch: invalid sizes nq=%lld n_cand=%lld "
                           "f=%d n=%d", (long long)nq, (long long)n_cand, f, n);
    if (n_cand > INT_MAX)
        return gpuals_fail(GPUALS_ERR_USAGE, "ranking: %lld candidates exceed the BLAS limit "
                           "of %d", (long long)n_cand, INT_MAX);
    if (nq > 0 && (!Q || !n_out || (n > 0 && (!idx || !score))))
        return gpuals_fail(GPUALS_ERR_USAGE, "topn_batch: NULL query or output array");
    if (nq > 0 && n_cand > 0 && !C)
        return gpuals_fail(GPUALS_ERR_USAGE, "topn_batch: NULL candidate matrix");
    if (!flt || !flt->exclude) return GPUALS_OK;
    for (int64_t q = 0; q < nq; q++) {
        int64_t r = flt->exclude_row ? flt->exclude_row[q] : q;
        if (r < -1 || r >= flt->exclude->rows)
            return gpuals_fail(GPUALS_ERR_USAGE, "topn_batch: query %lld excludes row %lld of "
                               "a matrix with %lld rows", (long long)q, (long long)r,
                               (long long)flt->exclude->rows);
    }
    return GPUALS_OK;
}

gpuals_status topn_batch(const float *Q, int64_t nq, const float *C, int64_t n_cand, int f,
                         const topn_filter *flt, int n, int64_t *idx, float *score,
                         int *n_out)
{
    /* Check the arguments; nothing to select leaves every row empty. */
    GPUALS_TRY(topn_check(Q, nq, C, n_cand, f, flt, n, idx, score, n_out));
    if (nq == 0) return GPUALS_OK;
    int cap = (int64_t)n < n_cand ? n : (int)n_cand;
    if (cap == 0) {
        memset(n_out, 0, (size_t)nq * sizeof *n_out);
        return GPUALS_OK;
    }

    /* Batch size: at most TOPN_BATCH rows, enough batches for every thread, and a score
     * block of bounded size. */
    int threads = omp_get_max_threads();
    int64_t batch = (nq + threads - 1) / threads;
    if (batch > TOPN_BATCH) batch = TOPN_BATCH;
    if (batch > TOPN_MAX_SCORES / n_cand) batch = TOPN_MAX_SCORES / n_cand;
    if (batch < 1) batch = 1;
    int64_t n_batches = (nq + batch - 1) / batch;
    if (n_batches < threads) threads = (int)n_batches;

    /* Per-thread score blocks and heaps, allocated before the parallel region. */
    float *scores = malloc((size_t)threads * (size_t)batch * (size_t)n_cand * sizeof *scores);
    ranked *heaps = malloc((size_t)threads * (size_t)cap * sizeof *heaps);
    if (!scores || !heaps) {
        free(scores);
        free(heaps);
        return gpuals_fail(GPUALS_ERR_NOMEM, "ranking: out of memory for %lld x %lld scores",
                           (long long)batch, (long long)n_cand);
    }

    /* Score each batch with one GEMM (S = Q_b C^T), then select row by row. */
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int64_t b = 0; b < n_batches; b++) {
        int t = omp_get_thread_num();
        float *S = scores + (size_t)t * (size_t)batch * (size_t)n_cand;
        ranked *heap = heaps + (size_t)t * (size_t)cap;
        int64_t q0 = b * batch;
        int64_t nb = nq - q0 < batch ? nq - q0 : batch;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)n_cand, f, 1.0f,
                    Q + (size_t)q0 * (size_t)f, f, C, f, 0.0f, S, (int)n_cand);
        for (int64_t r = 0; r < nb; r++) {
            int64_t q = q0 + r;
            int len = select_row(S + (size_t)r * (size_t)n_cand, n_cand, q, flt, cap, heap);
            for (int k = 0; k < len; k++) {
                idx[q * n + k] = heap[k].index;
                score[q * n + k] = heap[k].score;
            }
            n_out[q] = len;
        }
    }
    openblas_set_num_threads(blas_threads);

    free(scores);
    free(heaps);
    return GPUALS_OK;
}

void row_inv_norms(const float *F, int64_t rows, int f, float *out)
{
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *v = F + (size_t)r * (size_t)f;
        double ss = 0.0;
        for (int k = 0; k < f; k++) ss += (double)v[k] * v[k];
        out[r] = (ss > 0.0 && isfinite(ss)) ? (float)(1.0 / sqrt(ss)) : 0.0f;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static double dot_double(const float *a, const float *b, int f)
{
    double s = 0.0;
    for (int k = 0; k < f; k++) s += (double)a[k] * b[k];
    return s;
}

static int all_zero(const float *v, int f)
{
    for (int k = 0; k < f; k++)
        if (v[k] != 0.0f) return 0;
    return 1;
}

/* The regularisation of a row with n_u liked items, as training uses it. */
static double row_lambda(const gpuals_params *p, int64_t n_u)
{
    return p->reg_scale == GPUALS_REG_FREQUENCY ? p->reg * (double)n_u : p->reg;
}

static gpuals_status check_model(const gpuals_model *m, const char *fn)
{
    if (!m) return gpuals_fail(GPUALS_ERR_USAGE, "%s: NULL model", fn);
    return GPUALS_OK;
}

static gpuals_status check_index(int64_t k, int64_t count, const char *fn, const char *what)
{
    if (k < 0 || k >= count)
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: %s index %lld out of range (0..%lld)", fn,
                           what, (long long)k, (long long)count - 1);
    return GPUALS_OK;
}

/* Check a 1 x n_items row of confidences given for a user vector. */
static gpuals_status check_liked(const gpuals_model *m, const csr *liked, const char *fn)
{
    if (!liked) return GPUALS_OK;
    if (liked->rows < 1 || liked->cols != m->n_items || !liked->indptr)
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: liked must be 1 x %lld, not %lld x %lld", fn,
                           (long long)m->n_items, (long long)liked->rows,
                           (long long)liked->cols);
    return GPUALS_OK;
}

/* Copy the first k results of topn into hits. */
static void copy_hits(const int64_t *idx, const float *score, int k, gpuals_hit *hits)
{
    for (int j = 0; j < k; j++) {
        hits[j].index = idx[j];
        hits[j].score = score[j];
    }
}

/* Run topn_batch for the single query q (f floats) against C and copy its answer to hits. */
static gpuals_status topn_one(const float *q, const float *C, int64_t n_cand, int f,
                              const topn_filter *flt, int n, gpuals_hit *hits, int *n_out)
{
    *n_out = 0;
    if (n == 0) return GPUALS_OK;
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    float *score = malloc((size_t)n * sizeof *score);
    if (!idx || !score) {
        free(idx);
        free(score);
        return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory for %d results", n);
    }
    int got = 0;
    gpuals_status s = topn_batch(q, 1, C, n_cand, f, flt, n, idx, score, &got);
    if (s == GPUALS_OK) {
        copy_hits(idx, score, got, hits);
        *n_out = got;
    }
    free(idx);
    free(score);
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Score and recommend                                                                        */
/* ------------------------------------------------------------------------------------------ */

gpuals_status gpuals_score(const gpuals_model *m, const char *user, const char *item,
                           float *out)
{
    GPUALS_TRY(check_model(m, "gpuals_score"));
    if (!user || !item || !out)
        return gpuals_fail(GPUALS_ERR_USAGE, "gpuals_score: NULL user, item or output");
    int64_t u, i;
    GPUALS_TRY(lookup_user(m, user, &u));
    GPUALS_TRY(lookup_item_id(m, item, &i));
    int f = m->factors;
    *out = (float)dot_double(m->X + (size_t)u * (size_t)f, m->Y + (size_t)i * (size_t)f, f);
    return GPUALS_OK;
}

void gpuals_rec_options_default(gpuals_rec_options *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->filter_liked = 1;
}

/* Mark an index list in mask (value v), checking each index against n_items. */
static gpuals_status mark_list(unsigned char *mask, int64_t n_items, const int64_t *list,
                               int64_t count, unsigned char v, const char *name)
{
    for (int64_t k = 0; k < count; k++) {
        if (list[k] < 0 || list[k] >= n_items)
            return gpuals_fail(GPUALS_ERR_USAGE, "recommend: %s[%lld] = %lld is not an item "
                               "index (0..%lld)", name, (long long)k, (long long)list[k],
                               (long long)n_items - 1);
        mask[list[k]] = v;
    }
    return GPUALS_OK;
}

/* A list and its count agree: the count is not negative, and a positive count has a list. */
static gpuals_status check_list(const int64_t *list, int64_t count, const char *name)
{
    if (count < 0)
        return gpuals_fail(GPUALS_ERR_USAGE, "recommend: n_%s is negative (%lld)", name,
                           (long long)count);
    if (count > 0 && !list)
        return gpuals_fail(GPUALS_ERR_USAGE, "recommend: n_%s is %lld but %s is NULL", name,
                           (long long)count, name);
    return GPUALS_OK;
}

/* query.h: the per-item "may be returned" mask of o's allow and deny lists. */
gpuals_status query_allowed_mask(int64_t n_items, const gpuals_rec_options *o,
                                 unsigned char **out)
{
    *out = NULL;
    GPUALS_TRY(check_list(o->allow, o->n_allow, "allow"));
    GPUALS_TRY(check_list(o->deny, o->n_deny, "deny"));
    if (!o->allow && !o->deny) return GPUALS_OK;
    unsigned char *mask = malloc(n_items ? (size_t)n_items : 1);
    if (!mask) return gpuals_fail(GPUALS_ERR_NOMEM, "recommend: out of memory for a mask");
    memset(mask, o->allow ? 0 : 1, (size_t)n_items);
    gpuals_status s = GPUALS_OK;
    if (o->allow) s = mark_list(mask, n_items, o->allow, o->n_allow, 1, "allow");
    if (s == GPUALS_OK && o->deny) s = mark_list(mask, n_items, o->deny, o->n_deny, 0, "deny");
    if (s != GPUALS_OK) {
        free(mask);
        return s;
    }
    *out = mask;
    return GPUALS_OK;
}

/* Top-n items for the vector x, leaving out row ex_row of ex when o->filter_liked. */
static gpuals_status recommend_core(const gpuals_model *m, const float *x, const csr *ex,
                                    int64_t ex_row, int n, const gpuals_rec_options *o,
                                    gpuals_hit *hits, int *n_out)
{
    gpuals_rec_options defaults;
    if (!o) {
        gpuals_rec_options_default(&defaults);
        o = &defaults;
    }
    unsigned char *allowed = NULL;
    GPUALS_TRY(query_allowed_mask(m->n_items, o, &allowed));
    topn_filter flt;
    memset(&flt, 0, sizeof flt);
    if (o->filter_liked && ex) {
        flt.exclude = ex;
        flt.exclude_row = &ex_row;
    }
    flt.allowed = allowed;
    gpuals_status s = topn_one(x, m->Y, m->n_items, m->factors, &flt, n, hits, n_out);
    free(allowed);
    return s;
}

/* Check the common arguments of the ranked queries. */
static gpuals_status check_ranked_args(int n, const gpuals_hit *hits, int *n_out,
                                       const char *fn)
{
    if (!n_out) return gpuals_fail(GPUALS_ERR_USAGE, "%s: NULL n_out", fn);
    *n_out = 0;
    if (n < 0) return gpuals_fail(GPUALS_ERR_USAGE, "%s: n = %d is negative", fn, n);
    if (n > 0 && !hits) return gpuals_fail(GPUALS_ERR_USAGE, "%s: NULL hits", fn);
    return GPUALS_OK;
}

/* How many of the confidences c[0..n) are positive. */
static int64_t count_positive(const float *c, int64_t n)
{
    int64_t pos = 0;
    for (int64_t k = 0; k < n; k++) pos += c[k] > 0.0f;
    return pos;
}

/* query.h: whether user u of m has a ranking that is not all ties (see the top of the file). */
gpuals_status query_user_rankable(const gpuals_model *m, int64_t u)
{
    const char *id = gpuals_model_user_id(m, u);
    int64_t n = csr_row_len(&m->conf, u);
    if (n == 0)
        return gpuals_fail(GPUALS_ERR_EMPTY, "user %s has no interactions in the training "
                           "data; its recommendations would be ties", id);
    if (count_positive(m->conf.data + m->conf.indptr[u], n) == 0)
        return gpuals_fail(GPUALS_ERR_EMPTY, "user %s has %lld interaction%s in the training "
                           "data but none with a positive confidence (only disliked items), so "
                           "its exact factor vector is zero; its recommendations would be ties",
                           id, (long long)n, n == 1 ? "" : "s");
    if (all_zero(m->X + (size_t)u * (size_t)m->factors, m->factors))
        return gpuals_fail(GPUALS_ERR_EMPTY, "user %s has a factor vector of zeros; its "
                           "recommendations would be ties", id);
    return GPUALS_OK;
}

gpuals_status gpuals_recommend(const gpuals_model *m, int64_t u, int n,
                               const gpuals_rec_options *o, gpuals_hit *hits, int *n_out)
{
    GPUALS_TRY(check_ranked_args(n, hits, n_out, "gpuals_recommend"));
    GPUALS_TRY(check_model(m, "gpuals_recommend"));
    GPUALS_TRY(check_index(u, m->n_users, "gpuals_recommend", "user"));
    GPUALS_TRY(query_user_rankable(m, u));
    const float *x = m->X + (size_t)u * (size_t)m->factors;
    return recommend_core(m, x, &m->conf, u, n, o, hits, n_out);
}

/* query_recommend_vector, its messages naming fn. */
static gpuals_status recommend_vector(const gpuals_model *m, const float *x, const csr *liked,
                                      int n, const gpuals_rec_options *o, gpuals_hit *hits,
                                      int *n_out, const char *fn)
{
    GPUALS_TRY(check_ranked_args(n, hits, n_out, fn));
    GPUALS_TRY(check_model(m, fn));
    GPUALS_TRY(check_liked(m, liked, fn));
    if (!x) return gpuals_fail(GPUALS_ERR_USAGE, "%s: NULL vector", fn);
    if (liked && count_positive(liked->data, csr_row_len(liked, 0)) == 0)
        return gpuals_fail(GPUALS_ERR_EMPTY, "the user has no interaction with a positive "
                           "confidence (only disliked items), so its exact factor vector is "
                           "zero; its recommendations would be ties");
    if (all_zero(x, m->factors))
        return gpuals_fail(GPUALS_ERR_EMPTY, "the user's factor vector is all zeros; its "
                           "recommendations would be ties");
    return recommend_core(m, x, liked, liked ? 0 : -1, n, o, hits, n_out);
}

gpuals_status query_recommend_vector(const gpuals_model *m, const float *x, const csr *liked,
                                     int n, const gpuals_rec_options *o, gpuals_hit *hits,
                                     int *n_out)
{
    return recommend_vector(m, x, liked, n, o, hits, n_out, "query_recommend_vector");
}

/* ------------------------------------------------------------------------------------------ */
/* Similar items and users                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* 1 for each user (items 0) or item (items 1) of m without an interaction of positive
 * confidence in the training data: its exact factors are zero, and what the solver left in them
 * is rounding, whose direction means nothing. NULL when out of memory. */
static unsigned char *cold_rows(const gpuals_model *m, int items)
{
    int64_t n = items ? m->n_items : m->n_users;
    unsigned char *cold = malloc(n > 0 ? (size_t)n : 1);
    if (!cold) return NULL;
    memset(cold, 1, (size_t)n);
    const csr *c = &m->conf;
    for (int64_t u = 0; u < c->rows; u++)
        for (int64_t j = c->indptr[u]; j < c->indptr[u + 1]; j++)
            if (c->data[j] > 0) cold[items ? (int64_t)c->indices[j] : u] = 0;
    return cold;
}

/* Top-n users (items 0) or items (items 1) of m by cosine similarity to q. Rows without a
 * positive interaction are like nothing: never returned, and refused as the query. */
static gpuals_status similar_core(const gpuals_model *m, int items, int64_t q, int n,
                                  int include_self, gpuals_hit *hits, int *n_out)
{
    const float *F = items ? m->Y : m->X;
    const int64_t rows = items ? m->n_items : m->n_users;
    const int f = m->factors;
    const char *what = items ? "item" : "user";
    const char *id = items ? gpuals_model_item_id(m, q) : gpuals_model_user_id(m, q);

    /* The query must have a direction. */
    unsigned char *allowed = cold_rows(m, items);
    float *inv = malloc(rows ? (size_t)rows * sizeof *inv : 1);
    gpuals_status s = GPUALS_OK;
    if (!inv || !allowed)
        s = gpuals_fail(GPUALS_ERR_NOMEM, "similar: out of memory for %lld norms",
                        (long long)rows);
    else if (allowed[q])
        s = gpuals_fail(GPUALS_ERR_EMPTY, "%s %s has no interaction with a positive confidence "
                        "in the training data, so its exact factor vector is zero: it is like "
                        "nothing", what, id);
    else if (all_zero(F + (size_t)q * (size_t)f, f))
        s = gpuals_fail(GPUALS_ERR_EMPTY, "%s %s has a factor vector of zeros: it is like "
                        "nothing", what, id);

    /* The others by cosine, those without a direction left out. */
    if (s == GPUALS_OK) {
        for (int64_t r = 0; r < rows; r++) allowed[r] = !allowed[r];
        row_inv_norms(F, rows, f, inv);
        int64_t self = include_self ? -1 : q;
        topn_filter flt;
        memset(&flt, 0, sizeof flt);
        flt.col_scale = inv;
        flt.query_scale = &inv[q];
        flt.self = &self;
        flt.allowed = allowed;
        s = topn_one(F + (size_t)q * (size_t)f, F, rows, f, &flt, n, hits, n_out);
    }
    free(inv);
    free(allowed);
    return s;
}

gpuals_status gpuals_similar_items(const gpuals_model *m, int64_t i, int n, int include_self,
                                   gpuals_hit *hits, int *n_out)
{
    GPUALS_TRY(check_ranked_args(n, hits, n_out, "gpuals_similar_items"));
    GPUALS_TRY(check_model(m, "gpuals_similar_items"));
    GPUALS_TRY(check_index(i, m->n_items, "gpuals_similar_items", "item"));
    return similar_core(m, 1, i, n, include_self, hits, n_out);
}

gpuals_status gpuals_similar_users(const gpuals_model *m, int64_t u, int n, int include_self,
                                   gpuals_hit *hits, int *n_out)
{
    GPUALS_TRY(check_ranked_args(n, hits, n_out, "gpuals_similar_users"));
    GPUALS_TRY(check_model(m, "gpuals_similar_users"));
    GPUALS_TRY(check_index(u, m->n_users, "gpuals_similar_users", "user"));
    return similar_core(m, 0, u, n, include_self, hits, n_out);
}

/* ------------------------------------------------------------------------------------------ */
/* Explain                                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    double value;
    int64_t index;
} contribution;

/* qsort order: larger contribution first, then lower item index. */
static int contribution_order(const void *pa, const void *pb)
{
    const contribution *a = pa, *b = pb;
    if (a->value != b->value) return a->value > b->value ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* W_u = YtY + lambda_u I + sum_j (|c_j| - 1) y_j y_j^T (lower triangle, row-major f x f),
 * then its Cholesky factor in place. yd is f doubles of scratch. */
static gpuals_status factor_w(const gpuals_model *m, const int32_t *liked, const float *conf,
                              int64_t n_liked, double *W, double *yd)
{
    /* The Gram matrix and the ridge. */
    int f = m->factors;
    als_gram(m->Y, m->n_items, f, W);
    double lambda = row_lambda(&m->params, n_liked);
    for (int d = 0; d < f; d++) W[(size_t)d * f + d] += lambda;

    /* One rank-1 update per liked item. */
    for (int64_t k = 0; k < n_liked; k++) {
        const float *y = m->Y + (size_t)liked[k] * (size_t)f;
        for (int d = 0; d < f; d++) yd[d] = y[d];
        double w = fabs((double)conf[k]) - 1.0;
        if (w != 0.0) cblas_dsyr(CblasRowMajor, CblasLower, f, w, yd, 1, W, f);
    }

    /* Cholesky. */
    lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', f, W, f);
    if (info != 0)
        return gpuals_fail(GPUALS_ERR_NUMERIC, "explain: W_u is not positive definite "
                           "(LAPACKE_dpotrf info %d); the regularisation may be too small",
                           (int)info);
    return GPUALS_OK;
}

/* The explanation of item i for the vector x whose liked items and confidences are given. The
 * outputs are written only on success. */
static gpuals_status explain_core(const gpuals_model *m, const float *x, const int32_t *liked,
                                  const float *conf, int64_t n_liked, int64_t i, int n,
                                  double *total, double *model_score, gpuals_hit *hits,
                                  int *n_out)
{
    /* The model's own score; no liked items explain nothing. */
    int f = m->factors;
    const float *yi = m->Y + (size_t)i * (size_t)f;
    double score = dot_double(x, yi, f);
    if (n_liked == 0) {
        *model_score = score;
        *total = 0.0;
        *n_out = 0;
        return GPUALS_OK;
    }

    /* Scratch: W (f x f), v and y_j as doubles, the contributions. */
    double *W = malloc((size_t)f * (size_t)f * sizeof *W);
    double *v = malloc((size_t)f * sizeof *v);
    double *yd = malloc((size_t)f * sizeof *yd);
    contribution *parts = malloc((size_t)n_liked * sizeof *parts);
    gpuals_status s = GPUALS_OK;
    if (!W || !v || !yd || !parts)
        s = gpuals_fail(GPUALS_ERR_NOMEM, "explain: out of memory (%d factors, %lld items)", f,
                        (long long)n_liked);

    /* Factor W_u and solve W_u v = y_i. */
    if (s == GPUALS_OK) s = factor_w(m, liked, conf, n_liked, W, yd);
    if (s == GPUALS_OK) {
        for (int d = 0; d < f; d++) v[d] = yi[d];
        lapack_int info = LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', f, 1, W, f, v, 1);
        if (info != 0)
            s = gpuals_fail(GPUALS_ERR_NUMERIC, "explain: LAPACKE_dpotrs info %d", (int)info);
    }

    /* Contributions c_j (v . y_j) of the positive confidences, their total, and the largest
     * n of them. */
    if (s == GPUALS_OK) {
        double sum = 0.0;
        int64_t n_parts = 0;
        for (int64_t k = 0; k < n_liked; k++) {
            if (!(conf[k] > 0.0f)) continue;
            const float *y = m->Y + (size_t)liked[k] * (size_t)f;
            double dv = 0.0;
            for (int d = 0; d < f; d++) dv += v[d] * y[d];
            parts[n_parts].value = (double)conf[k] * dv;
            parts[n_parts].index = liked[k];
            sum += parts[n_parts++].value;
        }
        qsort(parts, (size_t)n_parts, sizeof *parts, contribution_order);
        int keep = (int64_t)n < n_parts ? n : (int)n_parts;
        for (int k = 0; k < keep; k++) {
            hits[k].index = parts[k].index;
            hits[k].score = (float)parts[k].value;
        }
        *model_score = score;
        *total = sum;
        *n_out = keep;
    }

    free(W);
    free(v);
    free(yd);
    free(parts);
    return s;
}

gpuals_status gpuals_explain(const gpuals_model *m, int64_t u, int64_t i, int n,
                             double *total, double *model_score, gpuals_hit *hits, int *n_out)
{
    GPUALS_TRY(check_ranked_args(n, hits, n_out, "gpuals_explain"));
    GPUALS_TRY(check_model(m, "gpuals_explain"));
    if (!total || !model_score)
        return gpuals_fail(GPUALS_ERR_USAGE, "gpuals_explain: NULL total or model_score");
    GPUALS_TRY(check_index(u, m->n_users, "gpuals_explain", "user"));
    GPUALS_TRY(check_index(i, m->n_items, "gpuals_explain", "item"));
    int64_t start = m->conf.indptr[u];
    return explain_core(m, m->X + (size_t)u * (size_t)m->factors, m->conf.indices + start,
                        m->conf.data + start, csr_row_len(&m->conf, u), i, n, total,
                        model_score, hits, n_out);
}

/* query_explain_vector, its messages naming fn. */
static gpuals_status explain_vector(const gpuals_model *m, const float *x, const csr *liked,
                                    int64_t i, int n, double *total, double *model_score,
                                    gpuals_hit *hits, int *n_out, const char *fn)
{
    GPUALS_TRY(check_ranked_args(n, hits, n_out, fn));
    GPUALS_TRY(check_model(m, fn));
    if (!x || !liked || !total || !model_score)
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: NULL argument", fn);
    GPUALS_TRY(check_liked(m, liked, fn));
    GPUALS_TRY(check_index(i, m->n_items, fn, "item"));
    return explain_core(m, x, liked->indices, liked->data, csr_row_len(liked, 0), i, n, total,
                        model_score, hits, n_out);
}

gpuals_status query_explain_vector(const gpuals_model *m, const float *x, const csr *liked,
                                   int64_t i, int n, double *total, double *model_score,
                                   gpuals_hit *hits, int *n_out)
{
    return explain_vector(m, x, liked, i, n, total, model_score, hits, n_out,
                          "query_explain_vector");
}

/* ------------------------------------------------------------------------------------------ */
/* Fold-in                                                                                    */
/* ------------------------------------------------------------------------------------------ */

gpuals_status query_user_confidences(const gpuals_model *m, const int64_t *items,
                                     const float *values, int64_t n, csr *out)
{
    /* Check the arguments, and every value as a reader checks a rating. */
    GPUALS_TRY(check_model(m, "fold-in"));
    if (!out) return gpuals_fail(GPUALS_ERR_USAGE, "fold-in: NULL output");
    memset(out, 0, sizeof *out);
    if (n < 0)
        return gpuals_fail(GPUALS_ERR_USAGE, "fold-in: n is negative (%lld)", (long long)n);
    if (n > 0 && !items)
        return gpuals_fail(GPUALS_ERR_USAGE, "fold-in: items is NULL (n = %lld)", (long long)n);
    if (n > 0 && !values)
        return gpuals_fail(GPUALS_ERR_USAGE, "fold-in: values is NULL (n = %lld)",
                           (long long)n);
    for (int64_t k = 0; k < n; k++) {
        if (items[k] < 0 || items[k] >= m->n_items)
            return gpuals_fail(GPUALS_ERR_USAGE, "fold-in: liked item %lld: index %lld out of "
                               "range (0..%lld)", (long long)k, (long long)items[k],
                               (long long)m->n_items - 1);
        if (!isfinite(values[k]))
            return gpuals_fail(GPUALS_ERR_USAGE, "fold-in: liked item %lld: value is not "
                               "finite", (long long)k);
        if (fabs(values[k]) > READER_MAX_VALUE)
            return gpuals_fail(GPUALS_ERR_USAGE, "fold-in: liked item %lld: the value %g is of "
                               "magnitude above " READER_MAX_VALUE_TEXT " (the loader's bound)",
                               (long long)k, (double)values[k]);
    }

    /* Triplets of the non-zero values (one row), as the readers keep them. */
    size_t cap = n ? (size_t)n : 1;
    int32_t *row = calloc(cap, sizeof *row);
    int32_t *col = malloc(cap * sizeof *col);
    float *val = malloc(cap * sizeof *val);
    if (!row || !col || !val) {
        free(row);
        free(col);
        free(val);
        return gpuals_fail(GPUALS_ERR_NOMEM, "fold-in: out of memory");
    }
    /* The threshold is met at the float precision the values come in: 0.7f (just below 0.7)
     * passes a min_rating of 0.7, as the line "0.7" does in a file. */
    double min_rating = m->summary.min_rating;
    const float min_f = (float)min_rating;
    int64_t kept = 0, filtered = 0;
    for (int64_t k = 0; k < n; k++) {
        if (!((double)values[k] >= min_rating || values[k] >= min_f)) {
            filtered++;
            continue;
        }
        if (values[k] == 0.0f) continue;
        col[kept] = (int32_t)items[k];
        val[kept++] = values[k];
    }

    /* Sum repeats into a CSR row, then apply the model's confidence transform. */
    csr raw;
    memset(&raw, 0, sizeof raw);
    gpuals_status s = GPUALS_OK;
    if (kept == 0 && filtered > 0)
        s = gpuals_fail(GPUALS_ERR_EMPTY, "fold-in: no liked item with a non-zero value at or "
                        "above the model's min_rating %g (%lld below it dropped)", min_rating,
                        (long long)filtered);
    else if (kept == 0)
        s = gpuals_fail(GPUALS_ERR_EMPTY, "fold-in: no liked item with a non-zero value");
    if (s == GPUALS_OK) s = csr_from_triplets(1, m->n_items, kept, row, col, val, &raw, NULL);
    if (s == GPUALS_OK) s = dataset_confidence(&raw, &m->params, out);
    csr_free(&raw);
    free(row);
    free(col);
    free(val);
    return s;
}

/* The factors of a new user with confidences conf (1 x n_items) into x (f floats), solved
 * exactly against the model's item factors. A singular system (possible with reg 0, or with
 * confidences below 1) and running out of memory are reported in the terms of a fold-in. */
static gpuals_status fold_in_solve(const gpuals_model *m, const csr *conf, float *x)
{
    gpuals_status s = als_solve_row_exact(m->Y, m->n_items, m->factors, NULL,
                                          row_lambda(&m->params, conf->nnz), conf->indices,
                                          conf->data, conf->nnz, x);
    if (s == GPUALS_ERR_NUMERIC)
        return gpuals_fail(s, "fold-in: the new user's system is singular (a Cholesky pivot is "
                           "not positive); a model trained with a larger reg (--reg) avoids it "
                           "(this model's reg is %g)", m->params.reg);
    if (s == GPUALS_ERR_NOMEM)
        return gpuals_fail(s, "fold-in: out of memory solving for %d factors", m->factors);
    return s;
}

/* A folded-in new user: their confidences into *conf and their factors into *x (malloc'ed,
 * f floats); both the caller's to free, and left empty on failure. */
static gpuals_status new_user(const gpuals_model *m, const int64_t *items, const float *values,
                              int64_t n, csr *conf, float **x)
{
    *x = NULL;
    GPUALS_TRY(query_user_confidences(m, items, values, n, conf));
    float *v = malloc((size_t)m->factors * sizeof *v);
    gpuals_status s = v ? fold_in_solve(m, conf, v)
                        : gpuals_fail(GPUALS_ERR_NOMEM, "fold-in: out of memory");
    if (s != GPUALS_OK) {
        free(v);
        csr_free(conf);
        return s;
    }
    *x = v;
    return GPUALS_OK;
}

/* The factors are solved into a scratch vector and copied out only on success, so a failed call
 * leaves factors_out as it was. */
gpuals_status gpuals_fold_in(const gpuals_model *m, const int64_t *items, const float *values,
                             int64_t n, float *factors_out)
{
    GPUALS_TRY(check_model(m, "gpuals_fold_in"));
    if (!factors_out)
        return gpuals_fail(GPUALS_ERR_USAGE, "gpuals_fold_in: factors_out is NULL");
    csr conf;
    float *x;
    GPUALS_TRY(new_user(m, items, values, n, &conf, &x));
    memcpy(factors_out, x, (size_t)m->factors * sizeof *x);
    free(x);
    csr_free(&conf);
    return GPUALS_OK;
}

gpuals_status gpuals_recommend_new_user(const gpuals_model *m, const int64_t *items,
                                        const float *values, int64_t n_liked, int n,
                                        const gpuals_rec_options *o, gpuals_hit *hits,
                                        int *n_out)
{
    static const char fn[] = "gpuals_recommend_new_user";
    GPUALS_TRY(check_ranked_args(n, hits, n_out, fn));
    GPUALS_TRY(check_model(m, fn));
    csr conf;
    float *x;
    GPUALS_TRY(new_user(m, items, values, n_liked, &conf, &x));
    gpuals_status s = recommend_vector(m, x, &conf, n, o, hits, n_out, fn);
    free(x);
    csr_free(&conf);
    return s;
}

gpuals_status gpuals_explain_new_user(const gpuals_model *m, const int64_t *items,
                                      const float *values, int64_t n_liked, int64_t i, int n,
                                      double *total, double *model_score, gpuals_hit *hits,
                                      int *n_out)
{
    static const char fn[] = "gpuals_explain_new_user";
    GPUALS_TRY(check_ranked_args(n, hits, n_out, fn));
    GPUALS_TRY(check_model(m, fn));
    if (!total || !model_score)
        return gpuals_fail(GPUALS_ERR_USAGE, "%s: NULL total or model_score", fn);
    GPUALS_TRY(check_index(i, m->n_items, fn, "item"));
    csr conf;
    float *x;
    GPUALS_TRY(new_user(m, items, values, n_liked, &conf, &x));
    gpuals_status s = explain_vector(m, x, &conf, i, n, total, model_score, hits, n_out, fn);
    free(x);
    csr_free(&conf);
    return s;
}
