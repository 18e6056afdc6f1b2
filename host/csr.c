/*
 * csr.c - building, transposing, copying and checking CSR matrices.
 *
 * Building from triplets is two stable counting sorts (a radix sort on (row, col) with the column
 * as the low digit), which gives sorted columns in every row in O(n + rows + cols) with no
 * comparison sort:
 *   1. bucket the triplets by column (tmp_row, tmp_val in column order);
 *   2. walk the columns in ascending order and append each entry to its row's slice, so every
 *      row receives its columns already sorted and equal (row, col) pairs side by side;
 *   3. one pass sums neighbours with the same column (the duplicates), in file order, and
 *      compacts the arrays in place.
 * The transpose is step 2 alone, run over the rows of a CSR. Peak memory of a build is the
 * triplets (12 B each) + the column-ordered copy (8 B) + the output (8 B); the consuming
 * variant frees the triplets after step 1, which caps it at 20 B per triplet.
 */
#include "csr.h"

#include <stdlib.h>
#include <string.h>

#include "status.h"

/* malloc that never returns NULL for a zero size (so NULL always means out of memory). */
static void *alloc_bytes(size_t n) { return malloc(n ? n : 1); }

/* Check the shape and every triplet against it; n may be 0 with NULL arrays. */
static gpuals_status check_triplets(int64_t rows, int64_t cols, int64_t n, const int32_t *row,
                                    const int32_t *col, const float *val)
{
    if (rows < 0 || cols < 0 || n < 0)
        return gpuals_fail(GPUALS_ERR_USAGE,
                           "csr_from_triplets: negative size (rows %lld, cols %lld, n %lld)",
                           (long long)rows, (long long)cols, (long long)n);
    if (cols > (int64_t)INT32_MAX + 1)
        return gpuals_fail(GPUALS_ERR_USAGE,
                           "csr_from_triplets: %lld columns do not fit 32-bit column indices",
                           (long long)cols);
    if (n > 0 && (!row || !col || !val))
        return gpuals_fail(GPUALS_ERR_USAGE, "csr_from_triplets: NULL triplet array");
    for (int64_t k = 0; k < n; k++) {
        if (row[k] < 0 || row[k] >= rows)
            return gpuals_fail(GPUALS_ERR_USAGE,
                               "csr_from_triplets: triplet %lld has row %d, outside [0, %lld)",
                               (long long)k, row[k], (long long)rows);
        if (col[k] < 0 || col[k] >= cols)
            return gpuals_fail(GPUALS_ERR_USAGE,
                               "csr_from_triplets: triplet %lld has column %d, outside [0, %lld)",
                               (long long)k, col[k], (long long)cols);
    }
    return GPUALS_OK;
}

/* Turn counts[0..n) into exclusive starts, with counts[n] = total. */
static void counts_to_starts(int64_t *counts, int64_t n)
{
    int64_t sum = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t c = counts[i];
        counts[i] = sum;
        sum += c;
    }
    counts[n] = sum;
}

/* Shared body of both builders; frees the triplets right after step 1 when consume is set
 * (and on every failure path), never otherwise. */
static gpuals_status build(int64_t rows, int64_t cols, int64_t n, int32_t *row, int32_t *col,
                           float *val, int consume, csr *out, int64_t *duplicates)
{
    gpuals_status st = GPUALS_OK;
    int64_t *colptr = NULL;
    int32_t *tmp_row = NULL;
    float *tmp_val = NULL;
    csr m = {0};

    /* Check the input. */
    st = check_triplets(rows, cols, n, row, col, val);
    if (st != GPUALS_OK) goto done;

    /* Step 1: bucket by column (stable, so file order survives within a column). */
    colptr = calloc((size_t)cols + 1, sizeof *colptr);
    tmp_row = alloc_bytes((size_t)n * sizeof *tmp_row);
    tmp_val = alloc_bytes((size_t)n * sizeof *tmp_val);
    if (!colptr || !tmp_row || !tmp_val) {
        st = gpuals_fail(GPUALS_ERR_NOMEM, "csr_from_triplets: out of memory for %lld triplets",
                         (long long)n);
        goto done;
    }
    for (int64_t k = 0; k < n; k++) colptr[col[k]]++;
    counts_to_starts(colptr, cols);
    for (int64_t k = 0; k < n; k++) {
        int64_t p = colptr[col[k]]++;
        tmp_row[p] = row[k];
        tmp_val[p] = val[k];
    }
    memmove(colptr + 1, colptr, (size_t)cols * sizeof *colptr); /* back to starts */
    colptr[0] = 0;
    if (consume) {
        free(row);
        free(col);
        free(val);
        row = NULL;
        col = NULL;
        val = NULL;
    }

    /* Step 2: append each column's entries to their rows, columns ascending. */
    m.rows = rows;
    m.cols = cols;
    m.indptr = calloc((size_t)rows + 1, sizeof *m.indptr);
    m.indices = alloc_bytes((size_t)n * sizeof *m.indices);
    m.data = alloc_bytes((size_t)n * sizeof *m.data);
    if (!m.indptr || !m.indices || !m.data) {
        st = gpuals_fail(GPUALS_ERR_NOMEM, "csr_from_triplets: out of memory for %lld x %lld "
                         "with %lld entries", (long long)rows, (long long)cols, (long long)n);
        goto done;
    }
    for (int64_t p = 0; p < n; p++) m.indptr[tmp_row[p]]++;
    counts_to_starts(m.indptr, rows);
    for (int64_t c = 0; c < cols; c++) {
        for (int64_t p = colptr[c]; p < colptr[c + 1]; p++) {
            int64_t q = m.indptr[tmp_row[p]]++;
            m.indices[q] = (int32_t)c;
            m.data[q] = tmp_val[p];
        }
    }
    memmove(m.indptr + 1, m.indptr, (size_t)rows * sizeof *m.indptr);
    m.indptr[0] = 0;
    free(colptr);
    free(tmp_row);
    free(tmp_val);
    colptr = NULL;
    tmp_row = NULL;
    tmp_val = NULL;

    /* Step 3: sum equal neighbours and compact. */
    int64_t w = 0, merged = 0;
    for (int64_t r = 0; r < rows; r++) {
        int64_t begin = m.indptr[r], end = m.indptr[r + 1], row_start = w;
        m.indptr[r] = row_start;
        for (int64_t q = begin; q < end; q++) {
            if (w > row_start && m.indices[w - 1] == m.indices[q]) {
                m.data[w - 1] += m.data[q];
                merged++;
            } else {
                m.indices[w] = m.indices[q];
                m.data[w] = m.data[q];
                w++;
            }
        }
    }
    m.indptr[rows] = w;
    m.nnz = w;
    if (merged > 0) { /* shrinking never fails in practice; keep the larger block if it does */
        int32_t *ind = realloc(m.indices, (size_t)(w ? w : 1) * sizeof *ind);
        if (ind) m.indices = ind;
        float *dat = realloc(m.data, (size_t)(w ? w : 1) * sizeof *dat);
        if (dat) m.data = dat;
    }
    if (duplicates) *duplicates = merged;

#ifndef NDEBUG
    st = csr_validate(&m);
    if (st != GPUALS_OK) goto done;
#endif
    *out = m;
    m = (csr){0};

done:
    if (consume) {
        free(row);
        free(col);
        free(val);
    }
    free(colptr);
    free(tmp_row);
    free(tmp_val);
    csr_free(&m);
    return st;
}

/* Sorted, summed CSR from triplets; the caller keeps the triplet arrays (see csr.h). */
gpuals_status csr_from_triplets(int64_t rows, int64_t cols, int64_t n, const int32_t *row,
                                const int32_t *col, const float *val, csr *out,
                                int64_t *duplicates)
{
    /* build() only writes through these pointers when consume is set. */
    return build(rows, cols, n, (int32_t *)row, (int32_t *)col, (float *)val, 0, out,
                 duplicates);
}

/* As csr_from_triplets, freeing the triplet arrays early (see csr.h). */
gpuals_status csr_from_triplets_consume(int64_t rows, int64_t cols, int64_t n, int32_t *row,
                                        int32_t *col, float *val, csr *out,
                                        int64_t *duplicates)
{
    return build(rows, cols, n, row, col, val, 1, out, duplicates);
}

/* cols x rows transpose by one counting sort on the column (see csr.h). */
gpuals_status csr_transpose(const csr *a, csr *out)
{
    /* The rows of a become 32-bit column indices. */
    if (a->rows > (int64_t)INT32_MAX + 1)
        return gpuals_fail(GPUALS_ERR_USAGE, "csr_transpose: %lld rows do not fit 32-bit "
                           "column indices", (long long)a->rows);
    csr t = {.rows = a->cols, .cols = a->rows, .nnz = a->nnz};
    t.indptr = calloc((size_t)t.rows + 1, sizeof *t.indptr);
    t.indices = alloc_bytes((size_t)a->nnz * sizeof *t.indices);
    t.data = alloc_bytes((size_t)a->nnz * sizeof *t.data);
    if (!t.indptr || !t.indices || !t.data) {
        csr_free(&t);
        return gpuals_fail(GPUALS_ERR_NOMEM, "csr_transpose: out of memory for %lld x %lld "
                           "with %lld entries", (long long)t.rows, (long long)t.cols,
                           (long long)a->nnz);
    }

    /* Count per column, then scatter rows in ascending order (sorted output columns). */
    for (int64_t q = 0; q < a->nnz; q++) t.indptr[a->indices[q]]++;
    counts_to_starts(t.indptr, t.rows);
    for (int64_t r = 0; r < a->rows; r++) {
        for (int64_t q = a->indptr[r]; q < a->indptr[r + 1]; q++) {
            int64_t p = t.indptr[a->indices[q]]++;
            t.indices[p] = (int32_t)r;
            t.data[p] = a->data[q];
        }
    }
    memmove(t.indptr + 1, t.indptr, (size_t)t.rows * sizeof *t.indptr);
    t.indptr[0] = 0;

#ifndef NDEBUG
    gpuals_status st = csr_validate(&t);
    if (st != GPUALS_OK) {
        csr_free(&t);
        return st;
    }
#endif
    *out = t;
    return GPUALS_OK;
}

/* Deep copy of a (see csr.h). */
gpuals_status csr_copy(const csr *a, csr *out)
{
    csr c = {.rows = a->rows, .cols = a->cols, .nnz = a->nnz};
    c.indptr = alloc_bytes(((size_t)a->rows + 1) * sizeof *c.indptr);
    c.indices = alloc_bytes((size_t)a->nnz * sizeof *c.indices);
    c.data = alloc_bytes((size_t)a->nnz * sizeof *c.data);
    if (!c.indptr || !c.indices || !c.data) {
        csr_free(&c);
        return gpuals_fail(GPUALS_ERR_NOMEM, "csr_copy: out of memory for %lld x %lld with "
                           "%lld entries", (long long)a->rows, (long long)a->cols,
                           (long long)a->nnz);
    }
    memcpy(c.indptr, a->indptr, ((size_t)a->rows + 1) * sizeof *c.indptr);
    if (a->nnz > 0) {
        memcpy(c.indices, a->indices, (size_t)a->nnz * sizeof *c.indices);
        memcpy(c.data, a->data, (size_t)a->nnz * sizeof *c.data);
    }
    *out = c;
    return GPUALS_OK;
}

/* Every invariant of csr.h, reporting the first broken one with its row. */
gpuals_status csr_validate(const csr *a)
{
    /* Shape and arrays. */
    if (a->rows < 0 || a->cols < 0 || a->nnz < 0)
        return gpuals_fail(GPUALS_ERR_INTERNAL, "csr: negative shape %lld x %lld, nnz %lld",
                           (long long)a->rows, (long long)a->cols, (long long)a->nnz);
    if (a->cols > (int64_t)INT32_MAX + 1)
        return gpuals_fail(GPUALS_ERR_INTERNAL, "csr: %lld columns exceed 32-bit indices",
                           (long long)a->cols);
    if (!a->indptr)
        return gpuals_fail(GPUALS_ERR_INTERNAL, "csr: indptr is NULL");
    if (a->nnz > 0 && (!a->indices || !a->data))
        return gpuals_fail(GPUALS_ERR_INTERNAL, "csr: %lld entries but NULL indices or data",
                           (long long)a->nnz);
    if (a->indptr[0] != 0)
        return gpuals_fail(GPUALS_ERR_INTERNAL, "csr: indptr[0] is %lld, not 0",
                           (long long)a->indptr[0]);
    if (a->indptr[a->rows] != a->nnz)
        return gpuals_fail(GPUALS_ERR_INTERNAL, "csr: indptr[%lld] is %lld, not nnz %lld",
                           (long long)a->rows, (long long)a->indptr[a->rows],
                           (long long)a->nnz);

    /* Rows: non-decreasing pointers, columns in range and strictly increasing. */
    for (int64_t r = 0; r < a->rows; r++) {
        int64_t begin = a->indptr[r], end = a->indptr[r + 1];
        if (end < begin || end > a->nnz)
            return gpuals_fail(GPUALS_ERR_INTERNAL, "csr: row %lld spans [%lld, %lld) with nnz "
                               "%lld", (long long)r, (long long)begin, (long long)end,
                               (long long)a->nnz);
        for (int64_t q = begin; q < end; q++) {
            int32_t c = a->indices[q];
            if (c < 0 || c >= a->cols)
                return gpuals_fail(GPUALS_ERR_INTERNAL, "csr: row %lld has column %d outside "
                                   "[0, %lld)", (long long)r, c, (long long)a->cols);
            if (q > begin && a->indices[q - 1] >= c)
                return gpuals_fail(GPUALS_ERR_INTERNAL, "csr: row %lld has column %d after %d "
                                   "(columns must be sorted and unique)", (long long)r, c,
                                   a->indices[q - 1]);
        }
    }
    return GPUALS_OK;
}

/* Release the arrays and zero the struct (see csr.h). */
void csr_free(csr *a)
{
    if (!a) return;
    free(a->indptr);
    free(a->indices);
    free(a->data);
    *a = (csr){0};
}
