/* global_avg_pool.c -- the mean over all pixels: {H, W, C} -> {C}
 * (MATH.md §9).  Linear: every coefficient block alike; reverse spreads
 * each channel's cotangent evenly over the pixels. */
#include "graph.h"

#include <string.h>

static tn_status gap_infer(tni_node *n, const tni_shape *const *in, tn_ctx *ctx, const char *fn)
{
    char buf[80];
    if (in[0]->ndim != 3)
        return tni_fail(ctx, TN_E_SHAPE, "%s: the input is %s, not an image {H, W, C}", fn,
                        tni_shape_str(in[0], buf, sizeof buf));
    n->shape.ndim = 1;
    n->shape.dim[0] = in[0]->dim[2];
    return TN_OK;
}

static void gap_forward(const tni_node *n, tni_node_io *io)
{
    const size_t C = n->size, pixels = tni_shape_size(io->in_shape[0]) / C;
    const double inv = 1.0 / (double)pixels;
    const size_t images = (io->din[0] + 1) * io->batch;
    for (size_t t = 0; t < images; t++) {
        const double *x = io->in[0] + t * pixels * C;
        double *o = io->out + t * C;
        memset(o, 0, C * sizeof(double));
        for (size_t p = 0; p < pixels; p++)
            for (size_t c = 0; c < C; c++) o[c] += x[p * C + c];
        for (size_t c = 0; c < C; c++) o[c] *= inv;
    }
}

static void gap_reverse(const tni_node *n, tni_node_io *io)
{
    const size_t C = n->size, pixels = tni_shape_size(io->in_shape[0]) / C;
    const double inv = 1.0 / (double)pixels;
    const size_t R = io->sets * io->batch, lo = io->lo;
    for (size_t t = lo * R; t < (io->din[0] + 1) * R; t++) {
        const double *g = io->cot_out + t * C;
        double *x = io->cot_in[0] + t * pixels * C;
        for (size_t p = 0; p < pixels; p++)
            for (size_t c = 0; c < C; c++)
                x[p * C + c] = (io->cot_add[0] ? x[p * C + c] : 0.0) + inv * g[c];
    }
}

const tni_kind_ops tni_global_avg_pool_ops = {
    .name = "global_avg_pool",
    .ninputs = 1,
    .nattrs = 0,
    .alias = TNI_ALIAS_NONE,
    .infer = gap_infer,
    .out_degree = tni_degree_linear,
    .forward = gap_forward,
    .reverse = gap_reverse,
};
