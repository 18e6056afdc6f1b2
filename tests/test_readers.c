/*
 * test_readers.c - every rating format, detection, headers (by heuristics and by column names),
 * quoted CSV fields, the counts of the summary, the number grammar and the bound on values, and
 * every kind of malformed line, through reader_load and gpuals_data_load.
 *
 * Fixtures live in tests/fixtures/data/ (written by hand; its README.md says what each holds).
 * Files with NUL bytes, overlong lines or more than one read block are written at run time in
 * the working directory, so the repository keeps no large fixture.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dataset.h"
#include "gpuals.h"
#include "reader.h"

#define FIX GPUALS_FIXTURES "/data/"

/* Load a fixture with the given settings; returns the status (the data set in *d on success). */
static gpuals_status load(const char *path, gpuals_format format, double min_rating, int skip,
                          gpuals_data **d)
{
    gpuals_load_options o;
    gpuals_load_options_default(&o);
    o.ratings_path = path;
    o.format = format;
    o.min_rating = min_rating;
    o.skip_bad_lines = skip;
    return gpuals_data_load(&o, d);
}

/* The summed rating of (raw user, raw item), or NAN when absent. */
static double rating_of(const gpuals_data *d, const char *user, const char *item)
{
    int64_t u = idmap_find(d->users, user, strlen(user));
    int64_t i = idmap_find(d->items, item, strlen(item));
    if (u < 0 || i < 0) return NAN;
    for (int64_t q = d->ratings.indptr[u]; q < d->ratings.indptr[u + 1]; q++)
        if (d->ratings.indices[q] == i) return d->ratings.data[q];
    return NAN;
}

/* Check the summary's eight counters in one call. */
static void expect_counts(const gpuals_data *d, int64_t raw, int64_t kept, int64_t bad,
                          int64_t filtered, int64_t zeros, int64_t dups, int64_t users,
                          int64_t items)
{
    const gpuals_summary *s = gpuals_data_summary(d);
    assert_int_equal(s->raw_lines, raw);
    assert_int_equal(s->kept_lines, kept);
    assert_int_equal(s->bad_lines, bad);
    assert_int_equal(s->filtered_lines, filtered);
    assert_int_equal(s->zero_lines, zeros);
    assert_int_equal(s->duplicates, dups);
    assert_int_equal(s->users, users);
    assert_int_equal(s->items, items);
    assert_int_equal(s->stored, kept - dups);
    assert_int_equal(d->ratings.rows, users);
    assert_int_equal(d->ratings.cols, items);
    assert_int_equal(d->ratings_t.rows, items);
    assert_int_equal(d->ratings_t.nnz, d->ratings.nnz);
    assert_int_equal(csr_validate(&d->ratings), GPUALS_OK);
    assert_int_equal(csr_validate(&d->ratings_t), GPUALS_OK);
}

/* The format reader_load detects for a fixture. */
static gpuals_format detected(const char *path)
{
    reader_result r;
    gpuals_status st = reader_load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &r);
    assert_int_equal(st, GPUALS_OK);
    gpuals_format f = r.format;
    reader_result_free(&r);
    return f;
}

/* Expect status st and a message that starts with "path:line: " followed by text. */
static void expect_error(gpuals_status got, gpuals_status st, const char *path, int line,
                         const char *text)
{
    char want[1024];
    if (line > 0) snprintf(want, sizeof want, "%s:%d: %s", path, line, text);
    else snprintf(want, sizeof want, "%s", text);
    assert_int_equal(got, st);
    if (strncmp(gpuals_last_error(), want, strlen(want)) != 0)
        fail_msg("message\n  '%s'\ndoes not start with\n  '%s'", gpuals_last_error(), want);
}

/* Write n bytes to a file in the working directory; returns its path (static buffer). */
static const char *write_file(const char *name, const char *bytes, size_t n)
{
    static char path[512];
    snprintf(path, sizeof path, "test_data_readers_%s", name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
    return path;
}

/* ------------------------------------------------------------------------------------------ */

static void test_options_default(void **state)
{
    (void)state;
    gpuals_load_options o;
    memset(&o, 0x5A, sizeof o);
    gpuals_load_options_default(&o);
    assert_null(o.ratings_path);
    assert_null(o.titles_path);
    assert_int_equal(o.format, GPUALS_FORMAT_AUTO);
    assert_true(isinf(o.min_rating) && o.min_rating < 0);
    assert_int_equal(o.skip_bad_lines, 0);
}

static void test_ml1m_dat(void **state)
{
    (void)state;
    gpuals_data *d;
    assert_int_equal(detected(FIX "ml1m/ratings.dat"), GPUALS_FORMAT_DAT);
    assert_int_equal(load(FIX "ml1m/ratings.dat", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                     GPUALS_OK);
    expect_counts(d, 11, 11, 0, 0, 0, 0, 4, 7);
    const char *items[7] = {"1193", "661", "914", "260", "3408", "73", "1"};
    for (int i = 0; i < 7; i++) assert_string_equal(idmap_name(d->items, i), items[i]);
    assert_string_equal(idmap_name(d->users, 3), "4");
    assert_float_equal(rating_of(d, "2", "3408"), 4.0, 0.0);
    assert_float_equal(rating_of(d, "4", "1"), 1.0, 0.0);
    assert_string_equal(d->ratings_path, FIX "ml1m/ratings.dat");
    assert_null(d->titles);
    gpuals_data_free(d);
}

/* Users and items seen only in filtered lines get no index. */
static void test_ml1m_min_rating(void **state)
{
    (void)state;
    gpuals_data *d;
    assert_int_equal(load(FIX "ml1m/ratings.dat", GPUALS_FORMAT_AUTO, 3.0, 0, &d), GPUALS_OK);
    expect_counts(d, 11, 8, 0, 3, 0, 0, 3, 6);
    assert_int_equal(idmap_find(d->users, "4", 1), -1);
    assert_int_equal(idmap_find(d->items, "1", 1), -1);
    assert_true(isnan(rating_of(d, "3", "661")));
    assert_float_equal(rating_of(d, "3", "260"), 5.0, 0.0);
    gpuals_data_free(d);
}

static void test_ml100k_udata(void **state)
{
    (void)state;
    gpuals_data *d;
    assert_int_equal(detected(FIX "ml100k/u.data"), GPUALS_FORMAT_UDATA);
    assert_int_equal(load(FIX "ml100k/u.data", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                     GPUALS_OK);
    expect_counts(d, 8, 8, 0, 0, 0, 0, 3, 5);
    assert_string_equal(idmap_name(d->users, 0), "12");
    assert_string_equal(idmap_name(d->users, 1), "7");
    assert_string_equal(idmap_name(d->items, 4), "99");
    assert_float_equal(rating_of(d, "30", "1"), 5.0, 0.0);
    gpuals_data_free(d);
}

static void test_mlcsv_crlf(void **state)
{
    (void)state;
    gpuals_data *d;
    assert_int_equal(detected(FIX "mlcsv/ratings.csv"), GPUALS_FORMAT_MLCSV);
    assert_int_equal(load(FIX "mlcsv/ratings.csv", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                     GPUALS_OK);
    expect_counts(d, 6, 6, 0, 0, 0, 0, 2, 4);
    assert_float_equal(rating_of(d, "1", "1196"), 4.5, 0.0);
    assert_float_equal(rating_of(d, "2", "6"), 0.5, 0.0);
    assert_string_equal(idmap_name(d->items, 3), "6");
    gpuals_data_free(d);

    assert_int_equal(load(FIX "mlcsv/ratings.csv", GPUALS_FORMAT_MLCSV, 3.0, 0, &d), GPUALS_OK);
    expect_counts(d, 6, 4, 0, 2, 0, 0, 2, 3);
    gpuals_data_free(d);
}

static void test_delimited(void **state)
{
    (void)state;
    gpuals_data *d;

    /* Tabs with a header, fractional values. */
    assert_int_equal(detected(FIX "delim/header.tsv"), GPUALS_FORMAT_DELIM);
    assert_int_equal(load(FIX "delim/header.tsv", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                     GPUALS_OK);
    expect_counts(d, 3, 3, 0, 0, 0, 0, 2, 2);
    assert_float_equal(rating_of(d, "u1", "i2"), 1.5, 0.0);
    assert_int_equal(idmap_find(d->users, "user", 4), -1);
    gpuals_data_free(d);

    /* Commas, no header. */
    assert_int_equal(load(FIX "delim/noheader.csv", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                     GPUALS_OK);
    expect_counts(d, 4, 4, 0, 0, 0, 0, 3, 3);
    assert_float_equal(rating_of(d, "3", "30"), 0.25, 0.0);
    assert_float_equal(rating_of(d, "1", "10"), 2.5, 0.0);
    gpuals_data_free(d);

    /* Runs of spaces and a tab, no values (1 each), a blank line, string ids. */
    assert_int_equal(load(FIX "delim/spaces.txt", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                     GPUALS_OK);
    expect_counts(d, 4, 4, 0, 0, 0, 0, 3, 3);
    assert_float_equal(rating_of(d, "alice", "brazil"), 1.0, 0.0);
    assert_float_equal(rating_of(d, "carol", "alien"), 1.0, 0.0);
    gpuals_data_free(d);

    /* A two-field header, recognised because the next line has integer ids. */
    assert_int_equal(load(FIX "delim/header2.csv", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                     GPUALS_OK);
    expect_counts(d, 3, 3, 0, 0, 0, 0, 2, 2);
    assert_int_equal(idmap_find(d->users, "user", 4), -1);
    assert_float_equal(rating_of(d, "6", "50"), 1.0, 0.0);
    gpuals_data_free(d);

    /* Two string fields followed by more strings: data, not a header. */
    assert_int_equal(load(FIX "delim/strings.csv", GPUALS_FORMAT_DELIM, -INFINITY, 0, &d),
                     GPUALS_OK);
    expect_counts(d, 3, 3, 0, 0, 0, 0, 2, 2);
    assert_string_equal(idmap_name(d->users, 0), "alice");
    assert_float_equal(rating_of(d, "bob", "alien"), 1.0, 0.0);
    gpuals_data_free(d);
}

/* Headers recognised by their column names, in generic files of 2, 3 and 4 fields. */
static void test_header_names(void **state)
{
    (void)state;
    gpuals_data *d;

    /* "user,item" over string ids: a header, not a user "user" who rated an item "item". */
    assert_int_equal(load(FIX "delim/names2.csv", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                     GPUALS_OK);
    expect_counts(d, 2, 2, 0, 0, 0, 0, 2, 1);
    assert_int_equal(idmap_find(d->users, "user", 4), -1);
    assert_int_equal(idmap_find(d->items, "item", 4), -1);
    assert_float_equal(rating_of(d, "bob", "matrix"), 1.0, 0.0);
    gpuals_data_free(d);

    /* Quoted names in any case, separated by spaces. */
    assert_int_equal(load(FIX "delim/names3.txt", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                     GPUALS_OK);
    expect_counts(d, 2, 2, 0, 0, 0, 0, 2, 1);
    assert_float_equal(rating_of(d, "7", "100"), 2.0, 0.0);
    gpuals_data_free(d);

    /* Four fields: user, item, value and a timestamp that is only required to be there. */
    assert_int_equal(detected(FIX "delim/names4.csv"), GPUALS_FORMAT_DELIM);
    assert_int_equal(load(FIX "delim/names4.csv", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                     GPUALS_OK);
    expect_counts(d, 3, 3, 0, 0, 0, 0, 2, 2);
    assert_float_equal(rating_of(d, "alice", "matrix"), 5.0, 0.0);
    assert_float_equal(rating_of(d, "bob", "alien"), 4.0, 0.0);
    gpuals_data_free(d);

    /* The header fixes the field count; an empty timestamp is malformed. */
    static const char three[] = "user,item,rating\n1,2,5\n1,3\n";
    char path[512];
    snprintf(path, sizeof path, "%s", write_file("three.csv", three, sizeof three - 1));
    expect_error(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_ERR_PARSE, path, 3,
                 "expected 3 fields separated by ','");
    unlink(path);
    static const char empty_ts[] = "1,2,5,100\n1,3,4,\n";
    snprintf(path, sizeof path, "%s", write_file("empty_ts.csv", empty_ts, sizeof empty_ts - 1));
    expect_error(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_ERR_PARSE, path, 2,
                 "expected a timestamp in field 4, found an empty field");
    unlink(path);

    /* A header of column names is expected, not guessed: nothing to report. */
    assert_int_equal(load(FIX "delim/header.tsv", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                     GPUALS_OK);
    assert_int_equal(d->guessed_header_line, 0);
    gpuals_data_free(d);
    assert_int_equal(load(FIX "mlcsv/ratings.csv", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                     GPUALS_OK);
    assert_int_equal(d->guessed_header_line, 0);
    gpuals_data_free(d);

    /* A first line read as a header by its shape alone (string ids with a value that is not a
     * number, or two strings over integer ids) is recorded with its line, for the caller to
     * report: it may be a malformed line rather than a header. */
    static const char by_value[] = "\nalice,apple,five\nbob,pear,3\n";
    snprintf(path, sizeof path, "%s", write_file("by_value.csv", by_value, sizeof by_value - 1));
    assert_int_equal(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_OK);
    expect_counts(d, 1, 1, 0, 0, 0, 0, 1, 1);
    assert_int_equal(d->guessed_header_line, 2);
    assert_string_equal(d->guessed_header, "'alice,apple,five'");
    gpuals_data_free(d);
    unlink(path);
    static const char over_ints[] = "u,i\n1,2\n";
    snprintf(path, sizeof path, "%s", write_file("over_ints.csv", over_ints,
                                                 sizeof over_ints - 1));
    assert_int_equal(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_OK);
    assert_int_equal(d->guessed_header_line, 1);
    assert_string_equal(d->guessed_header, "'u,i'");
    gpuals_data_free(d);
    unlink(path);

    /* A value that is a number to strtod but not a finite rating ("nan", "inf", "1e400"), or
     * an empty one, makes a first line a bad data line, not a header. */
    static const char *const bad_first[][2] = {
        {"alice,apple,nan\nbob,pear,3\n", "expected a finite rating in field 3, found 'nan'"},
        {"u1,i1,-inf\nbob,pear,3\n", "expected a finite rating in field 3, found '-inf'"},
        {"u1,i1,1e400\nbob,pear,3\n", "expected a finite rating in field 3, found '1e400'"},
        {"u1,i1,\nbob,pear,3\n", "expected a rating in field 3, found an empty field"}};
    for (size_t k = 0; k < sizeof bad_first / sizeof bad_first[0]; k++) {
        snprintf(path, sizeof path, "%s", write_file("bad_first.csv", bad_first[k][0],
                                                     strlen(bad_first[k][0])));
        expect_error(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_ERR_PARSE, path, 1,
                     bad_first[k][1]);
        unlink(path);
    }

    /* A malformed line after a guessed header names the guess, which may be what went wrong
     * (a titles file such as u.item given as the ratings, say). */
    static const char after_guess[] = "alice apple five\nbob pear\n";
    snprintf(path, sizeof path, "%s", write_file("after_guess.txt", after_guess,
                                                 sizeof after_guess - 1));
    expect_error(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_ERR_PARSE, path, 2,
                 "expected 3 fields");
    assert_non_null(strstr(gpuals_last_error(), "(line 1 was read as a header: 'alice apple "
                                                "five')"));
    unlink(path);

    /* Only when every field is a column name: "user,matrix" over strings is data. */
    static const char half[] = "user,matrix\nbob,matrix\n";
    snprintf(path, sizeof path, "%s", write_file("half.csv", half, sizeof half - 1));
    assert_int_equal(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_OK);
    expect_counts(d, 2, 2, 0, 0, 0, 0, 2, 1);
    assert_float_equal(rating_of(d, "user", "matrix"), 1.0, 0.0);
    gpuals_data_free(d);
    unlink(path);
}

/* Ids up to 2^63-1 and ids that differ only in leading zeros stay distinct. */
static void test_huge_and_string_ids(void **state)
{
    (void)state;
    gpuals_data *d;
    assert_int_equal(load(FIX "delim/huge.csv", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                     GPUALS_OK);
    expect_counts(d, 5, 5, 0, 0, 0, 0, 4, 4);
    assert_string_equal(idmap_name(d->users, 0), "9223372036854775807");
    assert_string_equal(idmap_name(d->users, 1), "9223372036854775806");
    assert_string_equal(idmap_name(d->items, 0), "9223372036854775806");
    assert_float_equal(rating_of(d, "9223372036854775807", "9223372036854775806"), 3.0, 0.0);
    assert_float_equal(rating_of(d, "9223372036854775806", "9223372036854775807"), 2.0, 0.0);
    assert_float_equal(rating_of(d, "9223372036854775807", "9223372036854775807"), 1.0, 0.0);
    assert_int_not_equal(idmap_find(d->users, "00042", 5), idmap_find(d->users, "42", 2));
    assert_int_not_equal(idmap_find(d->items, "00042", 5), idmap_find(d->items, "42", 2));
    assert_float_equal(rating_of(d, "00042", "42"), 1.0, 0.0);
    assert_true(isnan(rating_of(d, "42", "42")));
    gpuals_data_free(d);
}

static void test_matrix_market(void **state)
{
    (void)state;
    gpuals_data *d;

    /* Real: comments, an exponent, an explicit -0 dropped, a duplicate summed. */
    assert_int_equal(detected(FIX "mm/real.mtx"), GPUALS_FORMAT_MM);
    assert_int_equal(load(FIX "mm/real.mtx", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_OK);
    expect_counts(d, 6, 5, 0, 0, 1, 1, 3, 4);
    const char *items[4] = {"1", "3", "2", "4"};
    for (int i = 0; i < 4; i++) assert_string_equal(idmap_name(d->items, i), items[i]);
    assert_float_equal(rating_of(d, "1", "1"), 2.5, 0.0);
    assert_float_equal(rating_of(d, "3", "2"), 5.0, 0.0);
    gpuals_data_free(d);

    /* Integer values; pattern (value 1) with a lower-case banner and a zero-padded index. */
    assert_int_equal(load(FIX "mm/integer.mtx", GPUALS_FORMAT_MM, -INFINITY, 0, &d), GPUALS_OK);
    expect_counts(d, 3, 3, 0, 0, 0, 0, 3, 3);
    assert_float_equal(rating_of(d, "3", "1"), 5.0, 0.0);
    gpuals_data_free(d);
    assert_int_equal(load(FIX "mm/pattern.mtx", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                     GPUALS_OK);
    expect_counts(d, 3, 3, 0, 0, 0, 0, 2, 3);
    assert_float_equal(rating_of(d, "4", "3"), 1.0, 0.0);
    assert_int_equal(idmap_find(d->users, "004", 3), -1);
    gpuals_data_free(d);

    /* An 'integer' file must hold integers. */
    expect_error(load(FIX "mm/integer_frac.mtx", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                 GPUALS_ERR_PARSE, FIX "mm/integer_frac.mtx", 4,
                 "expected an integer value in field 3 (the banner declares 'integer'), found "
                 "'2.5'");
    assert_int_equal(load(FIX "mm/integer_frac.mtx", GPUALS_FORMAT_AUTO, -INFINITY, 1, &d),
                     GPUALS_OK);
    expect_counts(d, 3, 2, 1, 0, 0, 0, 2, 2);
    assert_int_equal(gpuals_data_summary(d)->first_bad_line, 4);
    gpuals_data_free(d);

    /* Unsupported kinds and broken files. */
    expect_error(load(FIX "mm/symmetric.mtx", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                 GPUALS_ERR_PARSE, FIX "mm/symmetric.mtx", 1, "expected the symmetry 'general'");
    expect_error(load(FIX "mm/array.mtx", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                 GPUALS_ERR_PARSE, FIX "mm/array.mtx", 1, "expected a 'coordinate'");
    expect_error(load(FIX "mm/truncated.mtx", GPUALS_FORMAT_AUTO, -INFINITY, 1, &d),
                 GPUALS_ERR_PARSE, FIX "mm/truncated.mtx", 4,
                 "expected 4 entries (declared on line 2), found 2");
    expect_error(load(FIX "mm/extra.mtx", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                 GPUALS_ERR_PARSE, FIX "mm/extra.mtx", 5,
                 "expected at most 2 entries (declared on line 2), found one more");
    expect_error(load(FIX "mm/range.mtx", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                 GPUALS_ERR_PARSE, FIX "mm/range.mtx", 4,
                 "expected a row index in 1..3, found '4'");
    assert_int_equal(load(FIX "mm/range.mtx", GPUALS_FORMAT_AUTO, -INFINITY, 1, &d), GPUALS_OK);
    expect_counts(d, 3, 1, 2, 0, 0, 0, 1, 1);
    assert_int_equal(gpuals_data_summary(d)->first_bad_line, 4);
    gpuals_data_free(d);

    /* A ratings file forced as Matrix Market has no banner. */
    expect_error(load(FIX "ml1m/ratings.dat", GPUALS_FORMAT_MM, -INFINITY, 0, &d),
                 GPUALS_ERR_PARSE, FIX "ml1m/ratings.dat", 1, "expected a '%%MatrixMarket");
}

static void test_duplicates_and_zeros(void **state)
{
    (void)state;
    gpuals_data *d;
    assert_int_equal(load(FIX "misc/dups.csv", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                     GPUALS_OK);
    expect_counts(d, 7, 5, 0, 0, 2, 2, 2, 3);
    assert_float_equal(rating_of(d, "1", "10"), 4.5, 0.0);
    assert_float_equal(rating_of(d, "1", "20"), 2.0, 0.0);
    assert_float_equal(rating_of(d, "2", "30"), 4.0, 0.0);
    assert_true(isnan(rating_of(d, "2", "10")));
    assert_int_equal(idmap_find(d->users, "3", 1), -1); /* only a zero: no index */
    assert_int_equal(idmap_find(d->items, "40", 2), -1);
    gpuals_data_free(d);

    /* A threshold counts a zero as filtered, not as a zero. */
    assert_int_equal(load(FIX "misc/dups.csv", GPUALS_FORMAT_AUTO, 1.5, 0, &d), GPUALS_OK);
    expect_counts(d, 7, 3, 0, 4, 0, 0, 2, 3);
    assert_float_equal(rating_of(d, "1", "10"), 3.0, 0.0);
    gpuals_data_free(d);
}

/* Values must fit a float: 1e39 is malformed, 1e-50 is a zero. */
static void test_float_range(void **state)
{
    (void)state;
    gpuals_data *d;
    expect_error(load(FIX "misc/float_range.csv", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                 GPUALS_ERR_PARSE, FIX "misc/float_range.csv", 4,
                 "expected a rating of magnitude at most 1e12 in field 3, found '1e39'");
    assert_int_equal(load(FIX "misc/float_range.csv", GPUALS_FORMAT_AUTO, -INFINITY, 1, &d),
                     GPUALS_OK);
    expect_counts(d, 3, 1, 1, 0, 1, 0, 1, 1);
    assert_float_equal(rating_of(d, "1", "2"), 3.0, 0.0);
    gpuals_data_free(d);
}

/* Values of magnitude above READER_MAX_VALUE (1e12) are malformed lines in every format, with
 * FILE:LINE and the bound in the message; the bound itself is a value. */
static void test_value_bound(void **state)
{
    (void)state;
    gpuals_data *d;
    char path[512];
    static const char csv[] = "u1,i1,4\nu1,i2,1e30\nu2,i1,-2e12\nu2,i2,1e12\nu3,i3,-1e12\n";
    snprintf(path, sizeof path, "%s", write_file("bound.csv", csv, sizeof csv - 1));
    expect_error(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_ERR_PARSE, path, 2,
                 "expected a rating of magnitude at most 1e12 in field 3, found '1e30'");
    assert_int_equal(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 1, &d), GPUALS_OK);
    expect_counts(d, 5, 3, 2, 0, 0, 0, 3, 3);
    assert_float_equal(rating_of(d, "u2", "i2"), 1e12, 0.0);
    assert_float_equal(rating_of(d, "u3", "i3"), -1e12, 0.0);
    gpuals_data_free(d);
    unlink(path);

    static const char dat[] = "1::2::5::0\n1::3::-2e12::0\n";
    snprintf(path, sizeof path, "%s", write_file("bound.dat", dat, sizeof dat - 1));
    expect_error(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_ERR_PARSE, path, 2,
                 "expected a rating of magnitude at most 1e12 in field 3, found '-2e12'");
    unlink(path);

    static const char mm[] = "%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 3\n"
                             "2 2 5e12\n";
    snprintf(path, sizeof path, "%s", write_file("bound.mtx", mm, sizeof mm - 1));
    expect_error(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_ERR_PARSE, path, 4,
                 "expected a value of magnitude at most 1e12 in field 3, found '5e12'");
    unlink(path);
}

/* Comma-separated fields may be quoted as in RFC 4180: commas and spaces inside quotes, "" for
 * a quote; the quotes are not part of the id. A quote elsewhere or left open is a malformed line
 * at its own line, also on the first line, which is never mistaken for a header because of it. */
static void test_quoted_fields(void **state)
{
    (void)state;
    gpuals_data *d;
    char path[512];

    /* Quoted ids, with a comma, a space, doubled quotes, and spaces around the quotes. */
    static const char quoted[] = "\"u 1\",\"i,1\",4\n\"u \"\"2\"\"\",i2,3\n u3 , \"i 3\" ,2\n"
                                 "u1,i2,1\n";
    snprintf(path, sizeof path, "%s", write_file("quoted.csv", quoted, sizeof quoted - 1));
    assert_int_equal(detected(path), GPUALS_FORMAT_DELIM);
    assert_int_equal(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_OK);
    expect_counts(d, 4, 4, 0, 0, 0, 0, 4, 3);
    assert_float_equal(rating_of(d, "u 1", "i,1"), 4.0, 0.0);
    assert_float_equal(rating_of(d, "u \"2\"", "i2"), 3.0, 0.0);
    assert_float_equal(rating_of(d, "u3", "i 3"), 2.0, 0.0);
    assert_float_equal(rating_of(d, "u1", "i2"), 1.0, 0.0);
    assert_int_equal(idmap_find(d->users, "\"u 1\"", 5), -1);
    gpuals_data_free(d);
    unlink(path);

    /* A quoted header is a header; MovieLens CSV lines may be quoted too. */
    static const char header[] = "\"user\",\"item\",\"rating\"\n\"u 1\",\"i,1\",4\n";
    snprintf(path, sizeof path, "%s", write_file("qheader.csv", header, sizeof header - 1));
    assert_int_equal(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_OK);
    expect_counts(d, 1, 1, 0, 0, 0, 0, 1, 1);
    assert_float_equal(rating_of(d, "u 1", "i,1"), 4.0, 0.0);
    gpuals_data_free(d);
    unlink(path);
    static const char ml[] = "userId,movieId,rating,timestamp\n\"1\",\"2\",3.5,100\n";
    snprintf(path, sizeof path, "%s", write_file("qml.csv", ml, sizeof ml - 1));
    assert_int_equal(detected(path), GPUALS_FORMAT_MLCSV);
    assert_int_equal(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_OK);
    assert_float_equal(rating_of(d, "1", "2"), 3.5, 0.0);
    gpuals_data_free(d);
    unlink(path);

    /* A quote inside a field that does not begin with one is an ordinary character. */
    static const char inner[] = "u1,Guns \"N\" Roses,4\nu\"2,i1,3\n";
    snprintf(path, sizeof path, "%s", write_file("qinner.csv", inner, sizeof inner - 1));
    assert_int_equal(load(path, GPUALS_FORMAT_DELIM, -INFINITY, 0, &d), GPUALS_OK);
    assert_float_equal(rating_of(d, "u1", "Guns \"N\" Roses"), 4.0, 0.0);
    assert_float_equal(rating_of(d, "u\"2", "i1"), 3.0, 0.0);
    gpuals_data_free(d);
    unlink(path);

    /* Malformed quoting: text after a closing quote, a quote inside a quoted field that is not
     * doubled, an open quote. */
    static const struct {
        const char *text;
        int line;
        const char *message;
    } bad[] = {
        {"u1,i1,4\nu1,\"i\"1\",4\n", 2, "expected quotes around a whole field (with \"\" for "
                                        "a quote inside it)"},
        {"u1,i1,4\nu1,\"i1\"x,4\n", 2, "expected quotes around a whole field (with \"\" for "
                                        "a quote inside it), found text after a closing quote "
                                        "at column 8"},
        {"u1,i1,4\nu1,\"i1,4\n", 2, "expected a closing quote before the end of the line, "
                                    "found none in 'u1,\"i1,4'"},
        {"\"u 1\",\"i1,4\nu2,i2,3\n", 1, "expected a closing quote"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        snprintf(path, sizeof path, "%s", write_file("qbad.csv", bad[k].text, strlen(bad[k].text)));
        expect_error(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_ERR_PARSE, path,
                     bad[k].line, bad[k].message);
        unlink(path);
    }

    /* Skipped, they are counted, and the next quoted line parses as usual. */
    static const char skip[] = "u1,\"i1,4\nu2,\"i\"2\",3\nu3,\"i3\",2\n";
    snprintf(path, sizeof path, "%s", write_file("qskip.csv", skip, sizeof skip - 1));
    assert_int_equal(load(path, GPUALS_FORMAT_DELIM, -INFINITY, 1, &d), GPUALS_OK);
    expect_counts(d, 3, 1, 2, 0, 0, 0, 1, 1);
    assert_float_equal(rating_of(d, "u3", "i3"), 2.0, 0.0);
    gpuals_data_free(d);
    unlink(path);
}

static void test_no_final_newline(void **state)
{
    (void)state;
    gpuals_data *d;
    assert_int_equal(load(FIX "misc/no_newline.dat", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                     GPUALS_OK);
    expect_counts(d, 3, 3, 0, 0, 0, 0, 2, 2);
    assert_float_equal(rating_of(d, "2", "2"), 5.0, 0.0);
    gpuals_data_free(d);
}

/* Each kind of malformed line, with the exact file:line and what was expected and found. */
static void test_bad_lines(void **state)
{
    (void)state;
    gpuals_data *d = NULL;
    static const struct {
        const char *file;
        int line;
        const char *text;
    } cases[] = {
        {"bad/fields.dat", 3, "expected 4 fields separated by '::' "
                              "(user::item::rating::timestamp), found 3"},
        {"bad/rating.dat", 2, "expected a number as the rating in field 3, found 'four'"},
        {"bad/nan.csv", 4, "expected a finite rating in field 3, found 'nan'"},
        {"bad/inf.csv", 3, "expected a finite rating in field 3, found '-inf'"},
        {"bad/huge_rating.csv", 2, "expected a finite rating in field 3, found '1e999'"},
        {"bad/empty_user.csv", 3, "expected a user id in field 1, found an empty field"},
        {"bad/empty_item.dat", 2, "expected an item id in field 2, found an empty field"},
        {"bad/timestamp.tsv", 2, "expected an integer timestamp in field 4, found 'yesterday'"},
        {"bad/mixed.csv", 3, "expected 4 fields separated by ',' "
                             "(userId,movieId,rating,timestamp), found 3"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char path[512];
        snprintf(path, sizeof path, FIX "%s", cases[k].file);
        expect_error(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_ERR_PARSE, path,
                     cases[k].line, cases[k].text);
        assert_null(d);
    }

    /* A separator that is not read (";") leaves one field a line, and the message says which
     * separators are. */
    static const char semi[] = "1;2;5\n2;3;4\n";
    char path[512];
    snprintf(path, sizeof path, "%s", write_file("semi.csv", semi, sizeof semi - 1));
    expect_error(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_ERR_PARSE, path, 1,
                 "expected 2 to 4 fields separated by spaces (user item [value [timestamp]]), "
                 "found 1; a delimited file's separator is a tab, a comma or spaces, chosen "
                 "from its first line");
    unlink(path);
}

/* skip_bad_lines counts them and keeps the rest. */
static void test_skip_bad_lines(void **state)
{
    (void)state;
    gpuals_data *d;
    assert_int_equal(load(FIX "bad/mixed.csv", GPUALS_FORMAT_AUTO, -INFINITY, 1, &d),
                     GPUALS_OK);
    expect_counts(d, 8, 2, 6, 0, 0, 0, 2, 1);
    assert_int_equal(gpuals_data_summary(d)->first_bad_line, 3);
    assert_float_equal(rating_of(d, "2", "1"), 5.0, 0.0);
    assert_int_equal(idmap_find(d->items, "3", 1), -1);
    gpuals_data_free(d);

    assert_int_equal(load(FIX "bad/fields.dat", GPUALS_FORMAT_AUTO, -INFINITY, 1, &d),
                     GPUALS_OK);
    expect_counts(d, 3, 2, 1, 0, 0, 0, 1, 2);
    assert_int_equal(gpuals_data_summary(d)->first_bad_line, 3);
    gpuals_data_free(d);

    expect_error(load(FIX "bad/all_bad.csv", GPUALS_FORMAT_AUTO, -INFINITY, 1, &d),
                 GPUALS_ERR_EMPTY, FIX "bad/all_bad.csv", 0,
                 FIX "bad/all_bad.csv: no valid rating lines: all 2 were malformed and skipped "
                 "(the first is line 2)");
}

/* NUL bytes and overlong lines, written at run time. */
static void test_nul_and_long_lines(void **state)
{
    (void)state;
    gpuals_data *d;

    /* A NUL byte in the item id of line 3. */
    static const char nul[] = "1,2,3\n1,3,4\n1,\0x,5\n2,2,1\n";
    const char *p = write_file("nul.csv", nul, sizeof nul - 1);
    char path[512];
    snprintf(path, sizeof path, "%s", p);
    expect_error(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_ERR_PARSE, path, 3,
                 "expected text, found a NUL byte at column 3");
    assert_int_equal(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 1, &d), GPUALS_OK);
    expect_counts(d, 4, 3, 1, 0, 0, 0, 2, 2);
    assert_int_equal(gpuals_data_summary(d)->first_bad_line, 3);
    gpuals_data_free(d);
    unlink(path);

    /* Line 2 is exactly 65536 bytes (a long but legal user id), line 3 is 65537, line 4 has
     * 2 fields: the numbering must go on past the skipped line. */
    char *buf = malloc(3 * READER_MAX_LINE);
    assert_non_null(buf);
    size_t n = (size_t)sprintf(buf, "userId,movieId,rating,timestamp\n");
    memset(buf + n, 'a', READER_MAX_LINE - 6);
    n += READER_MAX_LINE - 6;
    n += (size_t)sprintf(buf + n, ",1,4,1\n");
    memset(buf + n, 'b', READER_MAX_LINE - 5);
    n += READER_MAX_LINE - 5;
    n += (size_t)sprintf(buf + n, ",1,4,1\n1,2\n3,4,5,6");
    p = write_file("long.csv", buf, n);
    snprintf(path, sizeof path, "%s", p);
    expect_error(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_ERR_PARSE, path, 3,
                 "expected a line of at most 65536 bytes, found a longer one");
    assert_int_equal(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 1, &d), GPUALS_OK);
    expect_counts(d, 4, 2, 2, 0, 0, 0, 2, 2);
    assert_int_equal(gpuals_data_summary(d)->first_bad_line, 3);
    assert_int_equal(strlen(idmap_name(d->users, 0)), READER_MAX_LINE - 6);
    assert_float_equal(rating_of(d, "3", "4"), 5.0, 0.0);
    gpuals_data_free(d);
    unlink(path);
    free(buf);
}

/* A file larger than the 4 MiB read block with two overlong lines: one that starts 50 KB
 * before the end of the first block (found whole after a refill), and one of 5 MB, longer than
 * the block itself (skipped across several reads). Lines split between reads and the skipped
 * lines must not shift any count or line number. */
static void test_across_blocks(void **state)
{
    (void)state;
    enum { LINES = 300000, LONG1 = 184453, LONG2 = 250000 };
    static char filler[5000000];
    memset(filler, 'x', sizeof filler);
    FILE *f = fopen("test_data_readers_big.dat", "wb");
    assert_non_null(f);
    for (int k = 1; k <= LINES + 2; k++) {
        if (k == LONG1 || k == LONG2) {
            size_t n = k == LONG1 ? 100000 : sizeof filler;
            assert_int_equal(fwrite(filler, 1, n, f), n);
            fputc('\n', f);
            continue;
        }
        fprintf(f, "%d::%d::%d::%d\n", k / 7 + 1, k % 1000, k % 5 + 1, 1000000 + k);
    }
    fclose(f);

    gpuals_data *d;
    expect_error(load("test_data_readers_big.dat", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                 GPUALS_ERR_PARSE, "test_data_readers_big.dat", LONG1,
                 "expected a line of at most 65536 bytes, found a longer one");
    assert_int_equal(load("test_data_readers_big.dat", GPUALS_FORMAT_AUTO, -INFINITY, 1, &d),
                     GPUALS_OK);
    const gpuals_summary *s = gpuals_data_summary(d);
    assert_int_equal(s->raw_lines, LINES + 2);
    assert_int_equal(s->kept_lines, LINES);
    assert_int_equal(s->bad_lines, 2);
    assert_int_equal(s->first_bad_line, LONG1);
    assert_int_equal(s->users, (LINES + 2) / 7 + 1);
    assert_int_equal(s->items, 1000);
    /* Lines just after each long one, and the last line (300002: user 42858, item 2). */
    assert_float_equal(rating_of(d, "26351", "454"), (184454 % 5 + 1), 0.0);
    assert_float_equal(rating_of(d, "35715", "1"), (250001 % 5 + 1), 0.0);
    assert_float_equal(rating_of(d, "42858", "2"), (300002 % 5 + 1), 0.0);
    gpuals_data_free(d);
    unlink("test_data_readers_big.dat");
}

static void test_empty_missing_directory(void **state)
{
    (void)state;
    gpuals_data *d = NULL;
    expect_error(load(FIX "misc/empty.csv", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                 GPUALS_ERR_EMPTY, NULL, 0,
                 FIX "misc/empty.csv: no rating lines (the file is empty)");
    expect_error(load(FIX "misc/blank.csv", GPUALS_FORMAT_AUTO, -INFINITY, 1, &d),
                 GPUALS_ERR_EMPTY, NULL, 0,
                 FIX "misc/blank.csv: no rating lines (the file holds only blank lines)");
    /* One newline is a blank line; a lone byte order mark, or /dev/null, is an empty file. */
    static const char *const tiny[][2] = {{"\n", "holds only blank lines"},
                                          {"\xef\xbb\xbf", "is empty"}};
    for (int k = 0; k < 2; k++) {
        char want[640];
        const char *p = write_file("tiny.csv", tiny[k][0], strlen(tiny[k][0]));
        snprintf(want, sizeof want, "%s: no rating lines (the file %s)", p, tiny[k][1]);
        expect_error(load(p, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_ERR_EMPTY, NULL, 0,
                     want);
        unlink(p);
    }
    expect_error(load("/dev/null", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_ERR_EMPTY, NULL,
                 0, "/dev/null: no rating lines (the file is empty)");
    expect_error(load(FIX "misc/header_only.csv", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                 GPUALS_ERR_EMPTY, NULL, 0,
                 FIX "misc/header_only.csv: no rating lines after the header");
    expect_error(load(FIX "misc/missing.csv", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d),
                 GPUALS_ERR_IO, NULL, 0,
                 "cannot open '" FIX "misc/missing.csv': No such file or directory");
    expect_error(load(FIX "misc", GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_ERR_IO, NULL, 0,
                 "cannot read '" FIX "misc': Is a directory");
    assert_null(d);

    gpuals_load_options o;
    gpuals_load_options_default(&o);
    assert_int_equal(gpuals_data_load(&o, &d), GPUALS_ERR_USAGE);
    o.ratings_path = FIX "ml1m/ratings.dat";
    o.min_rating = NAN;
    assert_int_equal(gpuals_data_load(&o, &d), GPUALS_ERR_USAGE);
    o.min_rating = 0;
    o.format = (gpuals_format)42;
    assert_int_equal(gpuals_data_load(&o, &d), GPUALS_ERR_USAGE);
}

static void test_all_filtered(void **state)
{
    (void)state;
    gpuals_data *d = NULL;
    expect_error(load(FIX "misc/low.csv", GPUALS_FORMAT_AUTO, 3.0, 0, &d), GPUALS_ERR_EMPTY,
                 NULL, 0,
                 FIX "misc/low.csv: every rating was filtered out: of 4 lines, 4 are below the "
                 "minimum rating (3), 0 are explicit zeros and 0 were malformed");
    assert_int_equal(load(FIX "misc/low.csv", GPUALS_FORMAT_AUTO, 1.0, 0, &d), GPUALS_OK);
    expect_counts(d, 4, 2, 0, 2, 0, 0, 1, 2);
    gpuals_data_free(d);
}

/* Forcing a format reads the file that way, even against its content. */
static void test_format_override(void **state)
{
    (void)state;
    gpuals_data *d = NULL;
    expect_error(load(FIX "ml1m/ratings.dat", GPUALS_FORMAT_MLCSV, -INFINITY, 0, &d),
                 GPUALS_ERR_PARSE, FIX "ml1m/ratings.dat", 1,
                 "expected 4 fields separated by ','");
    expect_error(load(FIX "ml100k/u.data", GPUALS_FORMAT_DAT, -INFINITY, 0, &d),
                 GPUALS_ERR_PARSE, FIX "ml100k/u.data", 1,
                 "expected 4 fields separated by '::'");
    assert_int_equal(load(FIX "ml100k/u.data", GPUALS_FORMAT_DELIM, -INFINITY, 0, &d),
                     GPUALS_OK); /* user item value timestamp: a generic file of 4 fields */
    expect_counts(d, 8, 8, 0, 0, 0, 0, 3, 5);
    gpuals_data_free(d);
    expect_error(load(FIX "mm/real.mtx", GPUALS_FORMAT_DELIM, -INFINITY, 0, &d),
                 GPUALS_ERR_PARSE, FIX "mm/real.mtx", 1,
                 "expected 2 to 4 fields separated by spaces (user item [value [timestamp]]), "
                 "found 5");
    assert_int_equal(load(FIX "delim/noheader.csv", GPUALS_FORMAT_DELIM, 1.0, 0, &d),
                     GPUALS_OK);
    expect_counts(d, 4, 3, 0, 1, 0, 0, 2, 2);
    gpuals_data_free(d);
}

static void test_number_parser(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int code;
        double value;
    } cases[] = {
        {"4", 0, 4},         {"4.5", 0, 4.5},      {"-3.25", 0, -3.25}, {"+2", 0, 2},
        {"0.1", 0, 0.1},     {".5", 0, 0.5},       {"5.", 0, 5},        {"0", 0, 0},
        {"-0.0", 0, 0},      {"1e3", 0, 1000},     {"2.5E-1", 0, 0.25}, {"+.5e+1", 0, 5},
        {"-1E2", 0, -100},   {"5.e0", 0, 5},       {"1e-400", 0, 0},
        {"123456789012345678901234", 0, 123456789012345678901234.0},
        {"0.1234567890123456789", 0, 0.1234567890123456789},
        {"", 1, 0},          {"-", 1, 0},          {".", 1, 0},         {"abc", 1, 0},
        {"4 5", 1, 0},       {"4.5.", 1, 0},       {"1e", 1, 0},        {" 4", 1, 0},
        {"0x10", 1, 0},      {"0X1p3", 1, 0},      {"0x", 1, 0},        {"1e+", 1, 0},
        {".e1", 1, 0},       {"e5", 1, 0},         {"1,5", 1, 0},       {"1_000", 1, 0},
        {"4 ", 1, 0},        {"++4", 1, 0},        {"nan(1)", 1, 0},    {"infinit", 1, 0},
        {"nan", 2, 0},       {"-inf", 2, 0},       {"Infinity", 2, 0},  {"1e400", 2, 0},
        {"NaN", 2, 0},       {"+INF", 2, 0},       {"-infinity", 2, 0}, {"1e999", 2, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        double v = -99;
        int code = reader_parse_number(cases[k].text, strlen(cases[k].text), &v);
        if (code != cases[k].code) fail_msg("'%s': code %d, expected %d", cases[k].text, code,
                                            cases[k].code);
        if (code == 0 && v != cases[k].value)
            fail_msg("'%s': %.17g, expected %.17g", cases[k].text, v, cases[k].value);
    }
    /* Only the n bytes given count. */
    double v = 0;
    assert_int_equal(reader_parse_number("4.5,7", 3, &v), 0);
    assert_float_equal(v, 4.5, 0.0);

    /* A mantissa longer than any stack copy still parses exactly. */
    char long_number[700];
    memset(long_number, '0', sizeof long_number);
    long_number[0] = '2';
    long_number[1] = '.';
    assert_int_equal(reader_parse_number(long_number, sizeof long_number, &v), 0);
    assert_float_equal(v, 2.0, 0.0);
    long_number[600] = 'x';
    assert_int_equal(reader_parse_number(long_number, sizeof long_number, &v), 1);

    /* A hex rating in a file is a malformed line, not 16. */
    gpuals_data *d = NULL;
    static const char hex[] = "1,2,4\n1,3,0x10\n";
    char path[512];
    snprintf(path, sizeof path, "%s", write_file("hex.csv", hex, sizeof hex - 1));
    expect_error(load(path, GPUALS_FORMAT_AUTO, -INFINITY, 0, &d), GPUALS_ERR_PARSE, path, 2,
                 "expected a number as the rating in field 3, found '0x10'");
    assert_null(d);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_default),
        cmocka_unit_test(test_ml1m_dat),
        cmocka_unit_test(test_ml1m_min_rating),
        cmocka_unit_test(test_ml100k_udata),
        cmocka_unit_test(test_mlcsv_crlf),
        cmocka_unit_test(test_delimited),
        cmocka_unit_test(test_header_names),
        cmocka_unit_test(test_huge_and_string_ids),
        cmocka_unit_test(test_matrix_market),
        cmocka_unit_test(test_duplicates_and_zeros),
        cmocka_unit_test(test_float_range),
        cmocka_unit_test(test_value_bound),
        cmocka_unit_test(test_quoted_fields),
        cmocka_unit_test(test_no_final_newline),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_skip_bad_lines),
        cmocka_unit_test(test_nul_and_long_lines),
        cmocka_unit_test(test_across_blocks),
        cmocka_unit_test(test_empty_missing_directory),
        cmocka_unit_test(test_all_filtered),
        cmocka_unit_test(test_format_override),
        cmocka_unit_test(test_number_parser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
