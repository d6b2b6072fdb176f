/* flatten.c -- {H, W, C} -> {H W C}: the identity on the row-major NHWC
 * layout (MATH.md §9), so the node is a view of its input: no forward work,
 * and its cotangent is its input's (copied or added only when the input has
 * other readers).  A flat input stays as it is. */
#include "graph.h"

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

const tni_kind_ops tni_flatten_ops = {
    .name = "flatten",
    .ninputs = 1,
    .nattrs = 0,
    .alias = TNI_ALIAS_VIEW,
    .infer = flatten_infer,
    .out_degree = tni_degree_linear,
    .reverse = flatten_reverse,
};
