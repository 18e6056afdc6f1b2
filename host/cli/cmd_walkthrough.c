/*
 * cmd_walkthrough.c - `gpu-als` with no subcommand: the whole job, as a report on stdout.
 *
 *   1. the data: lines read and kept, users, items, the CSR shape, the most popular titles;
 *   2. a demo user who likes a few favourite titles (five well-known films by default,
 *      replaced by --like TITLE) joins the data as a new user, each favourite rated 5 (or
 *      --min-rating when that is higher: cli_like_value);
 *   3. training, one line per iteration (loss and seconds);
 *   4. for the demo user: the scores of the favourites and of other popular titles, the items
 *      most similar to the first favourite, the top recommendations, and why the first one
 *      is recommended (each liked item's contribution, Hu et al. section 5).
 *
 * The embedded data is filtered to ratings >= 3 unless --min-rating says otherwise.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset.h"
#include "lookup.h"
#include "model.h"
#include "report.h"

enum { OPT_N = 'n', OPT_LIKE = CLI_OPT_LOCAL };

#define MAX_LIKES 64
#define POPULAR_SHOWN 10
#define OTHER_SCORED 5
#define SIMILAR_SHOWN 10
#define EXPLAIN_SHOWN 5
#define DEMO_USER "gpu-als-demo-user"
#define DEFAULT_MIN_RATING 3.0

static const char *const default_likes[] = {
    "Star Wars: Episode V - The Empire Strikes Back (1980)",
    "Star Wars: Episode IV - A New Hope (1977)",
    "Star Wars: Episode VI - Return of the Jedi (1983)",
    "Matrix, The (1999)",
    "Toy Story (1995)",
};

typedef struct {
    const char *likes[MAX_LIKES];
    int n_likes;
    long n;
} walk_args;

void cli_print_main_usage(FILE *f);

static void print_help(void)
{
    cli_print_main_usage(stdout);
    printf("Walkthrough options:\n"
           "      --like TITLE        a favourite of the demo user (repeat it; default: five\n"
           "                          well-known films); a raw item id works too; each is\n"
           "                          rated 5, or --min-rating when that is higher\n"
           "  -n, --n N               how many recommendations to show (20)\n\n"
           "The walkthrough keeps ratings >= %g unless --min-rating is given.\n\n%s\n%s\n%s\n%s",
           DEFAULT_MIN_RATING, cli_help_data, cli_help_train, cli_help_general,
           cli_help_exit_codes);
}

static int own_option(int opt, const char *arg, void *ctx)
{
    walk_args *a = ctx;
    if (opt == OPT_N) return cli_parse_int("n", arg, 1, 10000, &a->n);
    if (opt != OPT_LIKE) return cli_usage_error(NULL, "unknown option");
    if (a->n_likes == MAX_LIKES) return cli_usage_error(NULL, "at most %d --like", MAX_LIKES);
    a->likes[a->n_likes++] = arg;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Steps                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Resolve the favourites (titles or raw ids) to item indices, on a model that carries d's
 * ids and titles but no factors yet. Duplicates are an error: each favourite counts once. */
static gpuals_status resolve_likes(const gpuals_data *d, const cli_opts *o, const walk_args *a,
                                   int64_t *items)
{
    csr conf;
    gpuals_model *names = NULL;
    GPUALS_TRY(csr_copy(&d->ratings, &conf));
    GPUALS_TRY(model_new(d, &o->params, &conf, &names));

    gpuals_status s = GPUALS_OK;
    for (int k = 0; s == GPUALS_OK && k < a->n_likes; k++) {
        s = lookup_item(names, a->likes[k], &items[k]);
        if (s != GPUALS_OK) {
            s = gpuals_fail_context(s, "favourite '%s'", a->likes[k]);
            break;
        }
        for (int j = 0; j < k; j++)
            if (items[j] == items[k])
                s = gpuals_fail(GPUALS_ERR_USAGE, "favourites '%s' and '%s' are the same item",
                                a->likes[j], a->likes[k]);
    }
    gpuals_model_free(names);
    return s;
}

/* The training section: settings, then one line per iteration on stdout; the --history file
 * is kept by the shared cli_progress, quiet so that it writes nothing on stderr. */
typedef struct {
    cli_opts quiet;
    cli_progress history;
    int iters;
    int json;
    json_t *lines;
} walk_progress;

/* v for printing with 4 decimals: a value that rounds to zero prints as 0.0000, not -0.0000. */
static double shown4(double v)
{
    return fabs(v) < 0.00005 ? 0.0 : v;
}

static int walk_iteration(int iteration, double seconds, double loss, void *user)
{
    walk_progress *w = user;
    const int stop = cli_progress_iteration(iteration, seconds, loss, &w->history);
    if (w->json) {
        json_t *row = json_object();
        json_object_set_new(row, "iteration", json_integer(iteration));
        json_object_set_new(row, "seconds", json_real(seconds));
        json_object_set_new(row, "loss", isfinite(loss) ? json_real(loss) : json_null());
        json_array_append_new(w->lines, row);
    } else {
        printf("  iter %3d/%d  loss %.7f  %.3f s\n", iteration, w->iters, cli_shown_loss(loss),
               seconds);
        fflush(stdout);
    }
    return stop;
}

static const char *name_of(const gpuals_model *m, int64_t i)
{
    const char *t = gpuals_model_item_title(m, i);
    return t[0] ? t : gpuals_model_item_id(m, i);
}

static json_t *hit_json(const gpuals_model *m, int64_t i, const char *key, double v)
{
    json_t *row = json_object();
    json_object_set_new(row, "item", cli_json_text(gpuals_model_item_id(m, i)));
    const char *t = gpuals_model_item_title(m, i);
    json_object_set_new(row, "title", t[0] ? cli_json_text(t) : json_null());
    json_object_set_new(row, key, json_real(v));
    return row;
}

/* Scores of the favourites and of popular titles the demo user does not have. */
static void report_scores(const gpuals_model *m, const gpuals_data *d, int64_t demo,
                          const int64_t *likes, int n_likes, json_t *doc)
{
    const float *x = gpuals_model_user_factors(m) + (size_t)demo * (size_t)m->factors;
    json_t *fav = json_array(), *other = json_array();
    int64_t pop[POPULAR_SHOWN + MAX_LIKES];
    int n_pop = report_popular(d, POPULAR_SHOWN + n_likes, pop), shown = 0;

    if (!doc) printf("\nScores of the demo user's favourites (x_u . y_i):\n");
    for (int k = 0; k < n_likes; k++) {
        const float *y = gpuals_model_item_factors(m) + (size_t)likes[k] * (size_t)m->factors;
        double v = 0;
        for (int c = 0; c < m->factors; c++) v += (double)x[c] * y[c];
        if (doc) json_array_append_new(fav, hit_json(m, likes[k], "score", v));
        else printf("  %8.4f  %s\n", shown4(v), name_of(m, likes[k]));
    }
    if (!doc) printf("\n...and of other popular titles:\n");
    for (int k = 0; k < n_pop && shown < OTHER_SCORED; k++) {
        int liked = 0;
        for (int j = 0; j < n_likes; j++) liked |= pop[k] == likes[j];
        if (liked) continue;
        const float *y = gpuals_model_item_factors(m) + (size_t)pop[k] * (size_t)m->factors;
        double v = 0;
        for (int c = 0; c < m->factors; c++) v += (double)x[c] * y[c];
        if (doc) json_array_append_new(other, hit_json(m, pop[k], "score", v));
        else printf("  %8.4f  %s\n", shown4(v), name_of(m, pop[k]));
        shown++;
    }
    if (doc) {
        json_object_set_new(doc, "favourite_scores", fav);
        json_object_set_new(doc, "popular_scores", other);
    } else {
        json_decref(fav);
        json_decref(other);
    }
}

/* Items similar to the first favourite, recommendations, and the first one explained. */
static gpuals_status report_queries(const gpuals_model *m, int64_t demo, int64_t first_like,
                                    int n, json_t *doc)
{
    gpuals_hit sim[SIMILAR_SHOWN], why[EXPLAIN_SHOWN];
    gpuals_hit *rec = malloc((size_t)n * sizeof *rec);
    int k_sim = 0, k_rec = 0, k_why = 0;
    double total = 0, model_score = 0;
    gpuals_rec_options ro;
    gpuals_rec_options_default(&ro);
    if (rec == NULL) return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory");

    gpuals_status s = gpuals_similar_items(m, first_like, SIMILAR_SHOWN, 0, sim, &k_sim);
    if (s == GPUALS_OK) s = gpuals_recommend(m, demo, n, &ro, rec, &k_rec);
    if (s == GPUALS_OK && k_rec > 0)
        s = gpuals_explain(m, demo, rec[0].index, EXPLAIN_SHOWN, &total, &model_score, why,
                           &k_why);
    if (s != GPUALS_OK) {
        free(rec);
        return s;
    }

    if (doc) {
        json_t *a = json_array(), *b = json_array(), *c = json_array(), *e = json_object();
        for (int k = 0; k < k_sim; k++)
            json_array_append_new(a, hit_json(m, sim[k].index, "similarity", sim[k].score));
        for (int k = 0; k < k_rec; k++)
            json_array_append_new(b, hit_json(m, rec[k].index, "score", rec[k].score));
        for (int k = 0; k < k_why; k++)
            json_array_append_new(c, hit_json(m, why[k].index, "contribution", why[k].score));
        json_object_set_new(doc, "similar_to", cli_json_text(gpuals_model_item_id(m, first_like)));
        json_object_set_new(doc, "similar", a);
        json_object_set_new(doc, "recommendations", b);
        if (k_rec > 0) {
            json_object_set_new(e, "item", cli_json_text(gpuals_model_item_id(m, rec[0].index)));
            const char *title = gpuals_model_item_title(m, rec[0].index);
            json_object_set_new(e, "title", title[0] ? cli_json_text(title) : json_null());
            json_object_set_new(e, "total", json_real(total));
            json_object_set_new(e, "model_score", json_real(model_score));
            json_object_set_new(e, "contributions", c);
        } else {
            json_decref(c);
        }
        json_object_set_new(doc, "explanation", e);
    } else {
        printf("\nItems most similar to %s (cosine):\n", name_of(m, first_like));
        for (int k = 0; k < k_sim; k++)
            printf("  %2d  %.4f  %s\n", k + 1, shown4(sim[k].score), name_of(m, sim[k].index));
        printf("\nTop %d recommendations for the demo user:\n", n);
        if (k_rec < n)
            printf("  (only %d candidates remain after leaving out the favourites)\n", k_rec);
        for (int k = 0; k < k_rec; k++)
            printf("  %2d  %.4f  %s\n", k + 1, shown4(rec[k].score), name_of(m, rec[k].index));
        if (k_rec > 0) {
            printf("\nWhy %s? (Hu et al. section 5: each liked item's contribution)\n",
                   name_of(m, rec[0].index));
            /* The decomposition solves the user exactly against the final items; the model's
             * user factors were solved before the items last moved. */
            char t_text[32], s_text[32];
            snprintf(t_text, sizeof t_text, "%.4f", shown4(total));
            snprintf(s_text, sizeof s_text, "%.4f", shown4(model_score));
            printf("  total %s, model score %s%s\n", t_text, s_text,
                   strcmp(t_text, s_text) != 0
                       ? " (they differ: the items moved after the users were last solved)"
                       : "");
            for (int k = 0; k < k_why; k++)
                printf("  %+8.4f  %s\n", shown4(why[k].score), name_of(m, why[k].index));
        }
    }
    free(rec);
    return GPUALS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* The command                                                                                */
/* ------------------------------------------------------------------------------------------ */

int cmd_walkthrough(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_OPTIONS_GENERAL, CLI_OPTIONS_DATA, CLI_OPTIONS_TRAIN,
        {"like", required_argument, NULL, OPT_LIKE}, {"n", required_argument, NULL, OPT_N},
        {0}};
    cli_opts o;
    walk_args a = {.n = 20};
    cli_opts_init(&o);
    o.params.compute_loss = 1; /* the report shows the loss of every iteration */
    int rc = cli_parse(NULL, argc, argv, longopts, &o, own_option, &a, print_help, NULL);
    if (rc != 0) return rc < 0 ? 0 : rc;
    if ((rc = cli_check_device(&o)) != 0) return rc;
    if (!o.have_min_rating) {
        o.load.min_rating = DEFAULT_MIN_RATING;
        o.have_min_rating = 1;
    }
    int using_defaults = a.n_likes == 0;
    if (using_defaults) {
        a.n_likes = (int)(sizeof default_likes / sizeof default_likes[0]);
        for (int k = 0; k < a.n_likes; k++) a.likes[k] = default_likes[k];
    }
    json_t *doc = o.json ? json_object() : NULL;

    /* 1. The data. */
    gpuals_data *d = NULL;
    gpuals_model *m = NULL;
    walk_progress w = {.iters = o.params.iters, .json = o.json, .lines = json_array()};
    gpuals_status s = cli_load_data(&o, &d);
    if (s != GPUALS_OK) goto fail;
    if (doc) {
        json_object_set_new(doc, "data", report_summary_json(d, &o));
    } else {
        printf("== Data\n");
        report_summary_text(stdout, d, &o);
    }
    int64_t pop[POPULAR_SHOWN];
    int n_pop = report_popular(d, POPULAR_SHOWN, pop);
    json_t *pop_json = json_array();
    if (!doc) printf("\nMost popular titles (kept interactions):\n");
    for (int k = 0; k < n_pop; k++) {
        int64_t cnt = csr_row_len(&d->ratings_t, pop[k]);
        if (!doc) printf("  %2d  %5lld  %s\n", k + 1, (long long)cnt, report_item_name(d, pop[k]));
        json_t *row = json_object();
        json_object_set_new(row, "item", cli_json_text(idmap_name(d->items, pop[k])));
        json_object_set_new(row, "title", cli_json_text(report_item_name(d, pop[k])));
        json_object_set_new(row, "interactions", json_integer(cnt));
        json_array_append_new(pop_json, row);
    }
    if (doc) json_object_set_new(doc, "popular", pop_json);
    else json_decref(pop_json);

    /* 2. The demo user joins the data. */
    int64_t likes[MAX_LIKES], demo = -1;
    float values[MAX_LIKES];
    s = resolve_likes(d, &o, &a, likes);
    if (s != GPUALS_OK && using_defaults)
        s = gpuals_fail_context(s, "the demo user's default favourites are MovieLens titles; "
                                   "name favourites from your data with --like TITLE");
    if (s != GPUALS_OK) goto fail;
    const float demo_rating = cli_like_value(o.load.min_rating);
    for (int k = 0; k < a.n_likes; k++) values[k] = demo_rating;
    s = dataset_add_user(d, DEMO_USER, a.n_likes, likes, values, &demo);
    if (s != GPUALS_OK) goto fail;
    if (!doc) {
        printf("\n== The demo user (%s) likes, each rated %g:\n", DEMO_USER, demo_rating);
        for (int k = 0; k < a.n_likes; k++) printf("  %s\n", report_item_name(d, likes[k]));
        printf("\nWith the demo user: %lld x %lld, %lld stored\n",
               (long long)d->ratings.rows, (long long)d->ratings.cols,
               (long long)d->ratings.nnz);
    }

    /* 3. Training. */
    const gpuals_params *p = &o.params;
    if (!doc) {
        printf("\n== Training: %d %s, reg %g, alpha %g (%s confidence), ", p->factors,
               cli_plural(p->factors, "factor", "factors"), p->reg, p->alpha,
               p->confidence == GPUALS_CONF_HU    ? "hu"
               : p->confidence == GPUALS_CONF_LOG ? "log"
                                                  : "implicit");
        if (p->solver == GPUALS_SOLVER_CG)
            printf("conjugate gradient (%d %s)", p->cg_steps,
                   cli_plural(p->cg_steps, "step", "steps"));
        else
            printf("Cholesky");
        printf(", %d %s\n", p->iters, cli_plural(p->iters, "iteration", "iterations"));
    }
    w.quiet = o;
    w.quiet.verbosity = 0;
    if (cli_progress_start(&w.history, &w.quiet) != 0) {
        s = gpuals_fail(GPUALS_ERR_IO, "cannot write the history file %s: %s", o.history_path,
                        strerror(errno));
        goto fail;
    }
    cli_note_moot_settings(&o);
    s = gpuals_train(d, p, walk_iteration, &w, &m);
    if (cli_progress_finish(&w.history) != 0 && s == GPUALS_OK)
        s = gpuals_fail(GPUALS_ERR_IO, "cannot write the history file %s: %s", o.history_path,
                        strerror(errno));
    if (s != GPUALS_OK) goto fail;
    cli_device_note(&o, m);
    if (doc) {
        json_object_set_new(doc, "iterations", w.lines);
        w.lines = NULL;
        json_object_set_new(doc, "train_seconds", json_real(gpuals_model_train_seconds(m)));
        json_object_set_new(doc, "device", json_string(m->device_used == GPUALS_DEVICE_GPU
                                                           ? "gpu"
                                                           : "cpu"));
    } else {
        printf("  trained in %.2f s on the %s\n", gpuals_model_train_seconds(m),
               m->device_used == GPUALS_DEVICE_GPU ? "GPU" : "CPU");
    }

    /* 4. The demo user's answers. */
    cli_cpu_only_note(&o, "the demo user's scores, similar items, recommendations and "
                          "explanation");
    report_scores(m, d, demo, likes, a.n_likes, doc);
    s = report_queries(m, demo, likes[0], (int)a.n, doc);
    if (s != GPUALS_OK) goto fail;

    if (doc) rc = report_json_print(doc);
    json_decref(doc);
    json_decref(w.lines);
    gpuals_model_free(m);
    gpuals_data_free(d);
    return rc;

fail:
    cli_progress_finish(&w.history);
    json_decref(doc);
    json_decref(w.lines);
    gpuals_model_free(m);
    gpuals_data_free(d);
    return cli_fail(s);
}
