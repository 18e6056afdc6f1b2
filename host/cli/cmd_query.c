/*
 * cmd_query.c - the query commands: recommend, similar, score and explain.
 *
 * Each works on a saved model (--model DIR) or, without one, trains a model on the data options
 * first. Users and items are named by raw id; items also by title (exact, then ignoring case,
 * then substring). Results go to stdout (or --out FILE, written under a temporary name and
 * renamed when complete) as TSV with a header line, or with --json as one JSON document.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "csr.h"
#include "lookup.h"
#include "tmppath.h"
#include "model.h"
#include "query.h"
#include "report.h"

enum {
    OPT_N = 'n',
    OPT_OUT = 'o',
    OPT_USER = CLI_OPT_LOCAL,
    OPT_USERS_FILE,
    OPT_ALL_USERS,
    OPT_LIKE,
    OPT_INCLUDE_LIKED,
    OPT_ALLOW,
    OPT_DENY,
    OPT_INCLUDE_SELF,
    OPT_PAIRS,
};

#define MAX_LIKES 256

/* Everything the query commands' own options set. */
typedef struct {
    const char *cmd;
    long n;
    const char *user;                 /* the last --user */
    const char *user_list[MAX_LIKES]; /* every --user, in order */
    int n_user_list;
    const char *users_file;
    int all_users;
    const char *likes[MAX_LIKES];
    int n_likes;
    int include_liked;
    const char *allow_file;
    const char *deny_file;
    const char *out_path;
    int include_self;
    const char *pairs_file;
} query_args;

static int own_option(int opt, const char *arg, void *ctx)
{
    query_args *a = ctx;
    switch (opt) {
    case OPT_N: return cli_parse_int("n", arg, 1, 1000000, &a->n);
    case OPT_USER:
        if (a->n_user_list == MAX_LIKES)
            return cli_usage_error(a->cmd, "at most %d --user options", MAX_LIKES);
        a->user_list[a->n_user_list++] = arg;
        a->user = arg;
        return 0;
    case OPT_USERS_FILE: a->users_file = arg; return 0;
    case OPT_ALL_USERS: a->all_users = 1; return 0;
    case OPT_LIKE:
        if (a->n_likes == MAX_LIKES)
            return cli_usage_error(a->cmd, "at most %d --like options", MAX_LIKES);
        a->likes[a->n_likes++] = arg;
        return 0;
    case OPT_INCLUDE_LIKED: a->include_liked = 1; return 0;
    case OPT_ALLOW: a->allow_file = arg; return 0;
    case OPT_DENY: a->deny_file = arg; return 0;
    case OPT_OUT: a->out_path = arg; return cli_check_output("--out", arg, 0);
    case OPT_INCLUDE_SELF: a->include_self = 1; return 0;
    case OPT_PAIRS: a->pairs_file = arg; return 0;
    default: return cli_usage_error(a->cmd, "unknown option");
    }
}

#define QUERY_OPTIONS                                                                         \
    CLI_OPTIONS_GENERAL, CLI_OPTIONS_DATA, CLI_OPTIONS_TRAIN, CLI_OPTIONS_MODEL,              \
        {"n", required_argument, NULL, OPT_N}, {"out", required_argument, NULL, OPT_OUT}

static const char help_query_common[] =
    "  -n, --n N               how many results (default 10)\n"
    "  -o, --out FILE          write the results to FILE instead of stdout\n";

static void print_help_tail(void)
{
    printf("%s\n%s\n%s\n%s\n%s", cli_help_model, cli_help_data, cli_help_train,
           cli_help_general, cli_help_exit_codes);
}

/* ------------------------------------------------------------------------------------------ */
/* Output                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* An id or title as one TSV field: a backslash, tab, newline or carriage return inside it is
 * written as \\, \t, \n or \r (as in a model's users.tsv and items.tsv), so a line always has
 * its header's columns. */
static void put_field(FILE *f, const char *s)
{
    for (; s != NULL && *s; s++) {
        switch (*s) {
        case '\\': fputs("\\\\", f); break;
        case '\t': fputs("\\t", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        default: fputc(*s, f);
        }
    }
}

static json_t *json_title(const gpuals_model *m, int64_t i)
{
    const char *t = gpuals_model_item_title(m, i);
    return t[0] ? cli_json_text(t) : json_null();
}

/* Write a document and release it; the exit code. */
static int emit_json(cli_output *out, json_t *doc)
{
    int bad = json_dumpf(doc, out->f, JSON_INDENT(2) | JSON_REAL_PRECISION(9)) != 0;
    bad |= fputc('\n', out->f) == EOF;
    json_decref(doc);
    return bad ? gpuals_status_exit_code(GPUALS_ERR_IO) : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Shared steps                                                                               */
/* ------------------------------------------------------------------------------------------ */

/* Call fn(line, ctx) for every line of path, without its line ending or a UTF-8 byte order
 * mark at the start of the file (and, with trim, without the white space around it); blank
 * lines and lines starting with '#' are skipped. A failure of fn gets "path:line" put before
 * its message. A directory, a read error and a file with no
 * entries are errors. *n_lines (may be NULL) receives how many lines fn saw. */
static gpuals_status for_each_line(const char *path, int trim,
                                   gpuals_status (*fn)(const char *line, void *ctx), void *ctx,
                                   int64_t *n_lines)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return gpuals_fail(GPUALS_ERR_IO, "%s: is a directory", path);
    FILE *f = fopen(path, "r");
    if (f == NULL) return gpuals_fail(GPUALS_ERR_IO, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int64_t used = 0;
    gpuals_status s = GPUALS_OK;
    while (s == GPUALS_OK && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        /* A UTF-8 byte order mark before the first line (editors on Windows write one) is
         * not part of it, as in the ratings files. */
        if (lineno == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
            memmove(line, line + 3, (size_t)len - 2);
            len -= 3;
        }
        char *text = line;
        if (trim) {
            while (len > 0 && isspace((unsigned char)line[len - 1])) line[--len] = '\0';
            while (isspace((unsigned char)*text)) text++;
        }
        if (*text == '\0' || *text == '#') continue;
        s = fn(text, ctx);
        if (s != GPUALS_OK) s = gpuals_fail_context(s, "%s:%ld", path, lineno);
        used++;
    }
    if (s == GPUALS_OK && ferror(f))
        s = gpuals_fail(GPUALS_ERR_IO, "%s: read error after line %ld", path, lineno);
    if (s == GPUALS_OK && used == 0)
        s = gpuals_fail(GPUALS_ERR_EMPTY, "%s: no entries in the file", path);
    free(line);
    fclose(f);
    if (n_lines != NULL) *n_lines = used;
    return s;
}

/* A growing list of dense indices of the users or items named one per line of a file. */
typedef struct {
    const gpuals_model *m;
    gpuals_status (*lookup)(const gpuals_model *m, const char *name, int64_t *index);
    int64_t *at;
    int64_t n, cap;
} index_list;

static gpuals_status index_list_add(const char *line, void *ctx)
{
    index_list *l = ctx;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        int64_t *grown = realloc(l->at, (size_t)l->cap * sizeof *grown);
        if (grown == NULL) return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory");
        l->at = grown;
    }
    GPUALS_TRY(l->lookup(l->m, line, &l->at[l->n]));
    l->n++;
    return GPUALS_OK;
}

/* Read the users (lookup_user) or items (lookup_item: ids or titles) listed in path, one per
 * line with the white space around it ignored, into a new array *out of *n entries; an empty
 * list is GPUALS_ERR_EMPTY. */
static gpuals_status read_index_list(const gpuals_model *m, const char *path,
                                     gpuals_status (*lookup)(const gpuals_model *, const char *,
                                                             int64_t *),
                                     int64_t **out, int64_t *n)
{
    index_list l = {.m = m, .lookup = lookup};
    gpuals_status s = for_each_line(path, 1, index_list_add, &l, NULL);
    if (s != GPUALS_OK) {
        free(l.at);
        return s;
    }
    *out = l.at;
    *n = l.n;
    return GPUALS_OK;
}

/* The liked items of a new user given as ids or titles, as a 1 x n_items CSR of confidences
 * (each item rated cli_like_value of the model's min_rating, as the walkthrough rates its
 * demo user's) and the folded-in factors. */
static gpuals_status fold_in_likes(const gpuals_model *m, const char *const *likes, int n_likes,
                                   float *x, csr *liked)
{
    int64_t items[MAX_LIKES];
    float values[MAX_LIKES];

    for (int k = 0; k < n_likes; k++) {
        gpuals_status s = lookup_item(m, likes[k], &items[k]);
        if (s != GPUALS_OK) return gpuals_fail_context(s, "--like '%s'", likes[k]);
        for (int j = 0; j < k; j++)
            if (items[j] == items[k])
                return gpuals_fail(GPUALS_ERR_USAGE, "--like '%s' and --like '%s' name the same "
                                   "item", likes[j], likes[k]);
        values[k] = cli_like_value(m->summary.min_rating);
    }
    GPUALS_TRY(gpuals_fold_in(m, items, values, n_likes, x));
    /* The confidences of the liked items, for filtering and explain. */
    return query_user_confidences(m, items, values, n_likes, liked);
}

/* ------------------------------------------------------------------------------------------ */
/* recommend                                                                                  */
/* ------------------------------------------------------------------------------------------ */

static void help_recommend(void)
{
    printf("Usage: gpu-als recommend (--user ID | --users FILE | --all-users | --like ITEM...)\n"
           "                         [OPTIONS]\n\n"
           "Top-N items for users, best first, leaving out the items each user likes in the\n"
           "training data (with --min-rating, ratings below it are not likes and can be\n"
           "recommended; --deny FILE leaves out more). Never returns a filtered item; when\n"
           "fewer candidates remain it returns fewer and says so on stderr. Output: TSV user,\n"
           "rank, item, score, title (or --json).\n\n"
           "      --user ID           a user (by raw id; repeat it for several)\n"
           "      --users FILE        the users listed in FILE, one raw id per line (white\n"
           "                          space around it and blank lines ignored)\n"
           "      --all-users         every user of the model\n"
           "      --like ITEM         a new user who likes ITEM (raw id or title; repeat it),\n"
           "                          folded in against the item factors without retraining\n"
           "                          (on the CPU: folding in has no GPU implementation); each\n"
           "                          counts as a rating of 5, or of the model's --min-rating\n"
           "                          when that is higher\n"
           "      --include-liked     do not leave out the user's own items\n"
           "      --allow FILE        rank only the items listed in FILE (ids or titles)\n"
           "      --deny FILE         never return the items listed in FILE\n%s\n",
           help_query_common);
    print_help_tail();
}

/* The users a recommend run asks about (dense indices). */
static gpuals_status recommend_users(const gpuals_model *m, const query_args *a, int64_t **users,
                                     int64_t *n)
{
    if (a->all_users) {
        *users = malloc((size_t)(m->n_users ? m->n_users : 1) * sizeof **users);
        if (*users == NULL) return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory");
        for (int64_t u = 0; u < m->n_users; u++) (*users)[u] = u;
        *n = m->n_users;
        return GPUALS_OK;
    }
    if (a->n_user_list > 0) {
        *users = malloc((size_t)a->n_user_list * sizeof **users);
        if (*users == NULL) return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory");
        *n = a->n_user_list;
        for (int k = 0; k < a->n_user_list; k++) {
            gpuals_status s = lookup_user(m, a->user_list[k], &(*users)[k]);
            if (s != GPUALS_OK) {
                free(*users);
                *users = NULL;
                return s;
            }
        }
        return GPUALS_OK;
    }

    /* --users FILE: one raw id per line. */
    return read_index_list(m, a->users_file, lookup_user, users, n);
}

/* Write one user's ranked items. */
static void write_ranked(cli_output *out, json_t *arr, const gpuals_model *m, const char *user,
                         const gpuals_hit *hits, int k, int requested)
{
    if (arr != NULL) {
        json_t *row = json_object(), *items = json_array();
        json_object_set_new(row, "user", cli_json_text(user));
        json_object_set_new(row, "requested", json_integer(requested));
        json_object_set_new(row, "returned", json_integer(k));
        for (int r = 0; r < k; r++) {
            json_t *it = json_object();
            json_object_set_new(it, "rank", json_integer(r + 1));
            json_object_set_new(it, "item", cli_json_text(gpuals_model_item_id(m, hits[r].index)));
            json_object_set_new(it, "title", json_title(m, hits[r].index));
            json_object_set_new(it, "score", json_real(hits[r].score));
            json_array_append_new(items, it);
        }
        json_object_set_new(row, "items", items);
        json_array_append_new(arr, row);
        return;
    }
    for (int r = 0; r < k; r++) {
        put_field(out->f, user);
        fprintf(out->f, "\t%d\t", r + 1);
        put_field(out->f, gpuals_model_item_id(m, hits[r].index));
        fprintf(out->f, "\t%.6f\t", hits[r].score);
        put_field(out->f, gpuals_model_item_title(m, hits[r].index));
        fputc('\n', out->f);
    }
}

/* Say that a list came out shorter than asked for. */
static void note_short(const char *who, int k, int n)
{
    cli_note("%s: only %d candidate%s; returning %d of %d", who, k,
             k == 1 ? " remains" : "s remain", k, n);
}

/* Known users: their factor rows scored in batches by one matrix product each and a partial
 * selection (topn_batch_on). Among many users, those with no ranking (query_user_rankable: no
 * interactions, only disliked items, or zero factors) are left out and counted; a single such
 * user is an error that says which, not a ranking of ties. */
static gpuals_status recommend_many(const gpuals_model *m, const int64_t *users, int64_t n_users,
                                    int n, const gpuals_rec_options *ro, cli_output *out,
                                    json_t *arr, const cli_opts *o)
{
    size_t f = (size_t)m->factors;
    float *Q = malloc((size_t)(n_users ? n_users : 1) * f * sizeof *Q);
    int64_t *rows = malloc((size_t)(n_users ? n_users : 1) * sizeof *rows);
    int64_t *idx = malloc((size_t)(n_users ? n_users : 1) * (size_t)n * sizeof *idx);
    float *score = malloc((size_t)(n_users ? n_users : 1) * (size_t)n * sizeof *score);
    int *n_out = malloc((size_t)(n_users ? n_users : 1) * sizeof *n_out);
    unsigned char *allowed = NULL;
    gpuals_hit *hits = malloc((size_t)n * sizeof *hits);
    gpuals_status s = GPUALS_OK;
    if (!Q || !rows || !idx || !score || !n_out || !hits)
        s = gpuals_fail(GPUALS_ERR_NOMEM, "out of memory for %lld users' recommendations",
                        (long long)n_users);

    /* The query rows: users with a ranking; the reason of the last one without. */
    int64_t nq = 0, empty = 0;
    gpuals_status unrankable = GPUALS_OK;
    for (int64_t q = 0; s == GPUALS_OK && q < n_users; q++) {
        if ((unrankable = query_user_rankable(m, users[q])) != GPUALS_OK) {
            empty++;
            continue;
        }
        memcpy(Q + (size_t)nq * f, m->X + (size_t)users[q] * f, f * sizeof *Q);
        rows[nq++] = users[q];
    }

    /* The allow/deny mask over items. */
    if (s == GPUALS_OK) s = query_allowed_mask(m->n_items, ro, &allowed);

    /* Rank and write. */
    topn_filter flt = {0};
    if (ro->filter_liked) {
        flt.exclude = &m->conf;
        flt.exclude_row = rows;
    }
    flt.allowed = allowed;
    if (s == GPUALS_OK && nq == 0 && n_users == 1) s = unrankable; /* its message says why */
    gpuals_device used = GPUALS_DEVICE_CPU;
    char device_note[512] = "";
    if (s == GPUALS_OK && nq > 0)
        s = topn_batch_on(o->params.device, Q, nq, m->Y, m->n_items, m->factors, &flt, n, idx,
                          score, n_out, &used, device_note, sizeof device_note);
    if (s == GPUALS_OK) cli_device_report(o, used, device_note);
    int64_t short_lists = 0;
    for (int64_t q = 0; s == GPUALS_OK && q < nq; q++) {
        for (int k = 0; k < n_out[q]; k++) {
            hits[k].index = idx[q * n + k];
            hits[k].score = score[q * n + k];
        }
        short_lists += n_out[q] < n;
        write_ranked(out, arr, m, gpuals_model_user_id(m, rows[q]), hits, n_out[q], n);
    }
    if (s == GPUALS_OK && o->verbosity > 0 && empty > 0)
        cli_note("%lld %s with nothing to rank left out (no interactions, or only disliked "
                 "items)", (long long)empty, cli_plural(empty, "user", "users"));
    if (s == GPUALS_OK && o->verbosity > 0 && short_lists > 0 && nq == 1)
        note_short(gpuals_model_user_id(m, rows[0]), n_out[0], n);
    else if (s == GPUALS_OK && o->verbosity > 0 && short_lists > 0)
        cli_note("%lld user%s had fewer than %d candidates and got shorter lists",
                 (long long)short_lists, short_lists == 1 ? "" : "s", n);

    free(Q);
    free(rows);
    free(idx);
    free(score);
    free(n_out);
    free(allowed);
    free(hits);
    return s;
}

static int run_recommend(const gpuals_model *m, const query_args *a, const cli_opts *o)
{
    int n = (int)a->n;
    gpuals_rec_options ro;
    gpuals_rec_options_default(&ro);
    ro.filter_liked = !a->include_liked;
    int64_t *allow = NULL, *deny = NULL, *users = NULL, n_users = 0;
    gpuals_hit *hits = malloc((size_t)n * sizeof *hits);
    gpuals_status s = hits ? GPUALS_OK : gpuals_fail(GPUALS_ERR_NOMEM, "out of memory");
    int rc = 0;

    /* Allow and deny lists. */
    if (s == GPUALS_OK && a->allow_file != NULL)
        s = read_index_list(m, a->allow_file, lookup_item, &allow, &ro.n_allow);
    if (s == GPUALS_OK && a->deny_file != NULL)
        s = read_index_list(m, a->deny_file, lookup_item, &deny, &ro.n_deny);
    ro.allow = allow;
    ro.deny = deny;

    cli_output out;
    json_t *arr = o->json ? json_array() : NULL;
    if (s == GPUALS_OK) rc = cli_output_open(&out, a->out_path);
    if (s != GPUALS_OK || rc != 0) goto done;
    if (arr == NULL) fprintf(out.f, "user\trank\titem\tscore\ttitle\n");

    /* A new user from --like: fold in, then rank. */
    if (a->n_likes > 0) {
        cli_cpu_only_note(o, "folding in and ranking the new user");
        float *x = malloc((size_t)m->factors * sizeof *x);
        csr liked = {0};
        s = x ? fold_in_likes(m, a->likes, a->n_likes, x, &liked)
              : gpuals_fail(GPUALS_ERR_NOMEM, "out of memory");
        int k = 0;
        if (s == GPUALS_OK)
            s = query_recommend_vector(m, x, ro.filter_liked ? &liked : NULL, n, &ro, hits, &k);
        if (s == GPUALS_OK) {
            if (k < n && o->verbosity > 0)
                note_short("the new user", k, n);
            write_ranked(&out, arr, m, "(new user)", hits, k, n);
        }
        csr_free(&liked);
        free(x);
    } else {
        s = recommend_users(m, a, &users, &n_users);
        if (s == GPUALS_OK) s = recommend_many(m, users, n_users, n, &ro, &out, arr, o);
    }
    if (s == GPUALS_OK && arr != NULL) {
        rc = emit_json(&out, arr);
        arr = NULL;
    }
    int close_rc = cli_output_close(&out, s == GPUALS_OK && rc == 0);
    if (rc == 0) rc = close_rc;

done:
    json_decref(arr);
    free(allow);
    free(deny);
    free(users);
    free(hits);
    if (s != GPUALS_OK) return cli_fail(s);
    return rc;
}

int cmd_recommend(int argc, char **argv)
{
    static const struct option longopts[] = {
        QUERY_OPTIONS,
        {"user", required_argument, NULL, OPT_USER},
        {"users", required_argument, NULL, OPT_USERS_FILE},
        {"all-users", no_argument, NULL, OPT_ALL_USERS},
        {"like", required_argument, NULL, OPT_LIKE},
        {"include-liked", no_argument, NULL, OPT_INCLUDE_LIKED},
        {"allow", required_argument, NULL, OPT_ALLOW},
        {"deny", required_argument, NULL, OPT_DENY},
        {0}};
    cli_opts o;
    query_args a = {.cmd = "recommend", .n = 10};
    cli_opts_init(&o);
    int rc = cli_parse("recommend", argc, argv, longopts, &o, own_option, &a, help_recommend,
                       NULL);
    if (rc != 0) return rc < 0 ? 0 : rc;
    int modes = (a.user != NULL) + (a.users_file != NULL) + a.all_users + (a.n_likes > 0);
    if (modes != 1)
        return cli_usage_error("recommend", "give exactly one of --user, --users, --all-users "
                                            "or --like");
    if (a.allow_file != NULL && a.deny_file != NULL)
        return cli_usage_error("recommend", "--allow and --deny cannot be combined");
    if ((rc = cli_check_device(&o)) != 0) return rc;

    gpuals_model *m = NULL;
    gpuals_status s = cli_model(&o, &m);
    if (s != GPUALS_OK) return cli_fail(s);
    rc = run_recommend(m, &a, &o);
    gpuals_model_free(m);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* similar                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static void help_similar(void)
{
    printf("Usage: gpu-als similar ITEM [OPTIONS]\n"
           "       gpu-als similar --user ID [OPTIONS]\n\n"
           "The items most like ITEM (a raw id or a title), or the users most like user ID, by\n"
           "cosine similarity of their factors. The query itself is left out unless\n"
           "--include-self. An item without interactions has similarity 0 with everything.\n"
           "Runs on the CPU (no GPU implementation).\n"
           "Output: TSV rank, item (or user), similarity, title (or --json).\n\n"
           "      --user ID           similar users instead of items\n"
           "      --include-self      keep the query in the results\n%s\n",
           help_query_common);
    print_help_tail();
}

int cmd_similar(int argc, char **argv)
{
    static const struct option longopts[] = {
        QUERY_OPTIONS,
        {"user", required_argument, NULL, OPT_USER},
        {"include-self", no_argument, NULL, OPT_INCLUDE_SELF},
        {0}};
    cli_opts o;
    query_args a = {.cmd = "similar", .n = 10};
    cli_opts_init(&o);
    int first = 0;
    int rc = cli_parse("similar", argc, argv, longopts, &o, own_option, &a, help_similar, &first);
    if (rc != 0) return rc < 0 ? 0 : rc;
    int n_pos = argc - first;
    if ((a.user != NULL) == (n_pos == 1) || n_pos > 1 || a.n_user_list > 1)
        return cli_usage_error("similar", "give one ITEM (id or title) or one --user ID");
    if ((rc = cli_check_device(&o)) != 0) return rc;

    gpuals_model *m = NULL;
    gpuals_status s = cli_model(&o, &m);
    if (s != GPUALS_OK) return cli_fail(s);
    cli_cpu_only_note(&o, a.user != NULL ? "finding similar users" : "finding similar items");

    /* The query and its neighbours. */
    int64_t q = -1;
    int k = 0, n = (int)a.n;
    gpuals_hit *hits = malloc((size_t)n * sizeof *hits);
    if (hits == NULL) s = gpuals_fail(GPUALS_ERR_NOMEM, "out of memory");
    else if (a.user != NULL) s = lookup_user(m, a.user, &q);
    else s = lookup_item(m, argv[first], &q);
    if (s == GPUALS_OK)
        s = a.user ? gpuals_similar_users(m, q, n, a.include_self, hits, &k)
                   : gpuals_similar_items(m, q, n, a.include_self, hits, &k);

    /* Output. */
    cli_output out;
    if (s == GPUALS_OK) rc = cli_output_open(&out, a.out_path);
    if (s == GPUALS_OK && rc == 0) {
        if (k < n && o.verbosity > 0)
            note_short(a.user ? gpuals_model_user_id(m, q) : gpuals_model_item_id(m, q), k, n);
        const char *side = a.user ? "user" : "item";
        if (o.json) {
            json_t *doc = json_object(), *arr = json_array();
            json_object_set_new(doc, side, cli_json_text(a.user ? gpuals_model_user_id(m, q)
                                                              : gpuals_model_item_id(m, q)));
            if (!a.user) json_object_set_new(doc, "title", json_title(m, q));
            for (int r = 0; r < k; r++) {
                json_t *it = json_object();
                json_object_set_new(it, "rank", json_integer(r + 1));
                json_object_set_new(it, side,
                                    cli_json_text(a.user ? gpuals_model_user_id(m, hits[r].index)
                                                       : gpuals_model_item_id(m, hits[r].index)));
                if (!a.user) json_object_set_new(it, "title", json_title(m, hits[r].index));
                json_object_set_new(it, "similarity", json_real(hits[r].score));
                json_array_append_new(arr, it);
            }
            json_object_set_new(doc, "similar", arr);
            rc = emit_json(&out, doc);
        } else {
            fprintf(out.f, "rank\t%s\tsimilarity%s\n", side, a.user ? "" : "\ttitle");
            for (int r = 0; r < k; r++) {
                fprintf(out.f, "%d\t", r + 1);
                put_field(out.f, a.user ? gpuals_model_user_id(m, hits[r].index)
                                        : gpuals_model_item_id(m, hits[r].index));
                fprintf(out.f, "\t%.6f", hits[r].score);
                if (!a.user) {
                    fputc('\t', out.f);
                    put_field(out.f, gpuals_model_item_title(m, hits[r].index));
                }
                fputc('\n', out.f);
            }
        }
        int close_rc = cli_output_close(&out, rc == 0);
        if (rc == 0) rc = close_rc;
    }
    free(hits);
    gpuals_model_free(m);
    return s != GPUALS_OK ? cli_fail(s) : rc;
}

/* ------------------------------------------------------------------------------------------ */
/* score                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static void help_score(void)
{
    printf("Usage: gpu-als score USER ITEM [USER ITEM ...] [OPTIONS]\n"
           "       gpu-als score --pairs FILE [OPTIONS]\n\n"
           "The model's score x_u . y_i of each user-item pair (users by raw id, items by raw\n"
           "id or title). Runs on the CPU (no GPU implementation). Output: TSV user, item,\n"
           "score, title (or --json).\n\n"
           "      --pairs FILE        pairs from FILE, one 'user<TAB>item' per line (spaces\n"
           "                          around each ignored)\n"
           "  -o, --out FILE          write the results to FILE instead of stdout\n\n");
    print_help_tail();
}

/* Score one pair and write it. */
static gpuals_status score_pair(const gpuals_model *m, const char *user, const char *item,
                                cli_output *out, json_t *arr)
{
    int64_t u, i;
    GPUALS_TRY(lookup_user(m, user, &u));
    GPUALS_TRY(lookup_item(m, item, &i));
    float v;
    GPUALS_TRY(gpuals_score(m, gpuals_model_user_id(m, u), gpuals_model_item_id(m, i), &v));
    if (arr != NULL) {
        json_t *row = json_object();
        json_object_set_new(row, "user", cli_json_text(gpuals_model_user_id(m, u)));
        json_object_set_new(row, "item", cli_json_text(gpuals_model_item_id(m, i)));
        json_object_set_new(row, "title", json_title(m, i));
        json_object_set_new(row, "score", json_real(v));
        json_array_append_new(arr, row);
    } else {
        put_field(out->f, gpuals_model_user_id(m, u));
        fputc('\t', out->f);
        put_field(out->f, gpuals_model_item_id(m, i));
        fprintf(out->f, "\t%.6f\t", v);
        put_field(out->f, gpuals_model_item_title(m, i));
        fputc('\n', out->f);
    }
    return GPUALS_OK;
}

/* Score every 'user<TAB>item' line of path. */
typedef struct {
    const gpuals_model *m;
    cli_output *out;
    json_t *arr;
} score_ctx;

static gpuals_status score_line(const char *line, void *ctx)
{
    score_ctx *c = ctx;
    const char *tab = strchr(line, '\t');
    if (tab == NULL || strchr(tab + 1, '\t') != NULL)
        return gpuals_fail(GPUALS_ERR_PARSE, "expected 'user<TAB>item', found '%s'", line);
    /* Each field without the spaces around it, as --users reads its ids. */
    char user[4096], item[4096];
    const char *u = line, *i = tab + 1, *end = tab + 1 + strlen(tab + 1);
    while (*u == ' ') u++;
    size_t ul = (size_t)(tab - u);
    while (ul > 0 && u[ul - 1] == ' ') ul--;
    while (*i == ' ') i++;
    while (end > i && end[-1] == ' ') end--;
    size_t il = (size_t)(end - i);
    if (ul >= sizeof user || il >= sizeof item)
        return gpuals_fail(GPUALS_ERR_PARSE, "a user id or item of over %zu bytes", sizeof user);
    memcpy(user, u, ul);
    user[ul] = '\0';
    memcpy(item, i, il);
    item[il] = '\0';
    return score_pair(c->m, user, item, c->out, c->arr);
}

static gpuals_status score_file(const gpuals_model *m, const char *path, cli_output *out,
                                json_t *arr)
{
    score_ctx c = {m, out, arr};
    return for_each_line(path, 0, score_line, &c, NULL);
}

int cmd_score(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_OPTIONS_GENERAL, CLI_OPTIONS_DATA, CLI_OPTIONS_TRAIN, CLI_OPTIONS_MODEL,
        {"out", required_argument, NULL, OPT_OUT},
        {"pairs", required_argument, NULL, OPT_PAIRS},
        {0}};
    cli_opts o;
    query_args a = {.cmd = "score", .n = 10};
    cli_opts_init(&o);
    int first = 0;
    int rc = cli_parse("score", argc, argv, longopts, &o, own_option, &a, help_score, &first);
    if (rc != 0) return rc < 0 ? 0 : rc;
    int n_pos = argc - first;
    if ((a.pairs_file != NULL) == (n_pos > 0) || n_pos % 2 != 0)
        return cli_usage_error("score", "give USER ITEM pairs or --pairs FILE");
    if ((rc = cli_check_device(&o)) != 0) return rc;

    gpuals_model *m = NULL;
    gpuals_status s = cli_model(&o, &m);
    if (s != GPUALS_OK) return cli_fail(s);
    cli_cpu_only_note(&o, "scoring");

    cli_output out;
    json_t *arr = o.json ? json_array() : NULL;
    rc = cli_output_open(&out, a.out_path);
    if (rc == 0) {
        if (arr == NULL) fprintf(out.f, "user\titem\tscore\ttitle\n");
        if (a.pairs_file != NULL) s = score_file(m, a.pairs_file, &out, arr);
        for (int k = first; s == GPUALS_OK && k + 1 < argc; k += 2)
            s = score_pair(m, argv[k], argv[k + 1], &out, arr);
        if (s == GPUALS_OK && arr != NULL) {
            rc = emit_json(&out, arr);
            arr = NULL;
        }
        int close_rc = cli_output_close(&out, s == GPUALS_OK && rc == 0);
        if (rc == 0) rc = close_rc;
    }
    json_decref(arr);
    gpuals_model_free(m);
    return s != GPUALS_OK ? cli_fail(s) : rc;
}

/* ------------------------------------------------------------------------------------------ */
/* explain                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static void help_explain(void)
{
    printf("Usage: gpu-als explain USER ITEM [OPTIONS]\n\n"
           "Why the model scores ITEM for USER (Hu, Koren & Volinsky 2008, section 5): with\n"
           "W_u = Y^T C_u Y + lambda I, each item j the user liked contributes\n"
           "c_uj * y_i^T W_u^-1 y_j. Prints the total, the model's score x_u . y_i and the top\n"
           "contributors. The two agree exactly when the user's factors are an exact solve\n"
           "against the final item factors; after training they differ a little, since the\n"
           "last item update moved the items after the users were solved (and conjugate\n"
           "gradient solves approximately). Runs on the CPU (no GPU implementation).\n\n"
           "%s\n",
           help_query_common);
    print_help_tail();
}

int cmd_explain(int argc, char **argv)
{
    static const struct option longopts[] = {QUERY_OPTIONS, {0}};
    cli_opts o;
    query_args a = {.cmd = "explain", .n = 10};
    cli_opts_init(&o);
    int first = 0;
    int rc = cli_parse("explain", argc, argv, longopts, &o, own_option, &a, help_explain, &first);
    if (rc != 0) return rc < 0 ? 0 : rc;
    if (argc - first != 2) return cli_usage_error("explain", "give USER and ITEM");
    if ((rc = cli_check_device(&o)) != 0) return rc;

    gpuals_model *m = NULL;
    gpuals_status s = cli_model(&o, &m);
    if (s != GPUALS_OK) return cli_fail(s);
    cli_cpu_only_note(&o, "explaining the score");

    int64_t u = -1, i = -1;
    int k = 0, n = (int)a.n;
    double total = 0, model_score = 0;
    gpuals_hit *hits = malloc((size_t)n * sizeof *hits);
    if (hits == NULL) s = gpuals_fail(GPUALS_ERR_NOMEM, "out of memory");
    if (s == GPUALS_OK) s = lookup_user(m, argv[first], &u);
    if (s == GPUALS_OK) s = lookup_item(m, argv[first + 1], &i);
    if (s == GPUALS_OK) s = gpuals_explain(m, u, i, n, &total, &model_score, hits, &k);

    cli_output out;
    if (s == GPUALS_OK) rc = cli_output_open(&out, a.out_path);
    if (s == GPUALS_OK && rc == 0) {
        if (o.json) {
            json_t *doc = json_object(), *arr = json_array();
            json_object_set_new(doc, "user", cli_json_text(gpuals_model_user_id(m, u)));
            json_object_set_new(doc, "item", cli_json_text(gpuals_model_item_id(m, i)));
            json_object_set_new(doc, "title", json_title(m, i));
            json_object_set_new(doc, "total", json_real(total));
            json_object_set_new(doc, "model_score", json_real(model_score));
            for (int r = 0; r < k; r++) {
                json_t *it = json_object();
                json_object_set_new(it, "item",
                                    cli_json_text(gpuals_model_item_id(m, hits[r].index)));
                json_object_set_new(it, "title", json_title(m, hits[r].index));
                json_object_set_new(it, "contribution", json_real(hits[r].score));
                json_array_append_new(arr, it);
            }
            json_object_set_new(doc, "contributions", arr);
            rc = emit_json(&out, doc);
        } else {
            fputs("# user ", out.f);
            put_field(out.f, gpuals_model_user_id(m, u));
            fputs(", item ", out.f);
            put_field(out.f, gpuals_model_item_id(m, i));
            if (gpuals_model_item_title(m, i)[0]) {
                fputs(" (", out.f);
                put_field(out.f, gpuals_model_item_title(m, i));
                fputc(')', out.f);
            }
            fprintf(out.f, "\n# total %.6f, model score %.6f\n", total, model_score);
            fprintf(out.f, "rank\titem\tcontribution\ttitle\n");
            for (int r = 0; r < k; r++) {
                fprintf(out.f, "%d\t", r + 1);
                put_field(out.f, gpuals_model_item_id(m, hits[r].index));
                fprintf(out.f, "\t%.6f\t", hits[r].score);
                put_field(out.f, gpuals_model_item_title(m, hits[r].index));
                fputc('\n', out.f);
            }
        }
        int close_rc = cli_output_close(&out, rc == 0);
        if (rc == 0) rc = close_rc;
    }
    free(hits);
    gpuals_model_free(m);
    return s != GPUALS_OK ? cli_fail(s) : rc;
}
