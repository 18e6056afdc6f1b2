/*
 * bench.c - gpuals-bench: time every phase of ALS training and querying on one ratings file.
 *
 * One run = one configuration (device, solver, factor count, CG steps). The data is loaded
 * first (load + CSR build, timed over --load-reps repetitions after a warm-up load), then the
 * device's phases run (bench_cpu.c, bench_gpu.c): each phase is warmed up --warmup times and
 * timed --reps times. Each phase is written as one JSON line (stdout, or appended to --json FILE)
 * with median, quartiles, min and max, the floor it is judged against (bench_work.c) and the
 * achieved GB/s and GFLOP/s as a share of the machine's ceilings (bench_ceiling.c), measured in
 * the same run with --ceilings or passed in with --peak-gbps / --peak-gflops.
 *
 * bench/run is the entry point people use: it generates the data, runs one gpuals-bench per
 * configuration, adds the commit, date and machine to every line and prints the table.
 *
 * Exit codes: 0 ok, 1 a library call failed (its message on stderr), 2 usage, 77 a GPU was asked
 * for and none is usable (or the build has no CUDA).
 */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "bench_ceiling.h"
#include "dataset.h"
#include "status.h"

#define BENCH_SCHEMA 1
#define EXIT_FAILED 1
#define EXIT_USAGE 2

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                              */
/* ------------------------------------------------------------------------------------------ */

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int bench_clock_init(bench_clock *c, int cap)
{
    c->t = calloc((size_t)(cap > 0 ? cap : 1), sizeof *c->t);
    c->loss = calloc((size_t)(cap > 0 ? cap : 1), sizeof *c->loss);
    c->n = 0;
    c->cap = cap;
    if (c->t && c->loss) return 0;
    bench_clock_free(c);
    return -1;
}

void bench_clock_free(bench_clock *c)
{
    free(c->t);
    free(c->loss);
    c->t = c->loss = NULL;
    c->n = c->cap = 0;
}

int bench_on_iteration(int iteration, double seconds, double loss, void *user)
{
    bench_clock *c = user;
    (void)iteration;
    (void)seconds;
    if (c->n < c->cap) {
        c->t[c->n] = bench_now();
        c->loss[c->n] = loss;
        c->n++;
    }
    return 0;
}

int bench_fail(const char *what, gpuals_status s)
{
    fprintf(stderr, "gpuals-bench: %s: %s: %s\n", what, gpuals_status_name(s), gpuals_last_error());
    return EXIT_FAILED;
}

void bench_progress(const bench_ctx *ctx, const char *fmt, ...)
{
    if (!ctx->o.verbose) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("gpuals-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bench_record bench_record_none(const char *phase, const char *note)
{
    bench_record r;
    memset(&r, 0, sizeof r);
    r.phase = phase;
    r.gbps = NAN;
    r.gflops = NAN;
    r.final_loss = NAN;
    r.device_mem_mib = NAN;
    r.note = note;
    return r;
}

/* The process's peak resident set so far, MiB (ru_maxrss is in KiB on Linux). */
static double peak_rss_mib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return NAN;
    return (double)ru.ru_maxrss / 1024.0;
}

/* A JSON number, or null for a value that is not finite or was flagged absent. */
static json_t *num_or_null(double v, int present)
{
    if (!present || !isfinite(v)) return json_null();
    return json_real(v);
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static const char *device_text(gpuals_device d) { return d == GPUALS_DEVICE_GPU ? "gpu" : "cpu"; }

static const char *solver_text(gpuals_solver s)
{
    return s == GPUALS_SOLVER_CHOLESKY ? "cholesky" : "cg";
}

bench_work bench_iteration_work(const bench_ctx *ctx, int grams, int users, int items)
{
    int f = ctx->p.factors, s = ctx->p.cg_steps;
    int cg = ctx->p.solver == GPUALS_SOLVER_CG;
    bench_work parts[4], w = {0.0, 0.0};
    int on[4] = {grams, users, grams, items};

    /* Gram of Y, users' solves, Gram of X, items' solves. */
    parts[0] = bench_work_gram(ctx->items, f);
    parts[1] = cg ? bench_work_half_cg(ctx->users, ctx->items, ctx->nnz, f, s)
                  : bench_work_half_cholesky(ctx->users, ctx->items, ctx->nnz, f);
    parts[2] = bench_work_gram(ctx->users, f);
    parts[3] = cg ? bench_work_half_cg(ctx->items, ctx->users, ctx->nnz, f, s)
                  : bench_work_half_cholesky(ctx->items, ctx->users, ctx->nnz, f);
    for (int k = 0; k < 4; k++) {
        if (!on[k]) continue;
        w.bytes += parts[k].bytes;
        w.flops += parts[k].flops;
    }
    return w;
}

/* ------------------------------------------------------------------------------------------ */
/* Records                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Settings and shape: the fields every record shares. The CPU's ceilings name the CPU even in
 * a GPU run. */
static void put_settings(const bench_ctx *ctx, const char *phase, json_t *o)
{
    const bench_opts *b = &ctx->o;
    int have_data = ctx->data != NULL;
    int cpu_ceiling = strncmp(phase, "ceiling_", 8) == 0 && strncmp(phase, "ceiling_dev", 11);
    gpuals_device device = cpu_ceiling ? GPUALS_DEVICE_CPU : b->device;
    json_object_set_new(o, "schema", json_integer(BENCH_SCHEMA));
    json_object_set_new(o, "impl", json_string("gpu-als"));
    json_object_set_new(o, "impl_version", json_string(GPUALS_VERSION));
    json_object_set_new(o, "device", json_string(device_text(device)));
    json_object_set_new(o, "device_name",
                        json_string(cpu_ceiling ? ctx->cpu_name : ctx->device_name));
    json_object_set_new(o, "solver", have_data ? json_string(solver_text(b->solver)) : json_null());
    json_object_set_new(o, "factors", have_data ? json_integer(b->factors) : json_null());
    json_object_set_new(o, "cg_steps",
                        have_data && b->solver == GPUALS_SOLVER_CG ? json_integer(b->cg_steps)
                                                                   : json_null());
    json_object_set_new(o, "cg_form",
                        b->device == GPUALS_DEVICE_GPU
                            ? json_string(b->cg_form ? "library" : "fused")
                            : json_null());
    json_object_set_new(o, "threads", json_integer(b->threads));
    json_object_set_new(o, "warmup", json_integer(b->warmup));
    json_object_set_new(o, "reg", json_real(b->reg));
    json_object_set_new(o, "alpha", json_real(b->alpha));
    json_object_set_new(o, "seed", json_integer((json_int_t)b->seed));
    json_object_set_new(o, "topn", json_integer(b->topn));
    json_object_set_new(o, "data", have_data ? str_or_null(b->data) : json_null());
    json_object_set_new(o, "data_bytes", have_data ? json_integer(ctx->file_bytes) : json_null());
    json_object_set_new(o, "users", have_data ? json_integer(ctx->users) : json_null());
    json_object_set_new(o, "items", have_data ? json_integer(ctx->items) : json_null());
    json_object_set_new(o, "nnz", have_data ? json_integer(ctx->nnz) : json_null());
}

/* Timing statistics, floor, rates and shares of the ceilings. */
static void put_measures(const bench_ctx *ctx, const bench_record *r, json_t *o)
{
    int timed = r->samples != NULL && r->n > 0;
    bench_stats st = timed ? bench_stats_of(r->samples, r->n) : (bench_stats){0, 0, 0, 0, 0};
    int host_phase = strncmp(r->phase, "ceiling_", 8) == 0 || strcmp(r->phase, "load") == 0;
    int on_gpu = ctx->o.device == GPUALS_DEVICE_GPU && !host_phase;
    int dev_ceiling = strncmp(r->phase, "ceiling_dev", 11) == 0;
    double peak_bw = (on_gpu || dev_ceiling) ? ctx->o.peak_dev_gbps : ctx->o.peak_gbps;
    double peak_fl = (on_gpu || dev_ceiling) ? ctx->o.peak_dev_gflops : ctx->o.peak_gflops;

    /* Rates from the median time, unless they were measured elsewhere. */
    int rated = timed && st.median > 0.0;
    double gbps = rated ? r->work.bytes / st.median * 1e-9 : NAN;
    double gflops = rated ? r->work.flops / st.median * 1e-9 : NAN;
    int has_bytes = r->work.bytes > 0.0, has_flops = r->work.flops > 0.0;
    if (isfinite(r->gbps)) gbps = r->gbps, has_bytes = rated = 1;
    if (isfinite(r->gflops)) gflops = r->gflops, has_flops = rated = 1;

    json_object_set_new(o, "reps", json_integer(timed ? r->n : 0));
    json_object_set_new(o, "median_s", num_or_null(st.median, timed));
    json_object_set_new(o, "min_s", num_or_null(st.min, timed));
    json_object_set_new(o, "max_s", num_or_null(st.max, timed));
    json_object_set_new(o, "q1_s", num_or_null(st.q1, timed));
    json_object_set_new(o, "q3_s", num_or_null(st.q3, timed));
    json_object_set_new(o, "bytes", num_or_null(r->work.bytes, has_bytes));
    json_object_set_new(o, "flops", num_or_null(r->work.flops, has_flops));
    json_object_set_new(o, "gbps", num_or_null(gbps, has_bytes && rated));
    json_object_set_new(o, "gflops", num_or_null(gflops, has_flops && rated));
    json_object_set_new(o, "peak_gbps", num_or_null(peak_bw, peak_bw > 0.0));
    json_object_set_new(o, "peak_gflops", num_or_null(peak_fl, peak_fl > 0.0));
    json_object_set_new(o, "pct_peak_bw",
                        num_or_null(100.0 * gbps / peak_bw, has_bytes && rated && peak_bw > 0.0));
    json_object_set_new(o, "pct_peak_flops",
                        num_or_null(100.0 * gflops / peak_fl, has_flops && rated && peak_fl > 0.0));
}

int bench_emit(bench_ctx *ctx, const bench_record *r)
{
    json_t *o = json_object();
    if (!o) {
        fprintf(stderr, "gpuals-bench: out of memory writing a record\n");
        return -1;
    }

    /* Fields in a fixed order: what ran, how long, against what, and what it cost. */
    json_object_set_new(o, "phase", json_string(r->phase));
    put_settings(ctx, r->phase, o);
    put_measures(ctx, r, o);
    json_object_set_new(o, "peak_rss_mib", num_or_null(peak_rss_mib(), 1));
    json_object_set_new(o, "device_mem_mib", num_or_null(r->device_mem_mib, 1));
    json_object_set_new(o, "final_loss", num_or_null(r->final_loss, 1));
    json_object_set_new(o, "loss_iters",
                        r->loss_iters > 0 ? json_integer(r->loss_iters) : json_null());
    json_object_set_new(o, "note", json_string(r->note ? r->note : ""));

    /* One compact line, flushed, so a crash later loses nothing already measured. */
    int rc = json_dumpf(o, ctx->out, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (rc != 0 || fputc('\n', ctx->out) == EOF || fflush(ctx->out) != 0) {
        fprintf(stderr, "gpuals-bench: cannot write a record: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Options                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static void print_usage(FILE *f)
{
    fputs("usage: gpuals-bench --data FILE [options]\n"
          "       gpuals-bench --ceilings-only [--device cpu|gpu] [options]\n"
          "\n"
          "Times each phase of ALS training and querying on one ratings file and writes one\n"
          "JSON line per phase (see bench/README.md for the fields). bench/run drives it.\n"
          "\n"
          "  --data FILE          ratings file (any format gpu-als reads)\n"
          "  --format F           auto (default), dat, mlcsv, udata, delim, mm\n"
          "  --device D           cpu (default) or gpu\n"
          "  --solver S           cg (default) or cholesky\n"
          "  --factors F          factor count (default 100)\n"
          "  --cg-steps S         CG steps per row (default 3)\n"
          "  --cg-form F          GPU CG form: fused (default) or library\n"
          "  --reps R             timed repetitions of each phase (default 5)\n"
          "  --warmup W           untimed warm-up runs of each phase (default 1)\n"
          "  --load-reps R        timed loads after the first (default: --reps; 0 skips)\n"
          "  --threads T          threads (default: all cores)\n"
          "  --topn N             n of top-n and similar items (default 10)\n"
          "  --fit-iters N        iterations of the fit phase (default 15)\n"
          "  --phases LIST        comma list of load,gram,iter,half,loss,topn,similar,fit,\n"
          "                       upload, or all (default: all but fit on the CPU; all on a GPU)\n"
          "  --reg L, --alpha A   regularisation (0.01) and confidence scale (1)\n"
          "  --seed S             initial-factor seed (default 42)\n"
          "  --ceilings           measure the machine's ceilings first, in this process\n"
          "  --ceilings-only      measure the --device's ceilings, write them, and stop\n"
          "  --stream-mib M       size of each STREAM array (default 512)\n"
          "  --gemm-n N           size of the ceiling sgemm (default 4096)\n"
          "  --peak-gbps X        CPU bandwidth ceiling measured elsewhere (GB/s)\n"
          "  --peak-gflops X      CPU sgemm ceiling measured elsewhere (GFLOP/s)\n"
          "  --peak-dev-gbps X    GPU copy ceiling (GB/s)\n"
          "  --peak-dev-gflops X  GPU GEMM ceiling (GFLOP/s)\n"
          "  --json FILE          append the records to FILE instead of stdout\n"
          "  -v, --verbose        progress on stderr\n"
          "  -h, --help           this text\n"
          "\n"
          "exit codes: 0 ok, 1 a library call failed, 2 usage, 77 no usable GPU\n",
          f);
}

/* Print a usage error and return the usage exit code. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gpuals-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\ntry 'gpuals-bench --help'\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

/* Parse a whole-string integer in [lo, hi]; 0 on success. */
static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

/* Parse a whole-string finite number >= lo; 0 on success. */
static int parse_double(const char *s, double lo, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo) return -1;
    *out = v;
    return 0;
}

/* Parse a comma list of phase names into a BENCH_PH_* mask; 0 on success. */
static int parse_phases(const char *s, unsigned *out)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {
        {"load", BENCH_PH_LOAD},       {"gram", BENCH_PH_GRAM},
        {"iter", BENCH_PH_ITER},       {"half", BENCH_PH_HALF},
        {"loss", BENCH_PH_LOSS},       {"topn", BENCH_PH_TOPN},
        {"similar", BENCH_PH_SIMILAR}, {"fit", BENCH_PH_FIT},
        {"upload", BENCH_PH_UPLOAD},   {"all", ~0u},
    };
    unsigned mask = 0;
    const char *p = s;
    while (*p) {
        size_t len = strcspn(p, ",");
        size_t k, count = sizeof names / sizeof names[0];
        for (k = 0; k < count; k++) {
            if (strlen(names[k].name) == len && strncmp(p, names[k].name, len) == 0) break;
        }
        if (k == count) return -1;
        mask |= names[k].bit;
        p += len;
        if (*p == ',') p++;
    }
    if (!mask) return -1;
    *out = mask;
    return 0;
}

static int parse_format(const char *s, gpuals_format *out)
{
    static const char *names[] = {"auto", "dat", "mlcsv", "udata", "delim", "mm"};
    static const gpuals_format formats[] = {GPUALS_FORMAT_AUTO,  GPUALS_FORMAT_DAT,
                                            GPUALS_FORMAT_MLCSV, GPUALS_FORMAT_UDATA,
                                            GPUALS_FORMAT_DELIM, GPUALS_FORMAT_MM};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (strcmp(s, names[k]) == 0) {
            *out = formats[k];
            return 0;
        }
    }
    return -1;
}

static void default_options(bench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->device = GPUALS_DEVICE_CPU;
    o->solver = GPUALS_SOLVER_CG;
    o->factors = 100;
    o->cg_steps = 3;
    o->reps = 5;
    o->warmup = 1;
    o->load_reps = -1;
    o->threads = omp_get_num_procs();
    o->topn = 10;
    o->fit_iters = 15;
    o->seed = 42;
    o->reg = 0.01;
    o->alpha = 1.0;
    o->stream_mib = 512.0;
    o->gemm_n = 4096;
}

/* Apply one option; 0, or the usage exit code after printing why. */
static int apply_option(bench_opts *o, int c, const char *arg)
{
    int bad = 0;
    switch (c) {
    case 'd': o->data = arg; break;
    case 'F': bad = parse_format(arg, &o->format); break;
    case 'D':
        if (strcmp(arg, "cpu") == 0)
            o->device = GPUALS_DEVICE_CPU;
        else if (strcmp(arg, "gpu") == 0)
            o->device = GPUALS_DEVICE_GPU;
        else
            bad = 1;
        break;
    case 'S':
        if (strcmp(arg, "cg") == 0)
            o->solver = GPUALS_SOLVER_CG;
        else if (strcmp(arg, "cholesky") == 0)
            o->solver = GPUALS_SOLVER_CHOLESKY;
        else
            bad = 1;
        break;
    case 'f': bad = parse_int(arg, 1, 65536, &o->factors); break;
    case 's': bad = parse_int(arg, 1, 65536, &o->cg_steps); break;
    case 'C':
        if (strcmp(arg, "fused") == 0)
            o->cg_form = 0;
        else if (strcmp(arg, "library") == 0)
            o->cg_form = 1;
        else
            bad = 1;
        break;
    case 'r': bad = parse_int(arg, 1, 100000, &o->reps); break;
    case 'w': bad = parse_int(arg, 0, 100000, &o->warmup); break;
    case 'L': bad = parse_int(arg, 0, 100000, &o->load_reps); break;
    case 't': bad = parse_int(arg, 1, 4096, &o->threads); break;
    case 'n': bad = parse_int(arg, 1, 100000, &o->topn); break;
    case 'i': bad = parse_int(arg, 1, 100000, &o->fit_iters); break;
    case 'P': bad = parse_phases(arg, &o->phases); break;
    case 'R': bad = parse_double(arg, 0.0, &o->reg); break;
    case 'A': bad = parse_double(arg, 0.0, &o->alpha); break;
    case 'e': {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(arg, &end, 10);
        bad = errno || end == arg || *end || arg[0] == '-';
        o->seed = (uint64_t)v;
        break;
    }
    case 'c': o->ceilings = 1; break;
    case 'o': o->ceilings_only = 1; break;
    case 'm': bad = parse_double(arg, 0.001, &o->stream_mib); break;
    case 'g': bad = parse_int(arg, 16, 65536, &o->gemm_n); break;
    case 'b': bad = parse_double(arg, 0.0, &o->peak_gbps); break;
    case 'p': bad = parse_double(arg, 0.0, &o->peak_gflops); break;
    case 'B': bad = parse_double(arg, 0.0, &o->peak_dev_gbps); break;
    case 'Q': bad = parse_double(arg, 0.0, &o->peak_dev_gflops); break;
    case 'j': o->json_path = arg; break;
    case 'v': o->verbose = 1; break;
    default: return usage_error("unknown option");
    }
    if (bad) return usage_error("bad value '%s' for an option", arg ? arg : "");
    return 0;
}

/* Parse argv into o; 0, -1 after printing --help, or the usage exit code. */
static int parse_options(int argc, char **argv, bench_opts *o)
{
    static const struct option longs[] = {
        {"data", required_argument, 0, 'd'},
        {"format", required_argument, 0, 'F'},
        {"device", required_argument, 0, 'D'},
        {"solver", required_argument, 0, 'S'},
        {"factors", required_argument, 0, 'f'},
        {"cg-steps", required_argument, 0, 's'},
        {"cg-form", required_argument, 0, 'C'},
        {"reps", required_argument, 0, 'r'},
        {"warmup", required_argument, 0, 'w'},
        {"load-reps", required_argument, 0, 'L'},
        {"threads", required_argument, 0, 't'},
        {"topn", required_argument, 0, 'n'},
        {"fit-iters", required_argument, 0, 'i'},
        {"phases", required_argument, 0, 'P'},
        {"reg", required_argument, 0, 'R'},
        {"alpha", required_argument, 0, 'A'},
        {"seed", required_argument, 0, 'e'},
        {"ceilings", no_argument, 0, 'c'},
        {"ceilings-only", no_argument, 0, 'o'},
        {"stream-mib", required_argument, 0, 'm'},
        {"gemm-n", required_argument, 0, 'g'},
        {"peak-gbps", required_argument, 0, 'b'},
        {"peak-gflops", required_argument, 0, 'p'},
        {"peak-dev-gbps", required_argument, 0, 'B'},
        {"peak-dev-gflops", required_argument, 0, 'Q'},
        {"json", required_argument, 0, 'j'},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };

    /* Options in any order; every value checked. */
    default_options(o);
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "vh", longs, NULL)) != -1) {
        if (c == 'h') {
            print_usage(stdout);
            return -1;
        }
        if (c == '?') return usage_error("unknown option or missing value: %s", argv[optind - 1]);
        int rc = apply_option(o, c, optarg);
        if (rc) return rc;
    }
    if (optind < argc) return usage_error("unexpected argument '%s'", argv[optind]);

    /* Cross-option checks and defaults that depend on other options. */
    if (!o->ceilings_only && !o->data) return usage_error("--data FILE is required");
    if (o->load_reps < 0) o->load_reps = o->reps;
    if (!o->phases) {
        o->phases = ~0u & ~(unsigned)BENCH_PH_FIT;
        if (o->device == GPUALS_DEVICE_GPU) o->phases = ~0u;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Ceilings and load                                                                          */
/* ------------------------------------------------------------------------------------------ */

/* The CPU model from /proc/cpuinfo ("unknown CPU" where there is none). */
static void read_cpu_model(char *out, size_t len)
{
    snprintf(out, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *v = strchr(line, ':');
        if (!v) break;
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        snprintf(out, len, "%.*s", (int)strcspn(v, "\n"), v);
        break;
    }
    fclose(f);
}

/* Measure the CPU ceilings, record them in ctx's options and emit one record each. */
static int measure_cpu_ceilings(bench_ctx *ctx)
{
    bench_ceilings cl;
    bench_opts *o = &ctx->o;
    bench_progress(ctx, "measuring CPU ceilings (%d threads, %.0f MiB arrays, sgemm %d)",
                   o->threads, o->stream_mib, o->gemm_n);
    if (bench_measure_cpu_ceilings(o->threads, o->stream_mib, o->gemm_n, o->reps, &cl) != 0) {
        fprintf(stderr, "gpuals-bench: cannot allocate the ceiling arrays: %s\n", strerror(errno));
        return EXIT_FAILED;
    }
    o->peak_gbps = cl.copy_gbps > cl.triad_gbps ? cl.copy_gbps : cl.triad_gbps;
    o->peak_gflops = cl.sgemm_gflops;

    /* One record per ceiling; the "time" is the best of the repetitions. */
    double ab = (double)cl.array_bytes, dn = cl.gemm_n;
    char note[160];
    snprintf(note, sizeof note, "best of %d; %.0f MiB arrays; STREAM byte counts", o->reps,
             ab / 1048576.0);
    bench_record r = bench_record_none("ceiling_copy", note);
    r.samples = &cl.copy_s;
    r.n = 1;
    r.work.bytes = 2.0 * ab;
    if (bench_emit(ctx, &r)) return EXIT_FAILED;
    r.phase = "ceiling_triad";
    r.samples = &cl.triad_s;
    r.work.bytes = 3.0 * ab;
    r.work.flops = 2.0 * ab / 8.0;
    if (bench_emit(ctx, &r)) return EXIT_FAILED;
    snprintf(note, sizeof note, "best of %d; cblas_sgemm %d x %d x %d, %d OpenBLAS threads",
             o->reps, cl.gemm_n, cl.gemm_n, cl.gemm_n, cl.threads);
    r = bench_record_none("ceiling_sgemm", note);
    r.samples = &cl.sgemm_s;
    r.n = 1;
    r.work.flops = 2.0 * dn * dn * dn;
    r.work.bytes = 3.0 * dn * dn * 4.0;
    return bench_emit(ctx, &r) ? EXIT_FAILED : 0;
}

/* One load: read the file and build both CSRs, then both confidence CSRs. On success the
 * caller owns *d, *cui and *ciu. */
static gpuals_status load_once(const bench_ctx *ctx, gpuals_data **d, csr *cui, csr *ciu)
{
    gpuals_load_options lo;
    gpuals_load_options_default(&lo);
    lo.ratings_path = ctx->o.data;
    lo.format = ctx->o.format;
    memset(cui, 0, sizeof *cui);
    memset(ciu, 0, sizeof *ciu);

    gpuals_status s = gpuals_data_load(&lo, d);
    if (s != GPUALS_OK) return s;
    s = dataset_confidence(&(*d)->ratings, &ctx->p, cui);
    if (s == GPUALS_OK) s = dataset_confidence(&(*d)->ratings_t, &ctx->p, ciu);
    if (s != GPUALS_OK) {
        csr_free(cui);
        csr_free(ciu);
        gpuals_data_free(*d);
        *d = NULL;
    }
    return s;
}

/* Load the data for the run (the first load is the warm-up, and is kept), then time
 * --load-reps further loads. */
static int load_data(bench_ctx *ctx)
{
    struct stat st;
    if (stat(ctx->o.data, &st) != 0) {
        fprintf(stderr, "gpuals-bench: %s: %s\n", ctx->o.data, strerror(errno));
        return EXIT_FAILED;
    }
    ctx->file_bytes = (int64_t)st.st_size;

    /* The kept load. */
    bench_progress(ctx, "loading %s", ctx->o.data);
    gpuals_status s = load_once(ctx, &ctx->data, &ctx->Cui, &ctx->Ciu);
    if (s != GPUALS_OK) return bench_fail(ctx->o.data, s);
    ctx->users = ctx->Cui.rows;
    ctx->items = ctx->Cui.cols;
    ctx->nnz = ctx->Cui.nnz;
    if (!(ctx->o.phases & BENCH_PH_LOAD) || ctx->o.load_reps == 0) return 0;

    /* Timed loads, each freed at once. */
    int n = ctx->o.load_reps;
    double *t = calloc((size_t)n, sizeof *t);
    if (!t) return bench_fail("load", gpuals_fail(GPUALS_ERR_NOMEM, "load timings"));
    for (int k = 0; k < n; k++) {
        gpuals_data *d;
        csr cui, ciu;
        double t0 = bench_now();
        s = load_once(ctx, &d, &cui, &ciu);
        t[k] = bench_now() - t0;
        if (s != GPUALS_OK) {
            free(t);
            return bench_fail(ctx->o.data, s);
        }
        csr_free(&cui);
        csr_free(&ciu);
        gpuals_data_free(d);
    }
    bench_record r = bench_record_none("load", "read + both CSRs + both confidence CSRs; "
                                               "file in the page cache");
    r.samples = t;
    r.n = n;
    r.work = bench_work_load(ctx->file_bytes, ctx->users, ctx->items, ctx->nnz);
    int rc = bench_emit(ctx, &r) ? EXIT_FAILED : 0;
    free(t);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* main                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* Training settings from the options: the `implicit` defaults except where the options say. */
static void settings_from_options(bench_ctx *ctx)
{
    gpuals_params_default(&ctx->p);
    ctx->p.factors = ctx->o.factors;
    ctx->p.solver = ctx->o.solver;
    ctx->p.cg_steps = ctx->o.cg_steps;
    ctx->p.reg = ctx->o.reg;
    ctx->p.alpha = ctx->o.alpha;
    ctx->p.seed = ctx->o.seed;
    ctx->p.threads = ctx->o.threads;
    ctx->p.compute_loss = 0;
    ctx->p.device = ctx->o.device;
    ctx->p.dtype = GPUALS_DTYPE_FLOAT32;
}

/* Open the output, measure ceilings if asked, load, run the device's phases. */
static int run(bench_ctx *ctx)
{
    bench_opts *o = &ctx->o;
    omp_set_num_threads(o->threads);
    read_cpu_model(ctx->cpu_name, sizeof ctx->cpu_name);
    memcpy(ctx->device_name, ctx->cpu_name, sizeof ctx->device_name);
    settings_from_options(ctx);

    /* A GPU run needs a usable device before anything is measured or written. */
    int rc, gpu = o->device == GPUALS_DEVICE_GPU;
    if (gpu && (rc = bench_gpu_open(ctx)) != 0) return rc;

    /* --ceilings-only: the chosen device's ceilings alone. */
    if (o->ceilings_only) return gpu ? bench_gpu_ceilings(ctx) : measure_cpu_ceilings(ctx);

    /* Ceilings first, so every later record carries its share of them (the CPU's judge the
     * host phases of a GPU run). */
    if (o->ceilings) {
        if ((rc = measure_cpu_ceilings(ctx)) != 0) return rc;
        if (gpu && (rc = bench_gpu_ceilings(ctx)) != 0) return rc;
    }

    /* Data, then the phases of the chosen device. */
    rc = load_data(ctx);
    if (rc) return rc;
    return o->device == GPUALS_DEVICE_GPU ? bench_run_gpu(ctx) : bench_run_cpu(ctx);
}

int main(int argc, char **argv)
{
    bench_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    int rc = parse_options(argc, argv, &ctx.o);
    if (rc == -1) return 0;
    if (rc) return rc;

    /* Records go to stdout or are appended to --json FILE. */
    ctx.out = stdout;
    if (ctx.o.json_path) {
        ctx.out = fopen(ctx.o.json_path, "a");
        if (!ctx.out) {
            fprintf(stderr, "gpuals-bench: %s: %s\n", ctx.o.json_path, strerror(errno));
            return EXIT_FAILED;
        }
    }

    rc = run(&ctx);

    /* Release everything the run holds. */
    free(ctx.X);
    free(ctx.Y);
    csr_free(&ctx.Cui);
    csr_free(&ctx.Ciu);
    gpuals_data_free(ctx.data);
    if (ctx.out != stdout && fclose(ctx.out) != 0 && rc == 0) {
        fprintf(stderr, "gpuals-bench: %s: %s\n", ctx.o.json_path, strerror(errno));
        rc = EXIT_FAILED;
    }
    return rc;
}
