/* init.c -- drawing theta from a seed (portable generator, core/rng.h):
 * one stream over the nodes in order, each kind drawing its own slice. */
#include "net.h"

#include <math.h>

void tni_net_draw_params(const tn_net *net, uint64_t seed, double *theta)
{
    const tni_settings s = tni_net_settings(net);
    tni_rng rng;
    tni_rng_seed(&rng, seed);
    for (size_t i = 1; i < net->nnodes; i++) {
        const tni_node *n = &net->nodes[i];
        const tni_kind_ops *k = tni_kind_of(n);
        if (k->init) k->init(n, &s, &rng, theta + n->offset);
    }
}

tn_status tni_net_init_params(tn_net *net, uint64_t seed)
{
    double *theta = tni_alloc_or_fail(net->ctx, "tn_net_init", net->nparams, sizeof(double));
    if (theta == NULL) return TN_E_NOMEM;
    tni_net_draw_params(net, seed, theta);
    const tn_status st = tni_net_check_params(net, theta, "tn_net_init");
    if (st != TN_OK) {
        tni_free(theta);
        return st;
    }
    tni_free(net->theta);
    net->theta = theta;
    net->initialized = 1;
    return TN_OK;
}

/* The largest |v_i| of n values; NaN if there is one. */
static double max_abs(const double *v, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(v[i])) return v[i];
        if (fabs(v[i]) > m) m = fabs(v[i]);
    }
    return m;
}

tn_status tni_net_check_params(const tn_net *net, const double *theta, const char *who)
{
    for (size_t i = 1; i < net->nnodes; i++) {
        const tni_node *n = &net->nodes[i];
        if (n->count == 0) continue;
        /* Every kind with parameters lays out weights, then one bias per
         * output channel (graph.h), scaled by scale[0] and scale[1]. */
        const size_t nbias = n->shape.dim[n->shape.ndim - 1], nw = n->count - nbias;
        const double mw = max_abs(theta + n->offset, nw) * n->scale[0];
        const double mb = max_abs(theta + n->offset + nw, nbias) * n->scale[1];
        if (!isfinite(mw) || !isfinite(mb))
            return tni_fail(net->ctx, TN_E_INVALID_ARG,
                            "%s: node %zu (%s): a %s is not finite (largest |theta| times its "
                            "scale %g); sigma_w = %g and sigma_b = %g are too large for the %s "
                            "parameterization",
                            who, i, tni_kind_of(n)->name, isfinite(mw) ? "bias" : "weight",
                            isfinite(mw) ? n->scale[1] : n->scale[0], tni_net_sigma_w(net),
                            net->sigma_b, net->parameterization == TN_PARAM_NTK ? "NTK" : "standard");
    }
    return TN_OK;
}
