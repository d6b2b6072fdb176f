/*
 * series.h -- truncated Taylor series of elementwise activations.
 *
 * Coefficients are normalized (v_j = v^(j)(0) / j!), stored order-major: the
 * `count` values of order j start at base + j * stride.  For z(t) with
 * coefficients z_0..z_deg, tni_act_series computes, in place, the
 * coefficients of y(t) = phi(z(t)) and the coefficients c_0..c_deg of
 * phi'(z(t)), which reverse mode needs (dy_j/dz_i = c_{j-i}).  Smooth
 * activations use O(deg^2) recurrences; ReLU, leaky ReLU and identity are
 * linear in z with slopes fixed by z_0, so only c_0 is written and c_j = 0
 * for j >= 1 (tni_act_is_linear_pieces).
 */
#ifndef TNI_SERIES_H
#define TNI_SERIES_H

#include <stddef.h>

#define TN_BUILDING 1
#include "taylornet.h"

/* The highest order the kernels accept (tn_taylor_max_order). */
#define TNI_MAX_ORDER 32
/* Elements processed together by the recurrences; scratch is sized by it. */
#define TNI_SERIES_CHUNK 64

/* 1 for identity, ReLU and leaky ReLU: y_j = c_0 z_j, degree preserved. */
int tni_act_is_linear_pieces(tn_activation act);

/* Doubles of scratch tni_act_series needs for degree deg. */
size_t tni_act_scratch_size(size_t deg);

/* In place: z (orders 0..deg) becomes y; c receives c_0..c_deg (only c_0 for
 * the linear-pieces activations).  slope is the leaky-ReLU slope.
 * deg <= TNI_MAX_ORDER; scratch holds tni_act_scratch_size(deg) doubles.
 * base_given (only where tni_act_base_reusable): z's order-0 row already
 * holds y_0 and c's holds c_0, from an earlier call on the same z_0; only
 * orders 1..deg are computed, to the same bits. */
void tni_act_series(tn_activation act, double slope, size_t deg, size_t count,
                    double *z, size_t stride, double *c, size_t cstride, double *scratch,
                    int base_given);

/* The activations whose orders >= 1 need nothing of z_0 but y_0 and c_0
 * (tanh and the sigmoid: c = 1 - y^2, y - y^2), so a cached base point
 * saves their transcendental order-0 work.  The others' recurrences carry
 * auxiliary series of z_0 (erf, GELU, softplus), or their order 0 is
 * already as cheap as a copy (the linear pieces). */
int tni_act_base_reusable(tn_activation act);

/* Reverse of tni_act_series, in place on the cotangents g (stride apart):
 * g_i <- sum_{j=i..dout} c_{j-i} g_j for i = lo..din (the transposed
 * Toeplitz Jacobian).  din is the input degree, dout the output degree;
 * orders outside lo..din are left as they were.  linear: c has only c_0. */
void tni_act_series_reverse(int linear, size_t lo, size_t din, size_t dout, size_t count,
                            double *g, size_t stride, const double *c, size_t cstride);

/* tni_act_series and tni_act_series_reverse on `threads` threads
 * (kernel/parallel.h): the elements are cut into ranges, each run by the
 * serial function with its own scratch; results are identical to the serial
 * call's, whatever the thread count.  scratch is the serial call's, used
 * when everything runs on the calling thread. */
void tni_act_series_threaded(int threads, tn_activation act, double slope, size_t deg,
                             size_t count, double *z, size_t stride, double *c, size_t cstride,
                             double *scratch, int base_given);
void tni_act_series_reverse_threaded(int threads, int linear, size_t lo, size_t din, size_t dout,
                                     size_t count, double *g, size_t stride, const double *c,
                                     size_t cstride);

/* The same coefficients by the generic Faa di Bruno rule,
 *   y_j = sum_{m=1..j} a_m [t^j] (z(t) - z_0)^m,  a_m = phi^(m)(z_0) / m!,
 * for any phi whose scaled derivatives `derivs(z0, deg, a)` (a_0..a_deg) are
 * known.  O(deg^3) per element; a fallback and a cross-check of the
 * recurrences.  c is not produced.  scratch: 3 (deg + 1) doubles. */
typedef void (*tni_scaled_derivs_fn)(double z0, size_t deg, double *a, void *user);
void tni_series_faa_di_bruno(tni_scaled_derivs_fn derivs, void *user, size_t deg, size_t count,
                             double *z, size_t stride, double *scratch);

#endif
