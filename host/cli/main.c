/*
 * main.c - the gpu-als command line: pick the subcommand and hand over.
 *
 * `gpu-als [OPTIONS]` with no subcommand trains on the data (by default the embedded
 * ml-latest-small) and prints the walkthrough report; `gpu-als COMMAND [OPTIONS]` runs one
 * subcommand. Each subcommand has its own --help.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "tmppath.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"train", cmd_train, "train a model and save it as a directory"},
    {"recommend", cmd_recommend, "top-N items for users, without what they already have"},
    {"similar", cmd_similar, "items (or users) most like one, by cosine of factors"},
    {"score", cmd_score, "the model's score x_u.y_i for user-item pairs"},
    {"explain", cmd_explain, "why a user gets an item: each liked item's contribution"},
    {"eval", cmd_eval, "held-out evaluation: split, train, ranking metrics"},
    {"tune", cmd_tune, "grid search over factors, reg, alpha, confidence and iterations"},
    {"info", cmd_info, "summarise a ratings file: counts, matrix shape, popular titles"},
};

static void print_usage(FILE *f)
{
    fprintf(f,
            "Usage: gpu-als [OPTIONS]            train on the data and print the walkthrough\n"
            "       gpu-als COMMAND [OPTIONS]    run one command\n"
            "       gpu-als --version\n\n"
            "gpu-als trains implicit-feedback matrix factorization (ALS) on interaction logs on\n"
            "the GPU or the CPU and answers recommender queries. With no --ratings it uses the\n"
            "embedded MovieLens ml-latest-small data.\n\nCommands:\n");
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        fprintf(f, "  %-10s  %s\n", commands[k].name, commands[k].summary);
    fprintf(f, "\nRun 'gpu-als COMMAND --help' for a command's options, and 'gpu-als --help'\n"
               "for the walkthrough's.\n\n");
}

/* The usage summary for `gpu-als --help`, printed by the walkthrough's own help. */
void cli_print_main_usage(FILE *f) { print_usage(f); }

/* The exit code once a command has returned rc: what it printed on stdout must have reached
 * it, so a write that failed (a full disk, say) turns a success into the i/o exit code, with a
 * message. A command that failed, or that reported the failed write itself, keeps its code. */
static int finish_stdout(int rc)
{
    int err = fflush(stdout) != 0 ? errno : 0;
    if (rc != 0 || (err == 0 && !ferror(stdout))) return rc;
    if (err != 0)
        cli_note("cannot write the results to stdout: %s", strerror(err));
    else
        cli_note("cannot write the results to stdout");
    return gpuals_status_exit_code(GPUALS_ERR_IO);
}

/* Run the command argv names: a first argument that is not an option is the subcommand. */
static int run(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("gpu-als %s\n", GPUALS_VERSION);
        return 0;
    }
    if (argc > 1 && argv[1][0] != '-') {
        for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
            if (strcmp(argv[1], commands[k].name) == 0) return commands[k].run(argc - 1, argv + 1);
        fprintf(stderr, "gpu-als: unknown command '%s'\n", argv[1]);
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    return cmd_walkthrough(argc, argv);
}

/* An interrupt or termination removes the temporary files and directories being written (a
 * model, --out results, a plot) before the process dies of the signal as it would have. */
static void on_fatal_signal(int sig)
{
    tmppath_remove_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_fatal_signals(void)
{
    /* A file grown past the size limit (ulimit -f) is a write error to report and clean up
     * after, not a signal that kills the process with the half-written file left behind. */
    signal(SIGXFSZ, SIG_IGN);

    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++) {
        struct sigaction sa, was;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sigemptyset(&sa.sa_mask);
        /* A signal ignored by whoever started us (nohup) stays ignored. */
        if (sigaction(sigs[k], NULL, &was) == 0 && was.sa_handler != SIG_IGN)
            sigaction(sigs[k], &sa, NULL);
    }
}

int main(int argc, char **argv)
{
    catch_fatal_signals();
    return finish_stdout(run(argc, argv));
}
