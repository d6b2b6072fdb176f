/* window.c -- sliding-window geometry and patch matrices (window.h). */
#include "window.h"
#include "../kernel/parallel.h"

#include <string.h>

static size_t out_size(size_t n, size_t k, size_t s, int same, size_t *pad_before)
{
    if (same) {
        const size_t o = (n + s - 1) / s;
        const size_t span = (o - 1) * s + k;
        *pad_before = span > n ? (span - n) / 2 : 0;
        return o;
    }
    *pad_before = 0;
    return (n - k) / s + 1;
}

tn_status tni_window_make(tni_window *win, const tni_shape *in, size_t kh, size_t kw, size_t stride,
                          uint64_t padding, tn_ctx *ctx, const char *fn, const char *what)
{
    char buf[80];
    if (in->ndim != 3)
        return tni_fail(ctx, TN_E_SHAPE,
                        "%s: the input is %s, not an image {H, W, C} (a %s needs one; it cannot "
                        "follow a dense, flatten or global pooling layer)",
                        fn, tni_shape_str(in, buf, sizeof buf), what);
    if (kh == 0 || kw == 0)
        return tni_fail(ctx, TN_E_INVALID_ARG, "%s: the %s is %zu x %zu; both sides must be >= 1",
                        fn, what, kh, kw);
    if (stride == 0) return tni_fail(ctx, TN_E_INVALID_ARG, "%s: stride is 0", fn);
    if (padding != TN_PAD_VALID && padding != TN_PAD_SAME)
        return tni_fail(ctx, TN_E_INVALID_ARG,
                        "%s: padding %llu is neither TN_PAD_VALID nor TN_PAD_SAME", fn,
                        (unsigned long long)padding);
    const int same = padding == TN_PAD_SAME;
    if (!same && (kh > in->dim[0] || kw > in->dim[1]))
        return tni_fail(ctx, TN_E_SHAPE,
                        "%s: the %s is %zu x %zu, larger than the input %s with VALID padding", fn,
                        what, kh, kw, tni_shape_str(in, buf, sizeof buf));
    size_t k;
    if (tni_mul_overflow(kh, kw, &k) || tni_mul_overflow(k, in->dim[2], &k) ||
        stride > SIZE_MAX / 2 || kh > SIZE_MAX / 4 || kw > SIZE_MAX / 4)
        return tni_fail(ctx, TN_E_INVALID_ARG, "%s: the %s %zu x %zu overflows", fn, what, kh, kw);
    win->h = in->dim[0];
    win->w = in->dim[1];
    win->c = in->dim[2];
    win->kh = kh;
    win->kw = kw;
    win->stride = stride;
    win->oh = out_size(win->h, kh, stride, same, &win->ph);
    win->ow = out_size(win->w, kw, stride, same, &win->pw);
    return TN_OK;
}

tni_window tni_window_of(const tni_node *n, const tni_shape *in, size_t first)
{
    tni_window w;
    const uint64_t *a = n->attr + first;
    tni_window_make(&w, in, (size_t)a[0], (size_t)a[1], (size_t)a[2], a[3], NULL, "", "");
    return w;
}

int tni_window_is_identity(const tni_window *w)
{
    const int pointwise = w->kh == 1 && w->kw == 1 && w->stride == 1;
    const int whole = w->oh == 1 && w->ow == 1 && w->kh == w->h && w->kw == w->w;
    return (pointwise || whole) && w->ph == 0 && w->pw == 0;
}

/* The input row (0..h-1) under window row a of output row p, or -1 in the padding. */
static long src(size_t p, size_t a, size_t s, size_t pad, size_t n)
{
    const long r = (long)(p * s + a) - (long)pad;
    return r >= 0 && r < (long)n ? r : -1;
}

/* The window columns b0 <= b < b1 of output column q that fall inside the
 * image; they are consecutive input pixels starting at *first. */
static void span(const tni_window *w, size_t q, size_t *b0, size_t *b1, size_t *first)
{
    const long s0 = (long)(q * w->stride) - (long)w->pw;
    *b0 = s0 < 0 ? (size_t)(-s0) : 0;
    const long end = s0 + (long)w->kw;
    *b1 = end > (long)w->w ? w->kw - (size_t)(end - (long)w->w) : w->kw;
    if (*b1 < *b0) *b1 = *b0;
    *first = (size_t)(s0 + (long)*b0);
}

static void im2col(const tni_window *w, size_t images, const double *x, double *cols)
{
    const size_t C = w->c, K = tni_window_cols(w), img = w->h * w->w * C, rowlen = w->kw * C;
    for (size_t t = 0; t < images; t++) {
        const double *xi = x + t * img;
        for (size_t p = 0; p < w->oh; p++)
            for (size_t q = 0; q < w->ow; q++) {
                double *row = cols + ((t * w->oh + p) * w->ow + q) * K;
                size_t b0, b1, first;
                span(w, q, &b0, &b1, &first);
                for (size_t a = 0; a < w->kh; a++) {
                    const long r = src(p, a, w->stride, w->ph, w->h);
                    double *dst = row + a * rowlen;
                    if (r < 0 || b1 == b0) {
                        memset(dst, 0, rowlen * sizeof(double));
                        continue;
                    }
                    /* One copy of the window row's pixels inside the image. */
                    if (b0) memset(dst, 0, b0 * C * sizeof(double));
                    memcpy(dst + b0 * C, xi + ((size_t)r * w->w + first) * C,
                           (b1 - b0) * C * sizeof(double));
                    if (b1 < w->kw) memset(dst + b1 * C, 0, (w->kw - b1) * C * sizeof(double));
                }
            }
    }
}

static void col2im_add(const tni_window *w, size_t images, const double *cols, double *x)
{
    const size_t C = w->c, K = tni_window_cols(w), img = w->h * w->w * C, rowlen = w->kw * C;
    for (size_t t = 0; t < images; t++) {
        double *xi = x + t * img;
        for (size_t p = 0; p < w->oh; p++)
            for (size_t q = 0; q < w->ow; q++) {
                const double *row = cols + ((t * w->oh + p) * w->ow + q) * K;
                size_t b0, b1, first;
                span(w, q, &b0, &b1, &first);
                const size_t len = (b1 - b0) * C;
                for (size_t a = 0; a < w->kh; a++) {
                    const long r = src(p, a, w->stride, w->ph, w->h);
                    if (r < 0) continue;
                    double *dst = xi + ((size_t)r * w->w + first) * C;
                    const double *v = row + a * rowlen + b0 * C;
                    for (size_t e = 0; e < len; e++) dst[e] += v[e];
                }
            }
    }
}

/* The images of a patch job, cut into one range per task. */
typedef struct patch_job {
    const tni_window *w;
    size_t images, parts;
    const double *in;
    double *out;
    int scatter;                /* 0: im2col in -> out, 1: col2im out += in */
} patch_job;

static void patch_range(void *arg, size_t task, double *scratch)
{
    (void)scratch;
    const patch_job *j = arg;
    size_t a, b;
    tni_split_range(j->images, j->parts, 1, task, &a, &b);
    const size_t img = j->w->h * j->w->w * j->w->c, rows = tni_window_pixels(j->w) * tni_window_cols(j->w);
    if (b <= a) return;
    if (j->scatter)
        col2im_add(j->w, b - a, j->in + a * rows, j->out + a * img);
    else
        im2col(j->w, b - a, j->in + a * img, j->out + a * rows);
}

static void patches(int threads, const tni_window *w, size_t images, const double *in,
                    double *out, int scatter)
{
    const int t = tni_threads_usable(threads);
    const size_t parts = (size_t)t < images ? (size_t)t : images;
    patch_job j = {w, images, parts ? parts : 1, in, out, scatter};
    tni_parallel(t, j.parts, patch_range, &j, NULL);
}

void tni_im2col(int threads, const tni_window *w, size_t images, const double *x, double *cols)
{
    patches(threads, w, images, x, cols, 0);
}

void tni_col2im_add(int threads, const tni_window *w, size_t images, const double *cols, double *x)
{
    patches(threads, w, images, cols, x, 1);
}
