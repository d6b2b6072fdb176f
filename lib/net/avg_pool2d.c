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

/* ---- infinite-width kernels (MATH.md §9) ---------------------------------
 *
 * Linear, with a window per side: S'[q, q'] = (1 / (kh kw)^2) sum over the
 * two windows' positions of S[p, p'] (padding absent), T alike.  It reads
 * every pixel pair of its input: the reason a network with pooling costs
 * P^2 per example pair.  Pooling is separable: first the columns' windows
 * (P_in x P_out per example pair, in tmp), then the rows'. */

static tn_status pool_plan(const tni_node *n, size_t id, const tni_cov_plan *const *in,
                           size_t words, tni_cov_plan *out, tn_ctx *ctx, const char *fn)
{
    (void)id, (void)ctx, (void)fn;
    tni_cov_plan_as_input(in[0], tni_shape_pixels(&n->shape), words, out);
    return TN_OK;
}

static size_t pool_tmp_doubles(const tni_node *n, const tni_cov_io *g)
{
    if (!g->out.full) return 0;
    return tni_shape_pixels(g->in_shape[0]) * tni_shape_pixels(&n->shape);
}

/* dst[q] (q over the output pixels, stride ds) = sum over q's window of
 * src[p] (p over the input pixels, stride ss). */
static void window_sums(const tni_window *w, const double *src, size_t ss, double *dst, size_t ds)
{
    for (size_t y = 0; y < w->oh; y++) {
        size_t r0, r1;
        span(y, w->kh, w->stride, w->ph, w->h, &r0, &r1);
        for (size_t x = 0; x < w->ow; x++) {
            size_t c0, c1;
            span(x, w->kw, w->stride, w->pw, w->w, &c0, &c1);
            double acc = 0.0;
            for (size_t r = r0; r < r1; r++)
                for (size_t c = c0; c < c1; c++) acc += src[(r * w->w + c) * ss];
            dst[(y * w->ow + x) * ds] = acc;
        }
    }
}

static void pool_analytic(const tni_node *n, const tni_settings *s, const tni_cov_io *io)
{
    (void)s;
    const tni_window w = window_of(n, io->in_shape[0]);
    const size_t a = io->a, b = io->b, Pi = w.h * w.w, Po = w.oh * w.ow;
    const double k2 = ((double)w.kh * (double)w.kw) * ((double)w.kh * (double)w.kw);
    for (int t = 0; t < 2; t++) {
        double *o = t ? io->out.T : io->out.S;
        const double *in = t ? io->in[0].T : io->in[0].S;
        if (o == NULL) continue;
        for (size_t i = 0; i < a; i++)
            for (size_t j = 0; j < tni_cov_cols(io, i); j++) {
                /* The block of the pair (i, j): rows (i, p), columns (j, p'). */
                const size_t ldi = b * Pi;
                const double *blk = in ? in + i * Pi * ldi + j * Pi : NULL;
                if (io->out.full) {
                    const size_t ldo = b * Po;
                    double *ob = o + i * Po * ldo + j * Po;
                    if (blk == NULL) {
                        for (size_t q = 0; q < Po; q++) memset(ob + q * ldo, 0, Po * sizeof(double));
                        continue;
                    }
                    for (size_t p = 0; p < Pi; p++) window_sums(&w, blk + p * ldi, 1, io->tmp + p * Po, 1);
                    for (size_t q2 = 0; q2 < Po; q2++) window_sums(&w, io->tmp + q2, Po, ob + q2, ldo);
                    for (size_t q = 0; q < Po; q++)
                        for (size_t q2 = 0; q2 < Po; q2++) ob[q * ldo + q2] /= k2;
                } else {
                    for (size_t y = 0; y < w.oh; y++) {
                        size_t r0, r1;
                        span(y, w.kh, w.stride, w.ph, w.h, &r0, &r1);
                        for (size_t x = 0; x < w.ow; x++) {
                            size_t c0, c1;
                            span(x, w.kw, w.stride, w.pw, w.w, &c0, &c1);
                            double acc = 0.0;
                            if (blk)
                                for (size_t r = r0; r < r1; r++)
                                    for (size_t c = c0; c < c1; c++) {
                                        const double *row = blk + (r * w.w + c) * ldi;
                                        for (size_t r2 = r0; r2 < r1; r2++)
                                            for (size_t c2 = c0; c2 < c1; c2++)
                                                acc += row[r2 * w.w + c2];
                                    }
                            o[((y * w.ow + x) * a + i) * b + j] = acc / k2;
                        }
                    }
                }
            }
    }
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
    .analytic_input = TNI_COV_IN_FULL,
    .analytic_plan = pool_plan,
    .analytic_tmp_doubles = pool_tmp_doubles,
    .analytic = pool_analytic,
};
