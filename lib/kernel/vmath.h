/*
 * vmath.h -- elementwise transcendentals that vectorize and give the same
 * bits everywhere.
 *
 * libm's tanh and cosh are scalar calls of 15-20 ns each, which made a tanh
 * layer's forward cost as much as its GEMM (issue 10: a tanh MLP's forward
 * took 35 ms against ReLU's 19 ms).  These are written in IEEE basic
 * operations only (+ - * /, comparisons, bit moves): inlined into a loop
 * under TNI_VECTOR_CLONES the compiler turns them into AVX-512, AVX2 or SSE2
 * code, and since the project compiles with -ffp-contract=off (no fused
 * multiply-add is formed behind our back), every clone, every machine and
 * every compiler that honours IEEE arithmetic rounds each step the same way:
 * the results are bit-identical wherever the library runs, which the
 * bit-exact resume guarantees (issue 13) rely on.  glibc's tanh, by
 * contrast, is only promised to be accurate, not identical across versions.
 *
 * Accuracy (tests/test_series.c, against long double references over 10^5
 * arguments from 1e-300 to 800): tanh within 3 ulp, sech^2 within 6 ulp
 * (libm's: 1 ulp), far below the 1e-12 relative that results are held to.
 */
#ifndef TNI_VMATH_H
#define TNI_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* 2^k for an integral double k in [-1022, 1023], built in the exponent
 * field: k + 1023 lands in the low mantissa bits of k + (1.5 2^52 + 1023),
 * and a shift by 52 moves it to the exponent (the bits above it fall off). */
static inline double tni_pow2i(double k)
{
    const double m = k + (0x1.8p52 + 1023.0);
    uint64_t b;
    memcpy(&b, &m, sizeof b);
    b <<= 52;
    double r;
    memcpy(&r, &b, sizeof r);
    return r;
}

/* tanh(x) and sech^2(x) = 1 - tanh^2(x) = phi'(x), from one exponential.
 *
 * With a = |x| and u = -2a: e = exp(u) and m = expm1(u) = e - 1, then
 *   tanh a = -m / (2 + m)       (m, not 1 - e: full relative accuracy at small a)
 *   sech^2 a = 4 e / (1 + e)^2  (e, not 1 - tanh^2: full relative accuracy at large a)
 * exp and expm1 share the reduction u = k ln2 + r, |r| <= ln2 / 2 (Cody and
 * Waite's two-part ln 2, exact for |k| < 2^11), and p = expm1(r) by its
 * Taylor series to r^13 (truncation below 2^-56 relative on that interval),
 * then m = 2^k p + (2^k - 1), exact but for its last rounding, and
 * e = 2^k (1 + p), scaled in two halves of k so that it underflows
 * gracefully.  Past a = 400, tanh is 1 and sech^2 is 0 in double; u is
 * clamped there to keep k in range.  NaN propagates; tanh(+-inf) = +-1. */
static inline void tni_tanh_sech2(double x, double *t, double *s)
{
    static const double ln2_hi = 0x1.62e42fee00000p-1, ln2_lo = 0x1.a39ef35793c76p-33;
    static const double inv_ln2 = 0x1.71547652b82fep0, shift = 0x1.8p52;
    const double a = fabs(x);
    const double u = -2.0 * (a > 400.0 ? 400.0 : a);
    const double k = (u * inv_ln2 + shift) - shift;     /* nearest integer */
    const double r = (u - k * ln2_hi) - k * ln2_lo;
    double q = 1.0 / 6227020800.0;                       /* 1/13! */
    q = q * r + 1.0 / 479001600.0;
    q = q * r + 1.0 / 39916800.0;
    q = q * r + 1.0 / 3628800.0;
    q = q * r + 1.0 / 362880.0;
    q = q * r + 1.0 / 40320.0;
    q = q * r + 1.0 / 5040.0;
    q = q * r + 1.0 / 720.0;
    q = q * r + 1.0 / 120.0;
    q = q * r + 1.0 / 24.0;
    q = q * r + 1.0 / 6.0;
    q = q * r + 0.5;
    const double p = r + (r * r) * q;                    /* expm1(r) */
    const double kmid = k < -1022.0 ? -1022.0 : k;       /* 2^k - 1 is -1 well before */
    const double sk = tni_pow2i(kmid);
    const double m = sk * p + (sk - 1.0);
    const double k1 = (0.5 * k + shift) - shift, k2 = k - k1;
    const double e = ((1.0 + p) * tni_pow2i(k1)) * tni_pow2i(k2);
    const double th = -m / (2.0 + m);
    *t = copysign(th, x);                                /* keeps -0; NaN stays NaN */
    *s = (4.0 * e) / ((1.0 + e) * (1.0 + e));
}

#endif
