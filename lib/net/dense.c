/* dense.c -- the fully connected layer (MATH.md §1, §3, §5).
 *
 * Attributes: the width.  Parameters: W (width x in, row-major), then b.  A
 * 3-dimensional input is read flattened (row-major NHWC).
 *
 * With W(t) = W0 + t dW and b(t) = b0 + t db (scaled per parameterization):
 *   z_0 = W0 x_0 + b0,   z_j = W0 x_j + dW x_{j-1} + [j = 1] db.
 * All orders go through two GEMMs on the stacked blocks: W0 [x_0 .. x_din]
 * and dW [x_0 .. x_{dout-1}].  Reverse: the input cotangent
 *   xbar_j = W0^T zbar_j + dW^T zbar_{j+1}
 * and the gradient dW-bar = sum_j zbar_{j+s}^T x_j, one GEMM with inner
 * dimension (number of orders) x batch; s = 1 at order >= 1 (gradient with
 * respect to Delta), s = 0 at order 0 (with respect to theta itself).
 *
 * NTK: d f_c / d W = w g^c x^T and d f_c / d b = b g^c, so the structured
 * kernel of a tile pair is (w^2 <x_i, x_j> + b^2) <g_i^c, g_j^d>: two Gram
 * products, never a Jacobian. */
#include "graph.h"
#include "../kernel/blas.h"

#include <string.h>

enum { WIDTH };

static size_t in_size(const tni_node *n)
{
    return (n->count - n->attr[WIDTH]) / n->attr[WIDTH];
}

static tn_status dense_infer(tni_node *n, const tni_shape *const *in, tn_ctx *ctx, const char *fn)
{
    const size_t width = (size_t)n->attr[WIDTH], nin = tni_shape_size(in[0]);
    if (width == 0) return tni_fail(ctx, TN_E_INVALID_ARG, "%s: width is 0", fn);
    size_t w;
    if (n->attr[WIDTH] > SIZE_MAX || tni_mul_overflow(nin, width, &w) ||
        tni_add_overflow(w, width, &n->count))
        return tni_fail(ctx, TN_E_NOMEM, "%s: a %zu x %zu layer overflows the parameter count", fn,
                        width, nin);
    n->shape.ndim = 1;
    n->shape.dim[0] = width;
    return TN_OK;
}

static void add_bias_rows(size_t rows, size_t width, double scale, const double *b, double *z)
{
    if (scale == 0.0) return;
    for (size_t i = 0; i < rows; i++) {
        double *zi = z + i * width;
        for (size_t c = 0; c < width; c++) zi[c] += scale * b[c];
    }
}

static void dense_forward(const tni_node *n, tni_node_io *io)
{
    const size_t B = io->batch, nin = in_size(n), nout = n->size, blk = B * nout;
    const double *W0 = io->theta0, *b0 = W0 + nout * nin, *x = io->in[0];
    const double ws = n->scale[0], bs = n->scale[1];

    /* A cached base already holds z_0 (or what the next layer made of it).
     * Whenever the base may be cached, z_0 gets a GEMM of its own, so that
     * orders 1..din always come from the same GEMM call, cached or not:
     * with some BLAS kernels a row's result depends on how many rows the
     * call has, and a run that finds the cache cold (resumed from a
     * checkpoint) must match one that finds it warm bit for bit. */
    const size_t j0 = io->flags & TNI_BASE_CACHED ? 1 : 0;
    const int split = j0 == 0 && (io->flags & TNI_KEEP_BASE) && io->din[0] >= 1;
    if (split)
        tni_gemm(io->threads, TNI_NOTRANS, TNI_TRANS, B, nout, nin, ws, x, nin, W0, nin, 0.0,
                 io->out, nout);
    const size_t first = split ? 1 : j0;
    if (io->din[0] >= first)
        tni_gemm(io->threads, TNI_NOTRANS, TNI_TRANS, (io->din[0] + 1 - first) * B, nout, nin, ws,
                 x + first * B * nin, nin, W0, nin, 0.0, io->out + first * blk, nout);
    if (j0 == 0) add_bias_rows(B, nout, bs, b0, io->out);
    if (io->delta == NULL || io->dout == 0) return;

    const double *dW = io->delta, *db = dW + nout * nin;
    if (io->dout > io->din[0]) memset(io->out + io->dout * blk, 0, blk * sizeof(double));
    tni_gemm(io->threads, TNI_NOTRANS, TNI_TRANS, io->dout * B, nout, nin, ws, x, nin, dW, nin, 1.0,
             io->out + blk, nout);
    add_bias_rows(B, nout, bs, db, io->out + blk);
}

static void dense_reverse(const tni_node *n, tni_node_io *io)
{
    const size_t R = io->sets * io->batch, nin = in_size(n), nout = n->size, blk = R * nout;
    const double ws = n->scale[0], bs = n->scale[1];
    const size_t din = io->din[0];
    if (io->grad) {
        const size_t s = io->order > 0 ? 1 : 0;
        const size_t terms = io->order > 0 ? io->dout : 1;   /* j = 0..terms-1, all <= din */
        double *gW = io->grad, *gb = gW + nout * nin;
        const double *zs = io->cot_out + s * blk;
        tni_gemm(io->threads, TNI_TRANS, TNI_NOTRANS, nout, nin, terms * R, ws, zs, nout, io->in[0],
                 nin, io->grad_add ? 1.0 : 0.0, gW, nin);
        tni_column_sums(R, nout, bs, zs, gb, io->grad_add);
    }
    if (io->cot_in[0] == NULL) return;

    /* Input cotangents of orders lo..din (lo = 1 at order >= 1, engine.h). */
    const size_t lo = io->lo, iblk = R * nin;
    double *xbar = io->cot_in[0] + lo * iblk;
    tni_gemm(io->threads, TNI_NOTRANS, TNI_NOTRANS, (din + 1 - lo) * R, nin, nout, ws,
             io->cot_out + lo * blk, nout, io->theta0, nin, io->cot_add[0] ? 1.0 : 0.0, xbar, nin);
    if (io->delta == NULL || io->dout == 0) return;
    const size_t dd = din < io->dout - 1 ? din : io->dout - 1;
    if (dd < lo) return;
    tni_gemm(io->threads, TNI_NOTRANS, TNI_NOTRANS, (dd + 1 - lo) * R, nin, nout, ws,
             io->cot_out + (lo + 1) * blk, nout, io->delta, nin, 1.0, xbar, nin);
}

/* ---- NTK ---------------------------------------------------------------- */

static void dense_gram(const tni_node *n, const tni_shape *in, const tni_ntk_pair *p)
{
    const size_t a = p->a, b = p->b, nin = tni_shape_size(in), nout = n->size, O = p->O;
    const double w2 = n->scale[0] * n->scale[0], b2 = n->scale[1] * n->scale[1];
    double *Gx = p->tmp, *Gg = p->tmp + a * b;
    if (p->diag)
        tni_syrk_lower(p->threads, a, nin, 1.0, p->xa, nin, 0.0, Gx, a);
    else
        tni_gemm(p->threads, TNI_NOTRANS, TNI_TRANS, a, b, nin, 1.0, p->xa, nin, p->xb, nin, 0.0,
                 Gx, b);
    const size_t ldx = p->diag ? a : b;
    if (!p->full) {
        /* All of an example's outputs in one row: the sum over c = d is one GEMM. */
        const size_t wide = O * nout;
        if (p->diag)
            tni_syrk_lower(p->threads, a, wide, 1.0, p->ga, wide, 0.0, Gg, a);
        else
            tni_gemm(p->threads, TNI_NOTRANS, TNI_TRANS, a, b, wide, 1.0, p->ga, wide, p->gb, wide,
                     0.0, Gg, b);
        for (size_t i = 0; i < a; i++) {
            const size_t jend = p->diag ? i + 1 : b;
            double *Ki = p->K + i * p->ldk;
            for (size_t j = 0; j < jend; j++)
                Ki[j] += (w2 * Gx[i * ldx + j] + b2) * Gg[i * ldx + j];
        }
        return;
    }
    const size_t ra = a * O, rb = b * O, ldg = p->diag ? ra : rb;
    if (p->diag)
        tni_syrk_lower(p->threads, ra, nout, 1.0, p->ga, nout, 0.0, Gg, ra);
    else
        tni_gemm(p->threads, TNI_NOTRANS, TNI_TRANS, ra, rb, nout, 1.0, p->ga, nout, p->gb, nout,
                 0.0, Gg, rb);
    for (size_t r = 0; r < ra; r++) {
        const size_t i = r / O, cend = p->diag ? r + 1 : rb;
        double *Kr = p->K + r * p->ldk;
        for (size_t s = 0; s < cend; s++) Kr[s] += (w2 * Gx[i * ldx + s / O] + b2) * Gg[r * ldg + s];
    }
}

static double dense_gram_pair_flops(const tni_node *n, const tni_shape *in, size_t O, int full)
{
    return 2.0 * ((double)tni_shape_size(in) + (double)(full ? O * O : O) * (double)n->size);
}

static size_t dense_gram_tmp_doubles(const tni_node *n, const tni_shape *in, size_t a, size_t b,
                                     size_t O, int full)
{
    (void)n;
    (void)in;
    return a * b * (1 + (full ? O * O : 1));
}

static void dense_jacobian(const tni_node *n, const tni_shape *in, int threads, size_t O,
                           const double *x, const double *g, double *J, size_t ldj, double *tmp)
{
    (void)threads;
    (void)tmp;
    const size_t nin = tni_shape_size(in), nout = n->size;
    for (size_t c = 0; c < O; c++) {
        const double *gc = g + c * nout;
        double *w = J + c * ldj, *b = w + nout * nin;
        for (size_t o = 0; o < nout; o++) {
            const double go = n->scale[0] * gc[o];
            for (size_t q = 0; q < nin; q++) w[o * nin + q] = go * x[q];
            b[o] = n->scale[1] * gc[o];
        }
    }
}

static double dense_jacobian_flops(const tni_node *n, const tni_shape *in, size_t O)
{
    (void)in;
    return 2.0 * (double)O * (double)n->count;
}

/* ---- infinite-width kernels (MATH.md §5, §9) ---------------------------- */

static tn_status dense_plan(const tni_node *n, size_t id, const tni_cov_plan *const *in,
                            size_t words, tni_cov_plan *out, tn_ctx *ctx, const char *fn)
{
    (void)n, (void)in, (void)ctx, (void)fn;
    tni_cov_plan_fresh(id, 1, words, out);
    return TN_OK;
}

/* The fan-in averages the input's channels, and of an image (or a flattened
 * one) its pixels:  S = sigma_w^2 (1/P) sum_p S_in[p, p] + sigma_b^2, and
 * T = S + sigma_w^2 (1/P) sum_p T_in[p, p] (the weights' and bias's own part
 * is S; the rest is the chain rule through the fresh weights). */
static void dense_analytic(const tni_node *n, const tni_settings *s, const tni_cov_io *io)
{
    (void)n;
    const size_t b = io->b, P = io->in[0].pixels, ab = io->a * b;
    const double cw = s->sigma_w * s->sigma_w / (double)P, b2 = s->sigma_b * s->sigma_b;
    const double *Ti = io->in[0].T;
    double *So = io->out.S, *To = io->out.T;
    /* Pixel-major sums (each pixel's a x b matrix is contiguous). */
    for (int t = 0; t < 2; t++) {
        double *o = t ? To : So;
        const double *in = t ? Ti : io->in[0].S;
        if (o == NULL || in == NULL) continue;
        for (size_t i = 0; i < io->a; i++)
            for (size_t j = 0; j < tni_cov_cols(io, i); j++) o[i * b + j] = 0.0;
        for (size_t p = 0; p < P; p++)
            for (size_t i = 0; i < io->a; i++) {
                const double *row = in + p * ab + i * b;
                for (size_t j = 0; j < tni_cov_cols(io, i); j++) o[i * b + j] += row[j];
            }
    }
    for (size_t i = 0; i < io->a; i++)
        for (size_t j = 0; j < tni_cov_cols(io, i); j++) {
            const size_t e = i * b + j;
            So[e] = cw * So[e] + b2;
            if (To) To[e] = Ti ? So[e] + cw * To[e] : So[e];
        }
}

const tni_kind_ops tni_dense_ops = {
    .name = "dense",
    .ninputs = 1,
    .nattrs = 1,
    .alias = TNI_ALIAS_NONE,
    .reverse_reads_input = 1,
    .infer = dense_infer,
    .resolve = tni_resolve_weights_bias,
    .init = tni_init_weights_bias,
    .out_degree = tni_degree_bilinear,
    .forward = dense_forward,
    .reverse = dense_reverse,
    .gram = dense_gram,
    .gram_pair_flops = dense_gram_pair_flops,
    .gram_tmp_doubles = dense_gram_tmp_doubles,
    .jacobian = dense_jacobian,
    .jacobian_flops = dense_jacobian_flops,
    .analytic_input = TNI_COV_IN_ALIGNED,
    .analytic_plan = dense_plan,
    .analytic = dense_analytic,
};
