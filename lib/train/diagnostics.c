/* diagnostics.c -- the neural Taylor approximation of Balduzzi et al. (2017)
 * (docs/math.md §7), for the network f whatever model the trainer trains:
 *   predicted  L(g_lin, y) / alpha^2,  g_lin = alpha (f(theta_t; x) + J_t (theta_{t+1} - theta_t)
 *                                               - [centered] f(theta0; x))
 *   reached    L(alpha (f(theta_{t+1}; x) - [centered] f(theta0; x)), y) / alpha^2
 * on the step's batch, and the fraction of ReLU-family units of a fixed probe
 * batch whose on/off state changed in the step and since the probe was set.
 * It runs on its own tape, so the trainer's base cache survives.
 *
 * Exploration: the configuration of a probe example is the on/off state of
 * all its rectifier units (which linear piece of the network holds it).
 * The distinct (example, configuration) pairs seen since the probe was set
 * are kept as 64-bit hashes in an open-addressing set (load <= 1/2, so 16
 * bytes per pair), and a byte per unit says whether it has ever switched
 * between consecutive steps.  Hashing a whole probe pattern per step instead
 * would count a new configuration at nearly every step of any network of
 * some width (one unit of one example suffices): per example, the count
 * says how many linear pieces each input has been through. */
#include "trainer.h"
#include "loss.h"
#include "../io/binfile.h"

#include <stdlib.h>
#include <string.h>

struct tni_diagnostics {
    tni_tape *tape;
    double *delta;                  /* theta_{t+1} - theta_t */
    double *buf;                    /* 3 x rows x O: f0, the linear prediction, f after */
    size_t cap_rows;
    double *probe;                  /* probe batch, probe_n x d */
    size_t probe_n, units;
    unsigned char *init, *prev, *cur;   /* patterns: at set_probe, before and after the step */
    /* Exploration (see the top).  seen: the set of pair hashes (0 = empty
     * slot), seen_cap a power of two; keys: this step's n pair hashes,
     * entered at commit; ever: units that have switched. */
    uint64_t *seen, *keys;
    size_t seen_cap, seen_count;
    unsigned char *ever;
    size_t ever_count;
    size_t *unit_rows;              /* units per example of each rectifier node, 0-terminated */
    size_t step_new, step_switched; /* what the step in progress adds */
    double last_configs, last_ever; /* TN_STAT_CONFIGS_VISITED, _UNITS_EVER_SWITCHED of the last step */
};

static tn_status ensure(tn_trainer *tr)
{
    if (tr->diag) return TN_OK;
    struct tni_diagnostics *g = tni_alloc(tr->ctx, 1, sizeof *g);
    if (g) g->delta = tni_alloc(tr->ctx, tr->P, sizeof(double));
    if (g == NULL || g->delta == NULL || tni_tape_create(tr->ctx, tni_net_graph(tr->net), &g->tape) != TN_OK) {
        if (g) tni_free(g->delta);
        tni_free(g);
        return tni_fail(tr->ctx, TN_E_NOMEM, "trainer diagnostics: out of memory");
    }
    tr->diag = g;
    return TN_OK;
}

void tni_diagnostics_free(tn_trainer *tr)
{
    struct tni_diagnostics *g = tr->diag;
    if (g == NULL) return;
    tni_tape_free(g->tape);
    tni_free(g->delta);
    tni_free(g->buf);
    tni_free(g->probe);
    tni_free(g->init);
    tni_free(g->prev);
    tni_free(g->cur);
    tni_free(g->seen);
    tni_free(g->keys);
    tni_free(g->ever);
    tni_free(g->unit_rows);
    tni_free(g);
    tr->diag = NULL;
}

/* The probe's pattern at theta into bits. */
static tn_status probe_pattern(tn_trainer *tr, const double *probe, size_t n, const double *theta,
                               unsigned char *bits)
{
    tn_status st = tni_engine_forward(tr->diag->tape, theta, NULL, 0, probe, n, 0);
    if (st == TN_OK) tni_engine_pattern(tr->diag->tape, bits);
    return st;
}

/* ---- exploration ---- */

static uint64_t mix64(uint64_t z)
{
    /* splitmix64's finalizer: every input bit reaches every output bit. */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* keys[i] = the hash of (i, example i's configuration) of the pattern bits
 * (node by node, example-major within a node: tni_engine_pattern). */
static void pair_keys(const size_t *unit_rows, const unsigned char *bits, size_t n,
                      uint64_t *keys)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t h = mix64(i + 0x9e3779b97f4a7c15u), w = 0;
        size_t nbits = 0, off = 0;
        for (const size_t *u = unit_rows; *u; off += n * *u, u++) {
            const unsigned char *b = bits + off + i * *u;
            for (size_t j = 0; j < *u; j++) {
                w = w << 1 | b[j];
                if (++nbits % 64 == 0) h = mix64(h ^ w), w = 0;
            }
        }
        h = mix64(h ^ w ^ (uint64_t)nbits);
        keys[i] = h ? h : 1;
    }
}

static int seen_has(const uint64_t *set, size_t cap, uint64_t key)
{
    for (size_t k = key & (cap - 1);; k = (k + 1) & (cap - 1)) {
        if (set[k] == key) return 1;
        if (set[k] == 0) return 0;
    }
}

static void seen_put(uint64_t *set, size_t cap, uint64_t key)
{
    size_t k = key & (cap - 1);
    while (set[k] != 0 && set[k] != key) k = (k + 1) & (cap - 1);
    set[k] = key;
}

/* A set table with room for `count` keys at load <= 1/2, holding `old`'s
 * keys; NULL when out of memory (or too large). */
static uint64_t *seen_table(tn_ctx *ctx, const uint64_t *old, size_t old_cap, size_t count,
                            size_t *cap)
{
    size_t c = 64;
    while (c / 2 < count) {
        if (c > SIZE_MAX / 4) return NULL;
        c *= 2;
    }
    uint64_t *set = tni_alloc(ctx, c, sizeof *set);
    if (set == NULL) return NULL;
    for (size_t k = 0; k < old_cap; k++)
        if (old[k]) seen_put(set, c, old[k]);
    *cap = c;
    return set;
}

/* The per-example unit counts of the rectifier nodes, 0-terminated, or NULL
 * (out of memory).  *per_example receives their sum. */
static size_t *rectifier_rows(tn_ctx *ctx, const tni_graph *g, size_t *per_example)
{
    size_t k = 0;
    *per_example = 0;
    for (size_t i = 1; i < g->nnodes; i++)
        k += tni_kind_of(&g->nodes[i])->pattern && g->nodes[i].flags & TNI_NODE_RECTIFIER;
    size_t *rows = tni_alloc(ctx, k + 1, sizeof *rows);
    if (rows == NULL) return NULL;
    k = 0;
    for (size_t i = 1; i < g->nnodes; i++)
        if (tni_kind_of(&g->nodes[i])->pattern && g->nodes[i].flags & TNI_NODE_RECTIFIER) {
            rows[k++] = g->nodes[i].size;
            *per_example += g->nodes[i].size;
        }
    return rows;
}

tn_status tni_diagnostics_set_probe(tn_trainer *tr, const double *x, size_t n)
{
    tn_status st = ensure(tr);
    if (st != TN_OK) return st;
    struct tni_diagnostics *g = tr->diag;
    /* Count the units with a forward of one row, then build everything new
     * before replacing the old probe: a failure leaves it as it was. */
    st = tni_engine_forward(g->tape, tni_net_theta(tr->net), NULL, 0, x, 1, 0);
    if (st != TN_OK) return st;
    const size_t units = n * tni_engine_pattern(g->tape, NULL);
    size_t per_example = 0, cap = 0;
    double *probe = tni_alloc(tr->ctx, n * tr->d, sizeof(double));
    unsigned char *init = tni_alloc(tr->ctx, units + 1, 1), *prev = tni_alloc(tr->ctx, units + 1, 1),
                  *cur = tni_alloc(tr->ctx, units + 1, 1), *ever = tni_alloc(tr->ctx, units + 1, 1);
    uint64_t *keys = tni_alloc(tr->ctx, n, sizeof *keys);
    uint64_t *seen = seen_table(tr->ctx, NULL, 0, 2 * n, &cap);
    size_t *rows = rectifier_rows(tr->ctx, tni_net_graph(tr->net), &per_example);
    st = probe && init && prev && cur && ever && keys && seen && rows
             ? TN_OK
             : tni_fail(tr->ctx, TN_E_NOMEM, "tn_trainer_set_probe: out of memory");
    if (st == TN_OK && per_example * n != units)
        st = tni_fail(tr->ctx, TN_E_UNSUPPORTED,
                      "tn_trainer_set_probe: the network's rectifier units do not form per-example "
                      "rows (%zu units for %zu examples of %zu)", units, n, per_example);
    if (st == TN_OK) {
        memcpy(probe, x, n * tr->d * sizeof(double));
        st = probe_pattern(tr, probe, n, tni_net_theta(tr->net), init);
    }
    if (st != TN_OK) {
        tni_free(probe), tni_free(init), tni_free(prev), tni_free(cur);
        tni_free(ever), tni_free(keys), tni_free(seen), tni_free(rows);
        return st;
    }
    memcpy(prev, init, units);
    tni_free(g->probe), tni_free(g->init), tni_free(g->prev), tni_free(g->cur);
    tni_free(g->ever), tni_free(g->keys), tni_free(g->seen), tni_free(g->unit_rows);
    g->probe = probe;
    g->probe_n = n;
    g->units = units;
    g->init = init;
    g->prev = prev;
    g->cur = cur;
    /* Exploration starts over: the probe's configurations now are the
     * first ones seen, and no unit has switched yet. */
    g->unit_rows = rows;
    g->ever = ever;
    g->ever_count = 0;
    g->keys = keys;
    g->seen = seen;
    g->seen_cap = cap;
    g->seen_count = 0;
    pair_keys(rows, init, n, keys);
    for (size_t i = 0; i < n; i++)
        if (!seen_has(seen, cap, keys[i])) seen_put(seen, cap, keys[i]), g->seen_count++;
    return TN_OK;
}

static double changed(const unsigned char *a, const unsigned char *b, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += a[i] != b[i];
    return n ? (double)c / (double)n : 0.0;
}

/* What the step in progress adds to the exploration, without changing it:
 * the set grows first if its new pairs could push it past load 1/2 (its
 * contents stay, so a failure later in the step leaves nothing visible). */
static tn_status explore_step(tn_trainer *tr)
{
    struct tni_diagnostics *g = tr->diag;
    const size_t n = g->probe_n;
    if (g->seen_count + n > g->seen_cap / 2) {
        size_t cap;
        uint64_t *set = seen_table(tr->ctx, g->seen, g->seen_cap, 2 * (g->seen_count + n), &cap);
        if (set == NULL)
            return tni_fail(tr->ctx, TN_E_NOMEM,
                            "trainer diagnostics: out of memory for the set of %zu configurations",
                            g->seen_count + n);
        tni_free(g->seen);
        g->seen = set;
        g->seen_cap = cap;
    }
    pair_keys(g->unit_rows, g->cur, n, g->keys);
    g->step_new = 0;
    for (size_t i = 0; i < n; i++) g->step_new += !seen_has(g->seen, g->seen_cap, g->keys[i]);
    g->step_switched = 0;
    for (size_t u = 0; u < g->units; u++) g->step_switched += !g->ever[u] && g->cur[u] != g->prev[u];
    return TN_OK;
}

tn_status tni_diagnostics_step(tn_trainer *tr, const double *x, const double *y, size_t n,
                               const double *theta_new, double stat[6], unsigned *valid)
{
    tn_status st = ensure(tr);
    if (st != TN_OK) return st;
    struct tni_diagnostics *g = tr->diag;
    const size_t blk = n * tr->O;
    if (n > g->cap_rows) {
        double *buf = tni_alloc(tr->ctx, 3 * blk, sizeof(double));
        if (buf == NULL) return tni_fail(tr->ctx, TN_E_NOMEM, "trainer diagnostics: out of memory");
        tni_free(g->buf);
        g->buf = buf;
        g->cap_rows = n;
    }
    double *f0 = g->buf, *lin = f0 + blk, *after = lin + blk;
    const double *theta = tni_net_theta(tr->net);
    const double alpha = tr->alpha, a2 = alpha * alpha;
    tni_tape *tp = g->tape;
    if (tr->centered) {
        st = tni_engine_forward(tp, tr->ex.theta0, NULL, 0, x, n, 0);
        if (st != TN_OK) return st;
        tni_engine_output_sum(tp, 0, f0);
    } else {
        memset(f0, 0, blk * sizeof(double));
    }
    for (size_t i = 0; i < tr->P; i++) g->delta[i] = theta_new[i] - theta[i];
    st = tni_engine_forward(tp, theta, g->delta, 1, x, n, 0);   /* f and J delta */
    if (st != TN_OK) return st;
    tni_engine_output_sum(tp, 0, lin);
    st = tni_engine_forward(tp, theta_new, NULL, 0, x, n, 0);
    if (st != TN_OK) return st;
    tni_engine_output_sum(tp, 0, after);
    for (size_t e = 0; e < blk; e++) {
        lin[e] = alpha * (lin[e] - f0[e]);
        after[e] = alpha * (after[e] - f0[e]);
    }
    stat[TN_STAT_TAYLOR_PREDICTED] = tni_loss(tr->loss, n, tr->O, lin, y, NULL) / a2;
    stat[TN_STAT_LOSS_REACHED] = tni_loss(tr->loss, n, tr->O, after, y, NULL) / a2;
    *valid |= 1u << TN_STAT_TAYLOR_PREDICTED | 1u << TN_STAT_LOSS_REACHED;
    if (g->probe) {
        st = probe_pattern(tr, g->probe, g->probe_n, theta_new, g->cur);
        if (st != TN_OK) return st;
        stat[TN_STAT_PATTERN_CHANGE_STEP] = changed(g->cur, g->prev, g->units);
        stat[TN_STAT_PATTERN_CHANGE_INIT] = changed(g->cur, g->init, g->units);
        *valid |= 1u << TN_STAT_PATTERN_CHANGE_STEP | 1u << TN_STAT_PATTERN_CHANGE_INIT;
        TNI_TRY(explore_step(tr));
    }
    return TN_OK;
}

void tni_diagnostics_commit(tn_trainer *tr)
{
    struct tni_diagnostics *g = tr->diag;
    if (g == NULL || g->probe == NULL) return;
    for (size_t i = 0; i < g->probe_n; i++)
        if (!seen_has(g->seen, g->seen_cap, g->keys[i])) {
            seen_put(g->seen, g->seen_cap, g->keys[i]);
            g->seen_count++;
        }
    for (size_t u = 0; u < g->units; u++) g->ever[u] |= g->cur[u] != g->prev[u];
    g->ever_count += g->step_switched;
    g->last_configs = (double)g->seen_count;
    g->last_ever = g->units ? (double)g->ever_count / (double)g->units : 0.0;
    unsigned char *t = g->prev;
    g->prev = g->cur;
    g->cur = t;
}

/* ---- checkpoints (checkpoint.c): the probe and its two reference patterns ---- */

int tni_diagnostics_has_probe(const tn_trainer *tr)
{
    return tr->diag != NULL && tr->diag->probe != NULL;
}

/* u64 n, u64 units, n x d f64 probe, units bytes pattern at set_probe,
 * units bytes pattern after the last step. */
void tni_diagnostics_encode(tni_writer *w, const tn_trainer *tr)
{
    const struct tni_diagnostics *g = tr->diag;
    tni_w_u64(w, g->probe_n);
    tni_w_u64(w, g->units);
    tni_w_f64s(w, g->probe, g->probe_n * tr->d);
    tni_w_bytes(w, g->init, g->units);
    tni_w_bytes(w, g->prev, g->units);
}

tn_status tni_diagnostics_decode(tn_trainer *tr, const unsigned char *data, size_t len,
                                 const char *who, const char *where)
{
    tni_reader r = {data, len, 0};
    const uint64_t n = tni_r_uint(&r, 8), units = tni_r_uint(&r, 8);
    size_t values;
    if (r.short_read || n == 0 || n > SIZE_MAX || tni_mul_overflow((size_t)n, tr->d, &values) ||
        values > r.left / 8 || units > r.left)
        return tni_fail(tr->ctx, TN_E_FORMAT, "%s: '%s': the probe section is invalid", who, where);
    double *probe = tni_alloc_or_fail(tr->ctx, who, values, sizeof(double));
    if (probe == NULL) return TN_E_NOMEM;
    tni_r_f64s(&r, probe, values);
    const unsigned char *init = tni_r_take(&r, (size_t)units), *prev = tni_r_take(&r, (size_t)units);
    int ok = !r.short_read && r.left == 0 && tni_all_finite(probe, values);
    for (size_t i = 0; ok && i < units; i++) ok = init[i] <= 1 && prev[i] <= 1;
    tn_status st = ok ? tni_diagnostics_set_probe(tr, probe, (size_t)n)
                      : tni_fail(tr->ctx, TN_E_FORMAT, "%s: '%s': the probe section is invalid",
                                 who, where);
    tni_free(probe);
    if (st != TN_OK) return st;
    struct tni_diagnostics *g = tr->diag;
    if (g->units != units)
        return tni_fail(tr->ctx, TN_E_FORMAT,
                        "%s: '%s': the probe has %llu units; the network gives it %zu", who,
                        where, (unsigned long long)units, g->units);
    memcpy(g->init, init, g->units);
    memcpy(g->prev, prev, g->units);
    /* Without an exploration section (a version 1 checkpoint), exploration
     * counts from here: the configurations at the resume, nothing switched
     * yet.  An exploration section, read next, replaces both. */
    g->last_configs = (double)g->seen_count;
    g->last_ever = 0.0;
    return TN_OK;
}

/* TN_STAT_CONFIGS_VISITED and TN_STAT_UNITS_EVER_SWITCHED of the last step
 * (valid when its pattern statistics are). */
double tni_diagnostics_exploration(const tn_trainer *tr, tn_train_stat s)
{
    const struct tni_diagnostics *g = tr->diag;
    return s == TN_STAT_CONFIGS_VISITED ? g->last_configs : g->last_ever;
}

/* ---- checkpoints (checkpoint.c): the exploration ---- */

static int key_order(const void *a, const void *b)
{
    const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The set's keys ascending: the file is the same whatever order they were
 * met in and however the table grew. */
static void sorted_keys(const struct tni_diagnostics *g, uint64_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < g->seen_cap; i++)
        if (g->seen[i]) out[k++] = g->seen[i];
    qsort(out, k, sizeof *out, key_order);
}

size_t tni_diagnostics_exploration_bytes(const tn_trainer *tr)
{
    const struct tni_diagnostics *g = tr->diag;
    return g->seen_count * sizeof(uint64_t);
}

/* u64 units, u64 pairs, f64 TN_STAT_CONFIGS_VISITED and
 * TN_STAT_UNITS_EVER_SWITCHED of the last step, pairs x u64 hashes
 * ascending, units bytes: ever switched.  keys: scratch of
 * tni_diagnostics_exploration_bytes. */
void tni_diagnostics_encode_exploration(tni_writer *w, const tn_trainer *tr, uint64_t *keys)
{
    const struct tni_diagnostics *g = tr->diag;
    sorted_keys(g, keys);
    tni_w_u64(w, g->units);
    tni_w_u64(w, g->seen_count);
    tni_w_f64(w, g->last_configs);
    tni_w_f64(w, g->last_ever);
    for (size_t i = 0; i < g->seen_count; i++) tni_w_u64(w, keys[i]);
    tni_w_bytes(w, g->ever, g->units);
}

tn_status tni_diagnostics_decode_exploration(tn_trainer *tr, const unsigned char *data, size_t len,
                                             const char *who, const char *where)
{
    struct tni_diagnostics *g = tr->diag;
    tni_reader r = {data, len, 0};
    const uint64_t units = tni_r_uint(&r, 8), pairs = tni_r_uint(&r, 8);
    const double configs = tni_r_f64(&r), ever = tni_r_f64(&r);
    if (r.short_read || units != g->units || pairs < g->probe_n || pairs > r.left / 8 ||
        r.left - 8 * pairs != units || !(configs >= 0) || !(configs <= (double)pairs) ||
        !(ever >= 0 && ever <= 1))
        return tni_fail(tr->ctx, TN_E_FORMAT, "%s: '%s': the exploration section is invalid", who,
                        where);
    size_t cap;
    uint64_t *set = seen_table(tr->ctx, NULL, 0, (size_t)pairs, &cap);
    if (set == NULL)
        return tni_fail(tr->ctx, TN_E_NOMEM, "%s: out of memory for %llu configurations", who,
                        (unsigned long long)pairs);
    uint64_t prev = 0;
    int ok = 1;
    for (uint64_t i = 0; ok && i < pairs; i++) {
        const uint64_t key = tni_r_uint(&r, 8);
        ok = key > prev;        /* ascending, none 0, none twice */
        prev = key;
        if (ok) seen_put(set, cap, key);
    }
    const unsigned char *bits = tni_r_take(&r, g->units);
    size_t count = 0;
    for (size_t u = 0; ok && u < g->units; u++) {
        ok = bits[u] <= 1;
        count += bits[u];
    }
    if (!ok || r.short_read || r.left != 0) {
        tni_free(set);
        return tni_fail(tr->ctx, TN_E_FORMAT, "%s: '%s': the exploration section is invalid", who,
                        where);
    }
    tni_free(g->seen);
    g->seen = set;
    g->seen_cap = cap;
    g->seen_count = (size_t)pairs;
    memcpy(g->ever, bits, g->units);
    g->ever_count = count;
    g->last_configs = configs;
    g->last_ever = ever;
    return TN_OK;
}
