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

TN_API tn_status tn_net_add_dense(tn_net *net, size_t width)
{
    TNI_TRY(building(net, "tn_net_add_dense"));
    if (width == 0) return tni_fail(net->ctx, TN_E_INVALID_ARG, "tn_net_add_dense: width is 0");
    return tni_net_append(net, TNI_LAYER_DENSE, width, TN_ACT_IDENTITY);
}

TN_API tn_status tn_net_add_activation(tn_net *net, tn_activation act)
{
    TNI_TRY(building(net, "tn_net_add_activation"));
    if ((int)act < TN_ACT_IDENTITY || (int)act > TN_ACT_SOFTPLUS)
        return tni_fail(net->ctx, TN_E_INVALID_ARG,
                        "tn_net_add_activation: activation %d is not a tn_activation", (int)act);
    return tni_net_append(net, TNI_LAYER_ACTIVATION, 0, act);
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
    if (net->nlayers == 0)
        return tni_fail(net->ctx, TN_E_STATE, "tn_net_init: the network has no layers");
    if (net->nparams == 0)
        return tni_fail(net->ctx, TN_E_STATE,
                        "tn_net_init: the network has no layer with parameters (add a dense layer)");
    return tni_net_init_params(net, seed);
}

TN_API size_t tn_net_num_params(const tn_net *net)
{
    return tni_check_handle(net, TNI_MAGIC_NET) == TN_OK ? net->nparams : 0;
}

TN_API size_t tn_net_input_size(const tn_net *net)
{
    return tni_check_handle(net, TNI_MAGIC_NET) == TN_OK ? net->input_size : 0;
}

TN_API tn_status tn_net_input_shape(const tn_net *net, size_t *shape, size_t *ndim)
{
    static const char fn[] = "tn_net_input_shape";
    TNI_TRY(tni_check_handle(net, TNI_MAGIC_NET));
    TNI_TRY(tni_check_ptr(net->ctx, fn, shape, "shape"));
    TNI_TRY(tni_check_ptr(net->ctx, fn, ndim, "ndim"));
    for (size_t i = 0; i < net->input_ndim; i++) shape[i] = net->input_shape[i];
    *ndim = net->input_ndim;
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
    TNI_TRY(tni_check_matrix(net->ctx, fn, "x", n, net->input_size));
    return tni_check_matrix(net->ctx, fn, "the output", n, tni_net_output_dim(net));
}

TN_API tn_status tn_net_forward(tn_net *net, const double *x, size_t n, double *y)
{
    TNI_TRY(batch_args(net, "tn_net_forward", x, n, y, "y"));
    return tni_net_forward(net, x, n, y);
}

TN_API tn_status tn_net_jvp(tn_net *net, const double *x, size_t n, const double *tangent,
                            double *out)
{
    TNI_TRY(batch_args(net, "tn_net_jvp", x, n, out, "out"));
    TNI_TRY(tni_check_ptr(net->ctx, "tn_net_jvp", tangent, "tangent"));
    return tni_net_jvp(net, x, n, tangent, out);
}

TN_API tn_status tn_net_vjp(tn_net *net, const double *x, size_t n, const double *cotangent,
                            double *grad)
{
    TNI_TRY(batch_args(net, "tn_net_vjp", x, n, grad, "grad"));
    TNI_TRY(tni_check_ptr(net->ctx, "tn_net_vjp", cotangent, "cotangent"));
    return tni_net_vjp(net, x, n, cotangent, grad);
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
