/*
 * test_query_lookup.c - finding items by title (exact, case-insensitive, substring, ambiguous,
 * unknown with suggestions), items by raw id before title, unknown user ids with the closest
 * ids, the reminder about filtered-out users and items in not-found messages, a model without
 * titles, and titles and ids found from their Latin-1 bytes as from their UTF-8 form.
 */
#include "lookup.h"
#include "test_query_common.h"

#define N_ITEMS 12

typedef struct {
    gpuals_data *d;
    gpuals_model *m;
} fixture;

/* Items named by MovieLens-like ids, with titles; item 9 has none, 10 and 11 are "Part"s. */
static const char *item_ids[N_ITEMS] = {"1",   "2",  "3114", "838", "26958", "6",
                                        "16",  "32", "50",   "99",  "7001",  "7002"};
static const char *titles[N_ITEMS] = {
    "Toy Story (1995)",    "Jumanji (1995)", "Toy Story 2 (1999)", "Emma (1996)",
    "Emma (1996)",         "Heat (1995)",    "Casino (1995)",      "Twelve Monkeys (1995)",
    "Usual Suspects, The (1995)", NULL,     "Part One (2001)",    "Part Two (2002)",
};

static int setup(void **state)
{
    const char *users[N_ITEMS * 2], *items[N_ITEMS * 2];
    float values[N_ITEMS * 2];
    static const char *user_ids[] = {"10", "20", "30", "40", "abc"};
    for (int k = 0; k < N_ITEMS * 2; k++) {
        users[k] = user_ids[k % 5];
        items[k] = item_ids[k % N_ITEMS];
        values[k] = 1.0f + (float)(k % 3);
    }
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    TQ_OK(dataset_from_triplets(N_ITEMS * 2, users, items, values, &fx->d));
    gpuals_params p = tq_params(3, GPUALS_CONF_IMPLICIT, GPUALS_REG_NONE);
    fx->m = tq_make_model(fx->d, &p, 9);
    for (int i = 0; i < N_ITEMS; i++) {
        assert_int_equal(gpuals_model_item_index(fx->m, item_ids[i]), i);
        tq_set_title(fx->m, i, titles[i]);
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    gpuals_model_free(fx->m);
    gpuals_data_free(fx->d);
    free(fx);
    return 0;
}

static void test_title_levels(void **state)
{
    fixture *fx = *state;
    int64_t i = -1;
    int64_t found[4];
    int64_t n_found;
    lookup_level level;

    /* Exact, even though "Toy Story (1995)" is also a substring of nothing else. */
    TQ_OK(lookup_item_title(fx->m, "Toy Story (1995)", &i));
    assert_int_equal(i, 0);
    TQ_OK(lookup_title_matches(fx->m, "Toy Story (1995)", found, 4, &n_found, &level));
    assert_int_equal(level, LOOKUP_EXACT);

    /* Case-insensitive. */
    TQ_OK(lookup_item_title(fx->m, "JUMANJI (1995)", &i));
    assert_int_equal(i, 1);
    TQ_OK(lookup_title_matches(fx->m, "heat (1995)", found, 4, &n_found, &level));
    assert_int_equal(level, LOOKUP_NOCASE);
    assert_int_equal(n_found, 1);
    assert_int_equal(found[0], 5);

    /* Substring, case-insensitive. */
    TQ_OK(lookup_item_title(fx->m, "usual susp", &i));
    assert_int_equal(i, 8);
    TQ_OK(lookup_item_title(fx->m, "monkeys", &i));
    assert_int_equal(i, 7);
    TQ_OK(lookup_title_matches(fx->m, "monkeys", found, 4, &n_found, &level));
    assert_int_equal(level, LOOKUP_SUBSTRING);
}

static void test_title_ambiguous(void **state)
{
    fixture *fx = *state;
    int64_t i = 123;

    /* Two substring matches: both listed with their ids. */
    assert_int_equal(lookup_item_title(fx->m, "toy story", &i), GPUALS_ERR_AMBIGUOUS);
    const char *msg = gpuals_last_error();
    assert_non_null(strstr(msg, "matches 2 items as a substring"));
    assert_non_null(strstr(msg, "\"Toy Story (1995)\" (id 1)"));
    assert_non_null(strstr(msg, "\"Toy Story 2 (1999)\" (id 3114)"));
    assert_non_null(strstr(msg, "give more of the title or the item id"));

    /* Two identical titles: ambiguous at the exact level. */
    assert_int_equal(lookup_item_title(fx->m, "Emma (1996)", &i), GPUALS_ERR_AMBIGUOUS);
    msg = gpuals_last_error();
    assert_non_null(strstr(msg, "exactly"));
    assert_non_null(strstr(msg, "(id 838)"));
    assert_non_null(strstr(msg, "(id 26958)"));
    assert_non_null(strstr(msg, "the titles are the same: give the item id"));

    /* Many matches: at most LOOKUP_LIST_MAX listed, the rest counted. */
    assert_int_equal(lookup_item_title(fx->m, "(", &i), GPUALS_ERR_AMBIGUOUS);
    msg = gpuals_last_error();
    assert_non_null(strstr(msg, "matches 11 items"));
    assert_non_null(strstr(msg, "and 1 more"));
    assert_null(strstr(msg, "Part Two"));
}

static void test_title_unknown_suggests(void **state)
{
    fixture *fx = *state;
    int64_t i = 123;
    assert_int_equal(lookup_item_title(fx->m, "toy stroy", &i), GPUALS_ERR_NOT_FOUND);
    const char *msg = gpuals_last_error();
    assert_non_null(strstr(msg, "no item title matches \"toy stroy\""));
    assert_non_null(strstr(msg, "closest titles: \"Toy Story (1995)\" (id 1)"));

    int64_t near[5];
    int n = lookup_closest_titles(fx->m, "casnio", 5, near);
    assert_int_equal(n, 5);
    assert_int_equal(near[0], 6);
    n = lookup_closest_titles(fx->m, "Emmma", 2, near);
    assert_int_equal(n, 2);
    assert_int_equal(near[0], 3);
    assert_int_equal(near[1], 4);

    assert_int_equal(lookup_item_title(fx->m, "", &i), GPUALS_ERR_USAGE);
}

static void test_item_by_id_or_title(void **state)
{
    fixture *fx = *state;
    int64_t i = -1;
    TQ_OK(lookup_item(fx->m, "3114", &i)); /* an id, although no title contains it */
    assert_int_equal(i, 2);
    TQ_OK(lookup_item(fx->m, "Casino", &i));
    assert_int_equal(i, 6);
    TQ_OK(lookup_item(fx->m, "99", &i)); /* the item without a title, by id */
    assert_int_equal(i, 9);
    assert_int_equal(lookup_item(fx->m, "Zorro", &i), GPUALS_ERR_NOT_FOUND);
    assert_non_null(strstr(gpuals_last_error(), "no item has the id or title \"Zorro\""));
    TQ_OK(lookup_item_id(fx->m, "838", &i));
    assert_int_equal(i, 3);
    assert_int_equal(lookup_item_id(fx->m, "837", &i), GPUALS_ERR_NOT_FOUND);
    assert_non_null(strstr(gpuals_last_error(), "closest ids: 838, 99,"));
}

static void test_user_ids(void **state)
{
    fixture *fx = *state;
    int64_t u = -1;
    TQ_OK(lookup_user(fx->m, "30", &u));
    assert_int_equal(u, 2);
    TQ_OK(lookup_user(fx->m, "abc", &u));
    assert_int_equal(u, 4);

    /* Numeric ids: numerically closest first; text ids: by edit distance, after them. */
    assert_int_equal(lookup_user(fx->m, "26", &u), GPUALS_ERR_NOT_FOUND);
    assert_non_null(strstr(gpuals_last_error(), "unknown user \"26\"; closest ids: 30, 20, 40, "
                                                "10, abc"));
    int64_t near[2];
    assert_int_equal(lookup_closest_ids(fx->m, LOOKUP_USERS, "abd", 2, near), 2);
    assert_int_equal(near[0], 4);
}

/* Not-found messages say, after the suggestions, why a correct id may have no row. */
static void test_not_found_mentions_filtered(void **state)
{
    fixture *fx = *state;
    int64_t i = -1;
    assert_int_equal(lookup_user(fx->m, "26", &i), GPUALS_ERR_NOT_FOUND);
    assert_non_null(strstr(gpuals_last_error(), "10, abc; users whose every rating was filtered "
                                                "out (min_rating, --min-rating) have no row in "
                                                "the model"));
    assert_int_equal(lookup_item_id(fx->m, "837", &i), GPUALS_ERR_NOT_FOUND);
    assert_non_null(strstr(gpuals_last_error(), "; items whose every rating was filtered out "
                                                "(min_rating, --min-rating) have no row in the "
                                                "model"));
    assert_int_equal(lookup_item(fx->m, "Zorro", &i), GPUALS_ERR_NOT_FOUND);
    assert_non_null(strstr(gpuals_last_error(), "; items whose every rating was filtered out"));
    assert_int_equal(lookup_item_title(fx->m, "toy stroy", &i), GPUALS_ERR_NOT_FOUND);
    assert_non_null(strstr(gpuals_last_error(), "; items whose every rating was filtered out"));
}

static void test_model_without_titles(void **state)
{
    (void)state;
    gpuals_data *d = tq_make_data(3, 4, 1);
    gpuals_params p = tq_params(2, GPUALS_CONF_IMPLICIT, GPUALS_REG_NONE);
    gpuals_model *m = tq_make_model(d, &p, 3);
    int64_t i;
    assert_int_equal(lookup_item_title(m, "anything", &i), GPUALS_ERR_NOT_FOUND);
    assert_non_null(strstr(gpuals_last_error(), "no item titles"));
    TQ_OK(lookup_item(m, "i2", &i));
    assert_int_equal(i, 2);
    assert_int_equal(lookup_item(m, "i9", &i), GPUALS_ERR_NOT_FOUND);
    assert_non_null(strstr(gpuals_last_error(), "unknown item \"i9\"; closest ids: i0"));
    assert_string_equal(gpuals_model_item_title(m, 1), "");
    gpuals_model_free(m);
    gpuals_data_free(d);
}

/* Titles of a Latin-1 file are stored as UTF-8; the Latin-1 bytes of a title (or of part of it)
 * find it at every level, and an id stored as Latin-1 bytes is found from its UTF-8 form. */
static void test_latin1_text(void **state)
{
    (void)state;
    const char *users[3] = {"u1", "u1", "u2"};
    const char *items[3] = {"4973", "caf\xe9", "1"};
    const float values[3] = {1, 2, 3};
    gpuals_data *d;
    TQ_OK(dataset_from_triplets(3, users, items, values, &d));
    gpuals_params p = tq_params(2, GPUALS_CONF_IMPLICIT, GPUALS_REG_NONE);
    gpuals_model *m = tq_make_model(d, &p, 3);
    tq_set_title(m, 0, "Am\xc3\xa9lie (Fabuleux destin d'Am\xc3\xa9lie Poulain, Le) (2001)");
    tq_set_title(m, 2, "Toy Story (1995)");
    int64_t i = -1, found[2], n_found;
    lookup_level level;

    /* Exact, case-insensitive and substring, from the Latin-1 bytes. */
    TQ_OK(lookup_item_title(m, "Am\xe9lie (Fabuleux destin d'Am\xe9lie Poulain, Le) (2001)",
                            &i));
    assert_int_equal(i, 0);
    TQ_OK(lookup_title_matches(m, "Am\xe9lie (Fabuleux destin d'Am\xe9lie Poulain, Le) (2001)",
                               found, 2, &n_found, &level));
    assert_int_equal(level, LOOKUP_EXACT);
    TQ_OK(lookup_title_matches(m, "AM\xe9LIE (FABULEUX DESTIN D'AM\xe9LIE POULAIN, LE) (2001)",
                               found, 2, &n_found, &level));
    assert_int_equal(level, LOOKUP_NOCASE);
    assert_int_equal(found[0], 0);
    i = -1;
    TQ_OK(lookup_item(m, "Am\xe9lie", &i));
    assert_int_equal(i, 0);
    TQ_OK(lookup_title_matches(m, "am\xe9lie", found, 2, &n_found, &level));
    assert_int_equal(level, LOOKUP_SUBSTRING);
    assert_int_equal(n_found, 1);

    /* The UTF-8 form still works, and an unknown Latin-1 text is shown as UTF-8. */
    TQ_OK(lookup_item(m, "Am\xc3\xa9lie", &i));
    assert_int_equal(i, 0);
    assert_int_equal(lookup_item_title(m, "Am\xe9lia Zzz", &i), GPUALS_ERR_NOT_FOUND);
    assert_non_null(strstr(gpuals_last_error(), "no item title matches \"Am\xc3\xa9lia Zzz\""));

    /* Ids: the stored Latin-1 bytes, from either form. */
    TQ_OK(lookup_item(m, "caf\xe9", &i));
    assert_int_equal(i, 1);
    i = -1;
    TQ_OK(lookup_item(m, "caf\xc3\xa9", &i));
    assert_int_equal(i, 1);

    /* A message suggesting a Latin-1 id shows it as UTF-8, as titles are shown. */
    assert_int_equal(lookup_item_id(m, "cafe", &i), GPUALS_ERR_NOT_FOUND);
    assert_non_null(strstr(gpuals_last_error(), "closest ids: caf\xc3\xa9"));
    assert_null(strstr(gpuals_last_error(), "caf\xe9"));
    gpuals_model_free(m);
    gpuals_data_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_title_levels),
        cmocka_unit_test(test_title_ambiguous),
        cmocka_unit_test(test_title_unknown_suggests),
        cmocka_unit_test(test_item_by_id_or_title),
        cmocka_unit_test(test_user_ids),
        cmocka_unit_test(test_not_found_mentions_filtered),
        cmocka_unit_test(test_model_without_titles),
        cmocka_unit_test(test_latin1_text),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
