/*
 * test_model_io.c - .npy files and model directories.
 *
 * npy: round trips of every type we write, the exact v1.0 header numpy expects, and refusal of
 * truncated, over-long, mistyped, Fortran-ordered and non-npy files.
 * Model directories: save then load gives bit-identical factors, matrix, ids (with tabs,
 * newlines and backslashes), titles and settings, and every query answers identically; saving
 * over a previous model replaces it and leaves no temporary directory; saving over something
 * else is refused; every kind of corruption (a changed byte, a truncated file, a missing file,
 * a wrong shape or broken meta.json) is refused naming the file, as GPUALS_ERR_MISMATCH (exit 6),
 * with checksums checked before any parsing and meta.json's shapes checked before any
 * allocation; a model directory missing any of its files (meta.json included) is incomplete,
 * GPUALS_ERR_MISMATCH naming the file, while a path that does not exist or a directory holding
 * no model file is not a model, GPUALS_ERR_IO (exit 3); meta.json ends with a
 * newline; and numpy.load reads the .npy files (when a python3 with numpy is found; the test
 * says so when it is not). The iterations run and the min_rating of the load are kept, and a
 * meta.json written before they were recorded still loads (unknown iterations, no filter).
 */
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <jansson.h>
#include <xxhash.h>

#include "lookup.h"
#include "npy.h"
#include "tmppath.h"
#include "test_query_common.h"

/* ------------------------------------------------------------------------------------------ */
/* File helpers                                                                               */
/* ------------------------------------------------------------------------------------------ */

static long file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

/* The whole file into a new buffer (size into *len). */
static unsigned char *slurp(const char *path, long *len)
{
    *len = file_size(path);
    unsigned char *buf = malloc((size_t)*len + 1);
    assert_non_null(buf);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, (size_t)*len, f), (size_t)*len);
    fclose(f);
    return buf;
}

/* Flip every bit of the byte at offset from the end of the file. */
static void flip_byte(const char *path, long from_end)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, -from_end, SEEK_END), 0);
    int c = fgetc(f);
    assert_true(c != EOF);
    assert_int_equal(fseek(f, -from_end, SEEK_END), 0);
    fputc(c ^ 0xff, f);
    fclose(f);
}

/* The number of entries in dir whose name contains needle. */
static int count_entries(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += strstr(e->d_name, needle) != NULL;
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* npy                                                                                        */
/* ------------------------------------------------------------------------------------------ */

static void test_npy_round_trip_and_header(void **state)
{
    (void)state;
    char *dir = tq_temp_dir();
    char path[4096];
    tq_format(path, sizeof path, "%s/a.npy", dir);

    /* float32, 2-d: the exact header numpy writes, padded to 64 bytes. */
    float F[6] = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, 7.0f};
    int64_t shape[2] = {3, 2};
    uint64_t xxh = 0, bytes = 0;
    TQ_OK(npy_write(path, NPY_FLOAT32, 2, shape, F, &xxh, &bytes));
    long len;
    unsigned char *raw = slurp(path, &len);
    assert_int_equal(len, (long)bytes);
    assert_memory_equal(raw, "\x93NUMPY\x01\x00", 8);
    size_t hlen = (size_t)raw[8] | (size_t)raw[9] << 8;
    assert_int_equal((10 + hlen) % 64, 0);
    assert_int_equal(len, (long)(10 + hlen + sizeof F));
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }";
    assert_memory_equal(raw + 10, dict, strlen(dict));
    assert_int_equal(raw[10 + hlen - 1], '\n');
    assert_true(XXH64(raw, (size_t)len, 0) == xxh);
    free(raw);

    void *data = NULL;
    int64_t got[2] = {0, 0};
    uint64_t xxh2 = 0;
    TQ_OK(npy_read(path, NPY_FLOAT32, 2, got, &data, &xxh2));
    assert_int_equal(got[0], 3);
    assert_int_equal(got[1], 2);
    assert_memory_equal(data, F, sizeof F);
    assert_true(xxh2 == xxh);
    free(data);

    /* int64 and int32, 1-d, including an empty array. */
    int64_t I8[3] = {0, INT64_MAX, -5};
    int64_t n3 = 3, n0 = 0;
    TQ_OK(npy_write(path, NPY_INT64, 1, &n3, I8, NULL, NULL));
    TQ_OK(npy_read(path, NPY_INT64, 1, got, &data, NULL));
    assert_int_equal(got[0], 3);
    assert_memory_equal(data, I8, sizeof I8);
    free(data);
    raw = slurp(path, &len);
    assert_non_null(memmem(raw, (size_t)len, "'shape': (3,), }", 16));
    free(raw);
    TQ_OK(npy_write(path, NPY_INT32, 1, &n0, NULL, NULL, NULL));
    TQ_OK(npy_read(path, NPY_INT32, 1, got, &data, NULL));
    assert_int_equal(got[0], 0);
    assert_non_null(data);
    free(data);
    tq_remove_tree(dir);
}

/* Write text as an npy file's bytes. */
static void write_raw(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

static void test_npy_refuses_bad_files(void **state)
{
    (void)state;
    char *dir = tq_temp_dir();
    char path[4096];
    tq_format(path, sizeof path, "%s/b.npy", dir);
    float F[4] = {1, 2, 3, 4};
    int64_t n4 = 4, got[2];
    void *data = (void *)1;

    /* Another element type or rank than asked for. */
    TQ_OK(npy_write(path, NPY_FLOAT32, 1, &n4, F, NULL, NULL));
    assert_int_equal(npy_read(path, NPY_INT32, 1, got, &data, NULL), GPUALS_ERR_PARSE);
    assert_non_null(strstr(gpuals_last_error(), "b.npy"));
    assert_non_null(strstr(gpuals_last_error(), "'<f4'"));
    assert_null(data);
    assert_int_equal(npy_read(path, NPY_FLOAT32, 2, got, &data, NULL), GPUALS_ERR_PARSE);

    /* Truncated, then one byte too long. */
    assert_int_equal(truncate(path, file_size(path) - 3), 0);
    assert_int_equal(npy_read(path, NPY_FLOAT32, 1, got, &data, NULL), GPUALS_ERR_PARSE);
    assert_non_null(strstr(gpuals_last_error(), "truncated"));
    TQ_OK(npy_write(path, NPY_FLOAT32, 1, &n4, F, NULL, NULL));
    FILE *f = fopen(path, "ab");
    fputc(0, f);
    fclose(f);
    assert_int_equal(npy_read(path, NPY_FLOAT32, 1, got, &data, NULL), GPUALS_ERR_PARSE);
    assert_non_null(strstr(gpuals_last_error(), "longer"));

    /* A header whose shape promises far more than the file holds is refused from the file's
     * size, before anything is allocated from the shape (16 EB here: an allocation would fail
     * with GPUALS_ERR_NOMEM instead). */
    char big[128 + 16];
    memset(big, 0, sizeof big);
    memcpy(big, "\x93NUMPY\x01\x00\x76\x00", 10);
    const char *huge = "{'descr': '<f4', 'fortran_order': False, "
                       "'shape': (4000000000000000000,), }";
    memset(big + 10, ' ', 118);
    memcpy(big + 10, huge, strlen(huge));
    big[127] = '\n';
    write_raw(path, big, sizeof big);
    assert_int_equal(npy_read(path, NPY_FLOAT32, 1, got, &data, NULL), GPUALS_ERR_PARSE);
    assert_non_null(strstr(gpuals_last_error(), "truncated: the header promises "
                                                "16000000000000000000 bytes of data, the file "
                                                "has 16"));
    assert_null(data);

    /* Fortran order, a damaged dict, bad magic, a missing file. */
    char buf[128 + 16];
    memset(buf, 0, sizeof buf);
    memcpy(buf, "\x93NUMPY\x01\x00\x76\x00", 10); /* header length 118: data at 128 */
    const char *fortran = "{'descr': '<f4', 'fortran_order': True, 'shape': (4,), }";
    memset(buf + 10, ' ', 118);
    memcpy(buf + 10, fortran, strlen(fortran));
    buf[127] = '\n';
    write_raw(path, buf, sizeof buf);
    assert_int_equal(npy_read(path, NPY_FLOAT32, 1, got, &data, NULL), GPUALS_ERR_PARSE);
    assert_non_null(strstr(gpuals_last_error(), "Fortran"));
    memset(buf + 10, ' ', 117);
    memcpy(buf + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,) ", 55);
    write_raw(path, buf, sizeof buf);
    assert_int_equal(npy_read(path, NPY_FLOAT32, 1, got, &data, NULL), GPUALS_ERR_PARSE);
    write_raw(path, "PK\x03\x04 not numpy at all", 22);
    assert_int_equal(npy_read(path, NPY_FLOAT32, 1, got, &data, NULL), GPUALS_ERR_PARSE);
    assert_non_null(strstr(gpuals_last_error(), "magic"));
    tq_format(path, sizeof path, "%s/missing.npy", dir);
    assert_int_equal(npy_read(path, NPY_FLOAT32, 1, got, &data, NULL), GPUALS_ERR_IO);
    tq_remove_tree(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* Model directories                                                                          */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    gpuals_data *d;
    gpuals_model *m;
    char *dir;   /* a scratch directory for this test */
    char model[4096];
} fixture;

/* A model whose ids and titles need escaping and whose settings are all non-default. */
static int setup(void **state)
{
    static const char *user_ids[] = {"plain", "tab\there", "new\nline", "back\\slash",
                                     "\xc3\xbcn\xc3\xaf", "u5", "u6", "u7"};
    static const char *item_ids[] = {"i0", "i1", "it\tem", "i3", "i4", "i5", "i6", "i7",
                                     "i8", "i9", "i10", "i11"};
    const char *users[96], *items[96];
    float values[96];
    uint64_t st = 77;
    int n = 0;
    for (int i = 0; i < 12; i++) {
        users[n] = user_ids[i % 8], items[n] = item_ids[i], values[n++] = 1 + i % 4;
    }
    for (int k = 0; k < 40; k++) {
        users[n] = user_ids[(int)(tq_uniform(&st) * 8)];
        items[n] = item_ids[(int)(tq_uniform(&st) * 12)];
        values[n++] = (float)(1 + (int)(tq_uniform(&st) * 5));
    }
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    TQ_OK(dataset_from_triplets(n, users, items, values, &fx->d));

    gpuals_params p = tq_params(4, GPUALS_CONF_LOG, GPUALS_REG_FREQUENCY);
    p.seed = 0xFFFFFFFFFFFFFFF0ull;
    p.eps = 0.5;
    p.reg = 0.0123456789;
    p.alpha = 3.3;
    p.dtype = GPUALS_DTYPE_FLOAT64;
    p.device = GPUALS_DEVICE_GPU;
    p.compute_loss = 1;
    p.threads = 3;
    p.cg_steps = 5;
    p.iters = 7;
    fx->m = tq_make_model(fx->d, &p, 31);
    fx->m->final_loss = 0.123456789012345;
    fx->m->train_seconds = 1.5;
    fx->m->iterations_run = 5;
    fx->m->summary.min_rating = 1.5;
    fx->m->device_used = GPUALS_DEVICE_GPU;
    tq_set_title(fx->m, 0, "Title\twith\ttabs");
    tq_set_title(fx->m, 1, "Line\nbreak and \r return");
    tq_set_title(fx->m, 3, "Back\\slash \\t literal");
    tq_set_title(fx->m, 4, "Plain Title (1999)");
    fx->dir = tq_temp_dir();
    tq_format(fx->model, sizeof fx->model, "%s/model", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    gpuals_model_free(fx->m);
    gpuals_data_free(fx->d);
    tq_remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* Every stored part of a and b is identical. */
static void assert_same_model(const gpuals_model *a, const gpuals_model *b)
{
    /* Shapes, factors and the training matrix, bit for bit. */
    assert_int_equal(a->n_users, b->n_users);
    assert_int_equal(a->n_items, b->n_items);
    assert_int_equal(a->factors, b->factors);
    assert_memory_equal(a->X, b->X, (size_t)(a->n_users * a->factors) * sizeof(float));
    assert_memory_equal(a->Y, b->Y, (size_t)(a->n_items * a->factors) * sizeof(float));
    assert_int_equal(a->conf.rows, b->conf.rows);
    assert_int_equal(a->conf.cols, b->conf.cols);
    assert_int_equal(a->conf.nnz, b->conf.nnz);
    assert_memory_equal(a->conf.indptr, b->conf.indptr, (size_t)(a->n_users + 1) * 8);
    assert_memory_equal(a->conf.indices, b->conf.indices, (size_t)a->conf.nnz * 4);
    assert_memory_equal(a->conf.data, b->conf.data, (size_t)a->conf.nnz * 4);

    /* Ids and titles. */
    for (int64_t u = 0; u < a->n_users; u++)
        assert_string_equal(gpuals_model_user_id(a, u), gpuals_model_user_id(b, u));
    assert_true((a->titles == NULL) == (b->titles == NULL));
    for (int64_t i = 0; i < a->n_items; i++) {
        assert_string_equal(gpuals_model_item_id(a, i), gpuals_model_item_id(b, i));
        assert_string_equal(gpuals_model_item_title(a, i), gpuals_model_item_title(b, i));
        if (a->titles) assert_true((a->titles[i] == NULL) == (b->titles[i] == NULL));
    }

    /* Settings, summary and the training record. */
    const gpuals_params *p = &a->params, *q = &b->params;
    assert_int_equal(p->factors, q->factors);
    assert_true(p->reg == q->reg && p->alpha == q->alpha && p->eps == q->eps);
    assert_int_equal(p->reg_scale, q->reg_scale);
    assert_int_equal(p->confidence, q->confidence);
    assert_int_equal(p->iters, q->iters);
    assert_int_equal(p->solver, q->solver);
    assert_int_equal(p->cg_steps, q->cg_steps);
    assert_true(p->seed == q->seed);
    assert_int_equal(p->threads, q->threads);
    assert_int_equal(p->dtype, q->dtype);
    assert_int_equal(p->compute_loss, q->compute_loss);
    assert_int_equal(p->device, q->device);
    assert_memory_equal(&a->summary, &b->summary, sizeof a->summary);
    assert_true(a->final_loss == b->final_loss ||
                (isnan(a->final_loss) && isnan(b->final_loss)));
    assert_true(a->train_seconds == b->train_seconds);
    assert_int_equal(a->iterations_run, b->iterations_run);
    assert_int_equal(a->device_used, b->device_used);
}

/* The first n hits of a and b are identical (index and score bits). */
static void assert_same_hits(const gpuals_hit *a, const gpuals_hit *b, int n)
{
    for (int k = 0; k < n; k++) {
        assert_int_equal(a[k].index, b[k].index);
        assert_memory_equal(&a[k].score, &b[k].score, sizeof a[k].score);
    }
}

/* Every query answers identically on a and b. */
static void assert_same_answers(const gpuals_model *a, const gpuals_model *b)
{
    gpuals_hit ha[64], hb[64];
    int na, nb;
    for (int64_t u = 0; u < a->n_users; u++) {
        TQ_OK(gpuals_recommend(a, u, 64, NULL, ha, &na));
        TQ_OK(gpuals_recommend(b, u, 64, NULL, hb, &nb));
        assert_int_equal(na, nb);
        assert_same_hits(ha, hb, na);
        TQ_OK(gpuals_similar_users(a, u, 64, 0, ha, &na));
        TQ_OK(gpuals_similar_users(b, u, 64, 0, hb, &nb));
        assert_int_equal(na, nb);
        assert_same_hits(ha, hb, na);
        for (int64_t i = 0; i < a->n_items; i += 5) {
            double ta, sa, tb, sb;
            TQ_OK(gpuals_explain(a, u, i, 64, &ta, &sa, ha, &na));
            TQ_OK(gpuals_explain(b, u, i, 64, &tb, &sb, hb, &nb));
            assert_true(ta == tb && sa == sb && na == nb);
            assert_same_hits(ha, hb, na);
        }
    }
    for (int64_t i = 0; i < a->n_items; i++) {
        TQ_OK(gpuals_similar_items(a, i, 64, 1, ha, &na));
        TQ_OK(gpuals_similar_items(b, i, 64, 1, hb, &nb));
        assert_int_equal(na, nb);
        assert_same_hits(ha, hb, na);
    }
    float sa, sb, xa[4], xb[4];
    TQ_OK(gpuals_score(a, "tab\there", "it\tem", &sa));
    TQ_OK(gpuals_score(b, "tab\there", "it\tem", &sb));
    assert_true(sa == sb);
    int64_t items[3] = {0, 2, 2};
    float values[3] = {5, 1, 2};
    TQ_OK(gpuals_fold_in(a, items, values, 3, xa));
    TQ_OK(gpuals_fold_in(b, items, values, 3, xb));
    assert_memory_equal(xa, xb, sizeof xa);
    int64_t ia, ib;
    TQ_OK(lookup_item(a, "Title\twith\ttabs", &ia));
    TQ_OK(lookup_item(b, "Title\twith\ttabs", &ib));
    assert_int_equal(ia, ib);
}

static void test_save_load_identical(void **state)
{
    fixture *fx = *state;
    gpuals_model *back = NULL;
    TQ_OK(gpuals_model_save(fx->m, fx->model));
    TQ_OK(gpuals_model_load(fx->model, &back));
    assert_same_model(fx->m, back);
    assert_same_answers(fx->m, back);
    gpuals_model_free(back);

    /* No loss recorded and no titles also survive. */
    double loss = fx->m->final_loss;
    char **titles = fx->m->titles;
    fx->m->final_loss = NAN;
    fx->m->titles = NULL;
    TQ_OK(gpuals_model_save(fx->m, fx->model));
    fx->m->titles = titles;
    fx->m->final_loss = loss;
    TQ_OK(gpuals_model_load(fx->model, &back));
    assert_true(isnan(back->final_loss));
    assert_null(back->titles);
    gpuals_model_free(back);

    /* The meta data says what it should. */
    json_error_t err;
    json_t *meta = json_load_file(tq_path(fx->model, "meta.json"), 0, &err);
    assert_non_null(meta);
    assert_string_equal(json_string_value(json_object_get(meta, "format")), "gpu-als model");
    assert_string_equal(json_string_value(json_object_get(json_object_get(meta, "params"),
                                                          "seed")), "18446744073709551600");
    assert_int_equal(json_integer_value(json_object_get(meta, "iterations_run")), 5);
    assert_true(json_real_value(json_object_get(json_object_get(meta, "summary"),
                                                "min_rating")) == 1.5);
    json_t *files = json_object_get(meta, "files");
    assert_int_equal(json_object_size(files), 7);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(files, "users.tsv"),
                                                        "bytes")),
                     file_size(tq_path(fx->model, "users.tsv")));
    json_decref(meta);
}

static void test_save_replaces_and_refuses(void **state)
{
    fixture *fx = *state;

    /* A second save replaces the first, leaving no temporary or old directory behind. */
    TQ_OK(gpuals_model_save(fx->m, fx->model));
    float saved = fx->m->X[0];
    fx->m->X[0] = 42.0f;
    char with_slash[4200];
    tq_format(with_slash, sizeof with_slash, "%s/", fx->model);
    TQ_OK(gpuals_model_save(fx->m, with_slash));
    fx->m->X[0] = saved;
    gpuals_model *back = NULL;
    TQ_OK(gpuals_model_load(fx->model, &back));
    assert_true(back->X[0] == 42.0f);
    gpuals_model_free(back);
    assert_int_equal(count_entries(fx->dir, ".tmp-"), 0);
    assert_int_equal(count_entries(fx->dir, ".old-"), 0);

    /* A directory that is not a model, and a plain file, are left alone. */
    char other[4200];
    tq_format(other, sizeof other, "%s/notes", fx->dir);
    assert_int_equal(mkdir(other, 0777), 0);
    write_raw(tq_path(other, "keep.txt"), "mine", 4);
    assert_int_equal(gpuals_model_save(fx->m, other), GPUALS_ERR_IO);
    assert_non_null(strstr(gpuals_last_error(), "not a gpu-als model directory"));
    assert_int_equal(file_size(tq_path(other, "keep.txt")), 4);
    tq_format(other, sizeof other, "%s/file", fx->dir);
    write_raw(other, "x", 1);
    assert_int_equal(gpuals_model_save(fx->m, other), GPUALS_ERR_IO);
    assert_int_equal(file_size(other), 1);

    /* A directory whose meta.json is someone else's, with or without other files, and a model
     * directory holding one more file: nothing in them is touched. */
    tq_format(other, sizeof other, "%s/project", fx->dir);
    assert_int_equal(mkdir(other, 0777), 0);
    write_raw(tq_path(other, "meta.json"), "{\"name\": \"mine\"}", 16);
    write_raw(tq_path(other, "thesis.tex"), "mine", 4);
    assert_int_equal(gpuals_model_save(fx->m, other), GPUALS_ERR_IO);
    assert_non_null(strstr(gpuals_last_error(), "it holds thesis.tex, which is not a model file"));
    assert_int_equal(unlink(tq_path(other, "thesis.tex")), 0);
    assert_int_equal(gpuals_model_save(fx->m, other), GPUALS_ERR_IO);
    assert_non_null(strstr(gpuals_last_error(), "it has no meta.json of a gpu-als model"));
    assert_int_equal(file_size(tq_path(other, "meta.json")), 16);
    write_raw(tq_path(fx->model, "notes.txt"), "mine", 4);
    assert_int_equal(gpuals_model_save(fx->m, fx->model), GPUALS_ERR_IO);
    assert_non_null(strstr(gpuals_last_error(), "it holds notes.txt"));
    assert_int_equal(file_size(tq_path(fx->model, "notes.txt")), 4);
    assert_int_equal(unlink(tq_path(fx->model, "notes.txt")), 0);

    /* A symbolic link, even to a model directory, is not replaced. */
    tq_format(other, sizeof other, "%s/link", fx->dir);
    assert_int_equal(symlink(fx->model, other), 0);
    assert_int_equal(gpuals_model_save(fx->m, other), GPUALS_ERR_IO);
    assert_non_null(strstr(gpuals_last_error(), "it is a symbolic link"));
    struct stat lst;
    assert_int_equal(lstat(other, &lst), 0);
    assert_true(S_ISLNK(lst.st_mode));
    assert_int_equal(count_entries(fx->dir, ".tmp-"), 0);

    /* A missing parent directory: nothing is created. */
    tq_format(other, sizeof other, "%s/no/such/dir", fx->dir);
    assert_int_equal(gpuals_model_save(fx->m, other), GPUALS_ERR_IO);
    assert_int_equal(count_entries(fx->dir, ".tmp-"), 0);

    /* An empty directory may be used. */
    tq_format(other, sizeof other, "%s/empty", fx->dir);
    assert_int_equal(mkdir(other, 0777), 0);
    TQ_OK(gpuals_model_save(fx->m, other));
    TQ_OK(gpuals_model_load(other, &back));
    gpuals_model_free(back);
}

/* renameat2 as the library calls it, with a hook run once just before: what the hook does
 * happens between a save's check of its target and the rename that replaces it. (The test is
 * linked with --wrap=renameat2.) */
int __real_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                     unsigned int flags);
int __wrap_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                     unsigned int flags);
static void (*before_rename)(void);
static int no_exchange; /* act as a file system without RENAME_EXCHANGE */
static char race_target[4200], race_other[4200];

int __wrap_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                     unsigned int flags)
{
    void (*hook)(void) = before_rename;
    before_rename = NULL;
    if (hook) hook();
    if (no_exchange && (flags & RENAME_EXCHANGE)) {
        errno = EINVAL;
        return -1;
    }
    return __real_renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
}

/* Someone adds a file to the previous model directory. */
static void add_foreign_file(void) { write_raw(tq_path(race_target, "notes.txt"), "mine", 4); }

/* Someone puts a link to their own directory where the previous model was. */
static void swap_in_link(void)
{
    char aside[4300];
    tq_format(aside, sizeof aside, "%s.moved", race_target);
    assert_int_equal(rename(race_target, aside), 0);
    assert_int_equal(symlink(race_other, race_target), 0);
}

/* Saves of one model from two threads at once: 8 rounds onto path, then 8 rounds each onto a
 * new path "<path>-<k>", the threads meeting at a barrier before each save. */
typedef struct {
    const gpuals_model *m;
    const char *path;
    pthread_barrier_t *barrier;
    int failures;
    char last_error[512];
} saver;

static void *save_repeatedly(void *arg)
{
    saver *sv = arg;
    char fresh[4400];
    for (int k = 0; k < 16; k++) {
        if (k < 8) snprintf(fresh, sizeof fresh, "%s", sv->path);
        else snprintf(fresh, sizeof fresh, "%s-%d", sv->path, k);
        pthread_barrier_wait(sv->barrier);
        if (gpuals_model_save(sv->m, fresh) != GPUALS_OK) {
            sv->failures++;
            snprintf(sv->last_error, sizeof sv->last_error, "%s", gpuals_last_error());
        }
    }
    return NULL;
}

/* Loads while another thread saves two different models in turn onto the same path. */
typedef struct {
    const char *path;
    volatile int *done;
    int loads, failures;
    char last_error[512];
} loader;

static void *load_repeatedly(void *arg)
{
    loader *ld = arg;
    while (!*ld->done || ld->loads == 0) {
        gpuals_model *back = NULL;
        gpuals_status s = gpuals_model_load(ld->path, &back);
        ld->loads++;
        if (s != GPUALS_OK || !(back->X[0] == 1.0f || back->X[0] == 2.0f)) {
            ld->failures++;
            snprintf(ld->last_error, sizeof ld->last_error, "%s",
                     s != GPUALS_OK ? gpuals_last_error() : "a model neither saved");
        }
        gpuals_model_free(back);
    }
    return NULL;
}

/* Whatever changes at the target while a save runs, the save deletes nothing it did not
 * write; paths through the target itself and names like its temporary ones are safe too. */
static void test_save_races(void **state)
{
    fixture *fx = *state;
    char p[4300];
    gpuals_model *back = NULL;

    /* A file added to the previous model between the check and the swap: the new model is in
     * place, the previous directory is kept (with the file) and the message says where. */
    tq_format(race_target, sizeof race_target, "%s/race1", fx->dir);
    TQ_OK(gpuals_model_save(fx->m, race_target));
    before_rename = add_foreign_file;
    assert_int_equal(gpuals_model_save(fx->m, race_target), GPUALS_ERR_IO);
    assert_non_null(strstr(gpuals_last_error(), "changed during the save"));
    const char *kept = strstr(gpuals_last_error(), "was kept at ");
    assert_non_null(kept);
    tq_format(p, sizeof p, "%s/notes.txt", kept + strlen("was kept at "));
    assert_int_equal(file_size(p), 4);
    TQ_OK(gpuals_model_load(race_target, &back));
    gpuals_model_free(back);

    /* The previous model replaced by a link to someone's directory holding files with model
     * names: nothing in it is removed. */
    tq_format(race_target, sizeof race_target, "%s/race2", fx->dir);
    tq_format(race_other, sizeof race_other, "%s/theirs", fx->dir);
    assert_int_equal(mkdir(race_other, 0777), 0);
    write_raw(tq_path(race_other, "meta.json"), "{}", 2);
    write_raw(tq_path(race_other, "report.docx"), "mine", 4);
    TQ_OK(gpuals_model_save(fx->m, race_target));
    before_rename = swap_in_link;
    assert_int_equal(gpuals_model_save(fx->m, race_target), GPUALS_ERR_IO);
    assert_non_null(strstr(gpuals_last_error(), "changed during the save"));
    assert_int_equal(file_size(tq_path(race_other, "meta.json")), 2);
    assert_int_equal(file_size(tq_path(race_other, "report.docx")), 4);
    TQ_OK(gpuals_model_load(race_target, &back));
    gpuals_model_free(back);
    assert_null(before_rename);

    /* A path that passes through the model it replaces ("m/../m"). */
    tq_format(p, sizeof p, "%s/race3", fx->dir);
    TQ_OK(gpuals_model_save(fx->m, p));
    tq_format(p, sizeof p, "%s/race3/../race3", fx->dir);
    TQ_OK(gpuals_model_save(fx->m, p));
    TQ_OK(gpuals_model_load(p, &back));
    gpuals_model_free(back);
    assert_int_equal(count_entries(fx->dir, "race3.tmp-"), 0);
    assert_int_equal(count_entries(fx->dir, "race3.old-"), 0);
    tq_format(p, sizeof p, "%s/race3/..", fx->dir);
    assert_int_equal(gpuals_model_save(fx->m, p), GPUALS_ERR_IO);
    assert_non_null(strstr(gpuals_last_error(), "name the model directory itself"));

    /* Where directories cannot be swapped, the previous model is moved aside first. */
    no_exchange = 1;
    fx->m->X[0] += 1.0f;
    tq_format(p, sizeof p, "%s/race3", fx->dir);
    TQ_OK(gpuals_model_save(fx->m, p));
    TQ_OK(gpuals_model_load(p, &back));
    assert_true(back->X[0] == fx->m->X[0]);
    gpuals_model_free(back);
    fx->m->X[0] -= 1.0f;
    before_rename = add_foreign_file;
    tq_format(race_target, sizeof race_target, "%s", p);
    assert_int_equal(gpuals_model_save(fx->m, p), GPUALS_ERR_IO);
    assert_non_null(strstr(gpuals_last_error(), "changed during the save"));
    no_exchange = 0;
    assert_int_equal(count_entries(fx->dir, "race3.tmp-"), 0);
    assert_int_equal(count_entries(fx->dir, "race3.old-"), 1);

    /* Loading while the model is being replaced reads one whole model, never reports damage. */
    tq_format(p, sizeof p, "%s/swapped", fx->dir);
    float first = fx->m->X[0];
    fx->m->X[0] = 1.0f;
    TQ_OK(gpuals_model_save(fx->m, p));
    volatile int done = 0;
    loader ld[2] = {{p, &done, 0, 0, ""}, {p, &done, 0, 0, ""}};
    pthread_t lt[2];
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_create(&lt[t], NULL, load_repeatedly, &ld[t]), 0);
    for (int k = 0; k < 40; k++) {
        fx->m->X[0] = k % 2 ? 1.0f : 2.0f;
        TQ_OK(gpuals_model_save(fx->m, p));
    }
    done = 1;
    for (int t = 0; t < 2; t++) pthread_join(lt[t], NULL);
    fx->m->X[0] = first;
    for (int t = 0; t < 2; t++)
        if (ld[t].failures) fail_msg("%d of %d loads failed: %s", ld[t].failures, ld[t].loads,
                                     ld[t].last_error);

    /* A name of 250 bytes (its temporary sibling's name is shortened to fit NAME_MAX). */
    char longname[300];
    memset(longname, 'm', 250);
    longname[250] = '\0';
    tq_format(p, sizeof p, "%s/%s", fx->dir, longname);
    TQ_OK(gpuals_model_save(fx->m, p));
    TQ_OK(gpuals_model_save(fx->m, p));
    TQ_OK(gpuals_model_load(p, &back));
    gpuals_model_free(back);

    /* Directories already named like the save's temporary ones are someone else's. */
    tq_format(p, sizeof p, "%s/race4", fx->dir);
    for (int k = 0; k < 64; k++) {
        char other[4400];
        tq_format(other, sizeof other, "%s.tmp-%ld-%d", p, (long)getpid(), k);
        assert_int_equal(mkdir(other, 0777), 0);
        write_raw(tq_path(other, "user_factors.npy"), "mine", 4);
    }
    TQ_OK(gpuals_model_save(fx->m, p));
    TQ_OK(gpuals_model_save(fx->m, p));

    /* Two threads saving to the same path, an existing model or a new one: each save is
     * whole, none fails. */
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, 2), 0);
    saver sv[2] = {{fx->m, p, &barrier, 0, ""}, {fx->m, p, &barrier, 0, ""}};
    pthread_t th[2];
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_create(&th[t], NULL, save_repeatedly, &sv[t]), 0);
    for (int t = 0; t < 2; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&barrier);
    for (int t = 0; t < 2; t++)
        if (sv[t].failures) fail_msg("%d concurrent saves failed: %s", sv[t].failures,
                                     sv[t].last_error);
    TQ_OK(gpuals_model_load(p, &back));
    gpuals_model_free(back);
    for (int k = 0; k < 64; k++) {
        char other[4400];
        tq_format(other, sizeof other, "%s.tmp-%ld-%d/user_factors.npy", p, (long)getpid(), k);
        assert_int_equal(file_size(other), 4);
    }
}

/* What a fatal signal's handler removes: the registered temporaries, a model directory's files
 * by name (anything else there stays, and so does the directory then), nothing dropped. */
static void test_signal_cleanup(void **state)
{
    fixture *fx = *state;
    static const char *const names[] = {"meta.json", "users.tsv", NULL};
    char d1[4300], d2[4300], f1[4300], f2[4300];
    tq_format(d1, sizeof d1, "%s/sig.tmp-1", fx->dir);
    tq_format(d2, sizeof d2, "%s/sig.tmp-2", fx->dir);
    tq_format(f1, sizeof f1, "%s/out.tmp-1", fx->dir);
    tq_format(f2, sizeof f2, "%s/out.tmp-2", fx->dir);
    assert_int_equal(mkdir(d1, 0777), 0);
    assert_int_equal(mkdir(d2, 0777), 0);
    write_raw(tq_path(d1, "meta.json"), "{}", 2);
    write_raw(tq_path(d1, "users.tsv"), "x", 1);
    write_raw(tq_path(d2, "meta.json"), "{}", 2);
    write_raw(tq_path(d2, "mine.txt"), "mine", 4);
    write_raw(f1, "x", 1);
    write_raw(f2, "x", 1);
    int s1 = tmppath_add(d1, TMPPATH_MODEL_DIR, names);
    int s2 = tmppath_add(d2, TMPPATH_MODEL_DIR, names);
    int s3 = tmppath_add(f1, TMPPATH_FILE, NULL);
    int s4 = tmppath_add(f2, TMPPATH_FILE, NULL);
    assert_true(s1 >= 0 && s2 >= 0 && s3 >= 0 && s4 >= 0);
    tmppath_drop(s4);
    tmppath_remove_all();
    struct stat st;
    assert_int_equal(lstat(d1, &st), -1);
    assert_int_equal(lstat(tq_path(d2, "meta.json"), &st), -1);
    assert_int_equal(file_size(tq_path(d2, "mine.txt")), 4);
    assert_int_equal(lstat(f1, &st), -1);
    assert_int_equal(file_size(f2), 1);
    tmppath_drop(s1);
    tmppath_drop(s2);
    tmppath_drop(s3);

    /* A registered directory that has become a symbolic link is not followed. */
    char theirs[4300], link[4300];
    tq_format(theirs, sizeof theirs, "%s/sig-theirs", fx->dir);
    tq_format(link, sizeof link, "%s/sig.tmp-3", fx->dir);
    assert_int_equal(mkdir(theirs, 0777), 0);
    write_raw(tq_path(theirs, "meta.json"), "{}", 2);
    assert_int_equal(symlink(theirs, link), 0);
    int s5 = tmppath_add(link, TMPPATH_MODEL_DIR, names);
    tmppath_remove_all();
    tmppath_drop(s5);
    assert_int_equal(file_size(tq_path(theirs, "meta.json")), 2);
}

/* Save a fresh copy of the model at <dir>/<name> and return its path (static buffer). */
static const char *fresh_copy(fixture *fx, const char *name)
{
    static char path[4200];
    tq_format(path, sizeof path, "%s/%s", fx->dir, name);
    TQ_OK(gpuals_model_save(fx->m, path));
    return path;
}

/* Loading path fails with status want and a message containing every needle. */
static void assert_load_fails(const char *path, gpuals_status want, const char *needle1,
                              const char *needle2)
{
    gpuals_model *m = (gpuals_model *)1;
    gpuals_status s = gpuals_model_load(path, &m);
    if (s != want)
        fail_msg("load gave %s (%s), expected %s", gpuals_status_name(s), gpuals_last_error(),
                 gpuals_status_name(want));
    assert_null(m);
    const char *msg = gpuals_last_error();
    if (needle1 && !strstr(msg, needle1)) fail_msg("\"%s\" lacks \"%s\"", msg, needle1);
    if (needle2 && !strstr(msg, needle2)) fail_msg("\"%s\" lacks \"%s\"", msg, needle2);
}

/* Change meta.json of model dir: set object obj's key to the integer v. */
static void edit_meta(const char *dir, const char *obj, const char *key, json_int_t v)
{
    char path[4300];
    tq_format(path, sizeof path, "%s/meta.json", dir);
    json_error_t err;
    json_t *meta = json_load_file(path, 0, &err);
    assert_non_null(meta);
    json_t *o = json_object_get(meta, obj);
    assert_non_null(o);
    assert_int_equal(json_object_set_new(o, key, json_integer(v)), 0);
    assert_int_equal(json_dump_file(meta, path, JSON_INDENT(2)), 0);
    json_decref(meta);
}

/* Record the present size of file name of model dir in its meta.json, with the checksum hex,
 * or (hex NULL) the file's true XXH64: damage that meta.json agrees with. */
static void set_file_record(const char *dir, const char *name, const char *hex)
{
    char path[4300], digest[17];
    tq_format(path, sizeof path, "%s/%s", dir, name);
    long len;
    unsigned char *bytes = slurp(path, &len);
    snprintf(digest, sizeof digest, "%016llx", (unsigned long long)XXH64(bytes, (size_t)len, 0));
    free(bytes);
    tq_format(path, sizeof path, "%s/meta.json", dir);
    json_error_t err;
    json_t *meta = json_load_file(path, 0, &err);
    assert_non_null(meta);
    assert_int_equal(json_object_set_new(json_object_get(meta, "files"), name,
                                         json_pack("{s:I, s:s}", "bytes", (json_int_t)len,
                                                   "xxh64", hex ? hex : digest)),
                     0);
    assert_int_equal(json_dump_file(meta, path, JSON_INDENT(2)), 0);
    json_decref(meta);
}

/* Write text as the whole of file name in model dir. */
static void write_text(const char *dir, const char *name, const char *text)
{
    char path[4300];
    tq_format(path, sizeof path, "%s/%s", dir, name);
    write_raw(path, text, strlen(text));
}

/* Replace the first two lines of the file at path (a .tsv's header and first row) with the n
 * bytes of head. */
static void replace_head(const char *path, const char *head, size_t n)
{
    long len;
    unsigned char *bytes = slurp(path, &len);
    char *second = memchr(bytes, '\n', (size_t)len);
    assert_non_null(second);
    second = memchr(second + 1, '\n', (size_t)len - (size_t)(second + 1 - (char *)bytes));
    assert_non_null(second);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(head, 1, n, f);
    fwrite(second + 1, 1, (size_t)len - (size_t)(second + 1 - (char *)bytes), f);
    fclose(f);
    free(bytes);
}

/* Damaged model directories are GPUALS_ERR_MISMATCH (exit 6) naming the file, never a parse
 * error or an attempt to allocate what a damaged meta.json says. */
static void test_damage_is_mismatch(void **state)
{
    fixture *fx = *state;
    char p[4300];
    assert_int_equal(gpuals_status_exit_code(GPUALS_ERR_MISMATCH), 6);

    /* A flipped byte in an .npy header: the checksum, checked before the header is parsed. */
    const char *m = fresh_copy(fx, "d1");
    tq_format(p, sizeof p, "%s/user_factors.npy", m);
    flip_byte(p, file_size(p) - 20); /* inside "{'descr': '<f4', ..." */
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "checksum mismatch in user_factors.npy", NULL);

    /* 10^12 users in meta.json: refused naming meta.json, before any allocation. */
    m = fresh_copy(fx, "d2");
    edit_meta(m, "shape", "users", 1000000000000LL);
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "meta.json: shape.users x shape.factors = "
                      "1000000000000 x 4 float32 values do not fit", "user_factors.npy");
    m = fresh_copy(fx, "d3");
    edit_meta(m, "shape", "nnz", (json_int_t)1 << 40);
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "meta.json", "indices.npy");
    m = fresh_copy(fx, "d4");
    edit_meta(m, "shape", "items", (json_int_t)INT32_MAX);
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "meta.json", "shape.items");

    /* An empty meta.json, one that is not an object, one without the fields, a directory. */
    m = fresh_copy(fx, "d5");
    write_text(m, "meta.json", "");
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "meta.json: empty", "not a gpu-als model "
                      "directory or damaged");
    write_text(m, "meta.json", "[1, 2]\n");
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "meta.json", "not a gpu-als model directory");
    write_text(m, "meta.json", "{\"format\": \"gpu-als model\", \"format_version\": 1}\n");
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "meta.json", "shape");
    write_text(m, "meta.json", "not json at all");
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "meta.json:1:", "not a gpu-als model directory");
    tq_format(p, sizeof p, "%s/meta.json", m);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkdir(p, 0777), 0);
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "meta.json: not a regular file",
                      "the model directory is incomplete or damaged");

    /* Damage that meta.json agrees with is still damage: a broken users.tsv line and an .npy
     * file of another type, both with their size and checksum recorded. */
    m = fresh_copy(fx, "d7");
    write_text(m, "users.tsv", "index\tid\n0\tplain\nx\ty\n2\tz\n3\ta\n4\tb\n5\tc\n6\td\n"
                               "7\te\n");
    set_file_record(m, "users.tsv", NULL);
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "users.tsv:3", "not a gpu-als model directory");

    /* A raw NUL byte inside an id or a title (the writer escapes nothing into one): damage, not
     * an id that could never be looked up again; inside an index field ("0" then junk) too. */
    static const char nul_id[] = "index\tid\n0\tali\0ce\n";
    static const char nul_index[] = "index\tid\n0\0junk\tplain\n";
    const struct {
        const char *head, *needle;
        size_t n;
    } nul_cases[] = {{nul_id, "users.tsv:2: a NUL byte in the id", sizeof nul_id - 1},
                     {nul_index, "users.tsv:2: index", sizeof nul_index - 1}};
    for (int c = 0; c < 2; c++) {
        m = fresh_copy(fx, c ? "d7c" : "d7b");
        tq_format(p, sizeof p, "%s/users.tsv", m);
        replace_head(p, nul_cases[c].head, nul_cases[c].n);
        set_file_record(m, "users.tsv", NULL);
        assert_load_fails(m, GPUALS_ERR_MISMATCH, nul_cases[c].needle, NULL);
    }
    m = fresh_copy(fx, "d8");
    tq_format(p, sizeof p, "%s/data.npy", m);
    int64_t n = fx->m->conf.nnz;
    int32_t *ints = calloc((size_t)n, sizeof *ints);
    assert_non_null(ints);
    TQ_OK(npy_write(p, NPY_INT32, 1, &n, ints, NULL, NULL));
    free(ints);
    set_file_record(m, "data.npy", NULL);
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "data.npy", "'<i4'");

    /* A setting out of the range training accepts: damage, named. */
    m = fresh_copy(fx, "d10");
    edit_meta(m, "params", "alpha", -5);
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "meta.json: params: alpha must be a finite "
                      "number > 0", "not a gpu-als model directory or damaged");
    m = fresh_copy(fx, "d11");
    edit_meta(m, "params", "eps", 0);
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "meta.json: params: the log confidence needs a "
                      "finite eps > 0", NULL);

    /* A thread count above today's bound (earlier versions allowed any) reads as the bound. */
    m = fresh_copy(fx, "d12");
    edit_meta(m, "params", "threads", 5000);
    gpuals_model *back = NULL;
    TQ_OK(gpuals_model_load(m, &back));
    assert_int_equal(back->params.threads, GPUALS_MAX_THREADS);
    gpuals_model_free(back);
}

/* A model too large to hold says so in its own terms. */
static void test_model_too_large(void **state)
{
    (void)state;
    gpuals_params p = tq_params(4, GPUALS_CONF_IMPLICIT, GPUALS_REG_NONE);
    gpuals_model *m = (gpuals_model *)1;
    assert_int_equal(model_alloc(INT64_MAX / 2, 3, &p, &m), GPUALS_ERR_NOMEM);
    assert_null(m);
    assert_string_equal(gpuals_last_error(), "the factors of 4611686018427387903 users and 3 "
                        "items (4 each) are too large to hold");
}

/* meta.json is written as a text file: it ends with a newline. */
static void test_meta_final_newline(void **state)
{
    fixture *fx = *state;
    const char *m = fresh_copy(fx, "nl");
    long len;
    unsigned char *text = slurp(tq_path(m, "meta.json"), &len);
    assert_true(len > 2);
    assert_int_equal(text[len - 1], '\n');
    assert_int_equal(text[len - 2], '}');
    free(text);
}

static void test_corruption_is_refused(void **state)
{
    fixture *fx = *state;
    char p[4300];

    /* A changed byte in the factor data, the id list, and the matrix values. */
    const char *m = fresh_copy(fx, "c1");
    flip_byte(tq_path(m, "item_factors.npy"), 1);
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "item_factors.npy", "checksum");
    m = fresh_copy(fx, "c2");
    flip_byte(tq_path(m, "users.tsv"), 3);
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "users.tsv", "checksum");
    m = fresh_copy(fx, "c3");
    flip_byte(tq_path(m, "data.npy"), 2);
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "data.npy", NULL);

    /* A truncated file: by its size; with meta.json patched to its size only, by its checksum;
     * with its checksum patched too, by its header (still a damaged directory). */
    m = fresh_copy(fx, "c4");
    tq_format(p, sizeof p, "%s/indices.npy", m);
    long size = file_size(p);
    assert_int_equal(truncate(p, size - 4), 0);
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "indices.npy", "truncated");
    set_file_record(m, "indices.npy", "0000000000000000");
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "checksum mismatch in indices.npy", NULL);
    set_file_record(m, "indices.npy", NULL);
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "indices.npy", "truncated");

    /* A wrong shape in meta.json: the first file that disagrees is named, with meta.json. */
    m = fresh_copy(fx, "c5");
    edit_meta(m, "shape", "users", fx->m->n_users + 1);
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "user_factors.npy", "meta.json");
    m = fresh_copy(fx, "c6");
    edit_meta(m, "shape", "nnz", fx->m->conf.nnz - 1);
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "indices.npy", "meta.json");
    m = fresh_copy(fx, "c7");
    edit_meta(m, "shape", "factors", 5);
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "meta.json", "factors");

    /* A broken meta.json, a file instead of a dir. */
    m = fresh_copy(fx, "c9");
    tq_format(p, sizeof p, "%s/meta.json", m);
    assert_int_equal(truncate(p, file_size(p) / 2), 0);
    assert_load_fails(m, GPUALS_ERR_MISMATCH, "meta.json", "not a gpu-als model directory or "
                      "damaged");
    assert_load_fails(tq_path(fresh_copy(fx, "c10"), "users.tsv"), GPUALS_ERR_IO,
                      "not a model directory", NULL);
}

/* A model directory missing any one of its files, meta.json included, or holding a directory
 * in a file's place, is incomplete: GPUALS_ERR_MISMATCH (exit 6) naming the file. What is not a
 * model directory at all (a missing path, a directory holding no model file) is GPUALS_ERR_IO
 * (exit 3), and an empty path a usage error. */
static void test_incomplete_directory(void **state)
{
    fixture *fx = *state;
    static const char *const members[] = {
        "meta.json", "user_factors.npy", "item_factors.npy", "indptr.npy",
        "indices.npy", "data.npy",       "users.tsv",        "items.tsv",
    };
    char p[4300], name[64];
    for (size_t k = 0; k < sizeof members / sizeof members[0]; k++) {
        tq_format(name, sizeof name, "gone%zu", k);
        const char *m = fresh_copy(fx, name);
        tq_format(p, sizeof p, "%s/%s", m, members[k]);
        assert_int_equal(unlink(p), 0);
        assert_load_fails(m, GPUALS_ERR_MISMATCH, p, "No such file or directory: the model "
                          "directory is incomplete or damaged");
        assert_int_equal(mkdir(p, 0777), 0);
        assert_load_fails(m, GPUALS_ERR_MISMATCH, p, "not a regular file: the model directory "
                          "is incomplete or damaged");
    }

    /* Not model directories: no meta.json and no other model file; a missing path. */
    tq_format(p, sizeof p, "%s/plain-dir", fx->dir);
    assert_int_equal(mkdir(p, 0777), 0);
    write_raw(tq_path(p, "notes.txt"), "mine", 4);
    assert_load_fails(p, GPUALS_ERR_IO, "plain-dir: not a gpu-als model directory: it has no "
                      "meta.json", NULL);
    tq_format(p, sizeof p, "%s/no-such-model", fx->dir);
    assert_load_fails(p, GPUALS_ERR_IO, "no-such-model", "No such file or directory");
    gpuals_model *back = (gpuals_model *)1;
    assert_int_equal(gpuals_model_load("", &back), GPUALS_ERR_USAGE);
    assert_string_equal(gpuals_last_error(), "no model directory given");
    assert_null(back);
    assert_int_equal(gpuals_model_save(fx->m, ""), GPUALS_ERR_USAGE);
    assert_string_equal(gpuals_last_error(), "no model directory given");
}

/* A model file that cannot be opened is an i/o error, as any unreadable input, and a model
 * directory without write permission is not replaced. Only observable without the privilege
 * to read and write anyway (not as root): skipped, and reported so, there. */
static void test_unreadable_file(void **state)
{
    fixture *fx = *state;
    char p[4300];
    const char *m = fresh_copy(fx, "unreadable");
    tq_format(p, sizeof p, "%s/items.tsv", m);
    assert_int_equal(chmod(p, 0), 0);
    FILE *f = fopen(p, "rb");
    if (f) {
        fclose(f);
        assert_int_equal(chmod(p, 0644), 0);
        skip(); /* this user reads files whatever their permissions */
    }
    assert_load_fails(m, GPUALS_ERR_IO, "items.tsv: cannot open", "Permission denied");
    assert_int_equal(chmod(p, 0644), 0);

    /* A read-only previous model is refused before anything is written, not replaced with its
     * files then left behind. */
    assert_int_equal(chmod(m, 0555), 0);
    assert_int_equal(gpuals_model_save(fx->m, m), GPUALS_ERR_IO);
    assert_non_null(strstr(gpuals_last_error(), "cannot be replaced: Permission denied"));
    assert_int_equal(count_entries(fx->dir, "unreadable."), 0);
    assert_int_equal(chmod(m, 0755), 0);
    gpuals_model *back = NULL;
    TQ_OK(gpuals_model_load(m, &back));
    gpuals_model_free(back);
}

/* ------------------------------------------------------------------------------------------ */
/* numpy                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static const char numpy_check[] =
    "import sys\n"
    "import numpy as np\n"
    "d, out = sys.argv[1], sys.argv[2]\n"
    "def load(name, dtype, ndim):\n"
    "    a = np.load(d + '/' + name, allow_pickle=False)\n"
    "    assert a.dtype == np.dtype(dtype), (name, a.dtype)\n"
    "    assert a.ndim == ndim and a.flags['C_CONTIGUOUS'], name\n"
    "    return a\n"
    "X = load('user_factors.npy', '<f4', 2)\n"
    "Y = load('item_factors.npy', '<f4', 2)\n"
    "indptr = load('indptr.npy', '<i8', 1)\n"
    "indices = load('indices.npy', '<i4', 1)\n"
    "data = load('data.npy', '<f4', 1)\n"
    "assert indptr[0] == 0 and indptr[-1] == len(indices) == len(data)\n"
    "assert len(indptr) == X.shape[0] + 1 and X.shape[1] == Y.shape[1]\n"
    "try:\n"
    "    import scipy.sparse\n"
    "    M = scipy.sparse.csr_matrix((data, indices, indptr), shape=(X.shape[0], Y.shape[0]))\n"
    "    assert M.nnz == len(data)\n"
    "except ImportError:\n"
    "    pass\n"
    "for name, a in (('X', X), ('Y', Y), ('indptr', indptr), ('indices', indices),\n"
    "                ('data', data)):\n"
    "    a.tofile(out + '/' + name + '.bin')\n";

/* A python interpreter that can import numpy, or NULL. */
static const char *python_with_numpy(void)
{
    static const char *candidates[] = {"python3", "/usr/bin/python3"};
    for (size_t k = 0; k < sizeof candidates / sizeof candidates[0]; k++) {
        char cmd[256];
        tq_format(cmd, sizeof cmd, "%s -c 'import numpy' >/dev/null 2>&1", candidates[k]);
        int rc = system(cmd);
        if (rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0) return candidates[k];
    }
    return NULL;
}

/* The file out/name holds exactly the bytes of want. */
static void assert_file_bytes(const char *out, const char *name, const void *want, size_t n)
{
    long len;
    unsigned char *got = slurp(tq_path(out, name), &len);
    assert_int_equal(len, (long)n);
    assert_memory_equal(got, want, n);
    free(got);
}

static void test_numpy_reads_the_files(void **state)
{
    fixture *fx = *state;
    const char *py = python_with_numpy();
    if (!py) {
        print_message("no python3 with numpy found: skipping the numpy.load check (the "
                      "header format is still checked by test_npy_round_trip_and_header)\n");
        return;
    }

    /* Save, write the script, run it. */
    const char *model = fresh_copy(fx, "np");
    char script[4300], out[4300], cmd[9000];
    tq_format(script, sizeof script, "%s/check.py", fx->dir);
    tq_format(out, sizeof out, "%s/np-out", fx->dir);
    assert_int_equal(mkdir(out, 0777), 0);
    write_raw(script, numpy_check, strlen(numpy_check));
    tq_format(cmd, sizeof cmd, "%s %s %s %s", py, script, model, out);
    int rc = system(cmd);
    assert_true(rc != -1 && WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 0);

    /* What numpy read is what the model holds, byte for byte. */
    const gpuals_model *m = fx->m;
    assert_file_bytes(out, "X.bin", m->X, (size_t)(m->n_users * m->factors) * sizeof(float));
    assert_file_bytes(out, "Y.bin", m->Y, (size_t)(m->n_items * m->factors) * sizeof(float));
    assert_file_bytes(out, "indptr.bin", m->conf.indptr, (size_t)(m->n_users + 1) * 8);
    assert_file_bytes(out, "indices.bin", m->conf.indices, (size_t)m->conf.nnz * 4);
    assert_file_bytes(out, "data.bin", m->conf.data, (size_t)m->conf.nnz * 4);
}

/* Unknown iterations and no filter are saved as null; a meta.json without the two fields (as
 * written before they were recorded) loads with the same meaning. */
static void test_meta_optional_fields(void **state)
{
    fixture *fx = *state;
    int iters = fx->m->iterations_run;
    double min = fx->m->summary.min_rating;
    fx->m->iterations_run = -1;
    fx->m->summary.min_rating = -INFINITY;
    TQ_OK(gpuals_model_save(fx->m, fx->model));
    fx->m->iterations_run = iters;
    fx->m->summary.min_rating = min;
    char path[4200];
    tq_format(path, sizeof path, "%s/meta.json", fx->model);
    json_error_t err;
    json_t *meta = json_load_file(path, 0, &err);
    assert_non_null(meta);
    assert_true(json_is_null(json_object_get(meta, "iterations_run")));
    json_t *summary = json_object_get(meta, "summary");
    assert_true(json_is_null(json_object_get(summary, "min_rating")));

    /* Without the fields. */
    assert_int_equal(json_object_del(meta, "iterations_run"), 0);
    assert_int_equal(json_object_del(summary, "min_rating"), 0);
    assert_int_equal(json_dump_file(meta, path, JSON_INDENT(2)), 0);
    json_decref(meta);
    gpuals_model *back = NULL;
    TQ_OK(gpuals_model_load(fx->model, &back));
    assert_int_equal(gpuals_model_iterations(back), -1);
    assert_true(isinf(back->summary.min_rating) && back->summary.min_rating < 0);
    gpuals_model_free(back);

    /* A field of the wrong type is damage. */
    meta = json_load_file(path, 0, &err);
    assert_non_null(meta);
    assert_int_equal(json_object_set_new(meta, "iterations_run", json_string("two")), 0);
    assert_int_equal(json_dump_file(meta, path, JSON_INDENT(2)), 0);
    json_decref(meta);
    assert_int_equal(gpuals_model_load(fx->model, &back), GPUALS_ERR_MISMATCH);
    assert_non_null(strstr(gpuals_last_error(), "iterations_run"));
}

int main(void)
{
    const struct CMUnitTest npy_tests[] = {
        cmocka_unit_test(test_npy_round_trip_and_header),
        cmocka_unit_test(test_npy_refuses_bad_files),
    };
    const struct CMUnitTest model_tests[] = {
        cmocka_unit_test(test_save_load_identical),
        cmocka_unit_test(test_save_replaces_and_refuses),
        cmocka_unit_test(test_corruption_is_refused),
        cmocka_unit_test(test_damage_is_mismatch),
        cmocka_unit_test(test_incomplete_directory),
        cmocka_unit_test(test_unreadable_file),
        cmocka_unit_test(test_save_races),
        cmocka_unit_test(test_signal_cleanup),
        cmocka_unit_test(test_model_too_large),
        cmocka_unit_test(test_meta_final_newline),
        cmocka_unit_test(test_meta_optional_fields),
        cmocka_unit_test(test_numpy_reads_the_files),
    };
    int failed = cmocka_run_group_tests_name("npy", npy_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("model directories", model_tests, setup, teardown);
    return failed;
}
