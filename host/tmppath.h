/*
 * tmppath.h - temporary files and directories that a signal must not leave behind.
 *
 * Results and models are written under a temporary name and renamed into place only when
 * complete. A process killed by a signal in between would leave the temporary behind, half
 * written; so each one is registered here while it exists, and a program's signal handler
 * (the CLI installs one for SIGINT, SIGTERM and SIGHUP) calls tmppath_remove_all() before it
 * dies. The library itself never installs a handler. A SIGKILL cannot be caught: what it
 * interrupts stays, under the ".tmp-" name.
 */
#ifndef GPUALS_TMPPATH_H
#define GPUALS_TMPPATH_H

#include <stddef.h>

/* The name of a temporary sibling of path: "<path><tag><pid>-<n>" (tag such as ".tmp-"), with
 * path's last component shortened when needed so the name stays within NAME_MAX bytes (a path
 * whose own name is already 250 bytes long must still get one). Returns 0, or -1 when out (cap
 * bytes) is too small. */
int tmppath_sibling(char *out, size_t cap, const char *path, const char *tag, unsigned n);

/* What a registered path is: a plain file, or a model directory whose files are the names in
 * the list given at registration (removed one by one, then the directory). */
typedef enum { TMPPATH_FILE, TMPPATH_MODEL_DIR } tmppath_kind;

/* Register path (copied) until tmppath_drop; names (for TMPPATH_MODEL_DIR: the file names the
 * directory may hold, NULL-terminated, kept by pointer and so static) may be NULL for a file.
 * Returns a slot for tmppath_drop, or -1 when the path is too long or every slot is taken (the
 * path is then simply not cleaned up by a signal). Thread-safe. */
int tmppath_add(const char *path, tmppath_kind kind, const char *const *names);

/* Forget slot (from tmppath_add; -1 is ignored): the path was renamed into place or removed.
 * Thread-safe. */
void tmppath_drop(int slot);

/* Remove each of names from dir (regular files only, never through a symbolic link: dir itself
 * is opened without following one; anything else there stays), then dir. 0 on success, else
 * -1 with errno set (ENOTEMPTY when dir holds anything else). Async-signal-safe. */
int tmppath_remove_dir(const char *dir, const char *const *names);

/* Remove every registered path now. Async-signal-safe (open, fstatat, unlinkat, unlink, rmdir
 * and close only); meant for a signal handler about to end the process. */
void tmppath_remove_all(void);

#endif /* GPUALS_TMPPATH_H */
