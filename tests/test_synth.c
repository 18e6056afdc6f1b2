/*
 * test_synth.c - gpuals-synth's promises, checked by loading what it writes.
 *
 * Run as `test_data_synth <path of gpuals-synth>`. For both output formats: exactly N lines,
 * every user 1..U present, no duplicate (user, item) pair (the loader counts them), ratings
 * 1..5, a titles file that attaches to the items; the same seed gives the same bytes, another
 * seed other bytes; impossible requests fail with exit status 2 and --help exits 0.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dataset.h"
#include "gpuals.h"

static const char *synth_path;

/* Run gpuals-synth with the given arguments (stdout/stderr discarded); its exit status. */
static int run_synth(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>&1", synth_path, args);
    int st = system(cmd);
    assert_true(st != -1 && WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* The whole content of a file (malloc'd) and its size. */
static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

static void check_file(const char *format, const char *ratings, const char *movies)
{
    enum { U = 300, I = 120, N = 9000 };
    char args[1024];
    snprintf(args, sizeof args, "--users %d --items %d --interactions %d --seed 5 --format %s "
             "--user-exponent 0.9 --item-exponent 1.1 --out %s --movies %s", U, I, N, format,
             ratings, movies);
    assert_int_equal(run_synth(args), 0);

    gpuals_load_options o;
    gpuals_load_options_default(&o);
    o.ratings_path = ratings;
    o.titles_path = movies;
    gpuals_data *d = NULL;
    if (gpuals_data_load(&o, &d) != GPUALS_OK) fail_msg("%s", gpuals_last_error());
    const gpuals_summary *s = gpuals_data_summary(d);
    assert_int_equal(s->raw_lines, N);
    assert_int_equal(s->kept_lines, N);
    assert_int_equal(s->duplicates, 0);
    assert_int_equal(s->stored, N);
    assert_int_equal(s->users, U);
    assert_true(s->items <= I && s->items > I / 2);
    for (int u = 1; u <= U; u++) {
        char id[16];
        int n = snprintf(id, sizeof id, "%d", u);
        assert_true(idmap_find(d->users, id, (size_t)n) >= 0);
    }
    int64_t max_row = 0;
    for (int64_t r = 0; r < d->ratings.rows; r++) {
        int64_t len = csr_row_len(&d->ratings, r);
        assert_true(len >= 1 && len <= I);
        if (len > max_row) max_row = len;
    }
    assert_true(max_row > 3 * N / U); /* skewed: the heaviest user is far above the mean */
    for (int64_t q = 0; q < d->ratings.nnz; q++)
        assert_true(d->ratings.data[q] >= 1 && d->ratings.data[q] <= 5 &&
                    d->ratings.data[q] == floorf(d->ratings.data[q]));
    for (int64_t i = 0; i < d->ratings.cols; i++) assert_non_null(d->titles[i]);
    gpuals_data_free(d);
}

static void test_formats_load(void **state)
{
    (void)state;
    check_file("dat", "test_data_synth_ratings.dat", "test_data_synth_movies.dat");
    check_file("csv", "test_data_synth_ratings.csv", "test_data_synth_movies.csv");
    unlink("test_data_synth_ratings.dat");
    unlink("test_data_synth_ratings.csv");
    unlink("test_data_synth_movies.csv");
    unlink("test_data_synth_movies.dat");
}

static void test_seeded(void **state)
{
    (void)state;
    const char *base = "--users 50 --items 40 --interactions 1000";
    char args[512];
    snprintf(args, sizeof args, "%s --seed 9 --out test_data_synth_a.dat", base);
    assert_int_equal(run_synth(args), 0);
    snprintf(args, sizeof args, "%s --seed 9 --out test_data_synth_b.dat", base);
    assert_int_equal(run_synth(args), 0);
    snprintf(args, sizeof args, "%s --seed 10 --out test_data_synth_c.dat", base);
    assert_int_equal(run_synth(args), 0);
    size_t na, nb, nc;
    char *a = slurp("test_data_synth_a.dat", &na), *b = slurp("test_data_synth_b.dat", &nb);
    char *c = slurp("test_data_synth_c.dat", &nc);
    assert_true(na == nb && memcmp(a, b, na) == 0);
    assert_true(na != nc || memcmp(a, c, na) != 0);
    free(a);
    free(b);
    free(c);
    unlink("test_data_synth_a.dat");
    unlink("test_data_synth_b.dat");
    unlink("test_data_synth_c.dat");
}

/* Every possible pair, a skewed star distribution, and the refusals. */
static void test_limits(void **state)
{
    (void)state;
    assert_int_equal(run_synth("--users 7 --items 5 --interactions 35 --ratings-dist 0,0,0,0,1 "
                               "--out test_data_synth_full.dat"), 0);
    gpuals_load_options o;
    gpuals_load_options_default(&o);
    o.ratings_path = "test_data_synth_full.dat";
    gpuals_data *d = NULL;
    assert_int_equal(gpuals_data_load(&o, &d), GPUALS_OK);
    assert_int_equal(gpuals_data_summary(d)->stored, 35);
    assert_int_equal(gpuals_data_summary(d)->items, 5);
    for (int64_t q = 0; q < d->ratings.nnz; q++) assert_float_equal(d->ratings.data[q], 5, 0);
    gpuals_data_free(d);
    unlink("test_data_synth_full.dat");

    assert_int_equal(run_synth("--help"), 0);
    assert_int_equal(run_synth("--users 7 --items 5 --interactions 36 --out x.dat"), 2);
    assert_int_equal(run_synth("--users 7 --items 5 --interactions 6 --out x.dat"), 2);
    assert_int_equal(run_synth("--users 7 --items 5 --interactions 9"), 2);
    assert_int_equal(run_synth("--users 7 --items 5 --interactions 9 --format tsv --out x"), 2);
    assert_int_equal(run_synth("--users 7 --items 5 --interactions 9 --ratings-dist 1,2 "
                               "--out x"), 2);
    assert_int_equal(run_synth("--users 7 --items 5 --interactions 9 "
                               "--out /nonexistent-dir/x.dat"), 1);
    assert_int_equal(access("x.dat", F_OK), -1);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_data_synth PATH-OF-gpuals-synth\n");
        return 2;
    }
    synth_path = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats_load),
        cmocka_unit_test(test_seeded),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
