/* init.c -- drawing theta from a seed (portable generator, core/rng.h). */
#include "net.h"
#include "../core/rng.h"

#include <math.h>
#include <string.h>

tn_status tni_net_init_params(tn_net *net, uint64_t seed)
{
    double *theta = tni_alloc_or_fail(net->ctx, "tn_net_init", net->nparams, sizeof(double));
    if (theta == NULL) return TN_E_NOMEM;
    const double sw = tni_net_sigma_w(net);
    const int ntk = net->parameterization == TN_PARAM_NTK;
    tni_rng rng;
    tni_rng_seed(&rng, seed);
    for (size_t l = 0; l < net->nlayers; l++) {
        const tni_layer *L = &net->layers[l];
        if (L->kind != TNI_LAYER_DENSE) continue;
        const size_t nw = L->in_size * L->out_size;
        /* NTK: omega, beta ~ N(0, 1); standard: W ~ N(0, sw^2 / n_in), b ~ N(0, sb^2). */
        const double ws = ntk ? 1.0 : sw / sqrt((double)L->in_size);
        const double bs = ntk ? 1.0 : net->sigma_b;
        double *w = theta + L->offset, *b = w + nw;
        for (size_t i = 0; i < nw; i++) w[i] = ws * tni_rng_normal(&rng);
        for (size_t i = 0; i < L->out_size; i++) b[i] = bs * tni_rng_normal(&rng);
    }
    tni_free(net->theta);
    net->theta = theta;
    net->initialized = 1;
    tni_net_resolve_scales(net);
    return TN_OK;
}
