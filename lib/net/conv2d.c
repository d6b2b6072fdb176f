/* conv2d.c -- 2-D convolution over NHWC images (MATH.md §9).
 *
 * Attributes: output channels, kh, kw, stride, padding.  Parameters: the
 * kernel (channels x kh x kw x C, OHWI row-major), then the bias; fan-in
 * kh kw C.
 *
 * A convolution is a dense layer applied to every patch of its input: with
 * P(x) the patch matrix (window.h), z = P(x) W^T + b.  Like a dense layer it
 * is bilinear in (weights, input), so its Taylor coefficients are
 *   z_0 = P(x_0) W0^T + b0,   z_j = P(x_j) W0^T + P(x_{j-1}) dW^T + [j = 1] db,
 * and since the patch rows of all k+1 stacked blocks are themselves stacked
 * (block, example, pixel), each of the two terms is one GEMM over every
 * order at once -- run over chunks of images so the patches of only a few
 * images exist at a time.  Reverse mirrors the dense layer: the kernel's
 * gradient is sum_j zbar_{j+s}^T P(x_j), the input cotangent the scatter
 * (col2im) of zbar_j W0 + zbar_{j+1} dW.  Where the patches are the input
 * itself (1x1 stride-1, or a VALID window over the whole image) no patch
 * matrix is formed.
 *
 * NTK: d f_c / d W = w sum_p g^c(p) P(x)(p)^T, so the structured Gram
 * product of two examples is w^2 sum_{p,p'} <g_i^c(p), g_j^d(p')> <P_i(p), P_j(p')>
 * (plus the bias term): quadratic in pixels, usually dearer than the
 * Jacobian (O kernel-sized GEMMs per example); the cost model chooses.
 */
#include "window.h"
#include "../kernel/blas.h"

#include <string.h>

enum { CHANNELS, KH, KW, STRIDE, PADDING };

/* Patch rows formed at a time: about 32 MiB of patches. */
#define PATCH_DOUBLES ((size_t)1 << 22)

static tni_window window_of(const tni_node *n, const tni_shape *in)
{
    return tni_window_of(n, in, KH);
}

static tn_status conv_infer(tni_node *n, const tni_shape *const *in, tn_ctx *ctx, const char *fn)
{
    if (n->attr[CHANNELS] == 0) return tni_fail(ctx, TN_E_INVALID_ARG, "%s: channels is 0", fn);
    if (n->attr[CHANNELS] > SIZE_MAX || n->attr[KH] > SIZE_MAX || n->attr[KW] > SIZE_MAX ||
        n->attr[STRIDE] > SIZE_MAX)
        return tni_fail(ctx, TN_E_INVALID_ARG, "%s: a size does not fit in size_t", fn);
    tni_window w;
    TNI_TRY(tni_window_make(&w, in[0], (size_t)n->attr[KH], (size_t)n->attr[KW],
                            (size_t)n->attr[STRIDE], n->attr[PADDING], ctx, fn, "kernel"));
    const size_t ch = (size_t)n->attr[CHANNELS];
    size_t k;
    if (tni_mul_overflow(ch, tni_window_cols(&w), &k) || tni_add_overflow(k, ch, &n->count) ||
        tni_mul_overflow(tni_window_pixels(&w), ch, &k))
        return tni_fail(ctx, TN_E_NOMEM, "%s: %zu channels of %zu x %zu overflow the parameter count",
                        fn, ch, w.kh, w.kw);
    n->shape.ndim = 3;
    n->shape.dim[0] = w.oh;
    n->shape.dim[1] = w.ow;
    n->shape.dim[2] = ch;
    return TN_OK;
}

/* Images whose patches fit in the chunk (at least one). */
static size_t images_per_chunk(const tni_window *w)
{
    const size_t per = tni_window_pixels(w) * tni_window_cols(w);
    return per >= PATCH_DOUBLES ? 1 : PATCH_DOUBLES / per;
}

static size_t conv_scratch_doubles(const tni_node *n, const tni_shape *const *in, size_t rows,
                                   size_t order)
{
    const tni_window w = window_of(n, in[0]);
    if (tni_window_is_identity(&w)) return 0;
    size_t images = images_per_chunk(&w), total = rows * (order + 1);
    if (images > total) images = total;
    return images * tni_window_pixels(&w) * tni_window_cols(&w);
}

/* out (images x pixels rows of `ch`) = alpha P(x) Wt^T + beta out, for
 * `images` consecutive images of x. */
static void patches_times(const tni_window *w, int threads, size_t images, const double *x,
                          const double *W, size_t ch, double alpha, double beta, double *out,
                          double *cols)
{
    const size_t P = tni_window_pixels(w), K = tni_window_cols(w), img = w->h * w->w * w->c;
    if (tni_window_is_identity(w)) {
        tni_gemm(threads, TNI_NOTRANS, TNI_TRANS, images * P, ch, K, alpha, x, K, W, K, beta, out,
                 ch);
        return;
    }
    const size_t per = images_per_chunk(w);
    for (size_t t = 0; t < images; t += per) {
        const size_t m = images - t < per ? images - t : per;
        tni_im2col(threads, w, m, x + t * img, cols);
        tni_gemm(threads, TNI_NOTRANS, TNI_TRANS, m * P, ch, K, alpha, cols, K, W, K, beta,
                 out + t * P * ch, ch);
    }
}

static void add_bias(size_t rows, size_t ch, double scale, const double *b, double *z)
{
    if (scale == 0.0) return;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < ch; c++) z[r * ch + c] += scale * b[c];
}

static void conv_forward(const tni_node *n, tni_node_io *io)
{
    const tni_window w = window_of(n, io->in_shape[0]);
    const size_t B = io->batch, ch = n->attr[CHANNELS], K = tni_window_cols(&w);
    const size_t rows = B * tni_window_pixels(&w), blk = rows * ch, img = w.h * w.w * w.c;
    const double ws = n->scale[0], bs = n->scale[1];
    const double *W0 = io->theta0, *x = io->in[0];
    /* As dense.c: z_0 on its own whenever the base may be cached, so that
     * orders 1..din come from the same GEMMs (the same chunks of images)
     * whether it is or not. */
    const size_t j0 = io->flags & TNI_BASE_CACHED ? 1 : 0;
    const int split = j0 == 0 && (io->flags & TNI_KEEP_BASE) && io->din[0] >= 1;
    if (split) patches_times(&w, io->threads, B, x, W0, ch, ws, 0.0, io->out, io->scratch);
    const size_t first = split ? 1 : j0;
    if (io->din[0] >= first)
        patches_times(&w, io->threads, (io->din[0] + 1 - first) * B, x + first * B * img, W0, ch,
                      ws, 0.0, io->out + first * blk, io->scratch);
    if (j0 == 0) add_bias(rows, ch, bs, W0 + ch * K, io->out);
    if (io->delta == NULL || io->dout == 0) return;
    if (io->dout > io->din[0]) memset(io->out + io->dout * blk, 0, blk * sizeof(double));
    patches_times(&w, io->threads, io->dout * B, x, io->delta, ch, ws, 1.0, io->out + blk,
                  io->scratch);
    add_bias(rows, ch, bs, io->delta + ch * K, io->out + blk);
}

static void conv_reverse(const tni_node *n, tni_node_io *io)
{
    const tni_window w = window_of(n, io->in_shape[0]);
    const size_t R = io->sets * io->batch, P = tni_window_pixels(&w), K = tni_window_cols(&w);
    const size_t ch = n->attr[CHANNELS], blk = R * P * ch, img = w.h * w.w * w.c;
    const double ws = n->scale[0], bs = n->scale[1];
    const int identity = tni_window_is_identity(&w);
    const size_t per = identity ? SIZE_MAX : images_per_chunk(&w);
    double *cols = io->scratch;
    if (io->grad) {
        /* dW = ws sum_j zbar_{j+s}^T P(x_j): images t of x against t + s R of zbar. */
        const size_t s = io->order > 0 ? 1 : 0, images = (io->order > 0 ? io->dout : 1) * R;
        const double *zs = io->cot_out + s * blk;
        for (size_t t = 0; t < images; t += per) {
            const size_t m = images - t < per ? images - t : per;
            const double *pt = io->in[0] + t * img;
            if (!identity) {
                tni_im2col(io->threads, &w, m, pt, cols);
                pt = cols;
            }
            tni_gemm(io->threads, TNI_TRANS, TNI_NOTRANS, ch, K, m * P, ws, zs + t * P * ch, ch, pt,
                     K, t == 0 && !io->grad_add ? 0.0 : 1.0, io->grad, K);
        }
        tni_column_sums(R * P, ch, bs, zs, io->grad + ch * K, io->grad_add);
    }
    if (io->cot_in[0] == NULL) return;
    /* xbar_j = col2im(ws zbar_j W0 + ws zbar_{j+1} dW), j = lo..din, the dW
     * term for j <= dd only: images [lo R, (din + 1) R), the dW term on the
     * prefix below (dd + 1) R. */
    const size_t lo = io->lo, din = io->din[0];
    size_t dd_end = lo * R;   /* end of the images with a dW term */
    if (io->delta && io->dout > 0) {
        const size_t dd = din < io->dout - 1 ? din : io->dout - 1;
        if (dd >= lo) dd_end = (dd + 1) * R;
    }
    double *xbar = io->cot_in[0];
    if (identity) {
        const size_t t0 = lo * R;
        tni_gemm(io->threads, TNI_NOTRANS, TNI_NOTRANS, (din + 1 - lo) * R * P, K, ch, ws,
                 io->cot_out + t0 * P * ch, ch, io->theta0, K, io->cot_add[0] ? 1.0 : 0.0,
                 xbar + t0 * img, K);
        if (dd_end > t0)
            tni_gemm(io->threads, TNI_NOTRANS, TNI_NOTRANS, (dd_end - t0) * P, K, ch, ws,
                     io->cot_out + (t0 + R) * P * ch, ch, io->delta, K, 1.0, xbar + t0 * img, K);
        return;
    }
    if (!io->cot_add[0]) memset(xbar + lo * R * img, 0, (din + 1 - lo) * R * img * sizeof(double));
    for (size_t t = lo * R; t < (din + 1) * R; t += per) {
        const size_t m = (din + 1) * R - t < per ? (din + 1) * R - t : per;
        tni_gemm(io->threads, TNI_NOTRANS, TNI_NOTRANS, m * P, K, ch, ws, io->cot_out + t * P * ch,
                 ch, io->theta0, K, 0.0, cols, K);
        if (t < dd_end) {
            const size_t md = dd_end - t < m ? dd_end - t : m;
            tni_gemm(io->threads, TNI_NOTRANS, TNI_NOTRANS, md * P, K, ch, ws,
                     io->cot_out + (t + R) * P * ch, ch, io->delta, K, 1.0, cols, K);
        }
        tni_col2im_add(io->threads, &w, m, cols, xbar + t * img);
    }
}

/* ---- NTK ---------------------------------------------------------------- */

/* The patch matrix of one image: x itself, or built in buf. */
static const double *patches_of(const tni_window *w, const double *x, double *buf)
{
    if (tni_window_is_identity(w)) return x;
    tni_im2col(1, w, 1, x, buf);
    return buf;
}

static void conv_jacobian(const tni_node *n, const tni_shape *in, int threads, size_t O,
                          const double *x, const double *g, double *J, size_t ldj, double *tmp)
{
    const tni_window w = window_of(n, in);
    const size_t P = tni_window_pixels(&w), K = tni_window_cols(&w), ch = n->attr[CHANNELS];
    const double *pt = patches_of(&w, x, tmp);
    for (size_t c = 0; c < O; c++) {
        const double *gc = g + c * P * ch;
        double *Jc = J + c * ldj;
        /* d f_c / d W = ws g_c^T P(x): (ch x P) (P x K). */
        tni_gemm(threads, TNI_TRANS, TNI_NOTRANS, ch, K, P, n->scale[0], gc, ch, pt, K, 0.0, Jc, K);
        tni_column_sums(P, ch, n->scale[1], gc, Jc + ch * K, 0);
    }
}

static double conv_jacobian_flops(const tni_node *n, const tni_shape *in, size_t O)
{
    const tni_window w = window_of(n, in);
    return 2.0 * (double)O * (double)n->count * (double)tni_window_pixels(&w);
}

static size_t conv_jacobian_tmp_doubles(const tni_node *n, const tni_shape *in)
{
    const tni_window w = window_of(n, in);
    return tni_window_pixels(&w) * tni_window_cols(&w);
}

/* Per pair of examples: Pm = P_i P_j^T (pixels x pixels), then for each
 * output d U_d = Pm g_j^d, and <g_i^c, U_d> summed over (p, o); the bias
 * term from the pixel sums of the cotangents. */
static void conv_gram(const tni_node *n, const tni_shape *in, const tni_ntk_pair *p)
{
    const tni_window w = window_of(n, in);
    const size_t P = tni_window_pixels(&w), K = tni_window_cols(&w), ch = n->attr[CHANNELS];
    const size_t O = p->O, img = w.h * w.w * w.c, gsz = P * ch;
    const double w2 = n->scale[0] * n->scale[0], b2 = n->scale[1] * n->scale[1];
    double *bufa = p->tmp, *bufb = bufa + P * K, *Pm = bufb + P * K, *U = Pm + P * P;
    double *sa = U + O * gsz, *sb = sa + O * ch;   /* pixel sums of the cotangents */
    for (size_t i = 0; i < p->a; i++) {
        const double *Pi = patches_of(&w, p->xa + i * img, bufa);
        const double *gi = p->ga + i * O * gsz;
        for (size_t c = 0; c < O; c++) tni_column_sums(P, ch, 1.0, gi + c * gsz, sa + c * ch, 0);
        const size_t jend = p->diag ? i + 1 : p->b;
        for (size_t j = 0; j < jend; j++) {
            const double *Pj = p->diag && j == i ? Pi : patches_of(&w, p->xb + j * img, bufb);
            const double *gj = p->gb + j * O * gsz;
            tni_gemm(p->threads, TNI_NOTRANS, TNI_TRANS, P, P, K, 1.0, Pi, K, Pj, K, 0.0, Pm, P);
            for (size_t d = 0; d < O; d++) {
                tni_gemm(p->threads, TNI_NOTRANS, TNI_NOTRANS, P, ch, P, 1.0, Pm, P, gj + d * gsz,
                         ch, 0.0, U + d * gsz, ch);
                tni_column_sums(P, ch, 1.0, gj + d * gsz, sb + d * ch, 0);
            }
            for (size_t c = 0; c < O; c++)
                for (size_t d = p->full ? 0 : c; d < (p->full ? O : c + 1); d++) {
                    double ww = 0.0, bb = 0.0;
                    const double *gc = gi + c * gsz, *ud = U + d * gsz;
                    for (size_t e = 0; e < gsz; e++) ww += gc[e] * ud[e];
                    for (size_t o = 0; o < ch; o++) bb += sa[c * ch + o] * sb[d * ch + o];
                    const double v = w2 * ww + b2 * bb;
                    if (p->full)
                        p->K[(i * O + c) * p->ldk + j * O + d] += v;
                    else
                        p->K[i * p->ldk + j] += v;
                }
        }
    }
}

static double conv_gram_pair_flops(const tni_node *n, const tni_shape *in, size_t O, int full)
{
    const tni_window w = window_of(n, in);
    const double P = (double)tni_window_pixels(&w), K = (double)tni_window_cols(&w);
    const double ch = (double)n->attr[CHANNELS];
    return 2.0 * P * P * K + 2.0 * (double)O * P * P * ch + 2.0 * (double)(full ? O * O : O) * P * ch;
}

static size_t conv_gram_tmp_doubles(const tni_node *n, const tni_shape *in, size_t a, size_t b,
                                    size_t O, int full)
{
    (void)a;
    (void)b;
    (void)full;
    const tni_window w = window_of(n, in);
    const size_t P = tni_window_pixels(&w), K = tni_window_cols(&w), ch = n->attr[CHANNELS];
    return 2 * P * K + P * P + O * P * ch + 2 * O * ch;
}

/* ---- infinite-width kernels (MATH.md §9) ---------------------------------
 *
 * The same weight w[o, delta, c] multiplies x(p s + delta) and x'(p' s +
 * delta), so only equal window offsets pair up:
 *   S[p, p'] = sigma_w^2 / (kh kw) sum_delta S_in[p s + delta, p' s + delta] + sigma_b^2,
 *   T[p, p'] = S[p, p'] + sigma_w^2 / (kh kw) sum_delta T_in[p s + delta, p' s + delta],
 * a padded position contributing 0 (the channel mean is already in S_in).
 * Aligned entries map to aligned entries, so a network without pooling
 * carries P values per example pair; every pixel pair costs P^2. */

static tn_status conv_plan(const tni_node *n, size_t id, const tni_cov_plan *const *in,
                           size_t words, tni_cov_plan *out, tn_ctx *ctx, const char *fn)
{
    (void)in, (void)ctx, (void)fn;
    tni_cov_plan_fresh(id, tni_shape_pixels(&n->shape), words, out);
    return TN_OK;
}

/* The output positions [*lo, *hi) whose window offset d lands inside an
 * input side of n (output side o, stride s, padding before pad). */
static void valid_range(size_t o, size_t s, size_t d, size_t pad, size_t n, size_t *lo, size_t *hi)
{
    /* q s + d - pad in [0, n)  <=>  q >= ceil((pad - d) / s), q s < n + pad - d. */
    *lo = d >= pad ? 0 : (pad - d + s - 1) / s;
    *hi = n + pad > d ? (n + pad - d + s - 1) / s : 0;
    if (*hi > o) *hi = o;
    if (*lo > *hi) *lo = *hi;
}

/* row[x] += src[x s + off] for x in [x0, x1): one window offset's share of
 * a row of output pixels (s = 1, the common case, contiguous). */
static void add_shifted(double *row, const double *src, size_t x0, size_t x1, size_t s,
                        size_t off)
{
    if (s == 1) {
        const double *sr = src + off;
        for (size_t x = x0; x < x1; x++) row[x] += sr[x];
        return;
    }
    for (size_t x = x0; x < x1; x++) row[x] += src[x * s + off];
}

/* Scale, bias, and T's own part S, over n entries. */
static void finish_entries(size_t n, double cw, double b2, double *S, double *T, int tin)
{
    for (size_t e = 0; e < n; e++) {
        S[e] = cw * S[e] + b2;
        if (T) T[e] = tin ? S[e] + cw * T[e] : S[e];
    }
}

static void conv_analytic(const tni_node *n, const tni_settings *s, const tni_cov_io *io)
{
    const tni_window w = window_of(n, io->in_shape[0]);
    const size_t a = io->a, b = io->b, Pi = w.h * w.w, Po = w.oh * w.ow, st = w.stride;
    const double cw = s->sigma_w * s->sigma_w / (double)(w.kh * w.kw);
    const double b2 = s->sigma_b * s->sigma_b;
    const double *Si = io->in[0].S, *Ti = io->in[0].T;
    double *So = io->out.S, *To = io->out.T;
    const int tin = Ti != NULL;
    if (!io->out.full) {
        /* out[q] = sum over the window of in[q s + delta], a x b matrices. */
        for (size_t y = 0; y < w.oh; y++)
            for (size_t x = 0; x < w.ow; x++) {
                const size_t q = y * w.ow + x;
                double *so = So + q * a * b, *to = To ? To + q * a * b : NULL;
                for (size_t i = 0; i < a; i++) {
                    const size_t cols = tni_cov_cols(io, i);
                    memset(so + i * b, 0, cols * sizeof(double));
                    if (to) memset(to + i * b, 0, cols * sizeof(double));
                }
                for (size_t da = 0; da < w.kh; da++) {
                    const long r = (long)(y * st + da) - (long)w.ph;
                    if (r < 0 || r >= (long)w.h) continue;
                    for (size_t db = 0; db < w.kw; db++) {
                        const long c = (long)(x * st + db) - (long)w.pw;
                        if (c < 0 || c >= (long)w.w) continue;
                        const size_t p = (size_t)r * w.w + (size_t)c;
                        for (size_t i = 0; i < a; i++) {
                            const size_t cols = tni_cov_cols(io, i), e = i * b;
                            for (size_t j = 0; j < cols; j++) so[e + j] += Si[p * a * b + e + j];
                            if (to && tin)
                                for (size_t j = 0; j < cols; j++) to[e + j] += Ti[p * a * b + e + j];
                        }
                    }
                }
                for (size_t i = 0; i < a; i++)
                    finish_entries(tni_cov_cols(io, i), cw, b2, so + i * b, to ? to + i * b : NULL,
                                   tin);
            }
        return;
    }
    /* Every pixel pair: row (i, q) of the output, block j, is the sum over
     * the window offsets delta of input row (i, q s + delta), block j,
     * shifted by delta along the columns.  The output row stays in cache
     * while the (at most kh kw) input rows stream by. */
    const size_t ldi = b * Pi, ldo = b * Po;
    for (size_t i = 0; i < a; i++)
        for (size_t y = 0; y < w.oh; y++)
            for (size_t x = 0; x < w.ow; x++) {
                const size_t q = y * w.ow + x, cols = tni_cov_cols(io, i);
                double *so = So + (i * Po + q) * ldo, *to = To ? To + (i * Po + q) * ldo : NULL;
                memset(so, 0, cols * Po * sizeof(double));
                if (to) memset(to, 0, cols * Po * sizeof(double));
                for (size_t da = 0; da < w.kh; da++) {
                    const long r = (long)(y * st + da) - (long)w.ph;
                    if (r < 0 || r >= (long)w.h) continue;
                    size_t y0, y1;
                    valid_range(w.oh, st, da, w.ph, w.h, &y0, &y1);
                    for (size_t db = 0; db < w.kw; db++) {
                        const long c = (long)(x * st + db) - (long)w.pw;
                        if (c < 0 || c >= (long)w.w) continue;
                        size_t x0, x1;
                        valid_range(w.ow, st, db, w.pw, w.w, &x0, &x1);
                        const size_t p = (size_t)r * w.w + (size_t)c;
                        const double *srow = Si + (i * Pi + p) * ldi;
                        const double *trow = tin ? Ti + (i * Pi + p) * ldi : NULL;
                        for (size_t j = 0; j < cols; j++)
                            for (size_t y2 = y0; y2 < y1; y2++) {
                                /* Input row y2 s + da - ph of block j, shifted by db - pw. */
                                const size_t in_at = j * Pi + (y2 * st + da - w.ph) * w.w;
                                const size_t out_at = j * Po + y2 * w.ow;
                                if (db >= w.pw) {
                                    add_shifted(so + out_at, srow + in_at, x0, x1, st, db - w.pw);
                                    if (to && trow)
                                        add_shifted(to + out_at, trow + in_at, x0, x1, st, db - w.pw);
                                } else {
                                    /* x0 s >= pw - db: start the source at x0. */
                                    const size_t lead = x0 * st + db - w.pw;
                                    add_shifted(so + out_at + x0, srow + in_at + lead, 0, x1 - x0,
                                                st, 0);
                                    if (to && trow)
                                        add_shifted(to + out_at + x0, trow + in_at + lead, 0,
                                                    x1 - x0, st, 0);
                                }
                            }
                    }
                }
                finish_entries(cols * Po, cw, b2, so, to, tin);
            }
}

const tni_kind_ops tni_conv2d_ops = {
    .name = "conv2d",
    .ninputs = 1,
    .nattrs = 5,
    .alias = TNI_ALIAS_NONE,
    .reverse_reads_input = 1,
    .infer = conv_infer,
    .resolve = tni_resolve_weights_bias,
    .init = tni_init_weights_bias,
    .out_degree = tni_degree_bilinear,
    .scratch_doubles = conv_scratch_doubles,
    .forward = conv_forward,
    .reverse = conv_reverse,
    .gram = conv_gram,
    .gram_pair_flops = conv_gram_pair_flops,
    .gram_tmp_doubles = conv_gram_tmp_doubles,
    .jacobian = conv_jacobian,
    .jacobian_flops = conv_jacobian_flops,
    .jacobian_tmp_doubles = conv_jacobian_tmp_doubles,
    .analytic_input = TNI_COV_IN_AS_OUT,
    .analytic_plan = conv_plan,
    .analytic = conv_analytic,
};
