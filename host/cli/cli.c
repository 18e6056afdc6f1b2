/*
 * cli.c - the pieces every gpu-als subcommand shares: option parsing into cli_opts, messages
 * on stderr, loading the data (or the embedded default), per-iteration progress and training.
 */
#include "cli.h"

#include "dataset.h"
#include "model.h"
#include "query.h"
#include "status.h"
#include "tmppath.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef GPUALS_DEFAULT_DATA_DIR
#define GPUALS_DEFAULT_DATA_DIR "data/ml-latest-small"
#endif

/* ------------------------------------------------------------------------------------------ */
/* Help text                                                                                  */
/* ------------------------------------------------------------------------------------------ */

const char cli_help_general[] =
    "General options:\n"
    "  -h, --help              show this help and exit\n"
    "  -q, --quiet             print only results and errors\n"
    "  -v, --verbose           print more detail on stderr\n"
    "      --json              print results as one JSON document on stdout\n"
    "      --device D          auto (default: a usable GPU, else the CPU), cpu or gpu (exit\n"
    "                          code 11 before any work when no GPU is usable); steps with\n"
    "                          no GPU implementation run on the CPU (-v says so)\n"
    "      --threads N         CPU threads (default: all cores)\n";

const char cli_help_data[] =
    "Data options (default: the embedded MovieLens ml-latest-small):\n"
    "      --ratings FILE      ratings/interactions: MovieLens ratings.dat/ratings.csv, u.data,\n"
    "                          delimited 'user item [value]', or Matrix Market\n"
    "      --movies FILE       titles: movies.csv, movies.dat or u.item\n"
    "      --format F          auto (default), dat, mlcsv, udata, delim or mm\n"
    "      --min-rating R      keep ratings >= R\n"
    "      --skip-bad-lines    count and skip malformed lines of the ratings file instead of\n"
    "                          stopping\n";

const char cli_help_train[] =
    "Training options (defaults as the `implicit` library):\n"
    "      --factors N         latent factors (100)\n"
    "      --reg L             regularization lambda (0.01)\n"
    "      --reg-scale S       none (default) or frequency (lambda * interactions, as Spark)\n"
    "      --alpha A           confidence scale (1)\n"
    "      --confidence C      implicit: c = alpha*r (default), hu: c = 1 + alpha*r,\n"
    "                          log: c = 1 + alpha*log(1 + r/eps)\n"
    "      --eps E             eps of the log confidence (1)\n"
    "      --iters N           iterations (15)\n"
    "      --solver S          cg (default) or cholesky\n"
    "      --cg-steps N        conjugate-gradient steps per row and iteration (3)\n"
    "      --seed N            seed of the initial factors (0)\n"
    "      --dtype T           float32 (default) or float64 (CPU only)\n"
    "      --loss              compute the training loss every iteration\n"
    "      --history FILE      write iteration, its seconds and loss as CSV (implies --loss)\n";

const char cli_help_model[] =
    "Model options:\n"
    "      --model DIR         a model saved by `gpu-als train --out DIR` (default: train one\n"
    "                          on the data options first)\n";

const char cli_help_split[] =
    "Split options:\n"
    "      --split S           random (default: each interaction independently) or\n"
    "                          leave-k-out (K per user with more than K+1 interactions)\n"
    "      --test-fraction F   random split: share of interactions held out (0.2)\n"
    "      --leave-k K         leave-k-out split: interactions held out per user (1)\n"
    "      --split-seed N      seed of the split (0)\n";

const char cli_help_exit_codes[] =
    "Exit codes:\n"
    "   0  success\n"
    "   2  usage error: unknown option or invalid value\n"
    "   3  i/o error: a file is missing, unreadable, a directory or cannot be written\n"
    "   4  parse error: a malformed input line (file:line in the message)\n"
    "   5  no data: an empty file, every rating filtered out, or a user with no interactions\n"
    "   6  inputs disagree: titles vs ratings, or a damaged model directory\n"
    "   7  not found: unknown user, item or title (closest matches listed)\n"
    "   8  ambiguous title (candidates listed)\n"
    "   9  numerical failure: non-finite values or a singular system\n"
    "  10  out of memory (host or GPU)\n"
    "  11  no usable GPU for --device gpu\n"
    "  12  GPU error (CUDA, cuBLAS, cuSPARSE or cuSOLVER)\n"
    "  70  internal error\n";

/* ------------------------------------------------------------------------------------------ */
/* Messages                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* The command whose options are being parsed, for the --help pointer of value errors. */
static const char *parsing_cmd;

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    if (cmd == NULL) cmd = parsing_cmd;
    va_list ap;
    fputs("gpu-als: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'gpu-als %s%s--help'.\n", cmd ? cmd : "", cmd ? " " : "");
    return CLI_EXIT_USAGE;
}

int cli_fail(gpuals_status s)
{
    const char *msg = gpuals_last_error();
    if (msg[0] != '\0')
        fprintf(stderr, "gpu-als: %s\n", msg);
    else
        fprintf(stderr, "gpu-als: %s\n", gpuals_status_name(s));
    return gpuals_status_exit_code(s);
}

void cli_note(const char *fmt, ...)
{
    va_list ap;
    fputs("gpu-als: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

const char *cli_plural(long long n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* ------------------------------------------------------------------------------------------ */
/* Option values                                                                              */
/* ------------------------------------------------------------------------------------------ */

int cli_parse_int(const char *opt, const char *arg, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0')
        return cli_usage_error(NULL, "--%s expects a whole number, not '%s'", opt, arg);
    if (v < min || v > max)
        return cli_usage_error(NULL, "--%s must be between %ld and %ld, not %ld", opt, min, max,
                               v);
    *out = v;
    return 0;
}

int cli_parse_double(const char *opt, const char *arg, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno != 0 || end == arg || *end != '\0' || !isfinite(v))
        return cli_usage_error(NULL, "--%s expects a finite number, not '%s'", opt, arg);
    if (v < min || v > max)
        return cli_usage_error(NULL, "--%s must be between %g and %g, not %g", opt, min, max, v);
    *out = v;
    return 0;
}

int cli_parse_seed(const char *opt, const char *arg, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-')
        return cli_usage_error(NULL, "--%s expects a non-negative whole number, not '%s'", opt,
                               arg);
    *out = (uint64_t)v;
    return 0;
}

int cli_handle_split_option(int opt, const char *arg, split_options *s)
{
    long n;
    int rc;
    switch (opt) {
    case CLI_OPT_SPLIT:
        if (split_kind_parse(arg, &s->kind) != GPUALS_OK)
            return cli_usage_error(NULL, "--split must be random or leave-k-out, not '%s'", arg);
        return 0;
    case CLI_OPT_TEST_FRACTION:
        return cli_parse_double("test-fraction", arg, 0.0, 1.0, &s->test_fraction);
    case CLI_OPT_LEAVE_K:
        if ((rc = cli_parse_int("leave-k", arg, 1, 1000000, &n)) == 0) s->leave_k = (int)n;
        return rc;
    case CLI_OPT_SPLIT_SEED: return cli_parse_seed("split-seed", arg, &s->seed);
    default: return 1;
    }
}

/* Index of arg in the NULL-terminated list names, or a usage error naming the choices. */
static int parse_choice(const char *opt, const char *arg, const char *const *names, int *out)
{
    char choices[256] = "";
    for (int k = 0; names[k] != NULL; k++) {
        if (strcmp(arg, names[k]) == 0) {
            *out = k;
            return 0;
        }
        if (k > 0) strncat(choices, ", ", sizeof choices - strlen(choices) - 1);
        strncat(choices, names[k], sizeof choices - strlen(choices) - 1);
    }
    return cli_usage_error(NULL, "--%s must be one of %s, not '%s'", opt, choices, arg);
}

/* The long name of a shared option value (for messages). */
static const char *cli_option_name(int opt)
{
    static const struct option all[] = {CLI_OPTIONS_GENERAL, CLI_OPTIONS_DATA, CLI_OPTIONS_TRAIN,
                                        CLI_OPTIONS_MODEL};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        if (all[k].val == opt) return all[k].name;
    return "?";
}

void cli_opts_init(cli_opts *o)
{
    memset(o, 0, sizeof *o);
    gpuals_load_options_default(&o->load);
    gpuals_params_default(&o->params);
    o->verbosity = 1;
}

int cli_handle_option(cli_opts *o, int opt, const char *arg)
{
    static const char *const formats[] = {"auto", "dat", "mlcsv", "udata", "delim", "mm", NULL};
    static const char *const devices[] = {"auto", "cpu", "gpu", NULL};
    static const char *const solvers[] = {"cg", "cholesky", NULL};
    static const char *const scales[] = {"none", "frequency", NULL};
    static const char *const confidences[] = {"implicit", "hu", "log", NULL};
    static const char *const dtypes[] = {"float32", "float64", NULL};
    gpuals_params *p = &o->params;
    long n;
    int k, rc = 0;

    /* Data and training options mean nothing to a saved model (cli_model refuses the mix). */
    if (opt >= CLI_OPT_RATINGS && opt <= CLI_OPT_HISTORY && o->data_option == NULL)
        o->data_option = cli_option_name(opt);

    switch (opt) {
    case 'h': return -1;
    case 'q': o->verbosity = 0; return 0;
    case 'v': o->verbosity = 2; return 0;
    case CLI_OPT_JSON: o->json = 1; return 0;
    case CLI_OPT_DEVICE:
        if ((rc = parse_choice("device", arg, devices, &k)) == 0) p->device = (gpuals_device)k;
        return rc;
    case CLI_OPT_THREADS:
        if ((rc = cli_parse_int("threads", arg, 0, GPUALS_MAX_THREADS, &n)) == 0)
            p->threads = (int)n;
        return rc;

    case CLI_OPT_RATINGS: o->load.ratings_path = arg; o->have_ratings = 1; return 0;
    case CLI_OPT_MOVIES: o->load.titles_path = arg; return 0;
    case CLI_OPT_FORMAT:
        if ((rc = parse_choice("format", arg, formats, &k)) == 0)
            o->load.format = (gpuals_format)k;
        return rc;
    case CLI_OPT_MIN_RATING:
        o->have_min_rating = 1;
        return cli_parse_double("min-rating", arg, -1e30, 1e30, &o->load.min_rating);
    case CLI_OPT_SKIP_BAD: o->load.skip_bad_lines = 1; return 0;

    case CLI_OPT_FACTORS:
        if ((rc = cli_parse_int("factors", arg, 1, 4096, &n)) == 0) p->factors = (int)n;
        return rc;
    case CLI_OPT_REG: return cli_parse_double("reg", arg, 0, 1e12, &p->reg);
    case CLI_OPT_REG_SCALE:
        if ((rc = parse_choice("reg-scale", arg, scales, &k)) == 0)
            p->reg_scale = (gpuals_reg_scale)k;
        return rc;
    case CLI_OPT_ALPHA: return cli_parse_double("alpha", arg, 1e-12, 1e12, &p->alpha);
    case CLI_OPT_CONFIDENCE:
        if ((rc = parse_choice("confidence", arg, confidences, &k)) == 0)
            p->confidence = (gpuals_confidence)k;
        return rc;
    case CLI_OPT_EPS:
        o->have_eps = 1;
        return cli_parse_double("eps", arg, 1e-12, 1e12, &p->eps);
    case CLI_OPT_ITERS: /* 0 would leave the model at its random initial factors */
        if ((rc = cli_parse_int("iters", arg, 1, 100000, &n)) == 0) p->iters = (int)n;
        return rc;
    case CLI_OPT_SOLVER:
        if ((rc = parse_choice("solver", arg, solvers, &k)) == 0) p->solver = (gpuals_solver)k;
        return rc;
    case CLI_OPT_CG_STEPS:
        o->have_cg_steps = 1;
        if ((rc = cli_parse_int("cg-steps", arg, 1, 10000, &n)) == 0) p->cg_steps = (int)n;
        return rc;
    case CLI_OPT_SEED: return cli_parse_seed("seed", arg, &p->seed);
    case CLI_OPT_DTYPE:
        if ((rc = parse_choice("dtype", arg, dtypes, &k)) == 0) p->dtype = (gpuals_dtype)k;
        return rc;
    case CLI_OPT_LOSS: p->compute_loss = 1; return 0;
    case CLI_OPT_HISTORY:
        o->history_path = arg;
        p->compute_loss = 1;
        return cli_check_output("--history", arg, 0);
    case CLI_OPT_MODEL: o->model_path = arg; return 0;
    default: return 1;
    }
}

int cli_parse(const char *cmd, int argc, char **argv, const struct option *longopts,
              cli_opts *o, cli_own_option_fn own, void *ctx, void (*help)(void),
              int *positional)
{
    int c;
    parsing_cmd = cmd;
    opterr = 0; /* our own messages, naming the option */
    optind = 1;
    while ((c = getopt_long(argc, argv, ":hqvn:o:", longopts, NULL)) != -1) {
        if (c == '?') {
            if (optopt != 0) return cli_usage_error(cmd, "unknown option '-%c'", optopt);
            return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
        if (c == ':') return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);

        int rc = cli_handle_option(o, c, optarg);
        if (rc == 1) rc = own != NULL ? own(c, optarg, ctx) : cli_usage_error(cmd, "bad option");
        if (rc == -1) {
            help();
            return -1;
        }
        if (rc != 0) return rc;
    }
    /* --threads also bounds the queries' and evaluation's OpenMP regions, not only training. */
    if (o->params.threads > 0) omp_set_num_threads(o->params.threads);

    if (optind < argc) {
        if (positional == NULL)
            return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
        *positional = optind;
    } else if (positional != NULL) {
        *positional = argc;
    }
    return 0;
}

int cli_check_output(const char *opt, const char *path, int dir_ok)
{
    struct stat st;
    char reason[256] = "";

    /* The path itself: a directory is only right for a model. */
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && !dir_ok)
        snprintf(reason, sizeof reason, "it is a directory");

    /* Its directory must exist and take new files (they are written under a temporary name
     * there and renamed). */
    if (reason[0] == '\0') {
        char copy[4096];
        snprintf(copy, sizeof copy, "%s", path);
        const char *dir = dirname(copy);
        if (stat(dir, &st) != 0)
            snprintf(reason, sizeof reason, "directory %s: %s", dir, strerror(errno));
        else if (!S_ISDIR(st.st_mode))
            snprintf(reason, sizeof reason, "%s is not a directory", dir);
        else if (access(dir, W_OK | X_OK) != 0)
            snprintf(reason, sizeof reason, "directory %s: %s", dir, strerror(errno));
    }
    if (reason[0] == '\0') return 0;
    cli_note("cannot write %s (%s): %s", path, opt, reason);
    return gpuals_status_exit_code(GPUALS_ERR_IO);
}

double cli_shown_loss(double loss) { return loss < 0 && loss > -5e-8 ? 0.0 : loss; }

int cli_output_open(cli_output *o, const char *path)
{
    memset(o, 0, sizeof *o);
    o->path = path;
    o->slot = -1;
    struct stat st;
    if (path == NULL) {
        o->f = open_memstream(&o->buf, &o->len);
    } else if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        /* A link, a device or a pipe (/dev/stdout, /dev/null, a FIFO) is written through as it
         * is, never replaced by a rename. */
        o->f = fopen(path, "w");
        o->direct = 1;
    } else {
        int fd = cli_temp_file(path, o->tmp, sizeof o->tmp, &o->slot);
        o->f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (fd >= 0 && o->f == NULL) {
            int e = errno;
            close(fd);
            remove(o->tmp);
            tmppath_drop(o->slot);
            errno = e;
        }
    }
    if (o->f == NULL) {
        cli_note("cannot write %s: %s", path ? path : "results", strerror(errno));
        return gpuals_status_exit_code(GPUALS_ERR_IO);
    }
    return 0;
}

int cli_output_close(cli_output *o, int ok)
{
    int bad = ferror(o->f);
    bad |= fclose(o->f) != 0;
    int err = errno;
    if (o->path == NULL) {
        if (ok && !bad) bad = fwrite(o->buf, 1, o->len, stdout) != o->len || fflush(stdout) != 0;
        free(o->buf);
        if (!ok) return 0;
        if (bad) cli_note("cannot write the results to stdout");
        return bad ? gpuals_status_exit_code(GPUALS_ERR_IO) : 0;
    }
    if (o->direct) {
        if (!ok || !bad) return 0;
        cli_note("cannot write %s: %s", o->path, strerror(err));
        return gpuals_status_exit_code(GPUALS_ERR_IO);
    }
    if (ok && !bad && rename(o->tmp, o->path) == 0) {
        tmppath_drop(o->slot);
        return 0;
    }
    err = bad ? err : errno;
    remove(o->tmp);
    tmppath_drop(o->slot);
    if (!ok) return 0;
    cli_note("cannot write %s: %s", o->path, strerror(err));
    return gpuals_status_exit_code(GPUALS_ERR_IO);
}

float cli_like_value(double min_rating)
{
    return (float)(min_rating > CLI_LIKE_RATING ? min_rating : CLI_LIKE_RATING);
}

int cli_temp_file(const char *path, char *tmp, size_t tmp_len, int *slot)
{
    static unsigned counter;
    *slot = -1;
    for (int tries = 0; tries < 1000; tries++) {
        unsigned n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        if (tmppath_sibling(tmp, tmp_len, path, ".tmp-", n) != 0) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *slot = tmppath_add(tmp, TMPPATH_FILE, NULL);
            return fd;
        }
        if (errno != EEXIST) return -1;
    }
    return -1;
}

json_t *cli_json_text(const char *s)
{
    if (s == NULL) return json_null();
    json_t *j = json_string(s);
    if (j != NULL) return j;

    /* Not UTF-8: each byte >= 0x80 becomes the two-byte UTF-8 form of that Latin-1 code. */
    size_t n = strlen(s);
    char *u = malloc(2 * n + 1), *w = u;
    if (u == NULL) return json_null();
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x80) {
            *w++ = (char)*p;
        } else {
            *w++ = (char)(0xC0 | (*p >> 6));
            *w++ = (char)(0x80 | (*p & 0x3F));
        }
    }
    *w = '\0';
    j = json_string(u);
    free(u);
    return j != NULL ? j : json_null();
}

/* ------------------------------------------------------------------------------------------ */
/* Data and training                                                                          */
/* ------------------------------------------------------------------------------------------ */

/* Whether dir holds the embedded data's ratings.csv. */
static int has_embedded_data(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/ratings.csv", dir);
    return access(path, R_OK) == 0;
}

/* Where the embedded ml-latest-small data is: $GPUALS_DATA_DIR when set and not empty (and
 * only there), else
 * the source tree the binary was built from, else, relative to the binary's folder BIN, an
 * installed copy (BIN/../share/gpu-als/ml-latest-small, as `cmake --install` lays it out),
 * BIN/../data/ml-latest-small or BIN/data/ml-latest-small.
 * GPUALS_ERR_IO naming the places looked at when none has it. */
static gpuals_status find_embedded_data(char *dir, size_t len)
{
    const char *env = getenv("GPUALS_DATA_DIR");
    if (env != NULL && env[0] != '\0') {
        snprintf(dir, len, "%s", env);
        if (has_embedded_data(dir)) return GPUALS_OK;
        struct stat st;
        if (stat(env, &st) != 0)
            return gpuals_fail(GPUALS_ERR_IO, "GPUALS_DATA_DIR=%s: %s", env, strerror(errno));
        if (!S_ISDIR(st.st_mode))
            return gpuals_fail(GPUALS_ERR_IO, "GPUALS_DATA_DIR=%s is not a directory", env);
        return gpuals_fail(GPUALS_ERR_IO, "GPUALS_DATA_DIR=%s holds no readable ratings.csv",
                           env);
    }
    snprintf(dir, len, "%s", GPUALS_DEFAULT_DATA_DIR);
    if (has_embedded_data(dir)) return GPUALS_OK;

    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *bin = dirname(exe);
        const char *rel[] = {"/../share/gpu-als/ml-latest-small", "/../data/ml-latest-small",
                             "/data/ml-latest-small"};
        for (size_t k = 0; k < sizeof rel / sizeof rel[0]; k++) {
            snprintf(dir, len, "%s%s", bin, rel[k]);
            if (has_embedded_data(dir)) return GPUALS_OK;
        }
    }
    return gpuals_fail(GPUALS_ERR_IO, "the embedded data is not where it was built (%s) nor "
                       "beside the binary (../share/gpu-als/ml-latest-small, "
                       "../data/ml-latest-small or data/ml-latest-small from its folder); give "
                       "--ratings FILE or set GPUALS_DATA_DIR", GPUALS_DEFAULT_DATA_DIR);
}

gpuals_status cli_load_data(const cli_opts *o, gpuals_data **out)
{
    gpuals_load_options load = o->load;
    char dir[4096], ratings[4200], titles[4200];

    /* The embedded data: ratings.csv and, unless other titles were named, movies.csv. */
    if (!o->have_ratings) {
        GPUALS_TRY(find_embedded_data(dir, sizeof dir));
        snprintf(ratings, sizeof ratings, "%s/ratings.csv", dir);
        snprintf(titles, sizeof titles, "%s/movies.csv", dir);
        load.ratings_path = ratings;
        if (load.titles_path == NULL) load.titles_path = titles;
    }

    gpuals_status s = gpuals_data_load(&load, out);
    if (s != GPUALS_OK) return s;

    /* A first line read as a header by its shape alone may be a malformed line: say so. */
    const gpuals_data *d = *out;
    if (d->guessed_header_line > 0 && o->verbosity > 0)
        cli_note("%s:%lld: read as a header line, not data: %s", load.ratings_path,
                 (long long)d->guessed_header_line, d->guessed_header);

    const gpuals_summary *sum = gpuals_data_summary(*out);
    if (sum->bad_lines > 0 && o->verbosity > 0)
        cli_note("skipped %lld malformed line%s in %s (the first at line %lld)",
                 (long long)sum->bad_lines, sum->bad_lines == 1 ? "" : "s", load.ratings_path,
                 (long long)sum->first_bad_line);
    return GPUALS_OK;
}

int cli_progress_start(cli_progress *pr, const cli_opts *o)
{
    memset(pr, 0, sizeof *pr);
    pr->opts = o;
    pr->total_iters = o->params.iters;
    if (o->history_path == NULL) return 0;

    pr->history = fopen(o->history_path, "w");
    if (pr->history == NULL) return gpuals_status_exit_code(GPUALS_ERR_IO);
    fputs(CLI_HISTORY_HEADER "\n", pr->history);
    fflush(pr->history); /* a run stopped before its first row still leaves the header */
    return 0;
}

int cli_progress_iteration(int iteration, double seconds, double loss, void *user)
{
    cli_progress *pr = user;

    /* The history file gets every iteration, whatever the verbosity. */
    if (pr->history != NULL) {
        fprintf(pr->history, "%d,%.6f,", iteration, seconds);
        if (isfinite(loss)) fprintf(pr->history, "%.9g", loss);
        fputc('\n', pr->history);
        if (fflush(pr->history) != 0 && pr->history_error == 0) pr->history_error = errno;
    }
    /* A history that cannot be written stops training: the run would end in that error. */
    if (pr->history_error != 0) return 1;
    if (pr->opts->verbosity == 0) return 0;

    /* On a terminal one line is redrawn; in a log each iteration gets its own line. */
    char loss_text[32] = "-";
    if (isfinite(loss)) snprintf(loss_text, sizeof loss_text, "%.7f", cli_shown_loss(loss));
    if (isatty(STDERR_FILENO)) {
        int width = 30, done = pr->total_iters > 0 ? width * iteration / pr->total_iters : width;
        fprintf(stderr, "\r[%.*s%*s] iter %d/%d  loss %s  %.3f s/iter ", done,
                "##############################", width - done, "", iteration, pr->total_iters,
                loss_text, seconds);
        if (iteration >= pr->total_iters) fputc('\n', stderr);
    } else {
        fprintf(stderr, "iter %4d/%d  loss %s  %.3f s\n", iteration, pr->total_iters, loss_text,
                seconds);
    }
    return 0;
}

int cli_progress_finish(cli_progress *pr)
{
    if (pr->history == NULL) return 0;
    int err = pr->history_error;
    if (err == 0 && fflush(pr->history) != 0) err = errno;
    if (err == 0 && ferror(pr->history)) err = EIO;
    if (fclose(pr->history) != 0 && err == 0) err = errno;
    pr->history = NULL;
    errno = err;
    return err != 0 ? gpuals_status_exit_code(GPUALS_ERR_IO) : 0;
}

void cli_note_moot_settings(const cli_opts *o)
{
    if (o->verbosity <= 0) return;
    if (o->have_eps && o->params.confidence != GPUALS_CONF_LOG)
        cli_note("--eps only shapes the log confidence (--confidence log); it is ignored here");
    if (o->have_cg_steps && o->params.solver == GPUALS_SOLVER_CHOLESKY)
        cli_note("--cg-steps only counts with --solver cg; Cholesky solves each row exactly");
}

gpuals_status cli_train(const cli_opts *o, const gpuals_data *d, gpuals_model **out)
{
    cli_note_moot_settings(o);
    cli_progress pr;
    if (cli_progress_start(&pr, o) != 0)
        return gpuals_fail(GPUALS_ERR_IO, "cannot write the history file %s: %s",
                           o->history_path, strerror(errno));

    /* CG on a singular system drifts instead of failing: say so before it happens. */
    if (o->params.solver == GPUALS_SOLVER_CG && o->params.reg == 0 && o->verbosity > 0)
        cli_note("with --reg 0 a row's system can be singular, which conjugate gradient does "
                 "not detect; --solver cholesky reports it");

    gpuals_status s = gpuals_train(d, &o->params, cli_progress_iteration, &pr, out);
    if (pr.total_iters > 0 && isatty(STDERR_FILENO) && o->verbosity > 0 && s != GPUALS_OK)
        fputc('\n', stderr);
    if (s == GPUALS_OK) cli_device_note(o, *out);
    int history_rc = cli_progress_finish(&pr);
    if (history_rc != 0 && s == GPUALS_OK) {
        gpuals_model_free(*out);
        *out = NULL;
        return gpuals_fail(GPUALS_ERR_IO, "cannot write the history file %s: %s",
                           o->history_path, strerror(errno));
    }
    return s;
}

void cli_device_report(const cli_opts *o, gpuals_device used, const char *note)
{
    if (note == NULL || note[0] == '\0' || o->verbosity == 0) return;
    /* A usable GPU that was too small moved the work to the CPU: worth knowing by default
     * (training's and top-n's notes both begin so). No GPU at all is silent unless asked. */
    int gpu_too_small = strncmp(note, GPUALS_NOTE_GPU_TOO_SMALL,
                                sizeof GPUALS_NOTE_GPU_TOO_SMALL - 1) == 0;
    if (used == GPUALS_DEVICE_GPU || gpu_too_small || o->verbosity > 1 ||
        o->params.device == GPUALS_DEVICE_GPU)
        cli_note("%s", note);
}

void cli_device_note(const cli_opts *o, const gpuals_model *m)
{
    cli_device_report(o, m->device_used, gpuals_model_device_note(m));
}

int cli_check_device(const cli_opts *o)
{
    /* A usage error comes before the device: data options with a saved model. */
    if (o->model_path != NULL && o->data_option != NULL)
        return cli_fail(gpuals_fail(GPUALS_ERR_USAGE, "--%s does not apply to a saved model "
                                    "(--model %s): give either --model or the data and "
                                    "training options", o->data_option, o->model_path));
    if (o->params.device != GPUALS_DEVICE_GPU) return 0;
    if (o->params.dtype == GPUALS_DTYPE_FLOAT64)
        return cli_usage_error(NULL, "float64 training runs on the CPU only (use --device cpu "
                                     "or auto)");

    /* The probe that training and ranking make before they choose. */
    char why[256];
    if (gpuals_gpu_usable(why, sizeof why)) return 0;
    return cli_fail(gpuals_fail(GPUALS_ERR_NO_DEVICE, "no usable GPU: %s", why));
}

void cli_cpu_only_note(const cli_opts *o, const char *step)
{
    char note[256];
    snprintf(note, sizeof note, "%s on the CPU (no GPU implementation)", step);
    cli_device_report(o, GPUALS_DEVICE_CPU, note);
}

gpuals_status cli_model(const cli_opts *o, gpuals_model **out)
{
    if (o->model_path != NULL && o->data_option != NULL)
        return gpuals_fail(GPUALS_ERR_USAGE, "--%s does not apply to a saved model (--model %s): "
                           "give either --model or the data and training options",
                           o->data_option, o->model_path);
    if (o->model_path != NULL) return gpuals_model_load(o->model_path, out);

    gpuals_data *d = NULL;
    gpuals_status s = cli_load_data(o, &d);
    if (s == GPUALS_OK) s = cli_train(o, d, out);
    gpuals_data_free(d);
    return s;
}
