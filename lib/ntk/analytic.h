/*
 * analytic.h -- infinite-width NNGP and NTK of MLPs under NTK
 * parameterization (docs/math.md §5):
 *   Sigma^1(x, x') = sigma_w^2 <x, x'> / d + sigma_b^2,   Theta^1 = Sigma^1,
 *   Sigma^l = sigma_w^2 E[phi(u) phi(v)] + sigma_b^2,
 *   Theta^l = Sigma^l + sigma_w^2 E[phi'(u) phi'(v)] Theta^(l-1),
 * (u, v) ~ N(0, Sigma^(l-1) restricted to {x, x'}), l = 2..L; NNGP = Sigma^L,
 * NTK = Theta^L.  Closed forms for identity, ReLU, leaky ReLU and erf;
 * Gauss-Hermite quadrature with Mehler's series for tanh, sigmoid, GELU and
 * softplus (ntk/quadrature.h).
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
    int threads;            /* BLAS threads for the input Gram matrix (< 1: 1) */
} tni_mlp_spec;

/* nngp and ntk (n1 x n2 row-major; either may be NULL, both NULL does
 * nothing) between the rows of x1 (n1 x d) and x2 (n2 x d; NULL means x1,
 * n2 is then ignored and the symmetry is used: half the pairs, the
 * diagonal from the self-variance recursion, the result exactly symmetric).
 * Accuracy (docs/ntk_analytic.md): exact to rounding for identity, ReLU,
 * leaky ReLU and erf; ~1e-13 relative to the diagonal scale for tanh
 * (pre-activation variances up to ~3), sigmoid, GELU and softplus (up to
 * ~30), degrading beyond.  Never NaN.  Workspace beyond the outputs:
 * (depth + 1)(n1 + n2) doubles, an n1 x n2 matrix when nngp is NULL and
 * depth > 1, and for tanh/sigmoid/GELU/softplus ~16 KB per row of x1 and
 * x2 (8 KB without ntk); all of it allocated before any output is written,
 * so a failure leaves the outputs untouched.
 * Errors: TN_E_INVALID_ARG (NULL spec or x1, n1 or n2 0, d 0, depth 0,
 * sigmas not finite or negative, slope not finite, an input not finite, a
 * kernel diagonal above 1e150), TN_E_UNSUPPORTED (act not a
 * tn_activation), TN_E_NOMEM; recorded in ctx with the message prefixed
 * "tn_ntk_analytic: ". */
tn_status tni_analytic_mlp(tn_ctx *ctx, const tni_mlp_spec *spec, const double *x1, size_t n1,
                           const double *x2, size_t n2, double *nngp, double *ntk);

#endif
