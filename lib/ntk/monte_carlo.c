/* monte_carlo.c -- the Monte Carlo kernels (MATH.md §9): the empirical
 * NNGP and NTK averaged over fresh initializations of a copy of the
 * network, whose own parameters are never touched.
 *
 * Sample s is the network as tn_net_init(net, seed + s) draws it (mod
 * 2^64; the generator decorrelates consecutive seeds), so any one sample
 * can be rebuilt.  Its NNGP is the outputs' second moment, f(x_i)^T f(x'_j)
 * / O traced (or f_c(x_i) f_d(x'_j) with TN_NTK_FULL), from the forward
 * pass; its NTK is the empirical one (ntk.c: the same method, outputs and
 * memory budget, so the same tiles).  Progress reports run from 0 to 1 over
 * all samples: the empirical NTK's own reports are mapped into the
 * sample's share. */
#include "ntk.h"
#include "../kernel/blas.h"

#include <math.h>
#include <string.h>

#define WHO "tn_ntk_monte_carlo"

/* The caller's callback, seen through a sample's share of the work. */
typedef struct share {
    tn_progress_fn fn;
    void *user;
    double base, width;
} share;

static int report_share(void *user, double fraction)
{
    const share *sh = user;
    return sh->fn(sh->user, sh->base + sh->width * fraction);
}

/* nngp (side1 x side2) += the sample's second moment of f1 (n1 x O) and f2
 * (n2 x O), or f1's alone when symmetric (lower triangle). */
static void add_second_moment(int threads, int full, int symmetric, size_t O, const double *f1,
                              size_t n1, const double *f2, size_t n2, double *nngp)
{
    if (full) {
        /* (i, c), (j, d): the outer product of the flattened outputs. */
        const size_t r = n1 * O, c = n2 * O;
        tni_gemm(threads, TNI_NOTRANS, TNI_NOTRANS, r, c, 1, 1.0, f1, 1, f2, c, 1.0, nngp, c);
        return;
    }
    const double inv = 1.0 / (double)O;
    if (symmetric)
        tni_syrk_lower(threads, n1, O, inv, f1, O, 1.0, nngp, n1);
    else
        tni_gemm(threads, TNI_NOTRANS, TNI_TRANS, n1, n2, O, inv, f1, O, f2, O, 1.0, nngp, n2);
}

tn_status tni_ntk_monte_carlo(tn_ntk *k, uint64_t seed, size_t samples, const double *x1,
                              size_t n1, const double *x2, size_t n2, double *nngp, double *ntk)
{
    tn_ctx *ctx = k->ctx;
    const int symmetric = x2 == NULL;
    if (symmetric) {
        x2 = x1;
        n2 = n1;
    }
    const size_t O = tni_net_output_dim(k->net), side1 = k->full ? n1 * O : n1,
                 side2 = k->full ? n2 * O : n2, size = side1 * side2;

    /* Everything allocated before the first write. */
    tn_net *net = NULL;
    double *f1 = NULL, *f2 = NULL, *Ks = NULL;
    tn_status st = tni_net_clone(k->net, &net);
    if (st != TN_OK) return tni_fail(ctx, st, WHO ": out of memory copying the network");
    if (nngp) {
        f1 = tni_alloc_or_fail(ctx, WHO, n1, O * sizeof(double));
        f2 = symmetric ? f1 : tni_alloc_or_fail(ctx, WHO, n2, O * sizeof(double));
    }
    if (ntk) Ks = tni_alloc_or_fail(ctx, WHO, size, sizeof(double));
    if ((nngp && (f1 == NULL || f2 == NULL)) || (ntk && Ks == NULL)) {
        st = TN_E_NOMEM;
        goto done;
    }
    /* The samples' kernels on k's settings and k's kept workspace (handed
     * back below, however it was relaid), with a tape of the copy's own. */
    tn_ntk inner = *k;
    inner.net = net;
    inner.tape = NULL;
    const tn_progress_fn fn = ctx->progress;
    void *const user = ctx->progress_user;
    share sh = {fn, user, 0.0, 1.0 / (double)samples};
    if (nngp) memset(nngp, 0, size * sizeof(double));
    if (ntk) memset(ntk, 0, size * sizeof(double));
    for (size_t s = 0; s < samples && st == TN_OK; s++) {
        tni_net_draw_params(net, seed + s, net->theta);
        if ((st = tni_net_check_params(net, net->theta, WHO)) != TN_OK) break;
        if (nngp) {
            st = tni_net_forward(net, x1, n1, f1);
            if (st == TN_OK && !symmetric) st = tni_net_forward(net, x2, n2, f2);
            if (st != TN_OK) {
                st = tni_fail(ctx, st, WHO ": sample %zu: out of memory in the forward pass", s);
                break;
            }
            add_second_moment(ctx->threads, k->full, symmetric, O, f1, n1, f2, n2, nngp);
        }
        sh.base = (double)s / (double)samples;
        if (ntk) {
            if (fn) {
                ctx->progress = report_share;
                ctx->progress_user = &sh;
            }
            st = tni_ntk_compute(&inner, x1, n1, symmetric ? NULL : x2, n2, Ks);
            ctx->progress = fn;
            ctx->progress_user = user;
            if (st != TN_OK) {
                char why[TNI_ERRMSG_MAX];
                memcpy(why, ctx->errmsg, sizeof why);
                why[sizeof why - 1] = '\0';
                st = tni_fail(ctx, st, WHO ": sample %zu: %s", s, why);
                break;
            }
            for (size_t e = 0; e < size; e++) ntk[e] += Ks[e];
        } else {
            st = tni_progress(ctx, WHO, (double)(s + 1) / (double)samples);
        }
    }
    if (st == TN_OK) {
        const double inv = 1.0 / (double)samples;
        if (nngp) {
            if (symmetric && !k->full) tni_symmetrize_lower(n1, nngp, n1);
            for (size_t e = 0; e < size; e++) nngp[e] *= inv;
        }
        if (ntk)
            for (size_t e = 0; e < size; e++) ntk[e] *= inv;
    } else {
        /* Never a partial average that could pass for a result. */
        for (size_t e = 0; e < size; e++) {
            if (nngp) nngp[e] = NAN;
            if (ntk) ntk[e] = NAN;
        }
    }
    tni_tape_free(inner.tape);
    memcpy(k->sets, inner.sets, sizeof k->sets);
    k->tmp = inner.tmp;
    k->tmp_cap = inner.tmp_cap;

done:
    tni_free(f1);
    if (f2 != f1) tni_free(f2);
    tni_free(Ks);
    tni_net_delete(net);
    return st;
}
