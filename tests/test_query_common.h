/*
 * test_query_common.h - fixtures shared by the query and model-file tests: small synthetic
 * interaction data, models built from it without training (random item factors, user factors
 * solved exactly against them), titles, and temporary directories.
 *
 * Everything is deterministic: random values come from a 64-bit LCG with a fixed seed.
 * Helpers are static inline so each test uses only what it needs without unused warnings.
 */
#ifndef TEST_QUERY_COMMON_H
#define TEST_QUERY_COMMON_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "als.h"
#include "csr.h"
#include "dataset.h"
#include "gpuals.h"
#include "model.h"
#include "query.h"
#include "status.h"

/* The next value of the LCG in [0, 1). */
static inline double tq_uniform(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*state >> 11) * (1.0 / 9007199254740992.0);
}

/* Fail the test with the library's message when s is not GPUALS_OK. */
#define TQ_OK(call)                                                                           \
    do {                                                                                      \
        gpuals_status tq_s_ = (call);                                                         \
        if (tq_s_ != GPUALS_OK)                                                               \
            fail_msg("%s -> %s: %s", #call, gpuals_status_name(tq_s_), gpuals_last_error());  \
    } while (0)

/* |a - b| <= tol, reported with both values. */
#define TQ_NEAR(a, b, tol)                                                                    \
    do {                                                                                      \
        double tq_a_ = (a), tq_b_ = (b);                                                      \
        if (!(fabs(tq_a_ - tq_b_) <= (tol)))                                                  \
            fail_msg("%s = %.9g, %s = %.9g, differ by more than %g", #a, tq_a_, #b, tq_b_,    \
                     (double)(tol));                                                          \
    } while (0)

/* snprintf into buf (cap bytes) that fails the test instead of truncating. */
static inline void tq_format(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void tq_format(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < cap);
}

/* A synthetic data set: n_users users named "u<k>" and n_items items named "i<k>" (every
 * user and item appears); user 0 likes most items, user k likes 2 + k % 7 random ones, with
 * ratings 1..5 (whole numbers, so every confidence transform stays >= 1). */
static inline gpuals_data *tq_make_data(int n_users, int n_items, uint64_t seed)
{
    int cap = n_users * n_items + n_items;
    const char **users = malloc((size_t)cap * sizeof *users);
    const char **items = malloc((size_t)cap * sizeof *items);
    float *values = malloc((size_t)cap * sizeof *values);
    char (*unames)[16] = malloc((size_t)n_users * sizeof *unames);
    char (*inames)[16] = malloc((size_t)n_items * sizeof *inames);
    assert_true(users && items && values && unames && inames);
    for (int u = 0; u < n_users; u++) snprintf(unames[u], sizeof unames[u], "u%d", u);
    for (int i = 0; i < n_items; i++) snprintf(inames[i], sizeof inames[i], "i%d", i);

    /* Item k is first liked by user k % n_users, so ids appear in a fixed order. */
    uint64_t st = seed;
    int n = 0;
    for (int i = 0; i < n_items; i++) {
        users[n] = unames[i % n_users];
        items[n] = inames[i];
        values[n++] = (float)(1 + (int)(tq_uniform(&st) * 5));
    }
    for (int i = 0; i < n_items - 4; i++) {
        users[n] = unames[0];
        items[n] = inames[i];
        values[n++] = (float)(1 + (int)(tq_uniform(&st) * 5));
    }
    for (int u = 1; u < n_users; u++) {
        for (int k = 0; k < 2 + u % 7; k++) {
            users[n] = unames[u];
            items[n] = inames[(int)(tq_uniform(&st) * n_items)];
            values[n++] = (float)(1 + (int)(tq_uniform(&st) * 5));
        }
    }
    gpuals_data *d = NULL;
    TQ_OK(dataset_from_triplets(n, users, items, values, &d));
    free(users);
    free(items);
    free(values);
    free(unames);
    free(inames);
    return d;
}

/* Small settings for tests: f factors, exact solves, the given confidence and scaling. */
static inline gpuals_params tq_params(int f, gpuals_confidence conf, gpuals_reg_scale scale)
{
    gpuals_params p;
    gpuals_params_default(&p);
    p.factors = f;
    p.reg = 0.1;
    p.alpha = 2.0;
    p.confidence = conf;
    p.reg_scale = scale;
    p.solver = GPUALS_SOLVER_CHOLESKY;
    p.iters = 3;
    return p;
}

/* Solve every user of m exactly against m's current Y (what the Cholesky solver does). */
static inline void tq_solve_users_exactly(gpuals_model *m)
{
    const csr *c = &m->conf;
    double *gram = malloc((size_t)m->factors * (size_t)m->factors * sizeof *gram);
    assert_non_null(gram);
    als_gram(m->Y, m->n_items, m->factors, gram);
    for (int64_t u = 0; u < m->n_users; u++) {
        int64_t n = csr_row_len(c, u);
        double lambda = m->params.reg_scale == GPUALS_REG_FREQUENCY ? m->params.reg * (double)n
                                                                    : m->params.reg;
        TQ_OK(als_solve_row_exact(m->Y, m->n_items, m->factors, gram, lambda,
                                  c->indices + c->indptr[u], c->data + c->indptr[u], n,
                                  m->X + (size_t)u * (size_t)m->factors));
    }
    free(gram);
}

/* A model of d with settings p and no training: Y uniform in [-0.5, 0.5), X exact. */
static inline gpuals_model *tq_make_model(const gpuals_data *d, const gpuals_params *p,
                                          uint64_t seed)
{
    csr conf;
    TQ_OK(dataset_confidence(&d->ratings, p, &conf));
    gpuals_model *m = NULL;
    TQ_OK(model_new(d, p, &conf, &m));
    uint64_t st = seed;
    for (int64_t k = 0; k < m->n_items * m->factors; k++) m->Y[k] = (float)(tq_uniform(&st) - 0.5);
    tq_solve_users_exactly(m);
    return m;
}

/* Give item i of m the title t (copied; NULL removes it), creating the title table. */
static inline void tq_set_title(gpuals_model *m, int64_t i, const char *t)
{
    if (!m->titles) {
        m->titles = calloc((size_t)m->n_items, sizeof *m->titles);
        assert_non_null(m->titles);
    }
    free(m->titles[i]);
    m->titles[i] = t ? strdup(t) : NULL;
}

/* A new empty directory under the system's temporary directory (path returned, malloc'ed). */
static inline char *tq_temp_dir(void)
{
    const char *base = getenv("TMPDIR");
    char *path = malloc(4096);
    assert_non_null(path);
    tq_format(path, 4096, "%s/gpuals-test-XXXXXX", base && base[0] ? base : "/tmp");
    assert_non_null(mkdtemp(path));
    return path;
}

static inline int tq_remove_entry(const char *path, const struct stat *sb, int type,
                                  struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

/* Remove dir and everything under it, then free the path. */
static inline void tq_remove_tree(char *dir)
{
    nftw(dir, tq_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* dir + "/" + name into a static buffer (valid until the next call). */
static inline const char *tq_path(const char *dir, const char *name)
{
    static char buf[4096];
    tq_format(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

#endif /* TEST_QUERY_COMMON_H */
