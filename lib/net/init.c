/* init.c -- drawing theta from a seed (portable generator, core/rng.h):
 * one stream over the nodes in order, each kind drawing its own slice. */
#include "net.h"

tn_status tni_net_init_params(tn_net *net, uint64_t seed)
{
    double *theta = tni_alloc_or_fail(net->ctx, "tn_net_init", net->nparams, sizeof(double));
    if (theta == NULL) return TN_E_NOMEM;
    const tni_settings s = tni_net_settings(net);
    tni_rng rng;
    tni_rng_seed(&rng, seed);
    for (size_t i = 1; i < net->nnodes; i++) {
        const tni_node *n = &net->nodes[i];
        const tni_kind_ops *k = tni_kind_of(n);
        if (k->init) k->init(n, &s, &rng, theta + n->offset);
    }
    tni_free(net->theta);
    net->theta = theta;
    net->initialized = 1;
    return TN_OK;
}
