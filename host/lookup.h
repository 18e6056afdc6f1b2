/*
 * lookup.h - finding users and items by what a person types: raw ids and titles.
 *
 * Titles match at the first of three levels that matches anything: the exact title, then the
 * title ignoring ASCII case, then any title containing the text (ignoring ASCII case). One match
 * at that level is the answer; several are GPUALS_ERR_AMBIGUOUS with a message listing up to
 * LOOKUP_LIST_MAX of them with their raw ids; none at any level is GPUALS_ERR_NOT_FOUND with
 * the LOOKUP_SUGGEST closest titles. An unknown raw id is GPUALS_ERR_NOT_FOUND with the closest
 * ids (numerically closest when the ids are integers, else by edit distance). The messages are
 * meant to be shown as they are (gpuals_last_error()).
 *
 * Titles are UTF-8 (a Latin-1 titles file is converted when read); a title to find that is not
 * valid UTF-8 is read as Latin-1 and also tried converted to UTF-8, at every level. A raw id is
 * also tried as its Latin-1 bytes when it is UTF-8 below U+0100. Either form of a Latin-1 title
 * or id thus finds it.
 */
#ifndef GPUALS_LOOKUP_H
#define GPUALS_LOOKUP_H

#include <stdint.h>

#include "gpuals.h"

#define LOOKUP_LIST_MAX 10 /* candidates listed in an ambiguity message */
#define LOOKUP_SUGGEST 5   /* suggestions in a not-found message */

/* The level a title matched at (0: none). */
typedef enum {
    LOOKUP_NONE = 0,
    LOOKUP_EXACT,
    LOOKUP_NOCASE,
    LOOKUP_SUBSTRING,
} lookup_level;

typedef enum { LOOKUP_USERS = 0, LOOKUP_ITEMS } lookup_side;

/* Dense index of the user with raw id raw_id into *index. GPUALS_ERR_NOT_FOUND (message with
 * the closest user ids) when there is none; GPUALS_ERR_USAGE for NULL arguments. */
gpuals_status lookup_user(const gpuals_model *m, const char *raw_id, int64_t *index);

/* The same for an item's raw id. */
gpuals_status lookup_item_id(const gpuals_model *m, const char *raw_id, int64_t *index);

/* Dense index of the one item whose title matches title (exact, then case-insensitive, then
 * substring). GPUALS_ERR_AMBIGUOUS listing the candidates, GPUALS_ERR_NOT_FOUND listing the
 * closest titles (or saying the model has no titles), GPUALS_ERR_USAGE for an empty title. */
gpuals_status lookup_item_title(const gpuals_model *m, const char *title, int64_t *index);

/* An item named by raw id or, failing that, by title, as the CLI's item arguments are. The
 * errors are those of lookup_item_title; a model without titles gives lookup_item_id's. */
gpuals_status lookup_item(const gpuals_model *m, const char *id_or_title, int64_t *index);

/* Every item whose title matches title at the first level that matches: the first cap of them
 * (in index order) into out (may be NULL when cap is 0), their total count into *n_found and
 * the level into *level (LOOKUP_NONE and 0 when nothing matches). For callers that present the
 * candidates themselves (e.g. as JSON). GPUALS_ERR_USAGE for NULL or empty arguments. */
gpuals_status lookup_title_matches(const gpuals_model *m, const char *title, int64_t *out,
                                   int cap, int64_t *n_found, lookup_level *level);

/* The (up to) k item indices whose titles are closest to text, best first, into out; returns
 * how many were written (0 when the model has no titles). Closeness is the edit distance
 * between text and the best-matching part of the title, ignoring ASCII case; ties go to the
 * title closer in length, then to the lower index. */
int lookup_closest_titles(const gpuals_model *m, const char *text, int k, int64_t *out);

/* The (up to) k user or item indices whose raw ids are closest to text, best first, into out;
 * returns how many were written. Integer ids are ranked by numeric distance to an integer
 * text; other ids by edit distance, after the integer ones. */
int lookup_closest_ids(const gpuals_model *m, lookup_side side, const char *text, int k,
                       int64_t *out);

#endif /* GPUALS_LOOKUP_H */
