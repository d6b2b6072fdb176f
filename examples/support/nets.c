/* nets.c -- contexts, and networks from a spec (nets.h). */
#include "nets.h"

#include "cli.h"
#include "data.h"

#include <string.h>

tn_ctx *ex_ctx_create(int threads)
{
    tn_ctx *ctx = NULL;
    const tn_status st = tn_ctx_create(&ctx);
    /* No context yet, so no message to read beyond the status. */
    if (st != TN_OK) ex_die("tn_ctx_create: %s", tn_status_string(st));
    EX_CHECK(ctx, tn_ctx_set_threads(ctx, threads));
    return ctx;
}

void ex_net_spec_default(ex_net_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->arch = EX_ARCH_MLP;
    spec->input = 784;
    spec->width = 512;
    spec->hidden_layers = 2;
    spec->outputs = EX_NUM_CLASSES;
    spec->act = TN_ACT_RELU;
    spec->parameterization = TN_PARAM_STANDARD;
    spec->sigma_w = 0.0;
    spec->sigma_b = -1.0;
    spec->seed = 1;
}

/* The layers of an MLP. */
static tn_status add_mlp(tn_net *net, const ex_net_spec *spec)
{
    tn_status st = TN_OK;
    for (size_t l = 0; l < spec->hidden_layers && st == TN_OK; l++) {
        st = tn_net_add_dense(net, spec->width);
        if (st == TN_OK) st = tn_net_add_activation(net, spec->act);
    }
    if (st == TN_OK) st = tn_net_add_dense(net, spec->outputs);
    return st;
}

tn_status ex_build_net(tn_ctx *ctx, const ex_net_spec *spec, tn_net **out)
{
    const size_t shape[1] = {spec->input};
    tn_net *net = NULL;
    *out = NULL;
    tn_status st = tn_net_create(ctx, shape, 1, &net);
    if (st == TN_OK) {
        switch (spec->arch) {
        case EX_ARCH_MLP: st = add_mlp(net, spec); break;
        default: ex_die("ex_build_net: unknown architecture %d", (int)spec->arch);
        }
    }
    if (st == TN_OK) st = tn_net_set(net, TN_NET_PARAMETERIZATION, spec->parameterization);
    if (st == TN_OK && spec->sigma_w > 0) st = tn_net_set(net, TN_NET_SIGMA_W, spec->sigma_w);
    if (st == TN_OK && spec->sigma_b >= 0) st = tn_net_set(net, TN_NET_SIGMA_B, spec->sigma_b);
    if (st == TN_OK) st = tn_net_init(net, spec->seed);
    if (st != TN_OK) {
        tn_net_free(net);
        return st;
    }
    *out = net;
    return TN_OK;
}
