/* kinds.c -- the table of layer kinds, and what the kinds share (graph.h). */
#include "graph.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Node 0: the caller's input.  The engine never runs it. */
const tni_kind_ops tni_input_ops = {.name = "input"};

const tni_kind_ops *const tni_kinds[TNI_KIND_COUNT] = {
    [TNI_KIND_INPUT] = &tni_input_ops,
    [TNI_KIND_DENSE] = &tni_dense_ops,
    [TNI_KIND_ACTIVATION] = &tni_activation_ops,
    [TNI_KIND_CONV2D] = &tni_conv2d_ops,
    [TNI_KIND_AVG_POOL2D] = &tni_avg_pool2d_ops,
    [TNI_KIND_GLOBAL_AVG_POOL] = &tni_global_avg_pool_ops,
    [TNI_KIND_FLATTEN] = &tni_flatten_ops,
    [TNI_KIND_SUM] = &tni_sum_ops,
};

size_t tni_shape_size(const tni_shape *s)
{
    size_t n = 1;
    for (size_t i = 0; i < s->ndim; i++) n *= s->dim[i];
    return n;
}

int tni_shape_equal(const tni_shape *a, const tni_shape *b)
{
    if (a->ndim != b->ndim) return 0;
    for (size_t i = 0; i < a->ndim; i++)
        if (a->dim[i] != b->dim[i]) return 0;
    return 1;
}

const char *tni_shape_str(const tni_shape *s, char *buf, size_t cap)
{
    if (s->ndim == 3)
        snprintf(buf, cap, "{%zu, %zu, %zu}", s->dim[0], s->dim[1], s->dim[2]);
    else
        snprintf(buf, cap, "{%zu}", s->dim[0]);
    return buf;
}

/* Output units (one bias each), and weights per unit. */
static size_t units(const tni_node *n)
{
    return n->shape.dim[n->shape.ndim - 1];
}

static size_t fan_in(const tni_node *n)
{
    return (n->count - units(n)) / units(n);
}

void tni_resolve_weights_bias(tni_node *n, const tni_settings *s)
{
    const size_t fan = fan_in(n);
    const int ntk = s->parameterization == TN_PARAM_NTK;
    n->scale[0] = ntk ? s->sigma_w / sqrt((double)fan) : 1.0;
    n->scale[1] = ntk ? s->sigma_b : 1.0;
}

void tni_init_weights_bias(const tni_node *n, const tni_settings *s, tni_rng *rng, double *theta)
{
    const size_t nweights = n->count - units(n);
    const int ntk = s->parameterization == TN_PARAM_NTK;
    const double ws = ntk ? 1.0 : s->sigma_w / sqrt((double)fan_in(n));
    const double bs = ntk ? 1.0 : s->sigma_b;
    for (size_t i = 0; i < nweights; i++) theta[i] = ws * tni_rng_normal(rng);
    for (size_t i = nweights; i < n->count; i++) theta[i] = bs * tni_rng_normal(rng);
}

void tni_blocks_copy(double *dst, const double *src, size_t lo, size_t hi, size_t blk, int add)
{
    if (dst == NULL || dst == src || hi < lo) return;
    const size_t len = (hi + 1 - lo) * blk;
    dst += lo * blk;
    src += lo * blk;
    if (add)
        for (size_t e = 0; e < len; e++) dst[e] += src[e];
    else
        memcpy(dst, src, len * sizeof(double));
}

/* (vectorized across the columns: each column's sum keeps its order) */
TNI_VECTOR_CLONES void tni_column_sums(size_t rows, size_t width, double scale, const double *z,
                                       double *g, int add)
{
    enum { CHUNK = 256 };
    for (size_t c0 = 0; c0 < width; c0 += CHUNK) {
        const size_t m = width - c0 < CHUNK ? width - c0 : CHUNK;
        double acc[CHUNK] = {0};
        for (size_t r = 0; r < rows; r++) {
            const double *zr = z + r * width + c0;
            for (size_t c = 0; c < m; c++) acc[c] += zr[c];
        }
        for (size_t c = 0; c < m; c++) g[c0 + c] = (add ? g[c0 + c] : 0.0) + scale * acc[c];
    }
}

size_t tni_degree_bilinear(const tni_node *n, const size_t *din, size_t order)
{
    (void)n;
    if (order == 0) return 0;
    return din[0] + 1 < order ? din[0] + 1 : order;
}

size_t tni_degree_linear(const tni_node *n, const size_t *din, size_t order)
{
    (void)order;
    size_t d = 0;
    for (size_t s = 0; s < n->ninputs; s++)
        if (din[s] > d) d = din[s];
    return d;
}

size_t tni_shape_pixels(const tni_shape *s)
{
    return s->ndim == 3 ? s->dim[0] * s->dim[1] : 1;
}

void tni_cov_plan_fresh(size_t id, size_t pixels, size_t words, tni_cov_plan *out)
{
    (void)words;
    out->cls = TNI_COV_GAUSS;
    out->pixels = pixels;
    out->reach[id / 64] |= (uint64_t)1 << (id % 64);
}

void tni_cov_plan_as_input(const tni_cov_plan *in, size_t pixels, size_t words, tni_cov_plan *out)
{
    out->cls = in->cls;
    out->pixels = pixels;
    for (size_t w = 0; w < words; w++) out->reach[w] |= in->reach[w];
}
