/*
 * model_io.c - a model as a directory of files: gpuals_model_save and gpuals_model_load.
 *
 * Layout of a model directory (format version 1):
 *   meta.json          format name and version, gpu-als version, shapes, every training
 *                      setting, the data summary (with the min_rating of the load, null for
 *                      none), final loss, training seconds, the iterations run (null when not
 *                      known), the device, and for every other file its size and XXH64
 *                      checksum (hex)
 *   user_factors.npy   float32 n_users x factors, C order
 *   item_factors.npy   float32 n_items x factors, C order
 *   indptr.npy         int64 n_users + 1   \  the training confidences as CSR:
 *   indices.npy        int32 nnz            > scipy.sparse.csr_matrix((data, indices, indptr),
 *   data.npy           float32 nnz         /  shape=(n_users, n_items)) rebuilds it
 *   users.tsv          "index\tid" header, then one line per user
 *   items.tsv          "index\tid\ttitle" header, then one line per item (empty: no title)
 * In the .tsv files a backslash, tab, newline or carriage return inside an id or title is
 * written as \\, \t, \n or \r.
 *
 * Saving writes everything into a new directory "<path>.tmp-<pid>-<n>" beside path, flushes
 * it to disk, and only then renames it to path. A previous model directory at path (one whose
 * meta.json names the model format and which holds the model's files and nothing else) is
 * swapped with the new one in a single rename (RENAME_EXCHANGE; on a file system without it,
 * moved aside to "<path>.old-<pid>-<n>" first), so path never holds part of a model, and is
 * then removed file by file: only regular files with the model's names, never through a link,
 * and only when it still is such a directory. Anything else at path other than an empty
 * directory (a file, a symbolic link, a directory holding any other file) is left alone and
 * the save fails, so a save never deletes what it did not write. Any failure removes the
 * temporary directory, and so does a fatal signal in a program that calls
 * tmppath_remove_all() from its handler (the CLI does), so a half-written model never
 * appears at path or stays beside it. path's folder is resolved first, so "m/../m" is m.
 *
 * Loading reads meta.json (an empty, truncated or invalid one is GPUALS_ERR_MISMATCH), checks
 * that the shapes it records fit the file sizes it records (so a damaged shape such as 10^12
 * users is refused before anything is allocated from it), then that every file is there with
 * the recorded size, and only then, file by file, the checksum over the file's bytes as they
 * are, before any parsing, followed by its structure (npy header, tsv fields) and its shape
 * against meta.json. Every failure of a directory that is damaged or not a model is
 * GPUALS_ERR_MISMATCH naming the file at fault (a parse failure of a file whose checksum matched
 * included).
 *
 * Which directories are models: a path that does not exist, that is not a directory, or a
 * directory holding none of the model's files (meta.json and the seven above) is not a model,
 * GPUALS_ERR_IO, as a missing input file is. A directory holding any of them is a model
 * directory, and one of its files that is missing, not a regular file or cannot be opened
 * (meta.json included) makes it incomplete: GPUALS_ERR_MISMATCH naming the file, except that a
 * file it lacks the permission to read is GPUALS_ERR_IO, as any unreadable input. Factors, ids,
 * titles and the training matrix come back bit-identical, so every query answers exactly as
 * before saving. summary.min_rating and iterations_run were added to version 1 later: a
 * meta.json without them loads as a model of unfiltered data (-inf) whose iterations are unknown
 * (-1), as those models behaved.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <xxhash.h>

#include "model.h"
#include "npy.h"
#include "status.h"
#include "tmppath.h"

#define MODEL_FORMAT "gpu-als model"
#define MODEL_FORMAT_VERSION 1

/* meta.json is small: a larger file is not one. */
#define META_MAX_BYTES ((off_t)16 << 20)

enum { F_USER_FACTORS, F_ITEM_FACTORS, F_INDPTR, F_INDICES, F_DATA, F_USERS, F_ITEMS, N_FILES };

/* The files of a model directory: the N_FILES with checksums, then meta.json (NULL-ended). */
static const char *const file_names[N_FILES + 2] = {
    "user_factors.npy", "item_factors.npy", "indptr.npy", "indices.npy", "data.npy",
    "users.tsv",        "items.tsv",        "meta.json",  NULL,
};

typedef struct {
    uint64_t bytes;
    uint64_t xxh;
} file_sum;

/* Names of the enumerated settings, indexed by their values. */
static const char *const reg_scale_names[] = {"none", "frequency"};
static const char *const confidence_names[] = {"implicit", "hu", "log"};
static const char *const solver_names[] = {"cg", "cholesky"};
static const char *const dtype_names[] = {"float32", "float64"};
static const char *const device_names[] = {"auto", "cpu", "gpu"};
#define COUNT_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ------------------------------------------------------------------------------------------ */
/* Small helpers: paths, growing text, files, directories                                     */
/* ------------------------------------------------------------------------------------------ */

/* dir + "/" + name into a new string (NULL when out of memory). */
static char *join_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* A new, empty directory beside path named path + suffix + "<pid>-<n>" (tmppath_sibling; n
 * counts up until the name is free), made with mkdir's usual permissions; its name into a new
 * string, or NULL with errno set. Never touches anything that already exists. With slot, the
 * directory is registered for the signal cleanup (tmppath.h) under *slot (-1 on failure). */
static char *unique_sibling_dir(const char *path, const char *suffix, int *slot)
{
    static unsigned counter;
    size_t cap = strlen(path) + strlen(suffix) + 48;
    char *p = malloc(cap);
    if (!p) return NULL;
    for (int tries = 0; tries < 1000; tries++) {
        unsigned n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        if (tmppath_sibling(p, cap, path, suffix, n) != 0) {
            errno = ENAMETOOLONG;
            break;
        }
        /* Registered before it exists, so a signal never leaves it behind, even empty. */
        if (slot) *slot = tmppath_add(p, TMPPATH_MODEL_DIR, file_names);
        if (mkdir(p, 0777) == 0) return p;
        int e = errno;
        if (slot) {
            tmppath_drop(*slot);
            *slot = -1;
        }
        errno = e;
        if (errno != EEXIST) break;
    }
    int e = errno;
    free(p);
    errno = e;
    return NULL;
}

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} text_buf;

static void text_reserve(text_buf *t, size_t more)
{
    if (t->failed || t->len + more + 1 <= t->cap) return;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + more + 1) cap *= 2;
    char *p = realloc(t->p, cap);
    if (!p) {
        t->failed = 1;
        return;
    }
    t->p = p;
    t->cap = cap;
}

static void text_add(text_buf *t, const char *s, size_t n)
{
    text_reserve(t, n);
    if (t->failed) return;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

/* Append s with backslash, tab, newline and carriage return escaped. */
static void text_add_escaped(text_buf *t, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '\\': text_add(t, "\\\\", 2); break;
        case '\t': text_add(t, "\\t", 2); break;
        case '\n': text_add(t, "\\n", 2); break;
        case '\r': text_add(t, "\\r", 2); break;
        default: text_add(t, s, 1); break;
        }
    }
}

static void text_add_index(text_buf *t, int64_t k)
{
    char num[32];
    int n = snprintf(num, sizeof num, "%" PRId64, k);
    text_add(t, num, (size_t)n);
}

/* Write len bytes to path (created or truncated) and flush them to disk. */
static gpuals_status write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return gpuals_fail(GPUALS_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    int ok = (len == 0 || fwrite(data, 1, len, f) == len) && fflush(f) == 0 &&
             fsync(fileno(f)) == 0;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok) return gpuals_fail(GPUALS_ERR_IO, "%s: write failed: %s", path, strerror(e));
    return GPUALS_OK;
}

/* Flush a directory's entries to disk (best effort: some file systems refuse). */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    fsync(fd);
    close(fd);
}

/* Remove the model's files from dir, then dir (tmppath_remove_dir: whatever else is there
 * stays, and nothing is removed through a link). */
static int remove_model_dir(const char *dir) { return tmppath_remove_dir(dir, file_names); }

/* 1 when name is one of the files of a model directory. */
static int is_model_file(const char *name)
{
    for (int k = 0; file_names[k] != NULL; k++)
        if (strcmp(name, file_names[k]) == 0) return 1;
    return 0;
}

/* 1 when meta.json in dir is a regular file of plausible size whose "format" is ours. */
static int meta_is_ours(const char *dir)
{
    char *meta = join_path(dir, "meta.json");
    struct stat st;
    int ours = 0;
    if (meta && lstat(meta, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= META_MAX_BYTES) {
        json_t *root = json_load_file(meta, 0, NULL);
        const char *format = json_string_value(json_object_get(root, "format"));
        ours = format && strcmp(format, MODEL_FORMAT) == 0;
        json_decref(root);
    }
    free(meta);
    return ours;
}

/* Whether a save may replace the directory dir: it is empty, or it is a model directory and
 * nothing else (its meta.json names the gpu-als model format and every entry is a regular file
 * named like one of the model's files), so replacing it loses nothing but the earlier model.
 * When it may not, why (of why_len bytes) says what is in the way. */
static int replaceable_dir(const char *dir, char *why, size_t why_len)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(why, why_len, "cannot list it: %s", strerror(errno));
        return 0;
    }
    int entries = 0, ok = 1;
    struct dirent *e;
    while (ok && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        entries++;
        char *p = join_path(dir, e->d_name);
        struct stat st;
        if (!is_model_file(e->d_name)) {
            snprintf(why, why_len, "it holds %s, which is not a model file", e->d_name);
            ok = 0;
        } else if (!p || lstat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
            snprintf(why, why_len, "its %s is not a regular file", e->d_name);
            ok = 0;
        }
        free(p);
    }
    closedir(d);
    if (ok && entries > 0 && !meta_is_ours(dir)) {
        snprintf(why, why_len, "it has no meta.json of a gpu-als model");
        ok = 0;
    }
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* Saving                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* One .npy file of the model into dir, recording its size and checksum. */
static gpuals_status save_npy(const char *dir, int which, npy_dtype t, int ndim,
                              int64_t d0, int64_t d1, const void *data, file_sum *sums)
{
    char *path = join_path(dir, file_names[which]);
    if (!path) return gpuals_fail(GPUALS_ERR_NOMEM, "model save: out of memory");
    int64_t shape[2] = {d0, d1};
    gpuals_status s = npy_write(path, t, ndim, shape, data, &sums[which].xxh,
                                &sums[which].bytes);
    free(path);
    return s;
}

/* users.tsv or items.tsv: index, raw id and (items) title per line. */
static gpuals_status save_tsv(const gpuals_model *m, const char *dir, int which,
                              file_sum *sums)
{
    /* Build the text. */
    int items = which == F_ITEMS;
    int64_t n = items ? m->n_items : m->n_users;
    text_buf t = {NULL, 0, 0, 0};
    text_add(&t, items ? "index\tid\ttitle\n" : "index\tid\n", items ? 15 : 9);
    for (int64_t k = 0; k < n; k++) {
        text_add_index(&t, k);
        text_add(&t, "\t", 1);
        text_add_escaped(&t, items ? gpuals_model_item_id(m, k) : gpuals_model_user_id(m, k));
        if (items) {
            text_add(&t, "\t", 1);
            text_add_escaped(&t, gpuals_model_item_title(m, k));
        }
        text_add(&t, "\n", 1);
    }
    if (t.failed) {
        free(t.p);
        return gpuals_fail(GPUALS_ERR_NOMEM, "model save: out of memory for %s",
                           file_names[which]);
    }

    /* Checksum and write it. */
    sums[which].bytes = t.len;
    sums[which].xxh = XXH64(t.p, t.len, 0);
    char *path = join_path(dir, file_names[which]);
    gpuals_status s = path ? write_file(path, t.p, t.len)
                           : gpuals_fail(GPUALS_ERR_NOMEM, "model save: out of memory");
    free(path);
    free(t.p);
    return s;
}

/* A uint64 as a JSON integer when it fits json_int_t, else as a decimal string. */
static json_t *json_u64(uint64_t v)
{
    if (v <= (uint64_t)INT64_MAX) return json_integer((json_int_t)v);
    char num[32];
    snprintf(num, sizeof num, "%" PRIu64, v);
    return json_string(num);
}

static const char *enum_name(const char *const *names, int count, int v)
{
    return (v >= 0 && v < count) ? names[v] : "?";
}

static json_t *params_json(const gpuals_params *p)
{
    return json_pack("{s:i, s:f, s:s, s:f, s:s, s:f, s:i, s:s, s:i, s:o, s:i, s:s, s:b, s:s}",
                     "factors", p->factors, "reg", p->reg, "reg_scale",
                     enum_name(reg_scale_names, COUNT_OF(reg_scale_names), p->reg_scale),
                     "alpha", p->alpha, "confidence",
                     enum_name(confidence_names, COUNT_OF(confidence_names), p->confidence),
                     "eps", p->eps, "iters", p->iters, "solver",
                     enum_name(solver_names, COUNT_OF(solver_names), p->solver), "cg_steps",
                     p->cg_steps, "seed", json_u64(p->seed), "threads", p->threads, "dtype",
                     enum_name(dtype_names, COUNT_OF(dtype_names), p->dtype), "compute_loss",
                     p->compute_loss != 0, "device",
                     enum_name(device_names, COUNT_OF(device_names), p->device));
}

/* The summary; a min_rating of -inf (no filter), which JSON cannot hold, is null. */
static json_t *summary_json(const gpuals_summary *s)
{
    json_t *min = isfinite(s->min_rating) ? json_real(s->min_rating) : json_null();
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "raw_lines",
                     (json_int_t)s->raw_lines, "kept_lines", (json_int_t)s->kept_lines,
                     "bad_lines", (json_int_t)s->bad_lines, "filtered_lines",
                     (json_int_t)s->filtered_lines, "zero_lines", (json_int_t)s->zero_lines,
                     "duplicates", (json_int_t)s->duplicates, "users", (json_int_t)s->users,
                     "items", (json_int_t)s->items, "stored", (json_int_t)s->stored,
                     "first_bad_line", (json_int_t)s->first_bad_line, "min_rating", min);
}

static json_t *files_json(const file_sum *sums)
{
    json_t *files = json_object();
    for (int k = 0; files && k < N_FILES; k++) {
        char hex[17];
        snprintf(hex, sizeof hex, "%016" PRIx64, sums[k].xxh);
        json_t *entry = json_pack("{s:I, s:s}", "bytes", (json_int_t)sums[k].bytes, "xxh64",
                                  hex);
        if (!entry || json_object_set_new(files, file_names[k], entry) != 0) {
            json_decref(files);
            return NULL;
        }
    }
    return files;
}

/* meta.json, written last: it records the checksums of the other files. */
static gpuals_status save_meta(const gpuals_model *m, const char *dir, const file_sum *sums)
{
    /* Build the document (json_pack steals the "o" references, also on failure). */
    json_t *loss = isfinite(m->final_loss) ? json_real(m->final_loss) : json_null();
    json_t *iters = m->iterations_run >= 0 ? json_integer(m->iterations_run) : json_null();
    json_t *root = json_pack(
        "{s:s, s:i, s:s, s:{s:I, s:I, s:i, s:I}, s:o, s:o, s:b, s:o, s:f, s:o, s:s, s:s, s:o}",
        "format", MODEL_FORMAT, "format_version", MODEL_FORMAT_VERSION, "gpuals_version",
        GPUALS_VERSION, "shape", "users", (json_int_t)m->n_users, "items",
        (json_int_t)m->n_items, "factors", m->factors, "nnz", (json_int_t)m->conf.nnz,
        "params", params_json(&m->params), "summary", summary_json(&m->summary),
        "has_titles", m->titles != NULL, "final_loss", loss, "train_seconds",
        m->train_seconds, "iterations_run", iters, "device_used",
        enum_name(device_names, COUNT_OF(device_names), m->device_used), "device_note",
        m->device_note, "files", files_json(sums));
    if (!root)
        return gpuals_fail(GPUALS_ERR_NOMEM, "model save: cannot build meta.json (out of "
                           "memory, or a setting that is not finite or not UTF-8)");

    /* Write it with full double precision. */
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(root);
    if (!text) return gpuals_fail(GPUALS_ERR_NOMEM, "model save: cannot format meta.json");
    size_t len = strlen(text);
    text[len] = '\n';
    char *path = join_path(dir, "meta.json");
    gpuals_status s = path ? write_file(path, text, len + 1)
                           : gpuals_fail(GPUALS_ERR_NOMEM, "model save: out of memory");
    free(path);
    free(text);
    return s;
}

/* Every file of the model into the (new, empty) directory dir. */
static gpuals_status save_files(const gpuals_model *m, const char *dir)
{
    file_sum sums[N_FILES];
    memset(sums, 0, sizeof sums);
    const csr *c = &m->conf;
    GPUALS_TRY(save_npy(dir, F_USER_FACTORS, NPY_FLOAT32, 2, m->n_users, m->factors, m->X,
                        sums));
    GPUALS_TRY(save_npy(dir, F_ITEM_FACTORS, NPY_FLOAT32, 2, m->n_items, m->factors, m->Y,
                        sums));
    GPUALS_TRY(save_npy(dir, F_INDPTR, NPY_INT64, 1, c->rows + 1, 0, c->indptr, sums));
    GPUALS_TRY(save_npy(dir, F_INDICES, NPY_INT32, 1, c->nnz, 0, c->indices, sums));
    GPUALS_TRY(save_npy(dir, F_DATA, NPY_FLOAT32, 1, c->nnz, 0, c->data, sums));
    GPUALS_TRY(save_tsv(m, dir, F_USERS, sums));
    GPUALS_TRY(save_tsv(m, dir, F_ITEMS, sums));
    GPUALS_TRY(save_meta(m, dir, sums));
    sync_dir(dir);
    return GPUALS_OK;
}

/* The directory a save to path writes: trailing slashes dropped and the folder holding it
 * resolved (realpath), so that what the path names cannot change while the save renames
 * things inside that folder ("m/../m" names m only while m exists). A last component of "."
 * or ".." names no directory of its own and is refused. */
static gpuals_status resolve_target(const char *path, char **out)
{
    *out = NULL;
    if (!path[0]) return gpuals_fail(GPUALS_ERR_USAGE, "no model directory given");
    char *t = strdup(path);
    if (!t) return gpuals_fail(GPUALS_ERR_NOMEM, "model save: out of memory");
    size_t len = strlen(t);
    while (len > 1 && t[len - 1] == '/') t[--len] = '\0';
    char *slash = strrchr(t, '/');
    const char *base = slash ? slash + 1 : t;
    if (!base[0] || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        free(t);
        return gpuals_fail(GPUALS_ERR_IO, "%s: name the model directory itself, not '.' or "
                           "'..'", path);
    }
    char *parent = !slash      ? strdup(".")
                   : slash == t ? strdup("/")
                                : strndup(t, (size_t)(slash - t));
    char *real = parent ? realpath(parent, NULL) : NULL;
    gpuals_status s = GPUALS_OK;
    if (!parent) s = gpuals_fail(GPUALS_ERR_NOMEM, "model save: out of memory");
    else if (!real)
        s = gpuals_fail(GPUALS_ERR_IO, "%s: cannot use the folder %s: %s", path, parent,
                        strerror(errno));
    else if (!(*out = malloc(strlen(real) + strlen(base) + 2)))
        s = gpuals_fail(GPUALS_ERR_NOMEM, "model save: out of memory");
    else
        sprintf(*out, "%s%s%s", real, strcmp(real, "/") == 0 ? "" : "/", base);
    free(real);
    free(parent);
    free(t);
    return s;
}

/* model_check_save_target for the resolved target; messages name path as given. */
static gpuals_status check_target(const char *target, const char *path, int *exists)
{
    struct stat st;
    *exists = 0;
    if (lstat(target, &st) != 0) {
        if (errno == ENOENT) return GPUALS_OK;
        return gpuals_fail(GPUALS_ERR_IO, "%s: %s", path, strerror(errno));
    }
    *exists = 1;
    char why[320] = "it is not a directory";
    if (S_ISLNK(st.st_mode)) snprintf(why, sizeof why, "it is a symbolic link");
    if (!S_ISDIR(st.st_mode) || !replaceable_dir(target, why, sizeof why))
        return gpuals_fail(GPUALS_ERR_IO, "%s exists and is not a gpu-als model directory (%s); "
                           "not replacing it", path, why);
    /* Replacing it moves it and then removes its files: both need write permission on it, so
     * a read-only one is refused now rather than left behind after the new model is in. */
    if (access(target, W_OK | X_OK) != 0)
        return gpuals_fail(GPUALS_ERR_IO, "%s is a model directory that cannot be replaced: %s",
                           path, strerror(errno));
    return GPUALS_OK;
}

gpuals_status model_check_save_target(const char *path, int *exists)
{
    char *target = NULL;
    *exists = 0;
    GPUALS_TRY(resolve_target(path, &target));
    gpuals_status s = check_target(target, path, exists);
    free(target);
    return s;
}

/* After the new model went in: remove the previous one, now at dir, if it still is one (a
 * directory that something replaced between the check and the rename is left where it is). */
static gpuals_status retire_previous(const char *dir, const char *path)
{
    char why[320] = "it is not a directory";
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || !replaceable_dir(dir, why, sizeof why))
        return gpuals_fail(GPUALS_ERR_IO, "the model was saved to %s, but what was there before "
                           "changed during the save (%s) and was kept at %s", path, why, dir);
    if (remove_model_dir(dir) != 0)
        return gpuals_fail(GPUALS_ERR_IO, "the model was saved to %s, but the previous model, "
                           "moved to %s, could not be removed: %s", path, dir, strerror(errno));
    return GPUALS_OK;
}

/* No RENAME_EXCHANGE / RENAME_NOREPLACE on this file system (or kernel). */
static int flags_unsupported(int e) { return e == EINVAL || e == ENOSYS || e == ENOTSUP; }

/* On a file system that cannot swap: move the previous model at target aside, then tmp in. A
 * signal in between leaves both where they are (the slot is dropped first) rather than remove
 * the new one. */
static gpuals_status move_aside(const char *tmp, int *tmp_slot, const char *target,
                                const char *path, int *moved)
{
    tmppath_drop(*tmp_slot);
    *tmp_slot = -1;
    char *old = unique_sibling_dir(target, ".old-", NULL);
    if (!old)
        return gpuals_fail(GPUALS_ERR_IO, "cannot create a directory beside %s: %s", path,
                           strerror(errno));
    gpuals_status s = GPUALS_OK;
    if (rename(target, old) != 0) {
        s = gpuals_fail(GPUALS_ERR_IO, "cannot move the previous model %s aside: %s", path,
                        strerror(errno));
        rmdir(old);
    } else if (rename(tmp, target) != 0) {
        int e = errno;
        if (rename(old, target) == 0)
            s = gpuals_fail(GPUALS_ERR_IO, "cannot rename %s to %s: %s", tmp, path,
                            strerror(e));
        else
            s = gpuals_fail(GPUALS_ERR_IO, "cannot rename %s to %s: %s; the previous model "
                            "is now at %s", tmp, path, strerror(e), old);
    } else {
        *moved = 1;
        s = retire_previous(old, path);
    }
    free(old);
    return s;
}

/* Put the finished directory tmp (registered in *tmp_slot, which is dropped and set to -1
 * once tmp may hold anything but the new model) at target, replacing a previous model there;
 * *moved is set once the new model is at target. Another save may put its model there at any
 * moment, so each step that finds the target changed starts over (a few times). Messages name
 * path as given. */
static gpuals_status install_dir(const char *tmp, int *tmp_slot, const char *target,
                                 const char *path, int *moved)
{
    *moved = 0;
    for (int attempt = 0; attempt < 16; attempt++) {
        /* Only a previous model (or an empty directory) may be replaced. */
        int exists = 0;
        GPUALS_TRY(check_target(target, path, &exists));

        /* Nothing there: one rename that never replaces what another save put there since. */
        if (!exists) {
            int r = renameat2(AT_FDCWD, tmp, AT_FDCWD, target, RENAME_NOREPLACE);
            if (r != 0 && flags_unsupported(errno)) r = rename(tmp, target);
            if (r == 0) {
                *moved = 1;
                return GPUALS_OK;
            }
            if (errno == EEXIST || errno == ENOTEMPTY) continue;
            return gpuals_fail(GPUALS_ERR_IO, "cannot rename %s to %s: %s", tmp, path,
                               strerror(errno));
        }

        /* A previous model: swap the two directories in one step, so that path always holds
         * a whole model, then remove the previous one, now at tmp. The signal cleanup lets go
         * of tmp first: once swapped, tmp holds what was at path, whose files may not be ours
         * (a signal at that moment leaves the new model under its temporary name instead). */
        tmppath_drop(*tmp_slot);
        *tmp_slot = -1;
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, target, RENAME_EXCHANGE) == 0) {
            *moved = 1;
            return retire_previous(tmp, path);
        }
        int e = errno;
        *tmp_slot = tmppath_add(tmp, TMPPATH_MODEL_DIR, file_names);
        errno = e;
        if (errno == ENOENT) {
            struct stat st;
            if (lstat(tmp, &st) != 0)
                return gpuals_fail(GPUALS_ERR_IO, "cannot save to %s: the temporary directory "
                                   "%s was removed while saving", path, tmp);
            continue; /* the previous model went away meanwhile */
        }
        if (!flags_unsupported(errno))
            return gpuals_fail(GPUALS_ERR_IO, "cannot replace %s: %s", path, strerror(errno));
        return move_aside(tmp, tmp_slot, target, path, moved);
    }
    return gpuals_fail(GPUALS_ERR_IO, "cannot save to %s: other saves kept replacing it", path);
}

/* The directory that holds path (for syncing the rename), into a new string. */
static char *parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

gpuals_status gpuals_model_save(const gpuals_model *m, const char *path)
{
    /* Check the arguments and the model. */
    if (!m || !path) return gpuals_fail(GPUALS_ERR_USAGE, "gpuals_model_save: NULL argument");
    if (!path[0]) return gpuals_fail(GPUALS_ERR_USAGE, "no model directory given");
    if (!m->conf.indptr || m->conf.rows != m->n_users || m->conf.cols != m->n_items)
        return gpuals_fail(GPUALS_ERR_INTERNAL, "gpuals_model_save: the model's training "
                           "matrix does not match its %lld users x %lld items",
                           (long long)m->n_users, (long long)m->n_items);

    /* Where it goes (refused now, before anything is written, when it is not for a model; and
     * checked again when the model is put there), and a new temporary directory beside it. */
    char *target = NULL;
    GPUALS_TRY(resolve_target(path, &target));
    int exists = 0;
    gpuals_status checked = check_target(target, path, &exists);
    if (checked != GPUALS_OK) {
        free(target);
        return checked;
    }
    int slot = -1;
    char *tmp = unique_sibling_dir(target, ".tmp-", &slot);
    if (!tmp) {
        gpuals_status s = gpuals_fail(GPUALS_ERR_IO, "cannot create a directory beside %s: %s",
                                      path, strerror(errno));
        free(target);
        return s;
    }

    /* Write, then install; a failure before the new model moved removes what was written. */
    int moved = 0;
    gpuals_status s = save_files(m, tmp);
    if (s != GPUALS_OK) /* the message names a file of the temporary directory, removed below */
        s = gpuals_fail_context(s, "cannot save the model to %s (nothing was left there)", path);
    if (s == GPUALS_OK) s = install_dir(tmp, &slot, target, path, &moved);
    if (!moved) remove_model_dir(tmp);
    tmppath_drop(slot);

    /* Make the renames durable (also when removing the previous model failed after). */
    if (moved) {
        char *parent = parent_dir(target);
        if (parent) sync_dir(parent);
        free(parent);
    }
    free(tmp);
    free(target);
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Loading: meta.json                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* What a damaged or foreign directory's messages end with. */
#define DAMAGED "not a gpu-als model directory or damaged"

/* What the message about a missing or unopenable file of a model directory ends with. */
#define INCOMPLETE "the model directory is incomplete or damaged"

/* A file of a model directory that exists but cannot be opened: without the permission to read
 * it, an i/o error as for any unreadable input; otherwise the directory is incomplete. */
static gpuals_status open_failed(const char *path, int e)
{
    if (e == EACCES || e == EPERM)
        return gpuals_fail(GPUALS_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: cannot open: %s: " INCOMPLETE, path,
                       strerror(e));
}

/* The preamble of an .npy file: magic, version and header length (10 to 12 bytes), then a
 * header of at most 1 MiB (what npy.c accepts). */
#define NPY_MIN_PREAMBLE 10
#define NPY_MAX_PREAMBLE (12 + ((uint64_t)1 << 20))

/* Block size for hashing a file before it is parsed. */
#define HASH_BLOCK ((size_t)1 << 20)

/* Everything meta.json says. */
typedef struct {
    const char *path; /* of meta.json, for messages */
    const char *dir;  /* the model directory */
    int64_t n_users, n_items, nnz;
    int factors;
    int has_titles;
    file_sum sums[N_FILES];
    gpuals_params params;
    gpuals_summary summary;
    double loss, seconds;
    int iterations; /* -1: not recorded */
    int device;
    char device_note[256]; /* "" when not recorded */
} meta_info;

/* A missing or mistyped field of meta.json: the file is damaged or not ours. */
static gpuals_status bad_field(const char *where, const char *obj, const char *key,
                               const char *expected)
{
    return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: %s%s%s: expected %s: " DAMAGED, where,
                       obj ? obj : "", obj ? "." : "", key, expected);
}

static gpuals_status get_int(json_t *o, const char *obj, const char *key, const char *where,
                             int64_t lo, int64_t hi, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        char range[80];
        snprintf(range, sizeof range, "an integer in %" PRId64 "..%" PRId64, lo, hi);
        return bad_field(where, obj, key, range);
    }
    *out = json_integer_value(v);
    return GPUALS_OK;
}

static gpuals_status get_int32(json_t *o, const char *obj, const char *key, const char *where,
                               int lo, int *out)
{
    int64_t v = 0;
    GPUALS_TRY(get_int(o, obj, key, where, lo, INT32_MAX, &v));
    *out = (int)v;
    return GPUALS_OK;
}

static gpuals_status get_real(json_t *o, const char *obj, const char *key, const char *where,
                              double *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v)) return bad_field(where, obj, key, "a number");
    *out = json_number_value(v);
    return GPUALS_OK;
}

static gpuals_status get_bool(json_t *o, const char *obj, const char *key, const char *where,
                              int *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_boolean(v)) return bad_field(where, obj, key, "true or false");
    *out = json_is_true(v);
    return GPUALS_OK;
}

static gpuals_status get_enum(json_t *o, const char *obj, const char *key, const char *where,
                              const char *const *names, int count, int *out)
{
    const char *s = json_string_value(json_object_get(o, key));
    for (int k = 0; s && k < count; k++) {
        if (strcmp(s, names[k]) == 0) {
            *out = k;
            return GPUALS_OK;
        }
    }
    char expected[128] = "one of";
    for (int k = 0; k < count; k++) {
        size_t used = strlen(expected);
        snprintf(expected + used, sizeof expected - used, "%s %s", k ? "," : "", names[k]);
    }
    return bad_field(where, obj, key, expected);
}

/* The seed: a JSON integer, or a decimal string for values above INT64_MAX. */
static gpuals_status get_seed(json_t *o, const char *where, uint64_t *out)
{
    json_t *v = json_object_get(o, "seed");
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return GPUALS_OK;
    }
    const char *s = json_string_value(v);
    if (s && s[0] >= '0' && s[0] <= '9') {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(s, &end, 10);
        if (*end == '\0' && errno == 0) {
            *out = x;
            return GPUALS_OK;
        }
    }
    return bad_field(where, "params", "seed", "a non-negative 64-bit integer");
}

static gpuals_status read_params(json_t *root, const char *where, gpuals_params *p)
{
    json_t *o = json_object_get(root, "params");
    if (!json_is_object(o)) return bad_field(where, NULL, "params", "an object");
    int v = 0;
    memset(p, 0, sizeof *p);
    GPUALS_TRY(get_int32(o, "params", "factors", where, 1, &p->factors));
    GPUALS_TRY(get_real(o, "params", "reg", where, &p->reg));
    GPUALS_TRY(get_enum(o, "params", "reg_scale", where, reg_scale_names,
                        COUNT_OF(reg_scale_names), &v));
    p->reg_scale = (gpuals_reg_scale)v;
    GPUALS_TRY(get_real(o, "params", "alpha", where, &p->alpha));
    GPUALS_TRY(get_enum(o, "params", "confidence", where, confidence_names,
                        COUNT_OF(confidence_names), &v));
    p->confidence = (gpuals_confidence)v;
    GPUALS_TRY(get_real(o, "params", "eps", where, &p->eps));
    GPUALS_TRY(get_int32(o, "params", "iters", where, 0, &p->iters));
    GPUALS_TRY(get_enum(o, "params", "solver", where, solver_names, COUNT_OF(solver_names),
                        &v));
    p->solver = (gpuals_solver)v;
    GPUALS_TRY(get_int32(o, "params", "cg_steps", where, 0, &p->cg_steps));
    GPUALS_TRY(get_seed(o, where, &p->seed));
    /* The thread count is a hint for training again, and earlier versions allowed any: a
     * larger one reads as the largest allowed now. */
    int64_t threads = 0;
    GPUALS_TRY(get_int(o, "params", "threads", where, 0, INT32_MAX, &threads));
    p->threads = threads > GPUALS_MAX_THREADS ? GPUALS_MAX_THREADS : (int)threads;
    GPUALS_TRY(get_enum(o, "params", "dtype", where, dtype_names, COUNT_OF(dtype_names), &v));
    p->dtype = (gpuals_dtype)v;
    GPUALS_TRY(get_bool(o, "params", "compute_loss", where, &p->compute_loss));
    GPUALS_TRY(get_enum(o, "params", "device", where, device_names, COUNT_OF(device_names),
                        &v));
    p->device = (gpuals_device)v;

    /* Each value in range, as training would require (alpha > 0, say); the device is a record
     * of what was asked, not checked against the dtype. */
    gpuals_params values = *p;
    values.device = GPUALS_DEVICE_AUTO;
    if (model_check_params(&values) != GPUALS_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", gpuals_last_error());
        return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: params: %s: " DAMAGED, where, why);
    }
    return GPUALS_OK;
}

static gpuals_status read_summary(json_t *root, const char *where, gpuals_summary *s)
{
    json_t *o = json_object_get(root, "summary");
    if (!json_is_object(o)) return bad_field(where, NULL, "summary", "an object");
    struct {
        const char *key;
        int64_t *field;
    } fields[] = {
        {"raw_lines", &s->raw_lines},   {"kept_lines", &s->kept_lines},
        {"bad_lines", &s->bad_lines},   {"filtered_lines", &s->filtered_lines},
        {"zero_lines", &s->zero_lines}, {"duplicates", &s->duplicates},
        {"users", &s->users},           {"items", &s->items},
        {"stored", &s->stored},         {"first_bad_line", &s->first_bad_line},
    };
    for (int k = 0; k < COUNT_OF(fields); k++)
        GPUALS_TRY(get_int(o, "summary", fields[k].key, where, 0, INT64_MAX, fields[k].field));
    s->min_rating = -INFINITY;
    json_t *min = json_object_get(o, "min_rating");
    if (min && !json_is_null(min)) GPUALS_TRY(get_real(o, "summary", "min_rating", where,
                                                       &s->min_rating));
    return GPUALS_OK;
}

static gpuals_status read_files(json_t *root, const char *where, file_sum *sums)
{
    json_t *files = json_object_get(root, "files");
    if (!json_is_object(files)) return bad_field(where, NULL, "files", "an object");
    for (int k = 0; k < N_FILES; k++) {
        json_t *e = json_object_get(files, file_names[k]);
        if (!json_is_object(e)) return bad_field(where, "files", file_names[k], "an object");
        int64_t bytes = 0;
        GPUALS_TRY(get_int(e, file_names[k], "bytes", where, 0, INT64_MAX, &bytes));
        sums[k].bytes = (uint64_t)bytes;
        const char *hex = json_string_value(json_object_get(e, "xxh64"));
        char *end = NULL;
        if (hex && strlen(hex) == 16) sums[k].xxh = strtoull(hex, &end, 16);
        if (!end || *end != '\0')
            return bad_field(where, file_names[k], "xxh64", "16 hexadecimal digits");
    }
    return GPUALS_OK;
}

/* The identity of the file and its shapes. */
static gpuals_status read_header(json_t *root, meta_info *mi)
{
    const char *where = mi->path;
    const char *format = json_string_value(json_object_get(root, "format"));
    if (!format || strcmp(format, MODEL_FORMAT) != 0)
        return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: not a gpu-als model (format is not \"%s\")",
                           where, MODEL_FORMAT);
    int64_t version = 0;
    GPUALS_TRY(get_int(root, NULL, "format_version", where, 0, INT32_MAX, &version));
    if (version != MODEL_FORMAT_VERSION)
        return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: model format version %lld; this gpu-als "
                           "reads version %d", where, (long long)version, MODEL_FORMAT_VERSION);
    json_t *shape = json_object_get(root, "shape");
    if (!json_is_object(shape)) return bad_field(where, NULL, "shape", "an object");
    GPUALS_TRY(get_int(shape, "shape", "users", where, 0, INT64_MAX - 1, &mi->n_users));
    GPUALS_TRY(get_int(shape, "shape", "items", where, 0, (int64_t)INT32_MAX + 1,
                       &mi->n_items));
    GPUALS_TRY(get_int32(shape, "shape", "factors", where, 1, &mi->factors));
    GPUALS_TRY(get_int(shape, "shape", "nnz", where, 0, INT64_MAX, &mi->nnz));
    return get_bool(root, NULL, "has_titles", where, &mi->has_titles);
}

/* 1 when dir holds an entry named like one of the model's data files. */
static int holds_data_file(const char *dir)
{
    int found = 0;
    for (int k = 0; k < N_FILES && !found; k++) {
        char *path = join_path(dir, file_names[k]);
        struct stat st;
        found = path && lstat(path, &st) == 0;
        free(path);
    }
    return found;
}

/* Read meta.json of mi->dir into mi. Without meta.json, a directory that holds none of the data
 * files is not a model (GPUALS_ERR_IO) and one that holds any is incomplete; a meta.json that is
 * not a regular file, cannot be opened (see open_failed), is empty, truncated, not JSON, or
 * lacks a field is GPUALS_ERR_MISMATCH naming it. Allocates nothing that outlives the call. */
static gpuals_status load_meta(meta_info *mi)
{
    /* The text, after checking that it is a plausible file. */
    struct stat st;
    if (stat(mi->path, &st) != 0) {
        int e = errno;
        if (e == ENOENT && !holds_data_file(mi->dir))
            return gpuals_fail(GPUALS_ERR_IO, "%s: not a gpu-als model directory: it has no "
                               "meta.json", mi->dir);
        if (e == ENOENT)
            return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: %s: " INCOMPLETE, mi->path,
                               strerror(e));
        return gpuals_fail(GPUALS_ERR_IO, "%s: %s", mi->path, strerror(e));
    }
    if (!S_ISREG(st.st_mode))
        return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: not a regular file: " INCOMPLETE,
                           mi->path);
    if (st.st_size == 0)
        return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: empty: " DAMAGED, mi->path);
    if (st.st_size > META_MAX_BYTES)
        return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: %lld bytes, more than a meta.json ever "
                           "holds: " DAMAGED, mi->path, (long long)st.st_size);
    size_t len = (size_t)st.st_size;
    char *text = malloc(len);
    if (!text) return gpuals_fail(GPUALS_ERR_NOMEM, "%s: out of memory", mi->path);
    FILE *f = fopen(mi->path, "rb");
    if (!f) {
        int e = errno;
        free(text);
        return open_failed(mi->path, e);
    }
    size_t got = fread(text, 1, len, f);
    fclose(f);
    if (got != len) {
        free(text);
        return gpuals_fail(GPUALS_ERR_IO, "%s: read failed: the file shrank while being read",
                           mi->path);
    }

    /* The document. */
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    free(text);
    if (!root)
        return gpuals_fail(GPUALS_ERR_MISMATCH, "%s:%d: %s: " DAMAGED, mi->path, err.line,
                           err.text);

    /* Header, settings, summary, file table, training record. */
    memset(&mi->summary, 0, sizeof mi->summary);
    mi->loss = NAN;
    mi->seconds = 0.0;
    mi->iterations = -1;
    mi->device = GPUALS_DEVICE_CPU;
    gpuals_status s = json_is_object(root)
                          ? read_header(root, mi)
                          : gpuals_fail(GPUALS_ERR_MISMATCH, "%s: not a JSON object: " DAMAGED,
                                        mi->path);
    if (s == GPUALS_OK) s = read_params(root, mi->path, &mi->params);
    if (s == GPUALS_OK && mi->params.factors != mi->factors)
        s = gpuals_fail(GPUALS_ERR_MISMATCH, "%s: params.factors %d but shape.factors %d",
                        mi->path, mi->params.factors, mi->factors);
    if (s == GPUALS_OK) s = read_summary(root, mi->path, &mi->summary);
    if (s == GPUALS_OK) s = read_files(root, mi->path, mi->sums);
    if (s == GPUALS_OK && !json_is_null(json_object_get(root, "final_loss")))
        s = get_real(root, NULL, "final_loss", mi->path, &mi->loss);
    if (s == GPUALS_OK) s = get_real(root, NULL, "train_seconds", mi->path, &mi->seconds);
    json_t *iters = json_object_get(root, "iterations_run");
    if (s == GPUALS_OK && iters && !json_is_null(iters))
        s = get_int32(root, NULL, "iterations_run", mi->path, 0, &mi->iterations);
    if (s == GPUALS_OK)
        s = get_enum(root, NULL, "device_used", mi->path, device_names,
                     COUNT_OF(device_names), &mi->device);
    json_t *note = json_object_get(root, "device_note");
    if (s == GPUALS_OK && note && !json_is_string(note))
        s = bad_field(mi->path, NULL, "device_note", "a string");
    if (s == GPUALS_OK && note)
        snprintf(mi->device_note, sizeof mi->device_note, "%s", json_string_value(note));
    json_decref(root);
    return s;
}

/* a * b into *out; 0 when it overflows 64 bits. */
static int mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* The shapes of meta.json against the sizes it records for the files, before anything is
 * allocated from them: each .npy file holds exactly its shape's elements after a preamble of
 * NPY_MIN_PREAMBLE to NPY_MAX_PREAMBLE bytes, and each .tsv file a header and at least a few
 * bytes per line. */
static gpuals_status check_meta_shapes(const meta_info *mi)
{
    /* The .npy files: rows x columns of itemsize bytes (cols 1: a vector). */
    const struct {
        int which;
        const char *shape;
        uint64_t rows, cols, itemsize;
        const char *type;
    } npy[] = {
        {F_USER_FACTORS, "shape.users x shape.factors", (uint64_t)mi->n_users,
         (uint64_t)mi->factors, 4, "float32"},
        {F_ITEM_FACTORS, "shape.items x shape.factors", (uint64_t)mi->n_items,
         (uint64_t)mi->factors, 4, "float32"},
        {F_INDPTR, "shape.users + 1", (uint64_t)mi->n_users + 1, 1, 8, "int64"},
        {F_INDICES, "shape.nnz", (uint64_t)mi->nnz, 1, 4, "int32"},
        {F_DATA, "shape.nnz", (uint64_t)mi->nnz, 1, 4, "float32"},
    };
    for (int k = 0; k < COUNT_OF(npy); k++) {
        uint64_t elements = 0, need = 0, have = mi->sums[npy[k].which].bytes;
        if (mul_u64(npy[k].rows, npy[k].cols, &elements) &&
            mul_u64(elements, npy[k].itemsize, &need) && need <= have &&
            have - need >= NPY_MIN_PREAMBLE && have - need <= NPY_MAX_PREAMBLE)
            continue;
        char count[64];
        if (npy[k].cols == 1) snprintf(count, sizeof count, "%" PRIu64, npy[k].rows);
        else snprintf(count, sizeof count, "%" PRIu64 " x %" PRIu64, npy[k].rows, npy[k].cols);
        return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: %s = %s %s values do not fit the %" PRIu64
                           " bytes it records for %s: " DAMAGED, mi->path, npy[k].shape, count,
                           npy[k].type, have, file_names[npy[k].which]);
    }

    /* The .tsv files: the header, then at least "0\t\n" per user, "0\t\t\n" per item. */
    const struct {
        int which;
        const char *rows_name;
        uint64_t rows;
        uint64_t header, per_line;
    } tsv[] = {
        {F_USERS, "shape.users", (uint64_t)mi->n_users, 9, 3},
        {F_ITEMS, "shape.items", (uint64_t)mi->n_items, 15, 4},
    };
    for (int k = 0; k < COUNT_OF(tsv); k++) {
        uint64_t need = 0, have = mi->sums[tsv[k].which].bytes;
        if (!mul_u64(tsv[k].rows, tsv[k].per_line, &need) || need > have ||
            have - need < tsv[k].header)
            return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: %s = %" PRIu64 " lines do not fit the "
                               "%" PRIu64 " bytes it records for %s: " DAMAGED, mi->path,
                               tsv[k].rows_name, tsv[k].rows, have, file_names[tsv[k].which]);
    }
    return GPUALS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Loading: the data files                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* The size of path against meta.json's record: GPUALS_ERR_MISMATCH when it is missing, not a
 * regular file, or of another size. */
static gpuals_status check_size(const char *path, uint64_t want)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: %s: " INCOMPLETE, path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: not a regular file: " INCOMPLETE, path);
    if ((uint64_t)st.st_size != want)
        return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: %lld bytes, but meta.json records %llu "
                           "(truncated or replaced): " DAMAGED, path, (long long)st.st_size,
                           (unsigned long long)want);
    return GPUALS_OK;
}

/* The XXH64 got of file which against meta.json's record. */
static gpuals_status check_sum(const meta_info *mi, int which, uint64_t got)
{
    if (got != mi->sums[which].xxh)
        return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: checksum mismatch in %s: XXH64 %016" PRIx64
                           ", but meta.json records %016" PRIx64 " (the file changed after the "
                           "model was saved): " DAMAGED, mi->dir, file_names[which], got,
                           mi->sums[which].xxh);
    return GPUALS_OK;
}

/* XXH64 of the whole file at path, read in blocks (nothing as large as the file is held). A
 * file of the model that cannot be opened is reported by open_failed. */
static gpuals_status hash_file(const char *path, uint64_t *xxh)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return open_failed(path, errno);
    XXH64_state_t *st = XXH64_createState();
    unsigned char *buf = malloc(HASH_BLOCK);
    gpuals_status s = GPUALS_OK;
    if (!st || !buf) {
        s = gpuals_fail(GPUALS_ERR_NOMEM, "%s: out of memory", path);
    } else {
        XXH64_reset(st, 0);
        size_t got;
        while ((got = fread(buf, 1, HASH_BLOCK, f)) > 0) XXH64_update(st, buf, got);
        if (ferror(f)) s = gpuals_fail(GPUALS_ERR_IO, "%s: read failed", path);
        else *xxh = XXH64_digest(st);
    }
    free(buf);
    if (st) XXH64_freeState(st);
    fclose(f);
    return s;
}

/* A parse failure in a file whose size and checksum agreed with meta.json: the directory was
 * damaged consistently (or meta.json rewritten), so GPUALS_ERR_MISMATCH with the message kept. */
static gpuals_status damaged(gpuals_status s)
{
    if (s != GPUALS_ERR_PARSE) return s;
    char old[1536];
    snprintf(old, sizeof old, "%s", gpuals_last_error());
    return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: " DAMAGED, old);
}

/* One .npy file of dir: its checksum (over the file as it is, before any parsing), then its
 * header, shape (d0, and d1 when ndim is 2) and elements. *data receives the elements
 * (malloc'ed). The size was checked by load_files. */
static gpuals_status load_npy(const meta_info *mi, int which, npy_dtype t, int ndim, int64_t d0,
                              int64_t d1, void **data)
{
    *data = NULL;
    char *path = join_path(mi->dir, file_names[which]);
    if (!path) return gpuals_fail(GPUALS_ERR_NOMEM, "model load: out of memory");
    int64_t shape[2] = {0, 0};
    uint64_t xxh = 0;
    gpuals_status s = hash_file(path, &xxh);
    if (s == GPUALS_OK) s = check_sum(mi, which, xxh);
    if (s == GPUALS_OK) s = damaged(npy_read(path, t, ndim, shape, data, &xxh));
    if (s == GPUALS_OK) s = check_sum(mi, which, xxh); /* the same bytes were parsed */
    if (s == GPUALS_OK && (shape[0] != d0 || (ndim == 2 && shape[1] != d1))) {
        if (ndim == 2)
            s = gpuals_fail(GPUALS_ERR_MISMATCH, "%s: shape (%lld, %lld), but %s says "
                            "(%lld, %lld)", path, (long long)shape[0], (long long)shape[1],
                            mi->path, (long long)d0, (long long)d1);
        else
            s = gpuals_fail(GPUALS_ERR_MISMATCH, "%s: shape (%lld,), but %s says (%lld,)",
                            path, (long long)shape[0], mi->path, (long long)d0);
    }
    if (s != GPUALS_OK) {
        free(*data);
        *data = NULL;
    }
    free(path);
    return s;
}

/* Undo text_add_escaped on field[0..len) in place; returns the new length, or -1 on an
 * unknown escape. */
static ptrdiff_t unescape(char *field, size_t len)
{
    size_t w = 0;
    for (size_t r = 0; r < len; r++) {
        if (field[r] != '\\') {
            field[w++] = field[r];
            continue;
        }
        if (++r >= len) return -1;
        switch (field[r]) {
        case '\\': field[w++] = '\\'; break;
        case 't': field[w++] = '\t'; break;
        case 'n': field[w++] = '\n'; break;
        case 'r': field[w++] = '\r'; break;
        default: return -1;
        }
    }
    field[w] = '\0';
    return (ptrdiff_t)w;
}

/* Split line[0..len) at tabs into at most cap fields (NUL-terminated in place); returns the
 * number of fields, or cap + 1 when there are more. */
static int split_tabs(char *line, size_t len, char **fields, size_t *lens, int cap)
{
    int n = 0;
    size_t start = 0;
    for (size_t k = 0; k <= len; k++) {
        if (k < len && line[k] != '\t') continue;
        if (n == cap) return cap + 1;
        fields[n] = line + start;
        lens[n] = k - start;
        line[k] = '\0';
        n++;
        start = k + 1;
    }
    return n;
}

/* One data line of users.tsv / items.tsv (k is its index). */
static gpuals_status parse_tsv_line(gpuals_model *m, const char *path, int64_t k, char *line,
                                    size_t len, int items, int has_titles)
{
    /* Fields: index, id and (items) title. */
    char *f[3];
    size_t fl[3];
    int want = items ? 3 : 2;
    long long lineno = (long long)k + 2;
    if (split_tabs(line, len, f, fl, want) != want)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected %d tab-separated fields", path,
                           lineno, want);
    char *end;
    errno = 0;
    long long idx = strtoll(f[0], &end, 10);
    if (fl[0] == 0 || end != f[0] + fl[0] || errno != 0 || idx != (long long)k)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: index \"%s\", expected %lld", path,
                           lineno, f[0], (long long)k);

    /* The raw id: new, and given the next index. */
    ptrdiff_t idlen = unescape(f[1], fl[1]);
    if (idlen < 0)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: bad escape in the id", path, lineno);
    if (memchr(f[1], '\0', (size_t)idlen))
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: a NUL byte in the id", path, lineno);
    int added = 0;
    int64_t at = idmap_intern(items ? m->items : m->users, f[1], (size_t)idlen, &added);
    if (at < 0) return gpuals_fail(GPUALS_ERR_NOMEM, "model load: out of memory for ids");
    if (!added || at != k)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: id \"%s\" repeats an earlier line", path,
                           lineno, f[1]);
    if (!items) return GPUALS_OK;

    /* The title: empty means none. */
    ptrdiff_t tlen = unescape(f[2], fl[2]);
    if (tlen < 0)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: bad escape in the title", path, lineno);
    if (memchr(f[2], '\0', (size_t)tlen))
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: a NUL byte in the title", path, lineno);
    if (tlen == 0) return GPUALS_OK;
    if (!has_titles)
        return gpuals_fail(GPUALS_ERR_MISMATCH, "%s:%lld: a title, but meta.json says the model "
                           "has none", path, lineno);
    m->titles[k] = strndup(f[2], (size_t)tlen);
    if (!m->titles[k]) return gpuals_fail(GPUALS_ERR_NOMEM, "model load: out of memory");
    return GPUALS_OK;
}

/* Parse the whole text of users.tsv / items.tsv (NUL-terminated, len bytes). */
static gpuals_status parse_tsv(gpuals_model *m, const char *path, char *text, size_t len,
                               int items, int has_titles)
{
    const char *header = items ? "index\tid\ttitle\n" : "index\tid\n";
    size_t hlen = strlen(header);
    if (len < hlen || memcmp(text, header, hlen) != 0)
        return gpuals_fail(GPUALS_ERR_PARSE, "%s:1: expected the header \"%s\"", path,
                           items ? "index<TAB>id<TAB>title" : "index<TAB>id");
    int64_t n = items ? m->n_items : m->n_users;
    size_t at = hlen;
    for (int64_t k = 0; k < n; k++) {
        char *nl = at < len ? memchr(text + at, '\n', len - at) : NULL;
        if (!nl)
            return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: %lld lines, but meta.json says %lld",
                               path, (long long)k, (long long)n);
        size_t line_len = (size_t)(nl - (text + at));
        GPUALS_TRY(parse_tsv_line(m, path, k, text + at, line_len, items, has_titles));
        at += line_len + 1;
    }
    if (at != len)
        return gpuals_fail(GPUALS_ERR_MISMATCH, "%s: more lines than the %lld meta.json says",
                           path, (long long)n);
    return GPUALS_OK;
}

/* users.tsv or items.tsv of dir: checksum, then every line. The size was checked by
 * gpuals_model_load, so the buffer is as large as the file meta.json describes. */
static gpuals_status load_tsv(gpuals_model *m, const meta_info *mi, int which)
{
    /* Read the whole file. */
    char *path = join_path(mi->dir, file_names[which]);
    if (!path) return gpuals_fail(GPUALS_ERR_NOMEM, "model load: out of memory");
    uint64_t want = mi->sums[which].bytes;
    gpuals_status s = GPUALS_OK;
    char *text = malloc((size_t)want + 1);
    if (!text) s = gpuals_fail(GPUALS_ERR_NOMEM, "%s: out of memory", path);
    if (s == GPUALS_OK) {
        FILE *f = fopen(path, "rb");
        if (!f)
            s = open_failed(path, errno);
        else if (fread(text, 1, (size_t)want, f) != (size_t)want)
            s = gpuals_fail(GPUALS_ERR_IO, "%s: read failed", path);
        if (f) fclose(f);
    }

    /* Checksum, then parse. */
    if (s == GPUALS_OK) {
        text[want] = '\0';
        s = check_sum(mi, which, XXH64(text, (size_t)want, 0));
    }
    if (s == GPUALS_OK)
        s = damaged(parse_tsv(m, path, text, (size_t)want, which == F_ITEMS, mi->has_titles));
    free(text);
    free(path);
    return s;
}

/* All data files of mi->dir into m. */
static gpuals_status load_files(gpuals_model *m, const meta_info *mi)
{
    /* Factors. */
    void *p = NULL;
    GPUALS_TRY(load_npy(mi, F_USER_FACTORS, NPY_FLOAT32, 2, mi->n_users, mi->factors, &p));
    free(m->X);
    m->X = p;
    GPUALS_TRY(load_npy(mi, F_ITEM_FACTORS, NPY_FLOAT32, 2, mi->n_items, mi->factors, &p));
    free(m->Y);
    m->Y = p;

    /* The training matrix, checked as a whole. */
    csr *c = &m->conf;
    c->rows = mi->n_users;
    c->cols = mi->n_items;
    c->nnz = mi->nnz;
    GPUALS_TRY(load_npy(mi, F_INDPTR, NPY_INT64, 1, mi->n_users + 1, 0, &p));
    c->indptr = p;
    GPUALS_TRY(load_npy(mi, F_INDICES, NPY_INT32, 1, mi->nnz, 0, &p));
    c->indices = p;
    GPUALS_TRY(load_npy(mi, F_DATA, NPY_FLOAT32, 1, mi->nnz, 0, &p));
    c->data = p;
    if (csr_validate(c) != GPUALS_OK)
        return gpuals_fail_context(GPUALS_ERR_MISMATCH, "%s: indptr.npy and indices.npy do "
                                   "not form a valid %lld x %lld matrix", mi->dir,
                                   (long long)c->rows, (long long)c->cols);

    /* Ids and titles. */
    if (mi->has_titles) {
        m->titles = calloc(mi->n_items ? (size_t)mi->n_items : 1, sizeof *m->titles);
        if (!m->titles) return gpuals_fail(GPUALS_ERR_NOMEM, "model load: out of memory");
    }
    GPUALS_TRY(load_tsv(m, mi, F_USERS));
    return load_tsv(m, mi, F_ITEMS);
}

/* Every file meta.json lists is there with the size it records. */
static gpuals_status check_sizes(const meta_info *mi)
{
    for (int k = 0; k < N_FILES; k++) {
        char *path = join_path(mi->dir, file_names[k]);
        if (!path) return gpuals_fail(GPUALS_ERR_NOMEM, "model load: out of memory");
        gpuals_status s = check_size(path, mi->sums[k].bytes);
        free(path);
        GPUALS_TRY(s);
    }
    return GPUALS_OK;
}

/* One attempt of gpuals_model_load. */
static gpuals_status load_once(const char *path, gpuals_model **out)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return gpuals_fail(GPUALS_ERR_IO, "%s: cannot open the model directory: %s", path,
                           strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return gpuals_fail(GPUALS_ERR_IO, "%s: not a model directory (a model is a directory "
                           "with meta.json)", path);

    /* meta.json and its agreement with the files' sizes, before allocating anything from its
     * shapes; then the model and the files. */
    meta_info mi;
    memset(&mi, 0, sizeof mi);
    char *meta_path = join_path(path, "meta.json");
    if (!meta_path) return gpuals_fail(GPUALS_ERR_NOMEM, "model load: out of memory");
    mi.path = meta_path;
    mi.dir = path;
    gpuals_model *m = NULL;
    gpuals_status s = load_meta(&mi);
    if (s == GPUALS_OK) s = check_meta_shapes(&mi);
    if (s == GPUALS_OK) s = check_sizes(&mi);
    if (s == GPUALS_OK) s = model_alloc(mi.n_users, mi.n_items, &mi.params, &m);
    if (s == GPUALS_OK) {
        m->summary = mi.summary;
        m->final_loss = mi.loss;
        m->train_seconds = mi.seconds;
        m->iterations_run = mi.iterations;
        m->device_used = (gpuals_device)mi.device;
        snprintf(m->device_note, sizeof m->device_note, "%s", mi.device_note);
        s = load_files(m, &mi);
    }
    free(meta_path);
    if (s != GPUALS_OK) {
        gpuals_model_free(m);
        return s;
    }
    *out = m;
    return GPUALS_OK;
}

gpuals_status gpuals_model_load(const char *path, gpuals_model **out)
{
    if (!path || !out) return gpuals_fail(GPUALS_ERR_USAGE, "gpuals_model_load: NULL argument");
    *out = NULL;
    if (!path[0]) return gpuals_fail(GPUALS_ERR_USAGE, "no model directory given");

    /* A save that replaces the model while it is read swaps the whole directory: the files read
     * may then come from both, which the checksums catch. When path names another directory
     * than it did when the load began, read again. The directory of the attempt is held open
     * meanwhile, so that its inode number cannot pass to the new one (which would hide the
     * change). */
    gpuals_status s = GPUALS_OK;
    for (int attempt = 0; attempt < 32; attempt++) {
        struct stat before = {0}, now;
        int held = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (held < 0 && errno == ENOENT && attempt < 31) {
            /* Gone for a moment: a save on a file system that cannot swap directories moves
             * the previous model aside before it puts the new one there. */
            usleep(1000);
            continue;
        }
        if (held >= 0 && fstat(held, &before) != 0) before.st_ino = 0;
        s = load_once(path, out);
        int changed = held >= 0 && before.st_ino != 0 &&
                      (stat(path, &now) != 0 || now.st_ino != before.st_ino ||
                       now.st_dev != before.st_dev);
        if (held >= 0) close(held);
        if ((s != GPUALS_ERR_MISMATCH && s != GPUALS_ERR_IO) || !changed) return s;
    }
    return s;
}
