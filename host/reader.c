/*
 * reader.c - rating files to (user, item, value) triplets.
 *
 * Each line goes through the same steps:
 *   1. skip blank lines (only spaces/tabs); they are not data lines and are not counted;
 *   2. refuse NUL bytes, then split the fields in place for the format:
 *        .dat    "::"               exactly 4 fields   user::item::rating::timestamp
 *        mlcsv   ","                exactly 4 fields   after the userId,movieId,... header
 *        u.data  tab                exactly 4 fields   user item rating timestamp
 *        delim   "," tab or spaces  2 to 4 fields      user item [value [timestamp]]
 *        mm      spaces/tabs        2 (pattern) or 3   row col [value], 1-based indices
 *      Fields are trimmed of spaces and tabs; the timestamp must be an integer, except in a
 *      generic file, where it is only required to be non-empty (it is never used). A
 *      comma-separated line (generic or MovieLens CSV) with a field that begins with a double
 *      quote is split by libcsv in strict mode, as RFC 4180 says: a field may be enclosed in
 *      double quotes, which may then hold commas and spaces, with "" standing for one quote;
 *      text after the closing quote, or a quote left open at the end of the line, makes the
 *      line malformed. Other lines take the plain split (a quote inside an unquoted field is an
 *      ordinary character), so the common case stays a single pass over the line;
 *   3. parse the rating (reader_parse_number: plain decimals only, with or without an exponent;
 *      hex, nan and inf are refused); a non-number, a non-finite value, one beyond the float
 *      range or one of magnitude above READER_MAX_VALUE makes the line malformed, and so does a
 *      non-integer value in a Matrix Market 'integer' file;
 *   4. filter: a rating below min_rating is counted as filtered, then a zero (or a value that
 *      rounds to zero as a float) as a zero line; only now are the ids interned, so a user or
 *      item seen only in dropped lines never gets an index and the matrix has exactly the rows
 *      and columns it needs;
 *   5. append (user, item, value) to the triplet arrays (amortised growth, sized up front from
 *      the file size).
 * A malformed line is "path:line: expected ..., found ..." (GPUALS_ERR_PARSE), or is counted
 * and skipped under skip_bad. Duplicates are left in the triplets: the CSR build sums them.
 *
 * Detection (GPUALS_FORMAT_AUTO) looks at the first non-blank line: a "%%MatrixMarket" banner
 * (or a .mtx / .mm file name) is Matrix Market, "::" is .dat, the exact MovieLens CSV header is
 * mlcsv, four tab-separated fields are u.data, and anything else is generic delimited.
 * Headers: the first non-blank line of a MovieLens CSV, u.data or generic file is a header
 * when its rating field is a word, not a number or a bad one such as "nan", "inf" or an empty
 * field (.dat files never have one). In a generic file, a first
 * line of 2 to 4 fields that are all common column names (user, userId, user_id, item,
 * movieId, rating, count, timestamp, ...; case-insensitive) is a header too. Otherwise a
 * generic file with two fields has a header when its first line holds two non-integers and the
 * next line two integers (so a file of string ids "alice,matrix" has no header, while "u,i"
 * over "1,2" has one). A generic file's header, or else its first good line, fixes its field
 * count (2, 3 or 4).
 *
 * Matrix Market ids are the indices written back in canonical decimal ("007" is item "7");
 * every other format keeps the exact bytes of the id field.
 */
#include "reader.h"

#include <csv.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "status.h"

#define MAX_FIELDS 8
#define USER_CACHE_BYTES 64

typedef struct {
    const char *s;
    size_t n;
} field;

/* How fields are separated. */
enum { SEP_DCOLON, SEP_COMMA, SEP_TAB, SEP_SPACES };

typedef struct {
    /* Settings. */
    const char *path;
    gpuals_format format;
    double min_rating;
    int skip_bad;
    reader_result *res;

    /* Layout of the format (set when the first line is seen). */
    int started;            /* the first non-blank line has been seen */
    int sep;                /* SEP_* */
    int min_fields, max_fields;
    int has_timestamp;      /* field 4 is a timestamp to check */
    int header_seen;
    size_t text_bytes;      /* bytes of every line read, line endings and a BOM aside */
    int64_t newlines;       /* line endings read */

    /* Generic delimited: a two-field first line held back until the next line decides. */
    char *pending;
    size_t pending_n;
    int64_t pending_line;

    /* Matrix Market: banner, size line, entry count. */
    int mm_pattern;
    int mm_integer;         /* the banner says 'integer': values must be integers */
    int mm_have_size;
    int64_t mm_rows, mm_cols, mm_entries, mm_seen, mm_size_line;

    /* The last user interned (rating files are usually grouped by user). */
    char last_user[USER_CACHE_BYTES];
    size_t last_user_n;
    int32_t last_user_index;

    /* Comma-separated lines with a quote: the libcsv parser (set up on first use) and the
     * buffer that holds the unquoted fields of the last such line. */
    struct csv_parser csv;
    int csv_ready;
    char *quoted;
    size_t quoted_cap;
} parse_ctx;

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                              */
/* ------------------------------------------------------------------------------------------ */

static const char *sep_name(int sep)
{
    switch (sep) {
    case SEP_DCOLON: return "'::'";
    case SEP_COMMA: return "','";
    case SEP_TAB: return "tabs";
    default: return "spaces";
    }
}

static inline int is_blank_char(char c) { return c == ' ' || c == '\t'; }

static int is_blank_line(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_blank_char(s[i])) return 0;
    return 1;
}

static inline field trim(const char *s, size_t n)
{
    while (n > 0 && is_blank_char(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_blank_char(s[n - 1])) n--;
    return (field){s, n};
}

/* Split s[0..n) into trimmed fields; returns the number of fields found (which may exceed
 * MAX_FIELDS; only the first MAX_FIELDS are stored). */
static int split(const char *s, size_t n, int sep, field *f)
{
    int nf = 0;
    if (sep == SEP_SPACES) {
        size_t i = 0;
        for (;;) {
            while (i < n && is_blank_char(s[i])) i++;
            if (i == n) return nf;
            size_t start = i;
            while (i < n && !is_blank_char(s[i])) i++;
            if (nf < MAX_FIELDS) f[nf] = (field){s + start, i - start};
            nf++;
        }
    }
    char c = sep == SEP_DCOLON ? ':' : sep == SEP_COMMA ? ',' : '\t';
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != c) continue;
        if (sep == SEP_DCOLON && (i + 1 >= n || s[i + 1] != ':')) continue;
        if (nf < MAX_FIELDS) f[nf] = trim(s + start, i - start);
        nf++;
        if (sep == SEP_DCOLON) i++;
        start = i + 1;
    }
    if (nf < MAX_FIELDS) f[nf] = trim(s + start, n - start);
    return nf + 1;
}

/* What split_line returns for a quoted line it cannot split. */
enum { QUOTE_STRAY = -1, QUOTE_OPEN = -2, QUOTE_NOMEM = -3 };

/* The fields of a quoted line as libcsv hands them out: copied into buf, the first MAX_FIELDS
 * recorded in f, all of them counted in nf. */
typedef struct {
    char *buf;
    size_t len;
    field *f;
    int nf;
} quoted_fields;

static void quoted_field(void *s, size_t n, void *data)
{
    quoted_fields *q = data;
    if (q->nf < MAX_FIELDS) {
        if (n > 0) memcpy(q->buf + q->len, s, n);
        q->f[q->nf] = trim(q->buf + q->len, n); /* blanks inside quotes too, as in split */
        q->len += n;
    }
    q->nf++;
}

/* No byte ends a record: the line source has removed the newline already, and a carriage
 * return inside a line stays in its field, as in the plain split. */
static int no_terminator(unsigned char ch)
{
    (void)ch;
    return 0;
}

/* Split the comma-separated line s[0..n), which holds a double quote, with libcsv (strict RFC
 * 4180 quoting; spaces and tabs around a field are dropped, those inside quotes kept). Returns
 * the number of fields as split does, QUOTE_STRAY for a quote that does not enclose a whole
 * field (*column set to the 1-based column where libcsv stopped), QUOTE_OPEN for a quote not
 * closed on the line, QUOTE_NOMEM without memory. The fields point into c->quoted and stay
 * valid until the next call. */
static int split_quoted(parse_ctx *c, const char *s, size_t n, field *f, size_t *column)
{
    /* The parser and a buffer as long as the line: unquoting never makes text longer. */
    if (!c->csv_ready) {
        if (csv_init(&c->csv, CSV_STRICT | CSV_STRICT_FINI) != 0) return QUOTE_NOMEM;
        csv_set_term_func(&c->csv, no_terminator);
        c->csv_ready = 1;
    }
    if (c->quoted_cap < n + 1) {
        char *buf = realloc(c->quoted, n + 1);
        if (!buf) return QUOTE_NOMEM;
        c->quoted = buf;
        c->quoted_cap = n + 1;
    }

    /* Parse and finish the record; a failure leaves the parser mid-record, so it starts anew
     * on the next quoted line. */
    quoted_fields q = {c->quoted, 0, f, 0};
    size_t used = csv_parse(&c->csv, s, n, quoted_field, NULL, &q);
    int code = 0;
    if (used != n) {
        code = csv_error(&c->csv) == CSV_EPARSE ? QUOTE_STRAY : QUOTE_NOMEM;
        *column = used + 1;
    } else if (csv_fini(&c->csv, quoted_field, NULL, &q) != 0) {
        code = QUOTE_OPEN;
    }
    if (code != 0) {
        csv_free(&c->csv);
        c->csv_ready = 0;
        return code;
    }
    return q.nf;
}

/* 1 when a comma-separated field of s[0..n) begins (after blanks) with a double quote. A quote
 * inside a field that does not begin with one is an ordinary character, as in the plain split
 * (a log may name an artist `Guns "N" Roses`). */
static int has_quoted_field(const char *s, size_t n)
{
    if (!memchr(s, '"', n)) return 0;
    int at_start = 1;
    for (size_t i = 0; i < n; i++) {
        if (at_start && (s[i] == ' ' || s[i] == '\t')) continue;
        if (at_start && s[i] == '"') return 1;
        at_start = s[i] == ',';
    }
    return 0;
}

/* Split a line in the format's layout: split, or split_quoted for a comma-separated line with
 * a quoted field. */
static int split_line(parse_ctx *c, const char *s, size_t n, field *f, size_t *column)
{
    if (c->sep == SEP_COMMA && has_quoted_field(s, n)) return split_quoted(c, s, n, f, column);
    return split(s, n, c->sep, f);
}

/* Optional sign then at least one digit, nothing else. */
static int is_integer(field f)
{
    size_t i = 0;
    if (i < f.n && (f.s[i] == '-' || f.s[i] == '+')) i++;
    if (i == f.n) return 0;
    for (; i < f.n; i++)
        if (f.s[i] < '0' || f.s[i] > '9') return 0;
    return 1;
}

/* 10^k for the fast path; every entry is exact in double. */
static const double pow10_table[16] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

/* Parse a number (see reader.h). The grammar is checked by hand first, so strtod only ever sees
 * a plain decimal (never hex, "nan" or "inf"). The fast path reads the digits as one integer
 * m < 10^15 and divides by 10^frac: both are exact doubles, so the quotient is correctly
 * rounded; longer mantissas and exponents go through strtod. */
int reader_parse_number(const char *s, size_t n, double *out)
{
    /* Grammar: [+-] digits [. digits] [(e|E) [+-] digits], at least one mantissa digit. */
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    size_t int_start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    size_t int_digits = i - int_start, frac_start = i, frac_digits = 0;
    if (i < n && s[i] == '.') {
        frac_start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        frac_digits = i - frac_start;
    }
    int has_exponent = 0;
    if (int_digits + frac_digits > 0 && i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t k = i + 1;
        if (k < n && (s[k] == '+' || s[k] == '-')) k++;
        size_t exp_start = k;
        while (k < n && s[k] >= '0' && s[k] <= '9') k++;
        if (k == exp_start) return 1; /* "1e", "1e+" */
        i = k;
        has_exponent = 1;
    }
    if (int_digits + frac_digits == 0 || i != n) {
        /* Not a plain decimal: name the non-finite spellings apart from the rest. */
        size_t k = (n > 0 && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
        size_t left = n - k;
        if ((left == 3 && strncasecmp(s + k, "nan", 3) == 0) ||
            (left == 3 && strncasecmp(s + k, "inf", 3) == 0) ||
            (left == 8 && strncasecmp(s + k, "infinity", 8) == 0))
            return 2;
        return 1;
    }

    /* Fast path: no exponent and at most 15 digits. */
    if (!has_exponent && int_digits + frac_digits <= 15) {
        uint64_t m = 0;
        for (size_t k = int_start; k < int_start + int_digits; k++)
            m = m * 10 + (uint64_t)(s[k] - '0');
        for (size_t k = frac_start; k < frac_start + frac_digits; k++)
            m = m * 10 + (uint64_t)(s[k] - '0');
        double v = (double)m;
        if (frac_digits) v /= pow10_table[frac_digits];
        *out = neg ? -v : v;
        return 0;
    }

    /* Slow path: strtod on a NUL-terminated copy of the checked text. */
    char small[128];
    char *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf) return 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end = NULL;
    double v = strtod(buf, &end);
    int consumed = end == buf + n;
    if (buf != small) free(buf);
    if (!consumed) return 1;
    if (!isfinite(v)) return 2;
    *out = v;
    return 0;
}

/* A rating or value: reader_parse_number, with values beyond the float range counted as not
 * finite (they would be stored as infinities), and 3 for a finite value of magnitude above
 * READER_MAX_VALUE. */
static int parse_value(field f, double *out)
{
    int code = reader_parse_number(f.s, f.n, out);
    if (code == 0 && fabs(*out) > READER_MAX_VALUE) return 3;
    return code;
}

/* What was expected of a value parse_value refused with code 1, 2 or 3; values says what the
 * format calls them ("rating" or "value"). */
static const char *value_expected(int code, int values)
{
    static const char *const text[2][3] = {
        {"a number as the rating", "a finite rating",
         "a rating of magnitude at most " READER_MAX_VALUE_TEXT},
        {"a number as the value", "a finite value",
         "a value of magnitude at most " READER_MAX_VALUE_TEXT},
    };
    return text[values][code - 1];
}

/* Record a malformed line: counted under skip_bad, else GPUALS_ERR_PARSE with
 * "path:line: " and the formatted text. */
static gpuals_status bad_line(parse_ctx *c, int64_t line, const char *fmt, ...)
    GPUALS_PRINTF(3, 4);

static gpuals_status bad_line(parse_ctx *c, int64_t line, const char *fmt, ...)
{
    gpuals_summary *k = &c->res->counts;
    if (c->skip_bad) {
        k->bad_lines++;
        if (k->first_bad_line == 0) k->first_bad_line = line;
        return GPUALS_OK;
    }
    char what[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: %s", c->path, (long long)line, what);
}

/* ------------------------------------------------------------------------------------------ */
/* Triplets and ids                                                                           */
/* ------------------------------------------------------------------------------------------ */

/* Make room for one more triplet. */
static gpuals_status reserve_one(reader_result *r)
{
    if (r->n < r->cap) return GPUALS_OK;
    int64_t cap = r->cap < 1024 ? 1024 : r->cap + r->cap / 2;
    int32_t *row = realloc(r->row, (size_t)cap * sizeof *row);
    if (row) r->row = row;
    int32_t *col = realloc(r->col, (size_t)cap * sizeof *col);
    if (col) r->col = col;
    float *val = realloc(r->val, (size_t)cap * sizeof *val);
    if (val) r->val = val;
    if (!row || !col || !val)
        return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory holding %lld ratings",
                           (long long)r->n);
    r->cap = cap;
    return GPUALS_OK;
}

/* Index of an id in m, adding it; fails beyond 32-bit indices or without memory. */
static gpuals_status intern(parse_ctx *c, idmap *m, field f, const char *what, int64_t line,
                            int32_t *index)
{
    int64_t k = idmap_intern(m, f.s, f.n, NULL);
    if (k < 0)
        return gpuals_fail(GPUALS_ERR_NOMEM, "%s:%lld: out of memory adding %s id number %lld",
                           c->path, (long long)line, what, (long long)idmap_size(m) + 1);
    if (k > INT32_MAX)
        return gpuals_fail(GPUALS_ERR_NOMEM, "%s:%lld: more than %d distinct %s ids; matrix "
                           "indices are 32-bit", c->path, (long long)line, INT32_MAX, what);
    *index = (int32_t)k;
    return GPUALS_OK;
}

/* Steps 4 and 5 for one parsed line: filter, intern, append. */
static gpuals_status keep(parse_ctx *c, int64_t line, field user, field item, double rating)
{
    gpuals_summary *k = &c->res->counts;

    /* Filter before interning. */
    if (!(rating >= c->min_rating)) {
        k->filtered_lines++;
        return GPUALS_OK;
    }
    float value = (float)rating;
    if (value == 0.0f) { /* an explicit zero, or one too small for a float */
        k->zero_lines++;
        return GPUALS_OK;
    }

    /* Ids: the user usually repeats the previous line's. */
    int32_t u = -1, i = -1;
    if (user.n == c->last_user_n && c->last_user_index >= 0 &&
        memcmp(user.s, c->last_user, user.n) == 0) {
        u = c->last_user_index;
    } else {
        GPUALS_TRY(intern(c, c->res->users, user, "user", line, &u));
        if (user.n <= USER_CACHE_BYTES) {
            memcpy(c->last_user, user.s, user.n);
            c->last_user_n = user.n;
            c->last_user_index = u;
        } else {
            c->last_user_index = -1;
        }
    }
    GPUALS_TRY(intern(c, c->res->items, item, "item", line, &i));

    /* Append. */
    reader_result *r = c->res;
    GPUALS_TRY(reserve_one(r));
    r->row[r->n] = u;
    r->col[r->n] = i;
    r->val[r->n] = value;
    r->n++;
    k->kept_lines++;
    return GPUALS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Rating lines of the delimited formats (.dat, mlcsv, u.data, generic)                      */
/* ------------------------------------------------------------------------------------------ */

/* Describe the expected layout for a field-count message. */
static const char *layout_text(const parse_ctx *c)
{
    switch (c->format) {
    case GPUALS_FORMAT_DAT: return "user::item::rating::timestamp";
    case GPUALS_FORMAT_MLCSV: return "userId,movieId,rating,timestamp";
    case GPUALS_FORMAT_UDATA: return "user, item, rating, timestamp";
    case GPUALS_FORMAT_MM: return c->mm_pattern ? "row col" : "row col value";
    default: return "user item [value [timestamp]]";
    }
}

/* Steps 2 to 5 for a data line of a delimited format. */
static gpuals_status take_line(parse_ctx *c, int64_t line, const char *s, size_t n)
{
    char shown[200];
    c->res->counts.raw_lines++;

    /* Text only. */
    const char *nul = memchr(s, '\0', n);
    if (nul)
        return bad_line(c, line, "expected text, found a NUL byte at column %lld",
                        (long long)(nul - s) + 1);

    /* Fields. */
    field f[MAX_FIELDS];
    size_t column = 0;
    int nf = split_line(c, s, n, f, &column);
    if (nf < 0) {
        reader_excerpt(shown, sizeof shown, s, n, 60);
        if (nf == QUOTE_NOMEM)
            return gpuals_fail(GPUALS_ERR_NOMEM, "%s:%lld: out of memory splitting a quoted "
                               "line", c->path, (long long)line);
        if (nf == QUOTE_OPEN)
            return bad_line(c, line, "expected a closing quote before the end of the line, "
                            "found none in %s", shown);
        return bad_line(c, line, "expected quotes around a whole field (with \"\" for a quote "
                        "inside it), found %s at column %zu of %s",
                        column <= n && s[column - 1] == '"' ? "a stray quote"
                                                            : "text after a closing quote",
                        column, shown);
    }
    if (nf < c->min_fields || nf > c->max_fields) {
        /* One field in a generic file: most likely a separator we do not read (";", "|"). */
        const char *hint = c->format == GPUALS_FORMAT_DELIM && nf == 1
                               ? "; a delimited file's separator is a tab, a comma or spaces, "
                                 "chosen from its first line"
                               : "";
        if (c->min_fields == c->max_fields)
            return bad_line(c, line, "expected %d fields separated by %s (%s), found %d%s",
                            c->min_fields, sep_name(c->sep), layout_text(c), nf, hint);
        return bad_line(c, line, "expected %d to %d fields separated by %s (%s), found %d%s",
                        c->min_fields, c->max_fields, sep_name(c->sep), layout_text(c), nf,
                        hint);
    }
    if (c->format == GPUALS_FORMAT_DELIM && c->min_fields != c->max_fields) {
        c->min_fields = c->max_fields = nf; /* the first good line fixes the count */
    }

    /* Ids. */
    if (f[0].n == 0)
        return bad_line(c, line, "expected a user id in field 1, found an empty field");
    if (f[1].n == 0)
        return bad_line(c, line, "expected an item id in field 2, found an empty field");

    /* Rating (1 when the generic format has no value column). */
    double rating = 1.0;
    if (nf >= 3) {
        if (f[2].n == 0)
            return bad_line(c, line, "expected a rating in field 3, found an empty field");
        int pr = parse_value(f[2], &rating);
        if (pr != 0) {
            reader_excerpt(shown, sizeof shown, f[2].s, f[2].n, 40);
            return bad_line(c, line, "expected %s in field 3, found %s", value_expected(pr, 0),
                            shown);
        }
    }
    if (nf == 4 && f[3].n == 0)
        return bad_line(c, line, "expected a timestamp in field 4, found an empty field");
    if (c->has_timestamp && !is_integer(f[3])) {
        reader_excerpt(shown, sizeof shown, f[3].s, f[3].n, 40);
        return bad_line(c, line, "expected an integer timestamp in field 4, found %s", shown);
    }
    return keep(c, line, f[0], f[1], rating);
}

/* ------------------------------------------------------------------------------------------ */
/* Matrix Market                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* A positive decimal integer (no sign) into *v; 0 on success. */
static int parse_index(field f, int64_t *v)
{
    if (f.n == 0 || f.n > 18) return -1;
    int64_t x = 0;
    for (size_t i = 0; i < f.n; i++) {
        if (f.s[i] < '0' || f.s[i] > '9') return -1;
        x = x * 10 + (f.s[i] - '0');
    }
    *v = x;
    return 0;
}

/* Canonical decimal text of v into buf (at least 21 bytes); returns the length. */
static size_t format_index(int64_t v, char *buf)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (size_t i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}

/* The banner: %%MatrixMarket matrix coordinate real|integer|pattern general. */
static gpuals_status mm_banner(parse_ctx *c, int64_t line, const char *s, size_t n)
{
    char shown[200];
    field f[MAX_FIELDS];
    int nf = split(s, n, SEP_SPACES, f);
    reader_excerpt(shown, sizeof shown, s, n, 40);
    if (nf != 5 || f[0].n != 14 || strncasecmp(f[0].s, "%%MatrixMarket", 14) != 0 ||
        f[1].n != 6 || strncasecmp(f[1].s, "matrix", 6) != 0)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected a '%%%%MatrixMarket matrix "
                           "coordinate <real|integer|pattern> general' banner, found %s",
                           c->path, (long long)line, shown);
    if (f[2].n != 10 || strncasecmp(f[2].s, "coordinate", 10) != 0)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected a 'coordinate' (sparse) "
                           "Matrix Market file, found %s", c->path, (long long)line, shown);
    int real = f[3].n == 4 && strncasecmp(f[3].s, "real", 4) == 0;
    int integer = f[3].n == 7 && strncasecmp(f[3].s, "integer", 7) == 0;
    int pattern = f[3].n == 7 && strncasecmp(f[3].s, "pattern", 7) == 0;
    if (!real && !integer && !pattern)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected the field type real, integer "
                           "or pattern, found %s", c->path, (long long)line, shown);
    if (f[4].n != 7 || strncasecmp(f[4].s, "general", 7) != 0)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected the symmetry 'general' (a user "
                           "x item matrix), found %s", c->path, (long long)line, shown);
    c->mm_pattern = pattern;
    c->mm_integer = integer;
    c->min_fields = c->max_fields = pattern ? 2 : 3;
    return GPUALS_OK;
}

/* The size line: rows cols entries. */
static gpuals_status mm_size(parse_ctx *c, int64_t line, const char *s, size_t n)
{
    char shown[200];
    field f[MAX_FIELDS];
    int nf = split(s, n, SEP_SPACES, f);
    if (nf != 3 || parse_index(f[0], &c->mm_rows) != 0 || parse_index(f[1], &c->mm_cols) != 0 ||
        parse_index(f[2], &c->mm_entries) != 0) {
        reader_excerpt(shown, sizeof shown, s, n, 40);
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected the size line 'rows columns "
                           "entries' (three integers), found %s", c->path, (long long)line,
                           shown);
    }
    c->mm_have_size = 1;
    c->mm_size_line = line;
    return GPUALS_OK;
}

/* An entry line: row col [value], both indices within the declared size. */
static gpuals_status mm_entry(parse_ctx *c, int64_t line, const char *s, size_t n)
{
    char shown[200];
    c->res->counts.raw_lines++;
    c->mm_seen++;
    if (c->mm_seen > c->mm_entries)
        return bad_line(c, line, "expected at most %lld entries (declared on line %lld), found "
                        "one more", (long long)c->mm_entries, (long long)c->mm_size_line);
    if (memchr(s, '\0', n))
        return bad_line(c, line, "expected text, found a NUL byte at column %lld",
                        (long long)((const char *)memchr(s, '\0', n) - s) + 1);

    /* Fields and indices. */
    field f[MAX_FIELDS];
    int nf = split(s, n, SEP_SPACES, f);
    if (nf != c->min_fields)
        return bad_line(c, line, "expected %d fields separated by spaces (%s), found %d",
                        c->min_fields, layout_text(c), nf);
    int64_t r, k;
    if (parse_index(f[0], &r) != 0 || r < 1 || r > c->mm_rows) {
        reader_excerpt(shown, sizeof shown, f[0].s, f[0].n, 40);
        return bad_line(c, line, "expected a row index in 1..%lld, found %s",
                        (long long)c->mm_rows, shown);
    }
    if (parse_index(f[1], &k) != 0 || k < 1 || k > c->mm_cols) {
        reader_excerpt(shown, sizeof shown, f[1].s, f[1].n, 40);
        return bad_line(c, line, "expected a column index in 1..%lld, found %s",
                        (long long)c->mm_cols, shown);
    }

    /* Value. */
    double v = 1.0;
    if (c->mm_integer && !is_integer(f[2])) {
        reader_excerpt(shown, sizeof shown, f[2].s, f[2].n, 40);
        return bad_line(c, line, "expected an integer value in field 3 (the banner declares "
                        "'integer'), found %s", shown);
    }
    if (!c->mm_pattern) {
        int pr = parse_value(f[2], &v);
        if (pr != 0) {
            reader_excerpt(shown, sizeof shown, f[2].s, f[2].n, 40);
            return bad_line(c, line, "expected %s in field 3, found %s", value_expected(pr, 1),
                            shown);
        }
    }

    /* Canonical ids. */
    char rb[24], kb[24];
    size_t rn = format_index(r, rb), kn = format_index(k, kb);
    return keep(c, line, (field){rb, rn}, (field){kb, kn}, v);
}

/* ------------------------------------------------------------------------------------------ */
/* Detection and headers                                                                      */
/* ------------------------------------------------------------------------------------------ */

static int has_suffix(const char *path, const char *suffix)
{
    size_t n = strlen(path), k = strlen(suffix);
    return n >= k && strcasecmp(path + n - k, suffix) == 0;
}

static int starts_with_banner(const char *s, size_t n)
{
    return n >= 14 && strncasecmp(s, "%%MatrixMarket", 14) == 0;
}

/* Whether s[0..n) is the header of a MovieLens CSV, white space around it aside. */
static int is_ml_csv_header(const char *s, size_t n)
{
    static const char ml_header[] = "userId,movieId,rating,timestamp";
    field t = trim(s, n);
    return t.n == sizeof ml_header - 1 && memcmp(t.s, ml_header, t.n) == 0;
}

/* The format of a file whose first non-blank line is s[0..n). */
static gpuals_format detect(const char *s, size_t n)
{
    if (starts_with_banner(s, n)) return GPUALS_FORMAT_MM;
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == ':' && s[i + 1] == ':') return GPUALS_FORMAT_DAT;
    if (is_ml_csv_header(s, n)) return GPUALS_FORMAT_MLCSV;
    field f[MAX_FIELDS];
    if (memchr(s, '\t', n) && split(s, n, SEP_TAB, f) == 4) return GPUALS_FORMAT_UDATA;
    return GPUALS_FORMAT_DELIM;
}

/* Fix the separator and field counts of the format from the first line s[0..n). */
static void set_layout(parse_ctx *c, const char *s, size_t n)
{
    switch (c->format) {
    case GPUALS_FORMAT_DAT: c->sep = SEP_DCOLON; break;
    case GPUALS_FORMAT_MLCSV: c->sep = SEP_COMMA; break;
    case GPUALS_FORMAT_UDATA: c->sep = SEP_TAB; break;
    default:
        c->sep = memchr(s, '\t', n) ? SEP_TAB : memchr(s, ',', n) ? SEP_COMMA : SEP_SPACES;
        break;
    }
    if (c->format == GPUALS_FORMAT_DELIM) {
        c->min_fields = 2;
        c->max_fields = 4; /* user item [value [timestamp]]; the timestamp is not checked */
    } else {
        c->min_fields = c->max_fields = 4;
        c->has_timestamp = 1;
    }
}

/* 1 when f is a common column name (ASCII case and '_', '-' and ' ' ignored, optionally in
 * double quotes): "user", "userId", "user_id", "movieId", "rating", "timestamp" and the like. */
static int is_column_name(field f)
{
    static const char *const names[] = {
        "user",    "userid",    "uid",    "customer", "customerid", "item",  "itemid",
        "iid",     "movie",     "movieid", "track",   "trackid",    "artist", "artistid",
        "product", "productid", "song",   "songid",   "rating",     "value", "count",
        "weight",  "score",     "plays",  "playcount", "timestamp", "time",  "ts",
        "date",
    };
    if (f.n >= 2 && f.s[0] == '"' && f.s[f.n - 1] == '"') {
        f.s++;
        f.n -= 2;
    }
    char folded[16];
    size_t k = 0;
    for (size_t i = 0; i < f.n; i++) {
        char ch = f.s[i];
        if (ch == '_' || ch == '-' || ch == ' ') continue;
        if (k + 1 >= sizeof folded) return 0;
        folded[k++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    folded[k] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(folded, names[i]) == 0) return 1;
    return 0;
}

/* 1 when f could be a column name rather than a bad value: it is not empty and does not read as
 * a number to strtod, whole (so "nan", "inf" and "1e400", which the value check refuses, make
 * a first line a bad data line, not a header). */
static int could_be_name(field f)
{
    char buf[64];
    if (f.n == 0) return 0;
    if (f.n >= sizeof buf) return 1;
    memcpy(buf, f.s, f.n);
    buf[f.n] = '\0';
    char *end;
    (void)strtod(buf, &end);
    while (end > buf && end < buf + f.n && (*end == ' ' || *end == '\t')) end++;
    return end != buf + f.n;
}

/* Verdicts of header_verdict. */
enum { NOT_HEADER, HEADER_BY_NAMES, HEADER_UNDECIDED, HEADER_BY_VALUE };

/* Whether the first line s[0..n) of a delimited format is a header: HEADER_BY_NAMES or
 * HEADER_BY_VALUE yes, NOT_HEADER no, HEADER_UNDECIDED when the next line decides (a generic
 * two-field line of non-integers that are not all column names). A header is, in a generic
 * file of 2 to 4 fields, a line whose fields are all common column names (by names), or a line
 * whose rating field is a word (not empty, and not a number even to strtod, which reads "nan",
 * "inf" and "1e400") while its ids are not both integers (by value: a line of integer ids is
 * data, so a bad value there is reported, not skipped); .dat files never have one. */
static int header_verdict(parse_ctx *c, const char *s, size_t n)
{
    if (c->format == GPUALS_FORMAT_DAT) return 0;
    if (memchr(s, '\0', n)) return 0;
    field f[MAX_FIELDS];
    size_t column;
    int nf = split_line(c, s, n, f, &column);
    if (c->format == GPUALS_FORMAT_DELIM && nf >= 2 && nf <= 4) {
        int all_names = 1;
        for (int k = 0; k < nf && all_names; k++) all_names = is_column_name(f[k]);
        if (all_names) return HEADER_BY_NAMES;
    }
    double v;
    if (nf >= 3 && nf <= 4 && reader_parse_number(f[2].s, f[2].n, &v) != 0 &&
        could_be_name(f[2]) && !(is_integer(f[0]) && is_integer(f[1])))
        return HEADER_BY_VALUE;
    if (c->format == GPUALS_FORMAT_DELIM && nf == 2 && !is_integer(f[0]) && !is_integer(f[1]))
        return HEADER_UNDECIDED;
    return NOT_HEADER;
}

/* Record the first line s[0..n), taken for a header by its shape alone, for the caller to
 * report (the exact MovieLens CSV header is expected, not guessed). */
static void note_guessed_header(parse_ctx *c, int64_t line, const char *s, size_t n)
{
    if (is_ml_csv_header(s, n)) return;
    c->res->guessed_header_line = line;
    reader_excerpt(c->res->guessed_header, sizeof c->res->guessed_header, s, n, 60);
}

/* Decide a held-back two-field line given the next data line s[0..n) (NULL at the end). */
static gpuals_status settle_pending(parse_ctx *c, const char *s, size_t n)
{
    int header = 0;
    if (s) {
        field f[MAX_FIELDS];
        size_t column;
        int nf = memchr(s, '\0', n) ? 0 : split_line(c, s, n, f, &column);
        header = nf >= 2 && is_integer(f[0]) && is_integer(f[1]);
    }
    gpuals_status st = GPUALS_OK;
    if (header) {
        c->header_seen = 1;
        c->min_fields = c->max_fields = 2;
        note_guessed_header(c, c->pending_line, c->pending, c->pending_n);
    } else {
        st = take_line(c, c->pending_line, c->pending, c->pending_n);
    }
    free(c->pending);
    c->pending = NULL;
    return st;
}

/* The first non-blank line of the file: detect the format, set the layout, handle headers and
 * the Matrix Market banner. */
static gpuals_status first_line(parse_ctx *c, int64_t line, const char *s, size_t n)
{
    /* Format. */
    if (c->format == GPUALS_FORMAT_AUTO) c->format = detect(s, n);
    c->res->format = c->format;
    c->started = 1;
    if (c->format == GPUALS_FORMAT_MM) {
        if (line != 1)
            return gpuals_fail(GPUALS_ERR_PARSE, "%s:1: expected a '%%%%MatrixMarket' banner, "
                               "found a blank line", c->path);
        return mm_banner(c, line, s, n);
    }
    set_layout(c, s, n);

    /* Header. */
    int verdict = header_verdict(c, s, n);
    if (verdict == HEADER_BY_NAMES || verdict == HEADER_BY_VALUE) {
        c->header_seen = 1;
        if (verdict == HEADER_BY_VALUE) note_guessed_header(c, line, s, n);
        field f[MAX_FIELDS];
        size_t column;
        int nf = split_line(c, s, n, f, &column);
        if (c->format == GPUALS_FORMAT_DELIM && nf >= 2 && nf <= 4)
            c->min_fields = c->max_fields = nf; /* the header fixes the field count */
        return GPUALS_OK;
    }
    if (verdict == HEADER_UNDECIDED) {
        c->pending = malloc(n ? n : 1);
        if (!c->pending)
            return gpuals_fail(GPUALS_ERR_NOMEM, "%s:%lld: out of memory", c->path,
                               (long long)line);
        memcpy(c->pending, s, n);
        c->pending_n = n;
        c->pending_line = line;
        return GPUALS_OK;
    }
    return take_line(c, line, s, n);
}

/* Any line after the first non-blank one. */
static gpuals_status next_line(parse_ctx *c, int64_t line, const char *s, size_t n)
{
    if (c->format == GPUALS_FORMAT_MM) {
        if (n > 0 && s[0] == '%') return GPUALS_OK;
        if (!c->mm_have_size) return mm_size(c, line, s, n);
        return mm_entry(c, line, s, n);
    }
    if (c->pending) GPUALS_TRY(settle_pending(c, s, n));
    return take_line(c, line, s, n);
}

/* ------------------------------------------------------------------------------------------ */
/* The driver                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* Why nothing was kept, as GPUALS_ERR_EMPTY. */
static gpuals_status empty_reason(const parse_ctx *c)
{
    const gpuals_summary *k = &c->res->counts;
    if (k->raw_lines == 0) {
        if (c->format == GPUALS_FORMAT_MM && c->started)
            return gpuals_fail(GPUALS_ERR_EMPTY, "%s: no entries (the Matrix Market file "
                               "declares %lld)", c->path, (long long)c->mm_entries);
        if (c->header_seen)
            return gpuals_fail(GPUALS_ERR_EMPTY, "%s: no rating lines after the header",
                               c->path);
        int empty = c->text_bytes == 0 && c->newlines == 0; /* nothing, or a lone BOM */
        return gpuals_fail(GPUALS_ERR_EMPTY, "%s: no rating lines (the file %s)", c->path,
                           empty ? "is empty" : "holds only blank lines");
    }
    if (k->bad_lines == k->raw_lines)
        return gpuals_fail(GPUALS_ERR_EMPTY, "%s: no valid rating lines: all %lld were "
                           "malformed and skipped (the first is line %lld)", c->path,
                           (long long)k->raw_lines, (long long)k->first_bad_line);
    char threshold[64] = "none";
    if (c->min_rating > -INFINITY) snprintf(threshold, sizeof threshold, "%g", c->min_rating);
    return gpuals_fail(GPUALS_ERR_EMPTY, "%s: every rating was filtered out: of %lld lines, "
                       "%lld are below the minimum rating (%s), %lld are explicit zeros and "
                       "%lld were malformed", c->path, (long long)k->raw_lines,
                       (long long)k->filtered_lines, threshold, (long long)k->zero_lines,
                       (long long)k->bad_lines);
}

/* Free everything reader_load allocated (see reader.h). */
void reader_result_free(reader_result *r)
{
    if (!r) return;
    free(r->row);
    free(r->col);
    free(r->val);
    idmap_free(r->users);
    idmap_free(r->items);
    *r = (reader_result){0};
}

/* Size the triplet arrays from the file size (about one rating per 12 bytes); only the pages
 * actually written become resident, so a generous guess costs address space, not memory. */
static void reserve_from_size(reader_result *r, int64_t size)
{
    int64_t guess = size / 12 + 1024;
    if (guess > ((int64_t)1 << 32)) guess = (int64_t)1 << 32;
    r->row = malloc((size_t)guess * sizeof *r->row);
    r->col = malloc((size_t)guess * sizeof *r->col);
    r->val = malloc((size_t)guess * sizeof *r->val);
    if (r->row && r->col && r->val) {
        r->cap = guess;
        return;
    }
    free(r->row);
    free(r->col);
    free(r->val);
    r->row = NULL;
    r->col = NULL;
    r->val = NULL;
}

/* Read a ratings file (see reader.h). */
gpuals_status reader_load(const char *path, gpuals_format format, double min_rating,
                          int skip_bad, reader_result *out)
{
    *out = (reader_result){0};

    /* Arguments. */
    if (!path || !*path) return gpuals_fail(GPUALS_ERR_USAGE, "no ratings file given");
    if ((int)format < GPUALS_FORMAT_AUTO || format > GPUALS_FORMAT_MM)
        return gpuals_fail(GPUALS_ERR_USAGE, "unknown ratings format %d", (int)format);
    if (isnan(min_rating))
        return gpuals_fail(GPUALS_ERR_USAGE, "the minimum rating is NaN");
    if (format == GPUALS_FORMAT_AUTO && (has_suffix(path, ".mtx") || has_suffix(path, ".mm")))
        format = GPUALS_FORMAT_MM;

    /* File, maps, triplet arrays. */
    line_reader lr;
    GPUALS_TRY(line_reader_open(&lr, path));
    reader_result res = {0};
    parse_ctx c = {.path = path, .format = format, .min_rating = min_rating,
                   .skip_bad = skip_bad, .res = &res, .last_user_index = -1};
    gpuals_status st = GPUALS_OK;
    res.users = idmap_new();
    res.items = idmap_new();
    if (!res.users || !res.items) {
        st = gpuals_fail(GPUALS_ERR_NOMEM, "%s: out of memory for the id maps", path);
        goto done;
    }
    reserve_from_size(&res, lr.size_hint);

    /* Lines. */
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
            if (c.format == GPUALS_FORMAT_MM && !c.mm_have_size) {
                st = gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected a Matrix Market header "
                                 "line of at most %zu bytes, found a longer one", path,
                                 (long long)lr.line_no, READER_MAX_LINE);
                goto done;
            }
            if (c.pending) { /* no evidence of a header: the held line is data */
                st = settle_pending(&c, NULL, 0);
                if (st != GPUALS_OK) goto done;
            }
            res.counts.raw_lines++;
            if (c.format == GPUALS_FORMAT_MM) c.mm_seen++;
            st = bad_line(&c, lr.line_no, "expected a line of at most %zu bytes, found a "
                          "longer one", READER_MAX_LINE);
            if (st != GPUALS_OK) goto done;
            continue;
        }
        c.text_bytes += n;
        if (is_blank_line(s, n)) continue;
        st = c.started ? next_line(&c, lr.line_no, s, n) : first_line(&c, lr.line_no, s, n);
        if (st != GPUALS_OK) goto done;
    }

    /* End of file: a held-back line, the Matrix Market count. */
    if (c.pending) {
        st = settle_pending(&c, NULL, 0);
        if (st != GPUALS_OK) goto done;
    }
    if (c.format == GPUALS_FORMAT_MM && c.started && !c.mm_have_size) {
        st = gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected the size line 'rows columns "
                         "entries', found the end of the file", path, (long long)lr.line_no);
        goto done;
    }
    if (c.format == GPUALS_FORMAT_MM && c.mm_seen < c.mm_entries) {
        st = gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected %lld entries (declared on line "
                         "%lld), found %lld: the file is truncated", path,
                         (long long)lr.line_no, (long long)c.mm_entries,
                         (long long)c.mm_size_line, (long long)c.mm_seen);
        goto done;
    }
    if (res.n == 0) {
        c.newlines = lr.newlines;
        st = empty_reason(&c);
        goto done;
    }
    res.format = c.format;
    *out = res;
    res = (reader_result){0};

done:
    /* A malformed line after a first line taken for a header by its shape: that guess may be
     * what went wrong (the wrong file, say, or its separator), so say it. */
    if (st == GPUALS_ERR_PARSE && res.guessed_header_line > 0) {
        char first[2048];
        snprintf(first, sizeof first, "%s", gpuals_last_error());
        st = gpuals_fail(st, "%s (line %lld was read as a header: %s)", first,
                         (long long)res.guessed_header_line, res.guessed_header);
    }
    free(c.pending);
    free(c.quoted);
    if (c.csv_ready) csv_free(&c.csv);
    line_reader_close(&lr);
    reader_result_free(&res);
    return st;
}
