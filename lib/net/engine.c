/* engine.c -- the one Taylor engine: forward and reverse over the layer list
 * (net.h).  The tape holds every layer's coefficient blocks for one (batch,
 * order); it grows when a larger one is asked for and is otherwise reused. */
#include "net.h"
#include "../kernel/series.h"

#include <string.h>

struct tni_tape {
    tn_ctx *ctx;
    size_t nlayers;
    size_t capacity;            /* doubles in arena */
    double *arena;
    double **out;               /* out[l]: layer l's output blocks */
    double **series;            /* series[l]: what layer l's forward saved */
    double **base;              /* base[l]: saved order-0 input of in-place layer l */
    size_t *deg;                /* degree of out[l] */
    double *cot[2];             /* reverse ping-pong */
    double *scratch;
    const double *x;            /* input of the last forward (caller's) */
    size_t batch, order;
    size_t out_dim;             /* values per example of the last layer */
    int valid;
};

const tni_layer_ops *tni_layer_ops_of(const tni_layer *L)
{
    return L->kind == TNI_LAYER_DENSE ? &tni_dense_ops : &tni_activation_ops;
}

tn_status tni_tape_create(tn_ctx *ctx, const tn_net *net, tni_tape **out)
{
    *out = NULL;
    tni_tape *tp = tni_alloc_or_fail(ctx, "tape", 1, sizeof *tp);
    if (tp == NULL) return TN_E_NOMEM;
    tp->ctx = ctx;
    tp->nlayers = net->nlayers;
    tp->out_dim = net->layers[net->nlayers - 1].out_size;
    tp->out = tni_alloc(ctx, net->nlayers, sizeof(double *));
    tp->series = tni_alloc(ctx, net->nlayers, sizeof(double *));
    tp->base = tni_alloc(ctx, net->nlayers, sizeof(double *));
    tp->deg = tni_alloc(ctx, net->nlayers, sizeof(size_t));
    if (tp->out == NULL || tp->series == NULL || tp->base == NULL || tp->deg == NULL) {
        tni_tape_free(tp);
        return tni_fail(ctx, TN_E_NOMEM, "tape: out of memory");
    }
    *out = tp;
    return TN_OK;
}

void tni_tape_free(tni_tape *tp)
{
    if (tp == NULL) return;
    tni_free(tp->arena);
    tni_free(tp->out);
    tni_free(tp->series);
    tni_free(tp->base);
    tni_free(tp->deg);
    tni_free(tp);
}

/* Carves n doubles from the arena being laid out (base NULL: only counts). */
typedef struct layout {
    double *base;
    size_t used;
    int overflow;
} layout;

static double *carve(layout *lay, size_t n)
{
    double *p = lay->base ? lay->base + lay->used : NULL;
    lay->overflow |= tni_add_overflow(lay->used, n, &lay->used);
    return p;
}

static size_t product(layout *lay, size_t a, size_t b, size_t c)
{
    size_t r = 0;
    lay->overflow |= tni_mul_overflow(a, b, &r) || tni_mul_overflow(r, c, &r);
    return r;
}

/* Lays the tape out for (batch, order) over `base` (NULL: only count).
 * Returns the number of doubles needed, or 0 on overflow. */
static size_t plan(const tn_net *net, tni_tape *tp, size_t batch, size_t order, unsigned flags,
                   double *base)
{
    layout lay = {base, 0, 0};
    size_t wide = net->input_size;
    for (size_t l = 0; l < net->nlayers; l++) {
        const tni_layer *L = &net->layers[l];
        const tni_layer_ops *ops = tni_layer_ops_of(L);
        if (L->out_size > wide) wide = L->out_size;
        double *out = ops->in_place && l > 0
                          ? (base ? tp->out[l - 1] : NULL)
                          : carve(&lay, product(&lay, batch, L->out_size, order + 1));
        double *series = carve(&lay, product(&lay, batch, L->out_size, ops->series_blocks(L, order)));
        double *saved = ops->in_place && (flags & TNI_KEEP_BASE)
                            ? carve(&lay, product(&lay, batch, L->in_size, 1))
                            : NULL;
        if (base) {
            tp->out[l] = out;
            tp->series[l] = series;
            tp->base[l] = saved;
        }
    }
    double *c0 = carve(&lay, product(&lay, batch, wide, order + 1));
    double *c1 = carve(&lay, product(&lay, batch, wide, order + 1));
    double *scratch = carve(&lay, tni_act_scratch_size(order));
    if (base) {
        tp->cot[0] = c0;
        tp->cot[1] = c1;
        tp->scratch = scratch;
    }
    return lay.overflow ? 0 : lay.used;
}

size_t tni_tape_doubles(const tn_net *net, size_t batch, size_t order, unsigned flags)
{
    return plan(net, NULL, batch, order, flags, NULL);
}

static tn_status reserve(const tn_net *net, tni_tape *tp, size_t batch, size_t order,
                         unsigned flags)
{
    const size_t need = plan(net, tp, batch, order, flags, NULL);
    if (need == 0)
        return tni_fail(tp->ctx, TN_E_NOMEM, "workspace for batch %zu, order %zu overflows",
                        batch, order);
    if (need > tp->capacity) {
        double *a = tni_alloc(tp->ctx, need, sizeof(double));
        if (a == NULL)
            return tni_fail(tp->ctx, TN_E_NOMEM,
                            "out of memory for a workspace of %zu bytes (batch %zu, order %zu)",
                            need * sizeof(double), batch, order);
        tni_free(tp->arena);
        tp->arena = a;
        tp->capacity = need;
    }
    plan(net, tp, batch, order, flags, tp->arena);
    return TN_OK;
}

static void layer_io(const tn_net *net, const tni_tape *tp, size_t l, const double *theta0,
                     const double *delta, unsigned flags, tni_layer_io *io)
{
    const tni_layer *L = &net->layers[l];
    memset(io, 0, sizeof *io);
    io->threads = net->ctx->threads;
    io->batch = tp->batch;
    io->order = tp->order;
    io->theta0 = theta0 + L->offset;
    io->delta = delta ? delta + L->offset : NULL;
    io->in = l == 0 ? tp->x : tp->out[l - 1];
    io->din = l == 0 ? 0 : tp->deg[l - 1];
    io->out = tp->out[l];
    io->dout = tp->deg[l];
    io->series = tp->series[l];
    io->base = tp->base[l];
    io->scratch = tp->scratch;
    io->flags = flags;
    io->lo = tp->order > 0 ? 1 : 0;
}

tn_status tni_engine_forward(const tn_net *net, tni_tape *tp, const double *theta0,
                             const double *delta, size_t order, const double *x, size_t batch,
                             unsigned flags)
{
    tp->valid = 0;
    tn_status st = reserve(net, tp, batch, order, flags);
    if (st != TN_OK) return st;
    tp->x = x;
    tp->batch = batch;
    tp->order = order;
    for (size_t l = 0; l < net->nlayers; l++) {
        const tni_layer *L = &net->layers[l];
        const tni_layer_ops *ops = tni_layer_ops_of(L);
        const size_t din = l == 0 ? 0 : tp->deg[l - 1];
        tp->deg[l] = ops->out_degree(L, din, order);
        if (ops->in_place && l == 0)   /* never write into the caller's input */
            memcpy(tp->out[0], x, batch * L->in_size * sizeof(double));
        tni_layer_io io;
        layer_io(net, tp, l, theta0, delta, flags, &io);
        ops->forward(L, &io);
    }
    tp->valid = 1;
    return TN_OK;
}

const double *tni_engine_output(const tni_tape *tp, size_t *deg)
{
    *deg = tp->deg[tp->nlayers - 1];
    return tp->out[tp->nlayers - 1];
}

void tni_engine_output_sum(const tni_tape *tp, size_t first, double *y)
{
    size_t deg;
    const double *z = tni_engine_output(tp, &deg);
    const size_t blk = tp->batch * tp->out_dim;
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

tn_status tni_engine_reverse(const tn_net *net, tni_tape *tp, const double *theta0,
                             const double *delta, const double *cot, double *grad,
                             int accumulate)
{
    if (!tp->valid)
        return tni_fail(tp->ctx, TN_E_STATE, "reverse mode without a forward pass");
    const size_t L = net->nlayers, blk = tp->batch * tp->out_dim;
    size_t first = L;                   /* first layer with parameters */
    for (size_t l = 0; l < L; l++)
        if (net->layers[l].count > 0) {
            first = l;
            break;
        }
    int cur = 0;
    for (size_t j = tp->order > 0 ? 1 : 0; j <= tp->deg[L - 1]; j++)
        memcpy(tp->cot[cur] + j * blk, cot, blk * sizeof(double));
    for (size_t l = L; l-- > first;) {
        const tni_layer *Ly = &net->layers[l];
        const tni_layer_ops *ops = tni_layer_ops_of(Ly);
        tni_layer_io io;
        layer_io(net, tp, l, theta0, delta, 0, &io);
        io.cot_out = tp->cot[cur];
        io.grad = grad + Ly->offset;
        io.grad_beta = accumulate ? 1.0 : 0.0;
        if (ops->in_place) {
            io.cot_in = io.cot_out;
        } else {
            io.cot_in = l > first && io.din >= io.lo ? tp->cot[1 - cur] : NULL;
            cur = 1 - cur;
        }
        ops->reverse(Ly, &io);
    }
    return TN_OK;
}

tn_status tni_engine_cotangent_sweep(const tn_net *net, tni_tape *tp, const double *theta,
                                     const double *cot, size_t sets, double *work,
                                     tni_layer_visit_fn visit, void *user)
{
    if (!tp->valid || tp->order != 0)
        return tni_fail(tp->ctx, TN_E_STATE, "cotangent sweep without an order-0 forward pass");
    const size_t L = net->nlayers, rows = sets * tp->batch;
    size_t first = L;
    for (size_t l = 0; l < L; l++)
        if (net->layers[l].count > 0) {
            first = l;
            break;
        }
    double *cur = work, *other = work + rows * tni_net_max_width(net);
    memcpy(cur, cot, rows * tp->out_dim * sizeof(double));
    for (size_t l = L; l-- > first;) {
        const tni_layer *Ly = &net->layers[l];
        const tni_layer_ops *ops = tni_layer_ops_of(Ly);
        tni_layer_io io;
        layer_io(net, tp, l, theta, NULL, 0, &io);
        if (Ly->count > 0) visit(user, l, Ly, io.in, cur, sets);
        if (l == first) break;
        io.cot_out = cur;
        io.cot_in = ops->in_place ? cur : other;
        ops->sweep(Ly, &io, sets);
        if (!ops->in_place) {
            double *t = cur;
            cur = other;
            other = t;
        }
    }
    return TN_OK;
}

size_t tni_engine_relu_pattern(const tn_net *net, const tni_tape *tp, unsigned char *bits)
{
    size_t count = 0;
    for (size_t l = 0; l < net->nlayers; l++) {
        const tni_layer *L = &net->layers[l];
        if (L->kind != TNI_LAYER_ACTIVATION ||
            (L->act != TN_ACT_RELU && L->act != TN_ACT_LEAKY_RELU))
            continue;
        /* The saved slope c_0 is 1 exactly where z_0 > 0 (series.c). */
        const size_t n = tp->batch * L->out_size;
        if (bits)
            for (size_t e = 0; e < n; e++) bits[count + e] = tp->series[l][e] == 1.0;
        count += n;
    }
    return count;
}
