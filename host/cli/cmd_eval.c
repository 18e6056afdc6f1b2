/*
 * cmd_eval.c - `gpu-als eval`: split the data, train on one side, rank the other.
 *
 * Steps: load the data (or the embedded ml-latest-small), split its stored entries (random
 * per interaction or leave-k-out per user, seeded; split.h), train on the train side, rank
 * every user's non-training items and print the metrics at K of metrics.h on the test side.
 *
 * Without --history or --plot the train side is wrapped in its own gpuals_data and trained
 * with cli_train, exactly as `gpu-als train` trains. With either of them, training goes through
 * metrics_fit, which evaluates every --eval-every iterations from the factors of that moment
 * and hands us loss, time and metrics per iteration: the history CSV gets one row per
 * iteration (metric fields empty between evaluations) and the plot draws the curves. Both
 * routes start from the same initial factors and give the same final metrics.
 *
 * Every output path is checked, and gnuplot looked for, before the data is loaded; a split
 * that leaves no user to evaluate is refused (GPUALS_ERR_EMPTY) before training.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset.h"
#include "metrics.h"
#include "plot.h"
#include "report.h"
#include "split.h"

enum {
    OPT_K = CLI_OPT_LOCAL,
    OPT_EVAL_EVERY,
    OPT_PLOT,
};

/* The command's own settings. */
typedef struct {
    split_options split;
    int k;
    int eval_every;
    const char *plot_path;
} eval_args;

/* Close f, an output file written to path: 0, or an exit code after saying why (err, the
 * reason of an earlier failed write, else that of a failed fflush or fclose, else a generic
 * one). */
static int close_output(FILE *f, const char *what, const char *path, int err)
{
    if (err == 0) err = fflush(f) != 0 ? errno : ferror(f) ? EIO : 0;
    if (fclose(f) != 0 && err == 0) err = errno;
    if (err == 0) return 0;
    cli_note("cannot write %s %s: %s", what, path, strerror(err));
    return gpuals_status_exit_code(GPUALS_ERR_IO);
}

/* `gpu-als eval --help` on stdout. */
static void print_help(void)
{
    printf("Usage: gpu-als eval [OPTIONS]\n\n"
           "Held-out evaluation: split the stored interactions into train and test, train on\n"
           "train, rank each user's items outside their training items and score the ranking\n"
           "on their test items. Metrics at K (users without test items are skipped, and users\n"
           "with test items but no positive training interaction, whose ranking would be ties,\n"
           "are left out and counted; a split that leaves no user to evaluate is an error,\n"
           "exit code 5):\n"
           "  implicit_precision@K  sum hits / sum min(K, |test|), the `implicit` library's\n"
           "                        \"precision\"\n"
           "  precision@K           mean of hits / K\n"
           "  recall@K              mean of hits / min(K, |test|)\n"
           "  map@K, ndcg@K         as the `implicit` library defines them\n"
           "  implicit_auc@K        the `implicit` library's AUC@K\n"
           "  auc                   full AUC over all non-training items\n\n"
           "Evaluation options:\n"
           "      --split S           random (default: each interaction independently) or\n"
           "                          leave-k-out (K per user with more than K+1 interactions)\n"
           "      --test-fraction F   random split: share of interactions held out (0.2)\n"
           "      --leave-k K         leave-k-out split: interactions held out per user (1)\n"
           "      --split-seed N      seed of the split (0)\n"
           "      --k K               cut-off of the metrics (10)\n"
           "      --eval-every E      with --history or --plot: evaluate every E iterations (1)\n"
           "      --plot FILE.svg     draw the loss and metric curves with gnuplot\n"
           "      --history FILE      CSV per iteration: iteration, its seconds, loss and,\n"
           "                          every E iterations, the metrics\n\n"
           "%s\n%s\n%s\n%s",
           cli_help_data, cli_help_train, cli_help_general, cli_help_exit_codes);
}

/* The command's own options (cli_own_option_fn). */
static int own_option(int opt, const char *arg, void *ctx)
{
    eval_args *a = ctx;
    long n;
    int rc = cli_handle_split_option(opt, arg, &a->split);
    if (rc != 1) return rc;
    switch (opt) {
    case OPT_K:
        if ((rc = cli_parse_int("k", arg, 1, 100000, &n)) == 0) a->k = (int)n;
        return rc;
    case OPT_EVAL_EVERY:
        if ((rc = cli_parse_int("eval-every", arg, 1, 100000, &n)) == 0) a->eval_every = (int)n;
        return rc;
    case OPT_PLOT: a->plot_path = arg; return plot_check_path("eval", arg);
    default: return cli_usage_error("eval", "unknown option");
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Training with history                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* What the per-iteration callback keeps: the history file and the curves for the plot. */
typedef struct {
    cli_progress progress;    /* stderr lines (its own history file stays closed) */
    FILE *history;
    int history_error;        /* errno of the first failed write of a row, or 0 */
    double elapsed;           /* training seconds up to the last iteration reported */
    int k;
    double *iter_x, *loss_y;  /* per iteration */
    int n_iter;
    double *eval_x, *metric_y[METRIC_COUNT]; /* per evaluation */
    int n_eval;
} eval_curves;

/* Free the curves' arrays. */
static void curves_free(eval_curves *c)
{
    free(c->iter_x);
    free(c->loss_y);
    free(c->eval_x);
    for (int m = 0; m < METRIC_COUNT; m++) free(c->metric_y[m]);
}

/* Room for iters points in every curve; 0 or an exit code. */
static int curves_alloc(eval_curves *c, int iters)
{
    size_t bytes = (size_t)(iters > 0 ? iters : 1) * sizeof(double);
    int ok = (c->iter_x = malloc(bytes)) != NULL;
    ok &= (c->loss_y = malloc(bytes)) != NULL;
    ok &= (c->eval_x = malloc(bytes)) != NULL;
    for (int m = 0; m < METRIC_COUNT; m++) ok &= (c->metric_y[m] = malloc(bytes)) != NULL;
    if (ok) return 0;
    cli_note("out of memory for the history of %d %s", iters,
             cli_plural(iters, "iteration", "iterations"));
    return gpuals_status_exit_code(GPUALS_ERR_NOMEM);
}

/* The CSV header: iteration, seconds, loss and the metric names at k. */
static void history_header(FILE *f, int k)
{
    char name[64];
    fputs("iteration,seconds,loss", f);
    for (int m = 0; m < METRIC_COUNT; m++) fprintf(f, ",%s", metrics_name(m, k, name, sizeof name));
    fputc('\n', f);
}

/* metrics_fit's callback (seconds: the training time so far): a progress line, a history row
 * and the curves' points. The line and the row give the iteration's own seconds, as `train`
 * does, and the row is flushed at once so that the file can be followed during the run. */
static int on_iteration(int iteration, double seconds, double loss, const metrics_result *mr,
                        void *user)
{
    eval_curves *c = user;
    double own = seconds - c->elapsed;
    c->elapsed = seconds;

    /* The history row, before the line on stderr that shows the iteration done: metric fields
     * stay empty between evaluations. */
    if (c->history != NULL) {
        fprintf(c->history, "%d,%.6f,", iteration, own);
        if (isfinite(loss)) fprintf(c->history, "%.9g", loss);
        for (int m = 0; m < METRIC_COUNT; m++) {
            fputc(',', c->history);
            if (mr != NULL) fprintf(c->history, "%.9g", mr->value[m]);
        }
        fputc('\n', c->history);
        if (fflush(c->history) != 0 && c->history_error == 0) c->history_error = errno;
    }
    cli_progress_iteration(iteration, own, loss, &c->progress);

    /* The curves. */
    c->iter_x[c->n_iter] = iteration;
    c->loss_y[c->n_iter++] = loss;
    if (mr != NULL) {
        c->eval_x[c->n_eval] = iteration;
        for (int m = 0; m < METRIC_COUNT; m++) c->metric_y[m][c->n_eval] = mr->value[m];
        c->n_eval++;
    }
    /* A history that cannot be written stops training: the run would end in that error. */
    return c->history_error != 0;
}

/* Draw the loss and metric curves. */
static int draw_curves(const char *path, const eval_curves *c, const cli_opts *o)
{
    char names[METRIC_COUNT][64], title[160];
    plot_series metric_series[METRIC_COUNT];
    for (int m = 0; m < METRIC_COUNT; m++) {
        metrics_name(m, c->k, names[m], sizeof names[m]);
        metric_series[m] = (plot_series){names[m], c->eval_x, c->metric_y[m], c->n_eval};
    }
    plot_series loss_series = {"training loss", c->iter_x, c->loss_y, c->n_iter};
    plot_panel panels[2] = {
        {.title = "training loss", .xlabel = "iteration", .ylabel = "loss",
         .series = &loss_series, .n_series = 1},
        {.title = "held-out metrics", .xlabel = "iteration", .ylabel = "value",
         .series = metric_series, .n_series = METRIC_COUNT},
    };
    snprintf(title, sizeof title, "gpu-als eval: %d factors, reg %g, alpha %g",
             o->params.factors, o->params.reg, o->params.alpha);
    return plot_svg(path, title, panels, 2);
}

/* Train through metrics_fit with per-iteration history; fills *res, *seconds and *loss. */
static int train_with_history(const cli_opts *o, const eval_args *a, const gpuals_data *d,
                              const csr *train, const csr *test, metrics_result *res,
                              double *seconds, double *loss)
{
    eval_curves c = {.k = a->k};
    cli_opts quiet_history = *o;
    quiet_history.history_path = NULL;
    cli_progress_start(&c.progress, &quiet_history);
    int rc = curves_alloc(&c, o->params.iters);

    /* The history file. */
    if (rc == 0 && o->history_path != NULL) {
        c.history = fopen(o->history_path, "w");
        if (c.history == NULL) {
            cli_note("cannot write the history file %s: %s", o->history_path, strerror(errno));
            rc = gpuals_status_exit_code(GPUALS_ERR_IO);
        } else {
            history_header(c.history, a->k);
            fflush(c.history); /* a run stopped before its first row still leaves the header */
        }
    }

    /* Factors and training. */
    size_t f = (size_t)o->params.factors;
    float *X = rc == 0 ? malloc(((size_t)train->rows * f + 1) * sizeof *X) : NULL;
    float *Y = rc == 0 ? malloc(((size_t)train->cols * f + 1) * sizeof *Y) : NULL;
    if (rc == 0 && (X == NULL || Y == NULL)) {
        cli_note("out of memory for the factors");
        rc = gpuals_status_exit_code(GPUALS_ERR_NOMEM);
    }
    if (rc == 0) {
        metrics_track t = {train, test, a->k, a->eval_every, 1, d->users, d->items};
        metrics_fit_report rep;
        gpuals_status s = metrics_fit(&t, &o->params, X, Y, on_iteration, &c, &rep);
        if (s != GPUALS_OK) {
            rc = cli_fail(s);
        } else {
            *res = rep.last;
            *seconds = rep.seconds;
            *loss = rep.loss;
            cli_device_report(o, rep.used, rep.note);
        }
    }
    free(X);
    free(Y);

    /* Close the history and draw. */
    if (c.history != NULL) {
        int crc = close_output(c.history, "the history file", o->history_path,
                               c.history_error);
        if (rc == 0) rc = crc;
    }
    if (rc == 0 && a->plot_path != NULL) rc = draw_curves(a->plot_path, &c, o);
    curves_free(&c);
    return rc;
}

/* Train like `gpu-als train` on a dataset of the train side and evaluate the model. */
static int train_plain(const cli_opts *o, const eval_args *a, const gpuals_data *d,
                       const csr *train, const csr *test, metrics_result *res, double *seconds,
                       double *loss)
{
    gpuals_data *td = NULL;
    gpuals_model *m = NULL;
    gpuals_status s = split_train_data(d, train, &td);
    if (s == GPUALS_OK) s = cli_train(o, td, &m);
    gpuals_data_free(td);
    if (s == GPUALS_OK)
        s = metrics_evaluate(gpuals_model_user_factors(m), gpuals_model_item_factors(m),
                             gpuals_model_factors(m), train, test, a->k, 1, res);
    if (s == GPUALS_OK) {
        *seconds = gpuals_model_train_seconds(m);
        *loss = gpuals_model_final_loss(m);
    }
    gpuals_model_free(m);
    return s == GPUALS_OK ? 0 : cli_fail(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Output                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static const char *confidence_name(gpuals_confidence c)
{
    return c == GPUALS_CONF_HU ? "hu" : c == GPUALS_CONF_LOG ? "log" : "implicit";
}

/* The result as aligned text on stdout. */
static void print_text(const eval_args *a, const csr *train, const csr *test,
                       const metrics_result *r, double seconds)
{
    char name[64];
    if (a->split.kind == SPLIT_RANDOM)
        printf("split      random, test fraction %g, seed %llu\n", a->split.test_fraction,
               (unsigned long long)a->split.seed);
    else
        printf("split      leave-%d-out, seed %llu\n", a->split.leave_k,
               (unsigned long long)a->split.seed);
    printf("entries    %lld train, %lld test\n", (long long)train->nnz, (long long)test->nnz);
    printf("users      %lld evaluated, %lld skipped (no test items)", (long long)r->users,
           (long long)r->skipped);
    if (r->cold > 0)
        printf(", %lld left out (no positive training interaction)", (long long)r->cold);
    printf("\n");
    printf("training   %.2f s\n\n", seconds);
    printf("%-24s %s\n", "metric", "value");
    for (int m = 0; m < METRIC_COUNT; m++)
        printf("%-24s %.6f\n", metrics_name(m, r->k, name, sizeof name), r->value[m]);
}

/* The result as one JSON document on stdout; 0 or an exit code. */
static int print_json(const cli_opts *o, const eval_args *a, const gpuals_data *d,
                      const csr *train, const csr *test, const metrics_result *r,
                      double seconds, double loss)
{
    char name[64];
    json_t *doc = json_object(), *split = json_object(), *metrics = json_object();
    json_t *training = json_object();

    /* Split. */
    json_object_set_new(split, "kind", json_string(split_kind_name(a->split.kind)));
    if (a->split.kind == SPLIT_RANDOM)
        json_object_set_new(split, "test_fraction", json_real(a->split.test_fraction));
    else
        json_object_set_new(split, "leave_k", json_integer(a->split.leave_k));
    json_object_set_new(split, "seed", json_integer((json_int_t)a->split.seed));
    json_object_set_new(split, "train_entries", json_integer(train->nnz));
    json_object_set_new(split, "test_entries", json_integer(test->nnz));

    /* Training settings and outcome. */
    const gpuals_params *p = &o->params;
    json_object_set_new(training, "factors", json_integer(p->factors));
    json_object_set_new(training, "reg", json_real(p->reg));
    json_object_set_new(training, "alpha", json_real(p->alpha));
    json_object_set_new(training, "confidence", json_string(confidence_name(p->confidence)));
    json_object_set_new(training, "iterations", json_integer(p->iters));
    json_object_set_new(training, "seed", json_integer((json_int_t)p->seed));
    json_object_set_new(training, "seconds", json_real(seconds));
    json_object_set_new(training, "final_loss", isfinite(loss) ? json_real(loss) : json_null());

    /* Metrics. */
    for (int m = 0; m < METRIC_COUNT; m++)
        json_object_set_new(metrics, metrics_name(m, r->k, name, sizeof name),
                            json_real(r->value[m]));

    json_object_set_new(doc, "data", report_summary_json(d, o));
    json_object_set_new(doc, "split", split);
    json_object_set_new(doc, "training", training);
    json_object_set_new(doc, "k", json_integer(r->k));
    json_object_set_new(doc, "users_evaluated", json_integer(r->users));
    json_object_set_new(doc, "users_skipped", json_integer(r->skipped));
    json_object_set_new(doc, "users_cold", json_integer(r->cold));
    json_object_set_new(doc, "metrics", metrics);
    int rc = report_json_print(doc);
    json_decref(doc);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The command                                                                                */
/* ------------------------------------------------------------------------------------------ */

/* Before any work: every output path can be written, gnuplot is there for --plot, and the
 * device is there and goes with the precision (cli_check_device). 0 or an exit code after a
 * message. */
static int check_before_work(cli_opts *o, const eval_args *a)
{
    int rc = 0;
    if (o->history_path != NULL && (rc = cli_check_output("--history", o->history_path, 0)) != 0)
        return rc;
    if (a->plot_path != NULL) {
        if ((rc = cli_check_output("--plot", a->plot_path, 0)) != 0) return rc;
        if ((rc = plot_check_gnuplot()) != 0) return rc;
        o->params.compute_loss = 1; /* the loss curve */
    }
    return cli_check_device(o);
}

/* GPUALS_OK when the split leaves a user to evaluate, else GPUALS_ERR_EMPTY saying why. */
static gpuals_status check_evaluable(const csr *r, const split_options *sp, const csr *train,
                                     const csr *test)
{
    GPUALS_TRY(split_check_test(r, sp, test));
    if (metrics_eligible_users(train, test) > 0) return GPUALS_OK;
    return gpuals_fail(GPUALS_ERR_EMPTY, "no user to evaluate: none of the %lld test %s has a "
                                         "positive value on a new item of a user with a "
                                         "positive training interaction", (long long)test->nnz,
                       cli_plural(test->nnz, "interaction", "interactions"));
}

int cmd_eval(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_OPTIONS_GENERAL,
        CLI_OPTIONS_DATA,
        CLI_OPTIONS_TRAIN,
        CLI_OPTIONS_SPLIT,
        {"k", required_argument, NULL, OPT_K},
        {"eval-every", required_argument, NULL, OPT_EVAL_EVERY},
        {"plot", required_argument, NULL, OPT_PLOT},
        {0}};
    cli_opts o;
    eval_args a = {.k = 10, .eval_every = 1};
    split_options_default(&a.split);
    cli_opts_init(&o);
    int rc = cli_parse("eval", argc, argv, longopts, &o, own_option, &a, print_help, NULL);
    if (rc != 0) return rc < 0 ? 0 : rc;
    if ((rc = check_before_work(&o, &a)) != 0) return rc;

    /* Load and split. */
    gpuals_data *d = NULL;
    csr train = {0}, test = {0};
    gpuals_status s = cli_load_data(&o, &d);
    if (s == GPUALS_OK) s = split_use_ids(d, &a.split);
    if (s == GPUALS_OK) s = split_csr(&d->ratings, &a.split, &train, &test);
    split_keys_free(&a.split);
    if (s == GPUALS_OK) s = check_evaluable(&d->ratings, &a.split, &train, &test);
    if (s != GPUALS_OK) {
        csr_free(&train);
        csr_free(&test);
        gpuals_data_free(d);
        return cli_fail(s);
    }
    if (o.verbosity > 0)
        cli_note("split %s (seed %llu): %lld train %s, %lld test %s",
                 split_kind_name(a.split.kind), (unsigned long long)a.split.seed,
                 (long long)train.nnz, cli_plural(train.nnz, "entry", "entries"),
                 (long long)test.nnz, cli_plural(test.nnz, "entry", "entries"));

    /* Train and evaluate. */
    if (o.history_path != NULL || a.plot_path != NULL) cli_note_moot_settings(&o);
    metrics_result res;
    double seconds = 0, loss = NAN;
    if (o.history_path != NULL || a.plot_path != NULL)
        rc = train_with_history(&o, &a, d, &train, &test, &res, &seconds, &loss);
    else
        rc = train_plain(&o, &a, d, &train, &test, &res, &seconds, &loss);

    /* Report. */
    if (rc == 0) cli_cpu_only_note(&o, "ranking the test users for the metrics");
    if (rc == 0) {
        if (o.json)
            rc = print_json(&o, &a, d, &train, &test, &res, seconds, loss);
        else
            print_text(&a, &train, &test, &res, seconds);
    }
    csr_free(&train);
    csr_free(&test);
    gpuals_data_free(d);
    return rc;
}
