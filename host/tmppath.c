/*
 * tmppath.c - the registry of temporary paths removed on a fatal signal (tmppath.h).
 *
 * A fixed table, so that the signal handler touches no allocator. Each slot has a generation
 * count, even while the slot is free and odd while it is in use: its path is written only
 * while the count is even, then published by a release store of the next (odd) count, and
 * dropping stores the next even one. The handler copies a slot in use and keeps the copy only
 * if the count did not change meanwhile, so a slot dropped and taken again by another thread
 * while the handler reads it is never seen half rewritten. Adding and dropping take a mutex
 * among themselves.
 */
#include "tmppath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMPPATH_SLOTS 32
#define TMPPATH_MAX 4096

typedef struct {
    unsigned gen; /* even: free; odd: in use (atomic) */
    tmppath_kind kind;
    const char *const *names;
    char path[TMPPATH_MAX];
} tmp_slot;

static tmp_slot slots[TMPPATH_SLOTS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

int tmppath_sibling(char *out, size_t cap, const char *path, const char *tag, unsigned n)
{
    char suffix[64];
    int sl = snprintf(suffix, sizeof suffix, "%s%ld-%u", tag, (long)getpid(), n);
    const char *slash = strrchr(path, '/');
    size_t base_at = slash ? (size_t)(slash - path) + 1 : 0, len = strlen(path);
    size_t keep = len - base_at; /* bytes of the last component kept */
    if (keep + (size_t)sl > NAME_MAX) {
        keep = NAME_MAX > (size_t)sl ? NAME_MAX - (size_t)sl : 0;
        /* Not in the middle of a UTF-8 character (some file systems want valid names). */
        while (keep > 0 && ((unsigned char)path[base_at + keep] & 0xC0) == 0x80) keep--;
    }
    int w = snprintf(out, cap, "%.*s%s", (int)(base_at + keep), path, suffix);
    return w > 0 && (size_t)w < cap ? 0 : -1;
}

int tmppath_add(const char *path, tmppath_kind kind, const char *const *names)
{
    size_t len = strlen(path);
    if (len >= TMPPATH_MAX) return -1;
    int found = -1;
    pthread_mutex_lock(&slots_lock);
    for (int k = 0; k < TMPPATH_SLOTS && found < 0; k++) {
        unsigned gen = __atomic_load_n(&slots[k].gen, __ATOMIC_RELAXED);
        if (gen & 1u) continue;
        memcpy(slots[k].path, path, len + 1);
        slots[k].kind = kind;
        slots[k].names = names;
        __atomic_store_n(&slots[k].gen, gen + 1, __ATOMIC_RELEASE);
        found = k;
    }
    pthread_mutex_unlock(&slots_lock);
    return found;
}

void tmppath_drop(int slot)
{
    if (slot < 0 || slot >= TMPPATH_SLOTS) return;
    pthread_mutex_lock(&slots_lock);
    unsigned gen = __atomic_load_n(&slots[slot].gen, __ATOMIC_RELAXED);
    if (gen & 1u) __atomic_store_n(&slots[slot].gen, gen + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&slots_lock);
}

int tmppath_remove_dir(const char *dir, const char *const *names)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    int err = 0;
    for (const char *const *n = names; n != NULL && *n != NULL; n++) {
        struct stat st;
        if (fstatat(fd, *n, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
        if (unlinkat(fd, *n, 0) != 0 && err == 0) err = errno;
    }
    close(fd);
    if (err) {
        errno = err;
        return -1;
    }
    return rmdir(dir);
}

void tmppath_remove_all(void)
{
    char path[TMPPATH_MAX]; /* on the stack: two signals may be handled at once */
    for (int k = 0; k < TMPPATH_SLOTS; k++) {
        unsigned gen = __atomic_load_n(&slots[k].gen, __ATOMIC_ACQUIRE);
        if (!(gen & 1u)) continue;
        memcpy(path, slots[k].path, sizeof path);
        tmppath_kind kind = slots[k].kind;
        const char *const *names = slots[k].names;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&slots[k].gen, __ATOMIC_RELAXED) != gen) continue;
        path[sizeof path - 1] = '\0';
        if (kind == TMPPATH_FILE) unlink(path);
        else tmppath_remove_dir(path, names);
    }
}
