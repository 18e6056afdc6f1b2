/*
 * titles.h - reading item titles: movies.csv, movies.dat and ml-100k u.item.
 *
 * The format is detected from the first non-blank line: "::" is movies.dat (exactly
 * id::title::genres on every line), a line starting with "movieId," or whose first separator is
 * a comma is movies.csv (a header naming an id and a title column, such as movieId,title,genres,
 * then records of as many fields; parsed with libcsv, so quoted titles may hold commas, doubled
 * quotes and newlines), and a line whose first separator is '|' is u.item (id|title|date|...,
 * at least 5 fields and as many on every line as on the first; ml-100k has 24). A line of
 * another shape is a parse error, so a ratings file given as titles is refused. Text that is
 * valid UTF-8 is kept as it is; a
 * file with any byte sequence that is not valid UTF-8 is taken as Latin-1 (as ml-1m movies.dat
 * and ml-100k u.item are) and converted to UTF-8 as a whole.
 */
#ifndef GPUALS_TITLES_H
#define GPUALS_TITLES_H

#include <stddef.h>
#include <stdint.h>

#include "gpuals.h"

typedef struct {
    int64_t n;
    char **ids;      /* n raw ids, NUL-terminated, in file order; ids[k] owns titles[k] too */
    char **titles;   /* n UTF-8 titles (may be ""), pointing into the ids[k] allocations */
    int converted;   /* 1 when the file was read as Latin-1 and converted to UTF-8 */
    int64_t duplicates;            /* lines whose id repeats an earlier one (first title kept) */
    int64_t first_duplicate_line;  /* line number of the first of them, 0 if none */
} titles_list;

/* Read every (id, title) of the titles file at path, in file order; an id that repeats keeps
 * its first title and is counted in duplicates. GPUALS_ERR_IO for a missing file or a
 * directory, GPUALS_ERR_PARSE ("path:line: expected ..., found ...") for a line that does not
 * have its format's fields, a movies.csv without an id and a title column in its header, or a
 * broken CSV quote; GPUALS_ERR_EMPTY when the file holds no titles. On failure *out is
 * zeroed. */
gpuals_status titles_read(const char *path, titles_list *out);

/* Free a list and zero it; accepts a zeroed list. */
void titles_list_free(titles_list *t);

/* 1 when s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or code points beyond
 * U+10FFFF), else 0. */
int titles_is_utf8(const char *s, size_t n);

/* A new NUL-terminated UTF-8 string holding the Latin-1 text s[0..n); NULL without memory.
 * The caller frees it. */
char *titles_latin1_to_utf8(const char *s, size_t n);

#endif /* GPUALS_TITLES_H */
