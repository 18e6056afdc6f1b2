/*
 * cmd_tune.c - `gpu-als tune`: a grid search with held-out early stopping.
 *
 * The data is loaded and split once (the split options of `eval`). Every combination of the
 * comma lists given to --factors, --reg, --alpha, --confidence and --iters is one run: train on
 * the train side with metrics_fit, evaluating every --eval-every iterations, and stop the run
 * when the chosen metric (--metric, default implicit_precision@10) has not improved on its best
 * for --patience evaluations in a row or when --iters is reached. A run is reported at its best
 * evaluation: all metrics of that evaluation, the iteration it came at, the iterations run and
 * the training seconds. The runs are sorted by the metric (best first; equal values keep grid
 * order) and printed as a table, written as TSV with --out or as JSON with --json, and the best
 * run is printed as a ready-to-run `gpu-als train` command line with --iters at its best
 * iteration. --plot draws each run's metric against every parameter that varies.
 *
 * Selection. By default the runs are stopped early and ranked on the test side itself, the
 * side their metrics are reported on, so the best run's metrics are optimistic; the help and
 * a note on stderr say so. --validation-fraction F > 0 carves a validation side out of the train
 * side (split_validation, seeded by --split-seed): the runs train on the rest, stop early and
 * are ranked on the validation metric, and their reported metrics come from the untouched
 * test side, ranking every item outside the whole train side (validation included).
 *
 * Every output path is checked, and gnuplot looked for, before the data is loaded; a split
 * that leaves no user to evaluate (or to select on) is refused before the grid runs.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "metrics.h"
#include "plot.h"
#include "report.h"
#include "split.h"

enum {
    OPT_GRID_FACTORS = CLI_OPT_LOCAL,
    OPT_GRID_REG,
    OPT_GRID_ALPHA,
    OPT_GRID_CONFIDENCE,
    OPT_GRID_ITERS,
    OPT_METRIC,
    OPT_PATIENCE,
    OPT_EVAL_EVERY,
    OPT_OUT,
    OPT_PLOT,
    OPT_VALIDATION_FRACTION,
};

#define GRID_MAX_VALUES 64
#define GRID_MAX_RUNS 100000

/* The grid's parameters, in the order the run loops nest (the last varies fastest). */
enum { P_FACTORS, P_REG, P_ALPHA, P_CONFIDENCE, P_ITERS, P_COUNT };
static const char *const param_names[P_COUNT] = {"factors", "reg", "alpha", "confidence",
                                                 "iters"};
static const char *const confidence_names[] = {"implicit", "hu", "log"};

/* The command's own settings. */
typedef struct {
    double values[P_COUNT][GRID_MAX_VALUES]; /* confidence as its enum value */
    int n_values[P_COUNT];
    split_options split;
    metric_id metric;
    int k;
    int patience;
    int eval_every;
    const char *out_path;
    const char *plot_path;
    double validation_fraction;  /* 0: select on the test side */
} tune_args;

/* The matrices a run sees. Without a validation side, fit and known are the train side and
 * select is the test side. */
typedef struct {
    const csr *fit;     /* trained on */
    const csr *select;  /* evaluated while training: early stopping and ranking the runs */
    const csr *known;   /* the whole train side: left out of the rankings scored on test */
    const csr *test;    /* the reported metrics */
    const idmap *users, *items; /* raw ids, for messages */
} tune_sides;

/* One finished run. */
typedef struct {
    int index;                    /* position in the grid */
    double setting[P_COUNT];
    metrics_result select;        /* the best evaluation on the selection side (top K only,
                                     unless the metric is auc) */
    metrics_result best;          /* every metric at that evaluation, on the test side */
    double score;                 /* the metric the runs are ranked by, on the selection side */
    int best_iteration;
    int iterations;               /* iterations run */
    double seconds;
    int failed;                   /* numerical failure (diverged): failure says why */
    char failure[256];
} tune_run;

/* `gpu-als tune --help` on stdout. */
static void print_help(void)
{
    printf("Usage: gpu-als tune [OPTIONS]\n\n"
           "Grid search: train one model per combination of the comma lists below on the train\n"
           "side of a split, with early stopping on a held-out metric, and print every run\n"
           "sorted by that metric, then the best settings as a `gpu-als train` command line.\n\n"
           "By default the runs are stopped early and ranked on the test split itself, the\n"
           "split their metrics are reported on, so the best run's metrics are optimistic.\n"
           "With --validation-fraction F the runs train on the train side less a validation\n"
           "split (a share F of it), are stopped early and ranked on that validation split,\n"
           "and report their metrics on the untouched test split.\n\n"
           "Grid (comma lists; one value each by default: the training defaults):\n"
           "      --factors LIST      e.g. 32,64,128\n"
           "      --reg LIST          e.g. 0.01,0.1,1\n"
           "      --alpha LIST        e.g. 1,10,40\n"
           "      --confidence LIST   of implicit, hu, log\n"
           "      --iters LIST        most iterations of a run, e.g. 15,30\n\n"
           "Search options:\n"
           "      --metric NAME       what to maximise (implicit_precision@10); also\n"
           "                          precision@K, recall@K, map@K, ndcg@K, implicit_auc@K, auc\n"
           "      --eval-every E      evaluate every E iterations (1)\n"
           "      --patience P        stop a run after P evaluations without improvement (3)\n"
           "      --validation-fraction F\n"
           "                          share of the train side held out (seeded by\n"
           "                          --split-seed) to stop early and rank the runs on\n"
           "                          (0: the test split)\n"
           "      --out FILE          write the sorted runs as TSV\n"
           "      --plot FILE.svg     draw the metric against each parameter with gnuplot\n"
           "      --split S           random (default) or leave-k-out, as in `gpu-als eval`\n"
           "      --test-fraction F   random split: share held out (0.2)\n"
           "      --leave-k K         leave-k-out split: interactions held out per user (1)\n"
           "      --split-seed N      seed of the split (0)\n"
           "A split that leaves no user with a test (or validation) item is refused (exit\n"
           "code 5).\n\n"
           "Other training options: --reg-scale, --eps, --solver, --cg-steps, --seed, --dtype\n"
           "(see `gpu-als train --help`).\n\n"
           "%s\n%s\n%s",
           cli_help_data, cli_help_general, cli_help_exit_codes);
}

/* ------------------------------------------------------------------------------------------ */
/* Options                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Parse the comma list arg of grid parameter p, each value checked by the shared option
 * parser (so the ranges are those of `gpu-als train`); an empty element (",,", or a comma at
 * either end) or a value given twice ("4,4", "1,1.0") is a usage error rather than skipped or run
 * twice. */
static int parse_list(tune_args *a, int p, int shared_opt, const char *arg)
{
    char buf[1024];
    if (strlen(arg) >= sizeof buf)
        return cli_usage_error("tune", "--%s: list too long", param_names[p]);
    strcpy(buf, arg);
    a->n_values[p] = 0;
    for (char *tok = buf, *next; tok != NULL; tok = next) {
        next = strchr(tok, ',');
        if (next != NULL) *next++ = '\0';
        if (tok[0] == '\0')
            return cli_usage_error("tune", "--%s '%s' has an empty element; give values "
                                           "separated by single commas", param_names[p], arg);
        if (a->n_values[p] == GRID_MAX_VALUES)
            return cli_usage_error("tune", "--%s takes at most %d values", param_names[p],
                                   GRID_MAX_VALUES);
        cli_opts scratch;
        cli_opts_init(&scratch);
        int rc = cli_handle_option(&scratch, shared_opt, tok);
        if (rc != 0) return rc;
        const gpuals_params *q = &scratch.params;
        double v = p == P_FACTORS      ? q->factors
                   : p == P_REG        ? q->reg
                   : p == P_ALPHA      ? q->alpha
                   : p == P_CONFIDENCE ? (double)q->confidence
                                       : q->iters;
        for (int k = 0; k < a->n_values[p]; k++)
            if (a->values[p][k] == v)
                return cli_usage_error("tune", "--%s '%s' gives %s twice; each value once",
                                       param_names[p], arg, tok);
        a->values[p][a->n_values[p]++] = v;
    }
    return 0;
}

/* The command's own options (cli_own_option_fn). */
static int own_option(int opt, const char *arg, void *ctx)
{
    tune_args *a = ctx;
    long n;
    int rc = cli_handle_split_option(opt, arg, &a->split);
    if (rc != 1) return rc;
    switch (opt) {
    case OPT_GRID_FACTORS: return parse_list(a, P_FACTORS, CLI_OPT_FACTORS, arg);
    case OPT_GRID_REG: return parse_list(a, P_REG, CLI_OPT_REG, arg);
    case OPT_GRID_ALPHA: return parse_list(a, P_ALPHA, CLI_OPT_ALPHA, arg);
    case OPT_GRID_CONFIDENCE: return parse_list(a, P_CONFIDENCE, CLI_OPT_CONFIDENCE, arg);
    case OPT_GRID_ITERS: return parse_list(a, P_ITERS, CLI_OPT_ITERS, arg);
    case OPT_METRIC:
        if (metrics_parse_name(arg, &a->metric, &a->k) != GPUALS_OK)
            return cli_usage_error("tune", "%s", gpuals_last_error());
        return 0;
    case OPT_PATIENCE:
        if ((rc = cli_parse_int("patience", arg, 1, 100000, &n)) == 0) a->patience = (int)n;
        return rc;
    case OPT_EVAL_EVERY:
        if ((rc = cli_parse_int("eval-every", arg, 1, 100000, &n)) == 0) a->eval_every = (int)n;
        return rc;
    case OPT_OUT: a->out_path = arg; return 0;
    case OPT_PLOT: a->plot_path = arg; return plot_check_path("tune", arg);
    case OPT_VALIDATION_FRACTION:
        rc = cli_parse_double("validation-fraction", arg, 0.0, 1.0, &a->validation_fraction);
        if (rc == 0 && a->validation_fraction >= 1.0)
            return cli_usage_error("tune", "--validation-fraction must be below 1: the runs "
                                           "need training interactions");
        return rc;
    default: return cli_usage_error("tune", "unknown option");
    }
}

/* Parameters not given keep the one value the shared defaults (or options) set. */
static void grid_defaults(tune_args *a, const gpuals_params *p)
{
    const double dflt[P_COUNT] = {p->factors, p->reg, p->alpha, (double)p->confidence,
                                  p->iters};
    for (int q = 0; q < P_COUNT; q++) {
        if (a->n_values[q] > 0) continue;
        a->values[q][0] = dflt[q];
        a->n_values[q] = 1;
    }
}

/* The settings of grid run r (the last parameter varies fastest). */
static void grid_setting(const tune_args *a, long r, double *setting)
{
    for (int q = P_COUNT - 1; q >= 0; q--) {
        setting[q] = a->values[q][r % a->n_values[q]];
        r /= a->n_values[q];
    }
}

/* Put a run's grid settings into training parameters. */
static void apply_setting(gpuals_params *p, const double *setting)
{
    p->factors = (int)setting[P_FACTORS];
    p->reg = setting[P_REG];
    p->alpha = setting[P_ALPHA];
    p->confidence = (gpuals_confidence)(int)setting[P_CONFIDENCE];
    p->iters = (int)setting[P_ITERS];
}

/* ------------------------------------------------------------------------------------------ */
/* Running                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* The state of the run in progress, seen by the per-iteration callback. */
typedef struct {
    const tune_args *a;
    const cli_opts *o;
    tune_run *run;
    long n_runs;
    const float *X, *Y;      /* the factors being trained */
    float *best_X, *best_Y;  /* a copy of them at the best evaluation */
    size_t x_len, y_len;     /* floats in each */
    int since_best;          /* evaluations since the best one */
    int have_best;
    int iteration;           /* the last iteration reported */
    double seconds;          /* training seconds of the iterations reported */
    double last_value;       /* the metric at the last evaluation */
} run_state;

/* A run's settings as words, for the per-run line. */
static void describe_setting(const double *s, char *buf, size_t len)
{
    snprintf(buf, len, "factors %d  reg %g  alpha %g  confidence %s  iters %d",
             (int)s[P_FACTORS], s[P_REG], s[P_ALPHA], confidence_names[(int)s[P_CONFIDENCE]],
             (int)s[P_ITERS]);
}

/* The redrawn progress line of a terminal, kept short so that it does not wrap. */
static void draw_progress(const run_state *st)
{
    const double *v = st->run->setting;
    fprintf(stderr, "\r\033[Krun %d/%ld  f=%d reg=%g alpha=%g %s  iter %d/%d",
            st->run->index + 1, st->n_runs, (int)v[P_FACTORS], v[P_REG], v[P_ALPHA],
            confidence_names[(int)v[P_CONFIDENCE]], st->iteration, (int)v[P_ITERS]);
    if (st->have_best)
        fprintf(stderr, "  %.4f (best %.4f @%d)", st->last_value,
                st->run->select.value[st->a->metric], st->run->best_iteration);
    fflush(stderr);
}

/* metrics_fit's callback: track the best evaluation and stop after `patience` without
 * improvement; redraw the progress line on a terminal. */
static int on_iteration(int iteration, double seconds, double loss, const metrics_result *m,
                        void *user)
{
    (void)loss;
    run_state *st = user;
    st->iteration = iteration;
    st->seconds += seconds;

    /* Keep the best evaluation; count the evaluations since it. */
    int stop = 0;
    if (m != NULL) {
        double v = m->value[st->a->metric];
        st->last_value = v;
        if (!st->have_best || v > st->run->select.value[st->a->metric]) {
            st->run->select = *m;
            st->run->best_iteration = iteration;
            memcpy(st->best_X, st->X, st->x_len * sizeof *st->X);
            memcpy(st->best_Y, st->Y, st->y_len * sizeof *st->Y);
            st->have_best = 1;
            st->since_best = 0;
        } else {
            stop = ++st->since_best >= st->a->patience;
        }
    }
    if (st->o->verbosity > 0 && isatty(STDERR_FILENO)) draw_progress(st);
    return stop;
}

/* The one line that closes a run (on a terminal it replaces the progress line). */
static void report_run(const run_state *st)
{
    char name[64], setting[160];
    const tune_run *r = st->run;
    describe_setting(r->setting, setting, sizeof setting);
    metrics_name(st->a->metric, st->a->k, name, sizeof name);
    fprintf(stderr, "%srun %d/%ld  %s  ", isatty(STDERR_FILENO) ? "\r\033[K" : "",
            r->index + 1, st->n_runs, setting);
    if (st->a->validation_fraction > 0)
        fprintf(stderr, "validation %s %.4f (test %.4f)", name, r->select.value[st->a->metric],
                r->best.value[st->a->metric]);
    else
        fprintf(stderr, "%s %.4f", name, r->best.value[st->a->metric]);
    fprintf(stderr, " at iteration %d of %d  %.2f s\n", r->best_iteration, r->iterations,
            r->seconds);
}

/* Train run r of the grid on sd->fit, keeping the factors of its best evaluation on
 * sd->select. Evaluations during the run rank only the top K (unless the metric is auc); the
 * best factors are then evaluated on sd->test with full rankings, so the run reports every
 * metric, auc included, at its best iteration. *used and note receive where it trained and
 * why (metrics_fit's report). */
static gpuals_status do_run(const cli_opts *o, const tune_args *a, const tune_sides *sd,
                            long n_runs, tune_run *r, gpuals_device *used, char *note,
                            size_t len)
{
    gpuals_params p = o->params;
    apply_setting(&p, r->setting);
    size_t x_len = (size_t)sd->fit->rows * (size_t)p.factors;
    size_t y_len = (size_t)sd->fit->cols * (size_t)p.factors;
    float *buf = malloc((2 * (x_len + y_len) + 1) * sizeof *buf);
    if (buf == NULL)
        return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory for the factors of a run with %d %s",
                           p.factors, cli_plural(p.factors, "factor", "factors"));
    run_state st = {.a = a, .o = o, .run = r, .n_runs = n_runs, .X = buf, .Y = buf + x_len,
                    .best_X = buf + x_len + y_len, .best_Y = buf + 2 * x_len + y_len,
                    .x_len = x_len, .y_len = y_len};

    /* Train with early stopping. */
    metrics_track t = {sd->fit,           sd->select, a->k,     a->eval_every,
                       a->metric == METRIC_AUC, sd->users,  sd->items};
    metrics_fit_report rep;
    gpuals_status s = metrics_fit(&t, &p, buf, buf + x_len, on_iteration, &st, &rep);

    /* Every metric at the best iteration (0 iterations: the initial factors), on test. */
    if (s == GPUALS_OK && !st.have_best) {
        memcpy(st.best_X, st.X, x_len * sizeof *buf);
        memcpy(st.best_Y, st.Y, y_len * sizeof *buf);
        r->best_iteration = rep.iterations;
        r->select = rep.last;
    }
    if (s == GPUALS_OK)
        s = metrics_evaluate(st.best_X, st.best_Y, p.factors, sd->known, sd->test, a->k, 1,
                             &r->best);
    free(buf);
    if (s != GPUALS_OK) {
        /* What a failed run got through (its table row shows it). */
        r->iterations = st.iteration;
        r->seconds = st.seconds;
        return s;
    }
    r->score = a->validation_fraction > 0 ? r->select.value[a->metric] : r->best.value[a->metric];
    r->iterations = rep.iterations;
    r->seconds = rep.seconds;
    *used = rep.used;
    snprintf(note, len, "%s", rep.note);
    if (o->verbosity > 0) report_run(&st);
    return GPUALS_OK;
}

/* Sort: the metric on the selection side, best first; equal values keep grid order. */
static int run_cmp(const void *x, const void *y)
{
    const tune_run *r = x, *s = y;
    double a = r->score, b = s->score;
    if (a != b) return a > b ? -1 : 1;
    return (r->index > s->index) - (r->index < s->index);
}

/* ------------------------------------------------------------------------------------------ */
/* Output                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Append s to the command line, quoted for a POSIX shell when it needs to be. */
static void append_word(char *cmd, size_t len, const char *s)
{
    size_t n = strlen(cmd);
    int plain = s[0] != '\0';
    for (const char *c = s; *c != '\0'; c++)
        plain &= (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                         "_./-=:,+@%", *c) != NULL);
    if (plain) {
        snprintf(cmd + n, len - n, " %s", s);
        return;
    }
    snprintf(cmd + n, len - n, " '");
    for (const char *c = s; *c != '\0'; c++) {
        n = strlen(cmd);
        snprintf(cmd + n, len - n, *c == '\'' ? "'\\''" : "%c", *c);
    }
    n = strlen(cmd);
    snprintf(cmd + n, len - n, "'");
}

/* Append an option and its value (NULL: a flag) to the command line. */
static void append_option(char *cmd, size_t len, const char *opt, const char *value)
{
    append_word(cmd, len, opt);
    if (value != NULL) append_word(cmd, len, value);
}

/* The `gpu-als train` command line of run r: the data options and the training settings that
 * differ from the defaults, the run's grid settings and --iters at its best iteration. */
static void train_command(const cli_opts *o, const tune_run *r, char *cmd, size_t len)
{
    static const char *const formats[] = {"auto", "dat", "mlcsv", "udata", "delim", "mm"};
    static const char *const solvers[] = {"cg", "cholesky"};
    static const char *const devices[] = {"auto", "cpu", "gpu"};
    gpuals_params dflt;
    gpuals_params_default(&dflt);
    const gpuals_params *p = &o->params;
    char v[64];
    snprintf(cmd, len, "gpu-als train");

    /* Data. */
    if (o->have_ratings) append_option(cmd, len, "--ratings", o->load.ratings_path);
    if (o->load.titles_path != NULL) append_option(cmd, len, "--movies", o->load.titles_path);
    if (o->load.format != GPUALS_FORMAT_AUTO)
        append_option(cmd, len, "--format", formats[o->load.format]);
    if (o->have_min_rating) {
        snprintf(v, sizeof v, "%.10g", o->load.min_rating);
        append_option(cmd, len, "--min-rating", v);
    }
    if (o->load.skip_bad_lines) append_option(cmd, len, "--skip-bad-lines", NULL);

    /* The grid settings, with the best iteration. */
    snprintf(v, sizeof v, "%d", (int)r->setting[P_FACTORS]);
    append_option(cmd, len, "--factors", v);
    snprintf(v, sizeof v, "%.10g", r->setting[P_REG]);
    append_option(cmd, len, "--reg", v);
    snprintf(v, sizeof v, "%.10g", r->setting[P_ALPHA]);
    append_option(cmd, len, "--alpha", v);
    append_option(cmd, len, "--confidence", confidence_names[(int)r->setting[P_CONFIDENCE]]);
    snprintf(v, sizeof v, "%d", r->best_iteration);
    append_option(cmd, len, "--iters", v);

    /* Other training settings that are not the defaults. */
    if (p->reg_scale == GPUALS_REG_FREQUENCY) append_option(cmd, len, "--reg-scale", "frequency");
    if ((int)r->setting[P_CONFIDENCE] == GPUALS_CONF_LOG && p->eps != dflt.eps) {
        snprintf(v, sizeof v, "%.10g", p->eps);
        append_option(cmd, len, "--eps", v);
    }
    if (p->solver != dflt.solver) append_option(cmd, len, "--solver", solvers[p->solver]);
    if (p->cg_steps != dflt.cg_steps) {
        snprintf(v, sizeof v, "%d", p->cg_steps);
        append_option(cmd, len, "--cg-steps", v);
    }
    if (p->seed != dflt.seed) {
        snprintf(v, sizeof v, "%llu", (unsigned long long)p->seed);
        append_option(cmd, len, "--seed", v);
    }
    if (p->dtype == GPUALS_DTYPE_FLOAT64) append_option(cmd, len, "--dtype", "float64");
    if (p->device != GPUALS_DEVICE_AUTO) append_option(cmd, len, "--device", devices[p->device]);
    if (p->threads != 0) {
        snprintf(v, sizeof v, "%d", p->threads);
        append_option(cmd, len, "--threads", v);
    }
    append_option(cmd, len, "--out", "best-model");
}

/* The column names of the table and the TSV. */
static void metric_header(FILE *f, int k, const char *sep, int width)
{
    char name[64];
    for (int m = 0; m < METRIC_COUNT; m++)
        fprintf(f, "%s%*s", sep, width, metrics_name(m, k, name, sizeof name));
}

/* What the runs were selected on, as a sentence for the output (no newline). */
static void selection_note(const tune_args *a, char *buf, size_t len)
{
    char name[64];
    metrics_name(a->metric, a->k, name, sizeof name);
    if (a->validation_fraction > 0)
        snprintf(buf, len, "runs stopped early and ranked by %s on a validation split (%g%% of "
                 "the train side); the metrics are on the untouched test split", name,
                 100 * a->validation_fraction);
    else
        snprintf(buf, len, "runs stopped early and ranked by %s on the test split, the same "
                 "split the metrics are measured on, so the best run's metrics are optimistic "
                 "(--validation-fraction F selects on a validation split instead)", name);
}

/* The sorted runs as TSV with a header row (and, with a validation split, the selection metric
 * on it as a last column); 0 or an exit code. */
static int write_tsv(const char *path, const tune_args *a, const tune_run *runs, long n)
{
    char name[64];
    int k = a->k, valid = a->validation_fraction > 0;
    cli_output out;
    int rc = cli_output_open(&out, path);
    if (rc != 0) return rc;
    FILE *f = out.f;
    fputs("rank\tfactors\treg\talpha\tconfidence\titers\tbest_iteration\titerations_run"
          "\tseconds",
          f);
    metric_header(f, k, "\t", 0);
    if (valid) fprintf(f, "\tvalidation_%s", metrics_name(a->metric, k, name, sizeof name));
    fputc('\n', f);
    for (long j = 0; j < n; j++) {
        const tune_run *r = &runs[j];
        fprintf(f, "%ld\t%d\t%.10g\t%.10g\t%s\t%d\t%d\t%d\t%.3f", j + 1,
                (int)r->setting[P_FACTORS], r->setting[P_REG], r->setting[P_ALPHA],
                confidence_names[(int)r->setting[P_CONFIDENCE]], (int)r->setting[P_ITERS],
                r->best_iteration, r->iterations, r->seconds);
        for (int m = 0; m < METRIC_COUNT + valid; m++) {
            double v = m < METRIC_COUNT ? r->best.value[m] : r->score;
            if (r->failed) fputs("\tnan", f);
            else fprintf(f, "\t%.6f", v);
        }
        fputc('\n', f);
    }
    return cli_output_close(&out, 1);
}

/* The sorted runs as an aligned table on stdout (with a validation split, its metric as a last
 * column), then the best command; what they were selected on is a note on stderr
 * (split_note). */
static void print_table(const tune_args *a, const tune_run *runs, long n, const char *command)
{
    char name[64];
    int k = a->k, valid = a->validation_fraction > 0;
    printf("%4s %7s %9s %9s %10s %5s %4s %8s", "rank", "factors", "reg", "alpha", "confidence",
           "iters", "best", "seconds");
    metric_header(stdout, k, " ", 21);
    if (valid) {
        char col[80];
        snprintf(col, sizeof col, "validation_%s", metrics_name(a->metric, k, name, sizeof name));
        printf(" %32s", col);
    }
    printf("\n");
    for (long j = 0; j < n; j++) {
        const tune_run *r = &runs[j];
        printf("%4ld %7d %9.4g %9.4g %10s %5d %4d %8.2f", j + 1, (int)r->setting[P_FACTORS],
               r->setting[P_REG], r->setting[P_ALPHA],
               confidence_names[(int)r->setting[P_CONFIDENCE]], (int)r->setting[P_ITERS],
               r->best_iteration, r->seconds);
        if (r->failed) {
            printf("  failed: %s\n", r->failure);
            continue;
        }
        for (int m = 0; m < METRIC_COUNT; m++) printf(" %21.6f", r->best.value[m]);
        if (valid) printf(" %32.6f", r->score);
        printf("\n");
    }
    printf("\nbest: %s\n", command);
}

/* One run as a JSON object (new reference); valid: add the selection metric's value on the
 * validation split. */
static json_t *run_json(const tune_run *r, long rank, int k, int valid)
{
    char name[64];
    json_t *j = json_object(), *metrics = json_object();
    json_object_set_new(j, "rank", json_integer(rank));
    json_object_set_new(j, "factors", json_integer((json_int_t)r->setting[P_FACTORS]));
    json_object_set_new(j, "reg", json_real(r->setting[P_REG]));
    json_object_set_new(j, "alpha", json_real(r->setting[P_ALPHA]));
    json_object_set_new(j, "confidence",
                        json_string(confidence_names[(int)r->setting[P_CONFIDENCE]]));
    json_object_set_new(j, "iters", json_integer((json_int_t)r->setting[P_ITERS]));
    json_object_set_new(j, "best_iteration", json_integer(r->best_iteration));
    json_object_set_new(j, "iterations_run", json_integer(r->iterations));
    json_object_set_new(j, "seconds", json_real(r->seconds));
    if (r->failed) {
        json_decref(metrics);
        json_object_set_new(j, "failed", json_string(r->failure));
        return j;
    }
    json_object_set_new(j, "users_evaluated", json_integer(r->best.users));
    for (int m = 0; m < METRIC_COUNT; m++)
        json_object_set_new(metrics, metrics_name(m, k, name, sizeof name),
                            json_real(r->best.value[m]));
    json_object_set_new(j, "metrics", metrics);
    if (valid) json_object_set_new(j, "validation_metric", json_real(r->score));
    return j;
}

/* Every run and the best command as one JSON document on stdout; 0 or an exit code. */
static int print_json(const cli_opts *o, const tune_args *a, const tune_run *runs, long n,
                      const char *command)
{
    char name[64], note[512];
    json_t *doc = json_object(), *arr = json_array(), *split = json_object();
    json_object_set_new(split, "kind", json_string(split_kind_name(a->split.kind)));
    if (a->split.kind == SPLIT_RANDOM)
        json_object_set_new(split, "test_fraction", json_real(a->split.test_fraction));
    else
        json_object_set_new(split, "leave_k", json_integer(a->split.leave_k));
    json_object_set_new(split, "seed", json_integer((json_int_t)a->split.seed));
    int valid = a->validation_fraction > 0;
    for (long j = 0; j < n; j++)
        json_array_append_new(arr, run_json(&runs[j], j + 1, a->k, valid));
    selection_note(a, note, sizeof note);

    json_object_set_new(doc, "metric", json_string(metrics_name(a->metric, a->k, name,
                                                                 sizeof name)));
    json_object_set_new(doc, "eval_every", json_integer(a->eval_every));
    json_object_set_new(doc, "patience", json_integer(a->patience));
    json_object_set_new(doc, "selected_on", json_string(valid ? "validation" : "test"));
    json_object_set_new(doc, "validation_fraction", json_real(a->validation_fraction));
    json_object_set_new(doc, "selection_note", json_string(note));
    json_object_set_new(doc, "split", split);
    json_object_set_new(doc, "seed", json_integer((json_int_t)o->params.seed));
    json_object_set_new(doc, "runs", arr);
    json_object_set_new(doc, "best_command", cli_json_text(command));
    int rc = report_json_print(doc);
    json_decref(doc);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Plot                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* One panel per parameter with more than one value (or one panel over the run numbers when
 * none varies): x = the parameter (confidence as categories), y = each run's metric at its best
 * iteration on the test split and, with a validation split, on that split too. */
static int draw_grid(const char *path, const tune_args *a, const tune_run *runs, long n)
{
    char name[64], test_name[80], valid_name[80], title[160];
    metrics_name(a->metric, a->k, name, sizeof name);
    snprintf(test_name, sizeof test_name, "test %s", name);
    snprintf(valid_name, sizeof valid_name, "validation %s", name);
    int n_series = a->validation_fraction > 0 ? 2 : 1;
    double *xs = malloc((size_t)(P_COUNT + 1) * (size_t)n * sizeof *xs);
    double *ys = malloc(2 * (size_t)n * sizeof *ys), *vs = ys != NULL ? ys + n : NULL;
    plot_series series[P_COUNT + 1][2];
    plot_panel panels[P_COUNT + 1];
    if (xs == NULL || ys == NULL) {
        free(xs);
        free(ys);
        cli_note("out of memory for the plot");
        return gpuals_status_exit_code(GPUALS_ERR_NOMEM);
    }
    for (long j = 0; j < n; j++) {
        ys[j] = runs[j].best.value[a->metric];
        vs[j] = runs[j].score;
    }

    /* A panel per varying parameter. */
    int n_panels = 0;
    for (int q = 0; q < P_COUNT; q++) {
        if (a->n_values[q] < 2) continue;
        double *x = xs + (size_t)n_panels * (size_t)n, lo = INFINITY, hi = 0;
        for (long j = 0; j < n; j++) {
            x[j] = runs[j].setting[q];
            lo = fmin(lo, x[j]);
            hi = fmax(hi, x[j]);
        }
        series[n_panels][0] = (plot_series){test_name, x, ys, (int)n};
        series[n_panels][1] = (plot_series){valid_name, x, vs, (int)n};
        panels[n_panels] = (plot_panel){.title = param_names[q], .xlabel = param_names[q],
                                        .ylabel = name, .points_only = 1,
                                        .series = series[n_panels], .n_series = n_series};
        if (q == P_CONFIDENCE) {
            panels[n_panels].xtics = confidence_names;
            panels[n_panels].n_xtics = 3;
        }
        panels[n_panels].log_x = (q == P_REG || q == P_ALPHA) && lo > 0 && hi >= 10 * lo;
        n_panels++;
    }

    /* Nothing varies: the runs in order. */
    if (n_panels == 0) {
        for (long j = 0; j < n; j++) xs[j] = runs[j].index + 1;
        series[0][0] = (plot_series){test_name, xs, ys, (int)n};
        series[0][1] = (plot_series){valid_name, xs, vs, (int)n};
        panels[0] = (plot_panel){.title = "runs", .xlabel = "run", .ylabel = name,
                                 .points_only = 1, .series = series[0], .n_series = n_series};
        n_panels = 1;
    }
    snprintf(title, sizeof title, "gpu-als tune: %s of each run at its best iteration", name);
    int rc = plot_svg(path, title, panels, n_panels);
    free(xs);
    free(ys);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The command                                                                                */
/* ------------------------------------------------------------------------------------------ */

/* Run every combination into runs (n of them, in grid order); 0 or an exit code. */
static int run_grid(const cli_opts *o, const tune_args *a, const tune_sides *sd, tune_run *runs,
                    long n)
{
    char note[256] = "";
    gpuals_device used = GPUALS_DEVICE_CPU, last_used = GPUALS_DEVICE_CPU;
    int reported = 0; /* the notes of the first run that finished were given */
    for (long r = 0; r < n; r++) {
        runs[r] = (tune_run){.index = (int)r};
        grid_setting(a, r, runs[r].setting);
        gpuals_status s = do_run(o, a, sd, n, &runs[r], &used, note, sizeof note);
        if (s == GPUALS_ERR_NUMERIC) {
            /* A setting that diverges is a result of the search, not the end of it. */
            tune_run *f = &runs[r];
            f->failed = 1;
            f->score = -INFINITY;
            snprintf(f->failure, sizeof f->failure, "%s", gpuals_last_error());
            if (o->verbosity > 0) {
                char setting[160];
                describe_setting(f->setting, setting, sizeof setting);
                fprintf(stderr, "%srun %d/%ld  %s  failed: %s\n",
                        isatty(STDERR_FILENO) ? "\r\033[K" : "", f->index + 1, n, setting,
                        f->failure);
            }
            continue;
        }
        if (s != GPUALS_OK) {
            if (o->verbosity > 0 && isatty(STDERR_FILENO)) fputc('\n', stderr);
            return cli_fail(s);
        }
        /* Where the runs train, said again whenever the device changes (a larger run may not
         * fit on the GPU that took the smaller ones). */
        if (!reported || used != last_used) cli_device_report(o, used, note);
        last_used = used;
        if (!reported) cli_cpu_only_note(o, "ranking the held-out users for the metrics");
        reported = 1;
    }
    long failed = 0;
    for (long r = 0; r < n; r++) failed += runs[r].failed;
    if (failed == n)
        return cli_fail(gpuals_fail(GPUALS_ERR_NUMERIC, "every run of the grid failed; the "
                                                        "first: %s", runs[0].failure));
    if (failed > 0)
        cli_note("%ld of %ld %s failed numerically and %s listed last", failed, n,
                 cli_plural(n, "run", "runs"), failed == 1 ? "is" : "are");
    return 0;
}

/* Before any work: every output path can be written, gnuplot is there for --plot, and the
 * device is there and goes with the precision (cli_check_device). 0 or an exit code after a
 * message. */
static int check_before_work(const cli_opts *o, const tune_args *a)
{
    int rc = 0;
    if (a->out_path != NULL && (rc = cli_check_output("--out", a->out_path, 0)) != 0) return rc;
    if (a->plot_path != NULL) {
        if ((rc = cli_check_output("--plot", a->plot_path, 0)) != 0) return rc;
        if ((rc = plot_check_gnuplot()) != 0) return rc;
    }
    return cli_check_device(o);
}

/* The sides of the runs from the data's ratings r: split into *train and *test and, with a
 * validation fraction, *train into *fit and *valid (else those stay empty). Refuses with
 * GPUALS_ERR_EMPTY, saying why, a test or validation side that leaves no user to evaluate. */
static gpuals_status make_sides(const csr *r, const tune_args *a, csr *train, csr *test,
                                csr *fit, csr *valid, tune_sides *sd)
{
    *fit = (csr){0};
    *valid = (csr){0};
    GPUALS_TRY(split_csr(r, &a->split, train, test));
    *sd = (tune_sides){.fit = train, .select = test, .known = train, .test = test};
    GPUALS_TRY(split_check_test(r, &a->split, test));
    if (metrics_eligible_users(train, test) == 0)
        return gpuals_fail(GPUALS_ERR_EMPTY, "no user to evaluate: none of the %lld test %s has "
                                             "a positive value on a new item of a user with a "
                                             "positive training interaction", (long long)test->nnz,
                           cli_plural(test->nnz, "interaction", "interactions"));
    if (a->validation_fraction <= 0) return GPUALS_OK;

    GPUALS_TRY(split_validation(train, a->validation_fraction, &a->split, fit, valid));
    sd->fit = fit;
    sd->select = valid;
    if (valid->nnz == 0)
        return gpuals_fail(GPUALS_ERR_EMPTY, "no validation interactions: validation fraction "
                                             "%g held out none of the %lld training %s",
                           a->validation_fraction, (long long)train->nnz,
                           cli_plural(train->nnz, "interaction", "interactions"));
    if (fit->nnz == 0)
        return gpuals_fail(GPUALS_ERR_EMPTY, "no training interactions: validation fraction %g "
                                             "held out all %lld of them (the runs need training "
                                             "interactions)", a->validation_fraction,
                           (long long)train->nnz);
    if (metrics_eligible_users(fit, valid) == 0)
        return gpuals_fail(GPUALS_ERR_EMPTY, "no user to select on: none of the %lld validation "
                                             "%s has a positive value on a new item of a user "
                                             "with a positive training interaction",
                           (long long)valid->nnz,
                           cli_plural(valid->nnz, "interaction", "interactions"));
    return GPUALS_OK;
}

/* The notes on the split and on what the runs are selected on, on stderr. */
static void split_note(const tune_args *a, const tune_sides *sd, long n)
{
    char valid[160] = "";
    if (a->validation_fraction > 0)
        snprintf(valid, sizeof valid, " (%lld of them held out for validation)",
                 (long long)sd->select->nnz);
    cli_note("split %s (seed %llu): %lld train %s%s, %lld test %s; %ld %s",
             split_kind_name(a->split.kind), (unsigned long long)a->split.seed,
             (long long)sd->known->nnz, cli_plural(sd->known->nnz, "entry", "entries"), valid,
             (long long)sd->test->nnz, cli_plural(sd->test->nnz, "entry", "entries"), n,
             cli_plural(n, "run", "runs"));
    char note[512];
    selection_note(a, note, sizeof note);
    cli_note("%s", note);
}

int cmd_tune(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_OPTIONS_GENERAL,
        CLI_OPTIONS_DATA,
        {"factors", required_argument, NULL, OPT_GRID_FACTORS},
        {"reg", required_argument, NULL, OPT_GRID_REG},
        {"alpha", required_argument, NULL, OPT_GRID_ALPHA},
        {"confidence", required_argument, NULL, OPT_GRID_CONFIDENCE},
        {"iters", required_argument, NULL, OPT_GRID_ITERS},
        {"reg-scale", required_argument, NULL, CLI_OPT_REG_SCALE},
        {"eps", required_argument, NULL, CLI_OPT_EPS},
        {"solver", required_argument, NULL, CLI_OPT_SOLVER},
        {"cg-steps", required_argument, NULL, CLI_OPT_CG_STEPS},
        {"seed", required_argument, NULL, CLI_OPT_SEED},
        {"dtype", required_argument, NULL, CLI_OPT_DTYPE},
        CLI_OPTIONS_SPLIT,
        {"metric", required_argument, NULL, OPT_METRIC},
        {"patience", required_argument, NULL, OPT_PATIENCE},
        {"eval-every", required_argument, NULL, OPT_EVAL_EVERY},
        {"validation-fraction", required_argument, NULL, OPT_VALIDATION_FRACTION},
        {"out", required_argument, NULL, OPT_OUT},
        {"plot", required_argument, NULL, OPT_PLOT},
        {0}};
    cli_opts o;
    tune_args a = {.metric = METRIC_IMPLICIT_PRECISION, .k = 10, .patience = 3,
                   .eval_every = 1};
    split_options_default(&a.split);
    cli_opts_init(&o);
    int rc = cli_parse("tune", argc, argv, longopts, &o, own_option, &a, print_help, NULL);
    if (rc != 0) return rc < 0 ? 0 : rc;
    if ((rc = check_before_work(&o, &a)) != 0) return rc;
    grid_defaults(&a, &o.params);
    long n = 1;
    for (int q = 0; q < P_COUNT; q++) n *= a.n_values[q];
    if (n > GRID_MAX_RUNS)
        return cli_usage_error("tune", "the grid has %ld runs; at most %d", n, GRID_MAX_RUNS);

    /* Load and split once; refuse a split with nobody to evaluate before the grid runs. */
    gpuals_data *d = NULL;
    csr train = {0}, test = {0}, fit = {0}, valid = {0};
    tune_sides sd = {0};
    gpuals_status s = cli_load_data(&o, &d);
    if (s == GPUALS_OK) s = split_use_ids(d, &a.split);
    if (s == GPUALS_OK) s = make_sides(&d->ratings, &a, &train, &test, &fit, &valid, &sd);
    split_keys_free(&a.split);
    if (s == GPUALS_OK) sd.users = d->users, sd.items = d->items;
    if (s == GPUALS_OK && o.verbosity > 0) split_note(&a, &sd, n);

    /* Run the grid and sort. */
    tune_run *runs = NULL;
    if (s != GPUALS_OK)
        rc = cli_fail(s);
    else if ((runs = calloc((size_t)n, sizeof *runs)) == NULL)
        rc = cli_fail(gpuals_fail(GPUALS_ERR_NOMEM, "out of memory for %ld %s", n,
                                  cli_plural(n, "run", "runs")));
    else
        rc = run_grid(&o, &a, &sd, runs, n);
    gpuals_data_free(d);
    csr_free(&train);
    csr_free(&test);
    csr_free(&fit);
    csr_free(&valid);
    if (rc == 0) qsort(runs, (size_t)n, sizeof *runs, run_cmp);

    /* Report. */
    char command[4096];
    if (rc == 0) train_command(&o, &runs[0], command, sizeof command);
    if (rc == 0 && a.out_path != NULL) rc = write_tsv(a.out_path, &a, runs, n);
    if (rc == 0 && o.json) rc = print_json(&o, &a, runs, n, command);
    if (rc == 0 && !o.json) print_table(&a, runs, n, command);
    long n_ok = rc == 0 ? n : 0; /* the failed runs, sorted last, have no metrics to draw */
    while (n_ok > 0 && runs[n_ok - 1].failed) n_ok--;
    if (rc == 0 && a.plot_path != NULL) rc = draw_grid(a.plot_path, &a, runs, n_ok);
    free(runs);
    return rc;
}
