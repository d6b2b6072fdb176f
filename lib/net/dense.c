/* dense.c -- the fully connected layer in Taylor mode (docs/math.md §3).
 *
 * With W(t) = W0 + t dW and b(t) = b0 + t db (scaled per parameterization):
 *   z_0 = W0 x_0 + b0,   z_j = W0 x_j + dW x_{j-1} + [j = 1] db.
 * All orders go through two GEMMs on the stacked blocks: W0 [x_0 .. x_din]
 * and dW [x_0 .. x_{dout-1}].  Reverse: the input cotangent
 *   xbar_j = W0^T zbar_j + dW^T zbar_{j+1}
 * and the gradient dW-bar = sum_j zbar_{j+s}^T x_j, one GEMM with inner
 * dimension (number of orders) x batch; s = 1 at order >= 1 (gradient with
 * respect to Delta), s = 0 at order 0 (with respect to theta itself). */
#include "net.h"
#include "../kernel/blas.h"

#include <string.h>

static size_t dense_out_degree(const tni_layer *L, size_t din, size_t order)
{
    (void)L;
    if (order == 0) return 0;
    return din + 1 < order ? din + 1 : order;
}

static size_t dense_series_blocks(const tni_layer *L, size_t order)
{
    (void)L;
    (void)order;
    return 0;
}

static void add_bias_rows(size_t rows, size_t width, double scale, const double *b, double *z)
{
    if (scale == 0.0) return;
    for (size_t i = 0; i < rows; i++) {
        double *zi = z + i * width;
        for (size_t c = 0; c < width; c++) zi[c] += scale * b[c];
    }
}

static void dense_forward(const tni_layer *L, tni_layer_io *io)
{
    const size_t B = io->batch, nin = L->in_size, nout = L->out_size, blk = B * nout;
    const double *W0 = io->theta0, *b0 = W0 + nout * nin;

    /* A cached base already holds z_0 (or what the next layer made of it). */
    const size_t j0 = io->flags & TNI_BASE_CACHED ? 1 : 0;
    if (io->din >= j0)
        tni_gemm(io->threads, TNI_NOTRANS, TNI_TRANS, (io->din + 1 - j0) * B, nout, nin,
                 L->w_scale, io->in + j0 * B * nin, nin, W0, nin, 0.0, io->out + j0 * blk, nout);
    if (j0 == 0) add_bias_rows(B, nout, L->b_scale, b0, io->out);
    if (io->delta == NULL || io->dout == 0) return;

    const double *dW = io->delta, *db = dW + nout * nin;
    if (io->dout > io->din) memset(io->out + io->dout * blk, 0, blk * sizeof(double));
    tni_gemm(io->threads, TNI_NOTRANS, TNI_TRANS, io->dout * B, nout, nin, L->w_scale,
             io->in, nin, dW, nin, 1.0, io->out + blk, nout);
    add_bias_rows(B, nout, L->b_scale, db, io->out + blk);
}

static void dense_reverse(const tni_layer *L, tni_layer_io *io)
{
    const size_t B = io->batch, nin = L->in_size, nout = L->out_size, blk = B * nout;
    const size_t s = io->order > 0 ? 1 : 0;
    const size_t terms = io->order > 0 ? io->dout : 1;   /* j = 0..terms-1, all <= din */
    double *gW = io->grad, *gb = gW + nout * nin;
    const double *zs = io->cot_out + s * blk;

    tni_gemm(io->threads, TNI_TRANS, TNI_NOTRANS, nout, nin, terms * B, L->w_scale,
             zs, nout, io->in, nin, io->grad_beta, gW, nin);
    for (size_t c = 0; c < nout; c++) {
        double acc = 0.0;
        for (size_t i = 0; i < B; i++) acc += zs[i * nout + c];
        gb[c] = (io->grad_beta != 0.0 ? gb[c] : 0.0) + L->b_scale * acc;
    }
    if (io->cot_in == NULL || io->din < io->lo) return;

    /* Input cotangents of orders lo..din (lo = 1 at order >= 1, see net.h). */
    const size_t lo = io->lo, iblk = B * nin;
    tni_gemm(io->threads, TNI_NOTRANS, TNI_NOTRANS, (io->din + 1 - lo) * B, nin, nout,
             L->w_scale, io->cot_out + lo * blk, nout, io->theta0, nin, 0.0,
             io->cot_in + lo * iblk, nin);
    if (io->delta == NULL || io->dout == 0) return;
    const size_t dd = io->din < io->dout - 1 ? io->din : io->dout - 1;
    if (dd < lo) return;
    tni_gemm(io->threads, TNI_NOTRANS, TNI_NOTRANS, (dd + 1 - lo) * B, nin, nout, L->w_scale,
             io->cot_out + (lo + 1) * blk, nout, io->delta, nin, 1.0, io->cot_in + lo * iblk, nin);
}

static void dense_sweep(const tni_layer *L, tni_layer_io *io, size_t sets)
{
    tni_gemm(io->threads, TNI_NOTRANS, TNI_NOTRANS, sets * io->batch, L->in_size, L->out_size,
             L->w_scale, io->cot_out, L->out_size, io->theta0, L->in_size, 0.0, io->cot_in,
             L->in_size);
}

const tni_layer_ops tni_dense_ops = {
    .in_place = 0,
    .out_degree = dense_out_degree,
    .series_blocks = dense_series_blocks,
    .forward = dense_forward,
    .reverse = dense_reverse,
    .sweep = dense_sweep,
};
