/* net.c -- the network handle: building the graph, settings, and plain
 * forward / JVP / VJP through the engine in bounded chunks of rows. */
#include "net.h"

#include <math.h>
#include <string.h>

/* Rows per engine call in tn_net_forward / jvp / vjp: enough for GEMMs to run
 * at full speed, few enough that the workspace stays near this many bytes. */
#define TNI_CHUNK_BYTES ((size_t)64 << 20)

static tn_status reserve_nodes(tn_net *net, const char *fn)
{
    if (net->nnodes < net->cap_nodes) return TN_OK;
    const size_t cap = net->cap_nodes ? 2 * net->cap_nodes : 8;
    tni_node *grown = tni_alloc_or_fail(net->ctx, fn, cap, sizeof *grown);
    if (grown == NULL) return TN_E_NOMEM;
    if (net->nnodes) memcpy(grown, net->nodes, net->nnodes * sizeof *grown);
    tni_free(net->nodes);
    net->nodes = grown;
    net->cap_nodes = cap;
    return TN_OK;
}

tn_status tni_net_new(tn_ctx *ctx, const size_t *shape, size_t ndim, tn_net **out)
{
    size_t size = 1;
    for (size_t i = 0; i < ndim; i++)
        if (tni_mul_overflow(size, shape[i], &size) || size > SIZE_MAX / (8 * sizeof(double)))
            return tni_fail(ctx, TN_E_NOMEM, "tn_net_create: the input size overflows");
    tn_net *net = tni_alloc_or_fail(ctx, "tn_net_create", 1, sizeof *net);
    if (net == NULL) return TN_E_NOMEM;
    net->magic = TNI_MAGIC_NET;
    net->ctx = ctx;
    net->parameterization = TN_PARAM_NTK;
    net->sigma_w = 1.0;
    net->sigma_b = 0.1;
    net->leaky_slope = 0.01;
    if (reserve_nodes(net, "tn_net_create") != TN_OK) {
        tni_free(net);
        return TN_E_NOMEM;
    }
    tni_node *in = &net->nodes[0];
    memset(in, 0, sizeof *in);
    in->kind = TNI_KIND_INPUT;
    in->shape.ndim = ndim;
    for (size_t i = 0; i < ndim; i++) in->shape.dim[i] = shape[i];
    in->size = size;
    net->nnodes = 1;
    *out = net;
    return TN_OK;
}

tn_status tni_net_node(const tn_net *net, tni_kind kind, const size_t *inputs, size_t ninputs,
                       const uint64_t *attrs, size_t nattrs, const char *fn, tni_node *n)
{
    const tni_kind_ops *k = tni_kinds[kind];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->ninputs = ninputs;
    const tni_shape *in[TNI_MAX_INPUTS] = {NULL, NULL};
    for (size_t s = 0; s < ninputs; s++) {
        n->input[s] = inputs[s];
        in[s] = &net->nodes[inputs[s]].shape;
    }
    for (size_t a = 0; a < nattrs; a++) n->attr[a] = attrs[a];
    n->offset = net->nparams;
    TNI_TRY(k->infer(n, in, net->ctx, fn));
    /* Sizes stay far from overflow in every product the library forms
     * (blocks of batch x size for each order, parameter-sized arrays). */
    size_t total;
    const size_t limit = SIZE_MAX / (8 * sizeof(double));
    if (tni_add_overflow(net->nparams, n->count, &total) || total > limit)
        return tni_fail(net->ctx, TN_E_NOMEM, "%s: the parameter count overflows", fn);
    n->size = 1;
    for (size_t i = 0; i < n->shape.ndim; i++)
        if (tni_mul_overflow(n->size, n->shape.dim[i], &n->size) || n->size > limit)
            return tni_fail(net->ctx, TN_E_NOMEM, "%s: the layer's output size overflows", fn);
    return TN_OK;
}

tn_status tni_net_push(tn_net *net, const tni_node *n, const char *fn)
{
    TNI_TRY(reserve_nodes(net, fn));
    net->nodes[net->nnodes] = *n;
    net->current = net->nnodes++;
    net->nparams += n->count;
    return TN_OK;
}

tn_status tni_net_add(tn_net *net, tni_kind kind, const size_t *inputs, size_t ninputs,
                      const uint64_t *attrs, size_t nattrs, const char *fn)
{
    tni_node n;
    TNI_TRY(tni_net_node(net, kind, inputs, ninputs, attrs, nattrs, fn, &n));
    return tni_net_push(net, &n, fn);
}

double tni_net_sigma_w(const tn_net *net)
{
    if (net->sigma_w_set) return net->sigma_w;
    for (size_t i = 1; i < net->nnodes; i++)
        if (net->nodes[i].flags & TNI_NODE_RECTIFIER) return sqrt(2.0);
    return 1.0;
}

tni_settings tni_net_settings(const tn_net *net)
{
    tni_settings s;
    s.parameterization = net->parameterization;
    s.sigma_w = tni_net_sigma_w(net);
    s.sigma_b = net->sigma_b;
    s.leaky_slope = net->leaky_slope;
    return s;
}

tn_status tni_net_finish(tn_net *net, const char *fn)
{
    if (net->nnodes == 1) return tni_fail(net->ctx, TN_E_STATE, "%s: the network has no layers", fn);
    if (net->nparams == 0)
        return tni_fail(net->ctx, TN_E_STATE,
                        "%s: the network has no layer with parameters (add a dense or conv2d layer)",
                        fn);
    /* Every node must lead to the output: a branch left dangling is almost
     * always a missing tn_net_add_sum. */
    const size_t out = net->current;
    unsigned char *used = tni_alloc_or_fail(net->ctx, fn, net->nnodes, 1);
    if (used == NULL) return TN_E_NOMEM;
    used[out] = 1;
    for (size_t i = out + 1; i-- > 1;)
        if (used[i])
            for (size_t s = 0; s < net->nodes[i].ninputs; s++) used[net->nodes[i].input[s]] = 1;
    size_t dead = 0;
    while (dead < net->nnodes && used[dead]) dead++;
    tni_free(used);
    if (dead < net->nnodes)
        return tni_fail(net->ctx, TN_E_STATE,
                        "%s: node %zu (%s) does not lead to the output (node %zu, the current "
                        "node); join its branch with tn_net_add_sum or build without it",
                        fn, dead, tni_kinds[net->nodes[dead].kind]->name, out);
    const tni_settings s = tni_net_settings(net);
    for (size_t i = 1; i < net->nnodes; i++) {
        const tni_kind_ops *k = tni_kinds[net->nodes[i].kind];
        if (k->resolve) k->resolve(&net->nodes[i], &s);
    }
    net->graph.nodes = net->nodes;
    net->graph.nnodes = net->nnodes;
    net->graph.output = out;
    net->graph.nparams = net->nparams;
    return TN_OK;
}

size_t tni_net_output_dim(const tn_net *net)
{
    return net->nodes[net->current].size;
}

size_t tni_net_input_size(const tn_net *net)
{
    return net->nodes[0].size;
}

size_t tni_net_num_params(const tn_net *net)
{
    return net->nparams;
}

tn_status tni_net_clone(const tn_net *net, tn_net **out)
{
    tn_ctx *ctx = net->ctx;
    tn_net *c = tni_alloc_or_fail(ctx, "tn_net_clone", 1, sizeof *c);
    if (c == NULL) return TN_E_NOMEM;
    *c = *net;
    c->tape = NULL;
    c->theta = NULL;
    c->nodes = tni_alloc(ctx, net->cap_nodes, sizeof(tni_node));
    if (net->theta) c->theta = tni_alloc(ctx, net->nparams, sizeof(double));
    if (c->nodes == NULL || (net->theta && c->theta == NULL)) {
        tni_net_delete(c);
        return tni_fail(ctx, TN_E_NOMEM, "tn_net_clone: out of memory");
    }
    memcpy(c->nodes, net->nodes, net->nnodes * sizeof(tni_node));
    c->graph.nodes = c->nodes;
    if (net->theta) memcpy(c->theta, net->theta, net->nparams * sizeof(double));
    *out = c;
    return TN_OK;
}

void tni_net_delete(tn_net *net)
{
    if (net == NULL) return;
    tni_tape_free(net->tape);
    tni_free(net->theta);
    tni_free(net->nodes);
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

const tni_graph *tni_net_graph(const tn_net *net)
{
    return &net->graph;
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
    return net->tape ? TN_OK : tni_tape_create(net->ctx, &net->graph, &net->tape);
}

size_t tni_net_chunk_rows(const tn_net *net, size_t order, size_t n)
{
    const size_t per_row = tni_tape_doubles(&net->graph, 1, order, 0, 1) * sizeof(double);
    size_t rows = TNI_CHUNK_BYTES / (per_row ? per_row : 1);
    if (rows < 1) rows = 1;
    return rows < n ? rows : n;
}

/* One pass over n rows in bounded chunks at order 0 (forward into y, or
 * the VJP of cot into grad) or order 1 along tangent (the JVP into jv). */
static tn_status chunked(tn_net *net, const double *x, size_t n, const double *tangent,
                         double *y, double *jv, const double *cot, double *grad)
{
    TNI_TRY(own_tape(net));
    const size_t order = tangent ? 1 : 0;
    const size_t d = net->nodes[0].size, O = tni_net_output_dim(net);
    const size_t rows = tni_net_chunk_rows(net, order, n);
    for (size_t i = 0; i < n; i += rows) {
        const size_t b = n - i < rows ? n - i : rows;
        tn_status st = tni_engine_forward(net->tape, net->theta, tangent, order, x + i * d, b, 0);
        if (st == TN_OK && grad)
            st = tni_engine_reverse(net->tape, net->theta, NULL, cot + i * O, grad, i > 0);
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
