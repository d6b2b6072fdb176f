/*
 * ntk.h -- the empirical neural tangent kernel (docs/math.md §5).
 *
 * Three methods, one driver.  STRUCTURED and JACOBIAN both start from the
 * per-layer factors of per-example gradients: for a dense layer with input
 * x (the forward's order-0 block) and output cotangent g^c = d f_c / d z,
 * d f_c / d W = w g^c x^T and d f_c / d b = b g^c (w, b the layer's scales).
 * STRUCTURED contracts them as Gram products,
 *   Theta_{ic,jd} = sum_l (w^2 <x_i, x_j> + b^2) <g_i^c, g_j^d>,
 * never forming a Jacobian; JACOBIAN assembles the Jacobian rows and
 * multiplies them.  Both run over tiles of x1 x x2 sized to the memory
 * budget.  VECTOR_PRODUCTS needs no features: one VJP (a gradient) and one
 * JVP over x1 per column (j, d).
 */
#ifndef TNI_NTK_H
#define TNI_NTK_H

#include "../net/net.h"

struct tn_ntk {
    uint32_t magic;
    tn_ctx *ctx;
    tn_net *net;
    int method;                 /* TN_NTK_AUTO, ... */
    int full;                   /* TN_NTK_FULL */
    size_t budget;              /* bytes of workspace */
    tni_tape *tape;
};

/* Per-example gradient factors of `rows` examples: for each layer with
 * parameters m, X[m] (rows x in_m) and G[m] ((rows O) x out_m, row (i, c)).
 * Viewed as rows x (O out_m), G[m] holds all outputs of an example in one
 * row, which turns the traced kernel's sum over outputs into one GEMM. */
typedef struct tni_features {
    size_t rows;
    double **X, **G;
    double *store;
} tni_features;

/* The layers with parameters, in order (the kernel sums over them). */
typedef struct tni_param_layers {
    size_t count;
    const tni_layer **layer;
} tni_param_layers;

/* The method AUTO resolves to for these sizes (documented cost model), and
 * the estimated flops of each (for tests and the benchmark). */
int tni_ntk_choose(const tn_ntk *k, size_t n1, size_t n2, int symmetric, double flops[4]);

tn_status tni_ntk_compute(tn_ntk *k, const double *x1, size_t n1, const double *x2, size_t n2,
                          double *K);

#endif
