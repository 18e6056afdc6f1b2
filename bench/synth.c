/*
 * synth.c - gpuals-synth: a seeded generator of MovieLens-shaped rating files.
 *
 *   gpuals-synth --users U --items I --interactions N [--user-exponent A] [--item-exponent B]
 *                [--seed S] [--format dat|csv] [--ratings-dist P1,P2,P3,P4,P5]
 *                [--movies FILE] --out FILE
 *
 * Shape of the data:
 * - User activity is Zipf-like: the user of activity rank k (1-based) gets a share of the
 *   interactions proportional to k^-A on top of the one every user gets. Degrees are handed out
 *   from the most active rank down, each taking ceil(remaining * w_k / remaining weight), capped
 *   at I (a user cannot rate an item twice); since the weights fall with k, what is left always
 *   fits the users left, so the total is exactly N whenever U <= N <= U * I. Ranks are mapped to
 *   user ids by a seeded permutation, so the heavy users are scattered over the id range.
 * - Item popularity is Zipf-like too: item of rank k is drawn with probability proportional to
 *   k^-B, through Walker's alias table (O(1) per draw), ranks again permuted onto item ids.
 * - Each user's items are distinct: draws that hit an item the user already has are rejected
 *   (a per-item stamp array, no clearing between users). A user with most of the catalogue
 *   could reject for a long time, so after 16 * degree + 64 draws the remaining items are taken
 *   in id order from a random start; the file stays exact, only the very heaviest users get a
 *   slightly flatter popularity than B says.
 * - Ratings are 1..5 stars drawn from P1..P5 (default close to ml-1m's: 6%, 11%, 26%, 35%,
 *   22%); timestamps are uniform over 2000-2019. The csv format writes "4.0"-style ratings under
 *   the header userId,movieId,rating,timestamp, as ml-latest does.
 * - --movies writes a titles file for all I items in the matching format: movies.dat lines
 *   id::title::genres, or movies.csv with the header movieId,title,genres and, for every fifth
 *   movie, a quoted title holding a comma and a colon (so readers' CSV quoting gets exercised).
 *
 * The random generator is xoshiro256** seeded through SplitMix64, so a seed gives the same file
 * on every machine (up to the last bit of pow() in the degree shares). Output goes through a
 * large buffer with hand-written integer formatting; 20 million lines take a few seconds.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_BUFFER ((size_t)1 << 20)

typedef struct {
    int64_t users, items, interactions;
    double user_exponent, item_exponent;
    uint64_t seed;
    int csv;
    double dist[5];
    const char *out, *movies;
} synth_options;

/* ------------------------------------------------------------------------------------------ */
/* Random numbers                                                                             */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
    for (int k = 0; k < 4; k++) r->s[k] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** (Blackman & Vigna). */
static inline uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 bits. */
static inline double rng_unit(rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

/* Uniform in [0, n) for n < 2^53. */
static inline int64_t rng_below(rng *r, int64_t n) { return (int64_t)(rng_unit(r) * (double)n); }

/* A uniformly random permutation of 0..n-1 (Fisher-Yates). */
static int32_t *random_permutation(rng *r, int64_t n)
{
    int32_t *p = malloc((size_t)n * sizeof *p);
    if (!p) return NULL;
    for (int64_t k = 0; k < n; k++) p[k] = (int32_t)k;
    for (int64_t k = n - 1; k > 0; k--) {
        int64_t j = rng_below(r, k + 1);
        int32_t t = p[k];
        p[k] = p[j];
        p[j] = t;
    }
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* Degrees and item draws                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Interactions per activity rank (see the file comment); 0 on success. */
static int user_degrees(const synth_options *o, int64_t *deg)
{
    int64_t U = o->users, cap = o->items;
    double *suffix = malloc((size_t)(U + 1) * sizeof *suffix);
    if (!suffix) return -1;

    /* Remaining weight from each rank on, summed from the light end for accuracy. */
    suffix[U] = 0;
    for (int64_t k = U - 1; k >= 0; k--) suffix[k] = suffix[k + 1] + pow((double)(k + 1),
                                                                          -o->user_exponent);

    /* One each, then the extra shares from the heaviest rank down. */
    int64_t extra = o->interactions - U;
    for (int64_t k = 0; k < U; k++) {
        double w = suffix[k] - suffix[k + 1];
        double share = k == U - 1 ? (double)extra : ceil((double)extra * w / suffix[k]);
        int64_t d = (int64_t)share;
        if (d > extra) d = extra;
        if (d > cap - 1) d = cap - 1;
        deg[k] = 1 + d;
        extra -= d;
    }

    /* Rounding leftovers (rare) go one by one to users with room. */
    for (int64_t k = 0; extra > 0; k = (k + 1) % U) {
        if (deg[k] < cap) {
            deg[k]++;
            extra--;
        }
    }
    free(suffix);
    return 0;
}

typedef struct {
    double *prob;    /* n acceptance thresholds */
    int32_t *alias;  /* n alternatives */
    int64_t n;
} alias_table;

/* Walker's alias table for weights (k+1)^-exponent, k = 0..n-1 (Vose's construction). */
static int alias_build(alias_table *t, int64_t n, double exponent)
{
    t->n = n;
    t->prob = malloc((size_t)n * sizeof *t->prob);
    t->alias = malloc((size_t)n * sizeof *t->alias);
    int32_t *small = malloc((size_t)n * sizeof *small), *large = malloc((size_t)n * sizeof *large);
    if (!t->prob || !t->alias || !small || !large) {
        free(small);
        free(large);
        return -1;
    }

    /* Scaled weights: mean 1. */
    double total = 0;
    for (int64_t k = n - 1; k >= 0; k--) total += pow((double)(k + 1), -exponent);
    int64_t ns = 0, nl = 0;
    for (int64_t k = 0; k < n; k++) {
        t->prob[k] = pow((double)(k + 1), -exponent) * (double)n / total;
        t->alias[k] = (int32_t)k;
        if (t->prob[k] < 1.0) small[ns++] = (int32_t)k;
        else large[nl++] = (int32_t)k;
    }

    /* Pair each light entry with a heavy one that tops it up to 1. */
    while (ns > 0 && nl > 0) {
        int32_t s = small[--ns], l = large[nl - 1];
        t->alias[s] = l;
        t->prob[l] -= 1.0 - t->prob[s];
        if (t->prob[l] < 1.0) {
            nl--;
            small[ns++] = l;
        }
    }
    while (nl > 0) t->prob[large[--nl]] = 1.0;
    while (ns > 0) t->prob[small[--ns]] = 1.0;
    free(small);
    free(large);
    return 0;
}

static inline int32_t alias_draw(const alias_table *t, rng *r)
{
    double x = rng_unit(r) * (double)t->n;
    int64_t k = (int64_t)x;
    if (k >= t->n) k = t->n - 1;
    return (x - (double)k) < t->prob[k] ? (int32_t)k : t->alias[k];
}

/* ------------------------------------------------------------------------------------------ */
/* Output                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    FILE *f;
    const char *path;
    char *buf;
    size_t len;
    int failed;
} writer;

static void writer_flush(writer *w)
{
    if (w->len && !w->failed && fwrite(w->buf, 1, w->len, w->f) != w->len) w->failed = errno;
    w->len = 0;
}

/* Room for n more bytes. */
static inline char *writer_room(writer *w, size_t n)
{
    if (w->len + n > OUT_BUFFER) writer_flush(w);
    return w->buf + w->len;
}

static inline size_t put_u64(char *p, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t k = 0; k < n; k++) p[k] = tmp[n - 1 - k];
    return n;
}

static inline size_t put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return n;
}

static int writer_open(writer *w, const char *path)
{
    *w = (writer){.path = path};
    w->f = fopen(path, "wb");
    w->buf = malloc(OUT_BUFFER);
    if (!w->f || !w->buf) {
        fprintf(stderr, "gpuals-synth: cannot write '%s': %s\n", path, strerror(errno));
        if (w->f) fclose(w->f);
        free(w->buf);
        return -1;
    }
    return 0;
}

/* Flush and close; reports a failed write. */
static int writer_close(writer *w)
{
    writer_flush(w);
    if (fclose(w->f) != 0 && !w->failed) w->failed = errno ? errno : EIO;
    free(w->buf);
    if (w->failed) {
        fprintf(stderr, "gpuals-synth: cannot write '%s': %s\n", w->path, strerror(w->failed));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The two files                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* The ratings file; *rated receives the number of distinct items used. */
static int write_ratings(const synth_options *o, int64_t *rated)
{
    int64_t U = o->users, I = o->items;
    rng r;
    rng_seed(&r, o->seed);

    /* Degrees by user id, the item table, the stamps. */
    int64_t *deg_rank = malloc((size_t)U * sizeof *deg_rank);
    int64_t *deg = malloc((size_t)U * sizeof *deg);
    int32_t *user_perm = random_permutation(&r, U), *item_perm = random_permutation(&r, I);
    uint32_t *stamp = calloc((size_t)I, sizeof *stamp);
    uint8_t *used = calloc((size_t)I, 1);
    int32_t *chosen = malloc((size_t)I * sizeof *chosen);
    alias_table table = {0};
    int ok = deg_rank && deg && user_perm && item_perm && stamp && used && chosen &&
             user_degrees(o, deg_rank) == 0 && alias_build(&table, I, o->item_exponent) == 0;
    writer w = {0};
    if (ok) {
        for (int64_t k = 0; k < U; k++) deg[user_perm[k]] = deg_rank[k];
        ok = writer_open(&w, o->out) == 0;
    } else {
        fprintf(stderr, "gpuals-synth: out of memory for %lld users x %lld items\n",
                (long long)U, (long long)I);
    }

    /* Cumulative star distribution. */
    double cum[5], acc = 0;
    for (int s = 0; s < 5; s++) cum[s] = (acc += o->dist[s]);

    /* Users in id order, each with its distinct items in the order drawn. */
    if (ok && o->csv) w.len += put_str(writer_room(&w, 64), "userId,movieId,rating,timestamp\n");
    for (int64_t u = 0; ok && u < U; u++) {
        uint32_t mark = (uint32_t)u + 1; /* users <= 2^31 - 1: never 0, never reused */
        int64_t need = deg[u], got = 0, tries = 0, limit = 16 * need + 64;
        while (got < need && tries < limit) {
            int32_t item = alias_draw(&table, &r);
            tries++;
            if (stamp[item] == mark) continue;
            stamp[item] = mark;
            chosen[got++] = item;
        }
        for (int64_t item = rng_below(&r, I); got < need; item = (item + 1) % I) {
            if (stamp[item] == mark) continue;
            stamp[item] = mark;
            chosen[got++] = (int32_t)item;
        }
        for (int64_t k = 0; k < need; k++) {
            int64_t id = (int64_t)item_perm[chosen[k]] + 1;
            used[id - 1] = 1;
            double x = rng_unit(&r) * acc;
            int stars = 1;
            while (stars < 5 && x >= cum[stars - 1]) stars++;
            uint64_t ts = 946684800u + (uint64_t)rng_below(&r, 631152000);
            char *p = writer_room(&w, 96), *q = p;
            const char *sep = o->csv ? "," : "::";
            q += put_u64(q, (uint64_t)u + 1);
            q += put_str(q, sep);
            q += put_u64(q, (uint64_t)id);
            q += put_str(q, sep);
            q += put_u64(q, (uint64_t)stars);
            if (o->csv) q += put_str(q, ".0");
            q += put_str(q, sep);
            q += put_u64(q, ts);
            *q++ = '\n';
            w.len += (size_t)(q - p);
        }
    }
    if (ok) ok = writer_close(&w) == 0;

    /* Distinct items rated. */
    *rated = 0;
    for (int64_t k = 0; ok && k < I; k++) *rated += used[k];
    free(deg_rank);
    free(deg);
    free(user_perm);
    free(item_perm);
    free(stamp);
    free(used);
    free(chosen);
    free(table.prob);
    free(table.alias);
    return ok ? 0 : -1;
}

/* The titles file for items 1..I. */
static int write_movies(const synth_options *o)
{
    static const char *genres[] = {"Action", "Adventure", "Animation", "Children", "Comedy",
                                   "Crime", "Documentary", "Drama", "Fantasy", "Horror",
                                   "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                                   "War", "Western"};
    const int n_genres = (int)(sizeof genres / sizeof genres[0]);
    writer w;
    if (writer_open(&w, o->movies) != 0) return -1;
    if (o->csv) w.len += put_str(writer_room(&w, 64), "movieId,title,genres\n");
    rng r;
    rng_seed(&r, o->seed ^ 0x6D6F76696573ull); /* "movies" */
    for (int64_t id = 1; id <= o->items; id++) {
        uint64_t year = 1920 + (uint64_t)rng_below(&r, 100);
        int g1 = (int)rng_below(&r, n_genres), g2 = (int)rng_below(&r, n_genres);
        char *p = writer_room(&w, 160), *q = p;
        q += put_u64(q, (uint64_t)id);
        q += put_str(q, o->csv ? "," : "::");
        int fancy = o->csv && id % 5 == 0;
        q += put_str(q, fancy ? "\"Synthetic Movie " : "Synthetic Movie ");
        q += put_u64(q, (uint64_t)id);
        q += put_str(q, fancy ? ", The: Part 2 (" : " (");
        q += put_u64(q, year);
        q += put_str(q, fancy ? ")\"" : ")");
        q += put_str(q, o->csv ? "," : "::");
        q += put_str(q, genres[g1]);
        if (g2 != g1) {
            *q++ = '|';
            q += put_str(q, genres[g2]);
        }
        *q++ = '\n';
        w.len += (size_t)(q - p);
    }
    return writer_close(&w);
}

/* ------------------------------------------------------------------------------------------ */
/* Command line                                                                               */
/* ------------------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gpuals-synth --users U --items I --interactions N --out FILE [options]\n"
            "\n"
            "Writes a seeded, MovieLens-shaped ratings file: Zipf-like user activity and item\n"
            "popularity, at least one rating per user, no duplicate (user, item) pair.\n"
            "\n"
            "  --users U                number of users (ids 1..U), every one rates something\n"
            "  --items I                number of items (ids 1..I)\n"
            "  --interactions N         number of rating lines, U <= N <= U * I\n"
            "  --user-exponent A        Zipf exponent of user activity (default 0.5)\n"
            "  --item-exponent B        Zipf exponent of item popularity (default 0.8)\n"
            "  --seed S                 random seed (default 1)\n"
            "  --format dat|csv         user::item::rating::timestamp (default) or MovieLens\n"
            "                           CSV with header userId,movieId,rating,timestamp\n"
            "  --ratings-dist P1,...,P5 weights of 1..5 stars (default 0.06,0.11,0.26,0.35,0.22)\n"
            "  --movies FILE            also write titles for all items (movies.dat or\n"
            "                           movies.csv style, following --format)\n"
            "  --out FILE               the ratings file to write\n"
            "  --help                   this text\n");
}

static int parse_count(const char *name, const char *text, int64_t min, int64_t max,
                       int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) {
        fprintf(stderr, "gpuals-synth: %s must be an integer in %lld..%lld, not '%s'\n", name,
                (long long)min, (long long)max, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_real(const char *name, const char *text, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || !isfinite(v) || v < 0) {
        fprintf(stderr, "gpuals-synth: %s must be a number >= 0, not '%s'\n", name, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_dist(const char *text, double *dist)
{
    const char *p = text;
    double sum = 0;
    for (int k = 0; k < 5; k++) {
        char *end;
        dist[k] = strtod(p, &end);
        if (end == p || !isfinite(dist[k]) || dist[k] < 0 || (k < 4 ? *end != ',' : *end)) {
            fprintf(stderr, "gpuals-synth: --ratings-dist needs five numbers >= 0 separated "
                            "by commas, not '%s'\n", text);
            return -1;
        }
        sum += dist[k];
        p = end + 1;
    }
    if (sum <= 0) {
        fprintf(stderr, "gpuals-synth: --ratings-dist must not be all zero\n");
        return -1;
    }
    return 0;
}

/* Fill o from argv; 0 to run, 1 after --help, -1 on a usage error. */
static int parse_args(int argc, char **argv, synth_options *o)
{
    enum { O_USERS = 256, O_ITEMS, O_N, O_UEXP, O_IEXP, O_SEED, O_FORMAT, O_DIST, O_OUT,
           O_MOVIES, O_HELP };
    static const struct option longopts[] = {
        {"users", required_argument, NULL, O_USERS},
        {"items", required_argument, NULL, O_ITEMS},
        {"interactions", required_argument, NULL, O_N},
        {"user-exponent", required_argument, NULL, O_UEXP},
        {"item-exponent", required_argument, NULL, O_IEXP},
        {"seed", required_argument, NULL, O_SEED},
        {"format", required_argument, NULL, O_FORMAT},
        {"ratings-dist", required_argument, NULL, O_DIST},
        {"out", required_argument, NULL, O_OUT},
        {"movies", required_argument, NULL, O_MOVIES},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    *o = (synth_options){.user_exponent = 0.5, .item_exponent = 0.8, .seed = 1,
                         .dist = {0.06, 0.11, 0.26, 0.35, 0.22}};
    int c, err = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int64_t seed;
        switch (c) {
        case O_USERS: err |= parse_count("--users", optarg, 1, INT32_MAX, &o->users); break;
        case O_ITEMS: err |= parse_count("--items", optarg, 1, INT32_MAX, &o->items); break;
        case O_N: err |= parse_count("--interactions", optarg, 1, INT64_MAX, &o->interactions);
            break;
        case O_UEXP: err |= parse_real("--user-exponent", optarg, &o->user_exponent); break;
        case O_IEXP: err |= parse_real("--item-exponent", optarg, &o->item_exponent); break;
        case O_SEED:
            err |= parse_count("--seed", optarg, 0, INT64_MAX, &seed);
            o->seed = (uint64_t)seed;
            break;
        case O_FORMAT:
            if (strcmp(optarg, "dat") == 0) o->csv = 0;
            else if (strcmp(optarg, "csv") == 0) o->csv = 1;
            else {
                fprintf(stderr, "gpuals-synth: --format is dat or csv, not '%s'\n", optarg);
                err = -1;
            }
            break;
        case O_DIST: err |= parse_dist(optarg, o->dist); break;
        case O_OUT: o->out = optarg; break;
        case O_MOVIES: o->movies = optarg; break;
        case O_HELP: usage(stdout); return 1;
        default: err = -1; break;
        }
    }
    if (err) return -1;
    if (optind < argc) {
        fprintf(stderr, "gpuals-synth: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!o->users || !o->items || !o->interactions || !o->out) {
        fprintf(stderr, "gpuals-synth: --users, --items, --interactions and --out are "
                        "required\n");
        return -1;
    }
    if (o->interactions < o->users) {
        fprintf(stderr, "gpuals-synth: %lld interactions cannot give each of %lld users one\n",
                (long long)o->interactions, (long long)o->users);
        return -1;
    }
    if (o->interactions > o->users * o->items) { /* both < 2^31: no overflow */
        fprintf(stderr, "gpuals-synth: %lld interactions exceed the %lld possible distinct "
                        "(user, item) pairs of %lld users x %lld items\n",
                (long long)o->interactions, (long long)(o->users * o->items),
                (long long)o->users, (long long)o->items);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    synth_options o;
    int r = parse_args(argc, argv, &o);
    if (r != 0) {
        if (r < 0) fprintf(stderr, "Try 'gpuals-synth --help'.\n");
        return r > 0 ? 0 : 2;
    }
    int64_t rated = 0;
    if (write_ratings(&o, &rated) != 0) return 1;
    if (o.movies && write_movies(&o) != 0) return 1;
    fprintf(stderr, "gpuals-synth: wrote %lld ratings of %lld users on %lld of %lld items to "
                    "%s\n", (long long)o.interactions, (long long)o.users, (long long)rated,
            (long long)o.items, o.out);
    return 0;
}
