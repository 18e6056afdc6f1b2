/*
 * als_engine.h - the CPU ALS engine, written once for a floating-point type ALS_T.
 *
 * This file is a template, not an ordinary header: als_f32.c and als_f64.c each define
 *     ALS_T          float or double
 *     ALS_FN(name)   name with the type's suffix (name##_f32 or name##_f64)
 *     ALS_IS_DOUBLE  0 or 1
 *     ALS_GEMV, ALS_SYRK, ALS_POTRF, ALS_POTRS   the BLAS / LAPACKE routines of that type
 *     ALS_EPSILON    the machine epsilon of ALS_T
 * and include it once. Everything it defines is static except ALS_FN(als_gram),
 * ALS_FN(als_loss_grams) and ALS_FN(als_fit_engine).
 *
 * The model (Hu, Koren & Volinsky 2008, with the `implicit` library's conventions): minimise
 *     sum_{u,i} c_ui (p_ui - x_u.y_i)^2 + lambda (|X|^2 + |Y|^2)
 * where the stored value c of an entry is its confidence (p = 1), a negative stored value -c
 * means "disliked" (p = 0, confidence c), and every unstored entry has c = 1, p = 0. Fixing Y,
 * row u's normal equations are A x = b with
 *     A = YtY + lambda_u I + sum_{i in u} (|c_ui| - 1) y_i y_i^T,    b = sum_{i in u, c>0} c_ui y_i
 * (lambda_u = lambda, or lambda * n_u under FREQUENCY scaling as Spark does). Each half-iteration
 * solves every row of one side against the other side's current factors, users first.
 *
 * Two solvers:
 *  - cg: conjugate gradient warm-started from the current x_u (Takacs et al. 2011), cg_steps
 *    steps, never forming A. The residual and the product with a direction p are
 *        r  = sum_i [c+_ui - (|c_ui| - 1)(y_i.x)] y_i - (YtY + lambda_u I) x
 *        Ap = (YtY + lambda_u I) p + sum_i (|c_ui| - 1)(y_i.p) y_i
 *    the dense part by BLAS gemv, the sparse part by sparse_apply below; stop when r.r < 1e-20.
 *  - cholesky: A is built in full with BLAS3: a copy of YtY + lambda_u I plus SYRK over the
 *    row's item vectors gathered and scaled by sqrt(|c| - 1), in blocks; entries with |c| < 1
 *    have a negative weight, so their vectors are scaled by sqrt(1 - |c|) and subtracted with a
 *    second SYRK (alpha = -1). Then LAPACK potrf/potrs. A pivot that is not clearly positive
 *    (potrf fails, or L_kk^2 <= ALS_PIVOT_RTOL * f * eps * A_kk, als_internal.h) is reported as a
 *    singular system instead of being divided by.
 *
 * The training loss (als.h) is `implicit`'s, including its treatment of a "disliked" entry,
 * which adds |c| to the numerator as a liked one does. Its dense part sum_u x_u^T YtY x_u is
 * computed as the elementwise product <XtX, YtY> of the two Gram matrices (O(f^2) once, not
 * O(f^2) per user), the rest per user in double and summed in row order.
 *
 * Layout: during a fit the factors live in rows padded with zeros to a whole number of 64-byte
 * vectors (ld entries, ld >= f; 112 for f = 100 in float32), so the hot loops need no scalar
 * tails; the padding stays zero through every update and is dropped when the factors are copied
 * back.
 *
 * Departures from `implicit`: YtY is accumulated in double in fixed row chunks and summed in a
 * fixed order (als_gram), so it is bit-identical for any thread count, and each row's solve uses
 * only its own data, so the factors do not depend on the thread count either. A non-finite row
 * stops training with a status (implicit's GPU path zeroes such rows with a warning).
 */

#include <lapacke.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "als_internal.h"
#include "status.h"

/* ------------------------------------------------------------------------------------------ */
/* Hot loops (multiversioned)                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* The loops work on 64-byte vectors through the GCC/Clang vector extension, which each clone
 * lowers to one AVX-512 register, two AVX2 or four SSE ones (NEON on ARM64). A vector may be
 * loaded from any ALS_T-aligned address. Sums across a vector's lanes go as a fixed tree (half
 * onto half), so every clone adds in the same order. Loops over `len` entries run whole vectors,
 * then the remaining len % ALS_LANES entries one by one; the fit pads factor rows to whole
 * vectors (see als_run), so there the tail is empty. */
#define ALS_LANES ((int)(64 / sizeof(ALS_T)))
typedef ALS_T ALS_FN(als_vec) __attribute__((vector_size(64), aligned(sizeof(ALS_T)), may_alias));
#define ALS_VEC ALS_FN(als_vec)
#define ALS_AT(p) (*(ALS_VEC *)(p))
#define ALS_LOAD(p) (*(const ALS_VEC *)(p))

#if defined(__clang__) || __GNUC__ >= 12
#define ALS_SHUF(a, ...) __builtin_shufflevector(a, a, __VA_ARGS__)
#elif ALS_IS_DOUBLE
typedef int64_t ALS_FN(als_mask) __attribute__((vector_size(64)));
#define ALS_SHUF(a, ...) __builtin_shuffle(a, (ALS_FN(als_mask)){__VA_ARGS__})
#else
typedef int32_t ALS_FN(als_mask) __attribute__((vector_size(64)));
#define ALS_SHUF(a, ...) __builtin_shuffle(a, (ALS_FN(als_mask)){__VA_ARGS__})
#endif

/* The sum of the lanes of vector variable a (which it overwrites), as an expression. */
#if ALS_IS_DOUBLE
#define ALS_HSUM(a)                                                                           \
    ((a) += ALS_SHUF(a, 4, 5, 6, 7, 0, 1, 2, 3), (a) += ALS_SHUF(a, 2, 3, 0, 1, 2, 3, 0, 1),  \
     (a) += ALS_SHUF(a, 1, 0, 1, 0, 1, 0, 1, 0), (a)[0])
#else
#define ALS_HSUM(a)                                                                           \
    ((a) += ALS_SHUF(a, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7),                \
     (a) += ALS_SHUF(a, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3),                      \
     (a) += ALS_SHUF(a, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1),                      \
     (a) += ALS_SHUF(a, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0), (a)[0])
#endif

/* a . b over len entries. */
ALS_HOT static ALS_T ALS_FN(dot)(const ALS_T *restrict a, const ALS_T *restrict b, int len)
{
    int full = len - len % ALS_LANES;
    ALS_VEC acc = {0};
    for (int j = 0; j < full; j += ALS_LANES) acc += ALS_LOAD(a + j) * ALS_LOAD(b + j);
    ALS_T s = ALS_HSUM(acc);
    for (int j = full; j < len; j++) s += a[j] * b[j];
    return s;
}

/* The weight of entry c with d = y.v: residual form c+ - (|c| - 1) d, product form (|c| - 1) d. */
static inline ALS_T ALS_FN(entry_weight)(float c, ALS_T d, int residual)
{
    ALS_T w = (ALS_T)fabsf(c) - 1;
    if (!residual) return w * d;
    return (c > 0 ? (ALS_T)c : 0) - w * d;
}

/* out += sum_k a_k y_k over the n entries (columns idx, confidences conf) of a row, where y_k is
 * row idx[k] of Y (rows ld apart, len entries used) and a_k = entry_weight(conf[k], y_k . v,
 * residual). Entries go four at a time: four dot products in one pass over v, then one pass
 * over out adding all four weighted vectors. */
ALS_HOT static void ALS_FN(sparse_apply)(const ALS_T *restrict Y, size_t ld, int len,
                                         const int32_t *restrict idx,
                                         const float *restrict conf, int64_t n,
                                         const ALS_T *restrict v, int residual,
                                         ALS_T *restrict out)
{
    int full = len - len % ALS_LANES;
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
        const ALS_T *y0 = Y + (size_t)idx[k] * ld, *y1 = Y + (size_t)idx[k + 1] * ld;
        const ALS_T *y2 = Y + (size_t)idx[k + 2] * ld, *y3 = Y + (size_t)idx[k + 3] * ld;

        /* Four dot products in one pass. */
        ALS_VEC s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
        for (int j = 0; j < full; j += ALS_LANES) {
            ALS_VEC vj = ALS_LOAD(v + j);
            s0 += ALS_LOAD(y0 + j) * vj;
            s1 += ALS_LOAD(y1 + j) * vj;
            s2 += ALS_LOAD(y2 + j) * vj;
            s3 += ALS_LOAD(y3 + j) * vj;
        }
        ALS_T d0 = ALS_HSUM(s0), d1 = ALS_HSUM(s1), d2 = ALS_HSUM(s2), d3 = ALS_HSUM(s3);
        for (int j = full; j < len; j++) {
            d0 += y0[j] * v[j];
            d1 += y1[j] * v[j];
            d2 += y2[j] * v[j];
            d3 += y3[j] * v[j];
        }

        /* Their weighted vectors added in one pass. */
        ALS_T a0 = ALS_FN(entry_weight)(conf[k], d0, residual);
        ALS_T a1 = ALS_FN(entry_weight)(conf[k + 1], d1, residual);
        ALS_T a2 = ALS_FN(entry_weight)(conf[k + 2], d2, residual);
        ALS_T a3 = ALS_FN(entry_weight)(conf[k + 3], d3, residual);
        for (int j = 0; j < full; j += ALS_LANES)
            ALS_AT(out + j) += a0 * ALS_LOAD(y0 + j) + a1 * ALS_LOAD(y1 + j) +
                               a2 * ALS_LOAD(y2 + j) + a3 * ALS_LOAD(y3 + j);
        for (int j = full; j < len; j++)
            out[j] += a0 * y0[j] + a1 * y1[j] + a2 * y2[j] + a3 * y3[j];
    }
    for (; k < n; k++) {
        const ALS_T *y = Y + (size_t)idx[k] * ld;
        ALS_T a = ALS_FN(entry_weight)(conf[k], ALS_FN(dot)(y, v, len), residual);
        for (int j = 0; j < len; j++) out[j] += a * y[j];
    }
}

/* The CG update x += alpha p, r -= alpha Ap over len entries; returns the new r.r. */
ALS_HOT static ALS_T ALS_FN(cg_update)(int len, ALS_T alpha, const ALS_T *restrict p,
                                       const ALS_T *restrict ap, ALS_T *restrict x,
                                       ALS_T *restrict r)
{
    int full = len - len % ALS_LANES;
    ALS_VEC acc = {0};
    for (int j = 0; j < full; j += ALS_LANES) {
        ALS_AT(x + j) += alpha * ALS_LOAD(p + j);
        ALS_VEC rj = ALS_LOAD(r + j) - alpha * ALS_LOAD(ap + j);
        ALS_AT(r + j) = rj;
        acc += rj * rj;
    }
    ALS_T rr = ALS_HSUM(acc);
    for (int j = full; j < len; j++) {
        x[j] += alpha * p[j];
        r[j] -= alpha * ap[j];
        rr += r[j] * r[j];
    }
    return rr;
}

/* The loss terms of one row that involve its entries, in double:
 * sum_k (|c_k| - 1) d_k^2 - 2 c+_k d_k + |c_k| with d_k = y_k . x (rows of Y ld apart). */
static double ALS_FN(row_loss_terms)(const ALS_T *Y, size_t ld, int len, const int32_t *idx,
                                     const float *conf, int64_t n, const ALS_T *x)
{
    double s = 0;
    for (int64_t k = 0; k < n; k++) {
        double d = (double)ALS_FN(dot)(Y + (size_t)idx[k] * ld, x, len);
        double c = conf[k], ca = fabs(c);
        s += (ca - 1) * d * d - 2 * (c > 0 ? c : 0) * d + ca;
    }
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Per-thread workspace                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* Rows gathered per SYRK call when building a Cholesky system. */
#define ALS_GATHER_ROWS 128

typedef struct {
    ALS_T *r, *p, *ap;      /* CG vectors, ld each */
    ALS_T *A, *b, *diag;    /* Cholesky: f x f system, right-hand side, diagonal before potrf */
    ALS_T *pos, *neg;       /* Cholesky: ALS_GATHER_ROWS x f gathered rows (weights > 0, < 0) */
    void *block;            /* the one allocation behind all of them */
} ALS_FN(als_ws);

/* Allocate w (zeroed) for f factors in rows of ld and the given solver; 0 when out of memory. */
static int ALS_FN(ws_alloc)(ALS_FN(als_ws) *w, int f, size_t ld, gpuals_solver solver)
{
    size_t fs = (size_t)f;
    size_t n = 3 * ld;
    if (solver == GPUALS_SOLVER_CHOLESKY) n += fs * fs + 2 * fs + 2 * ALS_GATHER_ROWS * fs;
    memset(w, 0, sizeof *w);
    w->block = als_alloc64(n * sizeof(ALS_T));
    if (!w->block) return 0;
    memset(w->block, 0, n * sizeof(ALS_T));
    ALS_T *at = w->block;
    w->r = at, at += ld;
    w->p = at, at += ld;
    w->ap = at, at += ld;
    if (solver == GPUALS_SOLVER_CHOLESKY) {
        w->A = at, at += fs * fs;
        w->b = at, at += fs;
        w->diag = at, at += fs;
        w->pos = at, at += ALS_GATHER_ROWS * fs;
        w->neg = at;
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Row solvers                                                                                */
/* ------------------------------------------------------------------------------------------ */

/* What a half-iteration solves: rows of C (this side x other side) into X, against the other
 * side's factors Y and their Gram matrix G (f x f in rows of ld, without lambda). Factor rows
 * are ld apart, and entries f..ld-1 of every row are zero. */
typedef struct {
    const csr *C;
    const ALS_T *Y;
    ALS_T *X;
    const ALS_T *G;
    int f;
    size_t ld;
    const gpuals_params *p;
    als_failure *fail;
} ALS_FN(als_half);

/* out = sign * (G v + lambda v), its padding set to zero. G is symmetric, so it is handed to
 * gemv as the column-major matrix it equally is: OpenBLAS's column-major kernel (a sum of
 * scaled columns) is the faster one at these sizes. */
static void ALS_FN(dense_apply)(const ALS_FN(als_half) *h, ALS_T lambda, const ALS_T *v,
                                ALS_T sign, ALS_T *out)
{
    int f = h->f;
    ALS_GEMV(CblasColMajor, CblasNoTrans, f, f, sign, h->G, (int)h->ld, v, 1, 0, out, 1);
    ALS_T sl = sign * lambda;
    for (int j = 0; j < f; j++) out[j] += sl * v[j];
    for (size_t j = (size_t)f; j < h->ld; j++) out[j] = 0;
}

/* Warm-started CG on one row (equations in the file comment); x is updated in place. The
 * vectors run over the whole padded row, whose padding is zero (in x and Y as laid out by
 * als_run, in r and Ap as dense_apply leaves them). */
ALS_HOT static void ALS_FN(cg_row)(ALS_FN(als_ws) *w, const ALS_FN(als_half) *h,
                                   const int32_t *idx, const float *conf, int64_t n,
                                   ALS_T lambda, ALS_T *x)
{
    int len = (int)h->ld;
    ALS_T *r = w->r, *p = w->p, *ap = w->ap;

    /* r = b - A x, p = r. */
    ALS_FN(dense_apply)(h, lambda, x, -1, r);
    ALS_FN(sparse_apply)(h->Y, h->ld, len, idx, conf, n, x, 1, r);
    memcpy(p, r, h->ld * sizeof *p);
    ALS_T rsold = ALS_FN(dot)(r, r, len);
    if (rsold < (ALS_T)ALS_CG_EPS) return;

    for (int step = 0; step < h->p->cg_steps; step++) {
        /* Ap, without forming A. */
        ALS_FN(dense_apply)(h, lambda, p, 1, ap);
        ALS_FN(sparse_apply)(h->Y, h->ld, len, idx, conf, n, p, 0, ap);

        /* Step along p; stop once the residual is negligible. */
        ALS_T alpha = rsold / ALS_FN(dot)(p, ap, len);
        ALS_T rsnew = ALS_FN(cg_update)(len, alpha, p, ap, x, r);
        if (rsnew < (ALS_T)ALS_CG_EPS) break;

        /* p = r + (rsnew / rsold) p. */
        ALS_T beta = rsnew / rsold;
        for (int j = 0; j < len; j++) p[j] = r[j] + beta * p[j];
        rsold = rsnew;
    }
}

/* A += sign * S^T S for the m gathered rows S (m x f), upper triangle of row-major A. */
static void ALS_FN(syrk_flush)(ALS_T *A, int f, const ALS_T *S, int m, ALS_T sign)
{
    if (m == 0) return;
    ALS_SYRK(CblasRowMajor, CblasUpper, CblasTrans, f, m, sign, S, f, 1, A, f);
}

/* Build A and b of one row (file comment) in w->A (upper triangle, f x f) and w->b. */
ALS_HOT static void ALS_FN(chol_build)(ALS_FN(als_ws) *w, const ALS_FN(als_half) *h,
                                       const int32_t *idx, const float *conf, int64_t n,
                                       ALS_T lambda)
{
    size_t fs = (size_t)h->f;
    ALS_T *A = w->A, *b = w->b;

    /* A = YtY + lambda I, b = 0. */
    for (size_t a = 0; a < fs; a++) memcpy(A + a * fs, h->G + a * h->ld, fs * sizeof *A);
    for (size_t k = 0; k < fs; k++) A[k * fs + k] += lambda;
    memset(b, 0, fs * sizeof *b);

    /* b += c y for c > 0; each y scaled by sqrt(||c| - 1|) into the block of its sign. */
    int np = 0, nn = 0;
    for (int64_t k = 0; k < n; k++) {
        const ALS_T *y = h->Y + (size_t)idx[k] * h->ld;
        ALS_T c = conf[k], wgt = (ALS_T)fabsf(conf[k]) - 1;
        if (c > 0)
            for (size_t j = 0; j < fs; j++) b[j] += c * y[j];
        if (wgt == 0) continue;
        ALS_T s = sqrt(fabs(wgt));
        ALS_T *dst = wgt > 0 ? w->pos + (size_t)np * fs : w->neg + (size_t)nn * fs;
        for (size_t j = 0; j < fs; j++) dst[j] = s * y[j];

        /* A full block goes into A at once. */
        if (wgt > 0 && ++np == ALS_GATHER_ROWS) {
            ALS_FN(syrk_flush)(A, h->f, w->pos, np, 1);
            np = 0;
        }
        if (wgt < 0 && ++nn == ALS_GATHER_ROWS) {
            ALS_FN(syrk_flush)(A, h->f, w->neg, nn, -1);
            nn = 0;
        }
    }
    ALS_FN(syrk_flush)(A, h->f, w->pos, np, 1);
    ALS_FN(syrk_flush)(A, h->f, w->neg, nn, -1);
}

/* Exact solve of one row into x; ALS_FAIL_NONE, or the failure with *detail (the 1-based pivot
 * for SINGULAR, LAPACK's info for LAPACK). */
static als_fail_kind ALS_FN(chol_row)(ALS_FN(als_ws) *w, const ALS_FN(als_half) *h,
                                      const int32_t *idx, const float *conf, int64_t n,
                                      ALS_T lambda, ALS_T *x, int *detail)
{
    int f = h->f;
    ALS_T *A = w->A;

    /* Build, keeping the diagonal to judge the pivots by. */
    ALS_FN(chol_build)(w, h, idx, conf, n, lambda);
    for (int k = 0; k < f; k++) w->diag[k] = A[(size_t)k * f + k];

    /* Row-major upper is column-major lower: factorise in place. */
    lapack_int info = ALS_POTRF(LAPACK_COL_MAJOR, 'L', f, A, f);
    if (info < 0) return *detail = (int)info, ALS_FAIL_LAPACK;
    if (info > 0) return *detail = (int)info, ALS_FAIL_SINGULAR;

    /* A pivot lost to rounding is as singular as a zero one. */
    ALS_T tol = (ALS_T)ALS_PIVOT_RTOL * (ALS_T)f * ALS_EPSILON;
    for (int k = 0; k < f; k++) {
        ALS_T l = A[(size_t)k * f + k];
        if (!(l * l > tol * w->diag[k])) return *detail = k + 1, ALS_FAIL_SINGULAR;
    }

    /* Solve. */
    info = ALS_POTRS(LAPACK_COL_MAJOR, 'L', f, 1, A, f, w->b, f);
    if (info != 0) return *detail = (int)info, ALS_FAIL_LAPACK;
    memcpy(x, w->b, (size_t)f * sizeof *x);
    return ALS_FAIL_NONE;
}

/* Solve row u of a half-iteration, recording a failure in h->fail. */
static void ALS_FN(solve_row)(ALS_FN(als_ws) *w, const ALS_FN(als_half) *h, int64_t u)
{
    const csr *C = h->C;
    ALS_T *x = h->X + (size_t)u * h->ld;
    int64_t start = C->indptr[u], n = C->indptr[u + 1] - start;

    /* Rows without entries get zero factors. */
    if (n == 0) {
        memset(x, 0, h->ld * sizeof *x);
        return;
    }

    /* Solve. */
    ALS_T lambda = (ALS_T)als_row_lambda(h->p, n);
    const int32_t *idx = C->indices + start;
    const float *conf = C->data + start;
    if (h->p->solver == GPUALS_SOLVER_CG) {
        ALS_FN(cg_row)(w, h, idx, conf, n, lambda, x);
    } else {
        int detail = 0;
        als_fail_kind kind = ALS_FN(chol_row)(w, h, idx, conf, n, lambda, x, &detail);
        if (kind != ALS_FAIL_NONE) {
            als_failure_record(h->fail, u, kind, detail);
            return;
        }
    }

    /* A non-finite result (padding included) stops training after this half-iteration. */
    for (size_t j = 0; j < h->ld; j++) {
        if (!isfinite(x[j])) {
            als_failure_record(h->fail, u, ALS_FAIL_NONFINITE, 0);
            return;
        }
    }
}

/* Solve every row of h with nt threads and per-thread workspaces ws[nt]. */
static void ALS_FN(solve_half)(const ALS_FN(als_half) *h, ALS_FN(als_ws) *ws, int nt)
{
    int64_t rows = h->C->rows;
#pragma omp parallel num_threads(nt)
    {
        ALS_FN(als_ws) *w = &ws[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 8)
        for (int64_t u = 0; u < rows; u++) ALS_FN(solve_row)(w, h, u);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Gram matrix and loss                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* See als_internal.h. Rows are cut into chunks of ALS_GRAM_CHUNK; each chunk's F_c^T F_c is one
 * double SYRK, chunks are computed ALS_GRAM_WAVE at a time in parallel and added to out in chunk
 * order, so the sum is the same whatever the thread count. */
gpuals_status ALS_FN(als_gram)(const ALS_T *F, int64_t rows, int f, size_t ld, int threads,
                               double *out)
{
    size_t fs = (size_t)f, ff = fs * fs;
    int64_t chunks = (rows + ALS_GRAM_CHUNK - 1) / ALS_GRAM_CHUNK;
    int wave = chunks < ALS_GRAM_WAVE ? (int)chunks : ALS_GRAM_WAVE;
    int nt = threads < wave ? threads : wave;
    if (nt < 1) nt = 1;

    /* Scratch: the partial sums of a wave (and, for float, rows widened to double). */
    double *part = malloc((wave ? (size_t)wave : 1) * ff * sizeof *part);
#if ALS_IS_DOUBLE
    double *wide = NULL;
    int wide_ok = 1;
#else
    double *wide = malloc((size_t)nt * ALS_GRAM_CHUNK * fs * sizeof *wide);
    int wide_ok = wide != NULL;
#endif
    if (!part || !wide_ok) {
        free(part), free(wide);
        return gpuals_fail(GPUALS_ERR_NOMEM, "als_gram: out of memory for %d x %d partial sums",
                           f, f);
    }
    memset(out, 0, ff * sizeof *out);

    for (int64_t first = 0; first < chunks; first += ALS_GRAM_WAVE) {
        int nw = chunks - first < ALS_GRAM_WAVE ? (int)(chunks - first) : ALS_GRAM_WAVE;

        /* Each chunk of the wave into its own partial sum. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (int k = 0; k < nw; k++) {
            int64_t r0 = (first + k) * ALS_GRAM_CHUNK;
            int m = rows - r0 < ALS_GRAM_CHUNK ? (int)(rows - r0) : ALS_GRAM_CHUNK;
#if ALS_IS_DOUBLE
            const double *src = F + (size_t)r0 * ld;
            int lds = (int)ld;
#else
            double *src = wide + (size_t)omp_get_thread_num() * ALS_GRAM_CHUNK * fs;
            int lds = f;
            for (int r = 0; r < m; r++)
                for (size_t j = 0; j < fs; j++) src[r * fs + j] = F[(size_t)(r0 + r) * ld + j];
#endif
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, f, m, 1.0, src, lds, 0.0,
                        part + (size_t)k * ff, f);
        }

        /* Added in chunk order. */
        for (int k = 0; k < nw; k++) {
            const double *pk = part + (size_t)k * ff;
            for (size_t a = 0; a < fs; a++)
                for (size_t b = a; b < fs; b++) out[a * fs + b] += pk[a * fs + b];
        }
    }

    /* Mirror the upper triangle. */
    for (size_t a = 0; a < fs; a++)
        for (size_t b = 0; b < a; b++) out[a * fs + b] = out[b * fs + a];
    free(part);
    free(wide);
    return GPUALS_OK;
}

/* See als_internal.h. Per row in parallel into a scratch array, then summed in row order. */
double ALS_FN(als_loss_grams)(const csr *C, const ALS_T *X, const ALS_T *Y, int f, size_t ld,
                              const gpuals_params *p, const double *Gx, const double *Gy,
                              const int64_t *item_counts, int threads)
{
    size_t fs = (size_t)f;
    int len = (int)ld;
    int64_t n_users = C->rows, n_items = C->cols;
    if (p->reg_scale == GPUALS_REG_FREQUENCY && !item_counts) return NAN;
    int64_t most = n_users > n_items ? n_users : n_items;
    double *term = malloc((size_t)(most > 0 ? most : 1) * sizeof *term);
    if (!term) return NAN;

    /* sum_u x_u^T YtY x_u = <XtX, YtY> (elementwise). */
    double dense = 0;
    for (size_t e = 0; e < fs * fs; e++) dense += Gx[e] * Gy[e];

    /* The entries of each user and its regularisation. */
#pragma omp parallel for schedule(dynamic, 64) num_threads(threads)
    for (int64_t u = 0; u < n_users; u++) {
        const ALS_T *x = X + (size_t)u * ld;
        int64_t s = C->indptr[u], n = C->indptr[u + 1] - s;
        term[u] = ALS_FN(row_loss_terms)(Y, ld, len, C->indices + s, C->data + s, n, x) +
                  als_row_lambda(p, n) * (double)ALS_FN(dot)(x, x, len);
    }
    double users = 0;
    for (int64_t u = 0; u < n_users; u++) users += term[u];

    /* The items' regularisation. */
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < n_items; i++) {
        const ALS_T *y = Y + (size_t)i * ld;
        int64_t n = item_counts ? item_counts[i] : 1;
        term[i] = als_row_lambda(p, n) * (double)ALS_FN(dot)(y, y, len);
    }
    double items = 0;
    for (int64_t i = 0; i < n_items; i++) items += term[i];
    free(term);

    /* Normalised by the total weight: sum |c| over stored entries plus 1 per unstored one. */
    double weight = als_total_confidence(C) + (double)n_users * (double)n_items - (double)C->nnz;
    return weight > 0 ? (dense + users + items) / weight : NAN;
}

/* ------------------------------------------------------------------------------------------ */
/* The training loop                                                                          */
/* ------------------------------------------------------------------------------------------ */

/* Everything one fit allocates. The factors are trained in rows of ld = f rounded up to whole
 * vectors, zero-padded: in the caller's X and Y when f is already a multiple of ALS_LANES,
 * else in padded copies that are copied back at the end. */
typedef struct {
    const csr *Cui, *Ciu;
    const gpuals_params *p;
    ALS_T *X, *Y;           /* the caller's factors, f wide */
    ALS_T *Xp, *Yp;         /* the trained factors, ld wide (X and Y themselves when ld == f) */
    int f, nt;
    size_t ld;
    double *Gx, *Gy;        /* Gram matrices of X and Y in double, f x f */
    ALS_T *G;               /* the one being solved against, f x f in rows of ld */
    int64_t *item_counts;   /* rows lengths of Ciu (the loss under FREQUENCY), or NULL */
    ALS_FN(als_ws) *ws;     /* nt workspaces */
} ALS_FN(als_run);

/* Copy rows x f factors between layouts with row strides from_ld and to_ld (padding zeroed). */
static void ALS_FN(relayout)(const ALS_T *from, size_t from_ld, ALS_T *to, size_t to_ld,
                             int64_t rows, int f)
{
    for (int64_t r = 0; r < rows; r++) {
        memcpy(to + (size_t)r * to_ld, from + (size_t)r * from_ld, (size_t)f * sizeof *to);
        for (size_t j = (size_t)f; j < to_ld; j++) to[(size_t)r * to_ld + j] = 0;
    }
}

static void ALS_FN(run_free)(ALS_FN(als_run) *r)
{
    if (r->ws)
        for (int t = 0; t < r->nt; t++) free(r->ws[t].block);
    free(r->ws);
    if (r->Xp != r->X) free(r->Xp);
    if (r->Yp != r->Y) free(r->Yp);
    free(r->Gx);
    free(r->Gy);
    free(r->G);
    free(r->item_counts);
}

/* Allocate r's buffers and lay out the factors; GPUALS_ERR_NOMEM (everything released) on
 * failure. */
static gpuals_status ALS_FN(run_alloc)(ALS_FN(als_run) *r)
{
    size_t fs = (size_t)r->f, ff = fs * fs;
    int64_t nx = r->Cui->rows, ny = r->Ciu->rows;
    r->ld = (fs + ALS_LANES - 1) / ALS_LANES * ALS_LANES;

    /* The factors, padded when f is not a whole number of vectors. */
    r->Xp = r->X, r->Yp = r->Y;
    if (r->ld != fs) {
        r->Xp = als_alloc64((size_t)(nx > 0 ? nx : 1) * r->ld * sizeof(ALS_T));
        r->Yp = als_alloc64((size_t)(ny > 0 ? ny : 1) * r->ld * sizeof(ALS_T));
    }
    int ok = r->Xp && r->Yp;
    if (ok && r->ld != fs) {
        ALS_FN(relayout)(r->X, fs, r->Xp, r->ld, nx, r->f);
        ALS_FN(relayout)(r->Y, fs, r->Yp, r->ld, ny, r->f);
    }

    /* Gram matrices and workspaces. */
    r->Gx = malloc(ff * sizeof *r->Gx);
    r->Gy = malloc(ff * sizeof *r->Gy);
    r->G = calloc(fs * r->ld, sizeof *r->G);
    r->ws = calloc((size_t)r->nt, sizeof *r->ws);
    ok = ok && r->Gx && r->Gy && r->G && r->ws;
    for (int t = 0; ok && t < r->nt; t++)
        ok = ALS_FN(ws_alloc)(&r->ws[t], r->f, r->ld, r->p->solver);

    /* Items' entry counts for the loss under FREQUENCY. */
    if (ok && r->p->compute_loss && r->p->reg_scale == GPUALS_REG_FREQUENCY) {
        r->item_counts = malloc((size_t)(ny > 0 ? ny : 1) * sizeof(int64_t));
        ok = r->item_counts != NULL;
        for (int64_t i = 0; ok && i < ny; i++) r->item_counts[i] = csr_row_len(r->Ciu, i);
    }
    if (ok) return GPUALS_OK;
    ALS_FN(run_free)(r);
    return gpuals_fail(GPUALS_ERR_NOMEM, "als_fit_cpu: out of memory for %lld x %lld factors "
                       "and %d threads' workspaces at %d factors", (long long)nx, (long long)ny,
                       r->nt, r->f);
}

/* The loss of X and Y with both Gram matrices computed here (als.h: als_loss); NaN when the
 * arguments are bad or memory runs out. */
static double ALS_FN(als_loss_standalone)(const csr *Cui, const ALS_T *X, const ALS_T *Y,
                                          int f, const gpuals_params *p)
{
    /* Check the arguments (no status to return: NaN says the loss could not be computed). */
    if (!Cui || !X || !Y || !p || f <= 0) return NAN;

    /* Both Gram matrices, the column counts under FREQUENCY, then the loss. */
    int nt = als_thread_count(p);
    size_t ff = (size_t)f * (size_t)f;
    double *Gx = malloc(ff * sizeof *Gx), *Gy = malloc(ff * sizeof *Gy);
    int64_t *counts = p->reg_scale == GPUALS_REG_FREQUENCY ? als_column_counts(Cui) : NULL;
    double loss = NAN;
    int saved = als_blas_single();
    if (Gx && Gy && ALS_FN(als_gram)(X, Cui->rows, f, (size_t)f, nt, Gx) == GPUALS_OK &&
        ALS_FN(als_gram)(Y, Cui->cols, f, (size_t)f, nt, Gy) == GPUALS_OK)
        loss = ALS_FN(als_loss_grams)(Cui, X, Y, f, (size_t)f, p, Gx, Gy, counts, nt);
    als_blas_restore(saved);
    free(Gx);
    free(Gy);
    free(counts);
    return loss;
}

/* One half-iteration: solve the rows of C into X against Y, whose Gram matrix is Gd. */
static gpuals_status ALS_FN(run_half)(ALS_FN(als_run) *r, const csr *C, const ALS_T *Y,
                                      ALS_T *X, const double *Gd, int side, int iteration)
{
    size_t fs = (size_t)r->f;
    for (size_t a = 0; a < fs; a++)
        for (size_t b = 0; b < fs; b++) r->G[a * r->ld + b] = (ALS_T)Gd[a * fs + b];
    als_failure fail;
    als_failure_reset(&fail);
    ALS_FN(als_half) h = {C, Y, X, r->G, r->f, r->ld, r->p, &fail};
    als_half_hook(0, side);
    ALS_FN(solve_half)(&h, r->ws, r->nt);
    als_half_hook(1, side);
    return als_failure_status(&fail, side, iteration);
}

/* The iterations: users, then items, then the loss and the callback. */
static gpuals_status ALS_FN(run_loop)(ALS_FN(als_run) *r, gpuals_iter_fn cb, void *cb_user)
{
    int gy_fresh = 0;
    int64_t nx = r->Cui->rows, ny = r->Ciu->rows;
    for (int it = 1; it <= r->p->iters; it++) {
        double t0 = als_now();

        /* Users against Y. */
        if (!gy_fresh) GPUALS_TRY(ALS_FN(als_gram)(r->Yp, ny, r->f, r->ld, r->nt, r->Gy));
        GPUALS_TRY(ALS_FN(run_half)(r, r->Cui, r->Yp, r->Xp, r->Gy, ALS_SIDE_USERS, it));

        /* Items against the new X. */
        GPUALS_TRY(ALS_FN(als_gram)(r->Xp, nx, r->f, r->ld, r->nt, r->Gx));
        GPUALS_TRY(ALS_FN(run_half)(r, r->Ciu, r->Xp, r->Yp, r->Gx, ALS_SIDE_ITEMS, it));
        gy_fresh = 0;

        /* The loss needs YtY of the new Y, which the next iteration reuses. */
        double loss = NAN;
        if (r->p->compute_loss) {
            GPUALS_TRY(ALS_FN(als_gram)(r->Yp, ny, r->f, r->ld, r->nt, r->Gy));
            gy_fresh = 1;
            loss = ALS_FN(als_loss_grams)(r->Cui, r->Xp, r->Yp, r->f, r->ld, r->p, r->Gx, r->Gy,
                                          r->item_counts, r->nt);
        }

        /* Report; a non-zero answer stops training here. */
        if (cb && cb(it, als_now() - t0, loss, cb_user)) break;
    }
    return GPUALS_OK;
}

/* The contract of als_fit_cpu / als_fit_cpu_f64 (als.h); fn names the caller in messages.
 * Iterations are numbered from 1 in the callback and in messages. On failure X and Y hold the
 * factors as far as training got. */
gpuals_status ALS_FN(als_fit_engine)(const char *fn, const csr *Cui, const csr *Ciu,
                                     const gpuals_params *p, ALS_T *X, ALS_T *Y,
                                     gpuals_iter_fn cb, void *cb_user)
{
    /* Check the arguments. */
    GPUALS_TRY(als_check_fit_args(fn, Cui, Ciu, p, X, Y));
    if (p->iters == 0) return GPUALS_OK;

    /* Allocate. */
    ALS_FN(als_run) r = {0};
    r.Cui = Cui, r.Ciu = Ciu, r.p = p, r.X = X, r.Y = Y;
    r.f = p->factors;
    r.nt = als_thread_count(p);
    GPUALS_TRY(ALS_FN(run_alloc)(&r));

    /* Train with single-threaded BLAS inside our threads. */
    int saved = als_blas_single();
    gpuals_status st = ALS_FN(run_loop)(&r, cb, cb_user);
    als_blas_restore(saved);

    /* Hand the factors back. */
    if (r.Xp != X) ALS_FN(relayout)(r.Xp, r.ld, X, (size_t)r.f, Cui->rows, r.f);
    if (r.Yp != Y) ALS_FN(relayout)(r.Yp, r.ld, Y, (size_t)r.f, Ciu->rows, r.f);
    ALS_FN(run_free)(&r);
    return st;
}
