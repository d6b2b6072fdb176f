/* analytic.c -- the driver of the infinite-width recursion over a graph
 * (analytic.h); each kind's step lives in its file (graph.h, analytic ops).
 *
 * Plan.  Node by node, its kind classifies its output (graph.h): known
 * values (no parameters upstream), a centered Gaussian field, or a field
 * known by its second moment; a node the recursion cannot follow is refused
 * there, before anything is allocated.  Nodes with known values are computed
 * by the kinds' own forward (order 0) for the examples of a tile, and each
 * one read by a node with parameters or by a sum enters as the Gram tensor
 * of its values (the mean over channels of their products, per pixel pair).
 *
 * Layout.  Going backwards, a node carries every pixel pair when something
 * downstream pools (average or global average pooling reads them all, and
 * convolutions and activations map pixel pairs to pixel pairs), else only
 * the aligned ones; a node stored with all pairs and read by a node that
 * wants the aligned ones is read through a copy of its diagonal.
 *
 * Memory.  Every tensor's size is a fixed number of doubles per example
 * pair, and its lifetime an interval of steps (from its node to its last
 * reader), so offsets are planned once, in doubles per pair, by first fit,
 * and serve any tile: a tile of a x b pairs puts the tensor at offset x ab.
 *
 * Passes.  First each example alone (the pair (x, x)): the variances every
 * activation needs at its input (the diagonal S(x, x)[p, p]), the range
 * check (every diagonal entry within [0, 1e150], so no pair can overflow:
 * |S(x, x')| <= sqrt(S(x, x) S(x', x')) entry by entry), and, when x2 is x1,
 * the kernels' diagonal.  Nothing is written to the outputs before it ends.
 * Then the tiles of pairs, each through every node in order.
 */
#include "analytic.h"
#include "../kernel/blas.h"
#include "../net/net.h"

#include <math.h>
#include <string.h>

/* Diagonal kernel values above this are refused (see Passes). */
#define KERNEL_LIMIT 1e150

typedef struct anode {
    tni_cov_plan plan;
    int has_T;              /* its state carries T (the NTK is wanted and it is not known values) */
    int state;              /* it has a tensor in the arena */
    int full;               /* its layout */
    size_t units;           /* doubles of S per example pair: P^2 or P */
    size_t off;             /* arena offset in doubles per pair (S; T follows S) */
    size_t first, last;     /* lifetime in steps: 2 id (before the node), 2 id + 1 (the node) */
    int copy[TNI_MAX_INPUTS];       /* input s read through an aligned copy */
    size_t copy_off[TNI_MAX_INPUTS];
    size_t var_base;        /* analytic_var kinds: its input's variances in the store */
    size_t val_off;         /* known values: offset in the values of a row (not views, not node 0) */
    size_t saved_off;
    void *work;             /* analytic_begin's */
} anode;

typedef struct aplan {
    tn_ctx *ctx;
    const char *who;
    const tni_graph *g;
    const tni_settings *s;
    int ntk;
    anode *nd;
    uint64_t *bits;
    size_t words;
    size_t pair_doubles;    /* the arena per example pair */
    size_t row_doubles;     /* known values and what their forward saves, per example row */
    size_t var_per_example; /* the store, per example */
    size_t self_doubles;    /* the largest Gram tensor of one example pair */
} aplan;

/* ---- planning ------------------------------------------------------------ */

static size_t det_pixels_of_input(const tni_graph *g)
{
    return tni_shape_pixels(&g->nodes[0].shape);
}

/* Classes, pixels and refusals, node by node. */
static tn_status plan_classes(aplan *pl)
{
    const tni_graph *g = pl->g;
    anode *nd = pl->nd;
    nd[0].plan.cls = TNI_COV_DET;
    nd[0].plan.pixels = det_pixels_of_input(g);
    for (size_t i = 1; i < g->nnodes; i++) {
        const tni_node *n = &g->nodes[i];
        const tni_kind_ops *k = tni_kind_of(n);
        if (k->analytic_plan == NULL)
            return tni_fail(pl->ctx, TN_E_UNSUPPORTED,
                            "%s: node %zu is a %s layer, which has no infinite-width kernel",
                            pl->who, i, k->name);
        const tni_cov_plan *in[TNI_MAX_INPUTS];
        for (size_t s = 0; s < n->ninputs; s++) in[s] = &nd[n->input[s]].plan;
        TNI_TRY(k->analytic_plan(n, i, in, pl->words, &nd[i].plan, pl->ctx, pl->who));
        if (nd[i].plan.cls != TNI_COV_DET && k->analytic == NULL)
            return tni_fail(pl->ctx, TN_E_UNSUPPORTED,
                            "%s: node %zu is a %s layer, which has no infinite-width kernel",
                            pl->who, i, k->name);
    }
    return TN_OK;
}

static int is_det(const aplan *pl, size_t id)
{
    return pl->nd[id].plan.cls == TNI_COV_DET;
}

/* The layout node c wants of its inputs. */
static int wants_full(const aplan *pl, size_t c)
{
    const tni_kind_ops *k = tni_kind_of(&pl->g->nodes[c]);
    return k->analytic_input == TNI_COV_IN_FULL ||
           (k->analytic_input == TNI_COV_IN_AS_OUT && pl->nd[c].full);
}

/* Layouts (backwards) and lifetimes. */
static void plan_layouts(aplan *pl)
{
    const tni_graph *g = pl->g;
    anode *nd = pl->nd;
    for (size_t i = 0; i < g->nnodes; i++) {
        nd[i].full = 0;
        nd[i].state = !is_det(pl, i);
        nd[i].first = 2 * i + 1;
        nd[i].last = i == g->output ? 2 * g->nnodes : 2 * i + 1;
    }
    for (size_t c = g->nnodes; c-- > 1;) {
        if (is_det(pl, c)) continue;
        const tni_node *n = &g->nodes[c];
        for (size_t s = 0; s < n->ninputs; s++) {
            anode *in = &nd[n->input[s]];
            if (wants_full(pl, c)) in->full = 1;
            if (is_det(pl, n->input[s])) {
                /* Known values read by a node that is not: their Gram
                 * tensor, from the first such reader to the last. */
                if (!in->state) in->last = 2 * c + 1;
                in->state = 1;
                in->first = 2 * c;
            } else if (2 * c + 1 > in->last) {
                in->last = 2 * c + 1;
            }
        }
    }
    for (size_t i = 0; i < g->nnodes; i++) {
        if (nd[i].plan.pixels == 1) nd[i].full = 0;
        const size_t P = nd[i].plan.pixels;
        nd[i].units = nd[i].full ? P * P : P;
        nd[i].has_T = pl->ntk && !is_det(pl, i);
    }
    for (size_t c = 1; c < g->nnodes; c++) {
        const tni_node *n = &g->nodes[c];
        for (size_t s = 0; s < n->ninputs; s++)
            nd[c].copy[s] = !is_det(pl, c) && nd[n->input[s]].full && !wants_full(pl, c);
    }
}

/* A tensor to place: [first, last] steps, size doubles per pair. */
typedef struct buf {
    size_t first, last, size, *off;
} buf;

static int overlap(const buf *a, const buf *b)
{
    return a->first <= b->last && b->first <= a->last;
}

/* First fit in the order given (by first step): the lowest offset free of
 * every placed buffer whose lifetime meets this one's.  Returns the arena's
 * doubles per pair. */
static size_t place(buf *bufs, size_t nb)
{
    size_t top = 0;
    for (size_t i = 0; i < nb; i++) {
        size_t off = 0;
        for (int moved = 1; moved;) {
            moved = 0;
            for (size_t j = 0; j < i; j++)
                if (overlap(&bufs[i], &bufs[j]) && off < *bufs[j].off + bufs[j].size &&
                    *bufs[j].off < off + bufs[i].size) {
                    off = *bufs[j].off + bufs[j].size;
                    moved = 1;
                }
        }
        *bufs[i].off = off;
        if (off + bufs[i].size > top) top = off + bufs[i].size;
    }
    return top;
}

static tn_status plan_memory(aplan *pl)
{
    const tni_graph *g = pl->g;
    anode *nd = pl->nd;
    buf *bufs = tni_alloc_or_fail(pl->ctx, pl->who, 3 * g->nnodes, sizeof *bufs);
    if (bufs == NULL) return TN_E_NOMEM;
    size_t nb = 0;
    for (size_t step = 0; step <= 2 * g->nnodes; step++) {
        for (size_t i = 0; i < g->nnodes; i++)
            if (nd[i].state && nd[i].first == step)
                bufs[nb++] = (buf){nd[i].first, nd[i].last,
                                   nd[i].units * (nd[i].has_T ? 2 : 1), &nd[i].off};
        if (step % 2 == 0 && step / 2 < g->nnodes) {
            const size_t c = step / 2;
            const tni_node *n = &g->nodes[c];
            for (size_t s = 0; c > 0 && s < n->ninputs; s++)
                if (nd[c].copy[s]) {
                    const anode *in = &nd[n->input[s]];
                    bufs[nb++] = (buf){step, step + 1, in->plan.pixels * (in->has_T ? 2 : 1),
                                       &nd[c].copy_off[s]};
                }
        }
    }
    pl->pair_doubles = place(bufs, nb);
    tni_free(bufs);
    /* Known values per row, and the variance store per example. */
    pl->row_doubles = 0;
    pl->var_per_example = 0;
    pl->self_doubles = nd[0].state ? nd[0].units : 0;
    for (size_t i = 1; i < g->nnodes; i++) {
        const tni_node *n = &g->nodes[i];
        const tni_kind_ops *k = tni_kind_of(n);
        if (is_det(pl, i) && k->alias != TNI_ALIAS_VIEW) {
            nd[i].val_off = pl->row_doubles;
            pl->row_doubles += n->size;
            nd[i].saved_off = pl->row_doubles;
            pl->row_doubles += k->saved_doubles ? k->saved_doubles(n, 0) : 0;
        }
        if (is_det(pl, i) && nd[i].state && nd[i].units > pl->self_doubles)
            pl->self_doubles = nd[i].units;
        if (!is_det(pl, i) && k->analytic_var) {
            nd[i].var_base = pl->var_per_example;
            pl->var_per_example += nd[n->input[0]].plan.pixels;
        }
    }
    return TN_OK;
}

/* ---- one tile ------------------------------------------------------------ */

/* A tile: a x b pairs of the examples xa (a rows) and xb (b rows; xa when
 * tri).  Their variances are rows row1.. and row2.. of the store (the self
 * pass: the one example's, which it fills). */
typedef struct atile {
    size_t a, b;
    int tri, self;          /* self: one example with itself (tri, and the pair (0, 0)) */
    const double *xa, *xb;
    size_t row1, row2;
    double *arena;          /* pair_doubles x a b */
    double *values;         /* row_doubles x (a + b) */
    double *scratch;        /* the known values' forward */
    double *tmp;            /* the kinds' */
    double *store;          /* [node][example][pixel] (var_base x n_ex per node) */
    size_t n_ex;
    double *selfblk;        /* one example's Gram tensor (the largest) */
} atile;

static double *state_S(const aplan *pl, const atile *t, size_t id)
{
    return t->arena + pl->nd[id].off * t->a * t->b;
}

static double *state_T(const aplan *pl, const atile *t, size_t id)
{
    const anode *n = &pl->nd[id];
    return n->has_T ? t->arena + (n->off + n->units) * t->a * t->b : NULL;
}

/* The known values of node id for the rows of one side. */
static const double *values_of(const aplan *pl, const atile *t, int side, size_t id)
{
    const tni_graph *g = pl->g;
    while (id != 0 && tni_kind_of(&g->nodes[id])->alias == TNI_ALIAS_VIEW)
        id = g->nodes[id].input[0];
    if (id == 0) return side ? t->xb : t->xa;
    const size_t rows = side ? t->b : t->a;
    return t->values + (side ? t->a * pl->row_doubles : 0) + pl->nd[id].val_off * rows;
}

/* Every node with known values, forward at order 0 for one side's rows. */
static void known_values(const aplan *pl, const atile *t, int side, int threads)
{
    const tni_graph *g = pl->g;
    const size_t rows = side ? t->b : t->a;
    double *base = t->values + (side ? t->a * pl->row_doubles : 0);
    for (size_t i = 1; i < g->nnodes; i++) {
        const tni_node *n = &g->nodes[i];
        const tni_kind_ops *k = tni_kind_of(n);
        if (!is_det(pl, i) || k->alias == TNI_ALIAS_VIEW) continue;
        tni_node_io io;
        memset(&io, 0, sizeof io);
        io.threads = threads;
        io.batch = rows;
        io.sets = 1;
        io.out = base + pl->nd[i].val_off * rows;
        io.saved = base + pl->nd[i].saved_off * rows;
        io.scratch = t->scratch;
        for (size_t s = 0; s < n->ninputs; s++) {
            io.in[s] = values_of(pl, t, side, n->input[s]);
            io.in_shape[s] = tni_input_shape(g, n, s);
        }
        if (k->alias == TNI_ALIAS_IN_PLACE) {
            memcpy(io.out, io.in[0], rows * g->nodes[n->input[0]].size * sizeof(double));
            io.in[0] = io.out;
        }
        k->forward(n, &io);
    }
}

/* The Gram tensor of known values: per pixel pair the mean over channels
 * of the products, for examples va (a rows) and vb (b rows; va when tri),
 * into M in the node's layout. */
static void gram_of(const aplan *pl, size_t id, const double *va, const double *vb, size_t a,
                    size_t b, int tri, double *M, int threads)
{
    const tni_node *n = &pl->g->nodes[id];
    const size_t P = pl->nd[id].plan.pixels, C = n->size / P;
    const double inv = 1.0 / (double)C;
    if (pl->nd[id].full) {
        tni_gemm(threads, TNI_NOTRANS, TNI_TRANS, a * P, b * P, C, inv, va, C, vb, C, 0.0, M, b * P);
        return;
    }
    for (size_t p = 0; p < P; p++) {
        if (tri)
            tni_syrk_lower(threads, a, C, inv, va + p * C, n->size, 0.0, M + p * a * b, b);
        else
            tni_gemm(threads, TNI_NOTRANS, TNI_TRANS, a, b, C, inv, va + p * C, n->size,
                     vb + p * C, n->size, 0.0, M + p * a * b, b);
    }
}

static void gram(const aplan *pl, const atile *t, size_t id, int threads)
{
    const tni_node *n = &pl->g->nodes[id];
    const size_t P = pl->nd[id].plan.pixels, a = t->a, b = t->b, sz = n->size;
    const double *va = values_of(pl, t, 0, id), *vb = t->tri ? va : values_of(pl, t, 1, id);
    double *M = state_S(pl, t, id);
    gram_of(pl, id, va, vb, a, b, t->tri, M, threads);
    if (t->self) return;
    /* An example met twice (in x1 and x2, or twice in x1) gets exactly the
     * tensor it has with itself, computed as the self pass computes it: a
     * GEMM kernel that sums in another order (BLIS's use FMA and split the
     * sum in blocks) would put ~1e-8 into the NTK through the arccosine,
     * which is ill-conditioned at correlation 1. */
    for (size_t i = 0; i < a; i++)
        for (size_t j = 0; j < (t->tri ? i : b); j++) {
            if (memcmp(va + i * sz, vb + j * sz, sz * sizeof(double)) != 0) continue;
            gram_of(pl, id, va + i * sz, va + i * sz, 1, 1, 1, t->selfblk, threads);
            for (size_t p = 0; p < P; p++) {
                if (!pl->nd[id].full) {
                    M[(p * a + i) * b + j] = t->selfblk[p];
                    continue;
                }
                for (size_t q = 0; q < P; q++)
                    M[(i * P + p) * b * P + j * P + q] = t->selfblk[p * P + q];
            }
        }
}

/* The state of node id as a kind reads it. */
static tni_cov cov_of(const aplan *pl, const atile *t, size_t id)
{
    const anode *n = &pl->nd[id];
    tni_cov c = {state_S(pl, t, id), state_T(pl, t, id), n->plan.pixels, n->full};
    return c;
}

/* The pixel-aligned entries of a full tensor. */
static void diagonal_copy(const atile *t, size_t P, const double *src, double *dst)
{
    const size_t a = t->a, b = t->b, ld = b * P;
    for (size_t p = 0; p < P; p++)
        for (size_t i = 0; i < a; i++) {
            const size_t jend = t->tri ? i + (size_t)t->self : b;
            for (size_t j = 0; j < jend; j++)
                dst[(p * a + i) * b + j] = src[(i * P + p) * ld + j * P + p];
        }
}

/* S (and T) at ((0, p), (0, p)) of a one-pair tile, into out (P each). */
static void self_diagonal(const tni_cov *c, double *outS, double *outT)
{
    const size_t P = c->pixels;
    for (size_t p = 0; p < P; p++) {
        const size_t e = c->full ? p * P + p : p;
        if (outS) outS[p] = c->S[e];
        if (outT) outT[p] = c->T ? c->T[e] : 0.0;
    }
}

static int in_range(double v)
{
    return v >= 0.0 && v <= KERNEL_LIMIT;    /* false for NaN */
}

/* Every diagonal entry of a one-pair tile's tensor in range. */
static int diagonal_in_range(const tni_cov *c)
{
    const size_t P = c->pixels;
    for (size_t p = 0; p < P; p++) {
        const size_t e = c->full ? p * P + p : p;
        if (!in_range(c->S[e]) || (c->T && !in_range(c->T[e]))) return 0;
    }
    return 1;
}

/* Runs every node over the tile.  In the self pass returns 0 as soon as a
 * diagonal leaves the range (nothing else fails). */
static int run_tile(const aplan *pl, const atile *t, int threads)
{
    const tni_graph *g = pl->g;
    known_values(pl, t, 0, threads);
    if (!t->tri) known_values(pl, t, 1, threads);
    for (size_t c = 1; c < g->nnodes; c++) {
        if (is_det(pl, c)) continue;
        const tni_node *n = &g->nodes[c];
        const tni_kind_ops *k = tni_kind_of(n);
        tni_cov_io io;
        memset(&io, 0, sizeof io);
        io.threads = threads;
        io.a = t->a;
        io.b = t->b;
        io.tri = t->tri;
        io.diag = t->self;
        for (size_t s = 0; s < n->ninputs; s++) {
            const size_t in = n->input[s];
            io.in_shape[s] = tni_input_shape(g, n, s);
            if (is_det(pl, in) && pl->nd[in].first == 2 * c) {
                gram(pl, t, in, threads);
                if (t->self && !diagonal_in_range(&(tni_cov){state_S(pl, t, in), NULL,
                                                             pl->nd[in].plan.pixels,
                                                             pl->nd[in].full}))
                    return 0;
            }
            io.in[s] = cov_of(pl, t, in);
            if (pl->nd[c].copy[s]) {
                const size_t P = io.in[s].pixels, ab = t->a * t->b;
                double *dst = t->arena + pl->nd[c].copy_off[s] * ab;
                diagonal_copy(t, P, io.in[s].S, dst);
                if (io.in[s].T) diagonal_copy(t, P, io.in[s].T, dst + P * ab);
                io.in[s].S = dst;
                io.in[s].T = io.in[s].T ? dst + P * ab : NULL;
                io.in[s].full = 0;
            }
        }
        io.out = cov_of(pl, t, c);
        if (k->analytic_var) {
            const size_t P = io.in[0].pixels;
            double *block = t->store + pl->nd[c].var_base * t->n_ex;
            io.var1 = block + t->row1 * P;
            io.var2 = block + t->row2 * P;
            if (t->self) self_diagonal(&io.in[0], block + t->row1 * P, NULL);
        }
        io.work = pl->nd[c].work;
        io.tmp = t->tmp;
        k->analytic(n, pl->s, &io);
        if (t->self && !diagonal_in_range(&io.out)) return 0;
    }
    return 1;
}

/* ---- the driver ---------------------------------------------------------- */

/* Workspace of a tile of a x b pairs: arena, values, forward scratch, the
 * kinds' tmp (doubles); 0 on overflow.  *tmp_out, *scratch_out their parts. */
static double tile_doubles(const aplan *pl, size_t a, size_t b, size_t *scratch_out,
                           size_t *tmp_out)
{
    const tni_graph *g = pl->g;
    size_t scratch = 0, tmp = 0;
    const size_t rows = a > b ? a : b;
    for (size_t i = 1; i < g->nnodes; i++) {
        const tni_node *n = &g->nodes[i];
        const tni_kind_ops *k = tni_kind_of(n);
        if (is_det(pl, i)) {
            if (k->scratch_doubles && k->alias != TNI_ALIAS_VIEW) {
                const tni_shape *ins[TNI_MAX_INPUTS];
                for (size_t s = 0; s < n->ninputs; s++) ins[s] = tni_input_shape(g, n, s);
                const size_t sd = k->scratch_doubles(n, ins, rows, 0);
                if (sd > scratch) scratch = sd;
            }
            continue;
        }
        if (k->analytic_tmp_doubles == NULL) continue;
        tni_cov_io geo;
        memset(&geo, 0, sizeof geo);
        geo.a = a;
        geo.b = b;
        for (size_t s = 0; s < n->ninputs; s++) {
            const anode *in = &pl->nd[n->input[s]];
            geo.in_shape[s] = tni_input_shape(g, n, s);
            geo.in[s] = (tni_cov){NULL, NULL, in->plan.pixels, in->full && !pl->nd[i].copy[s]};
        }
        geo.out = (tni_cov){NULL, pl->nd[i].has_T ? (double *)&geo : NULL, pl->nd[i].plan.pixels,
                            pl->nd[i].full};
        const size_t td = k->analytic_tmp_doubles(n, &geo);
        if (td > tmp) tmp = td;
    }
    if (scratch_out) *scratch_out = scratch;
    if (tmp_out) *tmp_out = tmp;
    return (double)a * (double)b * (double)pl->pair_doubles +
           (double)(a + b) * (double)pl->row_doubles + (double)scratch + (double)tmp +
           (double)pl->self_doubles;
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* The largest square tile side t whose workspace fits cap doubles (tiles
 * a = min(t, n1), b = min(t, n2)); 0 if not even one pair fits. */
static size_t tile_side(const aplan *pl, size_t n1, size_t n2, double cap)
{
    if (tile_doubles(pl, 1, 1, NULL, NULL) > cap) return 0;
    size_t lo = 1, hi = n1 > n2 ? n1 : n2;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo + 1) / 2;
        if (tile_doubles(pl, min_size(mid, n1), min_size(mid, n2), NULL, NULL) <= cap)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* The output node's tensor reduced to the tile's kernel entries: the mean
 * over its pixel-aligned entries (the trace over outputs). */
static double reduce(const double *S, size_t P, size_t a, size_t b, size_t i, size_t j)
{
    double acc = 0.0;
    for (size_t p = 0; p < P; p++) acc += S[(p * a + i) * b + j];
    return P == 1 ? acc : acc / (double)P;
}

tn_status tni_analytic_graph(tn_ctx *ctx, const char *who, const tni_graph *g,
                             const tni_settings *s, size_t budget, const double *x1, size_t n1,
                             const double *x2, size_t n2, double *nngp, double *ntk)
{
    if (nngp == NULL && ntk == NULL) return TN_OK;
    const int sym = x2 == NULL || (x2 == x1 && n2 == n1);
    if (sym) {
        x2 = x1;
        n2 = n1;
    }
    const size_t d = g->nodes[0].size, n_ex = sym ? n1 : n1 + n2;
    aplan pl;
    memset(&pl, 0, sizeof pl);
    pl.ctx = ctx;
    pl.who = who;
    pl.g = g;
    pl.s = s;
    pl.ntk = ntk != NULL;
    pl.words = (g->nnodes + 63) / 64;
    tn_status st = TN_E_NOMEM;
    double *store = NULL, *diag = NULL, *work = NULL;
    size_t nn;
    if (tni_mul_overflow(n1, n2, &nn))
        return tni_fail(ctx, TN_E_NOMEM, "%s: a %zu x %zu kernel overflows size_t", who, n1, n2);
    pl.nd = tni_alloc_or_fail(ctx, who, g->nnodes, sizeof *pl.nd);
    pl.bits = tni_alloc_or_fail(ctx, who, g->nnodes * pl.words, sizeof(uint64_t));
    if (pl.nd == NULL || pl.bits == NULL) goto done;
    for (size_t i = 0; i < g->nnodes; i++) pl.nd[i].plan.reach = pl.bits + i * pl.words;
    if ((st = plan_classes(&pl)) != TN_OK) goto done;
    plan_layouts(&pl);
    if ((st = plan_memory(&pl)) != TN_OK) goto done;

    /* Every allocation now, before anything is written.  The budget holds
     * all of them: the variances of every example (the store, and the
     * kernels' diagonals) first, the tiles in what remains. */
    st = TN_E_NOMEM;
    size_t nstore;
    if (tni_mul_overflow(pl.var_per_example, n_ex, &nstore)) {
        st = tni_fail(ctx, TN_E_NOMEM, "%s: the variances of %zu examples overflow", who, n_ex);
        goto done;
    }
    const double per_example = (double)(nstore + 1) + 2.0 * (double)n_ex;
    const double cap = (double)budget / sizeof(double) - per_example;
    const size_t side = cap > 0 ? tile_side(&pl, n1, n2, cap) : 0;
    if (side == 0) {
        st = tni_fail(ctx, TN_E_NOMEM,
                      "%s: a memory budget of %zu bytes cannot hold one example pair besides "
                      "the variances of the %zu examples (%.0f bytes needed); raise "
                      "TN_NTK_MEMORY_BUDGET",
                      who, budget, n_ex,
                      (tile_doubles(&pl, 1, 1, NULL, NULL) + per_example) * sizeof(double));
        goto done;
    }
    const size_t ta = min_size(side, n1), tb = min_size(side, n2);
    size_t scratch, tmp;
    const double total = tile_doubles(&pl, ta, tb, &scratch, &tmp);
    work = tni_alloc_or_fail(ctx, who, (size_t)total + 1, sizeof(double));
    store = tni_alloc_or_fail(ctx, who, nstore + 1, sizeof(double));
    diag = tni_alloc_or_fail(ctx, who, 2 * n_ex, sizeof(double));
    if (work == NULL || store == NULL || diag == NULL) goto done;
    for (size_t i = 1; i < g->nnodes; i++) {
        const tni_kind_ops *k = tni_kind_of(&g->nodes[i]);
        if (!is_det(&pl, i) && k->analytic_begin &&
            (st = k->analytic_begin(&g->nodes[i], s, pl.ntk, ctx, who, &pl.nd[i].work)) != TN_OK)
            goto done;
    }
    st = TN_OK;
    const int threads = ctx->threads;
    double *arena = work, *values = arena + ta * tb * pl.pair_doubles;
    double *fwd_scratch = values + (ta + tb) * pl.row_doubles, *kind_tmp = fwd_scratch + scratch;
    double *selfblk = kind_tmp + tmp;
    const double N1 = (double)n1, N2 = (double)n2;
    const double units = (double)n_ex + (sym ? 0.5 * N1 * (N1 - 1) : N1 * N2);
    double done_units = 0.0;

    /* Each example alone: variances, the range check, the diagonal. */
    for (size_t e = 0; e < n_ex; e++) {
        const double *x = e < n1 ? x1 + e * d : x2 + (e - n1) * d;
        const atile t = {1, 1, 1, 1, x, x, e, e, arena, values, fwd_scratch, kind_tmp, store, n_ex,
                         selfblk};
        if (!run_tile(&pl, &t, threads)) {
            const int finite = tni_all_finite(x1, n1 * d) && (sym || tni_all_finite(x2, n2 * d));
            st = finite ? tni_fail(ctx, TN_E_INVALID_ARG,
                                   "%s: the kernel exceeds %g (inputs or sigma_w too large)", who,
                                   KERNEL_LIMIT)
                        : tni_fail(ctx, TN_E_INVALID_ARG, "%s: an input is not finite", who);
            goto done;
        }
        const tni_cov out = cov_of(&pl, &t, g->output);
        diag[e] = reduce(out.S, out.pixels, 1, 1, 0, 0);
        if (out.T) diag[n_ex + e] = reduce(out.T, out.pixels, 1, 1, 0, 0);
        done_units += 1.0;
        if ((e + 1) % (n_ex / 64 + 1) == 0 &&
            (st = tni_progress(ctx, who, done_units / units)) != TN_OK)
            goto cancelled;
    }

    /* The pairs, tile by tile (x2 = x1: the tiles on and below the diagonal). */
    for (size_t ia = 0; ia < n1; ia += ta) {
        const size_t a = min_size(ta, n1 - ia);
        for (size_t jb = 0; jb < (sym ? ia + 1 : n2); jb += tb) {
            const size_t b = min_size(tb, n2 - jb);
            const int tri = sym && jb == ia;
            const atile t = {a, tri ? a : b, tri, 0, x1 + ia * d, x2 + jb * d, ia,
                             sym ? jb : n1 + jb, arena, values, fwd_scratch, kind_tmp, store, n_ex,
                             selfblk};
            run_tile(&pl, &t, threads);
            const tni_cov out = cov_of(&pl, &t, g->output);
            for (size_t i = 0; i < a; i++)
                for (size_t j = 0; j < (tri ? i : t.b); j++) {
                    const size_t at = (ia + i) * n2 + jb + j;
                    if (nngp) nngp[at] = reduce(out.S, out.pixels, a, t.b, i, j);
                    if (ntk) ntk[at] = reduce(out.T, out.pixels, a, t.b, i, j);
                }
            done_units += tri ? 0.5 * (double)a * (double)(a - 1) : (double)a * (double)b;
            if ((st = tni_progress(ctx, who, done_units / units)) != TN_OK) goto cancelled;
        }
    }
    if (sym) {
        for (size_t i = 0; i < n1; i++) {
            if (nngp) nngp[i * n1 + i] = diag[i];
            if (ntk) ntk[i * n1 + i] = diag[n_ex + i];
        }
        if (nngp) tni_symmetrize_lower(n1, nngp, n1);
        if (ntk) tni_symmetrize_lower(n1, ntk, n1);
    }
    goto done;

cancelled:
    /* Never a partial kernel that could pass for a result. */
    for (size_t e = 0; e < nn; e++) {
        if (nngp) nngp[e] = NAN;
        if (ntk) ntk[e] = NAN;
    }

done:
    for (size_t i = 0; pl.nd && i < g->nnodes; i++)
        if (pl.nd[i].work) tni_kind_of(&g->nodes[i])->analytic_end(pl.nd[i].work);
    tni_free(work);
    tni_free(store);
    tni_free(diag);
    tni_free(pl.nd);
    tni_free(pl.bits);
    return st;
}

/* ---- an MLP by its description ------------------------------------------- */

#define WHO "tn_ntk_analytic"

tn_status tni_analytic_mlp(tn_ctx *ctx, const tni_mlp_spec *spec, const double *x1, size_t n1,
                           const double *x2, size_t n2, double *nngp, double *ntk)
{
    if (spec == NULL || x1 == NULL)
        return tni_fail(ctx, TN_E_INVALID_ARG, WHO ": spec and x1 must not be NULL");
    if (n1 == 0 || (x2 != NULL && n2 == 0))
        return tni_fail(ctx, TN_E_INVALID_ARG, WHO ": no inputs (n1 = %zu, n2 = %zu)", n1, n2);
    if (spec->d == 0) return tni_fail(ctx, TN_E_INVALID_ARG, WHO ": input size 0");
    if (spec->depth < 1)
        return tni_fail(ctx, TN_E_INVALID_ARG, WHO ": depth must be >= 1 dense layer");
    if (!isfinite(spec->sigma_w) || !isfinite(spec->sigma_b) || spec->sigma_w < 0.0 ||
        spec->sigma_b < 0.0)
        return tni_fail(ctx, TN_E_INVALID_ARG,
                        WHO ": sigma_w and sigma_b must be finite and >= 0 (got %g, %g)",
                        spec->sigma_w, spec->sigma_b);
    if ((int)spec->act < (int)TN_ACT_IDENTITY || (int)spec->act > (int)TN_ACT_SOFTPLUS)
        return tni_fail(ctx, TN_E_UNSUPPORTED,
                        WHO ": activation %d has no infinite-width kernel", (int)spec->act);
    if (spec->act == TN_ACT_LEAKY_RELU && !isfinite(spec->slope))
        return tni_fail(ctx, TN_E_INVALID_ARG, WHO ": leaky ReLU slope %g is not finite",
                        spec->slope);
    if (nngp == NULL && ntk == NULL) return TN_OK;
    /* The graph: dense layers of width 1 (the kernel does not depend on the
     * widths), never initialized. */
    size_t d = spec->d;
    tn_net *net = NULL;
    tn_status st = tn_net_create(ctx, &d, 1, &net);
    for (size_t l = 0; st == TN_OK && l < spec->depth; l++) {
        if (l > 0) st = tn_net_add_activation(net, spec->act);
        if (st == TN_OK) st = tn_net_add_dense(net, 1);
    }
    if (st == TN_OK) st = tni_net_finish(net, WHO);
    if (st == TN_OK) {
        const tni_settings s = {TN_PARAM_NTK, spec->sigma_w, spec->sigma_b, spec->slope};
        st = tni_analytic_graph(ctx, WHO, tni_net_graph(net), &s, SIZE_MAX / 2, x1, n1, x2, n2,
                                nngp, ntk);
    } else if (st == TN_E_NOMEM) {
        tni_fail(ctx, st, WHO ": out of memory");
    }
    tn_net_free(net);
    return st;
}
