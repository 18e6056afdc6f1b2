/*
 * cli.h - what the gpu-als subcommands share: option groups, loading, messages, progress.
 *
 * Every subcommand is `int cmd_NAME(int argc, char **argv)` (argv[0] is the subcommand name)
 * returning the process exit code. It builds its getopt_long table from the option groups below
 * plus its own options (values from CLI_OPT_LOCAL up), passes every option it does not handle
 * itself to cli_handle_option(), and reports failures with cli_fail() / cli_usage_error().
 *
 * Streams: results go to stdout (a table, TSV or, with --json, one JSON document); everything
 * else (errors prefixed "gpu-als: ", per-iteration lines, notes) goes to stderr. Progress bars
 * are drawn only when stderr is a terminal.
 */
#ifndef GPUALS_CLI_H
#define GPUALS_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

#include "gpuals.h"
#include "split.h"
#include "status.h"

/* Exit code of a command-line mistake (unknown option, bad value); same as GPUALS_ERR_USAGE. */
#define CLI_EXIT_USAGE 2

/* Option values shared by the commands. */
enum {
    CLI_OPT_RATINGS = 256,
    CLI_OPT_MOVIES,
    CLI_OPT_FORMAT,
    CLI_OPT_MIN_RATING,
    CLI_OPT_SKIP_BAD,
    CLI_OPT_FACTORS,
    CLI_OPT_REG,
    CLI_OPT_REG_SCALE,
    CLI_OPT_ALPHA,
    CLI_OPT_CONFIDENCE,
    CLI_OPT_EPS,
    CLI_OPT_ITERS,
    CLI_OPT_SOLVER,
    CLI_OPT_CG_STEPS,
    CLI_OPT_SEED,
    CLI_OPT_DTYPE,
    CLI_OPT_LOSS,
    CLI_OPT_HISTORY,
    CLI_OPT_DEVICE,
    CLI_OPT_THREADS,
    CLI_OPT_JSON,
    CLI_OPT_MODEL,
    CLI_OPT_SPLIT,
    CLI_OPT_TEST_FRACTION,
    CLI_OPT_LEAVE_K,
    CLI_OPT_SPLIT_SEED,
    CLI_OPT_LOCAL = 512, /* first value free for a command's own options; a command may also
                            use 'n' (-n) and 'o' (-o), which cli_parse accepts as short
                            options with a value */
};

/* getopt_long entries of each group, to be spliced into a command's table. */
#define CLI_OPTIONS_GENERAL                                                                   \
    {"help", no_argument, NULL, 'h'}, {"quiet", no_argument, NULL, 'q'},                      \
        {"verbose", no_argument, NULL, 'v'}, {"json", no_argument, NULL, CLI_OPT_JSON},       \
        {"device", required_argument, NULL, CLI_OPT_DEVICE},                                  \
        {"threads", required_argument, NULL, CLI_OPT_THREADS}

#define CLI_OPTIONS_DATA                                                                      \
    {"ratings", required_argument, NULL, CLI_OPT_RATINGS},                                    \
        {"movies", required_argument, NULL, CLI_OPT_MOVIES},                                  \
        {"format", required_argument, NULL, CLI_OPT_FORMAT},                                  \
        {"min-rating", required_argument, NULL, CLI_OPT_MIN_RATING},                          \
        {"skip-bad-lines", no_argument, NULL, CLI_OPT_SKIP_BAD}

#define CLI_OPTIONS_TRAIN                                                                     \
    {"factors", required_argument, NULL, CLI_OPT_FACTORS},                                    \
        {"reg", required_argument, NULL, CLI_OPT_REG},                                        \
        {"reg-scale", required_argument, NULL, CLI_OPT_REG_SCALE},                            \
        {"alpha", required_argument, NULL, CLI_OPT_ALPHA},                                    \
        {"confidence", required_argument, NULL, CLI_OPT_CONFIDENCE},                          \
        {"eps", required_argument, NULL, CLI_OPT_EPS},                                        \
        {"iters", required_argument, NULL, CLI_OPT_ITERS},                                    \
        {"solver", required_argument, NULL, CLI_OPT_SOLVER},                                  \
        {"cg-steps", required_argument, NULL, CLI_OPT_CG_STEPS},                              \
        {"seed", required_argument, NULL, CLI_OPT_SEED},                                      \
        {"dtype", required_argument, NULL, CLI_OPT_DTYPE},                                    \
        {"loss", no_argument, NULL, CLI_OPT_LOSS},                                            \
        {"history", required_argument, NULL, CLI_OPT_HISTORY}

#define CLI_OPTIONS_MODEL {"model", required_argument, NULL, CLI_OPT_MODEL}

/* The held-out split of `eval` and `tune` (cli_handle_split_option). */
#define CLI_OPTIONS_SPLIT                                                                     \
    {"split", required_argument, NULL, CLI_OPT_SPLIT},                                        \
        {"test-fraction", required_argument, NULL, CLI_OPT_TEST_FRACTION},                    \
        {"leave-k", required_argument, NULL, CLI_OPT_LEAVE_K},                                \
        {"split-seed", required_argument, NULL, CLI_OPT_SPLIT_SEED}

/* Help text of each group, for a command's --help. */
extern const char cli_help_general[];
extern const char cli_help_data[];
extern const char cli_help_train[];
extern const char cli_help_model[];
extern const char cli_help_split[];
/* The exit-code table, printed by every --help and copied into the README. */
extern const char cli_help_exit_codes[];

/* Everything the shared options set. */
typedef struct {
    gpuals_load_options load;
    int have_ratings;          /* --ratings was given (else the embedded data is used) */
    int have_min_rating;       /* --min-rating was given */
    int have_eps, have_cg_steps; /* --eps, --cg-steps were given (noted when they do nothing) */
    gpuals_params params;
    int loss_every_iter;       /* --loss: compute the loss each iteration */
    const char *history_path;  /* --history FILE: per-iteration CSV */
    const char *model_path;    /* --model DIR */
    const char *data_option;   /* long name of the first data or training option given */
    int json;                  /* --json */
    int verbosity;             /* 0 with -q, 1 by default, 2 with -v */
} cli_opts;

/* Notes on stderr (unless -q) for settings given that the others make moot: --eps without
 * --confidence log, --cg-steps with --solver cholesky. */
void cli_note_moot_settings(const cli_opts *o);

/* Defaults: the embedded data, the `implicit` library's training settings, device auto. */
void cli_opts_init(cli_opts *o);

/* Handle one option returned by getopt_long. Returns 0 when handled, 1 when the option is not
 * one of the shared ones (the command handles it), CLI_EXIT_USAGE after printing a message for
 * a bad value, and -1 for -h/--help (the command prints its help and exits 0). */
int cli_handle_option(cli_opts *o, int opt, const char *arg);

/* A command's handler for its own options: 0 when handled, else an exit code (after a message);
 * ctx is the command's state. */
typedef int (*cli_own_option_fn)(int opt, const char *arg, void *ctx);

/* Parse argv (argv[0] is the command name, cmd; NULL for the walkthrough) with getopt_long and
 * longopts: shared options go to cli_handle_option, the others to own (may be NULL). Unknown
 * options, missing values and stray arguments are usage errors naming the culprit. help prints
 * the command's help on stdout. Returns 0 to go on, -1 when help was printed (exit 0), or an
 * exit code. Positional arguments are refused unless positional is non-NULL, in which case
 * *positional receives the index of the first one in argv. */
int cli_parse(const char *cmd, int argc, char **argv, const struct option *longopts,
              cli_opts *o, cli_own_option_fn own, void *ctx, void (*help)(void),
              int *positional);

/* Print "gpu-als: <formatted>" and a pointer to --help on stderr; return CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print "gpu-als: <last library error>" on stderr and return the exit code of s. */
int cli_fail(gpuals_status s);

/* Print "gpu-als: <formatted>" on stderr (a note or warning; no exit code). */
void cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* one when n is 1, else many: "1 iteration", "3 iterations". */
const char *cli_plural(long long n, const char *one, const char *many);

/* Parse helpers for option values: 0 on success, else print a usage error and return
 * CLI_EXIT_USAGE. */
int cli_parse_int(const char *opt, const char *arg, long min, long max, long *out);
int cli_parse_double(const char *opt, const char *arg, double min, double max, double *out);
int cli_parse_seed(const char *opt, const char *arg, uint64_t *out);

/* Handle one of CLI_OPTIONS_SPLIT into s: 0 when handled, CLI_EXIT_USAGE after a message for a
 * bad value, 1 when opt is not a split option. */
int cli_handle_split_option(int opt, const char *arg, split_options *s);

/* Check, before any work is done, that path can be written later: its directory exists and is
 * writable, and path itself is not a directory (unless dir_ok, for model directories). Prints
 * "gpu-als: cannot write PATH: reason" naming opt and returns the i/o exit code, or 0. */
int cli_check_output(const char *opt, const char *path, int dir_ok);

/* The loss as the text lines show it (%.7f): the training loss cannot be negative, but the
 * Gram-matrix shortcut that computes it can round a loss of about zero (reg 0 on a fit that is
 * exact) to a tiny negative number, which would print as "-0.0000000"; such a value shows as
 * 0. The history and JSON keep the value computed. */
double cli_shown_loss(double loss);

/* The rating a --like item counts as: 5 (the top of the MovieLens scales), or the data's
 * min_rating when that is higher, so that a like is never filtered out as too low. */
#define CLI_LIKE_RATING 5.0
float cli_like_value(double min_rating);

/* Where a command's results go: with a path, a temporary file beside it (cli_temp_file)
 * renamed to it when complete (a device, pipe or link is written in place); without one, a
 * memory buffer copied to stdout at the end. Either way a command that fails halfway leaves
 * no partial table. */
typedef struct {
    FILE *f;           /* write the results here */
    const char *path;  /* NULL: stdout */
    char tmp[4200];
    char *buf;
    size_t len;
    int direct;        /* path is a device or pipe, written in place */
    int slot;          /* the temporary file's tmppath slot, or -1 */
} cli_output;

/* Open o for path (NULL: stdout): 0, or an exit code after saying why. */
int cli_output_open(cli_output *o, const char *path);

/* Finish o: publish the results when ok (the rename, or the copy to stdout), else drop them.
 * 0, or an exit code after saying why (only when ok). */
int cli_output_close(cli_output *o, int ok);

/* A new file beside path to write it under, "<path>.tmp-<pid>-<n>", created exclusively (never
 * an existing file) and registered for removal on a fatal signal (tmppath.h): its name goes to
 * tmp (tmp_len bytes) and its slot to *slot. Returns the open descriptor, or -1 with errno
 * set. Drop the slot once the file is renamed into place or removed. */
int cli_temp_file(const char *path, char *tmp, size_t tmp_len, int *slot);

/* A JSON string for text from the input files, which need not be UTF-8: invalid bytes are read
 * as Latin-1 and converted, so no id or title is ever dropped from JSON output. NULL gives
 * JSON null. */
json_t *cli_json_text(const char *s);

/* Load the ratings (and titles) the options name, or the embedded ml-latest-small data
 * (ratings.csv and movies.csv) when no --ratings was given. Prints skipped-line counts as a note
 * unless quiet. */
gpuals_status cli_load_data(const cli_opts *o, gpuals_data **out);

/* Per-iteration reporting during training: one fixed-format line per iteration on stderr
 * ("iter   3/15  loss 0.0091234  0.084 s", the seconds that iteration took) unless quiet, a
 * progress bar instead on a terminal, and a CSV row in the --history file (CLI_HISTORY_HEADER),
 * flushed as soon as it is written so that the file can be followed and an interrupted run
 * keeps its rows. Pass as the gpuals_train callback with a cli_progress as user data. */
typedef struct {
    const cli_opts *opts;
    FILE *history;             /* open --history file, or NULL */
    int history_error;         /* errno of the first failed write of a row, or 0 */
    int total_iters;
} cli_progress;

/* The header line of --history files (seconds: that iteration's); every command that trains
 * writes these columns first. */
#define CLI_HISTORY_HEADER "iteration,seconds,loss"

/* Print a device note (als_fit's or topn_batch_on's) unless quiet: when the GPU did the work,
 * when a GPU too small for the problem sent it to the CPU, and otherwise (why the CPU did it)
 * only with -v or --device gpu. Under --device auto a machine without a usable GPU is silent by
 * default. */
void cli_device_report(const cli_opts *o, gpuals_device used, const char *note);

/* After training: cli_device_report for the model's device and note. */
void cli_device_note(const cli_opts *o, const gpuals_model *m);

/* Before any work, once the options are parsed: data and training options do not go with
 * --model (a usage error); --device gpu needs a usable GPU (else "gpu-als: no usable GPU:
 * <the probe's reason>" and the exit code of GPUALS_ERR_NO_DEVICE, 11) and float32 (else a
 * usage error). 0 when the command may go on. */
int cli_check_device(const cli_opts *o);

/* A step with no GPU implementation (scoring, explaining, folding in, summarising) runs on the
 * CPU whatever --device says; say so as cli_device_report says where work ran: with -v, or by
 * default under --device gpu. step names the work, e.g. "scoring". */
void cli_cpu_only_note(const cli_opts *o, const char *step);

/* Open the history file (if any) and write its header; 0, or an exit code with errno set. */
int cli_progress_start(cli_progress *pr, const cli_opts *o);
/* gpuals_iter_fn: the history row, then the progress line; non-zero (stop) once the history
 * file cannot be written. */
int cli_progress_iteration(int iteration, double seconds, double loss, void *user);
/* Close the history file; returns 0, or an exit code with errno set to the first failure's. */
int cli_progress_finish(cli_progress *pr);

/* Train with the options' settings and progress reporting; prints the device note (e.g.
 * "training on GPU 0: ..." or the CPU fallback) unless quiet. */
gpuals_status cli_train(const cli_opts *o, const gpuals_data *d, gpuals_model **out);

/* Load the model at o->model_path, or train one on the options' data when no --model given. */
gpuals_status cli_model(const cli_opts *o, gpuals_model **out);

/* The subcommands. */
int cmd_walkthrough(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_recommend(int argc, char **argv);
int cmd_similar(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_tune(int argc, char **argv);

#endif /* GPUALS_CLI_H */
