/* avg_pool2d.c -- average pooling over windows of NHWC images (MATH.md §9).
 *
 * Attributes: kh, kw, stride, padding.  Each output averages its window
 * with padded zeros counted (denominator kh kw, PyTorch's
 * count_include_pad=True).  Linear, so every coefficient block is pooled
 * alike, and reverse spreads each cotangent over its window. */
#include "window.h"

#include <string.h>

enum { KH, KW, STRIDE, PADDING };

static tni_window window_of(const tni_node *n, const tni_shape *in)
{
    return tni_window_of(n, in, KH);
}

static tn_status pool_infer(tni_node *n, const tni_shape *const *in, tn_ctx *ctx, const char *fn)
{
    if (n->attr[KH] > SIZE_MAX || n->attr[KW] > SIZE_MAX || n->attr[STRIDE] > SIZE_MAX)
        return tni_fail(ctx, TN_E_INVALID_ARG, "%s: a size does not fit in size_t", fn);
    tni_window w;
    TNI_TRY(tni_window_make(&w, in[0], (size_t)n->attr[KH], (size_t)n->attr[KW],
                            (size_t)n->attr[STRIDE], n->attr[PADDING], ctx, fn, "pool"));
    n->shape.ndim = 3;
    n->shape.dim[0] = w.oh;
    n->shape.dim[1] = w.ow;
    n->shape.dim[2] = w.c;
    return TN_OK;
}

/* Input index range [*lo, *hi) under window row p (clipped to the image). */
static void span(size_t p, size_t k, size_t s, size_t pad, size_t n, size_t *lo, size_t *hi)
{
    const long a = (long)(p * s) - (long)pad, b = a + (long)k;
    *lo = a < 0 ? 0 : (size_t)a;
    *hi = b > (long)n ? n : (size_t)b;
}

/* out (images of oh x ow x c) = the window means of x; or, reverse, x +=
 * each out value spread over its window. */
static void pool(const tni_window *w, size_t images, double *x, double *out, int reverse)
{
    const size_t C = w->c, in_img = w->h * w->w * C, out_img = w->oh * w->ow * C;
    const double inv = 1.0 / ((double)w->kh * (double)w->kw);
    for (size_t t = 0; t < images; t++) {
        double *xi = x + t * in_img, *oi = out + t * out_img;
        for (size_t p = 0; p < w->oh; p++) {
            size_t r0, r1;
            span(p, w->kh, w->stride, w->ph, w->h, &r0, &r1);
            for (size_t q = 0; q < w->ow; q++) {
                size_t s0, s1;
                span(q, w->kw, w->stride, w->pw, w->w, &s0, &s1);
                double *o = oi + (p * w->ow + q) * C;
                if (!reverse) memset(o, 0, C * sizeof(double));
                for (size_t r = r0; r < r1; r++)
                    for (size_t s = s0; s < s1; s++) {
                        double *v = xi + (r * w->w + s) * C;
                        if (reverse)
                            for (size_t c = 0; c < C; c++) v[c] += inv * o[c];
                        else
                            for (size_t c = 0; c < C; c++) o[c] += v[c];
                    }
                if (!reverse)
                    for (size_t c = 0; c < C; c++) o[c] *= inv;
            }
        }
    }
}

static void pool_forward(const tni_node *n, tni_node_io *io)
{
    const tni_window w = window_of(n, io->in_shape[0]);
    pool(&w, (io->din[0] + 1) * io->batch, (double *)io->in[0], io->out, 0);
}

static void pool_reverse(const tni_node *n, tni_node_io *io)
{
    const tni_window w = window_of(n, io->in_shape[0]);
    const size_t R = io->sets * io->batch, lo = io->lo, img = w.h * w.w * w.c;
    double *xbar = io->cot_in[0] + lo * R * img;
    if (!io->cot_add[0]) memset(xbar, 0, (io->din[0] + 1 - lo) * R * img * sizeof(double));
    pool(&w, (io->din[0] + 1 - lo) * R, xbar, io->cot_out + lo * R * n->size, 1);
}

const tni_kind_ops tni_avg_pool2d_ops = {
    .name = "avg_pool2d",
    .ninputs = 1,
    .nattrs = 4,
    .alias = TNI_ALIAS_NONE,
    .infer = pool_infer,
    .out_degree = tni_degree_linear,
    .forward = pool_forward,
    .reverse = pool_reverse,
};
