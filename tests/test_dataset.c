/*
 * test_dataset.c - gpuals_data over the embedded ml-latest-small, titles of every format (and
 * the refusal of files of another shape, duplicate ids), confidences, dataset_from_triplets
 * and dataset_add_user, and messages that speak of files, ids and values rather than of the
 * library's functions.
 *
 * The ml-latest-small counts are checked twice: against the figures of the data set's
 * documentation (100,836 ratings, 610 users, 9,724 rated movies; 81,763 / 609 / 8,452 with
 * ratings >= 3) and against a plain fgets/sscanf count made here, independently of the reader.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dataset.h"
#include "gpuals.h"
#include "titles.h"

#define FIX GPUALS_FIXTURES "/data/"
#define ML_RATINGS GPUALS_DATA "/ratings.csv"
#define ML_MOVIES GPUALS_DATA "/movies.csv"

/* Counts of ratings.csv made without the reader: lines, distinct users and movies among the
 * lines with rating >= min. */
static void count_independently(double min, int64_t *lines, int64_t *users, int64_t *movies)
{
    enum { MAX_ID = 1 << 20 };
    unsigned char *seen_user = calloc(MAX_ID, 1), *seen_movie = calloc(MAX_ID, 1);
    assert_non_null(seen_user);
    assert_non_null(seen_movie);
    FILE *f = fopen(ML_RATINGS, "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f)); /* header */
    *lines = *users = *movies = 0;
    while (fgets(line, sizeof line, f)) {
        long u, m;
        double r;
        assert_int_equal(sscanf(line, "%ld,%ld,%lf", &u, &m, &r), 3);
        assert_true(u > 0 && u < MAX_ID && m > 0 && m < MAX_ID);
        if (r < min) continue;
        (*lines)++;
        *users += !seen_user[u];
        *movies += !seen_movie[m];
        seen_user[u] = seen_movie[m] = 1;
    }
    fclose(f);
    free(seen_user);
    free(seen_movie);
}

static gpuals_data *load_ml(double min, const char *titles)
{
    gpuals_load_options o;
    gpuals_load_options_default(&o);
    o.ratings_path = ML_RATINGS;
    o.titles_path = titles;
    o.min_rating = min;
    gpuals_data *d = NULL;
    gpuals_status st = gpuals_data_load(&o, &d);
    if (st != GPUALS_OK) fail_msg("loading %s: %s", ML_RATINGS, gpuals_last_error());
    return d;
}

/* The raw-id title of item id, or NULL. */
static const char *title_of(const gpuals_data *d, const char *id)
{
    int64_t i = idmap_find(d->items, id, strlen(id));
    assert_true(i >= 0);
    return d->titles ? d->titles[i] : NULL;
}

/* ------------------------------------------------------------------------------------------ */

static void test_embedded_summary(void **state)
{
    (void)state;
    int64_t lines, users, movies;

    /* Every rating. */
    count_independently(-INFINITY, &lines, &users, &movies);
    assert_int_equal(lines, 100836);
    assert_int_equal(users, 610);
    assert_int_equal(movies, 9724);
    gpuals_data *d = load_ml(-INFINITY, NULL);
    const gpuals_summary *s = gpuals_data_summary(d);
    assert_int_equal(s->raw_lines, lines);
    assert_int_equal(s->kept_lines, lines);
    assert_int_equal(s->users, users);
    assert_int_equal(s->items, movies);
    assert_int_equal(s->stored, lines); /* ml-latest-small has no duplicate pairs */
    assert_int_equal(s->duplicates + s->bad_lines + s->filtered_lines + s->zero_lines, 0);
    assert_int_equal(d->ratings.rows, 610);
    assert_int_equal(d->ratings.cols, 9724);
    assert_int_equal(csr_validate(&d->ratings), GPUALS_OK);
    assert_int_equal(csr_validate(&d->ratings_t), GPUALS_OK);
    assert_int_equal(d->ratings_t.nnz, 100836);
    assert_string_equal(idmap_name(d->users, 0), "1");
    assert_string_equal(idmap_name(d->items, 0), "1");
    assert_float_equal(d->ratings.data[0], 4.0, 0.0); /* user 1, movie 1: 4.0 */
    gpuals_data_free(d);

    /* Ratings >= 3. */
    count_independently(3.0, &lines, &users, &movies);
    assert_int_equal(lines, 81763);
    assert_int_equal(users, 609);
    assert_int_equal(movies, 8452);
    d = load_ml(3.0, NULL);
    s = gpuals_data_summary(d);
    assert_int_equal(s->raw_lines, 100836);
    assert_int_equal(s->kept_lines, 81763);
    assert_int_equal(s->filtered_lines, 100836 - 81763);
    assert_int_equal(s->users, 609);
    assert_int_equal(s->items, 8452);
    assert_int_equal(s->stored, 81763);
    gpuals_data_free(d);
}

static void test_embedded_titles(void **state)
{
    (void)state;
    titles_list t;
    assert_int_equal(titles_read(ML_MOVIES, &t), GPUALS_OK);
    assert_int_equal(t.n, 9742);
    assert_int_equal(t.converted, 0);
    assert_int_equal(t.duplicates, 0);
    titles_list_free(&t);

    gpuals_data *d = load_ml(-INFINITY, ML_MOVIES);
    assert_non_null(d->titles);
    int64_t with_title = 0;
    for (int64_t i = 0; i < d->ratings.cols; i++) with_title += d->titles[i] != NULL;
    assert_int_equal(with_title, 9724); /* every rated movie has a title */
    assert_string_equal(title_of(d, "1196"),
                        "Star Wars: Episode V - The Empire Strikes Back (1980)");
    assert_string_equal(title_of(d, "1"), "Toy Story (1995)");
    assert_string_equal(title_of(d, "11"), "American President, The (1995)");
    assert_string_equal(d->titles_path, ML_MOVIES);
    gpuals_data_free(d);
}

static gpuals_data *load_fixture(const char *ratings, const char *titles)
{
    gpuals_load_options o;
    gpuals_load_options_default(&o);
    o.ratings_path = ratings;
    gpuals_data *d = NULL;
    assert_int_equal(gpuals_data_load(&o, &d), GPUALS_OK);
    if (titles && dataset_load_titles(d, titles) != GPUALS_OK)
        fail_msg("titles %s: %s", titles, gpuals_last_error());
    return d;
}

/* movies.dat and u.item in Latin-1, movies.csv with quotes, commas, colons and newlines. */
static void test_titles_fixtures(void **state)
{
    (void)state;
    titles_list t;

    /* movies.dat: 0xE9 becomes C3 A9; colons inside a title survive. */
    assert_int_equal(titles_read(FIX "ml1m/movies.dat", &t), GPUALS_OK);
    assert_int_equal(t.n, 8);
    assert_int_equal(t.converted, 1);
    titles_list_free(&t);
    gpuals_data *d = load_fixture(FIX "ml1m/ratings.dat", FIX "ml1m/movies.dat");
    assert_string_equal(title_of(d, "73"), "Mis\xC3\xA9rables, Les (1995)");
    assert_string_equal(title_of(d, "260"), "Star Wars: Episode IV - A New Hope (1977)");
    assert_string_equal(title_of(d, "1193"), "One Flew Over the Cuckoo's Nest (1975)");
    assert_int_equal(idmap_find(d->items, "5", 1), -1); /* unrated: no index, no title */
    gpuals_data_free(d);

    /* u.item. */
    d = load_fixture(FIX "ml100k/u.data", FIX "ml100k/u.item");
    assert_string_equal(title_of(d, "203"), "Cit\xC3\xA9 des enfants perdus, La (1995)");
    assert_string_equal(title_of(d, "99"), "Snow White and the Seven Dwarfs (1937)");
    gpuals_data_free(d);

    /* movies.csv (CRLF): quoted commas, doubled quotes. */
    d = load_fixture(FIX "mlcsv/ratings.csv", FIX "mlcsv/movies.csv");
    assert_string_equal(title_of(d, "50"), "Usual Suspects, The (1995)");
    assert_string_equal(title_of(d, "1196"),
                        "Star Wars: Episode V - The Empire Strikes Back (1980)");
    assert_string_equal(title_of(d, "6"), "Heat (1995)");
    gpuals_data_free(d);
    assert_int_equal(titles_read(FIX "mlcsv/movies.csv", &t), GPUALS_OK);
    assert_int_equal(t.n, 5);
    assert_string_equal(t.ids[4], "2000");
    assert_string_equal(t.titles[4], "Title With \"Quotes\", Commas: And Colons (1999)");
    titles_list_free(&t);

    /* A title that starts with a quote, and one across two lines. */
    d = load_fixture(FIX "mlcsv/ratings.csv", FIX "mlcsv/movies_quotes.csv");
    assert_string_equal(title_of(d, "6"), "\"Great\" Expectations: The Sequel, Part 2 (1998)");
    assert_string_equal(title_of(d, "1"), "A title\nacross two lines (2001)");
    assert_string_equal(title_of(d, "1196"),
                        "Star Wars: Episode V - The Empire Strikes Back (1980)");
    gpuals_data_free(d);
}

/* Expect titles_read(path) to fail with st and a message containing text. */
static void expect_titles_error(const char *path, gpuals_status st, const char *text)
{
    titles_list t;
    gpuals_status got = titles_read(path, &t);
    if (got != st)
        fail_msg("%s: %s (%s), expected %s", path, gpuals_status_name(got), gpuals_last_error(),
                 gpuals_status_name(st));
    if (!strstr(gpuals_last_error(), text))
        fail_msg("message\n  '%s'\nlacks\n  '%s'", gpuals_last_error(), text);
    assert_int_equal(t.n, 0);
    assert_null(t.ids);
}

/* Files of another kind given as titles are refused at their first line; every line must have
 * its format's fields. */
static void test_titles_shapes(void **state)
{
    (void)state;

    /* Ratings files given as titles (--movies ratings.dat gave titles like "1193"). */
    expect_titles_error(FIX "ml1m/ratings.dat", GPUALS_ERR_PARSE,
                        FIX "ml1m/ratings.dat:1: expected 3 fields separated by '::' "
                        "(movies.dat: id::title::genres), found 4 in '1::1193::5::978300760'");
    expect_titles_error(FIX "mlcsv/ratings.csv", GPUALS_ERR_PARSE,
                        FIX "mlcsv/ratings.csv:1: expected the movies.csv header "
                        "movieId,title,genres (at least an id and a title column), found "
                        "'userId,movieId,rating,timestamp'");
    expect_titles_error(FIX "ml100k/u.data", GPUALS_ERR_PARSE,
                        FIX "ml100k/u.data:1: expected a titles line");

    /* A movies.dat line with two fields; u.item lines with too few fields. */
    expect_titles_error(FIX "titles/two_fields.dat", GPUALS_ERR_PARSE,
                        FIX "titles/two_fields.dat:2: expected 3 fields separated by '::' "
                        "(movies.dat: id::title::genres), found 2");
    expect_titles_error(FIX "titles/short.item", GPUALS_ERR_PARSE,
                        FIX "titles/short.item:3: expected 9 fields separated by '|' (u.item: as "
                        "many as on the first line), found 3");
    static const char four[] = "1|Toy Story (1995)|01-Jan-1995|x\n";
    FILE *f = fopen("test_data_dataset_four.item", "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(four, 1, sizeof four - 1, f), sizeof four - 1);
    fclose(f);
    expect_titles_error("test_data_dataset_four.item", GPUALS_ERR_PARSE,
                        "test_data_dataset_four.item:1: expected 24 fields separated by '|' "
                        "(u.item: id|title|release date|video release date|IMDb URL|19 genre "
                        "flags; at least 5), found 4");
    remove("test_data_dataset_four.item");

    /* movies.csv: no header, a record with more fields than the header. */
    expect_titles_error(FIX "titles/noheader.csv", GPUALS_ERR_PARSE,
                        FIX "titles/noheader.csv:1: expected the movies.csv header "
                        "movieId,title,genres");
    expect_titles_error(FIX "titles/ragged.csv", GPUALS_ERR_PARSE,
                        FIX "titles/ragged.csv:3: expected 3 fields as in the header "
                        "'movieId,title,genres', found 4");

    /* Any column order, found by name; a title that ends in a colon. */
    titles_list t;
    assert_int_equal(titles_read(FIX "titles/columns.csv", &t), GPUALS_OK);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.ids[1], "1193");
    assert_string_equal(t.titles[1], "One Flew Over the Cuckoo's Nest (1975)");
    titles_list_free(&t);
}

/* A repeated id keeps its first title, and the repeats are counted. */
static void test_titles_duplicates(void **state)
{
    (void)state;
    titles_list t;
    assert_int_equal(titles_read(FIX "titles/dups.dat", &t), GPUALS_OK);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.duplicates, 2);
    assert_int_equal(t.first_duplicate_line, 3);
    assert_string_equal(t.ids[0], "1");
    assert_string_equal(t.titles[0], "Toy Story (1995)");
    assert_string_equal(t.titles[1], "Star Wars: Episode IV - A New Hope (1977)");
    assert_string_equal(t.ids[2], "1193");
    assert_string_equal(t.titles[2], "Ends In A Colon:");
    titles_list_free(&t);

    /* The fixtures and the embedded movies.csv have none. */
    assert_int_equal(titles_read(FIX "ml1m/movies.dat", &t), GPUALS_OK);
    assert_int_equal(t.duplicates, 0);
    assert_int_equal(t.first_duplicate_line, 0);
    titles_list_free(&t);
}

static void test_titles_errors(void **state)
{
    (void)state;
    gpuals_data *d = load_fixture(FIX "ml1m/ratings.dat", NULL);

    /* A titles file of another data set. */
    assert_int_equal(dataset_load_titles(d, FIX "titles/other.csv"), GPUALS_ERR_MISMATCH);
    assert_non_null(strstr(gpuals_last_error(), "titles/other.csv: none of its 2 titles "
                                                "belongs to one of the 7 rated items"));
    assert_null(d->titles);

    /* Empty, broken quote, missing, directory. */
    assert_int_equal(dataset_load_titles(d, FIX "titles/empty.csv"), GPUALS_ERR_EMPTY);
    assert_int_equal(dataset_load_titles(d, FIX "titles/bad_quote.csv"), GPUALS_ERR_PARSE);
    assert_non_null(strstr(gpuals_last_error(), "titles/bad_quote.csv:2: expected a closing "
                                                "quote"));
    assert_int_equal(dataset_load_titles(d, FIX "titles/missing.csv"), GPUALS_ERR_IO);
    assert_non_null(strstr(gpuals_last_error(), "No such file or directory"));
    assert_int_equal(dataset_load_titles(d, FIX "titles"), GPUALS_ERR_IO);
    assert_int_equal(dataset_load_titles(d, ""), GPUALS_ERR_USAGE);
    assert_string_equal(gpuals_last_error(), "no titles file given");
    assert_null(d->titles);
    gpuals_data_free(d);

    /* Through gpuals_data_load: the load fails as a whole. */
    gpuals_load_options o;
    gpuals_load_options_default(&o);
    o.ratings_path = FIX "ml1m/ratings.dat";
    o.titles_path = FIX "titles/other.csv";
    d = NULL;
    assert_int_equal(gpuals_data_load(&o, &d), GPUALS_ERR_MISMATCH);
    assert_null(d);

    /* Empty paths, as an option given without a value passes them. */
    o.titles_path = "";
    assert_int_equal(gpuals_data_load(&o, &d), GPUALS_ERR_USAGE);
    assert_string_equal(gpuals_last_error(), "no titles file given");
    o.ratings_path = "";
    assert_int_equal(gpuals_data_load(&o, &d), GPUALS_ERR_USAGE);
    assert_string_equal(gpuals_last_error(), "no ratings file given");
    assert_null(d);
}

/* Check the three transforms entry by entry on a 2 x 3 matrix. */
static void test_confidence(void **state)
{
    (void)state;
    const char *users[4] = {"a", "a", "b", "b"};
    const char *items[4] = {"x", "y", "y", "z"};
    const float values[4] = {1, 4, 0.5f, 3};
    gpuals_data *d;
    assert_int_equal(dataset_from_triplets(4, users, items, values, &d), GPUALS_OK);

    gpuals_params p;
    memset(&p, 0, sizeof p);
    p.alpha = 2.0;
    p.eps = 0.5;
    csr c;
    p.confidence = GPUALS_CONF_IMPLICIT;
    assert_int_equal(dataset_confidence(&d->ratings, &p, &c), GPUALS_OK);
    for (int q = 0; q < 4; q++) assert_float_equal(c.data[q], 2.0 * values[q], 1e-6);
    assert_int_equal(c.indptr[1], 2);
    assert_int_equal(c.indices[3], 2);
    csr_free(&c);

    p.confidence = GPUALS_CONF_HU;
    assert_int_equal(dataset_confidence(&d->ratings, &p, &c), GPUALS_OK);
    for (int q = 0; q < 4; q++) assert_float_equal(c.data[q], 1.0 + 2.0 * values[q], 1e-6);
    csr_free(&c);

    p.confidence = GPUALS_CONF_LOG;
    assert_int_equal(dataset_confidence(&d->ratings, &p, &c), GPUALS_OK);
    for (int q = 0; q < 4; q++)
        assert_float_equal(c.data[q], 1.0 + 2.0 * log(1.0 + values[q] / 0.5), 1e-6);
    assert_float_equal(c.data[1], 1.0 + 2.0 * log(9.0), 1e-6);
    csr_free(&c);

    /* Bad settings, and a value the log cannot take. */
    p.eps = 0;
    assert_int_equal(dataset_confidence(&d->ratings, &p, &c), GPUALS_ERR_USAGE);
    p.eps = 1;
    p.alpha = NAN;
    assert_int_equal(dataset_confidence(&d->ratings, &p, &c), GPUALS_ERR_USAGE);
    p.alpha = 1;
    d->ratings.data[3] = -2; /* log(1 - 2) */
    assert_int_equal(dataset_confidence(&d->ratings, &p, &c), GPUALS_ERR_NUMERIC);
    assert_string_equal(gpuals_last_error(), "the summed rating -2 gives the non-finite "
                        "confidence nan (log: 1 + alpha*log(1 + r/eps) with alpha 1, eps 1): the "
                        "log confidence needs every summed rating above -eps");

    /* With the id maps, the entry is named by its raw ids, in either orientation. */
    assert_int_equal(dataset_confidence_ids(&d->ratings, d->users, d->items, 0, &p, &c),
                     GPUALS_ERR_NUMERIC);
    assert_non_null(strstr(gpuals_last_error(), "user 'b', item 'z': the summed rating -2"));
    assert_int_equal(csr_transpose(&d->ratings, &c), GPUALS_OK);
    csr t;
    assert_int_equal(dataset_confidence_ids(&c, d->users, d->items, 1, &p, &t),
                     GPUALS_ERR_NUMERIC);
    assert_non_null(strstr(gpuals_last_error(), "user 'b', item 'z': the summed rating -2"));
    csr_free(&c);

    /* An alpha that takes a confidence beyond the float range. */
    d->ratings.data[3] = 100;
    p.confidence = GPUALS_CONF_IMPLICIT;
    p.alpha = 1e37;
    assert_int_equal(dataset_confidence_ids(&d->ratings, d->users, d->items, 0, &p, &c),
                     GPUALS_ERR_NUMERIC);
    assert_non_null(strstr(gpuals_last_error(), "user 'b', item 'z': the summed rating 100 "
                                                "gives the non-finite confidence 1e+39 "
                                                "(implicit: alpha*r with alpha 1e+37): a smaller "
                                                "alpha"));
    gpuals_data_free(d);
}

static void test_from_triplets(void **state)
{
    (void)state;
    const char *users[6] = {"u2", "u1", "u2", "u3", "u1", "u2"};
    const char *items[6] = {"b", "a", "b", "c", "c", "a"};
    const float values[6] = {1, 2, 3, 0, 5, 6};
    gpuals_data *d;
    assert_int_equal(dataset_from_triplets(6, users, items, values, &d), GPUALS_OK);
    const gpuals_summary *s = gpuals_data_summary(d);
    assert_int_equal(s->raw_lines, 6);
    assert_int_equal(s->kept_lines, 5);
    assert_int_equal(s->zero_lines, 1);
    assert_int_equal(s->duplicates, 1);
    assert_int_equal(s->users, 2); /* u3 had only a zero */
    assert_int_equal(s->items, 3);
    assert_int_equal(s->stored, 4);
    assert_string_equal(idmap_name(d->users, 0), "u2");
    assert_string_equal(idmap_name(d->items, 2), "c");
    /* u2: b = 4, a = 6 (columns sorted: a is index 1, b index 0) */
    assert_int_equal(d->ratings.indices[0], 0);
    assert_float_equal(d->ratings.data[0], 4.0, 0.0);
    assert_int_equal(d->ratings.indices[1], 1);
    assert_float_equal(d->ratings.data[1], 6.0, 0.0);
    gpuals_data_free(d);

    const char *bad_users[1] = {""};
    assert_int_equal(dataset_from_triplets(1, bad_users, items, values, &d), GPUALS_ERR_USAGE);
    const float zeros[2] = {0, 0};
    assert_int_equal(dataset_from_triplets(2, users, items, zeros, &d), GPUALS_ERR_EMPTY);
    const float inf[1] = {INFINITY};
    assert_int_equal(dataset_from_triplets(1, users, items, inf, &d), GPUALS_ERR_USAGE);

    /* Magnitudes above READER_MAX_VALUE, as the readers refuse them; the bound itself is kept. */
    const float big[2] = {-1e13f, 1e12f};
    assert_int_equal(dataset_from_triplets(1, users, items, big, &d), GPUALS_ERR_USAGE);
    assert_non_null(strstr(gpuals_last_error(), "(user 'u2', item 'b') has the value -1e+13, "
                                                "of magnitude above 1e12"));
    assert_int_equal(dataset_from_triplets(1, users, items, big + 1, &d), GPUALS_OK);
    gpuals_data_free(d);
}

static void test_add_user(void **state)
{
    (void)state;
    gpuals_data *d = load_fixture(FIX "ml1m/ratings.dat", FIX "ml1m/movies.dat");
    gpuals_summary before = *gpuals_data_summary(d);

    /* Items 5 ("73"), 0 ("1193") twice, 3 ("260"); and a zero that is dropped. */
    const int64_t items[5] = {5, 0, 3, 0, 6};
    const float values[5] = {1, 2, 3, 4, 0};
    int64_t row = -1;
    assert_int_equal(dataset_add_user(d, "demo", 5, items, values, &row), GPUALS_OK);
    assert_int_equal(row, 4);
    assert_string_equal(idmap_name(d->users, 4), "demo");
    assert_int_equal(d->ratings.rows, 5);
    assert_int_equal(csr_row_len(&d->ratings, 4), 3);
    int64_t q = d->ratings.indptr[4];
    assert_int_equal(d->ratings.indices[q], 0);
    assert_float_equal(d->ratings.data[q], 6.0, 0.0);
    assert_int_equal(d->ratings.indices[q + 1], 3);
    assert_int_equal(d->ratings.indices[q + 2], 5);
    assert_int_equal(csr_validate(&d->ratings), GPUALS_OK);
    assert_int_equal(csr_validate(&d->ratings_t), GPUALS_OK);
    assert_int_equal(d->ratings_t.cols, 5);
    assert_int_equal(d->ratings_t.nnz, before.stored + 3);
    int64_t last = d->ratings_t.indptr[1] - 1; /* item 0's last user is the new one */
    assert_int_equal(d->ratings_t.indices[last], 4);
    const gpuals_summary *s = gpuals_data_summary(d);
    assert_int_equal(s->users, before.users + 1);
    assert_int_equal(s->stored, before.stored + 3);
    assert_int_equal(s->duplicates, before.duplicates + 1);
    assert_int_equal(s->zero_lines, before.zero_lines + 1);
    assert_int_equal(s->stored, s->kept_lines - s->duplicates);
    assert_string_equal(d->titles[5], "Mis\xC3\xA9rables, Les (1995)");

    /* Refusals leave the data as it was. */
    const int64_t bad_items[1] = {7};
    assert_int_equal(dataset_add_user(d, "demo", 1, items, values, &row), GPUALS_ERR_USAGE);
    assert_string_equal(gpuals_last_error(), "user 'demo' exists already in the data");
    assert_int_equal(dataset_add_user(d, "x", 1, bad_items, values, &row), GPUALS_ERR_USAGE);
    assert_int_equal(dataset_add_user(d, "x", 0, items, values, &row), GPUALS_ERR_USAGE);
    assert_int_equal(dataset_add_user(d, "x", 1, items + 4, values + 4, &row),
                     GPUALS_ERR_USAGE);
    assert_string_equal(gpuals_last_error(), "user 'x' has only zero values");
    const float big[1] = {2e12f};
    assert_int_equal(dataset_add_user(d, "x", 1, items, big, &row), GPUALS_ERR_USAGE);
    assert_string_equal(gpuals_last_error(), "user 'x', item '73': the value 2e+12 is of "
                        "magnitude above 1e12");
    assert_int_equal(d->ratings.rows, 5);
    assert_int_equal(idmap_size(d->users), 5);
    gpuals_data_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedded_summary),
        cmocka_unit_test(test_embedded_titles),
        cmocka_unit_test(test_titles_fixtures),
        cmocka_unit_test(test_titles_shapes),
        cmocka_unit_test(test_titles_duplicates),
        cmocka_unit_test(test_titles_errors),
        cmocka_unit_test(test_confidence),
        cmocka_unit_test(test_from_triplets),
        cmocka_unit_test(test_add_user),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
