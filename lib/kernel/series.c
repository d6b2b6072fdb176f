/* series.c -- Taylor-mode recurrences for activations (series.h). */
#include "series.h"
#include "../core/core.h"
#include "parallel.h"
#include "vmath.h"

#include <math.h>
#include <string.h>

#define CH TNI_SERIES_CHUNK

static const double two_over_sqrt_pi = 1.12837916709551257390;   /* 2/sqrt(pi) */
static const double inv_sqrt_2pi = 0.39894228040143267794;       /* 1/sqrt(2 pi) */
static const double inv_sqrt2 = 0.70710678118654752440;

int tni_act_is_linear_pieces(tn_activation act)
{
    return act == TN_ACT_IDENTITY || act == TN_ACT_RELU || act == TN_ACT_LEAKY_RELU;
}

int tni_act_base_reusable(tn_activation act)
{
    return act == TN_ACT_TANH || act == TN_ACT_SIGMOID;
}

size_t tni_act_scratch_size(size_t deg)
{
    return 6 * (deg + 1) * CH;
}

/* Row j of a chunk array: CH values of order j. */
#define ROW(a, j) ((a) + (size_t)(j) * CH)

/* out[e] = (1/j) sum_{i=1..j} i u_i[e] v_{j-i}[e]: the coefficient j of y
 * when y' = u' v, the workhorse of every recurrence. */
static void integ(double *restrict out, const double *u, const double *v, size_t j, size_t n)
{
    double acc[CH] = {0};
    for (size_t i = 1; i <= j; i++) {
        const double *ui = ROW(u, i), *vj = ROW(v, j - i);
        const double di = (double)i;
        for (size_t e = 0; e < n; e++) acc[e] += di * ui[e] * vj[e];
    }
    const double inv = 1.0 / (double)j;
    for (size_t e = 0; e < n; e++) out[e] = acc[e] * inv;
}

/* out[e] = sum_{i=0..j} u_i[e] v_{j-i}[e]: coefficient j of the product. */
static void cauchy(double *restrict out, const double *u, const double *v, size_t j, size_t n)
{
    double acc[CH] = {0};
    for (size_t i = 0; i <= j; i++) {
        const double *ui = ROW(u, i), *vj = ROW(v, j - i);
        for (size_t e = 0; e < n; e++) acc[e] += ui[e] * vj[e];
    }
    memcpy(out, acc, n * sizeof(double));
}

static double sigmoid(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

static double softplus(double x)
{
    return fmax(x, 0.0) + log1p(exp(-fabs(x)));
}

/* z <- tanh z, c <- sech^2 z: the one loop of a tanh layer's forward that
 * is not a GEMM, in the vector clones (vmath.h: the same bits in each). */
TNI_VECTOR_CLONES static void tanh_rows(size_t n, double *restrict z, double *restrict c)
{
    for (size_t e = 0; e < n; e++) tni_tanh_sech2(z[e], &z[e], &c[e]);
}

/* Order 0 of every activation, elementwise: y_0 = phi(z_0), c_0 = phi'(z_0). */
static void order0(tn_activation act, double slope, size_t n, double *z, double *c)
{
    switch (act) {
    case TN_ACT_IDENTITY:
        for (size_t e = 0; e < n; e++) c[e] = 1.0;
        break;
    case TN_ACT_RELU:
        for (size_t e = 0; e < n; e++) {
            const double m = z[e] > 0.0 ? 1.0 : 0.0;
            c[e] = m;
            z[e] = m * z[e];
        }
        break;
    case TN_ACT_LEAKY_RELU:
        for (size_t e = 0; e < n; e++) {
            const double m = z[e] > 0.0 ? 1.0 : slope;
            c[e] = m;
            z[e] = m * z[e];
        }
        break;
    case TN_ACT_TANH:
        tanh_rows(n, z, c);
        break;
    case TN_ACT_SIGMOID:
        for (size_t e = 0; e < n; e++) {
            const double p = sigmoid(z[e]), q = sigmoid(-z[e]);
            c[e] = p * q;
            z[e] = p;
        }
        break;
    case TN_ACT_SOFTPLUS:
        for (size_t e = 0; e < n; e++) {
            c[e] = sigmoid(z[e]);
            z[e] = softplus(z[e]);
        }
        break;
    case TN_ACT_ERF:
        for (size_t e = 0; e < n; e++) {
            c[e] = two_over_sqrt_pi * exp(-z[e] * z[e]);
            z[e] = erf(z[e]);
        }
        break;
    case TN_ACT_GELU:
        for (size_t e = 0; e < n; e++) {
            const double x = z[e];
            const double Phi = 0.5 * erfc(-x * inv_sqrt2);
            c[e] = Phi + x * inv_sqrt_2pi * exp(-0.5 * x * x);
            z[e] = x * Phi;
        }
        break;
    }
}

/* Order 0 of a smooth activation (smooth_chunk's arrays): y_0, c_0 and the
 * auxiliary series' first terms. */
static void smooth_order0(tn_activation act, size_t n, const double *Z, double *Y, double *C,
                          double *A, double *B)
{
    if (act == TN_ACT_TANH) {
        memcpy(ROW(Y, 0), ROW(Z, 0), n * sizeof(double));
        tanh_rows(n, ROW(Y, 0), ROW(C, 0));
    }
    for (size_t e = 0; e < n; e++) {
        const double x = ROW(Z, 0)[e];
        double *y0 = ROW(Y, 0) + e, *c0 = ROW(C, 0) + e;
        switch (act) {
        case TN_ACT_TANH:              /* before this loop, vectorized */
            break;
        case TN_ACT_SIGMOID:
            *y0 = sigmoid(x);
            *c0 = sigmoid(x) * sigmoid(-x);
            break;
        case TN_ACT_SOFTPLUS:        /* C = sigma(z) series, A = sigma'(z) series */
            *y0 = softplus(x);
            *c0 = sigmoid(x);
            ROW(A, 0)[e] = sigmoid(x) * sigmoid(-x);
            break;
        case TN_ACT_ERF:             /* A = z*z series, B = exp(-z*z) series */
            ROW(A, 0)[e] = x * x;
            ROW(B, 0)[e] = exp(-x * x);
            *c0 = two_over_sqrt_pi * ROW(B, 0)[e];
            *y0 = erf(x);
            break;
        case TN_ACT_GELU:            /* A = z*z/2, B = density series, C = Phi (see below) */
            ROW(A, 0)[e] = 0.5 * x * x;
            ROW(B, 0)[e] = inv_sqrt_2pi * exp(-0.5 * x * x);
            *c0 = 0.5 * erfc(-x * inv_sqrt2);           /* Phi_0, completed below */
            *y0 = x * *c0;
            break;
        default:
            break;
        }
    }
}

/* Orders 0..deg of a smooth activation for n <= CH elements held in chunk
 * arrays: Z (input, kept), Y and C (output), A and B auxiliary series.
 * base_given: y_0 and c_0 are in Y and C already (tni_act_base_reusable). */
static void smooth_chunk(tn_activation act, size_t deg, size_t n,
                         const double *Z, double *Y, double *C, double *A, double *B,
                         int base_given)
{
    if (!base_given) smooth_order0(act, n, Z, Y, C, A, B);
    if (act == TN_ACT_GELU) {
        /* GELU keeps Phi in C during the recurrence (Y = Z * Phi needs it),
         * then turns C into phi' = Phi + Z * density at the end. */
        for (size_t j = 1; j <= deg; j++) {
            double t[CH];
            cauchy(t, Z, Z, j, n);
            for (size_t e = 0; e < n; e++) ROW(A, j)[e] = 0.5 * t[e];
            integ(ROW(B, j), A, B, j, n);
            for (size_t e = 0; e < n; e++) ROW(B, j)[e] = -ROW(B, j)[e];
            integ(ROW(C, j), Z, B, j, n);
            cauchy(ROW(Y, j), Z, C, j, n);
        }
        for (size_t j = 0; j <= deg; j++) {
            double t[CH];
            cauchy(t, Z, B, j, n);
            for (size_t e = 0; e < n; e++) ROW(C, j)[e] += t[e];
        }
        return;
    }
    for (size_t j = 1; j <= deg; j++) {
        double t[CH];
        switch (act) {
        case TN_ACT_TANH:                 /* c = 1 - y*y */
            integ(ROW(Y, j), Z, C, j, n);
            cauchy(t, Y, Y, j, n);
            for (size_t e = 0; e < n; e++) ROW(C, j)[e] = -t[e];
            break;
        case TN_ACT_SIGMOID:              /* c = y - y*y */
            integ(ROW(Y, j), Z, C, j, n);
            cauchy(t, Y, Y, j, n);
            for (size_t e = 0; e < n; e++) ROW(C, j)[e] = ROW(Y, j)[e] - t[e];
            break;
        case TN_ACT_SOFTPLUS:             /* c = s = sigma(z), s' = z' a, a = s - s*s */
            integ(ROW(Y, j), Z, C, j, n);
            integ(ROW(C, j), Z, A, j, n);
            cauchy(t, C, C, j, n);
            for (size_t e = 0; e < n; e++) ROW(A, j)[e] = ROW(C, j)[e] - t[e];
            break;
        case TN_ACT_ERF:                  /* c = (2/sqrt pi) exp(-w), w = z*z */
            cauchy(ROW(A, j), Z, Z, j, n);
            integ(ROW(Y, j), Z, C, j, n);
            integ(ROW(B, j), A, B, j, n);
            for (size_t e = 0; e < n; e++) {
                ROW(B, j)[e] = -ROW(B, j)[e];
                ROW(C, j)[e] = two_over_sqrt_pi * ROW(B, j)[e];
            }
            break;
        default:
            break;
        }
    }
}

void tni_act_series(tn_activation act, double slope, size_t deg, size_t count,
                    double *z, size_t stride, double *c, size_t cstride, double *scratch,
                    int base_given)
{
    if (deg == 0 || tni_act_is_linear_pieces(act)) {
        order0(act, slope, count, z, c);
        if (act == TN_ACT_IDENTITY || deg == 0) return;
        /* y_j = c_0 z_j for the piecewise-linear activations. */
        for (size_t j = 1; j <= deg; j++) {
            double *zj = z + j * stride;
            for (size_t e = 0; e < count; e++) zj[e] *= c[e];
        }
        return;
    }
    const size_t rows = (deg + 1) * CH;
    double *Z = scratch, *Y = Z + rows, *C = Y + rows, *A = C + rows, *B = A + rows;
    for (size_t e0 = 0; e0 < count; e0 += CH) {
        const size_t n = count - e0 < CH ? count - e0 : CH;
        for (size_t j = 0; j <= deg; j++) memcpy(ROW(Z, j), z + j * stride + e0, n * sizeof(double));
        if (base_given) {
            memcpy(ROW(Y, 0), ROW(Z, 0), n * sizeof(double));
            memcpy(ROW(C, 0), c + e0, n * sizeof(double));
        }
        smooth_chunk(act, deg, n, Z, Y, C, A, B, base_given);
        for (size_t j = 0; j <= deg; j++) {
            memcpy(z + j * stride + e0, ROW(Y, j), n * sizeof(double));
            memcpy(c + j * cstride + e0, ROW(C, j), n * sizeof(double));
        }
    }
}

void tni_series_faa_di_bruno(tni_scaled_derivs_fn derivs, void *user, size_t deg, size_t count,
                             double *z, size_t stride, double *scratch)
{
    /* Per element: a_m from derivs, P = (z - z_0)^m built one power at a
     * time, y_j accumulated as sum_m a_m P_j. */
    double *a = scratch, *P = a + (deg + 1), *Q = P + (deg + 1);
    for (size_t e = 0; e < count; e++) {
        double y[TNI_MAX_ORDER + 1] = {0};
        double u[TNI_MAX_ORDER + 1] = {0};     /* z(t) - z_0 */
        for (size_t j = 1; j <= deg; j++) u[j] = z[j * stride + e];
        derivs(z[e], deg, a, user);
        y[0] = a[0];
        for (size_t j = 0; j <= deg; j++) P[j] = u[j];     /* m = 1 */
        for (size_t m = 1; m <= deg; m++) {
            for (size_t j = m; j <= deg; j++) y[j] += a[m] * P[j];
            /* P <- P * u, truncated at deg; P has no terms below t^m. */
            for (size_t j = 0; j <= deg; j++) {
                double s = 0.0;
                for (size_t i = 1; i < j; i++) s += P[j - i] * u[i];
                Q[j] = s;
            }
            memcpy(P, Q, (deg + 1) * sizeof(double));
        }
        for (size_t j = 0; j <= deg; j++) z[j * stride + e] = y[j];
    }
}

void tni_act_series_reverse(int linear, size_t lo, size_t din, size_t dout, size_t count,
                            double *g, size_t stride, const double *c, size_t cstride)
{
    if (linear) {
        for (size_t i = lo; i <= din; i++) {
            double *gi = g + i * stride;
            for (size_t e = 0; e < count; e++) gi[e] *= c[e];
        }
        return;
    }
    /* Ascending i: g_i is overwritten only after its own use; later i read
     * only g_j with j > i, still untouched. */
    for (size_t i = lo; i <= din; i++) {
        double *gi = g + i * stride;
        for (size_t e = 0; e < count; e++) gi[e] *= c[e];
        for (size_t j = i + 1; j <= dout; j++) {
            const double *gj = g + j * stride, *cj = c + (j - i) * cstride;
            for (size_t e = 0; e < count; e++) gi[e] += cj[e] * gj[e];
        }
    }
}

/* Elements per range: enough that a range outweighs waking a thread (a few
 * microseconds), a multiple of the recurrences' chunk. */
#define RANGE (16 * CH)

typedef struct series_job {
    tn_activation act;
    int linear;
    double slope;
    size_t lo, din, deg, count, parts;
    double *z;
    size_t stride;
    const double *cr;
    double *c;
    size_t cstride;
    int base_given;
} series_job;

static size_t ranges(int threads, size_t count, size_t deg)
{
    /* Work per element grows with the order (deg^2 for smooth activations):
     * shorter ranges at higher orders, up to 4 per thread so that a thread
     * late to start leaves less to wait for. */
    size_t len = RANGE / (deg + 1);
    len = len < CH ? CH : (len + CH - 1) / CH * CH;
    const size_t n = (count + len - 1) / len, most = 4 * (size_t)(threads > 0 ? threads : 1);
    return n < most ? n : most;
}

static void series_range(void *arg, size_t p, double *scratch)
{
    const series_job *j = arg;
    size_t a, b;
    tni_split_range(j->count, j->parts, CH, p, &a, &b);
    if (b > a)
        tni_act_series(j->act, j->slope, j->deg, b - a, j->z + a, j->stride, j->c + a, j->cstride,
                       scratch, j->base_given);
}

void tni_act_series_threaded(int threads, tn_activation act, double slope, size_t deg,
                             size_t count, double *z, size_t stride, double *c, size_t cstride,
                             double *scratch, int base_given)
{
    const size_t parts = ranges(threads, count, deg);
    if (threads <= 1 || parts <= 1) {
        tni_act_series(act, slope, deg, count, z, stride, c, cstride, scratch, base_given);
        return;
    }
    series_job j = {act, 0, slope, 0, 0, deg, count, parts, z, stride, NULL, c, cstride,
                    base_given};
    tni_parallel(threads, parts, series_range, &j, scratch);
}

static void reverse_range(void *arg, size_t p, double *scratch)
{
    (void)scratch;
    const series_job *j = arg;
    size_t a, b;
    tni_split_range(j->count, j->parts, CH, p, &a, &b);
    if (b > a)
        tni_act_series_reverse(j->linear, j->lo, j->din, j->deg, b - a, j->z + a, j->stride,
                               j->cr + a, j->cstride);
}

void tni_act_series_reverse_threaded(int threads, int linear, size_t lo, size_t din, size_t dout,
                                     size_t count, double *g, size_t stride, const double *c,
                                     size_t cstride)
{
    const size_t parts = ranges(threads, count, linear ? 0 : dout);
    if (threads <= 1 || parts <= 1) {
        tni_act_series_reverse(linear, lo, din, dout, count, g, stride, c, cstride);
        return;
    }
    series_job j = {TN_ACT_IDENTITY, linear, 0.0, lo, din, dout, count, parts, g, stride, c,
                    NULL, cstride, 0};
    tni_parallel(threads, parts, reverse_range, &j, NULL);
}
