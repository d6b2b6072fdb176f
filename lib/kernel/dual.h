/*
 * dual.h -- the Gaussian duals of the activations, in closed form:
 *     E[phi(u) phi(v)],  E[phi'(u) phi'(v)],  (u, v) ~ N(0, [[s11, s12], [s12, s22]]),
 * the map the infinite-width kernels apply at every activation (MATH.md §5,
 * §9).  Identity, ReLU, leaky ReLU and erf have closed forms (here); tanh,
 * sigmoid, GELU and softplus go through Gauss-Hermite quadrature with
 * Mehler's series (quadrature.h).  Pure math on covariances: nothing here
 * knows of networks.
 *
 * Degenerate variances: s11 = 0 means u = 0 exactly, so E[phi(u) g(v)] =
 * phi(0) E[g(v)] and E[phi'(u) g(v)] = phi'(0) E[g(v)] with phi'(0) the
 * value the layers use (relu'(0) = 0, leaky'(0) = slope): the kernel an
 * infinitely wide network built by this library has.  For erf this is also
 * the limit s11 -> 0; for the ReLU family E[phi' phi'] is discontinuous
 * there and the definition above is the one consistent with the network.
 *
 * Accuracy: rounding (~3e-15 relative to sqrt(E[phi(u)^2] E[phi(v)^2])).
 * The ReLU family's E[phi' phi'] = (pi - acos rho) / (2 pi) has infinite
 * slope at rho = 1: an s12 a few ulps below sqrt(s11 s22) moves it by ~1e-8
 * (the conditioning of the kernel, not of the formula); s12 == s11 == s22
 * gives rho = 1 exactly (tni_correlation).
 */
#ifndef TNI_DUAL_H
#define TNI_DUAL_H

#include "../core/core.h"

/* 1 for identity, ReLU, leaky ReLU and erf. */
int tni_dual_has_closed_form(tn_activation act);

/* E[phi(u) phi(v)] in *eff and E[phi'(u) phi'(v)] in *edd for a closed-form
 * activation (slope: leaky ReLU's); s11, s22 >= 0 and |s12| <= sqrt(s11 s22)
 * up to rounding; s11 s22 must not overflow. */
void tni_dual_closed(tn_activation act, double slope, double s11, double s22, double s12,
                     double *eff, double *edd);

/* ReLU's (slope 0) or leaky ReLU's duals along a row of pairs that share
 * their first position (variance v1): the second's variances v2[k inc2],
 * the covariances s12[k] -> eff[k], edd[k] (either may alias s12).  The
 * values of tni_dual_closed; the loop of a convolutional network's kernel,
 * written to vectorize. */
void tni_dual_relu_row(size_t n, double slope, double v1, const double *v2, size_t inc2,
                       const double *s12, double *eff, double *edd);

/* acos as the duals compute it (branch-free, a few ulps of pi; tested
 * against libm's). */
double tni_acos(double c);

#endif
