/*
 * reader_lines.c - a line source that reads a file in large blocks.
 *
 * One buffer of READER_BLOCK bytes (less for a small file) is filled with read(2); lines are
 * found with memchr and
 * handed out as pointers into the buffer, so no line is copied or allocated. When the next
 * newline is not in the buffer, the unread tail moves to the front and the rest of the buffer
 * is refilled. The buffer is much larger than READER_MAX_LINE, so a line that does not fit in
 * what is left after that move is overlong: it is reported once as LINE_LONG and its bytes are
 * discarded up to the next newline without being kept. Peak memory is the one buffer, which
 * matters for multi-gigabyte rating files (mmap would make the whole file resident).
 */
#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "status.h"

#define READER_BLOCK ((size_t)4 << 20)

/* Open path and allocate the block buffer (see reader.h). */
gpuals_status line_reader_open(line_reader *r, const char *path)
{
    *r = (line_reader){.path = path, .fd = -1};

    /* Open and refuse directories (open(2) itself accepts them for reading). */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return gpuals_fail(GPUALS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return gpuals_fail(GPUALS_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return gpuals_fail(GPUALS_ERR_IO, "cannot read '%s': %s", path, strerror(EISDIR));
    }
    if (S_ISREG(st.st_mode)) {
        r->size_hint = (int64_t)st.st_size;
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    }

    /* The block buffer: smaller for a small file, but always room for two maximal lines,
     * which the overlong-line logic relies on (the size may change while we read). */
    size_t cap = READER_BLOCK;
    if (r->size_hint > 0 && (uint64_t)r->size_hint < cap) cap = (size_t)r->size_hint + 1;
    if (cap < 2 * READER_MAX_LINE + 2) cap = 2 * READER_MAX_LINE + 2;
    r->buf = malloc(cap);
    if (!r->buf) {
        close(fd);
        return gpuals_fail(GPUALS_ERR_NOMEM, "no memory for a %zu-byte read buffer for '%s'",
                           cap, path);
    }
    r->cap = cap;
    r->fd = fd;
    return GPUALS_OK;
}

/* Move the unread tail to the front and read until the buffer is full or the file ends.
 * 0 on success, -1 after recording a read error. */
static int refill(line_reader *r)
{
    size_t tail = r->len - r->pos;
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, tail);
        r->pos = 0;
        r->len = tail;
    }
    while (!r->eof && r->len < r->cap) {
        ssize_t got = read(r->fd, r->buf + r->len, r->cap - r->len);
        if (got < 0) {
            if (errno == EINTR) continue;
            gpuals_fail(GPUALS_ERR_IO, "cannot read '%s': %s", r->path, strerror(errno));
            return -1;
        }
        if (got == 0) r->eof = 1;
        r->len += (size_t)got;
    }
    return 0;
}

/* Discard bytes up to and including the next newline (or to the end of the file). */
static int skip_rest_of_line(line_reader *r)
{
    for (;;) {
        char *nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
        if (nl) {
            r->pos = (size_t)(nl - r->buf) + 1;
            return 0;
        }
        r->pos = r->len;
        if (r->eof) return 0;
        if (refill(r) != 0) return -1;
    }
}

/* Hand out the next line (see reader.h). */
int line_reader_next(line_reader *r, const char **s, size_t *n)
{
    *s = NULL;
    *n = 0;
    for (;;) {
        /* A whole line in the buffer, or the last line of the file. */
        char *start = r->buf + r->pos;
        size_t avail = r->len - r->pos;
        char *nl = memchr(start, '\n', avail);
        size_t len;
        if (nl) {
            len = (size_t)(nl - start);
            r->pos += len + 1;
            r->newlines++;
        } else if (r->eof) {
            if (avail == 0) return LINE_END;
            len = avail;
            r->pos = r->len;
        } else if (avail > READER_MAX_LINE) {
            /* No newline within the limit: overlong; drop the rest of it. */
            r->line_no++;
            r->pos = r->len;
            return skip_rest_of_line(r) == 0 ? LINE_LONG : LINE_ERROR;
        } else {
            if (refill(r) != 0) return LINE_ERROR;
            continue;
        }

        /* Number it, strip CR and (on line 1) a byte-order mark, check the length. */
        r->line_no++;
        if (len > 0 && start[len - 1] == '\r') len--;
        if (r->line_no == 1 && len >= 3 && memcmp(start, "\xEF\xBB\xBF", 3) == 0) {
            start += 3;
            len -= 3;
        }
        if (len > READER_MAX_LINE) return LINE_LONG;
        *s = start;
        *n = len;
        return LINE_OK;
    }
}

/* Close the file and release the buffer (see reader.h). */
void line_reader_close(line_reader *r)
{
    if (r->fd >= 0) close(r->fd);
    free(r->buf);
    r->fd = -1;
    r->buf = NULL;
    r->pos = r->len = r->cap = 0;
}

void reader_excerpt(char *dst, size_t cap, const char *s, size_t n, size_t shown)
{
    size_t w = 0;
    if (shown > n) shown = n;
    dst[w++] = '\'';
    for (size_t i = 0; i < shown && w + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F) {
            dst[w++] = (char)c;
        } else {
            snprintf(dst + w, cap - w, "\\x%02X", c);
            w += 4;
        }
    }
    if (shown < n && w + 4 < cap) {
        memcpy(dst + w, "...", 3);
        w += 3;
    }
    dst[w++] = '\'';
    dst[w] = '\0';
}
