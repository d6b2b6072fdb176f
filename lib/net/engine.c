/* engine.c -- the one Taylor engine over a graph of nodes (engine.h).
 *
 * Memory.  Each pass plans two arenas from the graph and (batch, order):
 *   forward: every node's output blocks, what each node saves for its
 *            reverse, scratch; planned at forward time;
 *   reverse: every node's cotangent blocks (sets x batch rows), scratch;
 *            planned at reverse time.
 * Nodes share a buffer ("group") when a node works in place over its input
 * or is a view of it.  A group's lifetime is an interval of node ids; groups
 * whose lifetimes do not overlap share memory (first fit).  A forward group
 * lives until its last reader, or to the end of the pass when a reader's
 * reverse reads it, when it holds the output, or when the order-0 blocks are
 * kept across passes (TNI_KEEP_BASE).  A cotangent group is written by the
 * reverse of its node's last reader and lives until the node's own reverse.
 */
#include "engine.h"

#include <string.h>

#define EXTERNAL SIZE_MAX   /* the group of node 0: the caller's input */
#define FOREVER SIZE_MAX    /* a lifetime that ends with the pass */

/* A planned buffer: which nodes share it and for how long. */
typedef struct group {
    size_t start, end;      /* in planning time (node ids; reversed for cotangents) */
    size_t doubles;
    size_t offset;          /* in its arena */
    size_t members;         /* nodes sharing it */
    size_t consumers;       /* reader edges that still see its content */
} group;

struct tni_tape {
    tn_ctx *ctx;
    const tni_graph *g;
    size_t n;                       /* nodes */
    /* per node */
    size_t *deg;
    size_t *readers;                /* input edges pointing at the node */
    unsigned char *need_cot;        /* its output cotangent is needed */
    unsigned char *in_place;        /* this pass: wrote over input 0 (forward) */
    unsigned char *written;         /* reverse: its cotangent has been written */
    size_t *grp, *cgrp;             /* group of output blocks, of cotangent blocks */
    double **out, **saved, **base, **cot;
    group *groups;                  /* n groups at most, for either plan */
    /* arenas */
    double *fwd, *rev;
    size_t fwd_cap, rev_cap;
    double *scratch, *rscratch;
    /* the last forward */
    const double *x;
    size_t batch, order;
    unsigned flags;
    int valid;
};

tn_status tni_tape_create(tn_ctx *ctx, const tni_graph *g, tni_tape **out)
{
    *out = NULL;
    tni_tape *tp = tni_alloc_or_fail(ctx, "tape", 1, sizeof *tp);
    if (tp == NULL) return TN_E_NOMEM;
    const size_t n = g->nnodes;
    tp->ctx = ctx;
    tp->g = g;
    tp->n = n;
    tp->deg = tni_alloc(ctx, n, sizeof(size_t));
    tp->readers = tni_alloc(ctx, n, sizeof(size_t));
    tp->need_cot = tni_alloc(ctx, n, 3);
    tp->grp = tni_alloc(ctx, n, sizeof(size_t));
    tp->cgrp = tni_alloc(ctx, n, sizeof(size_t));
    tp->out = tni_alloc(ctx, n, 4 * sizeof(double *));
    tp->groups = tni_alloc(ctx, n, sizeof(group));
    if (!tp->deg || !tp->readers || !tp->need_cot || !tp->grp || !tp->cgrp || !tp->out ||
        !tp->groups) {
        tni_tape_free(tp);
        return tni_fail(ctx, TN_E_NOMEM, "tape: out of memory");
    }
    tp->in_place = tp->need_cot + n;
    tp->written = tp->need_cot + 2 * n;
    tp->saved = tp->out + n;
    tp->base = tp->out + 2 * n;
    tp->cot = tp->out + 3 * n;
    /* What does not depend on the pass: readers, and which nodes need a
     * cotangent (those with parameters at or before them). */
    for (size_t i = 1; i < n; i++) {
        const tni_node *nd = &g->nodes[i];
        int need = nd->count > 0;
        for (size_t s = 0; s < nd->ninputs; s++) {
            tp->readers[nd->input[s]]++;
            need |= tp->need_cot[nd->input[s]];
        }
        tp->need_cot[i] = (unsigned char)need;
    }
    *out = tp;
    return TN_OK;
}

void tni_tape_free(tni_tape *tp)
{
    if (tp == NULL) return;
    tni_free(tp->deg);
    tni_free(tp->readers);
    tni_free(tp->need_cot);
    tni_free(tp->grp);
    tni_free(tp->cgrp);
    tni_free(tp->out);
    tni_free(tp->groups);
    tni_free(tp->fwd);
    tni_free(tp->rev);
    tni_free(tp);
}

/* ---- planning ---------------------------------------------------------- */

typedef struct sizer {
    int overflow;
} sizer;

static size_t mul3(sizer *z, size_t a, size_t b, size_t c)
{
    size_t r = 0;
    z->overflow |= tni_mul_overflow(a, b, &r) || tni_mul_overflow(r, c, &r);
    return r;
}

static size_t add(sizer *z, size_t a, size_t b)
{
    size_t r = 0;
    z->overflow |= tni_add_overflow(a, b, &r);
    return r;
}

/* First fit of groups[0..count) in order of start (they are created in that
 * order): a group may take memory whose previous owner's lifetime ended
 * before it starts.  Returns the doubles the groups need together. */
static size_t first_fit(sizer *z, group *gs, size_t count)
{
    size_t top = 0;
    for (size_t i = 0; i < count; i++) {
        group *G = &gs[i];
        size_t at = 0;
        /* Past each live earlier group it overlaps, until none does (the
         * offset only grows; O(count^2) at worst, and graphs are small). */
        for (int moved = 1; moved && !z->overflow;) {
            moved = 0;
            for (size_t k = 0; k < i; k++) {
                const group *K = &gs[k];
                if (K->end != FOREVER && K->end < G->start) continue;   /* dead by then */
                if (at < K->offset + K->doubles && K->offset < at + G->doubles) {
                    at = add(z, K->offset, K->doubles);
                    moved = 1;
                }
            }
        }
        G->offset = at;
        const size_t hi = add(z, at, G->doubles);
        if (hi > top) top = hi;
    }
    return top;
}

/* Degrees of every node for this order. */
static void degrees(tni_tape *tp, size_t order)
{
    const tni_graph *g = tp->g;
    tp->deg[0] = 0;
    for (size_t i = 1; i < tp->n; i++) {
        const tni_node *nd = &g->nodes[i];
        size_t din[TNI_MAX_INPUTS];
        for (size_t s = 0; s < nd->ninputs; s++) din[s] = tp->deg[nd->input[s]];
        tp->deg[i] = tni_kind_of(nd)->out_degree(nd, din, order);
    }
}

static size_t scratch_for(const tni_graph *g, size_t rows, size_t order)
{
    size_t most = 0;
    for (size_t i = 1; i < g->nnodes; i++) {
        const tni_node *nd = &g->nodes[i];
        const tni_kind_ops *k = tni_kind_of(nd);
        if (k->scratch_doubles == NULL) continue;
        const tni_shape *in[TNI_MAX_INPUTS];
        for (size_t s = 0; s < nd->ninputs; s++) in[s] = tni_input_shape(g, nd, s);
        const size_t d = k->scratch_doubles(nd, in, rows, order);
        if (d > most) most = d;
    }
    return most;
}

static int keeps_base(const tni_kind_ops *k, const tni_node *nd, size_t order, size_t dout)
{
    return k->keeps_base != NULL && k->keeps_base(nd, order, dout);
}

/* Plans the forward arena for (batch, order, flags); with base non-NULL also
 * points the tape's buffers into it.  Returns doubles needed (0: overflow). */
static size_t plan_forward(tni_tape *tp, size_t batch, size_t order, unsigned flags, double *base)
{
    const tni_graph *g = tp->g;
    sizer z = {0};
    size_t ng = 0;
    degrees(tp, order);
    tp->grp[0] = EXTERNAL;
    for (size_t i = 1; i < tp->n; i++) {
        const tni_node *nd = &g->nodes[i];
        const tni_kind_ops *k = tni_kind_of(nd);
        const size_t in0 = nd->input[0], G0 = tp->grp[in0];
        tp->in_place[i] = 0;
        size_t G;
        if (k->alias == TNI_ALIAS_VIEW) {
            G = G0;
        } else if (k->alias == TNI_ALIAS_IN_PLACE && G0 != EXTERNAL &&
                   tp->groups[G0].consumers == 1) {
            G = G0;
            tp->in_place[i] = 1;
        } else {
            G = ng++;
            group *N = &tp->groups[G];
            memset(N, 0, sizeof *N);
            N->start = i;
            N->end = 0;
        }
        tp->grp[i] = G;
        /* Reading consumes an edge of each input's group; the node's own
         * readers become consumers of its group. */
        for (size_t s = 0; s < nd->ninputs; s++) {
            const size_t Gs = tp->grp[nd->input[s]];
            if (Gs == EXTERNAL) continue;
            group *I = &tp->groups[Gs];
            if (Gs != G) {
                if (k->reverse_reads_input || (flags & TNI_KEEP_BASE)) I->end = FOREVER;
                else if (I->end != FOREVER && I->end < i) I->end = i;
            }
            I->consumers--;
        }
        if (G == EXTERNAL) continue;
        group *M = &tp->groups[G];
        M->members++;
        M->consumers += tp->readers[i];
        const size_t need = mul3(&z, tp->deg[i] + 1, batch, nd->size);
        if (need > M->doubles) M->doubles = need;
        if (i == g->output || (flags & TNI_KEEP_BASE)) M->end = FOREVER;
    }
    size_t used = first_fit(&z, tp->groups, ng);
    /* Per node: saved series, saved order-0 inputs. */
    for (size_t i = 1; i < tp->n; i++) {
        const tni_node *nd = &g->nodes[i];
        const tni_kind_ops *k = tni_kind_of(nd);
        const size_t sv = k->saved_doubles ? mul3(&z, batch, k->saved_doubles(nd, order), 1) : 0;
        const size_t bs = tp->in_place[i] && (flags & TNI_KEEP_BASE) &&
                                  !keeps_base(k, nd, order, tp->deg[i])
                              ? mul3(&z, batch, g->nodes[nd->input[0]].size, 1)
                              : 0;
        if (base) {
            tp->saved[i] = sv ? base + used : NULL;
            tp->base[i] = bs ? base + used + sv : NULL;
            tp->out[i] = tp->grp[i] == EXTERNAL ? NULL : base + tp->groups[tp->grp[i]].offset;
        }
        used = add(&z, used, add(&z, sv, bs));
    }
    const size_t scratch = scratch_for(g, batch, order);
    if (base) tp->scratch = base + used;
    used = add(&z, used, scratch);
    return z.overflow ? 0 : used;
}

/* Plans the cotangent arena for (batch, order, sets) after a forward.
 * Time runs backwards: node id n maps to time tp->n - n. */
static size_t plan_reverse(tni_tape *tp, size_t rows, size_t order, double *base)
{
    const tni_graph *g = tp->g;
    const size_t n = tp->n;
    sizer z = {0};
    size_t ng = 0;
    for (size_t i = 0; i < n; i++) tp->cgrp[i] = EXTERNAL;
    for (size_t i = n; i-- > 1;) {
        if (!tp->need_cot[i]) continue;
        const tni_node *nd = &g->nodes[i];
        size_t G = tp->cgrp[i];
        if (G == EXTERNAL) {   /* the output: written before the first reverse */
            G = ng++;
            group *N = &tp->groups[G];
            memset(N, 0, sizeof *N);
            N->start = 0;
            tp->cgrp[i] = G;
        }
        group *M = &tp->groups[G];
        const size_t need = mul3(&z, tp->deg[i] + 1, rows, nd->size);
        if (need > M->doubles) M->doubles = need;
        M->end = n - i;        /* read by this node's reverse */
        const tni_kind_ops *k = tni_kind_of(nd);
        for (size_t s = 0; s < nd->ninputs; s++) {
            const size_t in = nd->input[s];
            if (!tp->need_cot[in] || tp->cgrp[in] != EXTERNAL) continue;
            if (s == 0 && k->alias != TNI_ALIAS_NONE && tp->readers[in] == 1) {
                tp->cgrp[in] = G;
            } else {
                const size_t I = ng++;
                group *N = &tp->groups[I];
                memset(N, 0, sizeof *N);
                N->start = n - i;
                N->end = n - in;
                tp->cgrp[in] = I;
            }
        }
    }
    size_t used = first_fit(&z, tp->groups, ng);
    if (base)
        for (size_t i = 1; i < n; i++)
            tp->cot[i] = tp->need_cot[i] ? base + tp->groups[tp->cgrp[i]].offset : NULL;
    const size_t scratch = scratch_for(g, rows, order);
    if (base) tp->rscratch = base + used;
    used = add(&z, used, scratch);
    return z.overflow ? 0 : used;
}

size_t tni_tape_doubles(const tni_graph *g, size_t batch, size_t order, unsigned flags,
                        size_t sets)
{
    /* Planned on a temporary tape without a context (no messages). */
    tni_tape *tp = NULL;
    size_t total = 0;
    if (tni_tape_create(NULL, g, &tp) != TN_OK) return 0;
    const size_t f = plan_forward(tp, batch, order, flags, NULL);
    size_t rows = 0;
    const size_t r = f && !tni_mul_overflow(sets, batch, &rows) ? plan_reverse(tp, rows, order, NULL)
                                                                : 0;
    if (f && r && tni_add_overflow(f, r, &total)) total = 0;
    if (!f || !r) total = 0;
    tni_tape_free(tp);
    return total;
}

static tn_status grow(tni_tape *tp, double **arena, size_t *cap, size_t need, size_t batch,
                      size_t order)
{
    if (need == 0)
        return tni_fail(tp->ctx, TN_E_NOMEM, "workspace for batch %zu, order %zu overflows", batch,
                        order);
    if (need <= *cap) return TN_OK;
    double *a = tni_alloc(tp->ctx, need, sizeof(double));
    if (a == NULL)
        return tni_fail(tp->ctx, TN_E_NOMEM,
                        "out of memory for a workspace of %zu bytes (batch %zu, order %zu)",
                        need * sizeof(double), batch, order);
    tni_free(*arena);
    *arena = a;
    *cap = need;
    return TN_OK;
}

/* ---- forward ----------------------------------------------------------- */

static void node_io(const tni_tape *tp, size_t i, const double *theta0, const double *delta,
                    tni_node_io *io)
{
    const tni_graph *g = tp->g;
    const tni_node *nd = &g->nodes[i];
    memset(io, 0, sizeof *io);
    io->threads = tp->ctx ? tp->ctx->threads : 1;
    io->batch = tp->batch;
    io->order = tp->order;
    io->sets = 1;
    io->theta0 = theta0 + nd->offset;
    io->delta = delta ? delta + nd->offset : NULL;
    for (size_t s = 0; s < nd->ninputs; s++) {
        const size_t in = nd->input[s];
        io->in[s] = in == 0 ? tp->x : tp->out[in];
        io->in_shape[s] = &g->nodes[in].shape;
        io->din[s] = tp->deg[in];
    }
    io->out = tp->out[i];
    io->dout = tp->deg[i];
    io->saved = tp->saved[i];
    io->scratch = tp->scratch;
    io->flags = tp->flags;
    io->lo = tp->order > 0 ? 1 : 0;
}

tn_status tni_engine_forward(tni_tape *tp, const double *theta0, const double *delta, size_t order,
                             const double *x, size_t batch, unsigned flags)
{
    tp->valid = 0;
    const size_t need = plan_forward(tp, batch, order, flags, NULL);
    TNI_TRY(grow(tp, &tp->fwd, &tp->fwd_cap, need, batch, order));
    plan_forward(tp, batch, order, flags, tp->fwd);
    tp->x = x;
    tp->batch = batch;
    tp->order = order;
    tp->flags = flags;
    const tni_graph *g = tp->g;
    for (size_t i = 1; i < tp->n; i++) {
        const tni_node *nd = &g->nodes[i];
        const tni_kind_ops *k = tni_kind_of(nd);
        tni_node_io io;
        node_io(tp, i, theta0, delta, &io);
        if (k->alias == TNI_ALIAS_VIEW) {
            /* A view's blocks are its input's (the caller's x for node 0). */
            tp->out[i] = (double *)io.in[0];
            continue;
        }
        if (k->alias == TNI_ALIAS_IN_PLACE) {
            const size_t blk0 = batch * g->nodes[nd->input[0]].size;
            if (tp->in_place[i]) {
                /* The input's order-0 block is about to be overwritten: keep
                 * it for the next cached pass, or bring it back for this one
                 * (no block: the node keeps its own order-0 output). */
                if (tp->base[i] && (flags & TNI_BASE_CACHED))
                    memcpy(io.out, tp->base[i], blk0 * sizeof(double));
                else if (tp->base[i] && (flags & TNI_KEEP_BASE))
                    memcpy(tp->base[i], io.out, blk0 * sizeof(double));
            } else {
                /* Its own buffer: start from a copy of the input (but its
                 * order 0 on a cached pass of a node that keeps its own). */
                const size_t from =
                    (flags & TNI_BASE_CACHED) && keeps_base(k, nd, order, tp->deg[i]) ? 1 : 0;
                memcpy(io.out + from * blk0, io.in[0] + from * blk0,
                       (io.din[0] + 1 - from) * blk0 * sizeof(double));
            }
            io.in[0] = io.out;
        }
        k->forward(nd, &io);
    }
    tp->valid = 1;
    return TN_OK;
}

const double *tni_engine_output(const tni_tape *tp, size_t *deg)
{
    const size_t o = tp->g->output;
    *deg = tp->deg[o];
    return o == 0 ? tp->x : tp->out[o];
}

void tni_engine_output_sum(const tni_tape *tp, size_t first, double *y)
{
    size_t deg;
    const double *z = tni_engine_output(tp, &deg);
    const size_t blk = tp->batch * tp->g->nodes[tp->g->output].size;
    if (first > deg) {
        memset(y, 0, blk * sizeof(double));
        return;
    }
    /* Highest order first: the terms usually shrink with the order. */
    memcpy(y, z + deg * blk, blk * sizeof(double));
    for (size_t j = deg; j-- > first;) {
        const double *zj = z + j * blk;
        for (size_t e = 0; e < blk; e++) y[e] += zj[e];
    }
}

/* ---- reverse (training, VJP, and the NTK's sweep) ---------------------- */

static tn_status reverse(tni_tape *tp, const double *theta0, const double *delta,
                         const double *cot, size_t sets, double *grad, int accumulate,
                         tni_node_visit_fn visit, void *user)
{
    if (!tp->valid)
        return tni_fail(tp->ctx, TN_E_STATE, "reverse mode without a forward pass");
    const tni_graph *g = tp->g;
    const size_t rows = sets * tp->batch, o = g->output, lo = tp->order > 0 ? 1 : 0;
    const size_t need = plan_reverse(tp, rows, tp->order, NULL);
    TNI_TRY(grow(tp, &tp->rev, &tp->rev_cap, need, tp->batch, tp->order));
    plan_reverse(tp, rows, tp->order, tp->rev);
    memset(tp->written, 0, tp->n);
    const size_t oblk = rows * g->nodes[o].size;
    for (size_t j = lo; j <= tp->deg[o]; j++)
        memcpy(tp->cot[o] + j * oblk, cot, oblk * sizeof(double));
    for (size_t i = tp->n; i-- > 1;) {
        if (!tp->need_cot[i]) continue;
        const tni_node *nd = &g->nodes[i];
        const tni_kind_ops *k = tni_kind_of(nd);
        tni_node_io io;
        node_io(tp, i, theta0, delta, &io);
        io.sets = sets;
        io.scratch = tp->rscratch;
        io.cot_out = tp->cot[i];
        if (nd->count > 0) {
            if (visit) visit(user, i, io.in[0], io.cot_out, sets);
            io.grad = grad ? grad + nd->offset : NULL;
            io.grad_add = accumulate;
        }
        for (size_t s = 0; s < nd->ninputs; s++) {
            const size_t in = nd->input[s];
            if (!tp->need_cot[in] || tp->deg[in] < lo) continue;
            io.cot_in[s] = tp->cot[in];
            io.cot_add[s] = tp->written[in];
            tp->written[in] = 1;
        }
        if (io.cot_in[0] == NULL && io.cot_in[1] == NULL && io.grad == NULL) continue;
        k->reverse(nd, &io);
    }
    return TN_OK;
}

tn_status tni_engine_reverse(tni_tape *tp, const double *theta0, const double *delta,
                             const double *cot, double *grad, int accumulate)
{
    return reverse(tp, theta0, delta, cot, 1, grad, accumulate, NULL, NULL);
}

tn_status tni_engine_sweep(tni_tape *tp, const double *theta, const double *cot, size_t sets,
                           tni_node_visit_fn visit, void *user)
{
    if (!tp->valid || tp->order != 0)
        return tni_fail(tp->ctx, TN_E_STATE, "cotangent sweep without an order-0 forward pass");
    return reverse(tp, theta, NULL, cot, sets, NULL, 0, visit, user);
}

size_t tni_engine_pattern(const tni_tape *tp, unsigned char *bits)
{
    size_t count = 0;
    for (size_t i = 1; i < tp->n; i++) {
        const tni_node *nd = &tp->g->nodes[i];
        const tni_kind_ops *k = tni_kind_of(nd);
        if (k->pattern == NULL || !(nd->flags & TNI_NODE_RECTIFIER)) continue;
        count += k->pattern(nd, tp->saved[i], tp->batch, bits ? bits + count : NULL);
    }
    return count;
}
