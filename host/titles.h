/*
 * titles.h - reading item titles: movies.csv, movies.dat and ml-100k u.item.
 *
 * The format is detected from the first non-blank line: "::" is movies.dat (id::title::genres),
 * a line starting with "movieId," or whose first separator is a comma is movies.csv (parsed with
 * libcsv, so quoted titles may hold commas, doubled quotes and newlines), and a line whose first
 * separator is '|' is u.item (id|title|date|...). Text that is valid UTF-8 is kept as it is; a
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
} titles_list;

/* Read every (id, title) of the titles file at path, in file order; an id that repeats keeps
 * its first title. GPUALS_ERR_IO for a missing file or a directory, GPUALS_ERR_PARSE
 * ("path:line: expected ..., found ...") for a line without an id and a title or a broken CSV
 * quote, GPUALS_ERR_EMPTY when the file holds no titles. On failure *out is zeroed. */
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
