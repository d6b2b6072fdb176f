/* dual.c -- closed-form Gaussian duals of identity, ReLU, leaky ReLU and
 * erf (dual.h).
 *
 * ReLU (the arc-cosine kernel, Cho & Saul 2009), with rho = s12 /
 * sqrt(s11 s22) and t = acos rho:
 *     E[phi phi]   = sqrt(s11 s22) / (2 pi) (sin t + (pi - t) rho),
 *     E[phi' phi'] = (pi - t) / (2 pi).
 * Leaky ReLU with slope a: phi = a x + (1 - a) relu(x), and E[u relu(v)] =
 * s12 / 2 by the symmetry (u, v) -> (-u, -v), so
 *     E[phi phi]   = a s12 + (1 - a)^2 E_relu[phi phi],
 *     E[phi' phi'] = a + (1 - a)^2 (pi - t) / (2 pi).
 * Erf (Williams 1997):
 *     E[phi phi]   = (2 / pi) asin(2 s12 / sqrt((1 + 2 s11)(1 + 2 s22))),
 *     E[phi' phi'] = (4 / pi) ((1 + 2 s11)(1 + 2 s22) - 4 s12^2)^(-1/2).
 */
#include "dual.h"
#include "quadrature.h"

#include <float.h>
#include <math.h>

static const double pi = 3.14159265358979323846;

/* asin(s) = s + s z q(z), z = s^2 <= 1/4, with q of degree 12: the
 * Chebyshev interpolant of (asin(sqrt z) / sqrt z - 1) / z on [0, 1/4] at
 * 13 nodes (computed in 50-digit arithmetic, then rounded), whose error
 * with these rounded coefficients is 5e-18 relative to asin(s) (the
 * function's nearest singularity, z = 1, lets degree 12 reach that). */
static const double asin_q[13] = {
    0.16666666666666669,   0.074999999999984329,  0.044642857146355429,
    0.030381944138531247,  0.022372172942149889,  0.017352392720869973,
    0.013971212973552933,  0.011479177415184906,  0.010322814350185779,
    0.0054575067186403581, 0.017400879442694021,  -0.014851887071247204,
    0.028757851367421566,
};

/* acos(c), c in [-1, 1], to a few ulps of pi (absolute), without branches
 * so that loops over many correlations run without calls (libm's acos was
 * the dearest part of a ReLU network's kernel).  |c| <= 1/2: pi/2 -
 * asin(c); c > 1/2: 2 asin(sqrt((1 - c) / 2)); c < -1/2: pi - 2 asin(sqrt((1
 * + c) / 2)); each asin by the polynomial above at s^2 <= 1/4, and 1 -+ c
 * exact (Sterbenz) where it matters. */
static inline double arc_cosine(double c)
{
    /* Every value computed, then selected: a conditional operation would
     * keep the compiler from vectorizing (it may not speculate it). */
    const double ac = fabs(c);
    const int outer = ac > 0.5;
    const double z_out = 0.5 * (1.0 - ac), z_in = c * c, root = sqrt(z_out);
    const double z = outer ? z_out : z_in;
    const double s = outer ? root : c;
    /* Estrin's scheme: short dependency chains, and no loop here to keep
     * the caller's loop from vectorizing. */
    const double z2 = z * z, z4 = z2 * z2, z8 = z4 * z4;
    const double *k = asin_q;
    const double p01 = k[0] + k[1] * z, p23 = k[2] + k[3] * z, p45 = k[4] + k[5] * z;
    const double p67 = k[6] + k[7] * z, p89 = k[8] + k[9] * z, pab = k[10] + k[11] * z;
    const double p03 = p01 + p23 * z2, p47 = p45 + p67 * z2, p8b = p89 + pab * z2;
    const double q = (p03 + p47 * z4) + (p8b + k[12] * z4) * z8;
    const double as = s + s * (z * q);      /* asin(s) */
    const double inner = 0.5 * pi - as, pos = 2.0 * as, neg = pi - 2.0 * as;
    return outer ? (c > 0.0 ? pos : neg) : inner;
}

double tni_acos(double c)
{
    return arc_cosine(c);
}

int tni_dual_has_closed_form(tn_activation act)
{
    return act == TN_ACT_IDENTITY || act == TN_ACT_RELU || act == TN_ACT_LEAKY_RELU ||
           act == TN_ACT_ERF;
}

/* ReLU (a = 0) and leaky ReLU's duals at one pair; v1 > 0 (the caller
 * handles u = 0).  Selects rather than branches: the row loop below
 * vectorizes, and the scalar and row paths give the same bits. */
static inline void relu_pair(double a, double v1, double w, double x, double *eff, double *edd)
{
    const double inv2pi = 1.0 / (2.0 * pi), lin = (1.0 - a) * (1.0 - a);
    /* sqrt of the product, as in tni_correlation: exactly q for v1 = w = q. */
    const double prod = v1 * w;
    const double sd = prod >= DBL_MIN ? sqrt(prod) : sqrt(v1) * sqrt(w);
    double c = w > 0.0 ? x / sd : 0.0;
    c = c > 1.0 ? 1.0 : c < -1.0 ? -1.0 : c;
    const double t = arc_cosine(c), sin_t = sqrt((1.0 - c) * (1.0 + c));
    const double relu_ff = sd * inv2pi * (sin_t + (pi - t) * c);
    const double relu_dd = (pi - t) * inv2pi;
    /* v = 0 exactly: phi(v) = 0, phi'(v) = a, E[phi'(u)] = (1 + a) / 2. */
    *eff = w > 0.0 ? a * x + lin * relu_ff : 0.0;
    *edd = w > 0.0 ? a + lin * relu_dd : a * (1.0 + a) / 2.0;
}

void tni_dual_closed(tn_activation act, double slope, double s11, double s22, double s12,
                     double *eff, double *edd)
{
    switch (act) {
    case TN_ACT_RELU:
    case TN_ACT_LEAKY_RELU: {
        const double a = act == TN_ACT_RELU ? 0.0 : slope;   /* phi'(0) and phi'(x < 0) */
        if (s11 > 0.0) {
            relu_pair(a, s11, s22, s12, eff, edd);
        } else {
            /* u = 0 exactly: phi = 0 there and phi' = a, and E[phi'(v)] =
             * (1 + a) / 2 for the other one (a^2 if it is 0 too). */
            *eff = 0.0;
            *edd = s22 > 0.0 ? a * (1.0 + a) / 2.0 : a * a;
        }
        return;
    }
    case TN_ACT_ERF: {
        /* (1 + 2 S11)(1 + 2 S22) - 4 S12^2 written so it cannot round to
         * <= 0: it is >= 1 + 2 (S11 + S22) for any PSD covariance. */
        const double g = (1.0 + 2.0 * s11) * (1.0 + 2.0 * s22);
        double arg = 2.0 * s12 / sqrt(g);
        if (arg > 1.0) arg = 1.0;
        if (arg < -1.0) arg = -1.0;
        const double det = fmax(s11 * s22 - s12 * s12, 0.0);
        *eff = 2.0 / pi * asin(arg);
        *edd = 4.0 / pi / sqrt(1.0 + 2.0 * (s11 + s22) + 4.0 * det);
        return;
    }
    default:    /* identity */
        *eff = s12;
        *edd = 1.0;
        return;
    }
}

/* relu_pair for v1 > 0 and a product v1 w >= DBL_MIN or w = 0: every
 * operation unconditional (no division by zero, no square root of a
 * negative), so that the loop vectorizes; the same bits as relu_pair. */
static inline void relu_pair_lean(double a, double v1, double w, double x, double *eff,
                                  double *edd)
{
    const double inv2pi = 1.0 / (2.0 * pi), lin = (1.0 - a) * (1.0 - a);
    const int live = w > 0.0;
    const double sd = sqrt(v1 * w), den = live ? sd : 1.0, ratio = x / den;
    double c = live ? ratio : 0.0;
    c = c > 1.0 ? 1.0 : c < -1.0 ? -1.0 : c;
    const double t = arc_cosine(c), sin_t = sqrt((1.0 - c) * (1.0 + c));
    const double relu_ff = sd * inv2pi * (sin_t + (pi - t) * c);
    const double relu_dd = (pi - t) * inv2pi;
    const double ff = a * x + lin * relu_ff, dd = a + lin * relu_dd;
    *eff = live ? ff : 0.0;
    *edd = live ? dd : a * (1.0 + a) / 2.0;
}

void tni_dual_relu_row(size_t n, double slope, double v1, const double *v2, size_t inc2,
                       const double *s12, double *eff, double *edd)
{
    const double a = slope;
    if (!(v1 > 0.0)) {
        for (size_t k = 0; k < n; k++) {
            eff[k] = 0.0;
            edd[k] = v2[k * inc2] > 0.0 ? a * (1.0 + a) / 2.0 : a * a;
        }
        return;
    }
    for (size_t k = 0; k < n; k++) {
        double e, d;
        relu_pair_lean(a, v1, v2[k * inc2], s12[k], &e, &d);
        eff[k] = e;
        edd[k] = d;
    }
    /* Products that underflow (variances near 1e-154): the careful path. */
    for (size_t k = 0; k < n; k++) {
        const double w = v2[k * inc2];
        if (w > 0.0 && v1 * w < DBL_MIN) relu_pair(a, v1, w, s12[k], &eff[k], &edd[k]);
    }
}
