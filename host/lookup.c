/*
 * lookup.c - users and items by raw id or title, with candidates and suggestions in the
 * error messages.
 *
 * Every not-found message (unknown id, unknown title) ends by recalling that users or items whose
 * every rating was filtered out while loading (min_rating, --min-rating) have no row in the model,
 * since that is the usual reason a correct id is unknown.
 *
 * Title matching follows the design's three levels (exact; ASCII case-insensitive; ASCII
 * case-insensitive substring), stopping at the first level with any match. Case folding is
 * ASCII only: bytes of UTF-8 sequences compare as they are, so "É" and "é" differ.
 *
 * Encodings: titles are stored as UTF-8 (a Latin-1 titles file is converted when read), while
 * raw ids keep the bytes of the ratings file. So that either form of a text finds what it names,
 * an id is also tried as its Latin-1 bytes when it is UTF-8 below U+0100, and a title that is
 * not valid UTF-8 is also tried, at every level, converted from Latin-1 to UTF-8 (the form the
 * messages then show).
 *
 * Suggestions for an unknown title rank every titled item by the edit distance between the
 * typed text and the best-matching stretch of the title (a semi-global alignment: the title may
 * start and end anywhere for free), so "toy stroy" finds "Toy Story (1995)" at distance 2.
 * Ties go to titles closer in length to the text, then to lower indices. Only the first
 * LOOKUP_MAX_TEXT bytes of the text and LOOKUP_MAX_TITLE of each title take part, which bounds
 * the work to a few milliseconds per ten thousand titles. Suggestions for an unknown id rank
 * integer ids by numeric distance when the text is an integer, other ids by plain edit
 * distance.
 */
#include "lookup.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model.h"
#include "status.h"
#include "titles.h"

#define LOOKUP_MAX_TEXT 128
#define LOOKUP_MAX_TITLE 256

/* ------------------------------------------------------------------------------------------ */
/* Distances and the best-k list                                                              */
/* ------------------------------------------------------------------------------------------ */

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Levenshtein distance between a[0..la) and b[0..lb) ignoring ASCII case; with anywhere set,
 * between a and the closest substring of b. la <= LOOKUP_MAX_TEXT, lb <= LOOKUP_MAX_TITLE. */
static unsigned edit_distance(const char *a, size_t la, const char *b, size_t lb, int anywhere)
{
    unsigned row[LOOKUP_MAX_TITLE + 1];
    for (size_t j = 0; j <= lb; j++) row[j] = anywhere ? 0 : (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        unsigned char ca = ascii_lower((unsigned char)a[i - 1]);
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned best = diag + (ca != ascii_lower((unsigned char)b[j - 1]));
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    if (!anywhere) return row[lb];
    unsigned best = row[0];
    for (size_t j = 1; j <= lb; j++)
        if (row[j] < best) best = row[j];
    return best;
}

static size_t capped_len(const char *s, size_t cap)
{
    size_t n = strlen(s);
    return n < cap ? n : cap;
}

/* A candidate suggestion: ordered by k1, then k2, then index. */
typedef struct {
    uint64_t k1, k2;
    int64_t index;
} near_entry;

static int near_before(const near_entry *a, const near_entry *b)
{
    if (a->k1 != b->k1) return a->k1 < b->k1;
    if (a->k2 != b->k2) return a->k2 < b->k2;
    return a->index < b->index;
}

/* Insert c into best[0..*len), kept sorted and at most k long. */
static void near_keep(near_entry *best, int *len, int k, near_entry c)
{
    if (*len == k && !near_before(&c, &best[k - 1])) return;
    int at = *len < k ? (*len)++ : k - 1;
    while (at > 0 && near_before(&c, &best[at - 1])) {
        best[at] = best[at - 1];
        at--;
    }
    best[at] = c;
}

/* A whole-string decimal integer (optional '-'), into *v. */
static int parse_integer(const char *s, long long *v)
{
    if (!((s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0' && s[1] <= '9')))
        return 0;
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return *end == '\0' && errno == 0;
}

static uint64_t abs_diff(long long a, long long b)
{
    return a >= b ? (uint64_t)a - (uint64_t)b : (uint64_t)b - (uint64_t)a;
}

/* ------------------------------------------------------------------------------------------ */
/* Messages                                                                                   */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    char text[1900];
    size_t len;
} message;

static void message_add(message *msg, const char *fmt, ...) GPUALS_PRINTF(2, 3);

static void message_add(message *msg, const char *fmt, ...)
{
    size_t room = sizeof msg->text - msg->len;
    if (room <= 1) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg->text + msg->len, room, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    msg->len += (size_t)n < room ? (size_t)n : room - 1;
}

/* Append an id or title of the model as UTF-8: one that is not (from a Latin-1 file) is shown
 * converted from Latin-1, as titles are, so that a message never mixes the two encodings. */
static void message_add_text(message *msg, const char *s)
{
    size_t n = strlen(s);
    char *utf8 = titles_is_utf8(s, n) ? NULL : titles_latin1_to_utf8(s, n);
    message_add(msg, "%s", utf8 ? utf8 : s);
    free(utf8);
}

/* Append `"title" (id X)` for item i. */
static void message_add_item(message *msg, const gpuals_model *m, int64_t i)
{
    message_add(msg, "\"");
    message_add_text(msg, gpuals_model_item_title(m, i));
    message_add(msg, "\" (id ");
    message_add_text(msg, gpuals_model_item_id(m, i));
    message_add(msg, ")");
}

/* ------------------------------------------------------------------------------------------ */
/* Ids                                                                                        */
/* ------------------------------------------------------------------------------------------ */

int lookup_closest_ids(const gpuals_model *m, lookup_side side, const char *text, int k,
                       int64_t *out)
{
    if (!m || !text || k <= 0 || !out) return 0;
    if (k > 64) k = 64;
    near_entry best[64];
    int len = 0;
    long long want;
    int text_is_int = parse_integer(text, &want);
    size_t lt = capped_len(text, LOOKUP_MAX_TEXT);
    int64_t count = side == LOOKUP_USERS ? m->n_users : m->n_items;

    for (int64_t r = 0; r < count; r++) {
        const char *id = side == LOOKUP_USERS ? gpuals_model_user_id(m, r)
                                              : gpuals_model_item_id(m, r);
        long long v;
        near_entry c = {1, 0, r};
        if (text_is_int && parse_integer(id, &v)) {
            c.k1 = 0;
            c.k2 = abs_diff(want, v);
        } else {
            c.k2 = edit_distance(text, lt, id, capped_len(id, LOOKUP_MAX_TITLE), 0);
        }
        near_keep(best, &len, k, c);
    }
    for (int j = 0; j < len; j++) out[j] = best[j].index;
    return len;
}

/* The reminder that ends every not-found message: a user or item whose every rating was
 * dropped while loading never got a row, so a correct id can still be unknown. */
static void message_add_dropped(message *msg, const char *what)
{
    message_add(msg, "; %ss whose every rating was filtered out (min_rating, --min-rating) have "
                "no row in the model", what);
}

/* GPUALS_ERR_NOT_FOUND for the unknown id text on side, with the closest ids. */
static gpuals_status unknown_id(const gpuals_model *m, lookup_side side, const char *text)
{
    const char *what = side == LOOKUP_USERS ? "user" : "item";
    message msg = {{0}, 0};
    message_add(&msg, "unknown %s \"%s\"", what, text);
    int64_t near[LOOKUP_SUGGEST];
    int n = lookup_closest_ids(m, side, text, LOOKUP_SUGGEST, near);
    if (n == 0) message_add(&msg, "; the model has no %ss", what);
    for (int j = 0; j < n; j++) {
        const char *id = side == LOOKUP_USERS ? gpuals_model_user_id(m, near[j])
                                              : gpuals_model_item_id(m, near[j]);
        message_add(&msg, "%s", j == 0 ? "; closest ids: " : ", ");
        message_add_text(&msg, id);
    }
    message_add_dropped(&msg, what);
    return gpuals_fail(GPUALS_ERR_NOT_FOUND, "%s", msg.text);
}

/* The Latin-1 bytes of UTF-8 text whose characters are all below U+0100, with at least one
 * above U+007F, into out (cap bytes); 0 when the text is not such. JSON output shows ids that
 * are not UTF-8 converted from Latin-1 this way, so an id copied from it still finds its row. */
static int utf8_to_latin1(const char *text, char *out, size_t cap)
{
    size_t w = 0;
    int wide = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (w + 1 >= cap) return 0;
        if (*p < 0x80) {
            out[w++] = (char)*p;
        } else if ((*p == 0xC2 || *p == 0xC3) && (p[1] & 0xC0) == 0x80) {
            out[w++] = (char)(((*p & 0x03) << 6) | (p[1] & 0x3F));
            p++;
            wide = 1;
        } else {
            return 0;
        }
    }
    out[w] = '\0';
    return wide;
}

/* Index of a raw id on one side, as typed or, failing that, as its Latin-1 bytes; -1 if none. */
static int64_t find_id(const gpuals_model *m, lookup_side side, const char *raw_id)
{
    int64_t at = side == LOOKUP_USERS ? gpuals_model_user_index(m, raw_id)
                                      : gpuals_model_item_index(m, raw_id);
    char latin1[1024];
    if (at >= 0 || !utf8_to_latin1(raw_id, latin1, sizeof latin1)) return at;
    return side == LOOKUP_USERS ? gpuals_model_user_index(m, latin1)
                                : gpuals_model_item_index(m, latin1);
}

gpuals_status lookup_user(const gpuals_model *m, const char *raw_id, int64_t *index)
{
    if (!m || !raw_id || !index) return gpuals_fail(GPUALS_ERR_USAGE, "lookup_user: NULL argument");
    *index = find_id(m, LOOKUP_USERS, raw_id);
    if (*index >= 0) return GPUALS_OK;
    return unknown_id(m, LOOKUP_USERS, raw_id);
}

gpuals_status lookup_item_id(const gpuals_model *m, const char *raw_id, int64_t *index)
{
    if (!m || !raw_id || !index)
        return gpuals_fail(GPUALS_ERR_USAGE, "lookup_item_id: NULL argument");
    *index = find_id(m, LOOKUP_ITEMS, raw_id);
    if (*index >= 0) return GPUALS_OK;
    return unknown_id(m, LOOKUP_ITEMS, raw_id);
}

/* ------------------------------------------------------------------------------------------ */
/* Titles                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static int title_matches(lookup_level level, const char *title, const char *text)
{
    switch (level) {
    case LOOKUP_EXACT: return strcmp(title, text) == 0;
    case LOOKUP_NOCASE: return strcasecmp(title, text) == 0;
    case LOOKUP_SUBSTRING: return strcasestr(title, text) != NULL;
    case LOOKUP_NONE: break;
    }
    return 0;
}

/* The UTF-8 form of a text that is not valid UTF-8, read as Latin-1, into *utf8 (malloc'd);
 * NULL when the text is UTF-8 already. The titles a Latin-1 file gave were converted the same
 * way, so a title typed or copied in its Latin-1 bytes matches in this form. */
static gpuals_status latin1_reading(const char *text, char **utf8)
{
    size_t n = strlen(text);
    *utf8 = NULL;
    if (titles_is_utf8(text, n)) return GPUALS_OK;
    *utf8 = titles_latin1_to_utf8(text, n);
    if (!*utf8) return gpuals_fail(GPUALS_ERR_NOMEM, "out of memory looking up a title");
    return GPUALS_OK;
}

gpuals_status lookup_title_matches(const gpuals_model *m, const char *title, int64_t *out,
                                   int cap, int64_t *n_found, lookup_level *level)
{
    if (!m || !title || !n_found || !level || cap < 0 || (cap > 0 && !out))
        return gpuals_fail(GPUALS_ERR_USAGE, "lookup_title_matches: invalid arguments");
    if (!title[0]) return gpuals_fail(GPUALS_ERR_USAGE, "an empty title matches nothing");
    *n_found = 0;
    *level = LOOKUP_NONE;
    if (!m->titles) return GPUALS_OK;
    char *utf8;
    GPUALS_TRY(latin1_reading(title, &utf8));

    /* The first level with any match, as typed or in the UTF-8 form, wins. */
    for (int lv = LOOKUP_EXACT; lv <= LOOKUP_SUBSTRING && *n_found == 0; lv++) {
        int64_t count = 0;
        for (int64_t i = 0; i < m->n_items; i++) {
            const char *t = m->titles[i];
            if (!t || !(title_matches((lookup_level)lv, t, title) ||
                        (utf8 && title_matches((lookup_level)lv, t, utf8))))
                continue;
            if (count < cap) out[count] = i;
            count++;
        }
        if (count > 0) {
            *n_found = count;
            *level = (lookup_level)lv;
        }
    }
    free(utf8);
    return GPUALS_OK;
}

int lookup_closest_titles(const gpuals_model *m, const char *text, int k, int64_t *out)
{
    if (!m || !m->titles || !text || k <= 0 || !out) return 0;
    if (k > 64) k = 64;
    near_entry best[64];
    int len = 0;
    size_t lt = capped_len(text, LOOKUP_MAX_TEXT);
    for (int64_t i = 0; i < m->n_items; i++) {
        const char *t = m->titles[i];
        if (!t) continue;
        size_t full = strlen(t);
        size_t lb = full < LOOKUP_MAX_TITLE ? full : LOOKUP_MAX_TITLE;
        near_entry c = {edit_distance(text, lt, t, lb, 1), full > lt ? full - lt : lt - full, i};
        near_keep(best, &len, k, c);
    }
    for (int j = 0; j < len; j++) out[j] = best[j].index;
    return len;
}

/* The errors of a title lookup that found n_found != 1 items; or_id words the not-found
 * message for a text that was tried as an id first. */
static gpuals_status title_error(const gpuals_model *m, const char *title, const int64_t *found,
                                 int64_t n_found, lookup_level level, int or_id)
{
    message msg = {{0}, 0};

    /* Several matches: list them. */
    if (n_found > 1) {
        static const char *how[] = {"", " exactly", " ignoring case", " as a substring"};
        message_add(&msg, "title \"%s\" matches %lld items%s: ", title, (long long)n_found,
                    how[level]);
        int64_t shown = n_found < LOOKUP_LIST_MAX ? n_found : LOOKUP_LIST_MAX;
        for (int64_t j = 0; j < shown; j++) {
            if (j) message_add(&msg, ", ");
            message_add_item(&msg, m, found[j]);
        }
        if (n_found > shown) message_add(&msg, ", and %lld more", (long long)(n_found - shown));
        int same = 1;
        for (int64_t j = 1; j < n_found && same; j++)
            same = strcmp(gpuals_model_item_title(m, found[j]),
                          gpuals_model_item_title(m, found[0])) == 0;
        message_add(&msg, same ? "; the titles are the same: give the item id"
                               : "; give more of the title or the item id");
        return gpuals_fail(GPUALS_ERR_AMBIGUOUS, "%s", msg.text);
    }

    /* None: suggest the closest titles. */
    message_add(&msg, or_id ? "no item has the id or title \"%s\"" : "no item title matches "
                "\"%s\"", title);
    int64_t near[LOOKUP_SUGGEST];
    int n = lookup_closest_titles(m, title, LOOKUP_SUGGEST, near);
    for (int j = 0; j < n; j++) {
        message_add(&msg, j == 0 ? "; closest titles: " : ", ");
        message_add_item(&msg, m, near[j]);
    }
    message_add_dropped(&msg, "item");
    return gpuals_fail(GPUALS_ERR_NOT_FOUND, "%s", msg.text);
}

/* lookup_item_title, with the not-found wording chosen by or_id. */
static gpuals_status find_title(const gpuals_model *m, const char *title, int64_t *index,
                                int or_id)
{
    if (!m->titles)
        return gpuals_fail(GPUALS_ERR_NOT_FOUND, "no item %s\"%s\": the model has no item "
                           "titles; name items by their ids", or_id ? "has the id " : "title ",
                           title);
    int64_t found[LOOKUP_LIST_MAX];
    int64_t n_found;
    lookup_level level;
    GPUALS_TRY(lookup_title_matches(m, title, found, LOOKUP_LIST_MAX, &n_found, &level));
    if (n_found == 1) {
        *index = found[0];
        return GPUALS_OK;
    }

    /* The message shows, and suggests titles for, the text as UTF-8, like the titles. */
    char *utf8;
    GPUALS_TRY(latin1_reading(title, &utf8));
    gpuals_status s = title_error(m, utf8 ? utf8 : title, found, n_found, level, or_id);
    free(utf8);
    return s;
}

gpuals_status lookup_item_title(const gpuals_model *m, const char *title, int64_t *index)
{
    if (!m || !title || !index)
        return gpuals_fail(GPUALS_ERR_USAGE, "lookup_item_title: NULL argument");
    *index = -1;
    return find_title(m, title, index, 0);
}

gpuals_status lookup_item(const gpuals_model *m, const char *id_or_title, int64_t *index)
{
    if (!m || !id_or_title || !index)
        return gpuals_fail(GPUALS_ERR_USAGE, "lookup_item: NULL argument");
    *index = find_id(m, LOOKUP_ITEMS, id_or_title);
    if (*index >= 0) return GPUALS_OK;
    if (!m->titles) return unknown_id(m, LOOKUP_ITEMS, id_or_title);
    return find_title(m, id_or_title, index, 1);
}

/* ------------------------------------------------------------------------------------------ */
/* The public lookups                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* NULL and empty arguments of gpuals_find_user and gpuals_find_item, named. */
static gpuals_status check_find_args(const gpuals_model *m, const char *text, const int64_t *index,
                                     const char *fn)
{
    if (!m) return gpuals_fail(GPUALS_ERR_USAGE, "%s: NULL model", fn);
    if (!text) return gpuals_fail(GPUALS_ERR_USAGE, "%s: NULL id", fn);
    if (!index) return gpuals_fail(GPUALS_ERR_USAGE, "%s: NULL index", fn);
    if (!*text) return gpuals_fail(GPUALS_ERR_USAGE, "%s: empty id", fn);
    return GPUALS_OK;
}

gpuals_status gpuals_find_user(const gpuals_model *m, const char *raw_id, int64_t *index)
{
    GPUALS_TRY(check_find_args(m, raw_id, index, "gpuals_find_user"));
    int64_t at = -1;
    GPUALS_TRY(lookup_user(m, raw_id, &at));
    *index = at;
    return GPUALS_OK;
}

gpuals_status gpuals_find_item(const gpuals_model *m, const char *id_or_title, int64_t *index)
{
    GPUALS_TRY(check_find_args(m, id_or_title, index, "gpuals_find_item"));
    int64_t at = -1;
    GPUALS_TRY(lookup_item(m, id_or_title, &at));
    *index = at;
    return GPUALS_OK;
}
