/*
 * window.h -- the geometry of sliding windows (convolution, average pooling)
 * and the patch matrices that put convolutions on GEMMs (MATH.md §9).
 *
 * VALID: H' = floor((H - kh) / s) + 1.  SAME: H' = ceil(H / s), total
 * padding max((H' - 1) s + kh - H, 0), floor(p / 2) before and the rest
 * after (the TensorFlow / JAX convention).  Padding is zeros.  The same for W.
 *
 * The patch matrix of an image has one row per output pixel (row-major over
 * H' x W') and kh kw C columns ordered (a, b, c), the layout of a kernel's
 * row (OHWI), with zeros where the window leaves the image.
 */
#ifndef TNI_WINDOW_H
#define TNI_WINDOW_H

#include "graph.h"

typedef struct tni_window {
    size_t h, w, c;         /* input */
    size_t kh, kw, stride;
    size_t oh, ow;          /* output */
    size_t ph, pw;          /* padding before */
} tni_window;

/* The window over input shape `in` (which must be {H, W, C}); a clear
 * message through ctx when it cannot be (what: "kernel" or "pool"). */
tn_status tni_window_make(tni_window *win, const tni_shape *in, size_t kh, size_t kw, size_t stride,
                          uint64_t padding, tn_ctx *ctx, const char *fn, const char *what);

/* The window of a built node whose attribute words kh, kw, stride and
 * padding start at attr[first] (its kind checked them when it was built). */
tni_window tni_window_of(const tni_node *n, const tni_shape *in, size_t first);

/* Output pixels per image, and columns of a patch row. */
static inline size_t tni_window_pixels(const tni_window *w)
{
    return w->oh * w->ow;
}
static inline size_t tni_window_cols(const tni_window *w)
{
    return w->kh * w->kw * w->c;
}

/* 1 when an image's patch matrix is the image itself (a 1x1 stride-1
 * window, or a VALID window covering the whole image): no copy is needed. */
int tni_window_is_identity(const tni_window *w);

/* cols ((images x pixels) x cols) = the patch matrices of `images`
 * consecutive images of x, on `threads` threads (kernel/parallel.h; each
 * image is one thread's). */
void tni_im2col(int threads, const tni_window *w, size_t images, const double *x, double *cols);
/* x += the transpose of im2col applied to cols (scatter-add), likewise. */
void tni_col2im_add(int threads, const tni_window *w, size_t images, const double *cols,
                    double *x);

#endif
