/* flatten.c -- {H, W, C} -> {H W C}: the identity on the row-major NHWC
 * layout (MATH.md §9), so the node is a view of its input: no forward work,
 * and its cotangent is its input's (copied or added only when the input has
 * other readers).  A flat input stays as it is. */
#include "graph.h"

#include <string.h>

static tn_status flatten_infer(tni_node *n, const tni_shape *const *in, tn_ctx *ctx,
                               const char *fn)
{
    (void)ctx;
    (void)fn;
    n->shape.ndim = 1;
    n->shape.dim[0] = tni_shape_size(in[0]);
    return TN_OK;
}

static void flatten_reverse(const tni_node *n, tni_node_io *io)
{
    tni_blocks_copy(io->cot_in[0], io->cot_out, io->lo, io->din[0], io->sets * io->batch * n->size,
                    io->cot_add[0]);
}

/* Infinite width: the state of its input, pixel-aligned entries (the
 * pixels stay: the channels of a flattened image are not alike). */
static tn_status flatten_plan(const tni_node *n, size_t id, const tni_cov_plan *const *in,
                              size_t words, tni_cov_plan *out, tn_ctx *ctx, const char *fn)
{
    (void)n, (void)id, (void)ctx, (void)fn;
    tni_cov_plan_as_input(in[0], in[0]->pixels, words, out);
    return TN_OK;
}

static void flatten_analytic(const tni_node *n, const tni_settings *s, const tni_cov_io *io)
{
    (void)n, (void)s;
    const size_t a = io->a, b = io->b;
    for (int t = 0; t < 2; t++) {
        double *o = t ? io->out.T : io->out.S;
        const double *in = t ? io->in[0].T : io->in[0].S;
        if (o == NULL) continue;
        for (size_t p = 0; p < io->out.pixels; p++)
            for (size_t i = 0; i < a; i++) {
                const size_t e = (p * a + i) * b;
                if (in)
                    memcpy(o + e, in + e, tni_cov_cols(io, i) * sizeof(double));
                else
                    memset(o + e, 0, tni_cov_cols(io, i) * sizeof(double));
            }
    }
}

const tni_kind_ops tni_flatten_ops = {
    .name = "flatten",
    .ninputs = 1,
    .nattrs = 0,
    .alias = TNI_ALIAS_VIEW,
    .infer = flatten_infer,
    .out_degree = tni_degree_linear,
    .reverse = flatten_reverse,
    .analytic_input = TNI_COV_IN_ALIGNED,
    .analytic_plan = flatten_plan,
    .analytic = flatten_analytic,
};
