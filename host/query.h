/*
 * query.h - batched top-N selection, shared by recommend, similar and evaluation.
 *
 * Scores of a batch of query vectors against all candidates are one BLAS matrix product
 * (queries x f times f x candidates); each row then keeps its best n with a partial selection
 * (a bounded heap), never a full sort.
 */
#ifndef GPUALS_QUERY_H
#define GPUALS_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "csr.h"
#include "gpuals.h"

typedef struct {
    const csr *exclude;          /* NULL, or rows whose columns are left out (liked items) */
    const int64_t *exclude_row;  /* for query q, the row of exclude to apply (-1: none);
                                    NULL: query q uses row q */
    const float *col_scale;      /* NULL, or a per-candidate multiplier (1/|y| for cosine) */
    const float *query_scale;    /* NULL, or a per-query multiplier (1/|q| for cosine) */
    const int64_t *self;         /* NULL, or for query q a candidate to leave out (-1: none) */
    const unsigned char *allowed;/* NULL, or per candidate 1 = may be returned */
} topn_filter;

/* For each of the nq rows of Q (nq x f), the best n of the n_cand rows of C (n_cand x f) by
 * dot product (times the scales), best first, ties broken by lower index. Results go to
 * idx[q*n + k] and score[q*n + k] for k < n_out[q]; n_out[q] < n when fewer candidates remain.
 * Uses OpenMP over queries with single-threaded BLAS inside. */
gpuals_status topn_batch(const float *Q, int64_t nq, const float *C, int64_t n_cand, int f,
                         const topn_filter *flt, int n, int64_t *idx, float *score,
                         int *n_out);

/* topn_batch on a device: GPU uses cuda_topn (GPUALS_ERR_NO_DEVICE when none is usable, and
 * its errors, GPUALS_ERR_NOMEM included, as they are), AUTO the GPU when one is usable and the
 * CPU otherwise, and the CPU also when the GPU reports too little memory; CPU topn_batch. On
 * success *used (may be NULL) receives the device that produced the answers and note (may be
 * NULL) says which and why, e.g. "ranking on GPU 0: NVIDIA H200 (...)"; a CPU run after a GPU
 * short of memory begins with GPUALS_NOTE_GPU_TOO_SMALL. On failure *used is left as it was. */
gpuals_status topn_batch_on(gpuals_device dev, const float *Q, int64_t nq, const float *C,
                            int64_t n_cand, int f, const topn_filter *flt, int n, int64_t *idx,
                            float *score, int *n_out, gpuals_device *used, char *note,
                            size_t note_len);

/* The per-item "may be returned" mask (n_items bytes, 1 = may) of o's allow and deny lists,
 * for topn_filter.allowed; *out is NULL when o has neither (every item may be returned) and is
 * the caller's to free. GPUALS_ERR_USAGE for an index outside 0..n_items-1. */
gpuals_status query_allowed_mask(int64_t n_items, const gpuals_rec_options *o,
                                 unsigned char **out);

/* Euclidean norms of the rows of F (rows x f) as reciprocals, 0 for a zero row (so a zero
 * vector has similarity 0 with everything). */
void row_inv_norms(const float *F, int64_t rows, int f, float *out);

/* Queries for a user given as a factor vector rather than a row of the model (a folded-in user:
 * the CLI's --like on a saved model). `liked` is a 1 x n_items CSR of that user's confidences
 * (row 0), as query_user_confidences builds it. */

/* The liked items of a new user as the training matrix would hold them: values below the
 * min_rating the training data was loaded with (m->summary.min_rating) dropped, then explicit
 * zeros, values of repeated items summed, then the model's confidence transform applied
 * (dataset_confidence). items are dense item indices. *out (1 x n_items) is owned by the caller
 * (csr_free). GPUALS_ERR_USAGE for an index out of range or a value that is not finite or of
 * magnitude above READER_MAX_VALUE (naming its position), GPUALS_ERR_EMPTY when no value
 * remains. */
gpuals_status query_user_confidences(const gpuals_model *m, const int64_t *items,
                                     const float *values, int64_t n, csr *out);

/* GPUALS_OK when user u (a valid index) of m has a ranking that is not all ties; else
 * GPUALS_ERR_EMPTY saying why: no interactions, none with a positive confidence (the exact
 * factors are zero, whatever the solver left), or a factor vector of zeros. gpuals_recommend
 * asks this of its user; batches of users can ask it of each. */
gpuals_status query_user_rankable(const gpuals_model *m, int64_t u);

/* gpuals_recommend for the vector x (f floats), leaving out liked's items when
 * o->filter_liked. GPUALS_ERR_EMPTY when liked (if given) has no positive confidence or x is
 * all zeros (its ranking would be ties). */
gpuals_status query_recommend_vector(const gpuals_model *m, const float *x, const csr *liked,
                                     int n, const gpuals_rec_options *o, gpuals_hit *hits,
                                     int *n_out);

/* gpuals_explain for the vector x with confidences liked: W = YtY + lambda_u I +
 * sum_j (|c_j| - 1) y_j y_j^T, contributions c_j y_i^T W^-1 y_j for c_j > 0, *model_score =
 * x . y_i. */
gpuals_status query_explain_vector(const gpuals_model *m, const float *x, const csr *liked,
                                   int64_t i, int n, double *total, double *model_score,
                                   gpuals_hit *hits, int *n_out);

#endif /* GPUALS_QUERY_H */
