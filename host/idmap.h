/*
 * idmap.h - raw id text <-> dense index.
 *
 * Raw ids are kept as the exact bytes of the input field (integers of any size or strings), so
 * two distinct raw ids never share an index. Indices are given in order of first appearance.
 */
#ifndef GPUALS_IDMAP_H
#define GPUALS_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct idmap idmap;

idmap *idmap_new(void);
void idmap_free(idmap *m);

/* Index of the id s[0..len), adding it if new; -1 when out of memory. *added (may be NULL) is
 * set to 1 when the id was new. */
int64_t idmap_intern(idmap *m, const char *s, size_t len, int *added);

/* Index of the id, or -1 when absent. */
int64_t idmap_find(const idmap *m, const char *s, size_t len);

/* The raw id of index i (NUL-terminated, owned by the map). */
const char *idmap_name(const idmap *m, int64_t i);

int64_t idmap_size(const idmap *m);

#endif /* GPUALS_IDMAP_H */
