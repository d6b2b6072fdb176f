/* activation.c -- elementwise activations in Taylor mode, in place.
 * Forward saves the series c of phi'(z(t)); reverse applies the transposed
 * Toeplitz Jacobian dy_j/dz_i = c_{j-i} (kernel/series.c). */
#include "net.h"
#include "../kernel/series.h"

#include <string.h>

static size_t act_out_degree(const tni_layer *L, size_t din, size_t order)
{
    if (tni_act_is_linear_pieces(L->act) || din == 0) return din;
    return order;
}

static size_t act_series_blocks(const tni_layer *L, size_t order)
{
    return tni_act_is_linear_pieces(L->act) ? 1 : order + 1;
}

static void act_forward(const tni_layer *L, tni_layer_io *io)
{
    const size_t blk = io->batch * L->out_size;
    /* Order 0 of a cached base: the input z_0 comes back from the copy (the
     * block now holds y_0); the cheap elementwise work is simply redone. */
    if (io->flags & TNI_BASE_CACHED)
        memcpy(io->out, io->base, blk * sizeof(double));
    else if (io->flags & TNI_KEEP_BASE)
        memcpy(io->base, io->out, blk * sizeof(double));
    /* Orders din+1..dout of z are zero: the series still produces them. */
    if (io->dout > io->din)
        memset(io->out + (io->din + 1) * blk, 0, (io->dout - io->din) * blk * sizeof(double));
    tni_act_series(L->act, L->slope, io->dout, blk, io->out, blk, io->series, blk, io->scratch);
}

static void act_reverse(const tni_layer *L, tni_layer_io *io)
{
    const size_t blk = io->batch * L->out_size;
    tni_act_series_reverse(tni_act_is_linear_pieces(L->act), io->lo, io->din, io->dout, blk,
                           io->cot_out, blk, io->series, blk);
}

static void act_sweep(const tni_layer *L, tni_layer_io *io, size_t sets)
{
    const size_t blk = io->batch * L->out_size;
    for (size_t s = 0; s < sets; s++)
        tni_act_series_reverse(1, 0, 0, 0, blk, io->cot_out + s * blk, blk, io->series, blk);
}

const tni_layer_ops tni_activation_ops = {
    .in_place = 1,
    .out_degree = act_out_degree,
    .series_blocks = act_series_blocks,
    .forward = act_forward,
    .reverse = act_reverse,
    .sweep = act_sweep,
};
