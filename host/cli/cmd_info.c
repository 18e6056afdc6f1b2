/*
 * cmd_info.c - `gpu-als info`: what a ratings file holds, before any training.
 *
 * Prints raw lines, kept lines and their share, filtered, zero, bad and duplicate lines, users,
 * items, the CSR shape and stored elements, and the 10 most popular titles by kept interactions.
 */
#include <stdlib.h>

#include "cli.h"
#include "report.h"

#define INFO_POPULAR 10

static void print_help(void)
{
    printf("Usage: gpu-als info [OPTIONS]\n\n"
           "Summarise a ratings file: lines read, kept and skipped, users, items, the matrix\n"
           "shape and the %d most popular titles.\n\n%s\n%s\n%s",
           INFO_POPULAR, cli_help_data, cli_help_general, cli_help_exit_codes);
}

int cmd_info(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_OPTIONS_GENERAL, CLI_OPTIONS_DATA, {0}};
    cli_opts o;
    cli_opts_init(&o);

    int rc = cli_parse("info", argc, argv, longopts, &o, NULL, NULL, print_help, NULL);
    if (rc != 0) return rc < 0 ? 0 : rc;
    if ((rc = cli_check_device(&o)) != 0) return rc;
    cli_cpu_only_note(&o, "reading and summarising the data");

    /* Load. */
    gpuals_data *d = NULL;
    gpuals_status s = cli_load_data(&o, &d);
    if (s != GPUALS_OK) return cli_fail(s);

    /* Report. */
    int64_t top[INFO_POPULAR];
    int n = report_popular(d, INFO_POPULAR, top);
    if (o.json) {
        json_t *doc = report_summary_json(d, &o);
        json_t *pop = json_array();
        for (int k = 0; k < n; k++) {
            json_t *row = json_object();
            json_object_set_new(row, "item", cli_json_text(idmap_name(d->items, top[k])));
            json_object_set_new(row, "title", d->titles && d->titles[top[k]]
                                                  ? cli_json_text(d->titles[top[k]])
                                                  : json_null());
            json_object_set_new(row, "interactions",
                                json_integer(csr_row_len(&d->ratings_t, top[k])));
            json_array_append_new(pop, row);
        }
        json_object_set_new(doc, "popular", pop);
        rc = report_json_print(doc);
        json_decref(doc);
    } else {
        report_summary_text(stdout, d, &o);
        printf("\nMost popular items (kept interactions):\n");
        for (int k = 0; k < n; k++)
            printf("  %2d  %6lld  %s\n", k + 1, (long long)csr_row_len(&d->ratings_t, top[k]),
                   report_item_name(d, top[k]));
    }
    gpuals_data_free(d);
    return rc;
}
