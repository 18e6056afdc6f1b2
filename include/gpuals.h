/*
 * gpuals.h - the public C API of gpu-als.
 *
 * gpu-als trains implicit-feedback matrix factorization (Hu, Koren & Volinsky 2008) by
 * alternating least squares, with conjugate-gradient row solves (Takacs et al. 2011) or exact
 * Cholesky solves, on the CPU (OpenMP + BLAS) or on an NVIDIA GPU (CUDA), and answers
 * recommender queries on the trained model.
 *
 * Conventions of the whole API:
 * - Every function that can fail returns a gpuals_status; GPUALS_OK is 0. On failure,
 *   gpuals_last_error() returns a message for the calling thread that names the file:line,
 *   argument or row at fault. The library never prints and never exits.
 * - A NULL pointer where a function that returns a status needs one is GPUALS_ERR_USAGE
 *   naming the argument. Functions without a status accept NULL handles and arguments too:
 *   the *_default functions and *_free do nothing, and the getters answer "nothing": 0 for
 *   sizes, -1 for indices and counts that may be unknown, NULL for pointers, ids and titles,
 *   NaN for measurements, "" for the device note (each getter below says which).
 * - Outputs are written only on success: on failure *out handles are NULL, *n_out is 0, and
 *   no other output (hits, scores, factors) is touched.
 * - Handles are opaque. Whoever receives a handle from a *_new / *_load / *_train call owns it
 *   and releases it with the matching *_free, which accepts NULL.
 * - Threads. A model, once trained or loaded, is only read: any number of threads may query
 *   one model at once (each call parallelises itself with OpenMP as well). Distinct models
 *   may be trained at once from different threads, from the same data too (training only
 *   reads it). A handle must not be freed while another thread uses it. gpuals_last_error()
 *   is kept per thread.
 * - Users and items are named by their raw ids as text (as they appear in the input file).
 *   Dense indices (0 .. n-1, in order of first appearance) are exposed only where noted.
 * - Factor matrices are row-major float32: rows x factors.
 * - No CUDA type appears here; the device is chosen with gpuals_device.
 */
#ifndef GPUALS_H
#define GPUALS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GPUALS_VERSION "0.1.0"

/* The most threads gpuals_params.threads may ask for. */
#define GPUALS_MAX_THREADS 4096

/* ------------------------------------------------------------------------------------------ */
/* Statuses                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Each status maps to one CLI exit code (see gpuals_status_exit_code and the README table). */
typedef enum {
    GPUALS_OK = 0,
    GPUALS_ERR_USAGE,      /* an invalid argument or option value */
    GPUALS_ERR_IO,         /* a file is missing, unreadable, a directory, or cannot be written */
    GPUALS_ERR_PARSE,      /* a malformed input line (the message names file:line) */
    GPUALS_ERR_EMPTY,      /* no interactions left (empty file, or all filtered out) */
    GPUALS_ERR_MISMATCH,   /* two inputs disagree (titles vs ratings, model files vs meta) */
    GPUALS_ERR_NOT_FOUND,  /* an unknown user, item or title */
    GPUALS_ERR_AMBIGUOUS,  /* a title that matches several items */
    GPUALS_ERR_NUMERIC,    /* a non-finite value or a singular system during training */
    GPUALS_ERR_NOMEM,      /* host or device memory exhausted (or too little to start) */
    GPUALS_ERR_NO_DEVICE,  /* a GPU was asked for and none is usable */
    GPUALS_ERR_DEVICE,     /* a CUDA, cuBLAS, cuSPARSE or cuSOLVER call failed */
    GPUALS_ERR_INTERNAL,   /* a broken invariant: a bug in gpu-als */
} gpuals_status;

/* A short fixed name for a status, e.g. "parse error". Never NULL. */
const char *gpuals_status_name(gpuals_status s);

/* The message of the last failure on this thread ("" if none yet). A successful call does
 * not clear it, so read it only after a call has failed. Valid until the next call into the
 * library from this thread. */
const char *gpuals_last_error(void);

/* The process exit code the CLI uses for a status (0 for GPUALS_OK). */
int gpuals_status_exit_code(gpuals_status s);

/* ------------------------------------------------------------------------------------------ */
/* Settings                                                                                   */
/* ------------------------------------------------------------------------------------------ */

typedef enum { GPUALS_DEVICE_AUTO = 0, GPUALS_DEVICE_CPU, GPUALS_DEVICE_GPU } gpuals_device;
typedef enum { GPUALS_SOLVER_CG = 0, GPUALS_SOLVER_CHOLESKY } gpuals_solver;
typedef enum { GPUALS_REG_NONE = 0, GPUALS_REG_FREQUENCY } gpuals_reg_scale;
typedef enum { GPUALS_DTYPE_FLOAT32 = 0, GPUALS_DTYPE_FLOAT64 } gpuals_dtype;

/* Confidence transforms of a (summed) rating r:
 *   IMPLICIT  c = alpha * r                      (what the `implicit` library does; default)
 *   HU        c = 1 + alpha * r                  (Hu et al. 2008, Spark)
 *   LOG       c = 1 + alpha * log(1 + r / eps)   (Hu et al. 2008, section 4) */
typedef enum {
    GPUALS_CONF_IMPLICIT = 0,
    GPUALS_CONF_HU,
    GPUALS_CONF_LOG
} gpuals_confidence;

/* Training settings. gpuals_params_default() fills the defaults of the `implicit` library:
 * 100 factors, reg 0.01, alpha 1, 15 iterations, CG with 3 steps, uniform init in [0, 0.01).
 * gpuals_train refuses (GPUALS_ERR_USAGE) a value outside the range noted on its field and an
 * enum value that is none of its constants. */
typedef struct {
    int factors;                 /* >= 1 */
    double reg;                  /* lambda: finite, >= 0 */
    gpuals_reg_scale reg_scale;  /* NONE: lambda; FREQUENCY: lambda * n_u (Spark) */
    double alpha;                /* finite, > 0 (for every confidence transform) */
    gpuals_confidence confidence;
    double eps;                  /* for GPUALS_CONF_LOG: finite, > 0 */
    int iters;                   /* >= 0; 0 returns the initial factors untrained */
    gpuals_solver solver;
    int cg_steps;                /* >= 1 with GPUALS_SOLVER_CG */
    uint64_t seed;
    int threads;                 /* 0: all cores; else 1 to GPUALS_MAX_THREADS */
    gpuals_dtype dtype;          /* float64 trains in double (the test reference), CPU only */
    int compute_loss;            /* compute the training loss after every iteration */
    gpuals_device device;
} gpuals_params;

/* NULL does nothing. */
void gpuals_params_default(gpuals_params *p);

/* 1 when this process can use a GPU (device 0 answers and runs this build's kernels), with its
 * name and free memory in description (len bytes, may be NULL); else 0 with the reason ("built
 * without CUDA", "no CUDA driver, ...", ...). The answer does not change while the process
 * runs; GPUALS_DEVICE_AUTO trains and ranks on the GPU exactly when it is 1. */
int gpuals_gpu_usable(char *description, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* Data                                                                                       */
/* ------------------------------------------------------------------------------------------ */

typedef enum {
    GPUALS_FORMAT_AUTO = 0,
    GPUALS_FORMAT_DAT,     /* MovieLens user::item::rating::time (ml-1m, ml-10m) */
    GPUALS_FORMAT_MLCSV,   /* MovieLens CSV with header userId,movieId,rating,timestamp */
    GPUALS_FORMAT_UDATA,   /* ml-100k u.data: user \t item \t rating \t time */
    GPUALS_FORMAT_DELIM,   /* user item [value [time]], comma/tab/space, optional header */
    GPUALS_FORMAT_MM,      /* Matrix Market coordinate (real, integer or pattern) */
} gpuals_format;

typedef struct {
    const char *ratings_path;   /* required */
    const char *titles_path;    /* NULL: no titles (movies.csv, movies.dat or u.item) */
    gpuals_format format;
    double min_rating;          /* keep ratings >= min_rating; -inf keeps all */
    int skip_bad_lines;         /* count and skip malformed lines instead of failing */
} gpuals_load_options;

/* No titles, format detection, min_rating -inf, skip_bad_lines 0. NULL does nothing. */
void gpuals_load_options_default(gpuals_load_options *o);

/* What reading and building the matrix found. */
typedef struct {
    int64_t raw_lines;       /* data lines read (header and blank lines excluded) */
    int64_t kept_lines;      /* lines kept after the rating filter and zero removal */
    int64_t bad_lines;       /* malformed lines skipped under skip_bad_lines */
    int64_t filtered_lines;  /* lines below min_rating */
    int64_t zero_lines;      /* explicit zero values dropped */
    int64_t duplicates;      /* lines merged into an earlier (user, item) */
    int64_t users, items;    /* CSR shape: rows and columns */
    int64_t stored;          /* CSR stored elements (kept_lines - duplicates) */
    int64_t first_bad_line;  /* line number of the first skipped line, 0 if none */
    double min_rating;       /* the min_rating the ratings were loaded with (-inf: none) */
} gpuals_summary;

typedef struct gpuals_data gpuals_data;

/* Read o->ratings_path (and o->titles_path) into *out, which the caller frees with
 * gpuals_data_free. */
gpuals_status gpuals_data_load(const gpuals_load_options *o, gpuals_data **out);
void gpuals_data_free(gpuals_data *d);
/* What loading d found; a borrowed pointer, valid until gpuals_data_free(d). NULL for a NULL
 * d. */
const gpuals_summary *gpuals_data_summary(const gpuals_data *d);

/* ------------------------------------------------------------------------------------------ */
/* Models                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct gpuals_model gpuals_model;

/* Called after every iteration with its number (1-based), the seconds that iteration took (as
 * the `implicit` library's callback) and the training loss, NaN when it was not computed. A
 * non-zero return stops training early (the model keeps the factors of that iteration, and
 * gpuals_model_iterations says how many ran). */
typedef int (*gpuals_iter_fn)(int iteration, double seconds, double loss, void *user);

/* Train on d with p; the model keeps a copy of the training matrix and of the ids/titles. cb
 * and cb_user may be NULL. With p->iters 0 the model holds the initial factors (the uniform
 * values the seed gives), untrained, and cb is never called. */
gpuals_status gpuals_train(const gpuals_data *d, const gpuals_params *p, gpuals_iter_fn cb,
                           void *cb_user, gpuals_model **out);
void gpuals_model_free(gpuals_model *m);

/* Write the model as the directory path: meta.json (settings, shapes, the checksum of every
 * other file), the factors and training matrix as .npy files, and the ids and titles as .tsv.
 * Everything is written under a temporary name beside path and put in place by one rename, so
 * path always holds a whole model, the previous one or the new one. path may be new, an empty
 * directory, or a previous model directory (its meta.json names the gpu-als model format and
 * it holds the model's files alone), which is replaced and removed; anything else (a file, a
 * symbolic link, a directory with other files, a previous model without write permission) is
 * refused with GPUALS_ERR_IO before anything is written, and a save never deletes a file it
 * did not write. Saves from several threads or processes onto one path all succeed, the last
 * to finish winning, on file systems that can swap two directories (Linux's RENAME_EXCHANGE:
 * ext4, xfs, btrfs, tmpfs and most others); on one that cannot, the previous model is moved
 * aside for a moment instead, and saves racing each other there may fail (the previous model
 * is then never deleted: the message says where it is). A failure leaves nothing beside path, but
 * for one case the message names: when the new model is in place and the previous one cannot
 * be removed (a file of it made immutable, say), GPUALS_ERR_IO says where it was left. */
gpuals_status gpuals_model_save(const gpuals_model *m, const char *path);

/* Read the model directory path, checking every file's size and checksum against meta.json
 * before using it: GPUALS_ERR_IO for a path that is not a model directory or cannot be read,
 * GPUALS_ERR_MISMATCH naming the file for one that is damaged or incomplete. A save replacing
 * the model meanwhile is waited out (the load reads again), never reported as damage. */
gpuals_status gpuals_model_load(const char *path, gpuals_model **out);

/* Shapes (0 for a NULL model). */
int64_t gpuals_model_users(const gpuals_model *m);
int64_t gpuals_model_items(const gpuals_model *m);
int gpuals_model_factors(const gpuals_model *m);
/* Borrowed pointers to the row-major factor matrices (users x factors, items x factors), valid
 * until gpuals_model_free(m); NULL for a NULL model. */
const float *gpuals_model_user_factors(const gpuals_model *m);
const float *gpuals_model_item_factors(const gpuals_model *m);

/* The training loss after the last iteration (NaN when it was not computed) and the seconds
 * training took (a loaded model reports what meta.json recorded). NaN for a NULL model. */
double gpuals_model_final_loss(const gpuals_model *m);
double gpuals_model_train_seconds(const gpuals_model *m);

/* The iterations training ran: p->iters, or fewer when the callback stopped it. -1 when unknown
 * (a NULL model, or one saved by a gpu-als that did not record it). */
int gpuals_model_iterations(const gpuals_model *m);

/* Where training ran and why, e.g. "using the CPU (8 threads)", "using GPU 0: NVIDIA H200
 * (...)" or "no usable GPU (no CUDA driver); using the CPU (8 threads)". A loaded model gives
 * the note of its training, as meta.json recorded it ("" when it did not). "" for a NULL model.
 * Borrowed string, valid until gpuals_model_free(m). */
const char *gpuals_model_device_note(const gpuals_model *m);

/* Dense index of a raw user/item id, or -1 when unknown (or m or raw_id is NULL). */
int64_t gpuals_model_user_index(const gpuals_model *m, const char *raw_id);
int64_t gpuals_model_item_index(const gpuals_model *m, const char *raw_id);
/* Raw id and title of a dense index: borrowed strings, valid until gpuals_model_free(m). An item
 * without a title has the title "". All three return NULL for an index outside 0..n-1 (or a
 * NULL model). */
const char *gpuals_model_user_id(const gpuals_model *m, int64_t u);
const char *gpuals_model_item_id(const gpuals_model *m, int64_t i);
const char *gpuals_model_item_title(const gpuals_model *m, int64_t i);

/* A user by raw id, and an item as the CLI's item arguments name one: by raw id or, failing
 * that, by title (the exact title, then the title ignoring ASCII case, then any title that
 * contains the text ignoring ASCII case; the first of these levels that matches anything
 * decides). Either form of a Latin-1 id or title is found. GPUALS_ERR_NOT_FOUND with a message
 * listing the closest ids or titles, GPUALS_ERR_AMBIGUOUS listing the candidates when a title
 * matches several items at its level, GPUALS_ERR_USAGE for NULL or empty text. *index is
 * written only on success. */
gpuals_status gpuals_find_user(const gpuals_model *m, const char *raw_id, int64_t *index);
gpuals_status gpuals_find_item(const gpuals_model *m, const char *id_or_title, int64_t *index);

/* ------------------------------------------------------------------------------------------ */
/* Queries                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* One ranked answer. */
typedef struct {
    int64_t index;   /* dense item (or user) index */
    float score;
} gpuals_hit;

/* x_u . y_i for raw ids. */
gpuals_status gpuals_score(const gpuals_model *m, const char *user, const char *item,
                           float *out);

/* allow = NULL ranks every item; a non-NULL allow ranks only its n_allow items, so an allow
 * list with n_allow = 0 returns nothing. deny = NULL (with n_deny 0) denies nothing. A NULL
 * list with a positive count, a negative count or an index outside 0..items-1 is
 * GPUALS_ERR_USAGE. */
typedef struct {
    int filter_liked;              /* default 1: leave out the user's training items */
    const int64_t *allow;          /* NULL, or only rank these item indices */
    int64_t n_allow;
    const int64_t *deny;           /* NULL, or never return these item indices */
    int64_t n_deny;
} gpuals_rec_options;

/* filter_liked 1, no allow or deny list. NULL does nothing. */
void gpuals_rec_options_default(gpuals_rec_options *o);

/* Top-n items for user index u, best first. *n_out <= n: fewer when fewer candidates remain
 * (never padded). hits must hold n entries (it may be NULL when n is 0); o may be NULL for the
 * defaults.
 * GPUALS_ERR_EMPTY, with a message that says which, for a user whose ranking would be all
 * ties: one without interactions, one whose every interaction has a confidence <= 0 (only
 * disliked items: the exact solution of its row is the zero vector, whatever the solver), and
 * one whose factor vector is all zeros. The CG solver, iterating from the previous factors,
 * leaves a user of the second kind small factors that are not exactly zero; such a user is
 * still refused, by its interactions. */
gpuals_status gpuals_recommend(const gpuals_model *m, int64_t u, int n,
                               const gpuals_rec_options *o, gpuals_hit *hits, int *n_out);

/* Top-n items by cosine similarity to item i (i itself left out unless include_self); users
 * likewise. A user or item without an interaction of positive confidence in the training data
 * (only dislikes) has an exact factor vector of zero, and the CG solver leaves it rounding
 * noise whose direction means nothing: as the query it is GPUALS_ERR_EMPTY (as recommend
 * refuses such a user), and it is never returned. A zero vector otherwise has similarity 0
 * with everything; as the query, GPUALS_ERR_EMPTY. */
gpuals_status gpuals_similar_items(const gpuals_model *m, int64_t i, int n, int include_self,
                                   gpuals_hit *hits, int *n_out);
gpuals_status gpuals_similar_users(const gpuals_model *m, int64_t u, int n, int include_self,
                                   gpuals_hit *hits, int *n_out);

/* Hu et al. section 5: with W_u = Y^T C_u Y + lambda I, the score of item i for user u is
 * the sum over liked items j of c_uj * y_i^T W_u^-1 y_j. Returns the total, the model's score
 * x_u . y_i, and the top-n contributions (index = liked item j, score = contribution).
 * total decomposes the exact solution for x_u against the model's item factors, so it equals
 * model_score (up to rounding) only when x_u is that solution, as for a user folded in with
 * gpuals_fold_in. A trained model's x_u was solved against the item factors before their last
 * update, and with the CG solver only approximately, so there the two differ (after CG
 * training, by more); both are returned for that reason. */
gpuals_status gpuals_explain(const gpuals_model *m, int64_t u, int64_t i, int n,
                             double *total, double *model_score, gpuals_hit *hits, int *n_out);

/* Fold in a new user from liked items (dense indices, with raw rating values), prepared as the
 * loader prepares ratings: a value below the min_rating the training data was loaded with is
 * dropped, as is a zero; values of a repeated item are summed; then the model's confidence
 * transform applies. The row is solved exactly against the fixed item factors. factors_out
 * holds gpuals_model_factors(m) floats and is written only on success. GPUALS_ERR_USAGE for an
 * index out of range or a value that is not finite or of magnitude above 1e12 (the loader's
 * bound), GPUALS_ERR_EMPTY when no value remains. */
gpuals_status gpuals_fold_in(const gpuals_model *m, const int64_t *items, const float *values,
                             int64_t n, float *factors_out);

/* A new user who liked items[0..n_liked) with values[0..n_liked), folded in as gpuals_fold_in
 * does (same preparation, same failures), then ranked as gpuals_recommend ranks a trained user:
 * o->filter_liked leaves out the liked items that kept a value. The model is not changed; call
 * again with more items as the user likes more. */
gpuals_status gpuals_recommend_new_user(const gpuals_model *m, const int64_t *items,
                                        const float *values, int64_t n_liked, int n,
                                        const gpuals_rec_options *o, gpuals_hit *hits,
                                        int *n_out);

/* gpuals_explain for such a new user and item i. Its factors are the exact solution against
 * the model's item factors, so total equals model_score up to rounding. */
gpuals_status gpuals_explain_new_user(const gpuals_model *m, const int64_t *items,
                                      const float *values, int64_t n_liked, int64_t i, int n,
                                      double *total, double *model_score, gpuals_hit *hits,
                                      int *n_out);

/* ------------------------------------------------------------------------------------------ */
/* Held-out evaluation                                                                        */
/* ------------------------------------------------------------------------------------------ */

typedef enum {
    GPUALS_SPLIT_RANDOM = 0,    /* each stored interaction goes to test with test_fraction */
    GPUALS_SPLIT_LEAVE_K_OUT,   /* leave_k of each user with more than leave_k + 1 go to test */
} gpuals_split_kind;

typedef struct {
    gpuals_split_kind kind;
    double test_fraction;  /* GPUALS_SPLIT_RANDOM: in (0, 1), as 0 or 1 leaves a side empty */
    int leave_k;           /* GPUALS_SPLIT_LEAVE_K_OUT: >= 1 */
    uint64_t seed;
} gpuals_split_options;

/* Random, test fraction 0.2, leave_k 1, seed 0 (the CLI's defaults). NULL does nothing. */
void gpuals_split_options_default(gpuals_split_options *o);

/* Split d's stored interactions into a train and a test side, as `gpu-als eval` does: every
 * interaction lands on exactly one side with its value, and both sides keep d's users, items,
 * ids and titles (so a model trained on *train can be evaluated on *test). The draws depend only
 * on the seed and the interactions (users and items by their raw ids), not on thread count or
 * file order. Both sides are the caller's to free with gpuals_data_free. GPUALS_ERR_USAGE for
 * options out of range, GPUALS_ERR_EMPTY, saying why, when either side would hold nothing (a
 * test fraction of 0 or 1 always does). */
gpuals_status gpuals_data_split(const gpuals_data *d, const gpuals_split_options *o,
                                gpuals_data **train, gpuals_data **test);

/* Ranking metrics at k over the users with a relevant test interaction (a positive value on an
 * item that is not among the user's training items); the others are counted in skipped. Users
 * with relevant test interactions but no positive training interaction are left out as well,
 * counted in cold: their factors are zero in exact arithmetic, so their ranking would measure
 * the item order rather than the model (as Spark's coldStartStrategy "drop"). Each
 * user's candidates are the items outside their training items. For a user with hits_u relevant
 * items in the top k and m_u = min(k, relevant items):
 *   implicit_precision  sum hits_u / sum m_u (what the `implicit` library calls precision@k)
 *   precision           mean of hits_u / k
 *   recall              mean of hits_u / m_u
 *   map, ndcg           mean average precision and normalised DCG at k, divided by m_u
 *   implicit_auc        the `implicit` library's AUC@k
 *   auc                 the full AUC over every candidate (ties count half), when has_auc */
typedef struct {
    int k;
    int64_t users;    /* users evaluated */
    int64_t skipped;  /* users without a relevant test interaction */
    int64_t cold;     /* users with one but no positive training interaction (left out) */
    int has_auc;      /* 0 when evaluated with full_auc 0: auc is then 0 */
    double implicit_precision, precision, recall, map, ndcg, implicit_auc, auc;
} gpuals_metrics;

/* Evaluate m, trained on the train side of a gpuals_data_split, on its test side at k >= 1 (a
 * k above the number of items ranks them all; the positions past them are misses and cost
 * nothing). full_auc 1 ranks every candidate (for auc); 0 ranks only the top k, much faster,
 * and leaves auc out. The model's training interactions are its training items. test must have
 * the model's users and items, with the same raw ids at the same indices (GPUALS_ERR_MISMATCH
 * naming the first that differs); GPUALS_ERR_EMPTY when no user is left to evaluate (with a
 * relevant test interaction and a positive training one). The
 * numbers equal those `gpu-als eval` prints for the same data, split and settings. */
gpuals_status gpuals_evaluate(const gpuals_model *m, const gpuals_data *test, int k, int full_auc,
                              gpuals_metrics *out);

#ifdef __cplusplus
}
#endif

#endif /* GPUALS_H */
