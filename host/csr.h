/*
 * csr.h - compressed sparse row matrices of interactions.
 *
 * Row pointers are 64-bit (nnz may pass 2^31), column indices 32-bit, values float. Columns
 * are sorted and unique within each row. A csr owns its three arrays; csr_free releases them.
 */
#ifndef GPUALS_CSR_H
#define GPUALS_CSR_H

#include <stdint.h>

#include "gpuals.h"

typedef struct {
    int64_t rows, cols;
    int64_t nnz;
    int64_t *indptr;   /* rows + 1 entries, indptr[0] = 0, indptr[rows] = nnz */
    int32_t *indices;  /* nnz column indices, sorted within a row */
    float *data;       /* nnz values */
} csr;

/* Build a rows x cols CSR from n (row, col, value) triplets in any order. Entries with the same
 * (row, col) are summed; *duplicates (may be NULL) receives how many triplets were merged into
 * an earlier one. Runs in O(n + rows + cols). */
gpuals_status csr_from_triplets(int64_t rows, int64_t cols, int64_t n, const int32_t *row,
                                const int32_t *col, const float *val, csr *out,
                                int64_t *duplicates);

/* The same as csr_from_triplets, but takes ownership of row, col and val (malloc'd, n entries)
 * and frees them as soon as they are consumed, on success and on failure alike. A load then
 * peaks at about 20 bytes per triplet instead of 28 (the readers use this). */
gpuals_status csr_from_triplets_consume(int64_t rows, int64_t cols, int64_t n, int32_t *row,
                                        int32_t *col, float *val, csr *out,
                                        int64_t *duplicates);

/* The transpose (cols x rows), built in O(nnz + rows + cols); its columns come out sorted. */
gpuals_status csr_transpose(const csr *a, csr *out);

/* A deep copy. */
gpuals_status csr_copy(const csr *a, csr *out);

/* Check every invariant above; GPUALS_ERR_INTERNAL with the first broken one. */
gpuals_status csr_validate(const csr *a);

/* Free the arrays and zero the struct; accepts a zeroed struct. */
void csr_free(csr *a);

/* Number of stored entries in row r. */
static inline int64_t csr_row_len(const csr *a, int64_t r)
{
    return a->indptr[r + 1] - a->indptr[r];
}

#endif /* GPUALS_CSR_H */
