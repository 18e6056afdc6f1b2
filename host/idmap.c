/*
 * idmap.c - raw id text <-> dense index, an open-addressing hash table.
 *
 * Every raw id is kept as the exact bytes of its input field, so "7", "07" and "user7" are three
 * different ids, and two distinct ids can never share an index. Indices are handed out in order
 * of first appearance.
 *
 * Layout:
 * - slots: a power-of-two table of 64-bit words, 0 meaning empty. A used slot holds the top 32
 *   bits of the id's XXH3 hash (a tag that rejects almost every non-matching probe without
 *   touching the id text) and index + 1 in the low 32 bits. Linear probing; the table doubles
 *   when it is 70% full, so a probe sequence stays short.
 * - names/lens: for each index, a pointer to its NUL-terminated text and its length.
 * - the text itself lives in an arena of chunks that never move, so the pointers idmap_name
 *   returns stay valid for the life of the map (no per-id malloc).
 *
 * Limits: at most 2^32 - 2 ids (the index has 32 bits in a slot); beyond that, and when memory
 * runs out, idmap_intern returns -1.
 */
#include "idmap.h"

#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define IDMAP_MIN_SLOTS 1024u
#define IDMAP_CHUNK_BYTES ((size_t)1 << 20)
#define IDMAP_MAX_IDS ((int64_t)UINT32_MAX - 1)

struct idmap {
    uint64_t *slots;   /* capacity entries: (tag << 32) | (index + 1), 0 = empty */
    size_t mask;       /* capacity - 1 */
    int64_t count;     /* ids stored */
    int64_t room;      /* entries allocated in names/lens */
    char **names;      /* count pointers into the arena */
    uint32_t *lens;    /* count lengths (the text may be longer than 4 GiB only in theory) */
    char **chunks;     /* arena chunks, each owned */
    size_t n_chunks, chunk_room;
    char *cur;         /* free space of the newest chunk */
    size_t cur_left;
};

static inline uint64_t id_hash(const char *s, size_t len) { return XXH3_64bits(s, len); }

/* The slot holding id s (or the empty slot where it would go). */
static inline size_t probe(const idmap *m, const char *s, size_t len, uint64_t h)
{
    uint32_t tag = (uint32_t)(h >> 32);
    size_t i = (size_t)h & m->mask;
    for (;;) {
        uint64_t e = m->slots[i];
        if (e == 0) return i;
        if ((uint32_t)(e >> 32) == tag) {
            uint32_t k = (uint32_t)e - 1;
            if (m->lens[k] == len && memcmp(m->names[k], s, len) == 0) return i;
        }
        i = (i + 1) & m->mask;
    }
}

idmap *idmap_new(void)
{
    idmap *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->slots = calloc(IDMAP_MIN_SLOTS, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    m->mask = IDMAP_MIN_SLOTS - 1;
    return m;
}

void idmap_free(idmap *m)
{
    if (!m) return;
    for (size_t c = 0; c < m->n_chunks; c++) free(m->chunks[c]);
    free(m->chunks);
    free(m->names);
    free(m->lens);
    free(m->slots);
    free(m);
}

/* Double the slot table and reinsert every id from its tag and index (the text is only hashed
 * again for the low bits, which the tag does not hold). */
static int grow_slots(idmap *m)
{
    size_t cap = (m->mask + 1) * 2;
    uint64_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (int64_t k = 0; k < m->count; k++) {
        uint64_t h = id_hash(m->names[k], m->lens[k]);
        size_t i = (size_t)h & (cap - 1);
        while (slots[i] != 0) i = (i + 1) & (cap - 1);
        slots[i] = (h & 0xFFFFFFFF00000000ull) | (uint64_t)(k + 1);
    }
    free(m->slots);
    m->slots = slots;
    m->mask = cap - 1;
    return 0;
}

/* Copy s[0..len) and a NUL into the arena; NULL when out of memory. */
static char *arena_copy(idmap *m, const char *s, size_t len)
{
    if (m->cur_left < len + 1) {
        size_t size = len + 1 > IDMAP_CHUNK_BYTES ? len + 1 : IDMAP_CHUNK_BYTES;
        if (m->n_chunks == m->chunk_room) {
            size_t room = m->chunk_room ? 2 * m->chunk_room : 16;
            char **chunks = realloc(m->chunks, room * sizeof *chunks);
            if (!chunks) return NULL;
            m->chunks = chunks;
            m->chunk_room = room;
        }
        char *chunk = malloc(size);
        if (!chunk) return NULL;
        m->chunks[m->n_chunks++] = chunk;
        m->cur = chunk;
        m->cur_left = size;
    }
    char *dst = m->cur;
    memcpy(dst, s, len);
    dst[len] = '\0';
    m->cur += len + 1;
    m->cur_left -= len + 1;
    return dst;
}

int64_t idmap_intern(idmap *m, const char *s, size_t len, int *added)
{
    if (added) *added = 0;
    if (len > UINT32_MAX) return -1;

    /* Present already? */
    uint64_t h = id_hash(s, len);
    size_t i = probe(m, s, len, h);
    if (m->slots[i] != 0) return (int64_t)(uint32_t)m->slots[i] - 1;

    /* Make room: the per-index arrays, then the slot table (which moves the free slot). */
    if (m->count >= IDMAP_MAX_IDS) return -1;
    if (m->count == m->room) {
        int64_t room = m->room ? 2 * m->room : 1024;
        char **names = realloc(m->names, (size_t)room * sizeof *names);
        if (!names) return -1;
        m->names = names;
        uint32_t *lens = realloc(m->lens, (size_t)room * sizeof *lens);
        if (!lens) return -1;
        m->lens = lens;
        m->room = room;
    }
    if ((uint64_t)(m->count + 1) * 10 > (uint64_t)(m->mask + 1) * 7) {
        if (grow_slots(m) != 0) return -1;
        i = probe(m, s, len, h);
    }

    /* Store the text and claim the slot. */
    char *name = arena_copy(m, s, len);
    if (!name) return -1;
    int64_t k = m->count++;
    m->names[k] = name;
    m->lens[k] = (uint32_t)len;
    m->slots[i] = (h & 0xFFFFFFFF00000000ull) | (uint64_t)(k + 1);
    if (added) *added = 1;
    return k;
}

int64_t idmap_find(const idmap *m, const char *s, size_t len)
{
    if (len > UINT32_MAX) return -1;
    size_t i = probe(m, s, len, id_hash(s, len));
    return m->slots[i] == 0 ? -1 : (int64_t)(uint32_t)m->slots[i] - 1;
}

const char *idmap_name(const idmap *m, int64_t i)
{
    if (i < 0 || i >= m->count) return NULL;
    return m->names[i];
}

int64_t idmap_size(const idmap *m) { return m->count; }
