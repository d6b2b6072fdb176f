/*
 * analytic.h -- infinite-width NNGP and NTK of every network the library
 * builds, under NTK parameterization (MATH.md §5, §9).
 *
 * The recursion runs over the graph: each node maps the covariance tensors
 * of its inputs to its output's (the analytic ops of the kinds, graph.h);
 * this driver plans which node is Gaussian, which pixel pairs each node
 * must carry and how long each tensor lives, runs the nodes over tiles of
 * example pairs under a memory budget, and reduces the output node to the
 * n1 x n2 kernels (the mean over the output's pixel-aligned entries, which
 * is the traced kernel: the mean over outputs).
 *
 * For an MLP (dense layers with one activation between each pair):
 *   Sigma^1(x, x') = sigma_w^2 <x, x'> / d + sigma_b^2,   Theta^1 = Sigma^1,
 *   Sigma^l = sigma_w^2 E[phi(u) phi(v)] + sigma_b^2,
 *   Theta^l = Sigma^l + sigma_w^2 E[phi'(u) phi'(v)] Theta^(l-1),
 * (u, v) ~ N(0, Sigma^(l-1) restricted to {x, x'}); NNGP = Sigma^L, NTK =
 * Theta^L.  Convolutions, pooling, flatten and sums: MATH.md §9 and the
 * kinds' files.
 *
 * Cost: a network whose nodes all carry pixel-aligned entries only (no
 * pooling: conv, activation, flatten, dense, sum) costs O(P) per example
 * pair and layer, P the pixels; average and global average pooling read
 * every pixel pair, so every node before them carries P^2 per example pair.
 */
#ifndef TNI_ANALYTIC_H
#define TNI_ANALYTIC_H

#include "../net/graph.h"

/* nngp and ntk (n1 x n2 row-major; either may be NULL, both NULL does
 * nothing) between the rows of x1 (n1 x d) and x2 (n2 x d; NULL, or x1
 * itself with n2 = n1, is the symmetric case: half the pairs, the diagonal
 * from each example's own recursion, the result exactly symmetric), for the
 * network g with settings s (sigma_w resolved, sigma_b, the leaky slope).
 * Tiles of example pairs fit in budget bytes of workspace; beyond it:
 * the self-variances of the examples at each activation's input, (n1 + n2)
 * x (its pixels) doubles each.  Progress through ctx (who).
 * Accuracy (docs/ntk_analytic.md): exact to rounding for identity, ReLU,
 * leaky ReLU and erf; ~1e-13 relative to the diagonal scale for tanh
 * (pre-activation variances up to ~3), sigmoid, GELU and softplus (up to
 * ~30), degrading beyond.  Never NaN.
 * Errors, with the message prefixed "<who>: ": TN_E_UNSUPPORTED (a node
 * the recursion cannot follow: the message names it), TN_E_INVALID_ARG (an
 * input not finite, a kernel diagonal above 1e150), TN_E_NOMEM (also: the
 * budget cannot hold one example pair), TN_E_CANCELLED.  Every check and
 * allocation comes before the first write: on failure the outputs are
 * untouched, except when cancelled (then NaN). */
tn_status tni_analytic_graph(tn_ctx *ctx, const char *who, const tni_graph *g,
                             const tni_settings *s, size_t budget, const double *x1, size_t n1,
                             const double *x2, size_t n2, double *nngp, double *ntk);

/* An MLP by its description: d inputs, depth dense layers (>= 1), the
 * activation act between each pair.  The recursion above on that graph,
 * without a budget (one tile); the tests pin the MLP kernels through it. */
typedef struct tni_mlp_spec {
    size_t d;               /* input size */
    size_t depth;           /* L, the number of dense layers (>= 1) */
    tn_activation act;      /* the activation between consecutive dense layers */
    double sigma_w, sigma_b;
    double slope;           /* leaky ReLU */
    int threads;            /* unused: the context's threads are used */
} tni_mlp_spec;

/* Errors as above, and TN_E_INVALID_ARG for a bad spec (NULL spec or x1,
 * n1 or n2 0, d 0, depth 0, sigmas not finite or negative, slope not
 * finite), TN_E_UNSUPPORTED (act not a tn_activation); "tn_ntk_analytic: ". */
tn_status tni_analytic_mlp(tn_ctx *ctx, const tni_mlp_spec *spec, const double *x1, size_t n1,
                           const double *x2, size_t n2, double *nngp, double *ntk);

#endif
