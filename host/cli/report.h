/*
 * report.h - printing data summaries and popular titles, as text or JSON, shared by `info` and
 * the walkthrough.
 */
#ifndef GPUALS_CLI_REPORT_H
#define GPUALS_CLI_REPORT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "dataset.h"

/* The n most popular items of d by kept interactions (stored entries per column), most popular
 * first, ties by lower index. Writes up to n indices to out and returns how many. */
int report_popular(const gpuals_data *d, int n, int64_t *out);

/* The data summary as aligned text lines. */
void report_summary_text(FILE *f, const gpuals_data *d, const cli_opts *o);

/* The data summary as a JSON object (new reference). */
json_t *report_summary_json(const gpuals_data *d, const cli_opts *o);

/* The title of item i of d, or its raw id when it has none. */
const char *report_item_name(const gpuals_data *d, int64_t i);

/* Write a JSON document to stdout followed by a newline; 0 or an i/o exit code. */
int report_json_print(json_t *doc);

#endif /* GPUALS_CLI_REPORT_H */
