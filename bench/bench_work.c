/*
 * bench_work.c - the floors the benchmark judges every time against, and timing statistics.
 *
 * Notation: U users, I items, N stored entries, f factors, s CG steps; "rows" are the rows being
 * solved in a half-iteration and "other" the rows of the fixed side. A multiply and an add count
 * as two flops. Bytes are compulsory traffic: each input read once and each output written once
 * (float factors 4 bytes, int32 column indices 4, float values 4, int64 row pointers 8, the
 * double Gram matrix 8 per entry). Real traffic is larger when a working set misses the cache, so
 * achieved GB/s against these floors is a lower bound on what the hardware moved.
 *
 * The per-row CG steps follow host/als.h (and Takacs et al. 2011 as the `implicit` library runs
 * them), never forming the f x f matrix:
 *   r = sum_i [c_i - (c_i - 1)(y_i.x)] y_i - (YtY + lambda I) x,  p = r
 *   per step:  Ap = (YtY + lambda I) p + sum_i (c_i - 1)(y_i.p) y_i
 *              a = r.r / p.Ap;  x += a p;  r -= a Ap;  p = r + (r'.r' / r.r) p
 * so the solves of a CG half-iteration are about rows*2f^2*(s+1) + N*4f*(s+1) flops plus vector
 * terms; the Gram matrix of the fixed side (other*f*(f+1)) is counted apart, as the benchmark
 * times it apart: an iteration is gram(items) + users' solves + gram(users) + items' solves.
 */
#include "bench_work.h"

#include <stdlib.h>

/* Bytes of a CSR with `rows` rows and `nnz` entries: int64 row pointers, int32 columns, float
 * values. */
static double csr_bytes(int64_t rows, int64_t nnz)
{
    return (double)(rows + 1) * 8.0 + (double)nnz * 8.0;
}

bench_work bench_work_gram(int64_t rows, int f)
{
    /* The symmetric product needs f(f+1)/2 distinct dot products of length rows, each a
     * multiply-add per term: rows*f*(f+1) flops. Read F once, write the f x f doubles. */
    bench_work w;
    double df = f;
    w.flops = (double)rows * df * (df + 1.0);
    w.bytes = (double)rows * df * 4.0 + df * df * 8.0;
    return w;
}

/* Compulsory bytes of a half-iteration's solves: the CSR of the solved side, the fixed side's
 * factors once, the Gram matrix read, the solved factors written (and read as the warm start
 * when warm_start). */
static double half_bytes(int64_t rows, int64_t other, int64_t nnz, int f, int warm_start)
{
    double df = f;
    double own = (double)rows * df * 4.0 * (warm_start ? 2.0 : 1.0);
    return csr_bytes(rows, nnz) + (double)other * df * 4.0 + df * df * 8.0 + own;
}

bench_work bench_work_half_cg(int64_t rows, int64_t other, int64_t nnz, int f, int steps)
{
    double df = f, r = (double)rows, n = (double)nnz;

    /* Setup per row: (YtY + lambda I) x is 2f^2 + 2f, r = b - Ax is f, r.r is 2f; per entry
     * y.x is 2f, c - (c-1)s is 3, the axpy into b - Ax is 2f. */
    double setup = r * (2.0 * df * df + 5.0 * df) + n * (4.0 * df + 3.0);

    /* Each step per row: the dense part of Ap (2f^2 + 2f), p.Ap, x += a p, r -= a Ap, r.r and
     * p = r + b p (2f each: 10f) and two scalar divisions; per entry y.p (2f), (c-1)t (2) and the
     * axpy (2f). */
    double step = r * (2.0 * df * df + 12.0 * df + 2.0) + n * (4.0 * df + 2.0);

    bench_work w;
    w.flops = setup + (double)steps * step;
    w.bytes = half_bytes(rows, other, nnz, f, 1);
    return w;
}

bench_work bench_work_half_cholesky(int64_t rows, int64_t other, int64_t nnz, int f)
{
    double df = f, r = (double)rows, n = (double)nnz;

    /* Per entry: the rank-one update (c-1) y y^T of one triangle is f(f+1)/2 multiply-adds,
     * scaling y by (c-1) is f, b += c y is 2f: f^2 + 4f in all. */
    double per_entry = df * df + 4.0 * df;

    /* Per row: lambda on the diagonal (f), potrf (f^3/3 + f^2/2 + f/6, LAPACK's count) and
     * potrs (two triangular solves, 2f^2). */
    double per_row = df + df * df * df / 3.0 + df * df / 2.0 + df / 6.0 + 2.0 * df * df;

    bench_work w;
    w.flops = r * per_row + n * per_entry;
    w.bytes = half_bytes(rows, other, nnz, f, 0);
    return w;
}

bench_work bench_work_loss(int64_t users, int64_t items, int64_t nnz, int f)
{
    double df = f, u = (double)users, n = (double)nnz;

    /* YtY (items*f*(f+1)); per user x^T (YtY x): 2f^2 + 2f; per entry s = y.x (2f) and
     * (c-1)s^2 - 2cs + c accumulated with sum c (9); lambda (|X|^2 + |Y|^2): 2f per row. */
    bench_work w;
    w.flops = bench_work_gram(items, f).flops + u * (2.0 * df * df + 2.0 * df) +
              n * (2.0 * df + 9.0) + 2.0 * df * (double)(users + items);
    w.bytes = csr_bytes(users, nnz) + (double)(users + items) * df * 4.0 + df * df * 8.0;
    return w;
}

bench_work bench_work_topn(int64_t queries, int64_t cands, int64_t exclude_nnz, int f, int n)
{
    double df = f, q = (double)queries, c = (double)cands;

    /* Every score is a dot product of length f; selecting the best n is comparisons, not
     * flops. Reads both factor matrices and the exclusion pattern (row pointers and columns);
     * writes n (int64 index, float score) pairs and a count per query. */
    bench_work w;
    w.flops = 2.0 * q * c * df;
    w.bytes = (q + c) * df * 4.0 + q * (double)n * 12.0 + q * 4.0;
    if (exclude_nnz > 0) w.bytes += (q + 1.0) * 8.0 + (double)exclude_nnz * 4.0;
    return w;
}

bench_work bench_work_load(int64_t file_bytes, int64_t users, int64_t items, int64_t nnz)
{
    /* Read the file once; write the ratings CSR, its transpose and the two confidence CSRs.
     * Parsing is not floating-point work, so no flops are counted. */
    bench_work w;
    w.flops = 0.0;
    w.bytes = (double)file_bytes + 2.0 * (csr_bytes(users, nnz) + csr_bytes(items, nnz));
    return w;
}

bench_work bench_work_upload(int64_t users, int64_t items, int64_t nnz, int f)
{
    /* Both CSR orientations and both factor matrices, host to device once. */
    bench_work w;
    w.flops = 0.0;
    w.bytes = csr_bytes(users, nnz) + csr_bytes(items, nnz) + (double)(users + items) * f * 4.0;
    return w;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of sorted samples, interpolating linearly between neighbours. */
static double quantile(const double *sorted, int n, double q)
{
    double pos = q * (double)(n - 1);
    int lo = (int)pos;
    if (lo >= n - 1) return sorted[n - 1];
    double frac = pos - (double)lo;
    return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

bench_stats bench_stats_of(double *samples, int n)
{
    bench_stats s = {0.0, 0.0, 0.0, 0.0, 0.0};
    if (n <= 0) return s;
    qsort(samples, (size_t)n, sizeof *samples, compare_doubles);
    s.min = samples[0];
    s.max = samples[n - 1];
    s.median = quantile(samples, n, 0.5);
    s.q1 = quantile(samples, n, 0.25);
    s.q3 = quantile(samples, n, 0.75);
    return s;
}
