/*
 * npy.c - NumPy .npy files: a writer for version 1.0 and a strict reader.
 *
 * Layout (numpy's format.py, "NPY format" in the NumPy docs):
 *   bytes 0-5   "\x93NUMPY"
 *   bytes 6-7   major, minor version (we write 1, 0)
 *   next 2 (v1) or 4 (v2, v3) bytes: little-endian length H of the header text
 *   H bytes     "{'descr': '<f4', 'fortran_order': False, 'shape': (R, C), }", space padded and
 *               ending in '\n', so that the data starts at a multiple of 64 bytes
 *   then        the elements, C order, in the byte order descr names.
 *
 * The reader parses the header dict as the small Python literal it is (three keys, a quoted
 * type string, True/False, a tuple of integers) instead of searching for substrings, so a
 * damaged header is refused rather than half understood. Elements are stored little-endian;
 * a big-endian host swaps bytes on the way in and out.
 */
#include "npy.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "status.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64
#define NPY_MAX_HEADER (1 << 20)
#define NPY_MAX_DIMS 32
#define NPY_CHUNK (1 << 16)

int npy_itemsize(npy_dtype t) { return t == NPY_INT64 ? 8 : 4; }

const char *npy_descr(npy_dtype t)
{
    switch (t) {
    case NPY_FLOAT32: return "<f4";
    case NPY_INT32: return "<i4";
    case NPY_INT64: return "<i8";
    }
    return "?";
}

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* Reverse the bytes of each of the count elements of size itemsize in buf. */
static void swap_elements(unsigned char *buf, size_t count, int itemsize)
{
    for (size_t e = 0; e < count; e++) {
        unsigned char *p = buf + e * (size_t)itemsize;
        for (int a = 0, b = itemsize - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
    }
}

/* Element count of shape, or -1 on a negative extent or overflow of SIZE_MAX bytes. */
static int64_t element_count(int ndim, const int64_t *shape, int itemsize)
{
    uint64_t count = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return -1;
        uint64_t e = (uint64_t)shape[d];
        if (e != 0 && count > (uint64_t)INT64_MAX / e) return -1;
        count *= e;
    }
    if (count > SIZE_MAX / (uint64_t)itemsize) return -1;
    return (int64_t)count;
}

/* ------------------------------------------------------------------------------------------ */
/* Writing                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* The complete preamble (magic, version, length, padded dict) for t and shape into out (at
 * least 256 bytes); returns its length, a multiple of NPY_ALIGN. */
static size_t build_preamble(npy_dtype t, int ndim, const int64_t *shape, char *out)
{
    char dict[160];
    int len;
    if (ndim == 1)
        len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': "
                       "(%lld,), }", npy_descr(t), (long long)shape[0]);
    else
        len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': "
                       "(%lld, %lld), }", npy_descr(t), (long long)shape[0],
                       (long long)shape[1]);

    /* Pad with spaces so that preamble + newline is a multiple of NPY_ALIGN. */
    size_t fixed = NPY_MAGIC_LEN + 2 + 2;
    size_t total = fixed + (size_t)len + 1;
    total = (total + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    size_t header_len = total - fixed;

    memcpy(out, NPY_MAGIC, NPY_MAGIC_LEN);
    out[6] = 1;
    out[7] = 0;
    out[8] = (char)(header_len & 0xff);
    out[9] = (char)((header_len >> 8) & 0xff);
    memcpy(out + fixed, dict, (size_t)len);
    memset(out + fixed + len, ' ', total - fixed - (size_t)len - 1);
    out[total - 1] = '\n';
    return total;
}

/* Write n bytes to f and feed them to the hash; 0 on a short write. */
static int write_hashed(FILE *f, XXH64_state_t *st, const void *buf, size_t n)
{
    if (n == 0) return 1;
    if (fwrite(buf, 1, n, f) != n) return 0;
    XXH64_update(st, buf, n);
    return 1;
}

/* Write the elements, swapping bytes through a bounce buffer on a big-endian host. */
static int write_elements(FILE *f, XXH64_state_t *st, const unsigned char *data, size_t count,
                          int itemsize)
{
    if (host_is_little_endian()) return write_hashed(f, st, data, count * (size_t)itemsize);
    unsigned char chunk[NPY_CHUNK];
    size_t per_chunk = NPY_CHUNK / (size_t)itemsize;
    for (size_t done = 0; done < count; done += per_chunk) {
        size_t k = count - done < per_chunk ? count - done : per_chunk;
        memcpy(chunk, data + done * (size_t)itemsize, k * (size_t)itemsize);
        swap_elements(chunk, k, itemsize);
        if (!write_hashed(f, st, chunk, k * (size_t)itemsize)) return 0;
    }
    return 1;
}

gpuals_status npy_write(const char *path, npy_dtype t, int ndim, const int64_t *shape,
                        const void *data, uint64_t *xxh, uint64_t *bytes)
{
    /* Check the arguments. */
    if (!path || !shape || (ndim != 1 && ndim != 2))
        return gpuals_fail(GPUALS_ERR_USAGE, "npy_write: need a path and 1 or 2 dimensions");
    int itemsize = npy_itemsize(t);
    int64_t count = element_count(ndim, shape, itemsize);
    if (count < 0)
        return gpuals_fail(GPUALS_ERR_USAGE, "npy_write: %s: invalid shape", path);
    if (count > 0 && !data)
        return gpuals_fail(GPUALS_ERR_USAGE, "npy_write: %s: no data", path);

    /* Open the file and the hash. */
    XXH64_state_t *st = XXH64_createState();
    if (!st) return gpuals_fail(GPUALS_ERR_NOMEM, "npy_write: %s: no memory for a hash", path);
    XXH64_reset(st, 0);
    FILE *f = fopen(path, "wb");
    if (!f) {
        int e = errno;
        XXH64_freeState(st);
        return gpuals_fail(GPUALS_ERR_IO, "%s: cannot create: %s", path, strerror(e));
    }

    /* Preamble, then the elements, then flush to disk. */
    char pre[256];
    size_t pre_len = build_preamble(t, ndim, shape, pre);
    int ok = write_hashed(f, st, pre, pre_len) &&
             write_elements(f, st, data, (size_t)count, itemsize) && fflush(f) == 0 &&
             fsync(fileno(f)) == 0;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    uint64_t digest = XXH64_digest(st);
    XXH64_freeState(st);
    if (!ok) return gpuals_fail(GPUALS_ERR_IO, "%s: write failed: %s", path, strerror(e));

    if (xxh) *xxh = digest;
    if (bytes) *bytes = (uint64_t)pre_len + (uint64_t)count * (uint64_t)itemsize;
    return GPUALS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading: the header dict                                                                   */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    const char *p, *end;
} cursor;

static void skip_space(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int accept_char(cursor *c, char ch)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A Python string literal in single or double quotes (no escapes: numpy writes none in these
 * keys and values) into out (size cap); 0 when malformed or too long. */
static int parse_string(cursor *c, char *out, size_t cap)
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || n + 1 >= cap) return 0;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return 0;
    c->p++;
    out[n] = '\0';
    return 1;
}

/* True or False; 0 when neither. */
static int parse_bool(cursor *c, int *value)
{
    skip_space(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
        c->p += 4;
        *value = 1;
        return 1;
    }
    if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        c->p += 5;
        *value = 0;
        return 1;
    }
    return 0;
}

/* A tuple of non-negative integers such as (), (5,) or (3, 4); 0 when malformed. */
static int parse_shape(cursor *c, int64_t *shape, int *ndim)
{
    if (!accept_char(c, '(')) return 0;
    *ndim = 0;
    for (;;) {
        if (accept_char(c, ')')) return 1;
        skip_space(c);
        if (c->p >= c->end || *c->p < '0' || *c->p > '9' || *ndim >= NPY_MAX_DIMS) return 0;
        int64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            int digit = *c->p++ - '0';
            if (v > (INT64_MAX - digit) / 10) return 0;
            v = v * 10 + digit;
        }
        shape[(*ndim)++] = v;
        if (accept_char(c, ',')) continue;
        return accept_char(c, ')');
    }
}

typedef struct {
    char descr[16];
    int fortran_order;
    int64_t shape[NPY_MAX_DIMS];
    int ndim;
} npy_header;

/* Parse the header dict text[0..len); 0 with a reason in *why when malformed. */
static int parse_header(const char *text, size_t len, npy_header *h, const char **why)
{
    cursor c = {text, text + len};
    int seen_descr = 0, seen_order = 0, seen_shape = 0;
    *why = "malformed header";
    if (!accept_char(&c, '{')) return 0;
    while (!accept_char(&c, '}')) {
        char key[32];
        if (!parse_string(&c, key, sizeof key) || !accept_char(&c, ':')) return 0;
        if (strcmp(key, "descr") == 0 && !seen_descr) {
            if (!parse_string(&c, h->descr, sizeof h->descr)) return 0;
            seen_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0 && !seen_order) {
            if (!parse_bool(&c, &h->fortran_order)) return 0;
            seen_order = 1;
        } else if (strcmp(key, "shape") == 0 && !seen_shape) {
            if (!parse_shape(&c, h->shape, &h->ndim)) return 0;
            seen_shape = 1;
        } else {
            *why = "unexpected or repeated key in the header";
            return 0;
        }
        if (!accept_char(&c, ',')) {
            if (!accept_char(&c, '}')) return 0;
            break;
        }
    }
    skip_space(&c);
    if (c.p != c.end) return 0;
    if (!seen_descr || !seen_order || !seen_shape) {
        *why = "header lacks descr, fortran_order or shape";
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading: the file                                                                          */
/* ------------------------------------------------------------------------------------------ */

/* Read exactly n bytes into buf and hash them; 0 on a short read. */
static int read_hashed(FILE *f, XXH64_state_t *st, void *buf, size_t n)
{
    if (n == 0) return 1;
    if (fread(buf, 1, n, f) != n) return 0;
    XXH64_update(st, buf, n);
    return 1;
}

/* Read and check the preamble; on success the file is positioned at the data. */
static gpuals_status read_preamble(FILE *f, XXH64_state_t *st, const char *path,
                                   npy_header *h)
{
    /* Magic and version. */
    unsigned char head[8];
    if (!read_hashed(f, st, head, sizeof head) || memcmp(head, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s: not an .npy file (bad magic bytes)", path);
    int major = head[6];
    if (major < 1 || major > 3)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s: unsupported .npy version %d.%d", path, major,
                           head[7]);

    /* Header length: 2 bytes in version 1, 4 bytes after. */
    unsigned char lenbuf[4] = {0, 0, 0, 0};
    size_t lenbytes = major == 1 ? 2 : 4;
    if (!read_hashed(f, st, lenbuf, lenbytes))
        return gpuals_fail(GPUALS_ERR_PARSE, "%s: truncated .npy header", path);
    uint32_t header_len = (uint32_t)lenbuf[0] | (uint32_t)lenbuf[1] << 8 |
                          (uint32_t)lenbuf[2] << 16 | (uint32_t)lenbuf[3] << 24;
    if (header_len == 0 || header_len > NPY_MAX_HEADER)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s: implausible .npy header length %u", path,
                           header_len);

    /* The dict itself. */
    char *text = malloc(header_len);
    if (!text) return gpuals_fail(GPUALS_ERR_NOMEM, "%s: no memory for the header", path);
    if (!read_hashed(f, st, text, header_len)) {
        free(text);
        return gpuals_fail(GPUALS_ERR_PARSE, "%s: truncated .npy header", path);
    }
    const char *why;
    int ok = parse_header(text, header_len, h, &why);
    free(text);
    if (!ok) return gpuals_fail(GPUALS_ERR_PARSE, "%s: %s", path, why);
    return GPUALS_OK;
}

/* Check that the parsed header describes what the caller asked for. */
static gpuals_status check_header(const npy_header *h, const char *path, npy_dtype t, int ndim)
{
    if (strcmp(h->descr, npy_descr(t)) != 0)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s: element type '%s', expected '%s'", path,
                           h->descr, npy_descr(t));
    if (h->fortran_order)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s: Fortran order, expected C order", path);
    if (h->ndim != ndim)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s: %d dimension(s), expected %d", path, h->ndim,
                           ndim);
    return GPUALS_OK;
}

/* Read the count elements of the data section into a new buffer, refusing short and long
 * files: a regular file's size is compared with what the header promises before anything is
 * allocated from it, so a damaged shape cannot ask for more memory than the file holds. */
static gpuals_status read_data(FILE *f, XXH64_state_t *st, const char *path, size_t count,
                               int itemsize, void **data)
{
    size_t want = count * (size_t)itemsize;
    struct stat sb;
    long pos = ftell(f);
    if (pos >= 0 && fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode)) {
        uint64_t have = sb.st_size > pos ? (uint64_t)(sb.st_size - pos) : 0;
        if (have < want)
            return gpuals_fail(GPUALS_ERR_PARSE,
                               "%s: truncated: the header promises %zu bytes of data, the file "
                               "has %llu", path, want, (unsigned long long)have);
        if (have > want)
            return gpuals_fail(GPUALS_ERR_PARSE,
                               "%s: longer than its header says (%zu bytes of data expected)",
                               path, want);
    }
    unsigned char *buf = malloc(want ? want : 1);
    if (!buf)
        return gpuals_fail(GPUALS_ERR_NOMEM, "%s: no memory for %zu bytes of data", path, want);
    size_t got = want ? fread(buf, 1, want, f) : 0;
    if (got != want) {
        int err = ferror(f);
        free(buf);
        if (err) return gpuals_fail(GPUALS_ERR_IO, "%s: read failed", path);
        return gpuals_fail(GPUALS_ERR_PARSE,
                           "%s: truncated: the header promises %zu bytes of data, the file "
                           "has %zu", path, want, got);
    }
    XXH64_update(st, buf, want);
    unsigned char extra;
    if (fread(&extra, 1, 1, f) == 1) {
        free(buf);
        return gpuals_fail(GPUALS_ERR_PARSE,
                           "%s: longer than its header says (%zu bytes of data expected)",
                           path, want);
    }
    if (!host_is_little_endian()) swap_elements(buf, count, itemsize);
    *data = buf;
    return GPUALS_OK;
}

gpuals_status npy_read(const char *path, npy_dtype t, int ndim, int64_t *shape, void **data,
                       uint64_t *xxh)
{
    /* Check the arguments and open the file. */
    if (!path || !shape || !data || ndim < 1 || ndim > NPY_MAX_DIMS)
        return gpuals_fail(GPUALS_ERR_USAGE, "npy_read: invalid arguments");
    *data = NULL;
    XXH64_state_t *st = XXH64_createState();
    if (!st) return gpuals_fail(GPUALS_ERR_NOMEM, "%s: no memory for a hash", path);
    XXH64_reset(st, 0);
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        XXH64_freeState(st);
        return gpuals_fail(GPUALS_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }

    /* Header, its agreement with the request, then the data. */
    npy_header h;
    int itemsize = npy_itemsize(t);
    gpuals_status s = read_preamble(f, st, path, &h);
    if (s == GPUALS_OK) s = check_header(&h, path, t, ndim);
    int64_t count = 0;
    if (s == GPUALS_OK) {
        count = element_count(ndim, h.shape, itemsize);
        if (count < 0) s = gpuals_fail(GPUALS_ERR_PARSE, "%s: shape too large", path);
    }
    if (s == GPUALS_OK) s = read_data(f, st, path, (size_t)count, itemsize, data);
    fclose(f);
    uint64_t digest = XXH64_digest(st);
    XXH64_freeState(st);
    if (s != GPUALS_OK) return s;

    memcpy(shape, h.shape, (size_t)ndim * sizeof *shape);
    if (xxh) *xxh = digest;
    return GPUALS_OK;
}
