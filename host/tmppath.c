/*
 * tmppath.c - the registry of temporary paths removed on a fatal signal (tmppath.h).
 *
 * A fixed table, so that the signal handler touches no allocator: a slot's path is written
 * while the slot is free, then published by setting its state with a release store; the
 * handler reads the state with an acquire load and only then the path. Adding and dropping
 * take a mutex among themselves.
 */
#include "tmppath.h"

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
    int state; /* 0 free, 1 in use (atomic) */
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
        if (__atomic_load_n(&slots[k].state, __ATOMIC_RELAXED) != 0) continue;
        memcpy(slots[k].path, path, len + 1);
        slots[k].kind = kind;
        slots[k].names = names;
        __atomic_store_n(&slots[k].state, 1, __ATOMIC_RELEASE);
        found = k;
    }
    pthread_mutex_unlock(&slots_lock);
    return found;
}

void tmppath_drop(int slot)
{
    if (slot < 0 || slot >= TMPPATH_SLOTS) return;
    pthread_mutex_lock(&slots_lock);
    __atomic_store_n(&slots[slot].state, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&slots_lock);
}

/* Remove each of names from dir (regular files only, never through a symbolic link: dir
 * itself is opened without following one), then dir; failures are ignored. */
static void remove_dir_files(const char *dir, const char *const *names)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    for (const char *const *n = names; n != NULL && *n != NULL; n++) {
        struct stat st;
        if (fstatat(fd, *n, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            unlinkat(fd, *n, 0);
    }
    close(fd);
    rmdir(dir);
}

void tmppath_remove_all(void)
{
    for (int k = 0; k < TMPPATH_SLOTS; k++) {
        if (__atomic_load_n(&slots[k].state, __ATOMIC_ACQUIRE) == 0) continue;
        if (slots[k].kind == TMPPATH_FILE) unlink(slots[k].path);
        else remove_dir_files(slots[k].path, slots[k].names);
    }
}
