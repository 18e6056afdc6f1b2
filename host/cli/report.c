/*
 * report.c - data summaries and popular titles for `info` and the walkthrough.
 */
#include "report.h"

#include <stdlib.h>

const char *report_item_name(const gpuals_data *d, int64_t i)
{
    if (d->titles != NULL && d->titles[i] != NULL) return d->titles[i];
    return idmap_name(d->items, i);
}

int report_popular(const gpuals_data *d, int n, int64_t *out)
{
    int kept = 0;

    /* A bounded insertion: n is small (a report's top 10 or 20). */
    for (int64_t i = 0; i < d->ratings_t.rows; i++) {
        int64_t len = csr_row_len(&d->ratings_t, i);
        int pos = kept;
        while (pos > 0 && csr_row_len(&d->ratings_t, out[pos - 1]) < len) pos--;
        if (pos >= n) continue;
        int last = kept < n ? kept : n - 1;
        for (int k = last; k > pos; k--) out[k] = out[k - 1];
        out[pos] = i;
        if (kept < n) kept++;
    }
    return kept;
}

static double share(int64_t part, int64_t whole)
{
    return whole > 0 ? 100.0 * (double)part / (double)whole : 0.0;
}

/* How many of d's items have a title. */
static int64_t titled_items(const gpuals_data *d)
{
    int64_t n = 0;
    for (int64_t i = 0; d->titles != NULL && i < d->summary.items; i++) n += d->titles[i] != NULL;
    return n;
}

void report_summary_text(FILE *f, const gpuals_data *d, const cli_opts *o)
{
    const gpuals_summary *s = &d->summary;
    fprintf(f, "ratings      %s\n", d->ratings_path ? d->ratings_path : "(in memory)");
    if (d->titles_path != NULL) {
        fprintf(f, "titles       %s (%lld of %lld items titled", d->titles_path,
                (long long)titled_items(d), (long long)s->items);
        if (d->title_duplicates > 0)
            fprintf(f, "; %lld repeated id%s ignored", (long long)d->title_duplicates,
                    d->title_duplicates == 1 ? "" : "s");
        fprintf(f, ")\n");
    }
    fprintf(f, "raw lines    %lld\n", (long long)s->raw_lines);
    fprintf(f, "kept lines   %lld (%.1f%%)", (long long)s->kept_lines,
            share(s->kept_lines, s->raw_lines));
    if (o->have_min_rating) fprintf(f, " with rating >= %g", o->load.min_rating);
    fputc('\n', f);
    fprintf(f, "filtered     %lld\n", (long long)s->filtered_lines);
    fprintf(f, "zeros        %lld dropped\n", (long long)s->zero_lines);
    fprintf(f, "bad lines    %lld%s\n", (long long)s->bad_lines,
            s->bad_lines > 0 ? " skipped" : "");
    fprintf(f, "duplicates   %lld merged\n", (long long)s->duplicates);
    fprintf(f, "users        %lld\n", (long long)s->users);
    fprintf(f, "items        %lld\n", (long long)s->items);
    fprintf(f, "matrix       %lld x %lld, %lld stored\n", (long long)s->users,
            (long long)s->items, (long long)s->stored);
}

json_t *report_summary_json(const gpuals_data *d, const cli_opts *o)
{
    const gpuals_summary *s = &d->summary;
    json_t *j = json_object();
    json_object_set_new(j, "ratings", cli_json_text(d->ratings_path ? d->ratings_path : ""));
    json_object_set_new(j, "titles", d->titles_path ? cli_json_text(d->titles_path) : json_null());
    json_object_set_new(j, "titled_items", json_integer(titled_items(d)));
    json_object_set_new(j, "title_duplicates", json_integer(d->title_duplicates));
    json_object_set_new(j, "min_rating",
                        o->have_min_rating ? json_real(o->load.min_rating) : json_null());
    json_object_set_new(j, "raw_lines", json_integer(s->raw_lines));
    json_object_set_new(j, "kept_lines", json_integer(s->kept_lines));
    json_object_set_new(j, "kept_share", json_real(share(s->kept_lines, s->raw_lines) / 100));
    json_object_set_new(j, "filtered_lines", json_integer(s->filtered_lines));
    json_object_set_new(j, "zero_lines", json_integer(s->zero_lines));
    json_object_set_new(j, "bad_lines", json_integer(s->bad_lines));
    json_object_set_new(j, "duplicates", json_integer(s->duplicates));
    json_object_set_new(j, "users", json_integer(s->users));
    json_object_set_new(j, "items", json_integer(s->items));
    json_object_set_new(j, "stored", json_integer(s->stored));
    return j;
}

int report_json_print(json_t *doc)
{
    int bad = json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(9)) != 0;
    bad |= fputc('\n', stdout) == EOF;
    if (!bad) return 0;
    cli_note("cannot write the results to stdout");
    return gpuals_status_exit_code(GPUALS_ERR_IO);
}
