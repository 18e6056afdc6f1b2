/*
 * test_csr.c - the CSR builder, transpose, copy and validator, and the id map.
 *
 * The CSR tests use one hand-made 7 x 6 matrix whose expected arrays are written out entry by
 * entry below, fed as shuffled triplets with two duplicated cells, plus a seeded random matrix
 * checked against a dense sum. The id map tests cover order of first appearance, exact-bytes
 * identity ("7" vs "07"), growth past many table doublings, and stable name pointers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "csr.h"
#include "idmap.h"
#include "status.h"

/* The 7 x 6 matrix (rows 1 and 5 empty):
 *       c0  c1  c2  c3  c4  c5
 *   r0   .   1   .   .   2   .
 *   r1   .   .   .   .   .   .
 *   r2   3   .   4   .   .   5
 *   r3   .   .   .   6   .   .
 *   r4   .   7   8   .   .   .
 *   r5   .   .   .   .   .   .
 *   r6   9   .   .   .   .  10
 * given as 12 shuffled triplets where (2,2) = 1.5 + 2.5 and (6,5) = 4 + 6. */
static const int32_t T_ROW[12] = {6, 2, 0, 4, 2, 3, 6, 2, 0, 4, 6, 2};
static const int32_t T_COL[12] = {5, 2, 4, 2, 0, 3, 0, 5, 1, 1, 5, 2};
static const float T_VAL[12] = {4, 1.5f, 2, 8, 3, 6, 9, 5, 1, 7, 6, 2.5f};

static const int64_t A_INDPTR[8] = {0, 2, 2, 5, 6, 8, 8, 10};
static const int32_t A_INDICES[10] = {1, 4, 0, 2, 5, 3, 1, 2, 0, 5};
static const float A_DATA[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

static const int64_t AT_INDPTR[7] = {0, 2, 4, 6, 7, 8, 10};
static const int32_t AT_INDICES[10] = {2, 6, 0, 4, 2, 4, 3, 0, 2, 6};
static const float AT_DATA[10] = {3, 9, 1, 7, 4, 8, 6, 2, 5, 10};

/* Compare m with the expected arrays, entry by entry. */
static void expect_csr(const csr *m, int64_t rows, int64_t cols, const int64_t *indptr,
                       const int32_t *indices, const float *data)
{
    assert_int_equal(m->rows, rows);
    assert_int_equal(m->cols, cols);
    assert_int_equal(m->nnz, indptr[rows]);
    for (int64_t r = 0; r <= rows; r++) assert_int_equal(m->indptr[r], indptr[r]);
    for (int64_t q = 0; q < indptr[rows]; q++) {
        assert_int_equal(m->indices[q], indices[q]);
        assert_float_equal(m->data[q], data[q], 0.0f);
    }
    assert_int_equal(csr_validate(m), GPUALS_OK);
}

static void test_build_7x6(void **state)
{
    (void)state;
    csr a;
    int64_t dups = -1;
    assert_int_equal(csr_from_triplets(7, 6, 12, T_ROW, T_COL, T_VAL, &a, &dups), GPUALS_OK);
    assert_int_equal(dups, 2);
    expect_csr(&a, 7, 6, A_INDPTR, A_INDICES, A_DATA);
    assert_int_equal(csr_row_len(&a, 1), 0);
    assert_int_equal(csr_row_len(&a, 2), 3);
    csr_free(&a);
    assert_null(a.indptr);
    assert_int_equal(a.nnz, 0);
}

static void test_transpose_7x6(void **state)
{
    (void)state;
    csr a, t, tt;
    assert_int_equal(csr_from_triplets(7, 6, 12, T_ROW, T_COL, T_VAL, &a, NULL), GPUALS_OK);
    assert_int_equal(csr_transpose(&a, &t), GPUALS_OK);
    expect_csr(&t, 6, 7, AT_INDPTR, AT_INDICES, AT_DATA);
    assert_int_equal(csr_transpose(&t, &tt), GPUALS_OK);
    expect_csr(&tt, 7, 6, A_INDPTR, A_INDICES, A_DATA);
    csr_free(&a);
    csr_free(&t);
    csr_free(&tt);
}

static void test_consume_matches(void **state)
{
    (void)state;
    int32_t *row = malloc(sizeof T_ROW), *col = malloc(sizeof T_COL);
    float *val = malloc(sizeof T_VAL);
    assert_non_null(row);
    assert_non_null(col);
    assert_non_null(val);
    memcpy(row, T_ROW, sizeof T_ROW);
    memcpy(col, T_COL, sizeof T_COL);
    memcpy(val, T_VAL, sizeof T_VAL);
    csr a;
    int64_t dups = 0;
    assert_int_equal(csr_from_triplets_consume(7, 6, 12, row, col, val, &a, &dups), GPUALS_OK);
    assert_int_equal(dups, 2);
    expect_csr(&a, 7, 6, A_INDPTR, A_INDICES, A_DATA);
    csr_free(&a);

    /* On failure the arrays are freed too (the sanitizer build would report a leak). */
    row = malloc(sizeof(int32_t));
    col = malloc(sizeof(int32_t));
    val = malloc(sizeof(float));
    row[0] = 9;
    col[0] = 0;
    val[0] = 1;
    assert_int_equal(csr_from_triplets_consume(7, 6, 1, row, col, val, &a, NULL),
                     GPUALS_ERR_USAGE);
}

static void test_copy(void **state)
{
    (void)state;
    csr a, c;
    assert_int_equal(csr_from_triplets(7, 6, 12, T_ROW, T_COL, T_VAL, &a, NULL), GPUALS_OK);
    assert_int_equal(csr_copy(&a, &c), GPUALS_OK);
    assert_ptr_not_equal(c.indices, a.indices);
    csr_free(&a);
    expect_csr(&c, 7, 6, A_INDPTR, A_INDICES, A_DATA);
    csr_free(&c);
}

static void test_empty_and_bad_triplets(void **state)
{
    (void)state;
    csr a, t;
    assert_int_equal(csr_from_triplets(3, 2, 0, NULL, NULL, NULL, &a, NULL), GPUALS_OK);
    assert_int_equal(a.nnz, 0);
    for (int r = 0; r <= 3; r++) assert_int_equal(a.indptr[r], 0);
    assert_int_equal(csr_validate(&a), GPUALS_OK);
    assert_int_equal(csr_transpose(&a, &t), GPUALS_OK);
    assert_int_equal(t.rows, 2);
    assert_int_equal(t.cols, 3);
    assert_int_equal(t.indptr[2], 0);
    csr_free(&a);
    csr_free(&t);

    int32_t row[2] = {0, 1}, col[2] = {0, 6};
    float val[2] = {1, 1};
    assert_int_equal(csr_from_triplets(7, 6, 2, row, col, val, &a, NULL), GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "triplet 1 has column 6"));
    row[0] = -1;
    assert_int_equal(csr_from_triplets(7, 6, 2, row, col, val, &a, NULL), GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "triplet 0 has row -1"));
    assert_int_equal(csr_from_triplets(-1, 6, 0, NULL, NULL, NULL, &a, NULL), GPUALS_ERR_USAGE);
}

/* Break one invariant at a time in a copy of the 7 x 6 matrix. */
static void test_validate_catches(void **state)
{
    (void)state;
    csr a, b;
    assert_int_equal(csr_from_triplets(7, 6, 12, T_ROW, T_COL, T_VAL, &a, NULL), GPUALS_OK);

    assert_int_equal(csr_copy(&a, &b), GPUALS_OK);
    b.indices[3] = 0; /* row 2: 0, 0, 5: not strictly increasing */
    assert_int_equal(csr_validate(&b), GPUALS_ERR_INTERNAL);
    assert_non_null(strstr(gpuals_last_error(), "row 2"));
    csr_free(&b);

    assert_int_equal(csr_copy(&a, &b), GPUALS_OK);
    b.indices[9] = 6; /* column out of range in row 6 */
    assert_int_equal(csr_validate(&b), GPUALS_ERR_INTERNAL);
    assert_non_null(strstr(gpuals_last_error(), "row 6"));
    csr_free(&b);

    assert_int_equal(csr_copy(&a, &b), GPUALS_OK);
    b.indptr[0] = 1;
    assert_int_equal(csr_validate(&b), GPUALS_ERR_INTERNAL);
    csr_free(&b);

    assert_int_equal(csr_copy(&a, &b), GPUALS_OK);
    b.indptr[3] = 1; /* row 2 would span [2, 1) */
    assert_int_equal(csr_validate(&b), GPUALS_ERR_INTERNAL);
    assert_non_null(strstr(gpuals_last_error(), "row 2 spans"));
    csr_free(&b);

    assert_int_equal(csr_copy(&a, &b), GPUALS_OK);
    b.nnz = 9; /* indptr[rows] no longer equals nnz */
    assert_int_equal(csr_validate(&b), GPUALS_ERR_INTERNAL);
    b.nnz = 10;
    csr_free(&b);
    csr_free(&a);
}

/* A seeded random 50 x 40 matrix with many duplicates against a dense sum. */
static void test_random_against_dense(void **state)
{
    (void)state;
    enum { R = 50, C = 40, N = 3000 };
    static int32_t row[N], col[N];
    static float val[N];
    static double dense[R][C];
    memset(dense, 0, sizeof dense);
    uint64_t x = 12345;
    int64_t cells = 0;
    for (int k = 0; k < N; k++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        row[k] = (int32_t)((x >> 33) % R);
        col[k] = (int32_t)((x >> 17) % C);
        val[k] = (float)((x >> 50) % 8 + 1);
        if (dense[row[k]][col[k]] == 0) cells++;
        dense[row[k]][col[k]] += val[k];
    }
    csr a, t;
    int64_t dups = 0;
    assert_int_equal(csr_from_triplets(R, C, N, row, col, val, &a, &dups), GPUALS_OK);
    assert_int_equal(a.nnz, cells);
    assert_int_equal(dups, N - cells);
    assert_int_equal(csr_validate(&a), GPUALS_OK);
    assert_int_equal(csr_transpose(&a, &t), GPUALS_OK);
    assert_int_equal(csr_validate(&t), GPUALS_OK);
    for (int r = 0; r < R; r++) {
        double seen = 0, want = 0;
        for (int64_t q = a.indptr[r]; q < a.indptr[r + 1]; q++) {
            assert_float_equal(a.data[q], dense[r][a.indices[q]], 0.0);
            seen += a.data[q];
        }
        for (int c = 0; c < C; c++) want += dense[r][c];
        assert_float_equal(seen, want, 0.0);
    }
    for (int c = 0; c < C; c++)
        for (int64_t q = t.indptr[c]; q < t.indptr[c + 1]; q++)
            assert_float_equal(t.data[q], dense[t.indices[q]][c], 0.0);
    csr_free(&a);
    csr_free(&t);
}

static void test_idmap_basics(void **state)
{
    (void)state;
    idmap *m = idmap_new();
    assert_non_null(m);
    int added = -1;
    assert_int_equal(idmap_intern(m, "7", 1, &added), 0);
    assert_int_equal(added, 1);
    assert_int_equal(idmap_intern(m, "07", 2, &added), 1);
    assert_int_equal(added, 1);
    assert_int_equal(idmap_intern(m, "7", 1, &added), 0);
    assert_int_equal(added, 0);
    assert_int_equal(idmap_intern(m, "9223372036854775807", 19, NULL), 2);
    assert_int_equal(idmap_intern(m, "", 0, NULL), 3); /* the map itself allows an empty id */
    assert_int_equal(idmap_find(m, "07", 2), 1);
    assert_int_equal(idmap_find(m, "70", 2), -1);
    assert_int_equal(idmap_find(m, "7x", 1), 0); /* only len bytes count */
    assert_string_equal(idmap_name(m, 1), "07");
    assert_string_equal(idmap_name(m, 2), "9223372036854775807");
    assert_string_equal(idmap_name(m, 3), "");
    assert_null(idmap_name(m, 4));
    assert_int_equal(idmap_size(m), 4);
    idmap_free(m);
    idmap_free(NULL);
}

/* 300k ids: many table doublings and arena chunks; names keep their addresses. */
static void test_idmap_many(void **state)
{
    (void)state;
    enum { N = 300000 };
    idmap *m = idmap_new();
    assert_non_null(m);
    char buf[64];
    const char *first = NULL;
    for (int k = 0; k < N; k++) {
        int n = snprintf(buf, sizeof buf, "user-%lld", (long long)k * 7919 % 1000003);
        assert_int_equal(idmap_intern(m, buf, (size_t)n, NULL), k);
        if (k == 0) first = idmap_name(m, 0);
    }
    assert_ptr_equal(idmap_name(m, 0), first);
    assert_int_equal(idmap_size(m), N);
    for (int k = 0; k < N; k += 997) {
        int n = snprintf(buf, sizeof buf, "user-%lld", (long long)k * 7919 % 1000003);
        assert_int_equal(idmap_find(m, buf, (size_t)n), k);
        assert_string_equal(idmap_name(m, k), buf);
    }
    assert_int_equal(idmap_find(m, "user-1000004", 12), -1);
    idmap_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_7x6),
        cmocka_unit_test(test_transpose_7x6),
        cmocka_unit_test(test_consume_matches),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_empty_and_bad_triplets),
        cmocka_unit_test(test_validate_catches),
        cmocka_unit_test(test_random_against_dense),
        cmocka_unit_test(test_idmap_basics),
        cmocka_unit_test(test_idmap_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
