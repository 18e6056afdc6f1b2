/*
 * gpu_bench.c - gpuals-gpu-bench: the built-in timing of device training that
 * bench/gpu-check.sh prints, independent of the full harness (bench/run).
 *
 * Data. A synthetic confidence matrix is generated in memory (no rating file to write and
 * parse): user activity follows a power law (user u's share of the entries proportional to
 * rank^-0.4, ranks shuffled), each user's items are drawn without repetition from a mixture
 * of a power law over items (rank^-0.5, shuffled; 70%) and a uniform draw (30%, so that long
 * rows can always be completed), and every entry gets a confidence r in {1, ..., 5}. With the
 * default shapes this gives degree spreads close to MovieLens 20M (user degrees up to ~70x the
 * mean, item degrees up to ~60x). The entry count is exact; no user gets more than half of the
 * items.
 *
 * Runs. For each requested form: one short warm-up fit (it creates the CUDA context and loads
 * the kernels), then the timed fit through cuda_als_fit_ex, whose CUDA events give the device
 * time of every iteration; the steady-state time per iteration leaves the first out. The
 * wall-clock gaps between callbacks are shown beside it. With --check, one iteration is also
 * trained on the CPU (als_fit_cpu) from the same start and the normwise relative difference of
 * the factors is printed; over CHECK_LIMIT it is called a mismatch and the exit code is 1 (a
 * check at full size, where grids, batches and row lengths are far larger than in the tests;
 * the tests hold the close comparisons).
 *
 * Napkin maths printed beside each time (per full iteration, both half-iterations; f factors,
 * s CG steps, nnz entries, U users, I items, each pass reading every entry's other-side vector
 * once, as the fused kernel does):
 *   flops  = sum over sides of (s+1) (4 f nnz + 2 f^2 rows) + 10 s f rows   (CG passes, updates)
 *            + f^2 (U + I)                                                   (both Gram matrices)
 *   bytes  = sum over sides of (s+1) nnz (4 f + 8) + 8 f rows + 4 f other    (vectors read per
 *            entry and pass, the CSR, the row's factors read and written, the Gram input)
 * The "effective GB/s" counts the vector reads of every pass, most of which hit in L2 on a
 * large GPU, so it can exceed the DRAM bandwidth; the copy ceiling is printed for scale.
 *
 * Usage: gpuals-gpu-bench [--shape UxIxN|ml-20m|ml-1m] [--factors F] [--cg-steps S]
 *                         [--iters N] [--form fused|library|both] [--solver cg|cholesky]
 *                         [--seed S] [--check] [--default]
 * With no options (or --default): ML-20M shape, 128 factors, 3 CG steps, 6 iterations (1 + 5
 * timed), both forms; then ML-1M shape, 100 factors, 30 iterations, both forms and Cholesky;
 * both with --check. Exit codes: 0 ok, 1 a run failed, 2 usage, 77 no usable GPU.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "als.h"
#include "csr.h"
#include "gpuals.h"
#include "gpuals_cuda.h"
#include "status.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_NO_GPU 77
#define MAX_ITERS 1000
#define CHECK_LIMIT 1e-3 /* the largest GPU vs CPU difference --check accepts */
#define CHECK_LIMIT_TEXT "1e-3"

/* One benchmark configuration. */
typedef struct {
    const char *name;
    int64_t users, items, nnz;
    int factors, cg_steps, iters;
    int forms;          /* bit 0 fused, bit 1 library */
    int cholesky;       /* also time the Cholesky solver */
    int check;          /* compare one iteration with the CPU */
    uint64_t seed;
} bench_config;

/* ------------------------------------------------------------------------------------------ */
/* Synthetic data                                                                             */
/* ------------------------------------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

/* A random permutation of 0..n-1 (Fisher-Yates). */
static int32_t *permutation(int64_t n, uint64_t *s)
{
    int32_t *p = malloc((size_t)n * sizeof *p);
    if (!p) return NULL;
    for (int64_t i = 0; i < n; i++) p[i] = (int32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(rng_next(s) % (uint64_t)(i + 1));
        int32_t t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    return p;
}

/* Cumulative weights of rank^-exponent for ranks 1..n, normalised to end at 1. */
static double *power_cdf(int64_t n, double exponent)
{
    double *c = malloc((size_t)n * sizeof *c), total = 0;
    if (!c) return NULL;
    for (int64_t i = 0; i < n; i++) c[i] = total += pow((double)(i + 1), -exponent);
    for (int64_t i = 0; i < n; i++) c[i] /= total;
    return c;
}

/* The rank whose cumulative weight first reaches u. */
static int64_t draw_rank(const double *cdf, int64_t n, double u)
{
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] < u) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Per-user entry counts summing to nnz, power-law in a shuffled rank, each in 1..items/2. */
static int64_t *user_degrees(const bench_config *c, uint64_t *s)
{
    int64_t *d = malloc((size_t)c->users * sizeof *d), cap = c->items / 2 > 0 ? c->items / 2 : 1;
    int32_t *rank = permutation(c->users, s);
    double total = 0;
    if (!d || !rank) {
        free(d);
        free(rank);
        return NULL;
    }
    for (int64_t u = 0; u < c->users; u++) total += pow((double)(rank[u] + 1), -0.4);

    /* Proportional shares, then the remainder spread one by one where there is room. */
    int64_t sum = 0;
    for (int64_t u = 0; u < c->users; u++) {
        int64_t k = (int64_t)((double)c->nnz * pow((double)(rank[u] + 1), -0.4) / total);
        d[u] = k < 1 ? 1 : (k > cap ? cap : k);
        sum += d[u];
    }
    for (int64_t u = 0; sum != c->nnz; u = (u + 1) % c->users) {
        if (sum < c->nnz && d[u] < cap) d[u]++, sum++;
        else if (sum > c->nnz && d[u] > 1) d[u]--, sum--;
    }
    free(rank);
    return d;
}

/* The users x items confidence CSR and its transpose. */
static gpuals_status make_data(const bench_config *c, csr *Cui, csr *Ciu)
{
    uint64_t s = c->seed;
    int64_t *deg = user_degrees(c, &s);
    int32_t *item_of_rank = permutation(c->items, &s);
    double *cdf = power_cdf(c->items, 0.5);
    int64_t *stamp = calloc((size_t)c->items, sizeof *stamp);
    int32_t *row = malloc((size_t)c->nnz * sizeof *row);
    int32_t *col = malloc((size_t)c->nnz * sizeof *col);
    float *val = malloc((size_t)c->nnz * sizeof *val);
    gpuals_status st = GPUALS_OK;
    if (!deg || !item_of_rank || !cdf || !stamp || !row || !col || !val) {
        st = gpuals_fail(GPUALS_ERR_NOMEM, "out of memory generating %lld entries",
                         (long long)c->nnz);
        goto done;
    }

    /* Each user's items, without repetition (stamp[i] = user + 1 once taken). */
    int64_t n = 0;
    for (int64_t u = 0; u < c->users; u++) {
        for (int64_t k = 0; k < deg[u];) {
            int64_t i = rng_unit(&s) < 0.7 ? item_of_rank[draw_rank(cdf, c->items, rng_unit(&s))]
                                           : (int64_t)(rng_next(&s) % (uint64_t)c->items);
            if (stamp[i] == u + 1) continue;
            stamp[i] = u + 1;
            row[n] = (int32_t)u;
            col[n] = (int32_t)i;
            val[n] = (float)(1 + rng_next(&s) % 5);
            n++, k++;
        }
    }

    /* CSR and transpose through the library, as training data is built. */
    st = csr_from_triplets(c->users, c->items, n, row, col, val, Cui, NULL);
    if (st == GPUALS_OK) st = csr_transpose(Cui, Ciu);
done:
    free(deg);
    free(item_of_rank);
    free(cdf);
    free(stamp);
    free(row);
    free(col);
    free(val);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Timing                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Wall-clock time of each callback. */
typedef struct {
    double t[MAX_ITERS + 1];
    int n;
} wall_clock;

static int on_iteration(int iteration, double seconds, double loss, void *user)
{
    wall_clock *w = user;
    (void)seconds;
    (void)loss;
    if (iteration <= MAX_ITERS) w->t[iteration] = now_seconds();
    w->n = iteration;
    return 0;
}

/* The napkin work of one full iteration (file comment). */
static void iteration_work(const bench_config *c, double *flops, double *bytes)
{
    const double f = c->factors, s = c->cg_steps, nnz = (double)c->nnz;
    const double rows[2] = {(double)c->users, (double)c->items};
    *flops = f * f * (rows[0] + rows[1]);
    *bytes = 0;
    for (int side = 0; side < 2; side++) {
        *flops += (s + 1) * (4 * f * nnz + 2 * f * f * rows[side]) + 10 * s * f * rows[side];
        *bytes += (s + 1) * nnz * (4 * f + 8) + 8 * f * rows[side] + 4 * f * rows[1 - side];
    }
}

/* Factors of a config from the shared initialiser. */
static int init_factors(const bench_config *c, float **X, float **Y, uint64_t seed)
{
    *X = malloc((size_t)c->users * (size_t)c->factors * sizeof **X);
    *Y = malloc((size_t)c->items * (size_t)c->factors * sizeof **Y);
    if (!*X || !*Y) return -1;
    als_init_factors(*X, c->users, c->factors, seed, ALS_SIDE_USERS);
    als_init_factors(*Y, c->items, c->factors, seed, ALS_SIDE_ITEMS);
    return 0;
}

static double rel_err(const float *a, const float *b, size_t n)
{
    double d = 0, w = 0;
    for (size_t k = 0; k < n; k++) {
        double e = (double)a[k] - (double)b[k];
        d += e * e;
        w += (double)b[k] * (double)b[k];
    }
    return w > 0 ? sqrt(d / w) : sqrt(d);
}

/* Time one solver / form on the data; print its row. */
static int run_one(const bench_config *c, const csr *Cui, const csr *Ciu, gpuals_solver solver,
                   cuda_cg_form form, const float *Xcpu, const float *Ycpu)
{
    const char *label = solver == GPUALS_SOLVER_CHOLESKY ? "cholesky"
                        : form == CUDA_CG_FUSED          ? "cg fused"
                                                         : "cg library";
    gpuals_params p;
    gpuals_params_default(&p);
    p.factors = c->factors;
    p.cg_steps = c->cg_steps;
    p.solver = solver;
    p.seed = c->seed;
    p.device = GPUALS_DEVICE_GPU;

    /* Warm-up: context and kernels (one iteration). */
    float *X = NULL, *Y = NULL;
    if (init_factors(c, &X, &Y, p.seed) != 0) return EXIT_FAILED;
    p.iters = 1;
    gpuals_status st = cuda_als_fit(Cui, Ciu, &p, X, Y, NULL, NULL, form);

    /* Against the CPU after that one iteration, when asked. Rounding alone stays far below
     * CHECK_LIMIT; a wrong result (a kernel that mishandles a size the tests do not reach)
     * lands far above it, and fails the run after its timing is printed. */
    int mismatch = 0;
    if (st == GPUALS_OK && Xcpu) {
        double ex = rel_err(X, Xcpu, (size_t)c->users * c->factors);
        double ey = rel_err(Y, Ycpu, (size_t)c->items * c->factors);
        mismatch = !(ex <= CHECK_LIMIT && ey <= CHECK_LIMIT);
        printf("  %-10s check vs CPU after 1 iteration: user factors %.2e, item factors %.2e "
               "(normwise relative)%s\n", label, ex, ey,
               mismatch ? "  MISMATCH: over " CHECK_LIMIT_TEXT : "");
    }

    /* The timed fit. */
    cuda_fit_stats stats;
    wall_clock wc = {{0}, 0};
    double t0 = 0, wall = 0;
    if (st == GPUALS_OK) {
        als_init_factors(X, c->users, c->factors, p.seed, ALS_SIDE_USERS);
        als_init_factors(Y, c->items, c->factors, p.seed, ALS_SIDE_ITEMS);
        p.iters = c->iters;
        t0 = now_seconds();
        wc.t[0] = t0;
        st = cuda_als_fit_ex(Cui, Ciu, &p, X, Y, on_iteration, &wc, form, &stats);
        wall = now_seconds() - t0;
    }
    free(X);
    free(Y);
    if (st != GPUALS_OK) {
        fprintf(stderr, "gpuals-gpu-bench: %s %s: %s\n", c->name, label, gpuals_last_error());
        return EXIT_FAILED;
    }

    /* Steady state: the iterations after the first; both device and wall-clock views. */
    double flops, bytes;
    iteration_work(c, &flops, &bytes);
    int n = stats.iterations;
    double dev_ms = n > 1 ? (stats.iters_ms - stats.first_iter_ms) / (n - 1) : stats.iters_ms;
    double wall_ms = n > 1 ? (wc.t[n] - wc.t[1]) * 1e3 / (n - 1) : wall * 1e3;
    /* The work model (iteration_work) counts CG's passes; Cholesky's rates are not shown. */
    char rates[64] = "     n/a GB/s eff       n/a GFLOP/s";
    if (solver == GPUALS_SOLVER_CG)
        snprintf(rates, sizeof rates, "%7.1f GB/s eff  %8.1f GFLOP/s",
                 bytes / (dev_ms * 1e-3) / 1e9, flops / (dev_ms * 1e-3) / 1e9);
    printf("  %-10s %8.3f ms/iter (device)  %8.3f ms/iter (wall)  %s  | %d iters: %.1f ms "
           "total (upload %.1f, download %.1f ms), %.0f MiB",
           label, dev_ms, wall_ms, rates, n, wall * 1e3, stats.upload_ms, stats.download_ms,
           (double)stats.device_bytes / 1048576.0);
    if (stats.form_used != form && solver == GPUALS_SOLVER_CG) printf(" [ran as library]");
    printf("\n    per iteration: gram %.3f, users %.3f, items %.3f ms\n", stats.gram_ms / n,
           stats.users_ms / n, stats.items_ms / n);
    fflush(stdout);
    return mismatch ? EXIT_FAILED : 0;
}

/* Generate the data, then run every requested solver and form. */
static int run_config(const bench_config *c)
{
    csr Cui = {0}, Ciu = {0};
    double t0 = now_seconds();
    gpuals_status st = make_data(c, &Cui, &Ciu);
    if (st != GPUALS_OK) {
        fprintf(stderr, "gpuals-gpu-bench: %s: %s\n", c->name, gpuals_last_error());
        return EXIT_FAILED;
    }
    int64_t max_u = 0, max_i = 0;
    for (int64_t u = 0; u < Cui.rows; u++)
        if (csr_row_len(&Cui, u) > max_u) max_u = csr_row_len(&Cui, u);
    for (int64_t i = 0; i < Ciu.rows; i++)
        if (csr_row_len(&Ciu, i) > max_i) max_i = csr_row_len(&Ciu, i);
    printf("%s: %lld x %lld, %lld stored (longest user row %lld, item row %lld; generated in "
           "%.1f s), %d factors, %d CG steps, %d iterations\n",
           c->name, (long long)Cui.rows, (long long)Cui.cols, (long long)Cui.nnz,
           (long long)max_u, (long long)max_i, now_seconds() - t0, c->factors, c->cg_steps,
           c->iters);
    fflush(stdout);

    /* The CPU reference for --check: one iteration from the same start. */
    float *Xc = NULL, *Yc = NULL;
    int rc = 0;
    if (c->check) {
        gpuals_params p;
        gpuals_params_default(&p);
        p.factors = c->factors;
        p.cg_steps = c->cg_steps;
        p.seed = c->seed;
        p.iters = 1;
        p.device = GPUALS_DEVICE_CPU;
        if (init_factors(c, &Xc, &Yc, p.seed) != 0 ||
            als_fit_cpu(&Cui, &Ciu, &p, Xc, Yc, NULL, NULL) != GPUALS_OK) {
            fprintf(stderr, "gpuals-gpu-bench: CPU reference: %s\n", gpuals_last_error());
            rc = EXIT_FAILED;
        }
    }

    /* The forms, then Cholesky (its CPU check uses a Cholesky CPU run: skipped here). */
    if (c->forms & 1)
        rc |= run_one(c, &Cui, &Ciu, GPUALS_SOLVER_CG, CUDA_CG_FUSED, Xc, Yc);
    if (c->forms & 2)
        rc |= run_one(c, &Cui, &Ciu, GPUALS_SOLVER_CG, CUDA_CG_LIBRARY, Xc, Yc);
    if (c->cholesky)
        rc |= run_one(c, &Cui, &Ciu, GPUALS_SOLVER_CHOLESKY, CUDA_CG_FUSED, NULL, NULL);
    free(Xc);
    free(Yc);
    csr_free(&Cui);
    csr_free(&Ciu);
    return rc ? EXIT_FAILED : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Command line                                                                               */
/* ------------------------------------------------------------------------------------------ */

static const bench_config ML20M = {"ml-20m shape", 138493, 26744, 20000263, 128, 3, 6, 3, 0, 1,
                                   42};
static const bench_config ML1M = {"ml-1m shape", 6040, 3706, 1000209, 100, 3, 30, 3, 1, 1, 42};

static void usage(FILE *to)
{
    fprintf(to,
            "usage: gpuals-gpu-bench [--shape UxIxN|ml-20m|ml-1m] [--factors F] [--cg-steps S]\n"
            "                        [--iters N] [--form fused|library|both]\n"
            "                        [--solver cg|cholesky] [--seed S] [--check] [--default]\n"
            "Times cuda_als_fit on in-memory synthetic power-law data. With no options: the\n"
            "ML-20M shape (128 factors, 3 CG steps, 1 + 5 iterations, both CG forms), then the\n"
            "ML-1M shape (100 factors, 30 iterations, both forms and Cholesky), each CG form\n"
            "checked against the CPU after one iteration. Exit: 0 ok, 1 a run failed or\n"
            "differed from the CPU by over " CHECK_LIMIT_TEXT ", 2 usage, 77 no usable GPU.\n");
}

/* Parse argv into c; returns -1 on a usage error, 1 for --help, 0 otherwise. */
static int parse_args(int argc, char **argv, bench_config *c, int *defaults)
{
    *c = ML1M;
    c->name = "custom";
    c->iters = 6;
    c->cholesky = 0;
    c->check = 0;
    *defaults = argc == 1;
    for (int a = 1; a < argc; a++) {
        const char *o = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        long long x, y, z;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) return 1;
        if (!strcmp(o, "--default")) *defaults = 1;
        else if (!strcmp(o, "--check")) c->check = 1;
        else if (!v) return -1;
        else if (!strcmp(o, "--shape") && !strcmp(v, "ml-20m"))
            c->users = ML20M.users, c->items = ML20M.items, c->nnz = ML20M.nnz, a++;
        else if (!strcmp(o, "--shape") && !strcmp(v, "ml-1m"))
            c->users = ML1M.users, c->items = ML1M.items, c->nnz = ML1M.nnz, a++;
        else if (!strcmp(o, "--shape") && sscanf(v, "%lldx%lldx%lld", &x, &y, &z) == 3)
            c->users = x, c->items = y, c->nnz = z, a++;
        else if (!strcmp(o, "--factors")) c->factors = atoi(v), a++;
        else if (!strcmp(o, "--cg-steps")) c->cg_steps = atoi(v), a++;
        else if (!strcmp(o, "--iters")) c->iters = atoi(v), a++;
        else if (!strcmp(o, "--seed")) c->seed = strtoull(v, NULL, 10), a++;
        else if (!strcmp(o, "--form") && !strcmp(v, "fused")) c->forms = 1, a++;
        else if (!strcmp(o, "--form") && !strcmp(v, "library")) c->forms = 2, a++;
        else if (!strcmp(o, "--form") && !strcmp(v, "both")) c->forms = 3, a++;
        else if (!strcmp(o, "--solver") && !strcmp(v, "cg")) c->cholesky = 0, a++;
        else if (!strcmp(o, "--solver") && !strcmp(v, "cholesky"))
            c->forms = 0, c->cholesky = 1, a++;
        else return -1;
    }
    if (c->users < 1 || c->items < 2 || c->nnz < c->users || c->nnz > c->users * (c->items / 2) ||
        c->factors < 1 || c->cg_steps < 1 || c->iters < 1 || c->iters > MAX_ITERS)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    /* Arguments. */
    bench_config c;
    int defaults = 0, pr = parse_args(argc, argv, &c, &defaults);
    if (pr != 0) {
        usage(pr > 0 ? stdout : stderr);
        return pr > 0 ? 0 : EXIT_USAGE;
    }

    /* The device and its ceilings. */
    char name[256];
    if (!cuda_probe(name, sizeof name)) {
        fprintf(stderr, "gpuals-gpu-bench: no usable GPU: %s\n", name);
        return EXIT_NO_GPU;
    }
    double gbs = 0, gflops = 0;
    if (cuda_measure_ceilings(&gbs, &gflops) != GPUALS_OK)
        fprintf(stderr, "gpuals-gpu-bench: ceilings: %s\n", gpuals_last_error());
    printf("device: %s\nceilings: device copy %.0f GB/s (read + write), cuBLAS SGEMM %.0f "
           "GFLOP/s\n", name, gbs, gflops);

    /* The runs. */
    if (!defaults) return run_config(&c);
    int rc = run_config(&ML20M);
    rc |= run_config(&ML1M);
    return rc ? EXIT_FAILED : 0;
}
