/*
 * reader.h - parsing rating files into (user, item, value) triplets and id maps.
 *
 * Formats (see gpuals_format): MovieLens .dat (user::item::rating::timestamp), MovieLens CSV
 * with the header userId,movieId,rating,timestamp, ml-100k u.data (four tab-separated fields),
 * generic delimited "user item [value [timestamp]]" (comma, tab or runs of spaces, optional
 * header, no value meaning 1, the timestamp ignored; comma-separated fields may be quoted as in
 * RFC 4180) and Matrix Market coordinate files (real, integer or pattern; general; an integer
 * file's values must be integers).
 *
 * The line source (reader_lines.c) reads the file in large blocks and hands out lines without
 * copying them; the parser (reader.c) splits fields in place, parses ratings with a hand-written
 * fast path, applies the rating filter before any id is interned (so only users and items with a
 * kept interaction get an index), and appends to growing triplet arrays (no per-line malloc).
 */
#ifndef GPUALS_READER_H
#define GPUALS_READER_H

#include <stddef.h>
#include <stdint.h>

#include "gpuals.h"
#include "idmap.h"

/* ------------------------------------------------------------------------------------------ */
/* Line source                                                                                */
/* ------------------------------------------------------------------------------------------ */

/* Lines longer than this many bytes (without the newline) are malformed. */
#define READER_MAX_LINE ((size_t)64 * 1024)

/* What line_reader_next found. */
enum { LINE_END = 0, LINE_OK = 1, LINE_LONG = 2, LINE_ERROR = -1 };

typedef struct {
    const char *path;   /* borrowed, for messages */
    int fd;
    char *buf;          /* cap bytes; [pos, len) not yet handed out */
    size_t cap, pos, len;
    int eof;
    int64_t line_no;    /* number (1-based) of the line last returned */
    int64_t newlines;   /* lines returned that ended in a newline */
    int64_t size_hint;  /* st_size of a regular file, else 0 */
} line_reader;

/* Open path for reading. GPUALS_ERR_IO naming the path and strerror when it is missing,
 * unreadable or a directory; GPUALS_ERR_NOMEM when the buffer cannot be allocated. On failure
 * r needs no close. */
gpuals_status line_reader_open(line_reader *r, const char *path);

/* The next line: LINE_OK with *s / *n set to the line in the reader's buffer (valid until the
 * next call; no '\n', no trailing '\r', a leading UTF-8 byte-order mark removed from line 1);
 * LINE_LONG for a line over READER_MAX_LINE bytes (already skipped; *s is NULL); LINE_END at
 * the end of the file (a last line without a newline is still a line); LINE_ERROR after a read
 * error, with the message recorded (GPUALS_ERR_IO). r->line_no is the line's number. */
int line_reader_next(line_reader *r, const char **s, size_t *n);

/* Close the file and free the buffer; accepts a reader that was closed already. */
void line_reader_close(line_reader *r);

/* ------------------------------------------------------------------------------------------ */
/* Ratings                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* The largest magnitude a rating or value may have; a larger one makes its line malformed. No
 * rating, count or weight comes near it, and it keeps the confidences finite in float32 for
 * every alpha up to 1e12 (the CLI's bound): alpha * 1e12 <= 1e24, far below FLT_MAX (3.4e38),
 * with room for summed duplicates. */
#define READER_MAX_VALUE 1e12
#define READER_MAX_VALUE_TEXT "1e12"

/* What reader_load produces. The triplets index users and items; each array holds n entries
 * (capacity cap) and is malloc'd. counts holds raw_lines, kept_lines (= n), bad_lines,
 * filtered_lines, zero_lines and first_bad_line; its CSR fields (duplicates, users, items,
 * stored) are left 0 for the caller. raw_lines = kept + filtered + zero + bad lines. */
typedef struct {
    int32_t *row, *col;
    float *val;
    int64_t n, cap;
    idmap *users, *items;
    gpuals_summary counts;
    gpuals_format format;   /* the format read: the one asked for, or the one detected */
    /* A first line taken for a header by its shape alone (a value field that is not a number,
     * or two non-integer ids over integer ones) rather than by known column names: its line
     * number (0: none) and an excerpt, so that a malformed first line read as a header can be
     * reported. */
    int64_t guessed_header_line;
    char guessed_header[96];
} reader_result;

/* Read the ratings file at path in the given format (GPUALS_FORMAT_AUTO: detect it from the
 * content, or from a .mtx / .mm name). Lines with a rating below min_rating are counted in
 * filtered_lines, then lines whose rating is exactly zero in zero_lines; neither interns its
 * ids. A malformed line is GPUALS_ERR_PARSE ("path:line: expected ..., found ...") unless
 * skip_bad, which counts it and goes on. GPUALS_ERR_EMPTY when no line is kept (the message
 * says why: empty file, header only, all malformed, or how many were filtered by which
 * threshold); GPUALS_ERR_IO for a missing file or a directory; GPUALS_ERR_USAGE for a bad
 * argument. On failure *out is left zeroed (nothing to free). */
gpuals_status reader_load(const char *path, gpuals_format format, double min_rating,
                          int skip_bad, reader_result *out);

/* Free the triplets and maps of r and zero it; accepts a zeroed struct. */
void reader_result_free(reader_result *r);

/* Parse the number s[0..n) (no surrounding spaces): 0 and *out set when it is a finite plain
 * decimal, 1 when it is not one, 2 when it is a number that is not finite (nan, inf, infinity
 * in any case and with an optional sign, or a decimal beyond the double range such as 1e999).
 * A plain decimal is an optional sign, digits with an optional fraction (at least one digit in
 * all: "5", "5.", ".5") and an optional exponent ("e" or "E", optional sign, digits); anything
 * else, hex ("0x10") included, is not a number. Up to 15 digits without an exponent take a fast
 * path; longer mantissas and exponents go through strtod after the grammar is checked. */
int reader_parse_number(const char *s, size_t n, double *out);

/* Write s[0..n) into dst (cap bytes, at least 16) as a quoted, printable excerpt for an error
 * message: 'text' with \xNN escapes for bytes outside printable ASCII, cut after `shown` bytes
 * with "...". */
void reader_excerpt(char *dst, size_t cap, const char *s, size_t n, size_t shown);

#endif /* GPUALS_READER_H */
