/* activation.c -- elementwise activations in Taylor mode, in place.
 *
 * Attributes: the tn_activation.  Forward saves the series c of phi'(z(t));
 * reverse applies the transposed Toeplitz Jacobian dy_j/dz_i = c_{j-i}
 * (kernel/series.c) and never reads its input, so the engine lets it
 * overwrite its input whenever nothing else reads that. */
#include "graph.h"
#include "../kernel/series.h"

#include <string.h>

enum { ACT };

static tn_activation act_of(const tni_node *n)
{
    return (tn_activation)n->attr[ACT];
}

static tn_status act_infer(tni_node *n, const tni_shape *const *in, tn_ctx *ctx, const char *fn)
{
    if (n->attr[ACT] > TN_ACT_SOFTPLUS)
        return tni_fail(ctx, TN_E_INVALID_ARG, "%s: activation %llu is not a tn_activation", fn,
                        (unsigned long long)n->attr[ACT]);
    n->shape = *in[0];
    if (act_of(n) == TN_ACT_RELU || act_of(n) == TN_ACT_LEAKY_RELU) n->flags |= TNI_NODE_RECTIFIER;
    return TN_OK;
}

static void act_resolve(tni_node *n, const tni_settings *s)
{
    n->scale[0] = s->leaky_slope;
}

static int linear_pieces(const tni_node *n)
{
    return tni_act_is_linear_pieces(act_of(n));
}

static size_t act_out_degree(const tni_node *n, const size_t *din, size_t order)
{
    if (linear_pieces(n) || din[0] == 0) return din[0];
    return order;
}

static size_t act_saved_doubles(const tni_node *n, size_t order)
{
    return n->size * (linear_pieces(n) ? 1 : order + 1);
}

static size_t act_scratch_doubles(const tni_node *n, const tni_shape *const *in, size_t rows,
                                  size_t order)
{
    (void)n;
    (void)in;
    (void)rows;
    return tni_act_scratch_size(order);
}

static void act_forward(const tni_node *n, tni_node_io *io)
{
    const size_t blk = io->batch * n->size;
    /* Orders din+1..dout of z are zero: the series still produces them. */
    if (io->dout > io->din[0])
        memset(io->out + (io->din[0] + 1) * blk, 0,
               (io->dout - io->din[0]) * blk * sizeof(double));
    tni_act_series_threaded(io->threads, act_of(n), n->scale[0], io->dout, blk, io->out, blk,
                            io->saved, blk, io->scratch);
}

static void act_reverse(const tni_node *n, tni_node_io *io)
{
    const size_t blk = io->batch * n->size, stride = io->sets * blk;
    /* In place on the output cotangents (this node's own, dead afterwards),
     * one cotangent set at a time against the saved series. */
    for (size_t s = 0; s < io->sets; s++)
        tni_act_series_reverse_threaded(io->threads, linear_pieces(n), io->lo, io->din[0],
                                        io->dout, blk, io->cot_out + s * blk, stride, io->saved,
                                        blk);
    tni_blocks_copy(io->cot_in[0], io->cot_out, io->lo, io->din[0], stride, io->cot_add[0]);
}

static size_t act_pattern(const tni_node *n, const double *saved, size_t batch, unsigned char *bits)
{
    /* The saved slope c_0 is 1 exactly where z_0 > 0 (series.c). */
    const size_t count = batch * n->size;
    if (bits)
        for (size_t e = 0; e < count; e++) bits[e] = saved[e] == 1.0;
    return count;
}

tn_activation tni_activation_function(const tni_node *n, double *slope)
{
    *slope = n->scale[0];
    return act_of(n);
}

const tni_kind_ops tni_activation_ops = {
    .name = "activation",
    .ninputs = 1,
    .nattrs = 1,
    .alias = TNI_ALIAS_IN_PLACE,
    .infer = act_infer,
    .resolve = act_resolve,
    .out_degree = act_out_degree,
    .saved_doubles = act_saved_doubles,
    .scratch_doubles = act_scratch_doubles,
    .forward = act_forward,
    .reverse = act_reverse,
    .pattern = act_pattern,
};
