/* test_analytic.c -- the infinite-width NNGP and NTK (lib/ntk/analytic.c)
 * against independent computations (MATH.md §5, §8.5).
 *
 * The reference for every Gaussian expectation is brute_force_dual below: a
 * 2-D integral in polar coordinates by composite Gauss-Legendre, sharing
 * nothing with the library (which uses closed forms, or Gauss-Hermite with
 * Mehler's series).  With u = sqrt(S11) r cos a, v = sqrt(S22) r cos(a - b),
 * cos b = rho,
 *     E[F(u, v)] = (1/2pi) int_0^2pi da int_0^inf r exp(-r^2/2) F dr.
 * The angular pieces are split at the kinks of the ReLU family (cos a = 0,
 * cos(a - b) = 0) and graded towards their ends; the radial panels are
 * graded towards r = 0, where phi(c r) changes on the scale 1/c.  Its own
 * accuracy is measured against the closed forms: ~1e-15 relative for
 * variances up to ~10, ~5e-13 at 30 (closed_forms_match_brute_force).
 *
 * Set TN_TEST_VERBOSE=1 to print the measured errors.
 *
 * Links the internal archive: it calls tni_analytic_mlp directly. */
#include "core/core.h"
#include "ntk/analytic.h"
#include "kernel/dual.h"
#include "kernel/quadrature.h"
#include "testutil.h"

static const double PI = 3.14159265358979323846;

static int verbose(void)
{
    const char *v = getenv("TN_TEST_VERBOSE");
    return v != NULL && v[0] != '\0' && v[0] != '0';
}

/*---------------------------------------------------------------------
 * The independent integrator
 *-------------------------------------------------------------------*/

#define GL_NODES 12

/* Gauss-Legendre on [-1, 1], Newton on the Legendre recurrence. */
static void gauss_legendre(int n, double *x, double *w)
{
    for (int i = 0; i < n; i++) {
        double z = cos(PI * (i + 0.75) / (n + 0.5)), dp = 1.0;
        for (int it = 0; it < 100; it++) {
            double p0 = 1.0, p1 = z;
            for (int k = 2; k <= n; k++) {
                const double p2 = ((2.0 * k - 1.0) * z * p1 - (k - 1.0) * p0) / k;
                p0 = p1;
                p1 = p2;
            }
            dp = n * (z * p1 - p0) / (z * z - 1.0);
            const double dz = p1 / dp;
            z -= dz;
            if (fabs(dz) < 1e-16) break;
        }
        x[i] = z;
        w[i] = 2.0 / ((1.0 - z * z) * dp * dp);
    }
}

/* phi and phi', written independently of the library's (relu'(0) = 0 and
 * leaky'(0) = slope are the library's conventions, documented). */
static void act_value(tn_activation act, double slope, double x, double *f, double *df)
{
    switch (act) {
    case TN_ACT_IDENTITY:
        *f = x, *df = 1.0;
        break;
    case TN_ACT_RELU:
        *f = x > 0 ? x : 0.0, *df = x > 0 ? 1.0 : 0.0;
        break;
    case TN_ACT_LEAKY_RELU:
        *f = x > 0 ? x : slope * x, *df = x > 0 ? 1.0 : slope;
        break;
    case TN_ACT_TANH: {
        const double t = tanh(x);
        *f = t, *df = 1.0 - t * t;
        break;
    }
    case TN_ACT_SIGMOID: {
        const double e = exp(-fabs(x));
        *f = x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
        *df = e / ((1.0 + e) * (1.0 + e));
        break;
    }
    case TN_ACT_ERF:
        *f = erf(x), *df = 2.0 / sqrt(PI) * exp(-x * x);
        break;
    case TN_ACT_GELU: {
        const double Phi = 0.5 * erfc(-x / sqrt(2.0));
        *f = x * Phi, *df = Phi + x * exp(-0.5 * x * x) / sqrt(2.0 * PI);
        break;
    }
    case TN_ACT_SOFTPLUS: {
        const double e = exp(-fabs(x));
        *f = (x > 0 ? x : 0.0) + log1p(e);
        *df = x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
        break;
    }
    }
}

/* E[phi(u) phi(v)] and E[phi'(u) phi'(v)], (u, v) ~ N(0, [[s11, s12], [s12, s22]]). */
static void brute_force_dual(tn_activation act, double slope, double s11, double s22,
                             double s12, double *eff, double *edd)
{
    double gx[GL_NODES], gw[GL_NODES];
    gauss_legendre(GL_NODES, gx, gw);
    const double s1 = sqrt(s11), s2 = sqrt(s22);
    /* sqrt(s11 s22), not s1 s2: for s11 = s22 = s12 (a diagonal entry) it
     * gives rho = 1 exactly, where ReLU's E[phi' phi'] has infinite slope. */
    double rho = (s1 > 0 && s2 > 0) ? s12 / sqrt(s11 * s22) : 0.0;
    rho = rho > 1 ? 1 : rho < -1 ? -1 : rho;
    const double b = acos(rho);

    /* Radial nodes, the weight r exp(-r^2/2) folded in; panels 2^-12 .. 1
     * geometric, then 1 wide up to 11 (r^3 exp(-r^2/2) < 1e-23 beyond). */
    static double rx[64 * GL_NODES], rw[64 * GL_NODES];
    double edges[64];
    int ne = 0, nr = 0;
    edges[ne++] = 0.0;
    for (double t = 1.0 / 4096; t < 1.0; t *= 2) edges[ne++] = t;
    for (double t = 1.0; t < 11.01; t += 1.0) edges[ne++] = t;
    for (int p = 0; p + 1 < ne; p++) {
        const double h = 0.5 * (edges[p + 1] - edges[p]), c = 0.5 * (edges[p + 1] + edges[p]);
        for (int k = 0; k < GL_NODES; k++) {
            const double r = c + h * gx[k];
            rx[nr] = r;
            rw[nr++] = h * gw[k] * r * exp(-0.5 * r * r);
        }
    }

    /* Angular pieces between the kinks. */
    double bp[6] = {0.0, 2 * PI, PI / 2, 3 * PI / 2, fmod(b + PI / 2, 2 * PI),
                    fmod(b + 3 * PI / 2, 2 * PI)};
    for (int i = 0; i < 6; i++)
        for (int j = i + 1; j < 6; j++)
            if (bp[j] < bp[i]) {
                const double t = bp[i];
                bp[i] = bp[j], bp[j] = t;
            }
    double sff = 0.0, sdd = 0.0;
    for (int s = 0; s < 5; s++) {
        const double A = bp[s], B = bp[s + 1], W = B - A;
        if (!(W > 0)) continue;
        /* Graded towards both ends: A, A + W/4^8, ..., A + W/4, B - W/4, ..., B. */
        double sub[24];
        int ns = 0;
        sub[ns++] = A;
        for (int k = 8; k >= 1; k--) sub[ns++] = A + W * pow(0.25, k);
        for (int k = 1; k <= 8; k++) sub[ns++] = B - W * pow(0.25, k);
        sub[ns++] = B;
        for (int q = 0; q + 1 < ns; q++) {
            const double h = 0.5 * (sub[q + 1] - sub[q]), c = 0.5 * (sub[q + 1] + sub[q]);
            for (int k = 0; k < GL_NODES; k++) {
                const double a = c + h * gx[k], ca = cos(a), cb = cos(a - b);
                double rf = 0.0, rd = 0.0;
                for (int t = 0; t < nr; t++) {
                    double fu, du, fv, dv;
                    act_value(act, slope, s1 * rx[t] * ca, &fu, &du);
                    act_value(act, slope, s2 * rx[t] * cb, &fv, &dv);
                    rf += rw[t] * fu * fv;
                    rd += rw[t] * du * dv;
                }
                sff += h * gw[k] * rf;
                sdd += h * gw[k] * rd;
            }
        }
    }
    *eff = sff / (2 * PI);
    *edd = sdd / (2 * PI);
}

/*---------------------------------------------------------------------
 * Helpers
 *-------------------------------------------------------------------*/

static tni_mlp_spec spec_of(tn_activation act, size_t d, size_t depth, double sw, double sb,
                            double slope)
{
    tni_mlp_spec s = {.d = d, .depth = depth, .act = act, .sigma_w = sw, .sigma_b = sb,
                      .slope = slope, .threads = 1};
    return s;
}

/* The dual of act at one covariance, through the library's recursion: a
 * depth-2 net with sigma_w = 1, sigma_b = 0 and d = 2 inputs chosen so that
 * Sigma^1 = [[s11, s12], [s12, s22]] (s12 = rho sqrt(s11 s22)).  Then
 *   Sigma^2 = E[phi phi],   Theta^2 - Sigma^2 = E[phi' phi'] s12,
 * and the diagonals give the scales E[phi(u)^2], E[phi'(u)^2] that the
 * errors are measured against. */
typedef struct dual_result {
    double s11, s22, s12;           /* Sigma^1 as the library computed it from x */
    double eff, edd;                /* E[phi(u)phi(v)], E[phi'(u)phi'(v)] s12 */
    double eff_scale, edd_scale;    /* sqrt(E[phi(u)^2] E[phi(v)^2]), likewise for phi' times |s12| */
} dual_result;

static dual_result library_dual(tn_ctx *ctx, tn_activation act, double slope, double s11,
                                double s22, double rho)
{
    const double x[4] = {sqrt(2 * s11), 0.0, sqrt(2 * s22) * rho,
                         sqrt(2 * s22) * sqrt((1 - rho) * (1 + rho))};
    const tni_mlp_spec spec = spec_of(act, 2, 2, 1.0, 0.0, slope);
    const tni_mlp_spec linear = spec_of(act, 2, 1, 1.0, 0.0, slope);
    double K[4], T[4], S1[4];
    TN_CK(ctx, tni_analytic_mlp(ctx, &spec, x, 2, NULL, 0, K, T));
    /* The brute force gets the covariance the library actually used: the
     * inputs round s12 by ~1e-16 relative, which near rho = +-1 moves
     * ReLU's E[phi' phi'] (slope 1/sqrt(1 - rho^2)) by more than rounding. */
    TN_CK(ctx, tni_analytic_mlp(ctx, &linear, x, 2, NULL, 0, S1, NULL));
    dual_result r;
    r.s11 = S1[0], r.s22 = S1[3], r.s12 = S1[1];
    r.eff = K[1];
    r.edd = T[1] - K[1];
    r.eff_scale = sqrt(K[0] * K[3]);
    r.edd_scale = sqrt((T[0] - K[0]) / r.s11 * (T[3] - K[3]) / r.s22) * fabs(r.s12);
    return r;
}

/* Worst relative error of the library's dual against the brute force over
 * a grid of variances and correlations. */
static void check_duals(tn_activation act, double slope, const double (*vars)[2], int nvars,
                        const double *rhos, int nrhos, double tol)
{
    tn_ctx *ctx;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    double worst_f = 0.0, worst_d = 0.0;
    for (int v = 0; v < nvars; v++) {
        for (int r = 0; r < nrhos; r++) {
            const double s11 = vars[v][0], s22 = vars[v][1], rho = rhos[r];
            const dual_result lib = library_dual(ctx, act, slope, s11, s22, rho);
            double bff, bdd;
            brute_force_dual(act, slope, lib.s11, lib.s22, lib.s12, &bff, &bdd);
            const double ef = fabs(lib.eff - bff) / lib.eff_scale;
            /* At s12 = 0, Theta^2 - Sigma^2 = 0 carries no E[phi' phi']. */
            const double ed = lib.s12 != 0.0 ? fabs(lib.edd - bdd * lib.s12) / lib.edd_scale : 0.0;
            if (verbose())
                printf("  %-10s S11 %-6g S22 %-6g rho %-14.12g  E[phi phi] %.2e  "
                       "E[phi' phi'] %.2e\n",
                       tu_act_names[act], s11, s22, rho, ef, ed);
            ck_assert_msg(ef <= tol && ed <= tol,
                          "%s slope %g S11 %g S22 %g rho %.15g: relative errors %.3g, %.3g > %.1g",
                          tu_act_names[act], slope, s11, s22, rho, ef, ed, tol);
            worst_f = fmax(worst_f, ef);
            worst_d = fmax(worst_d, ed);
        }
    }
    if (verbose())
        printf("%s (slope %g): worst relative error %.2e (E[phi phi]), %.2e (E[phi' phi'])\n",
               tu_act_names[act], slope, worst_f, worst_d);
    tn_ctx_free(ctx);
}

/*---------------------------------------------------------------------
 * Gauss-Hermite rules
 *-------------------------------------------------------------------*/

/* Moments E[x^2k] = (2k-1)!! exactly for 2k <= 2n - 1, E[x^odd] = 0, and
 * E[cos x] = e^{-1/2}; weights positive, summing to 1. */
START_TEST(gauss_hermite_rules_are_exact_on_polynomials)
{
    const size_t ns[] = {1, 2, 3, 7, 32, 100, 1024};
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        const size_t n = ns[t];
        double *x = malloc(n * sizeof(double)), *w = malloc(n * sizeof(double)),
               *s = malloc((3 * n + 1) * sizeof(double));
        tni_gauss_hermite(n, x, w, NULL, s);
        double moment = 1.0;    /* (2k-1)!! */
        for (size_t k = 0; 2 * k <= 2 * n - 1 && k <= 12; k++) {
            double even = 0.0, odd = 0.0;
            for (size_t i = 0; i < n; i++) {
                even += w[i] * pow(x[i], (double)(2 * k));
                odd += w[i] * pow(x[i], (double)(2 * k + 1));
            }
            /* Rounding of a sum of n terms of size up to (2k-1)!!. */
            ck_assert_msg(fabs(even - moment) <= 1e-13 * moment, "n %zu E[x^%zu] %.17g vs %.17g",
                          n, 2 * k, even, moment);
            if (2 * k + 1 <= 2 * n - 1) ck_assert_msg(fabs(odd) <= 1e-13 * moment, "odd moment");
            moment *= (double)(2 * k + 1);
        }
        for (size_t i = 0; i < n; i++) {
            ck_assert(w[i] >= 0.0);
            ck_assert(x[i] == -x[n - 1 - i]);
            if (i) ck_assert(x[i] > x[i - 1]);
        }
        if (n >= 32) {
            double c = 0.0;
            for (size_t i = 0; i < n; i++) c += w[i] * cos(x[i]);
            ck_assert_msg(fabs(c - exp(-0.5)) < 1e-15, "n %zu E[cos] error %.3g", n,
                          fabs(c - exp(-0.5)));
        }
        free(x), free(w), free(s);
    }
}
END_TEST

/*---------------------------------------------------------------------
 * Duals against the brute force
 *-------------------------------------------------------------------*/

static const double dual_vars[][2] = {{1.0, 1.0}, {0.5, 1.3}, {3.0, 0.2}, {10.0, 10.0},
                                      {30.0, 5.0}};
static const double dual_rhos[] = {0.0,  0.3,    -0.7,          0.9,        0.99,
                                   -0.999, 0.9999, 1 - 1e-8, -1 + 1e-10, 1.0};

/* Closed forms: exact to rounding (measured ~3e-15).  The brute force is
 * good to ~1e-15 up to variance 10 and ~5e-13 at 30 (erf's E[phi' phi'],
 * where its fixed radial panels start to show); 3e-12 covers both.  Near
 * rho = 1, ReLU's E[phi' phi'] is so steep (slope 1/sqrt(1 - rho^2)) that
 * the ~1e-16 rounding of s12 from the inputs would show (~1e-11 at
 * rho = 1 - 1e-10), so the brute force is given the covariance the library
 * computed from x.  _i: identity, ReLU, leaky ReLU at slopes 0.1, 0.3 and 2
 * (a slope above 1 is still piecewise linear and the derivation holds),
 * erf. */
START_TEST(closed_forms_match_brute_force)
{
    static const tn_activation acts[] = {TN_ACT_IDENTITY,   TN_ACT_RELU,       TN_ACT_LEAKY_RELU,
                                         TN_ACT_LEAKY_RELU, TN_ACT_LEAKY_RELU, TN_ACT_ERF};
    static const double slopes[] = {0.0, 0.0, 0.1, 0.3, 2.0, 0.0};
    check_duals(acts[_i], slopes[_i], dual_vars, 5, dual_rhos, 10, 3e-12);
}
END_TEST

/* Tanh, sigmoid, GELU, softplus by Mehler series.  Target 1e-13 (the
 * series' truncation bound); measured worst ~1e-13 over these grids, which
 * include rho -> +-1 for distinct inputs: variances up to 30 for sigmoid,
 * GELU and softplus, up to 3 for tanh (tanh(sqrt(S) x) sharpens fastest;
 * see the next test).  1e-11 leaves a factor 100 for libm differences. */
START_TEST(quadrature_activations_match_brute_force)
{
    static const tn_activation acts[] = {TN_ACT_TANH, TN_ACT_SIGMOID, TN_ACT_GELU,
                                         TN_ACT_SOFTPLUS};
    static const double tanh_vars[][2] = {{1.0, 1.0}, {0.5, 1.3}, {3.0, 0.2}, {3.0, 3.0}};
    if (acts[_i] == TN_ACT_TANH)
        check_duals(acts[_i], 0.0, tanh_vars, 4, dual_rhos, 10, 1e-11);
    else
        check_duals(acts[_i], 0.0, dual_vars, 5, dual_rhos, 10, 1e-11);
}
END_TEST

/* Beyond those ranges the error grows but stays bounded and finite: the
 * 1024-node rule no longer resolves phi' (sech^2(sqrt(S) x) of tanh is
 * ~1/sqrt(S) wide), and near rho = 1 the 512-term series no longer reaches
 * its target.  Measured worst (E[phi' phi'], over rho = 0.5, 0.9, 0.999):
 * tanh 1.8e-8 at S = 10; sigmoid 3e-5, GELU 1.4e-4, softplus 6e-8 at
 * S = 100 (docs/ntk_analytic.md).  The bounds are those times ~5. */
START_TEST(large_variances_degrade_gracefully)
{
    static const tn_activation acts[] = {TN_ACT_TANH, TN_ACT_SIGMOID, TN_ACT_GELU,
                                         TN_ACT_SOFTPLUS};
    static const double tanh_big[][2] = {{10.0, 10.0}}, big[][2] = {{100.0, 100.0}};
    static const double rhos[] = {0.5, 0.9, 0.999};
    static const double tol[] = {1e-7, 2e-4, 1e-3, 3e-7};
    check_duals(acts[_i], 0.0, acts[_i] == TN_ACT_TANH ? tanh_big : big, 1, rhos, 3, tol[_i]);
}
END_TEST

/* The duals' own arccosine (branch-free, kernel/dual.c) against libm's
 * over 2e6 points of [-1, 1] and the last 60 doubles below 1 and above -1:
 * within 2 ulps of pi (absolute; the duals use acos only through pi - t
 * and sin t, where an absolute error is what matters). */
START_TEST(arccosine_matches_libm)
{
    const double ulp_pi = nextafter(PI, 4.0) - PI;
    double worst = 0.0;
    for (long k = 0; k <= 2000000; k++) {
        const double c = -1.0 + 2.0 * (double)k / 2000000.0;
        worst = fmax(worst, fabs(tni_acos(c) - acos(c)));
    }
    double hi = 1.0, lo = -1.0;
    for (int k = 0; k < 60; k++) {
        hi = nextafter(hi, 0.0), lo = nextafter(lo, 0.0);
        worst = fmax(worst, fmax(fabs(tni_acos(hi) - acos(hi)), fabs(tni_acos(lo) - acos(lo))));
    }
    if (verbose()) printf("arccosine: worst absolute difference %.2g (ulp(pi) %.2g)\n", worst, ulp_pi);
    ck_assert_double_le(worst, 2 * ulp_pi);
    ck_assert(tni_acos(1.0) == 0.0 && tni_acos(-1.0) == PI);
}
END_TEST

/* The row form of the ReLU duals (the convolutional kernels' loop) gives
 * the scalar form's bits, degenerate variances included, with and without
 * a stride. */
START_TEST(relu_rows_equal_single_pairs)
{
    const double v2[8] = {1.0, 0.0, 2.5, 1e-160, 0.3, 4.0, 1.0, 7.0};
    for (int slope = 0; slope < 2; slope++) {
        const double a = slope ? 0.1 : 0.0;
        for (int v = 0; v < 3; v++) {
            const double v1 = v == 0 ? 1.0 : v == 1 ? 0.0 : 1e-170;
            double s12[4], eff[4], edd[4];
            for (int k = 0; k < 4; k++) s12[k] = (0.9 - 0.6 * k) * sqrt(v1 * v2[2 * k]);
            tni_dual_relu_row(4, a, v1, v2, 2, s12, eff, edd);
            for (int k = 0; k < 4; k++) {
                double e, d;
                tni_dual_closed(slope ? TN_ACT_LEAKY_RELU : TN_ACT_RELU, a, v1, v2[2 * k], s12[k],
                                &e, &d);
                ck_assert_msg(e == eff[k] && d == edd[k], "slope %g v1 %g v2 %g: %.17g %.17g vs %.17g %.17g",
                              a, v1, v2[2 * k], eff[k], edd[k], e, d);
            }
        }
    }
}
END_TEST

/*---------------------------------------------------------------------
 * The full recursion
 *-------------------------------------------------------------------*/

/* Sigma and Theta of an L-layer MLP by explicit loops and brute-force
 * expectations for every pair, the diagonal included. */
static void reference_kernels(const tni_mlp_spec *sp, const double *x, size_t n, double *S,
                              double *T)
{
    const double sw2 = sp->sigma_w * sp->sigma_w, sb2 = sp->sigma_b * sp->sigma_b;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            S[i * n + j] = sw2 * tu_dot(x + i * sp->d, x + j * sp->d, sp->d) / (double)sp->d + sb2;
            T[i * n + j] = S[i * n + j];
        }
    double *Sn = malloc(n * n * sizeof(double));
    for (size_t l = 2; l <= sp->depth; l++) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j <= i; j++) {
                double eff, edd;
                brute_force_dual(sp->act, sp->slope, S[i * n + i], S[j * n + j], S[i * n + j],
                                 &eff, &edd);
                Sn[i * n + j] = Sn[j * n + i] = sw2 * eff + sb2;
                T[i * n + j] = T[j * n + i] = Sn[i * n + j] + sw2 * edd * T[i * n + j];
            }
        memcpy(S, Sn, n * n * sizeof(double));
    }
    free(Sn);
}

/* Depth 3, three inputs (two of them close: rho near 1 at every layer),
 * every activation.  Errors compound through two layers of duals each good
 * to ~1e-13 (brute force ~1e-15); 1e-11 relative to the largest entry. */
START_TEST(depth3_recursion_matches_independent_implementation)
{
    const tn_activation act = (tn_activation)_i;
    const size_t n = 3, d = 3;
    const double x[9] = {0.8, -0.3, 0.5, 0.81, -0.29, 0.52, -1.1, 0.4, 0.9};
    const double sw = (act == TN_ACT_RELU || act == TN_ACT_LEAKY_RELU) ? sqrt(2.0) : 1.3;
    const tni_mlp_spec spec = spec_of(act, d, 3, sw, 0.2, 0.1);
    double K[9], T[9], Kr[9], Tr[9];
    tn_ctx *ctx;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    TN_CK(ctx, tni_analytic_mlp(ctx, &spec, x, n, NULL, 0, K, T));
    reference_kernels(&spec, x, n, Kr, Tr);
    const double eK = tu_rel_err(K, Kr, 9, 0.0), eT = tu_rel_err(T, Tr, 9, 0.0);
    if (verbose()) printf("depth 3 %-10s NNGP %.2e NTK %.2e\n", tu_act_names[act], eK, eT);
    ck_assert_msg(eK < 1e-11 && eT < 1e-11, "%s: NNGP error %.3g, NTK error %.3g",
                  tu_act_names[act], eK, eT);
    tn_ctx_free(ctx);
}
END_TEST

/* Rows of very different norms (variances 0.05 .. 40 at layer 1) and near
 * duplicates make the rows use different Gauss-Hermite rules and series
 * lengths; each entry of the full matrix must equal the same pair computed
 * alone (where the expansions adapt to that pair only).  Both are
 * accurate to ~1e-13; 1e-11 relative to the diagonal scale. */
START_TEST(adaptive_expansions_agree_with_pairs_alone)
{
    const tn_activation act = (tn_activation)(TN_ACT_TANH + _i);
    if (act == TN_ACT_ERF) return;      /* closed form */
    const size_t n = 8, d = 4;
    double *x = tu_random(n * d, 99, 1.0);
    const double scale[8] = {0.3, 1.0, 1.0, 2.0, 4.0, 7.0, 9.0, 0.5};
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d; k++) x[i * d + k] *= scale[i];
    for (size_t k = 0; k < d; k++) x[2 * d + k] = x[1 * d + k] * (1 + 1e-7 * (double)k);
    const tni_mlp_spec spec = spec_of(act, d, 3, 1.2, 0.1, 0.0);
    double K[64], T[64], Kp, Tp, Kd[2], Td[2];
    tn_ctx *ctx;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    TN_CK(ctx, tni_analytic_mlp(ctx, &spec, x, n, NULL, 0, K, T));
    double worst = 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            TN_CK(ctx, tni_analytic_mlp(ctx, &spec, x + i * d, 1, x + j * d, 1, &Kp, &Tp));
            TN_CK(ctx, tni_analytic_mlp(ctx, &spec, x + i * d, 1, NULL, 0, &Kd[0], &Td[0]));
            TN_CK(ctx, tni_analytic_mlp(ctx, &spec, x + j * d, 1, NULL, 0, &Kd[1], &Td[1]));
            const double eK = fabs(K[i * n + j] - Kp) / sqrt(Kd[0] * Kd[1]);
            const double eT = fabs(T[i * n + j] - Tp) / sqrt(Td[0] * Td[1]);
            worst = fmax(worst, fmax(eK, eT));
        }
    if (verbose()) printf("adaptive %-10s worst %.2e\n", tu_act_names[act], worst);
    ck_assert_msg(worst < 1e-11, "%s: %.3g", tu_act_names[act], worst);
    free(x);
    tn_ctx_free(ctx);
}
END_TEST

/*---------------------------------------------------------------------
 * Structure
 *-------------------------------------------------------------------*/

/* K(X, X) is symmetric; x2 = NULL equals x2 = X passed explicitly; asking
 * for one output gives the same as asking for both.  The inputs are
 * multiples of 1/8, so every dot product is exact and the pair (x, x) gets
 * exactly the self-variance in both paths: then agreement is to rounding
 * of the pair formulas (1e-14).  _i: the activation. */
START_TEST(symmetric_and_explicit_x2_agree)
{
    const tn_activation act = (tn_activation)_i;
    const size_t n = 6, d = 5;
    double x[30];
    uint64_t seed = 5;
    for (size_t k = 0; k < n * d; k++) x[k] = floor(16.0 * tu_uniform(&seed)) / 8.0;
    const tni_mlp_spec spec = spec_of(act, d, 4, 1.1, 0.3, 0.2);
    double K[36], T[36], Ke[36], Te[36], K1[36], T1[36];
    tn_ctx *ctx;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    TN_CK(ctx, tni_analytic_mlp(ctx, &spec, x, n, NULL, 0, K, T));
    TN_CK(ctx, tni_analytic_mlp(ctx, &spec, x, n, x, n, Ke, Te));
    TN_CK(ctx, tni_analytic_mlp(ctx, &spec, x, n, NULL, 0, K1, NULL));
    TN_CK(ctx, tni_analytic_mlp(ctx, &spec, x, n, NULL, 0, NULL, T1));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            ck_assert(K[i * n + j] == K[j * n + i]);
            ck_assert(T[i * n + j] == T[j * n + i]);
            ck_assert(isfinite(K[i * n + j]) && isfinite(T[i * n + j]));
        }
    ck_assert_double_le(tu_rel_err(Ke, K, 36, 0.0), 1e-14);
    ck_assert_double_le(tu_rel_err(Te, T, 36, 0.0), 1e-14);
    /* NNGP alone expands phi only, so a row may pick a smaller rule than
     * with phi' too: equal to within the series' accuracy, not bitwise. */
    ck_assert_double_le(tu_rel_err(K1, K, 36, 0.0), 1e-13);
    ck_assert(memcmp(T1, T, sizeof T) == 0);
    /* The NTK dominates the NNGP (Theta^l = Sigma^l + a PSD term) on the diagonal. */
    for (size_t i = 0; i < n; i++) ck_assert(T[i * n + i] >= K[i * n + i]);
    tn_ctx_free(ctx);
}
END_TEST

/* Depth 1: NNGP = NTK = sigma_w^2 <x, x'> / d + sigma_b^2, whatever the
 * activation (it never applies), for x2 NULL and explicit. */
START_TEST(depth_one_is_the_linear_kernel)
{
    const size_t n1 = 4, n2 = 3, d = 7;
    double *x1 = tu_random(n1 * d, 1, 1.0), *x2 = tu_random(n2 * d, 2, 2.0);
    const tni_mlp_spec spec = spec_of(TN_ACT_TANH, d, 1, 1.7, 0.4, 0.0);
    double K[12], T[12], Ks[16], Ts[16];
    tn_ctx *ctx;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    TN_CK(ctx, tni_analytic_mlp(ctx, &spec, x1, n1, x2, n2, K, T));
    TN_CK(ctx, tni_analytic_mlp(ctx, &spec, x1, n1, NULL, 0, Ks, Ts));
    for (size_t i = 0; i < n1; i++) {
        for (size_t j = 0; j < n2; j++) {
            const double ref = 1.7 * 1.7 * tu_dot(x1 + i * d, x2 + j * d, d) / d + 0.16;
            ck_assert_double_eq_tol(K[i * n2 + j], ref, 1e-14 * 4);
            ck_assert(T[i * n2 + j] == K[i * n2 + j]);
        }
        for (size_t j = 0; j < n1; j++) {
            const double ref = 1.7 * 1.7 * tu_dot(x1 + i * d, x1 + j * d, d) / d + 0.16;
            ck_assert_double_eq_tol(Ks[i * n1 + j], ref, 1e-14 * 4);
            ck_assert(Ts[i * n1 + j] == Ks[i * n1 + j]);
        }
    }
    free(x1), free(x2);
    tn_ctx_free(ctx);
}
END_TEST

/* A zero input row: with sigma_b = 0 its pre-activations are exactly 0 at
 * layer 1 (a degenerate variance); no NaN, and the values are those of
 * u = 0: E[phi(0) phi(v)] and E[phi'(0) phi'(v)] (the brute force gives
 * exactly that when s11 = 0, with the layers' relu'(0) = 0, leaky'(0) =
 * slope).  With sigma_b > 0 the variance is positive and the usual forms
 * apply; both against the reference recursion.  _i: the activation. */
START_TEST(zero_input_row)
{
    const tn_activation act = (tn_activation)_i;
    const size_t n = 3, d = 2;
    const double x[6] = {0.0, 0.0, 0.7, -0.4, 0.2, 0.9};
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        const tni_mlp_spec spec = spec_of(act, d, 3, 1.2, with_bias ? 0.3 : 0.0, 0.1);
        double K[9], T[9], Kr[9], Tr[9];
        tn_ctx *ctx;
        ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
        TN_CK(ctx, tni_analytic_mlp(ctx, &spec, x, n, NULL, 0, K, T));
        ck_assert(tni_all_finite(K, 9) && tni_all_finite(T, 9));
        reference_kernels(&spec, x, n, Kr, Tr);
        ck_assert_msg(tu_rel_err(K, Kr, 9, 1e-3) < 1e-11 && tu_rel_err(T, Tr, 9, 1e-3) < 1e-11,
                      "%s bias %d: %.3g %.3g", tu_act_names[act], with_bias,
                      tu_rel_err(K, Kr, 9, 1e-3), tu_rel_err(T, Tr, 9, 1e-3));
        /* sigma_w = sigma_b = 0: everything is 0 except phi'(0) terms, no NaN. */
        const tni_mlp_spec zero = spec_of(act, d, 3, 0.0, 0.0, 0.1);
        TN_CK(ctx, tni_analytic_mlp(ctx, &zero, x, n, x, n, K, T));
        ck_assert(tni_all_finite(K, 9) && tni_all_finite(T, 9));
        tn_ctx_free(ctx);
    }
}
END_TEST

/*---------------------------------------------------------------------
 * Errors
 *-------------------------------------------------------------------*/

static void expect_error(tn_ctx *ctx, tn_status got, tn_status want)
{
    ck_assert_msg(got == want, "status %s, wanted %s", tn_status_string(got),
                  tn_status_string(want));
    ck_assert_msg(strncmp(tn_ctx_errmsg(ctx), "tn_ntk_analytic: ", 17) == 0, "message '%s'",
                  tn_ctx_errmsg(ctx));
}

START_TEST(invalid_arguments_are_refused)
{
    tn_ctx *ctx;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    const double x[4] = {1, 2, 3, 4};
    double K[4], T[4];
    tni_mlp_spec s = spec_of(TN_ACT_RELU, 2, 2, 1.0, 0.1, 0.0);
    expect_error(ctx, tni_analytic_mlp(ctx, NULL, x, 2, NULL, 0, K, T), TN_E_INVALID_ARG);
    expect_error(ctx, tni_analytic_mlp(ctx, &s, NULL, 2, NULL, 0, K, T), TN_E_INVALID_ARG);
    expect_error(ctx, tni_analytic_mlp(ctx, &s, x, 0, NULL, 0, K, T), TN_E_INVALID_ARG);
    expect_error(ctx, tni_analytic_mlp(ctx, &s, x, 2, x, 0, K, T), TN_E_INVALID_ARG);
    s.depth = 0;
    expect_error(ctx, tni_analytic_mlp(ctx, &s, x, 2, NULL, 0, K, T), TN_E_INVALID_ARG);
    s.depth = 2, s.d = 0;
    expect_error(ctx, tni_analytic_mlp(ctx, &s, x, 2, NULL, 0, K, T), TN_E_INVALID_ARG);
    s.d = 2, s.sigma_w = NAN;
    expect_error(ctx, tni_analytic_mlp(ctx, &s, x, 2, NULL, 0, K, T), TN_E_INVALID_ARG);
    s.sigma_w = 1.0, s.sigma_b = INFINITY;
    expect_error(ctx, tni_analytic_mlp(ctx, &s, x, 2, NULL, 0, K, T), TN_E_INVALID_ARG);
    s.sigma_b = -0.5;
    expect_error(ctx, tni_analytic_mlp(ctx, &s, x, 2, NULL, 0, K, T), TN_E_INVALID_ARG);
    s.sigma_b = 0.1, s.act = (tn_activation)99;
    expect_error(ctx, tni_analytic_mlp(ctx, &s, x, 2, NULL, 0, K, T), TN_E_UNSUPPORTED);
    s.act = TN_ACT_LEAKY_RELU, s.slope = NAN;
    expect_error(ctx, tni_analytic_mlp(ctx, &s, x, 2, NULL, 0, K, T), TN_E_INVALID_ARG);
    s.slope = 0.1;
    /* A non-finite input, and inputs whose kernel overflows: refused, the
     * outputs untouched. */
    const double bad[4] = {1, NAN, 3, 4}, huge[4] = {1e200, 0, 0, 1};
    for (size_t k = 0; k < 4; k++) K[k] = T[k] = 42.0;
    expect_error(ctx, tni_analytic_mlp(ctx, &s, bad, 2, NULL, 0, K, T), TN_E_INVALID_ARG);
    expect_error(ctx, tni_analytic_mlp(ctx, &s, x, 2, huge, 2, K, T), TN_E_INVALID_ARG);
    s.act = TN_ACT_TANH;
    expect_error(ctx, tni_analytic_mlp(ctx, &s, huge, 2, NULL, 0, K, T), TN_E_INVALID_ARG);
    for (size_t k = 0; k < 4; k++) ck_assert(K[k] == 42.0 && T[k] == 42.0);
    /* Nothing requested: nothing to do. */
    TN_CK(ctx, tni_analytic_mlp(ctx, &s, x, 2, NULL, 0, NULL, NULL));
    tn_ctx_free(ctx);
}
END_TEST

/* Every allocation fails in turn: TN_E_NOMEM with a message, outputs
 * untouched (all allocation happens before the first write); then the
 * call succeeds with the same result as an undisturbed one. */
START_TEST(allocation_failures_leave_outputs_untouched)
{
    const tn_activation act = _i ? TN_ACT_GELU : TN_ACT_RELU;
    const size_t n1 = 3, n2 = 2, d = 3;
    double *x1 = tu_random(n1 * d, 3, 1.0), *x2 = tu_random(n2 * d, 4, 1.0);
    const tni_mlp_spec spec = spec_of(act, d, 3, 1.0, 0.1, 0.0);
    tn_ctx *ctx;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    double Kref[6], Tref[6], K[9], T[9];
    TN_CK(ctx, tni_analytic_mlp(ctx, &spec, x1, n1, x2, n2, Kref, Tref));
    for (int x2null = 0; x2null < 2; x2null++) {
        for (long k = 1;; k++) {
            for (size_t e = 0; e < 9; e++) K[e] = T[e] = -7.0;
            tni_ctx_fail_alloc_after(ctx, k);
            const tn_status st = tni_analytic_mlp(ctx, &spec, x1, n1, x2null ? NULL : x2,
                                                  x2null ? 0 : n2, K, x2null ? NULL : T);
            tni_ctx_fail_alloc_after(ctx, 0);
            if (st == TN_OK) break;
            expect_error(ctx, st, TN_E_NOMEM);
            for (size_t e = 0; e < 9; e++) ck_assert(K[e] == -7.0 && T[e] == -7.0);
            ck_assert(k < 100);
        }
        if (!x2null) {
            ck_assert(memcmp(K, Kref, sizeof Kref) == 0);
            ck_assert(memcmp(T, Tref, sizeof Tref) == 0);
        }
    }
    free(x1), free(x2);
    tn_ctx_free(ctx);
}
END_TEST

/*---------------------------------------------------------------------
 * Finite networks approach the analytic kernels
 *-------------------------------------------------------------------*/

enum { MC_N = 3, MC_D = 4 };

static const double mc_x[MC_N * MC_D] = {0.9, -0.4, 0.3, 1.1, 0.5, 0.8, -0.7, 0.2,
                                         1.0, -0.3, 0.2, 0.9};

static tn_net *mc_net(tn_ctx *ctx, tn_activation act, double sw, double sb, size_t width,
                      size_t outputs, uint64_t seed)
{
    size_t d = MC_D;
    tn_net *net = NULL;
    TN_CK(ctx, tn_net_create(ctx, &d, 1, &net));
    TN_CK(ctx, tn_net_add_dense(net, width));
    TN_CK(ctx, tn_net_add_activation(net, act));
    TN_CK(ctx, tn_net_add_dense(net, width));
    TN_CK(ctx, tn_net_add_activation(net, act));
    if (outputs) TN_CK(ctx, tn_net_add_dense(net, outputs));   /* else: the features */
    TN_CK(ctx, tn_net_set(net, TN_NET_PARAMETERIZATION, TN_PARAM_NTK));
    TN_CK(ctx, tn_net_set(net, TN_NET_SIGMA_W, sw));
    TN_CK(ctx, tn_net_set(net, TN_NET_SIGMA_B, sb));
    TN_CK(ctx, tn_net_init(net, seed));
    return net;
}

static double frob_rel(const double *a, const double *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num / den);
}

/* Least-squares slope of log err against log width. */
static double loglog_slope(const double *w, const double *err, int n)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0;
    for (int i = 0; i < n; i++) mx += log(w[i]) / n, my += log(err[i]) / n;
    for (int i = 0; i < n; i++) {
        sxy += (log(w[i]) - mx) * (log(err[i]) - my);
        sxx += (log(w[i]) - mx) * (log(w[i]) - mx);
    }
    return sxy / sxx;
}

#define MC_SEEDS 16
static const double mc_widths[3] = {64, 256, 1024};

/* Empirical kernels of one random net at width n:
 *   NNGP: Sigma^3 = sigma_w^2 / n <phi(z^2(x)), phi(z^2(x'))> + sigma_b^2, from
 *         the forward pass of the net cut after its second activation;
 *   NTK:  Theta(x, x') = <df(x)/dtheta, df(x')/dtheta> for the one output of
 *         the full net, each gradient one tn_net_vjp of a single row.
 * Both fluctuate around the analytic kernel by O(1/sqrt(n)) (the bias is
 * O(1/n)).  The statistic is the RMS over MC_SEEDS = 16 nets of the
 * relative Frobenius error (9 entries, 6 distinct); its own relative
 * spread is ~10%, so the fitted slope of log error against log width
 * (expected -0.5) has a standard deviation of ~0.06: the window
 * [-0.8, -0.2] is about +-5 sigma.  And err(1024) must be below err(64) / 2
 * (expected / 4). */
START_TEST(empirical_kernels_approach_analytic_as_width_grows)
{
    const tn_activation act = _i ? TN_ACT_RELU : TN_ACT_TANH;
    const double sw = _i ? sqrt(2.0) : 1.4, sb = 0.2;
    tn_ctx *ctx;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    const tni_mlp_spec spec = spec_of(act, MC_D, 3, sw, sb, 0.0);
    double K[MC_N * MC_N], T[MC_N * MC_N];
    TN_CK(ctx, tni_analytic_mlp(ctx, &spec, mc_x, MC_N, NULL, 0, K, T));

    double errK[3], errT[3];
    for (int wi = 0; wi < 3; wi++) {
        const size_t width = (size_t)mc_widths[wi];
        double sK = 0.0, sT = 0.0;
        for (uint64_t seed = 1; seed <= MC_SEEDS; seed++) {
            double Ke[MC_N * MC_N], Te[MC_N * MC_N];
            tn_net *feat = mc_net(ctx, act, sw, sb, width, 0, seed);
            double *phi = malloc(MC_N * width * sizeof(double));
            TN_CK(ctx, tn_net_forward(feat, mc_x, MC_N, phi));
            for (size_t i = 0; i < MC_N; i++)
                for (size_t j = 0; j < MC_N; j++)
                    Ke[i * MC_N + j] =
                        sw * sw * tu_dot(phi + i * width, phi + j * width, width) / width + sb * sb;
            sK += pow(frob_rel(Ke, K, MC_N * MC_N), 2);
            free(phi);
            tn_net_free(feat);

            tn_net *net = mc_net(ctx, act, sw, sb, width, 1, 1000 + seed);
            const size_t P = tn_net_num_params(net);
            double *g = malloc(MC_N * P * sizeof(double));
            const double one = 1.0;
            for (size_t i = 0; i < MC_N; i++)
                TN_CK(ctx, tn_net_vjp(net, mc_x + i * MC_D, 1, &one, g + i * P));
            for (size_t i = 0; i < MC_N; i++)
                for (size_t j = 0; j < MC_N; j++) Te[i * MC_N + j] = tu_dot(g + i * P, g + j * P, P);
            sT += pow(frob_rel(Te, T, MC_N * MC_N), 2);
            free(g);
            tn_net_free(net);
        }
        errK[wi] = sqrt(sK / MC_SEEDS);
        errT[wi] = sqrt(sT / MC_SEEDS);
    }
    const double slopeK = loglog_slope(mc_widths, errK, 3), slopeT = loglog_slope(mc_widths, errT, 3);
    if (verbose())
        printf("%s: NNGP rms error %.3g %.3g %.3g (slope %.2f); NTK %.3g %.3g %.3g (slope %.2f)\n",
               tu_act_names[act], errK[0], errK[1], errK[2], slopeK, errT[0], errT[1], errT[2],
               slopeT);
    ck_assert_msg(slopeK > -0.8 && slopeK < -0.2 && errK[2] < errK[0] / 2,
                  "NNGP errors %.3g %.3g %.3g slope %.2f", errK[0], errK[1], errK[2], slopeK);
    ck_assert_msg(slopeT > -0.8 && slopeT < -0.2 && errT[2] < errT[0] / 2,
                  "NTK errors %.3g %.3g %.3g slope %.2f", errT[0], errT[1], errT[2], slopeT);
    tn_ctx_free(ctx);
}
END_TEST

/* The output covariance over random initializations converges to the NNGP:
 * the mean of f_c(x) f_c(x') over S = seeds x outputs samples estimates
 * Sigma^3 with standard error sqrt((K_xx K_x'x' + K_xx'^2) / S) for Gaussian
 * outputs (the outputs of one net share its features, which adds O(1/width)
 * to the variance: negligible at width 256).  Each of the 6 entries must be
 * within 4.5 standard errors plus the O(1/width) bias (~2/width relative):
 * a chance failure needs a > 4.5 sigma deviation, p < 1e-4 for 6 entries. */
START_TEST(output_covariance_over_seeds_converges_to_nngp)
{
    const tn_activation act = _i ? TN_ACT_ERF : TN_ACT_GELU;
    const double sw = 1.3, sb = 0.2;
    const size_t width = 256, outputs = 16, seeds = 120, S = seeds * outputs;
    tn_ctx *ctx;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    const tni_mlp_spec spec = spec_of(act, MC_D, 3, sw, sb, 0.0);
    double K[MC_N * MC_N], Ke[MC_N * MC_N] = {0}, f[MC_N * 16];
    TN_CK(ctx, tni_analytic_mlp(ctx, &spec, mc_x, MC_N, NULL, 0, K, NULL));
    for (uint64_t seed = 1; seed <= seeds; seed++) {
        tn_net *net = mc_net(ctx, act, sw, sb, width, outputs, 7000 + seed);
        TN_CK(ctx, tn_net_forward(net, mc_x, MC_N, f));
        for (size_t i = 0; i < MC_N; i++)
            for (size_t j = 0; j < MC_N; j++)
                for (size_t c = 0; c < outputs; c++)
                    Ke[i * MC_N + j] += f[i * outputs + c] * f[j * outputs + c] / (double)S;
        tn_net_free(net);
    }
    double worst = 0.0;
    for (size_t i = 0; i < MC_N; i++)
        for (size_t j = 0; j < MC_N; j++) {
            const double kij = K[i * MC_N + j];
            const double se = sqrt((K[i * MC_N + i] * K[j * MC_N + j] + kij * kij) / (double)S);
            const double z = (fabs(Ke[i * MC_N + j] - kij) - 2.0 / width * fabs(kij)) / se;
            worst = fmax(worst, z);
        }
    if (verbose()) printf("%s: output covariance, worst deviation %.2f standard errors\n",
                          tu_act_names[act], worst);
    ck_assert_msg(worst < 4.5, "%s: %.2f standard errors", tu_act_names[act], worst);
    tn_ctx_free(ctx);
}
END_TEST

int main(void)
{
    if (verbose()) setvbuf(stdout, NULL, _IONBF, 0);   /* forked tests that fail lose buffers */
    Suite *s = suite_create("analytic");
    TCase *rules = tcase_create("rules");
    tcase_add_test(rules, gauss_hermite_rules_are_exact_on_polynomials);
    suite_add_tcase(s, rules);
    TCase *duals = tcase_create("duals");
    tcase_set_timeout(duals, 120);
    tcase_add_loop_test(duals, closed_forms_match_brute_force, 0, 6);
    tcase_add_loop_test(duals, quadrature_activations_match_brute_force, 0, 4);
    tcase_add_loop_test(duals, large_variances_degrade_gracefully, 0, 4);
    tcase_add_test(duals, arccosine_matches_libm);
    tcase_add_test(duals, relu_rows_equal_single_pairs);
    suite_add_tcase(s, duals);
    TCase *recursion = tcase_create("recursion");
    tcase_set_timeout(recursion, 120);
    tcase_add_loop_test(recursion, depth3_recursion_matches_independent_implementation, 0, 8);
    tcase_add_loop_test(recursion, adaptive_expansions_agree_with_pairs_alone, 0, 5);
    tcase_add_loop_test(recursion, zero_input_row, 0, 8);
    suite_add_tcase(s, recursion);
    TCase *structure = tcase_create("structure");
    tcase_add_loop_test(structure, symmetric_and_explicit_x2_agree, 0, 8);
    tcase_add_test(structure, depth_one_is_the_linear_kernel);
    tcase_add_test(structure, invalid_arguments_are_refused);
    tcase_add_loop_test(structure, allocation_failures_leave_outputs_untouched, 0, 2);
    suite_add_tcase(s, structure);
    TCase *width = tcase_create("finite width");
    tcase_set_timeout(width, 120);
    tcase_add_loop_test(width, empirical_kernels_approach_analytic_as_width_grows, 0, 2);
    tcase_add_loop_test(width, output_covariance_over_seeds_converges_to_nngp, 0, 2);
    suite_add_tcase(s, width);
    return tu_run(s);
}
