/*
 * query.h - batched top-N selection, shared by recommend, similar and evaluation.
 *
 * Scores of a batch of query vectors against all candidates are one BLAS matrix product
 * (queries x f times f x candidates); each row then keeps its best n with a partial selection
 * (a bounded heap), never a full sort.
 */
#ifndef GPUALS_QUERY_H
#define GPUALS_QUERY_H

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

/* Euclidean norms of the rows of F (rows x f) as reciprocals, 0 for a zero row (so a zero
 * vector has similarity 0 with everything). */
void row_inv_norms(const float *F, int64_t rows, int f, float *out);

#endif /* GPUALS_QUERY_H */
