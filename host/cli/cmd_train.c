/*
 * cmd_train.c - `gpu-als train --out DIR`: train on the data and save the model directory.
 *
 * The directory (meta.json, factor and CSR .npy files, users.tsv, items.tsv) is written under
 * a temporary name and renamed when complete, so an interrupted run leaves no half model.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "model.h"
#include "report.h"

enum { OPT_OUT = 'o' };

typedef struct {
    const char *out;
} train_args;

static void print_help(void)
{
    printf("Usage: gpu-als train --out DIR [OPTIONS]\n\n"
           "Train implicit-feedback ALS on the data and save the model to DIR (a directory:\n"
           "meta.json, user_factors.npy, item_factors.npy, users.tsv, items.tsv and the\n"
           "training matrix as indptr.npy, indices.npy, data.npy). Prints one line per\n"
           "iteration on stderr.\n\n"
           "  -o, --out DIR           where to save the model (required): a new path, an empty\n"
           "                          directory or an earlier model directory, which is\n"
           "                          replaced as a whole once the new model is complete; any\n"
           "                          other existing path is refused before training\n\n"
           "%s\n%s\n%s\n%s",
           cli_help_data, cli_help_train, cli_help_general, cli_help_exit_codes);
}

/* --out may name a new path, an empty directory or an earlier model directory holding the
 * model's files and nothing else (which is replaced): the rule gpuals_model_save applies,
 * checked here so that anything else is refused before any training. */
static int check_model_path(const char *path)
{
    int rc = cli_check_output("--out", path, 1);
    if (rc != 0) return rc;
    int exists = 0;
    gpuals_status s = model_check_save_target(path, &exists);
    if (s == GPUALS_OK) return 0;
    cli_note("cannot write %s (--out): %s", path, gpuals_last_error());
    return gpuals_status_exit_code(s);
}

/* path resolved into out (cap bytes): wholly (realpath, links included) when it exists, else
 * its folder resolved and trailing slashes dropped; 0 when neither can be. */
static int resolved(const char *path, char *out, size_t cap)
{
    char *whole = realpath(path, NULL);
    if (whole) {
        int fits = snprintf(out, cap, "%s", whole) < (int)cap;
        free(whole);
        return fits;
    }
    char copy[4096];
    if (snprintf(copy, sizeof copy, "%s", path) >= (int)sizeof copy) return 0;
    for (size_t len = strlen(copy); len > 1 && copy[len - 1] == '/';) copy[--len] = '\0';
    char *slash = strrchr(copy, '/');
    const char *base = slash ? slash + 1 : copy;
    const char *dir = !slash ? "." : slash == copy ? "/" : (*slash = '\0', copy);
    char *real = realpath(dir, NULL);
    if (!real) return 0;
    int n = snprintf(out, cap, "%s/%s", strcmp(real, "/") == 0 ? "" : real, base);
    free(real);
    return n > 0 && (size_t)n < cap;
}

/* Where path leads through symbolic links, even dangling ones (which realpath refuses): each
 * link's target, taken relative to the link's folder, for up to 16 links; into out. */
static int follow_links(const char *path, char *out, size_t cap)
{
    if (snprintf(out, cap, "%s", path) >= (int)cap) return 0;
    for (int hops = 0; hops < 16; hops++) {
        struct stat st;
        char target[4096];
        if (lstat(out, &st) != 0 || !S_ISLNK(st.st_mode)) return 1;
        ssize_t n = readlink(out, target, sizeof target - 1);
        if (n < 0) return 1;
        target[n] = '\0';
        char *slash = strrchr(out, '/');
        if (target[0] == '/' || !slash) {
            if (snprintf(out, cap, "%s", target) >= (int)cap) return 0;
        } else {
            char next[8200];
            int w = snprintf(next, sizeof next, "%.*s/%s", (int)(slash - out), out, target);
            if (w < 0 || (size_t)w >= sizeof next || (size_t)w >= cap) return 0;
            memcpy(out, next, (size_t)w + 1);
        }
    }
    return 1;
}

/* --history must be neither the model directory nor inside it, even through a symbolic link:
 * the save would find the file in its way (or remove the history with the previous model).
 * Checked before any work. */
static int check_history_apart(const char *history, const char *out)
{
    char h[8200], m[8200], linked[8200];
    if (!history || !follow_links(history, linked, sizeof linked)) return 0;
    if (!resolved(linked, h, sizeof h) || !resolved(out, m, sizeof m)) return 0;
    size_t n = strlen(m);
    if (strcmp(h, m) != 0 && !(strncmp(h, m, n) == 0 && h[n] == '/')) return 0;
    return cli_usage_error("train", "--history %s is %s the model directory --out %s; write "
                           "it beside the model instead", history,
                           strcmp(h, m) == 0 ? "the same path as" : "inside", out);
}

static int own_option(int opt, const char *arg, void *ctx)
{
    train_args *a = ctx;
    if (opt != OPT_OUT) return cli_usage_error("train", "unknown option");
    a->out = arg;
    return check_model_path(arg);
}

int cmd_train(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_OPTIONS_GENERAL, CLI_OPTIONS_DATA, CLI_OPTIONS_TRAIN,
        {"out", required_argument, NULL, OPT_OUT}, {0}};
    cli_opts o;
    train_args a = {0};
    cli_opts_init(&o);
    int rc = cli_parse("train", argc, argv, longopts, &o, own_option, &a, print_help, NULL);
    if (rc != 0) return rc < 0 ? 0 : rc;
    if (a.out == NULL) return cli_usage_error("train", "train needs --out DIR");
    if ((rc = check_history_apart(o.history_path, a.out)) != 0) return rc;
    if ((rc = cli_check_device(&o)) != 0) return rc;

    /* Load and train. */
    gpuals_data *d = NULL;
    gpuals_model *m = NULL;
    gpuals_status s = cli_load_data(&o, &d);
    if (s == GPUALS_OK && o.verbosity > 1) report_summary_text(stderr, d, &o);
    if (s == GPUALS_OK) s = cli_train(&o, d, &m);
    gpuals_data_free(d);
    if (s != GPUALS_OK) return cli_fail(s);

    /* Save. */
    s = gpuals_model_save(m, a.out);
    if (s != GPUALS_OK) {
        gpuals_model_free(m);
        return cli_fail(s);
    }

    /* Report. */
    double loss = gpuals_model_final_loss(m);
    if (o.json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "model", cli_json_text(a.out));
        json_object_set_new(doc, "users", json_integer(gpuals_model_users(m)));
        json_object_set_new(doc, "items", json_integer(gpuals_model_items(m)));
        json_object_set_new(doc, "factors", json_integer(gpuals_model_factors(m)));
        json_object_set_new(doc, "iterations", json_integer(o.params.iters));
        json_object_set_new(doc, "seconds", json_real(gpuals_model_train_seconds(m)));
        json_object_set_new(doc, "final_loss", isfinite(loss) ? json_real(loss) : json_null());
        rc = report_json_print(doc);
        json_decref(doc);
    } else {
        int f = gpuals_model_factors(m);
        printf("saved %s: %lld users x %lld items, %d %s, %d %s in %.2f s", a.out,
               (long long)gpuals_model_users(m), (long long)gpuals_model_items(m), f,
               cli_plural(f, "factor", "factors"), o.params.iters,
               cli_plural(o.params.iters, "iteration", "iterations"),
               gpuals_model_train_seconds(m));
        if (isfinite(loss)) printf(", final loss %.7f", cli_shown_loss(loss));
        printf("\n");
    }
    gpuals_model_free(m);
    return rc;
}
