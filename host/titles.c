/*
 * titles.c - item titles from movies.csv, movies.dat or u.item (see titles.h).
 *
 * Lines come from the block line source of reader_lines.c, and every line must have the shape of
 * its format, so that another kind of file given as titles (a ratings.dat, a users.dat, a
 * ratings.csv) is refused at its first line instead of producing nonsense titles:
 *   movies.dat  exactly 3 "::" fields, id::title::genres. The id runs to the first "::" and the
 *               genres start after the last one, so a title may hold single colons (and even
 *               end in one); a ratings.dat line (4 fields) or a users.dat line (5) is refused.
 *   u.item      at least 5 '|' fields (ml-100k has 24: id|title|date|video date|url|19 genre
 *               flags), the same number on every line as on the first.
 *   movies.csv  a header naming an id column (movieId, id, itemId, ...) and a title column
 *               (title or name), as ml-latest's movieId,title,genres does; every record has as
 *               many fields as the header. Lines are fed to libcsv with their newline, so a
 *               quoted title may contain commas, doubled quotes ("" for ") and even newlines;
 *               libcsv runs in strict mode, so a stray quote is a parse error rather than a
 *               silently mangled title.
 * An id that repeats keeps its first title; the repeats are counted (titles_list.duplicates).
 *
 * Encoding is decided for the whole file: while reading, every id and title is checked as
 * UTF-8; if any fails, the file is Latin-1 and every string is converted at the end (a byte
 * 0xE9 becomes the two bytes C3 A9, "é"). Pure ASCII files are unaffected either way.
 */
#include "titles.h"

#include <csv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "idmap.h"
#include "reader.h"
#include "status.h"

enum { TITLES_CSV, TITLES_DAT, TITLES_UITEM };

typedef struct {
    const char *path;
    titles_list *list;
    int64_t room;
    idmap *seen;        /* ids already listed, to keep the first title of a repeated id */
    int all_utf8;

    /* u.item: the field count of the first line, which every line repeats. */
    int uitem_fields;

    /* movies.csv: the header's layout, and the libcsv record being assembled. */
    int header_done;
    int header_fields;  /* fields of the header record */
    int id_col, title_col;  /* columns of the id and the title (-1 until the header names them) */
    char header_text[96];   /* the header line as shown in messages */
    char *f1, *f2;      /* copies of the id and title fields of the current record */
    size_t f1_n, f2_n;
    int nfields;
    int64_t record_line;
    int64_t line;       /* line being fed */
    gpuals_status st;   /* first failure inside a callback */
} titles_ctx;

/* ------------------------------------------------------------------------------------------ */
/* Encoding                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Well-formed UTF-8 (see titles.h). */
int titles_is_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }

        /* Lead byte: sequence length and the smallest code point it may encode. */
        size_t len;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return 0;
        }
        if (i + len > n) return 0;

        /* Continuation bytes, then the range checks. */
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += len;
    }
    return 1;
}

/* Latin-1 to UTF-8 (see titles.h): bytes below 0x80 are copied, the others become two bytes. */
char *titles_latin1_to_utf8(const char *s, size_t n)
{
    size_t high = 0;
    for (size_t i = 0; i < n; i++) high += (unsigned char)s[i] >= 0x80;
    char *out = malloc(n + high + 1);
    if (!out) return NULL;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            out[w++] = (char)c;
        } else {
            out[w++] = (char)(0xC0 | (c >> 6));
            out[w++] = (char)(0x80 | (c & 0x3F));
        }
    }
    out[w] = '\0';
    return out;
}

/* ------------------------------------------------------------------------------------------ */
/* The list                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Free every entry (see titles.h). */
void titles_list_free(titles_list *t)
{
    if (!t) return;
    for (int64_t k = 0; k < t->n; k++) free(t->ids[k]);
    free(t->ids);
    free(t->titles);
    *t = (titles_list){0};
}

static void trim_spaces(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

/* Append (id, title) unless the id is listed already; one allocation holds both strings. */
static gpuals_status add_title(titles_ctx *c, int64_t line, const char *id, size_t id_n,
                               const char *title, size_t title_n)
{
    /* Check the id. */
    trim_spaces(&id, &id_n);
    if (id_n == 0)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected an item id in field 1, found "
                           "an empty field", c->path, (long long)line);
    if (memchr(id, '\0', id_n) || memchr(title, '\0', title_n))
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected text, found a NUL byte",
                           c->path, (long long)line);
    int added = 0;
    if (idmap_intern(c->seen, id, id_n, &added) < 0)
        return gpuals_fail(GPUALS_ERR_NOMEM, "%s:%lld: out of memory", c->path,
                           (long long)line);
    if (!added) { /* a repeated id keeps its first title; count the repeat */
        c->list->duplicates++;
        if (c->list->first_duplicate_line == 0) c->list->first_duplicate_line = line;
        return GPUALS_OK;
    }

    /* Store. */
    titles_list *t = c->list;
    if (t->n == c->room) {
        int64_t room = c->room ? 2 * c->room : 1024;
        char **ids = realloc(t->ids, (size_t)room * sizeof *ids);
        if (ids) t->ids = ids;
        char **titles = realloc(t->titles, (size_t)room * sizeof *titles);
        if (titles) t->titles = titles;
        if (!ids || !titles)
            return gpuals_fail(GPUALS_ERR_NOMEM, "%s:%lld: out of memory", c->path,
                               (long long)line);
        c->room = room;
    }
    char *block = malloc(id_n + title_n + 2);
    if (!block)
        return gpuals_fail(GPUALS_ERR_NOMEM, "%s:%lld: out of memory", c->path,
                           (long long)line);
    memcpy(block, id, id_n);
    block[id_n] = '\0';
    memcpy(block + id_n + 1, title, title_n);
    block[id_n + 1 + title_n] = '\0';
    t->ids[t->n] = block;
    t->titles[t->n] = block + id_n + 1;
    t->n++;
    if (c->all_utf8 && (!titles_is_utf8(id, id_n) || !titles_is_utf8(title, title_n)))
        c->all_utf8 = 0;
    return GPUALS_OK;
}

/* Re-encode every entry from Latin-1. */
static gpuals_status convert_all(titles_ctx *c)
{
    titles_list *t = c->list;
    for (int64_t k = 0; k < t->n; k++) {
        size_t id_n = strlen(t->ids[k]), title_n = strlen(t->titles[k]);
        char *id = titles_latin1_to_utf8(t->ids[k], id_n);
        char *title = titles_latin1_to_utf8(t->titles[k], title_n);
        char *block = id && title ? malloc(strlen(id) + strlen(title) + 2) : NULL;
        if (!block) {
            free(id);
            free(title);
            return gpuals_fail(GPUALS_ERR_NOMEM, "%s: out of memory converting titles from "
                               "Latin-1", c->path);
        }
        size_t a = strlen(id), b = strlen(title);
        memcpy(block, id, a + 1);
        memcpy(block + a + 1, title, b + 1);
        free(id);
        free(title);
        free(t->ids[k]);
        t->ids[k] = block;
        t->titles[k] = block + a + 1;
    }
    t->converted = 1;
    return GPUALS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Formats                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* The titles format of the first non-blank line s[0..n), or -1. */
static int detect(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == ':' && s[i + 1] == ':') return TITLES_DAT;
    if (n >= 8 && strncasecmp(s, "movieId,", 8) == 0) return TITLES_CSV;
    const char *bar = memchr(s, '|', n), *comma = memchr(s, ',', n);
    if (bar && (!comma || bar < comma)) return TITLES_UITEM;
    if (comma) return TITLES_CSV;
    return -1;
}

/* id::title::genres: exactly three fields. */
static gpuals_status dat_line(titles_ctx *c, int64_t line, const char *s, size_t n)
{
    /* Count the separators left to right (as the ratings reader splits), and find the first
     * and the last. */
    int seps = 0;
    size_t first = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] == ':' && s[i + 1] == ':') {
            if (seps++ == 0) first = i;
            i++;
        }
    }
    size_t last = n;
    for (size_t i = n; i >= 2; i--) {
        if (s[i - 2] == ':' && s[i - 1] == ':') {
            last = i - 2;
            break;
        }
    }
    if (seps != 2 || last < first + 2) {
        char shown[200];
        reader_excerpt(shown, sizeof shown, s, n, 60);
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected 3 fields separated by '::' "
                           "(movies.dat: id::title::genres), found %d in %s", c->path,
                           (long long)line, seps + 1, shown);
    }
    const char *title = s + first + 2;
    return add_title(c, line, s, first, title, (size_t)(s + last - title));
}

/* id|title|release date|video release date|IMDb URL|genre flags... */
static gpuals_status uitem_line(titles_ctx *c, int64_t line, const char *s, size_t n)
{
    int fields = 1;
    for (size_t i = 0; i < n; i++) fields += s[i] == '|';
    if (fields < 5 || (c->uitem_fields > 0 && fields != c->uitem_fields)) {
        char shown[200];
        reader_excerpt(shown, sizeof shown, s, n, 60);
        if (c->uitem_fields > 0)
            return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected %d fields separated by '|' "
                               "(u.item: as many as on the first line), found %d in %s",
                               c->path, (long long)line, c->uitem_fields, fields, shown);
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected 24 fields separated by '|' "
                           "(u.item: id|title|release date|video release date|IMDb URL|19 "
                           "genre flags; at least 5), found %d in %s", c->path, (long long)line,
                           fields, shown);
    }
    if (c->uitem_fields == 0) c->uitem_fields = fields;
    const char *bar = memchr(s, '|', n);
    const char *title = bar + 1;
    const char *end = memchr(title, '|', (size_t)(s + n - title));
    return add_title(c, line, s, (size_t)(bar - s), title, (size_t)(end - title));
}

/* 1 when name[0..n) is, ignoring ASCII case and '_', '-' and ' ', one of names. */
static int name_is(const char *name, size_t n, const char *const *names, size_t count)
{
    char folded[16];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (ch == '_' || ch == '-' || ch == ' ') continue;
        if (k + 1 >= sizeof folded) return 0;
        folded[k++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    folded[k] = '\0';
    for (size_t i = 0; i < count; i++)
        if (strcmp(folded, names[i]) == 0) return 1;
    return 0;
}

/* A header field: note whether it names the id or the title column. */
static void csv_header_field(titles_ctx *c, const char *s, size_t n)
{
    static const char *const id_names[] = {"movieid", "id", "itemid", "item"};
    static const char *const title_names[] = {"title", "name", "movietitle"};
    if (c->id_col < 0 && name_is(s, n, id_names, sizeof id_names / sizeof id_names[0]))
        c->id_col = c->nfields;
    else if (c->title_col < 0 &&
             name_is(s, n, title_names, sizeof title_names / sizeof title_names[0]))
        c->title_col = c->nfields;
}

/* libcsv: the end of a field. The header's fields are matched against the column names; data
 * records keep copies of the id and title fields. */
static void csv_field(void *s, size_t n, void *data)
{
    titles_ctx *c = data;
    if (c->st != GPUALS_OK) return;
    if (c->nfields == 0) c->record_line = c->line;
    const char *text = s ? s : "";
    if (!c->header_done) {
        csv_header_field(c, text, n);
    } else if (c->nfields == c->id_col || c->nfields == c->title_col) {
        char *copy = malloc(n + 1);
        if (!copy) {
            c->st = gpuals_fail(GPUALS_ERR_NOMEM, "%s:%lld: out of memory", c->path,
                                (long long)c->line);
            return;
        }
        memcpy(copy, text, n);
        copy[n] = '\0';
        if (c->nfields == c->id_col) {
            c->f1 = copy;
            c->f1_n = n;
        } else {
            c->f2 = copy;
            c->f2_n = n;
        }
    }
    c->nfields++;
}

/* libcsv: the end of a record: the header (checked for an id and a title column) or a title. */
static void csv_record(int term, void *data)
{
    (void)term;
    titles_ctx *c = data;
    if (c->st == GPUALS_OK && c->nfields > 0) {
        if (!c->header_done) {
            c->header_done = 1;
            c->header_fields = c->nfields;
            if (c->id_col < 0 || c->title_col < 0)
                c->st = gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected the movies.csv header "
                                    "movieId,title,genres (at least an id and a title column), "
                                    "found %s", c->path, (long long)c->record_line,
                                    c->header_text);
        } else if (c->nfields != c->header_fields) {
            c->st = gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected %d fields as in the header "
                                "%s, found %d", c->path, (long long)c->record_line,
                                c->header_fields, c->header_text, c->nfields);
        } else {
            c->st = add_title(c, c->record_line, c->f1, c->f1_n, c->f2, c->f2_n);
        }
    }
    free(c->f1);
    free(c->f2);
    c->f1 = c->f2 = NULL;
    c->f1_n = c->f2_n = 0;
    c->nfields = 0;
}

/* Feed one line and its newline to libcsv. */
static gpuals_status csv_line(titles_ctx *c, struct csv_parser *p, int64_t line, const char *s,
                              size_t n)
{
    c->line = line;
    if (!c->header_done && c->nfields == 0)
        reader_excerpt(c->header_text, sizeof c->header_text, s, n, 60);
    if (csv_parse(p, s, n, csv_field, csv_record, c) != n ||
        csv_parse(p, "\n", 1, csv_field, csv_record, c) != 1)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected a CSV record whose quoted "
                           "fields end with a quote before the comma, found %s", c->path,
                           (long long)line, csv_strerror(csv_error(p)));
    return c->st;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Read every title of path (see titles.h). */
gpuals_status titles_read(const char *path, titles_list *out)
{
    *out = (titles_list){0};
    if (!path || !*path) return gpuals_fail(GPUALS_ERR_USAGE, "no titles file given");

    /* File, id set, CSV parser. */
    line_reader lr;
    GPUALS_TRY(line_reader_open(&lr, path));
    titles_list list = {0};
    titles_ctx c = {.path = path, .list = &list, .all_utf8 = 1, .id_col = -1, .title_col = -1};
    struct csv_parser parser;
    int parser_ready = csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) == 0;
    gpuals_status st = GPUALS_OK;
    c.seen = idmap_new();
    if (!c.seen || !parser_ready) {
        st = gpuals_fail(GPUALS_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }

    /* Lines. */
    int format = -1;
    for (;;) {
        const char *s;
        size_t n;
        int got = line_reader_next(&lr, &s, &n);
        if (got == LINE_END) break;
        if (got == LINE_ERROR) {
            st = GPUALS_ERR_IO;
            goto done;
        }
        if (got == LINE_LONG) {
            st = gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected a line of at most %zu bytes, "
                             "found a longer one", path, (long long)lr.line_no, READER_MAX_LINE);
            goto done;
        }
        int blank = 1;
        for (size_t i = 0; i < n && blank; i++) blank = s[i] == ' ' || s[i] == '\t';
        if (blank && format != TITLES_CSV) continue;
        if (format < 0) {
            format = detect(s, n);
            if (format < 0) {
                st = gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected a titles line "
                                 "(movieId,title,genres or id::title::genres or id|title|...), "
                                 "found no ',', '::' or '|'", path, (long long)lr.line_no);
                goto done;
            }
        }
        if (format == TITLES_DAT) st = dat_line(&c, lr.line_no, s, n);
        else if (format == TITLES_UITEM) st = uitem_line(&c, lr.line_no, s, n);
        else st = csv_line(&c, &parser, lr.line_no, s, n);
        if (st != GPUALS_OK) goto done;
    }

    /* The end: the last CSV record, the encoding, emptiness. */
    if (format == TITLES_CSV) {
        if (csv_fini(&parser, csv_field, csv_record, &c) != 0) {
            st = gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected a closing quote, found the "
                             "end of the file", path, (long long)lr.line_no);
            goto done;
        }
        st = c.st;
        if (st != GPUALS_OK) goto done;
    }
    if (list.n == 0) {
        st = gpuals_fail(GPUALS_ERR_EMPTY, "%s: no titles in the file", path);
        goto done;
    }
    if (!c.all_utf8) {
        st = convert_all(&c);
        if (st != GPUALS_OK) goto done;
    }
    *out = list;
    list = (titles_list){0};

done:
    free(c.f1);
    free(c.f2);
    if (parser_ready) csv_free(&parser);
    idmap_free(c.seen);
    line_reader_close(&lr);
    titles_list_free(&list);
    return st;
}
