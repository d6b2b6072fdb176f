/*
 * analytic.h -- infinite-width NNGP and NTK of MLPs under NTK
 * parameterization (docs/math.md §5):
 *   Sigma^1(x, x') = sigma_w^2 <x, x'> / d + sigma_b^2,   Theta^1 = Sigma^1,
 *   Sigma^l = sigma_w^2 E[phi(u) phi(v)] + sigma_b^2,
 *   Theta^l = Sigma^l + sigma_w^2 E[phi'(u) phi'(v)] Theta^(l-1),
 * (u, v) ~ N(0, Sigma^(l-1) restricted to {x, x'}), l = 2..L; NNGP = Sigma^L,
 * NTK = Theta^L.  Closed forms for identity, ReLU, leaky ReLU and erf;
 * Gauss-Hermite quadrature for tanh, sigmoid, GELU and softplus.
 */
#ifndef TNI_ANALYTIC_H
#define TNI_ANALYTIC_H

#include "../core/core.h"

typedef struct tni_mlp_spec {
    size_t d;               /* input size */
    size_t depth;           /* L, the number of dense layers (>= 1) */
    tn_activation act;      /* the activation between consecutive dense layers */
    double sigma_w, sigma_b;
    double slope;           /* leaky ReLU */
    int threads;            /* BLAS threads for the input Gram matrix */
} tni_mlp_spec;

/* nngp and ntk (n1 x n2 row-major; either may be NULL) between the rows of
 * x1 (n1 x d) and x2 (n2 x d; NULL means x1, and then n2 == n1).
 * Errors: TN_E_UNSUPPORTED (activation without a kernel), TN_E_NOMEM,
 * recorded in ctx with the message prefixed "tn_ntk_analytic: ". */
tn_status tni_analytic_mlp(tn_ctx *ctx, const tni_mlp_spec *spec, const double *x1, size_t n1,
                           const double *x2, size_t n2, double *nngp, double *ntk);

#endif
