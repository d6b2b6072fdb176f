/* sum.c -- the sum of two nodes of the same shape: where residual branches
 * join (MATH.md §9).  Linear: z_j = a_j + b_j for every order, a block that
 * is identically zero in one input (its degree is lower) taken from the
 * other.  It writes over its first input when nothing else reads that, and
 * in reverse both inputs receive the output's cotangent. */
#include "graph.h"

#include <string.h>

static tn_status sum_infer(tni_node *n, const tni_shape *const *in, tn_ctx *ctx, const char *fn)
{
    char a[80], b[80];
    if (!tni_shape_equal(in[0], in[1]))
        return tni_fail(ctx, TN_E_SHAPE, "%s: cannot add %s and %s: the shapes differ", fn,
                        tni_shape_str(in[0], a, sizeof a), tni_shape_str(in[1], b, sizeof b));
    n->shape = *in[0];
    return TN_OK;
}

static void sum_forward(const tni_node *n, tni_node_io *io)
{
    /* out holds input 0's blocks 0..din[0] (the engine put them there). */
    const size_t blk = io->batch * n->size, d0 = io->din[0], d1 = io->din[1];
    const double *b = io->in[1];
    for (size_t j = 0; j <= d1; j++) {
        double *o = io->out + j * blk;
        const double *bj = b + j * blk;
        if (j <= d0)
            for (size_t e = 0; e < blk; e++) o[e] += bj[e];
        else
            memcpy(o, bj, blk * sizeof(double));
    }
}

static void sum_reverse(const tni_node *n, tni_node_io *io)
{
    const size_t blk = io->sets * io->batch * n->size;
    for (size_t s = 0; s < 2; s++)
        tni_blocks_copy(io->cot_in[s], io->cot_out, io->lo, io->din[s], blk, io->cot_add[s]);
}

/* ---- infinite-width kernels (MATH.md §9) ---------------------------------
 *
 * The kernels add when the branches are uncorrelated: when one of them is a
 * centered Gaussian field built from layers with parameters that the other
 * does not reach (their fresh, zero-mean weights make every cross moment
 * vanish in the limit), as in every residual block.  Otherwise the cross
 * moments do not vanish and the sum is refused: a node added to itself or to
 * a branch without parameters after their common node (MATH.md §9), but
 * also two branches that both end in an activation after their layers with
 * parameters (E[relu(u) relu(v)] = E[relu(u)] E[relu(v)] > 0 for independent
 * u, v).  The sum of two Gaussian fields is one; with anything else it is not. */

static tn_status sum_plan(const tni_node *n, size_t id, const tni_cov_plan *const *in,
                          size_t words, tni_cov_plan *out, tn_ctx *ctx, const char *fn)
{
    const tni_cov_plan *x = in[0], *y = in[1];
    if (x->cls == TNI_COV_DET && y->cls == TNI_COV_DET) {
        tni_cov_plan_as_input(x, x->pixels, words, out);
        return TN_OK;
    }
    for (size_t w = 0; w < words; w++)
        if (x->reach[w] & y->reach[w]) {
            size_t shared = w * 64;
            while (!((x->reach[w] & y->reach[w]) >> (shared % 64) & 1)) shared++;
            return tni_fail(ctx, TN_E_UNSUPPORTED,
                            "%s: node %zu (sum) adds two branches that both come from node %zu "
                            "with no layer with parameters after it on either branch: they are "
                            "correlated, and the infinite-width kernel of their sum is not the "
                            "sum of theirs (MATH.md §9)",
                            fn, id, shared);
        }
    if (x->cls != TNI_COV_GAUSS && y->cls != TNI_COV_GAUSS)
        return tni_fail(ctx, TN_E_UNSUPPORTED,
                        "%s: node %zu (sum) adds nodes %zu and %zu, neither of which ends in a "
                        "layer with parameters (or a linear map of one): their cross moment does "
                        "not vanish in the infinite-width limit, so the kernel of their sum is not "
                        "the sum of theirs (MATH.md §9)",
                        fn, id, n->input[0], n->input[1]);
    if (x->pixels != y->pixels && x->pixels != 1 && y->pixels != 1)
        return tni_fail(ctx, TN_E_UNSUPPORTED,
                        "%s: node %zu (sum) adds flattened images of different sizes (%zu and %zu "
                        "pixels); the infinite-width kernel does not follow that",
                        fn, id, x->pixels, y->pixels);
    tni_cov_plan_as_input(x, x->pixels > y->pixels ? x->pixels : y->pixels, words, out);
    tni_cov_plan_as_input(y, out->pixels, words, out);
    out->cls = x->cls == TNI_COV_GAUSS && y->cls == TNI_COV_GAUSS ? TNI_COV_GAUSS : TNI_COV_MOMENT;
    return TN_OK;
}

static void sum_analytic(const tni_node *n, const tni_settings *s, const tni_cov_io *io)
{
    (void)n, (void)s;
    const size_t a = io->a, b = io->b, P = io->out.pixels;
    for (int t = 0; t < 2; t++) {
        double *o = t ? io->out.T : io->out.S;
        if (o == NULL) continue;
        const double *x = t ? io->in[0].T : io->in[0].S, *y = t ? io->in[1].T : io->in[1].S;
        if (io->out.full) {
            /* Both inputs are images of the same shape: the same layout. */
            const size_t ld = b * P;
            for (size_t r = 0; r < a * P; r++) {
                const size_t len = tni_cov_cols(io, r / P) * P;
                for (size_t e = 0; e < len; e++)
                    o[r * ld + e] = (x ? x[r * ld + e] : 0.0) + (y ? y[r * ld + e] : 0.0);
            }
            continue;
        }
        /* Aligned; a one-pixel input (a flat layer's alike channels) adds
         * to every pixel of the other. */
        const size_t px = io->in[0].pixels, py = io->in[1].pixels;
        for (size_t p = 0; p < P; p++)
            for (size_t i = 0; i < a; i++)
                for (size_t j = 0; j < tni_cov_cols(io, i); j++) {
                    const size_t ex = ((px == 1 ? 0 : p) * a + i) * b + j;
                    const size_t ey = ((py == 1 ? 0 : p) * a + i) * b + j;
                    o[(p * a + i) * b + j] = (x ? x[ex] : 0.0) + (y ? y[ey] : 0.0);
                }
    }
}

const tni_kind_ops tni_sum_ops = {
    .name = "sum",
    .ninputs = 2,
    .nattrs = 0,
    .alias = TNI_ALIAS_IN_PLACE,
    .infer = sum_infer,
    .out_degree = tni_degree_linear,
    .forward = sum_forward,
    .reverse = sum_reverse,
    .analytic_input = TNI_COV_IN_AS_OUT,
    .analytic_plan = sum_plan,
    .analytic = sum_analytic,
};
