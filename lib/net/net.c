/* net.c -- the network handle: layer list, parameter layout, settings, and
 * plain forward / JVP / VJP through the engine in bounded chunks of rows. */
#include "net.h"

#include <math.h>
#include <string.h>

/* Rows per engine call in tn_net_forward / jvp / vjp: enough for GEMMs to run
 * at full speed, few enough that the workspace stays near this many bytes. */
#define TNI_CHUNK_BYTES ((size_t)64 << 20)

tn_status tni_net_new(tn_ctx *ctx, const size_t *shape, size_t ndim, tn_net **out)
{
    size_t size = 1;
    for (size_t i = 0; i < ndim; i++)
        if (tni_mul_overflow(size, shape[i], &size))
            return tni_fail(ctx, TN_E_NOMEM, "tn_net_create: input size overflows");
    tn_net *net = tni_alloc_or_fail(ctx, "tn_net_create", 1, sizeof *net);
    if (net == NULL) return TN_E_NOMEM;
    net->magic = TNI_MAGIC_NET;
    net->ctx = ctx;
    for (size_t i = 0; i < ndim; i++) net->input_shape[i] = shape[i];
    net->input_ndim = ndim;
    net->input_size = size;
    net->parameterization = TN_PARAM_NTK;
    net->sigma_w = 1.0;
    net->sigma_b = 0.1;
    net->leaky_slope = 0.01;
    *out = net;
    return TN_OK;
}

size_t tni_net_output_dim(const tn_net *net)
{
    return net->nlayers ? net->layers[net->nlayers - 1].out_size : net->input_size;
}

size_t tni_net_max_width(const tn_net *net)
{
    size_t w = net->input_size;
    for (size_t l = 0; l < net->nlayers; l++)
        if (net->layers[l].out_size > w) w = net->layers[l].out_size;
    return w;
}

tn_status tni_net_append(tn_net *net, tni_layer_kind kind, size_t width, tn_activation act)
{
    tni_layer L;
    memset(&L, 0, sizeof L);
    L.kind = kind;
    L.in_size = tni_net_output_dim(net);
    L.out_size = kind == TNI_LAYER_DENSE ? width : L.in_size;
    L.act = act;
    L.offset = net->nparams;
    size_t total = net->nparams;
    if (kind == TNI_LAYER_DENSE) {
        size_t w;
        if (tni_mul_overflow(L.in_size, width, &w) || tni_add_overflow(w, width, &L.count) ||
            tni_add_overflow(net->nparams, L.count, &total) ||
            total > SIZE_MAX / (4 * sizeof(double)))
            return tni_fail(net->ctx, TN_E_NOMEM,
                            "tn_net_add_dense: a %zu x %zu layer overflows the parameter count",
                            width, L.in_size);
    }
    if (net->nlayers == net->cap_layers) {
        size_t cap = net->cap_layers ? 2 * net->cap_layers : 8;
        tni_layer *grown = tni_alloc_or_fail(net->ctx, "tn_net_add_layer", cap, sizeof *grown);
        if (grown == NULL) return TN_E_NOMEM;
        if (net->nlayers) memcpy(grown, net->layers, net->nlayers * sizeof *grown);
        tni_free(net->layers);
        net->layers = grown;
        net->cap_layers = cap;
    }
    net->layers[net->nlayers++] = L;
    net->nparams = total;
    return TN_OK;
}

double tni_net_sigma_w(const tn_net *net)
{
    if (net->sigma_w_set) return net->sigma_w;
    for (size_t l = 0; l < net->nlayers; l++) {
        const tni_layer *L = &net->layers[l];
        if (L->kind == TNI_LAYER_ACTIVATION &&
            (L->act == TN_ACT_RELU || L->act == TN_ACT_LEAKY_RELU))
            return sqrt(2.0);
    }
    return 1.0;
}

void tni_net_resolve_scales(tn_net *net)
{
    const double sw = tni_net_sigma_w(net);
    const int ntk = net->parameterization == TN_PARAM_NTK;
    for (size_t l = 0; l < net->nlayers; l++) {
        tni_layer *L = &net->layers[l];
        L->slope = net->leaky_slope;
        if (L->kind != TNI_LAYER_DENSE) continue;
        L->w_scale = ntk ? sw / sqrt((double)L->in_size) : 1.0;
        L->b_scale = ntk ? net->sigma_b : 1.0;
    }
}

tn_status tni_net_clone(const tn_net *net, tn_net **out)
{
    tn_ctx *ctx = net->ctx;
    tn_net *c = tni_alloc_or_fail(ctx, "tn_net_clone", 1, sizeof *c);
    if (c == NULL) return TN_E_NOMEM;
    *c = *net;
    c->tape = NULL;
    c->layers = NULL;
    c->theta = NULL;
    c->layers = tni_alloc(ctx, net->cap_layers ? net->cap_layers : 1, sizeof(tni_layer));
    if (net->theta) c->theta = tni_alloc(ctx, net->nparams, sizeof(double));
    if (c->layers == NULL || (net->theta && c->theta == NULL)) {
        tni_net_delete(c);
        return tni_fail(ctx, TN_E_NOMEM, "tn_net_clone: out of memory");
    }
    if (net->nlayers) memcpy(c->layers, net->layers, net->nlayers * sizeof(tni_layer));
    if (net->theta) memcpy(c->theta, net->theta, net->nparams * sizeof(double));
    *out = c;
    return TN_OK;
}

void tni_net_delete(tn_net *net)
{
    if (net == NULL) return;
    tni_tape_free(net->tape);
    tni_free(net->theta);
    tni_free(net->layers);
    net->magic = TNI_MAGIC_DEAD;
    tni_free(net);
}

tn_ctx *tni_net_ctx(const tn_net *net)
{
    return net->ctx;
}

const double *tni_net_theta(const tn_net *net)
{
    return net->theta;
}

void tni_net_swap_theta(tn_net *net, double **theta)
{
    double *old = net->theta;
    net->theta = *theta;
    *theta = old;
}

/* The net's own tape, made on first use. */
static tn_status own_tape(tn_net *net)
{
    return net->tape ? TN_OK : tni_tape_create(net->ctx, net, &net->tape);
}

size_t tni_net_chunk_rows(const tn_net *net, size_t order, size_t n)
{
    /* Per row: every layer's blocks, their series, two cotangent buffers. */
    size_t per_row = 2 * tni_net_max_width(net);
    for (size_t l = 0; l < net->nlayers; l++) per_row += 2 * net->layers[l].out_size;
    per_row *= (order + 1) * sizeof(double);
    size_t rows = TNI_CHUNK_BYTES / (per_row ? per_row : 1);
    if (rows < 1) rows = 1;
    return rows < n ? rows : n;
}

/* One pass over n rows in bounded chunks at order 0 (forward into y, or
 * the VJP of cot into grad) or order 1 along tangent (the JVP into jv). */
static tn_status chunked(tn_net *net, const double *x, size_t n, const double *tangent,
                         double *y, double *jv, const double *cot, double *grad)
{
    tn_status st = own_tape(net);
    if (st != TN_OK) return st;
    const size_t order = tangent ? 1 : 0;
    const size_t d = net->input_size, O = tni_net_output_dim(net);
    const size_t rows = tni_net_chunk_rows(net, order, n);
    for (size_t i = 0; i < n; i += rows) {
        const size_t b = n - i < rows ? n - i : rows;
        st = tni_engine_forward(net, net->tape, net->theta, tangent, order, x + i * d, b, 0);
        if (st == TN_OK && grad)
            st = tni_engine_reverse(net, net->tape, net->theta, NULL, cot + i * O, grad, i > 0);
        if (st != TN_OK) return st;
        if (y) tni_engine_output_sum(net->tape, 0, y + i * O);
        if (jv) {
            /* The order-1 coefficient; deg is 1 whenever the net has parameters. */
            size_t deg;
            const double *z = tni_engine_output(net->tape, &deg);
            if (deg >= 1)
                memcpy(jv + i * O, z + b * O, b * O * sizeof(double));
            else
                memset(jv + i * O, 0, b * O * sizeof(double));
        }
    }
    return TN_OK;
}

tn_status tni_net_forward(tn_net *net, const double *x, size_t n, double *y)
{
    return chunked(net, x, n, NULL, y, NULL, NULL, NULL);
}

tn_status tni_net_jvp(tn_net *net, const double *x, size_t n, const double *tangent, double *out)
{
    return chunked(net, x, n, tangent, NULL, out, NULL, NULL);
}

tn_status tni_net_vjp(tn_net *net, const double *x, size_t n, const double *cot, double *grad)
{
    return chunked(net, x, n, NULL, NULL, NULL, cot, grad);
}
