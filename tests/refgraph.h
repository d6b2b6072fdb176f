/*
 * refgraph.h -- a reference description of a network, built beside the
 * tn_net it describes, for the tests that check the graph engine against an
 * independent computation (test_graph.c: a direct-loop interpreter of the
 * forward pass, JVP, VJP and Taylor terms; test_analytic_graph.c: a
 * direct-loop infinite-width kernel recursion).  Every builder adds one node
 * (its kind, input(s), output shape, window geometry with its own padding
 * arithmetic, slice of theta) AND calls the matching tn_net_add_* on the
 * net; what the nodes compute is each test's own.
 *
 * Shapes: an image node is h x w x c; a vector node (flat) is 1 x 1 x c.
 */
#ifndef TN_TESTS_REFGRAPH_H
#define TN_TESTS_REFGRAPH_H

#include "testutil.h"

enum { R_INPUT, R_DENSE, R_ACT, R_CONV, R_POOL, R_GAP, R_FLATTEN, R_SUM };

typedef struct rnode {
    int kind;
    size_t in0, in1;
    size_t ch, kh, kw, s;       /* conv: out channels; conv and pool: window, stride */
    int same;
    tn_activation act;
    size_t h, w, c;             /* output shape; flat nodes: h = w = 1 */
    int flat;
    size_t offset, count;       /* slice of theta */
    size_t ph, pw;              /* padding before (conv, pool) */
} rnode;

typedef struct rnet {
    rnode n[40];
    size_t count, cur, P;
    int param;                  /* TN_PARAM_* (the test's choice) */
    double sw, sb, slope;       /* the test's choice */
    tn_ctx *ctx;
    tn_net *net;
} rnet;

static inline size_t rsize(const rnode *n)
{
    return n->h * n->w * n->c;
}

static inline rnode *radd(rnet *R, int kind)
{
    rnode *n = &R->n[R->count];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->in0 = R->cur;
    R->cur = R->count++;
    return n;
}

/* Clears R and creates its net in ctx: an h x w x c image input, or with
 * flat a vector of h * w * c entries. */
static inline void rg_begin(rnet *R, tn_ctx *ctx, size_t h, size_t w, size_t c, int flat)
{
    memset(R, 0, sizeof *R);
    R->ctx = ctx;
    const size_t shape[3] = {h, w, c}, d = h * w * c;
    TN_CK(ctx, tn_net_create(ctx, flat ? &d : shape, flat ? 1 : 3, &R->net));
    rnode *n = radd(R, R_INPUT);
    n->h = flat ? 1 : h;
    n->w = flat ? 1 : w;
    n->c = flat ? d : c;
    n->flat = flat;
    R->cur = 0;
}

static inline void r_dense(rnet *R, size_t width)
{
    const rnode *in = &R->n[R->cur];
    const size_t nin = rsize(in);
    rnode *n = radd(R, R_DENSE);
    n->h = n->w = 1;
    n->c = width;
    n->flat = 1;
    n->offset = R->P;
    n->count = width * nin + width;
    R->P += n->count;
    TN_CK(R->ctx, tn_net_add_dense(R->net, width));
}

static inline void r_act(rnet *R, tn_activation act)
{
    const rnode in = R->n[R->cur];
    rnode *n = radd(R, R_ACT);
    n->h = in.h, n->w = in.w, n->c = in.c, n->flat = in.flat;
    n->act = act;
    TN_CK(R->ctx, tn_net_add_activation(R->net, act));
}

/* MATH.md §9: VALID floor((n - k) / s) + 1; SAME ceil(n / s), padding
 * max((n' - 1) s + k - n, 0), floor of half before. */
static inline size_t out_side(size_t n, size_t k, size_t s, int same, size_t *before)
{
    if (!same) {
        *before = 0;
        return (n - k) / s + 1;
    }
    const size_t o = (n + s - 1) / s;
    const long pad = (long)((o - 1) * s + k) - (long)n;
    *before = pad > 0 ? (size_t)pad / 2 : 0;
    return o;
}

static inline void r_window(rnet *R, int kind, size_t ch, size_t kh, size_t kw, size_t s, int same)
{
    const rnode in = R->n[R->cur];
    rnode *n = radd(R, kind);
    n->kh = kh, n->kw = kw, n->s = s, n->same = same;
    n->h = out_side(in.h, kh, s, same, &n->ph);
    n->w = out_side(in.w, kw, s, same, &n->pw);
    n->c = kind == R_CONV ? ch : in.c;
    n->ch = ch;
    const tn_padding pad = same ? TN_PAD_SAME : TN_PAD_VALID;
    if (kind == R_CONV) {
        n->offset = R->P;
        n->count = ch * kh * kw * in.c + ch;
        R->P += n->count;
        TN_CK(R->ctx, tn_net_add_conv2d(R->net, ch, kh, kw, s, pad));
    } else {
        TN_CK(R->ctx, tn_net_add_avg_pool2d(R->net, kh, kw, s, pad));
    }
}

static inline void r_conv(rnet *R, size_t ch, size_t kh, size_t kw, size_t s, int same)
{
    r_window(R, R_CONV, ch, kh, kw, s, same);
}

static inline void r_pool(rnet *R, size_t kh, size_t kw, size_t s, int same)
{
    r_window(R, R_POOL, 0, kh, kw, s, same);
}

static inline void r_gap(rnet *R)
{
    const rnode in = R->n[R->cur];
    rnode *n = radd(R, R_GAP);
    n->h = n->w = 1;
    n->c = in.c;
    n->flat = 1;
    TN_CK(R->ctx, tn_net_add_global_avg_pool(R->net));
}

static inline void r_flatten(rnet *R)
{
    const rnode in = R->n[R->cur];
    rnode *n = radd(R, R_FLATTEN);
    n->h = n->w = 1;
    n->c = rsize(&in);
    n->flat = 1;
    TN_CK(R->ctx, tn_net_add_flatten(R->net));
}

static inline void r_branch(rnet *R, size_t node)
{
    TN_CK(R->ctx, tn_net_branch(R->net, node));
    R->cur = node;
}

static inline void r_sum(rnet *R, size_t other)
{
    const rnode in = R->n[R->cur];
    rnode *n = radd(R, R_SUM);
    n->in1 = other;
    n->h = in.h, n->w = in.w, n->c = in.c, n->flat = in.flat;
    TN_CK(R->ctx, tn_net_add_sum(R->net, other));
}

#endif
