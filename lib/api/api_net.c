/* api_net.c -- public entry points of the network: checks, then net/. */
#include "check.h"
#include "../net/net.h"
#include "../io/netfile.h"

#include <math.h>
#include <string.h>

/* A valid, initialized net or the reason why not. */
static tn_status ready(const tn_net *net, const char *fn)
{
    TNI_TRY(tni_check_handle(net, TNI_MAGIC_NET));
    if (!net->initialized)
        return tni_fail(net->ctx, TN_E_STATE, "%s: the network is not initialized (call tn_net_init)",
                        fn);
    return TN_OK;
}

static tn_status building(tn_net *net, const char *fn)
{
    TNI_TRY(tni_check_handle(net, TNI_MAGIC_NET));
    if (net->initialized)
        return tni_fail(net->ctx, TN_E_STATE,
                        "%s: the network is already initialized; its layers and settings are fixed",
                        fn);
    return TN_OK;
}

TN_API tn_status tn_net_create(tn_ctx *ctx, const size_t *input_shape, size_t ndim, tn_net **out)
{
    static const char fn[] = "tn_net_create";
    if (out) *out = NULL;
    TNI_TRY(tni_check_handle(ctx, TNI_MAGIC_CTX));
    TNI_TRY(tni_check_ptr(ctx, fn, out, "out"));
    TNI_TRY(tni_check_ptr(ctx, fn, input_shape, "input_shape"));
    if (ndim != 1 && ndim != 3)
        return tni_fail(ctx, TN_E_INVALID_ARG,
                        "%s: ndim is %zu; it must be 1 ({d}) or 3 ({H, W, C})", fn, ndim);
    for (size_t i = 0; i < ndim; i++)
        if (input_shape[i] == 0)
            return tni_fail(ctx, TN_E_INVALID_ARG, "%s: input_shape[%zu] is 0", fn, i);
    return tni_net_new(ctx, input_shape, ndim, out);
}

/* Appends a layer reading the current node. */
static tn_status add_layer(tn_net *net, tni_kind kind, const uint64_t *attrs, size_t nattrs,
                           const char *fn)
{
    TNI_TRY(building(net, fn));
    return tni_net_add(net, kind, &net->current, 1, attrs, nattrs, fn);
}

TN_API tn_status tn_net_add_dense(tn_net *net, size_t width)
{
    const uint64_t attrs[] = {width};
    return add_layer(net, TNI_KIND_DENSE, attrs, 1, "tn_net_add_dense");
}

TN_API tn_status tn_net_add_activation(tn_net *net, tn_activation act)
{
    static const char fn[] = "tn_net_add_activation";
    TNI_TRY(building(net, fn));
    if ((int)act < TN_ACT_IDENTITY || (int)act > TN_ACT_SOFTPLUS)
        return tni_fail(net->ctx, TN_E_INVALID_ARG, "%s: activation %d is not a tn_activation", fn,
                        (int)act);
    const uint64_t attrs[] = {(uint64_t)act};
    return add_layer(net, TNI_KIND_ACTIVATION, attrs, 1, fn);
}

static tn_status check_padding(tn_net *net, const char *fn, tn_padding padding)
{
    if ((int)padding != TN_PAD_VALID && (int)padding != TN_PAD_SAME)
        return tni_fail(net->ctx, TN_E_INVALID_ARG,
                        "%s: padding %d is neither TN_PAD_VALID nor TN_PAD_SAME", fn, (int)padding);
    return TN_OK;
}

TN_API tn_status tn_net_add_conv2d(tn_net *net, size_t channels, size_t kh, size_t kw,
                                   size_t stride, tn_padding padding)
{
    static const char fn[] = "tn_net_add_conv2d";
    TNI_TRY(building(net, fn));
    TNI_TRY(check_padding(net, fn, padding));
    const uint64_t attrs[] = {channels, kh, kw, stride, (uint64_t)padding};
    return add_layer(net, TNI_KIND_CONV2D, attrs, 5, fn);
}

TN_API tn_status tn_net_add_avg_pool2d(tn_net *net, size_t kh, size_t kw, size_t stride,
                                       tn_padding padding)
{
    static const char fn[] = "tn_net_add_avg_pool2d";
    TNI_TRY(building(net, fn));
    TNI_TRY(check_padding(net, fn, padding));
    const uint64_t attrs[] = {kh, kw, stride, (uint64_t)padding};
    return add_layer(net, TNI_KIND_AVG_POOL2D, attrs, 4, fn);
}

TN_API tn_status tn_net_add_global_avg_pool(tn_net *net)
{
    return add_layer(net, TNI_KIND_GLOBAL_AVG_POOL, NULL, 0, "tn_net_add_global_avg_pool");
}

TN_API tn_status tn_net_add_flatten(tn_net *net)
{
    return add_layer(net, TNI_KIND_FLATTEN, NULL, 0, "tn_net_add_flatten");
}

TN_API tn_status tn_net_current(const tn_net *net, size_t *node)
{
    TNI_TRY(tni_check_handle(net, TNI_MAGIC_NET));
    TNI_TRY(tni_check_ptr(net->ctx, "tn_net_current", node, "node"));
    *node = net->current;
    return TN_OK;
}

/* A node of the graph, or the reason why not. */
static tn_status existing(tn_net *net, const char *fn, size_t node)
{
    if (node >= net->nnodes)
        return tni_fail(net->ctx, TN_E_INVALID_ARG,
                        "%s: node %zu does not exist (the network has nodes 0..%zu)", fn, node,
                        net->nnodes - 1);
    return TN_OK;
}

TN_API tn_status tn_net_branch(tn_net *net, size_t node)
{
    static const char fn[] = "tn_net_branch";
    TNI_TRY(building(net, fn));
    TNI_TRY(existing(net, fn, node));
    net->current = node;
    return TN_OK;
}

TN_API tn_status tn_net_add_sum(tn_net *net, size_t node)
{
    static const char fn[] = "tn_net_add_sum";
    TNI_TRY(building(net, fn));
    TNI_TRY(existing(net, fn, node));
    const size_t inputs[] = {net->current, node};
    return tni_net_add(net, TNI_KIND_SUM, inputs, 2, NULL, 0, fn);
}

TN_API tn_status tn_net_output_shape(const tn_net *net, size_t *shape, size_t *ndim)
{
    static const char fn[] = "tn_net_output_shape";
    TNI_TRY(tni_check_handle(net, TNI_MAGIC_NET));
    TNI_TRY(tni_check_ptr(net->ctx, fn, shape, "shape"));
    TNI_TRY(tni_check_ptr(net->ctx, fn, ndim, "ndim"));
    const tni_shape *s = &net->nodes[net->current].shape;
    for (size_t i = 0; i < s->ndim; i++) shape[i] = s->dim[i];
    *ndim = s->ndim;
    return TN_OK;
}

TN_API tn_status tn_net_set(tn_net *net, tn_net_param p, double value)
{
    static const char fn[] = "tn_net_set";
    TNI_TRY(building(net, fn));
    tn_ctx *ctx = net->ctx;
    switch (p) {
    case TN_NET_PARAMETERIZATION:
        if (value != TN_PARAM_NTK && value != TN_PARAM_STANDARD)
            return tni_fail(ctx, TN_E_INVALID_ARG,
                            "%s: parameterization %g is neither TN_PARAM_NTK nor TN_PARAM_STANDARD",
                            fn, value);
        net->parameterization = (int)value;
        return TN_OK;
    case TN_NET_SIGMA_W:
        if (!(isfinite(value) && value > 0))
            return tni_fail(ctx, TN_E_INVALID_ARG, "%s: sigma_w %g must be finite and > 0", fn,
                            value);
        net->sigma_w = value;
        net->sigma_w_set = 1;
        return TN_OK;
    case TN_NET_SIGMA_B:
        if (!(isfinite(value) && value >= 0))
            return tni_fail(ctx, TN_E_INVALID_ARG, "%s: sigma_b %g must be finite and >= 0", fn,
                            value);
        net->sigma_b = value;
        return TN_OK;
    case TN_NET_LEAKY_SLOPE:
        if (!(isfinite(value) && value >= 0))
            return tni_fail(ctx, TN_E_INVALID_ARG, "%s: leaky slope %g must be finite and >= 0",
                            fn, value);
        net->leaky_slope = value;
        return TN_OK;
    }
    return tni_fail(ctx, TN_E_INVALID_ARG, "%s: %d is not a tn_net_param", fn, (int)p);
}

TN_API tn_status tn_net_get(const tn_net *net, tn_net_param p, double *value)
{
    static const char fn[] = "tn_net_get";
    TNI_TRY(tni_check_handle(net, TNI_MAGIC_NET));
    TNI_TRY(tni_check_ptr(net->ctx, fn, value, "value"));
    switch (p) {
    case TN_NET_PARAMETERIZATION: *value = net->parameterization; return TN_OK;
    case TN_NET_SIGMA_W: *value = tni_net_sigma_w(net); return TN_OK;
    case TN_NET_SIGMA_B: *value = net->sigma_b; return TN_OK;
    case TN_NET_LEAKY_SLOPE: *value = net->leaky_slope; return TN_OK;
    }
    return tni_fail(net->ctx, TN_E_INVALID_ARG, "%s: %d is not a tn_net_param", fn, (int)p);
}

TN_API tn_status tn_net_init(tn_net *net, uint64_t seed)
{
    TNI_TRY(tni_check_handle(net, TNI_MAGIC_NET));
    TNI_TRY(tni_net_finish(net, "tn_net_init"));
    return tni_net_init_params(net, seed);
}

TN_API size_t tn_net_num_params(const tn_net *net)
{
    return tni_check_handle(net, TNI_MAGIC_NET) == TN_OK ? net->nparams : 0;
}

TN_API size_t tn_net_input_size(const tn_net *net)
{
    return tni_check_handle(net, TNI_MAGIC_NET) == TN_OK ? tni_net_input_size(net) : 0;
}

TN_API tn_status tn_net_input_shape(const tn_net *net, size_t *shape, size_t *ndim)
{
    static const char fn[] = "tn_net_input_shape";
    TNI_TRY(tni_check_handle(net, TNI_MAGIC_NET));
    TNI_TRY(tni_check_ptr(net->ctx, fn, shape, "shape"));
    TNI_TRY(tni_check_ptr(net->ctx, fn, ndim, "ndim"));
    const tni_shape *s = &net->nodes[0].shape;
    for (size_t i = 0; i < s->ndim; i++) shape[i] = s->dim[i];
    *ndim = s->ndim;
    return TN_OK;
}

TN_API size_t tn_net_output_dim(const tn_net *net)
{
    return tni_check_handle(net, TNI_MAGIC_NET) == TN_OK ? tni_net_output_dim(net) : 0;
}

TN_API tn_status tn_net_get_params(const tn_net *net, double *theta, size_t len)
{
    static const char fn[] = "tn_net_get_params";
    TNI_TRY(ready(net, fn));
    TNI_TRY(tni_check_ptr(net->ctx, fn, theta, "theta"));
    TNI_TRY(tni_check_len(net->ctx, fn, "theta", len, net->nparams));
    memcpy(theta, net->theta, len * sizeof(double));
    return TN_OK;
}

TN_API tn_status tn_net_set_params(tn_net *net, const double *theta, size_t len)
{
    static const char fn[] = "tn_net_set_params";
    TNI_TRY(ready(net, fn));
    TNI_TRY(tni_check_ptr(net->ctx, fn, theta, "theta"));
    TNI_TRY(tni_check_len(net->ctx, fn, "theta", len, net->nparams));
    if (!tni_all_finite(theta, len))
        return tni_fail(net->ctx, TN_E_INVALID_ARG, "%s: theta has a value that is not finite", fn);
    TNI_TRY(tni_net_check_params(net, theta, fn));
    memcpy(net->theta, theta, len * sizeof(double));
    return TN_OK;
}

TN_API tn_status tn_net_clone(const tn_net *net, tn_net **out)
{
    if (out) *out = NULL;
    TNI_TRY(tni_check_handle(net, TNI_MAGIC_NET));
    TNI_TRY(tni_check_ptr(net->ctx, "tn_net_clone", out, "out"));
    return tni_net_clone(net, out);
}

/* The checks forward, jvp and vjp share: ready, x and the output non-NULL,
 * n > 0, and n x input_size indexable. */
static tn_status batch_args(tn_net *net, const char *fn, const double *x, size_t n,
                            const void *outp, const char *outname)
{
    TNI_TRY(ready(net, fn));
    TNI_TRY(tni_check_ptr(net->ctx, fn, x, "x"));
    TNI_TRY(tni_check_ptr(net->ctx, fn, outp, outname));
    TNI_TRY(tni_check_rows(net->ctx, fn, n));
    TNI_TRY(tni_check_matrix(net->ctx, fn, "x", n, net->nodes[0].size));
    TNI_TRY(tni_check_matrix(net->ctx, fn, "the output", n, tni_net_output_dim(net)));
    return tni_check_finite(net->ctx, fn, "x", x, n * net->nodes[0].size);
}

TN_API tn_status tn_net_forward(tn_net *net, const double *x, size_t n, double *y)
{
    static const char fn[] = "tn_net_forward";
    TNI_TRY(batch_args(net, fn, x, n, y, "y"));
    return tni_check_result(net->ctx, fn, tni_net_forward(net, x, n, y), y,
                            n * tni_net_output_dim(net));
}

TN_API tn_status tn_net_jvp(tn_net *net, const double *x, size_t n, const double *tangent,
                            double *out)
{
    static const char fn[] = "tn_net_jvp";
    TNI_TRY(batch_args(net, fn, x, n, out, "out"));
    TNI_TRY(tni_check_ptr(net->ctx, fn, tangent, "tangent"));
    TNI_TRY(tni_check_finite(net->ctx, fn, "tangent", tangent, net->nparams));
    return tni_check_result(net->ctx, fn, tni_net_jvp(net, x, n, tangent, out), out,
                            n * tni_net_output_dim(net));
}

TN_API tn_status tn_net_vjp(tn_net *net, const double *x, size_t n, const double *cotangent,
                            double *grad)
{
    static const char fn[] = "tn_net_vjp";
    TNI_TRY(batch_args(net, fn, x, n, grad, "grad"));
    TNI_TRY(tni_check_ptr(net->ctx, fn, cotangent, "cotangent"));
    TNI_TRY(tni_check_finite(net->ctx, fn, "cotangent", cotangent, n * tni_net_output_dim(net)));
    return tni_check_result(net->ctx, fn, tni_net_vjp(net, x, n, cotangent, grad), grad,
                            net->nparams);
}

TN_API tn_status tn_net_save(const tn_net *net, const char *path)
{
    TNI_TRY(ready(net, "tn_net_save"));
    TNI_TRY(tni_check_ptr(net->ctx, "tn_net_save", path, "path"));
    return tni_netfile_save(net, path);
}

TN_API tn_status tn_net_load(tn_ctx *ctx, const char *path, tn_net **out)
{
    if (out) *out = NULL;
    TNI_TRY(tni_check_handle(ctx, TNI_MAGIC_CTX));
    TNI_TRY(tni_check_ptr(ctx, "tn_net_load", path, "path"));
    TNI_TRY(tni_check_ptr(ctx, "tn_net_load", out, "out"));
    return tni_netfile_load(ctx, path, out);
}

TN_API void tn_net_free(tn_net *net)
{
    if (tni_check_handle(net, TNI_MAGIC_NET) == TN_OK) tni_net_delete(net);
}
