/* nets.c -- contexts and networks from a spec (nets.h). */
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
    spec->image[0] = 28;
    spec->image[1] = 28;
    spec->image[2] = 1;
    ex_arch_defaults(EX_ARCH_MLP, &spec->width, &spec->depth);
    spec->outputs = EX_NUM_CLASSES;
    spec->act = TN_ACT_RELU;
    spec->parameterization = TN_PARAM_STANDARD;
    spec->sigma_w = 0.0;
    spec->sigma_b = -1.0;
    spec->seed = 1;
}

static const char *const arch_names[] = {"mlp", "cnn-thin", "wrn"};

void ex_arch_defaults(ex_arch arch, size_t *width, size_t *depth)
{
    static const size_t widths[] = {512, 16, 8}, depths[] = {2, 4, 1};
    *width = widths[arch];
    *depth = depths[arch];
}

ex_arch ex_arch_from_name(const char *name)
{
    for (int a = 0; a < 3; a++)
        if (strcmp(name, arch_names[a]) == 0) return (ex_arch)a;
    ex_die("unknown architecture '%s' (mlp, cnn-thin, wrn)", name);
    return EX_ARCH_MLP;
}

const char *ex_arch_name(ex_arch arch)
{
    return arch_names[arch];
}

/* One pre-activation residual block of `channels` at `stride`. */
static tn_status wrn_block(tn_net *net, const ex_net_spec *spec, size_t channels, size_t stride)
{
    size_t in, main, shape[3], ndim;
    tn_status st = tn_net_current(net, &in);
    if (st == TN_OK) st = tn_net_output_shape(net, shape, &ndim);
    if (st == TN_OK) st = tn_net_add_activation(net, spec->act);
    if (st == TN_OK) st = tn_net_add_conv2d(net, channels, 3, 3, stride, TN_PAD_SAME);
    if (st == TN_OK) st = tn_net_add_activation(net, spec->act);
    if (st == TN_OK) st = tn_net_add_conv2d(net, channels, 3, 3, 1, TN_PAD_SAME);
    if (st != TN_OK) return st;
    if (stride == 1 && shape[2] == channels) return tn_net_add_sum(net, in);
    st = tn_net_current(net, &main);
    if (st == TN_OK) st = tn_net_branch(net, in);
    if (st == TN_OK) st = tn_net_add_conv2d(net, channels, 1, 1, stride, TN_PAD_SAME);
    if (st == TN_OK) st = tn_net_add_sum(net, main);
    return st;
}

/* The layers of spec's architecture, on a new net. */
static tn_status add_layers(tn_net *net, const ex_net_spec *spec)
{
    tn_status st = TN_OK;
    switch (spec->arch) {
    case EX_ARCH_MLP:
        for (size_t l = 0; l < spec->depth && st == TN_OK; l++) {
            st = tn_net_add_dense(net, spec->width);
            if (st == TN_OK) st = tn_net_add_activation(net, spec->act);
        }
        break;
    case EX_ARCH_CNN_THIN:
        for (size_t l = 0; l < spec->depth && st == TN_OK; l++) {
            st = tn_net_add_conv2d(net, spec->width, 3, 3, 1, TN_PAD_SAME);
            if (st == TN_OK) st = tn_net_add_activation(net, spec->act);
        }
        if (st == TN_OK)
            st = spec->flatten_readout ? tn_net_add_flatten(net) : tn_net_add_global_avg_pool(net);
        break;
    case EX_ARCH_WRN:
        st = tn_net_add_conv2d(net, spec->width, 3, 3, 1, TN_PAD_SAME);
        for (size_t g = 0; g < 3 && st == TN_OK; g++)
            for (size_t b = 0; b < spec->depth && st == TN_OK; b++)
                st = wrn_block(net, spec, spec->width << g, b == 0 && g > 0 ? 2 : 1);
        if (st == TN_OK) st = tn_net_add_activation(net, spec->act);
        if (st == TN_OK) st = tn_net_add_global_avg_pool(net);
        break;
    }
    return st;
}

tn_status ex_build_net(tn_ctx *ctx, const ex_net_spec *spec, tn_net **out)
{
    const int image = spec->arch != EX_ARCH_MLP;
    tn_net *net = NULL;
    *out = NULL;
    tn_status st = tn_net_create(ctx, image ? spec->image : &spec->input, image ? 3 : 1, &net);
    if (st == TN_OK) st = add_layers(net, spec);
    if (st == TN_OK) st = tn_net_add_dense(net, spec->outputs);
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
