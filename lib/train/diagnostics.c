/* diagnostics.c -- the neural Taylor approximation of Balduzzi et al. (2017)
 * (docs/math.md §7), for the network f whatever model the trainer trains:
 *   predicted  L(g_lin, y) / alpha^2,  g_lin = alpha (f(theta_t; x) + J_t (theta_{t+1} - theta_t)
 *                                               - [centered] f(theta0; x))
 *   reached    L(alpha (f(theta_{t+1}; x) - [centered] f(theta0; x)), y) / alpha^2
 * on the step's batch, and the fraction of ReLU-family units of a fixed probe
 * batch whose on/off state changed in the step and since the probe was set.
 * It runs on its own tape, so the trainer's base cache survives. */
#include "trainer.h"
#include "loss.h"
#include "../io/binfile.h"

#include <string.h>

struct tni_diagnostics {
    tni_tape *tape;
    double *delta;                  /* theta_{t+1} - theta_t */
    double *buf;                    /* 3 x rows x O: f0, the linear prediction, f after */
    size_t cap_rows;
    double *probe;                  /* probe batch, probe_n x d */
    size_t probe_n, units;
    unsigned char *init, *prev, *cur;   /* patterns: at set_probe, before and after the step */
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
    double *probe = tni_alloc(tr->ctx, n * tr->d, sizeof(double));
    unsigned char *init = tni_alloc(tr->ctx, units + 1, 1), *prev = tni_alloc(tr->ctx, units + 1, 1),
                  *cur = tni_alloc(tr->ctx, units + 1, 1);
    st = probe && init && prev && cur ? TN_OK
                                      : tni_fail(tr->ctx, TN_E_NOMEM, "tn_trainer_set_probe: out of memory");
    if (st == TN_OK) {
        memcpy(probe, x, n * tr->d * sizeof(double));
        st = probe_pattern(tr, probe, n, tni_net_theta(tr->net), init);
    }
    if (st != TN_OK) {
        tni_free(probe), tni_free(init), tni_free(prev), tni_free(cur);
        return st;
    }
    memcpy(prev, init, units);
    tni_free(g->probe), tni_free(g->init), tni_free(g->prev), tni_free(g->cur);
    g->probe = probe;
    g->probe_n = n;
    g->units = units;
    g->init = init;
    g->prev = prev;
    g->cur = cur;
    return TN_OK;
}

static double changed(const unsigned char *a, const unsigned char *b, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += a[i] != b[i];
    return n ? (double)c / (double)n : 0.0;
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
    }
    return TN_OK;
}

void tni_diagnostics_commit(tn_trainer *tr)
{
    struct tni_diagnostics *g = tr->diag;
    if (g == NULL || g->probe == NULL) return;
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
    return TN_OK;
}
