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

const tni_kind_ops tni_sum_ops = {
    .name = "sum",
    .ninputs = 2,
    .nattrs = 0,
    .alias = TNI_ALIAS_IN_PLACE,
    .infer = sum_infer,
    .out_degree = tni_degree_linear,
    .forward = sum_forward,
    .reverse = sum_reverse,
};
