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

/* ---- infinite-width kernels (MATH.md §9) ---------------------------------
 * The mean over every pixel pair: S'[x, x'] = (1/P^2) sum_{p, p'} S[p, p']
 * (T alike), so it reads all P^2 of them. */

static tn_status gap_plan(const tni_node *n, size_t id, const tni_cov_plan *const *in,
                          size_t words, tni_cov_plan *out, tn_ctx *ctx, const char *fn)
{
    (void)n, (void)id, (void)ctx, (void)fn;
    tni_cov_plan_as_input(in[0], 1, words, out);
    return TN_OK;
}

static void gap_analytic(const tni_node *n, const tni_settings *s, const tni_cov_io *io)
{
    (void)n, (void)s;
    const size_t b = io->b, P = io->in[0].pixels, ld = b * P;
    const double inv = 1.0 / ((double)P * (double)P);
    for (int t = 0; t < 2; t++) {
        double *o = t ? io->out.T : io->out.S;
        const double *in = t ? io->in[0].T : io->in[0].S;
        if (o == NULL) continue;
        for (size_t i = 0; i < io->a; i++)
            for (size_t j = 0; j < tni_cov_cols(io, i); j++) {
                double acc = 0.0;
                if (in)
                    for (size_t p = 0; p < P; p++) {
                        const double *row = in + (i * P + p) * ld + j * P;
                        for (size_t q = 0; q < P; q++) acc += row[q];
                    }
                o[i * b + j] = acc * inv;
            }
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
    .analytic_input = TNI_COV_IN_FULL,
    .analytic_plan = gap_plan,
    .analytic = gap_analytic,
};
