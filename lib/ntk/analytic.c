/* analytic.c -- the infinite-width NNGP and NTK of an MLP under NTK
 * parameterization (MATH.md §5; the recursion is in analytic.h).
 *
 * Method.
 *   Layer 1 is the input Gram matrix, one BLAS call (syrk when x2 is x1,
 *   then mirrored; gemm otherwise).  Each later layer maps every pair
 *   (i, j) through the "dual" of the activation,
 *       E[phi(u) phi(v)],  E[phi'(u) phi'(v)],  (u, v) ~ N(0, [[S11, S12], [S12, S22]]),
 *   which needs the self-variances S11 = Sigma^(l-1)(x_i, x_i) and
 *   S22 = Sigma^(l-1)(x'_j, x'_j): they follow their own 1-D recursion and
 *   are computed first, for every layer, before any output is written (so an
 *   overflow is refused without leaving a half-written result, and the pair
 *   loop can update Sigma and Theta in place).
 *   - identity, ReLU, leaky ReLU, erf: closed forms (closed_form_dual), exact
 *     to rounding.  Leaky ReLU with slope a: phi = a x + (1 - a) relu(x), and
 *     E[u relu(v)] = S12 / 2 by the symmetry (u, v) -> (-u, -v), so
 *       E[phi phi]   = a^2 S12 + 2 a (1 - a) S12 / 2 + (1 - a)^2 E_relu[phi phi]
 *                    = a S12 + (1 - a)^2 E_relu[phi phi],
 *       E[phi' phi'] = a^2 + a (1 - a) (P(u > 0) + P(v > 0)) + (1 - a)^2 P(u > 0, v > 0)
 *                    = a + (1 - a)^2 (pi - t) / (2 pi).
 *   - tanh, sigmoid, GELU, softplus: Mehler series over per-example
 *     Gauss-Hermite coefficients (quadrature.h), O(K) per pair.
 *
 * Degenerate variances.  S11 = 0 (a zero input with sigma_b = 0) means
 * u = 0 exactly, so E[phi(u) g(v)] = phi(0) E[g(v)] and
 * E[phi'(u) g(v)] = phi'(0) E[g(v)], with phi'(0) the value the layers use
 * (relu'(0) = 0, leaky'(0) = slope): the kernel an infinitely wide network
 * built by this library actually has.  For the smooth activations and erf
 * this is also the limit S11 -> 0; for the ReLU family E[phi' phi'] is
 * discontinuous at S11 = 0 (its limit depends on the direction) and the
 * definition above is the one consistent with the network.
 *
 * Accuracy (measured by tests/test_analytic.c against an independent polar
 * Gauss-Legendre integrator; tables in docs/ntk_analytic.md), relative to
 * sqrt(E[phi(u)^2] E[phi(v)^2]), i.e. to the diagonal scale:
 *   - Closed forms: rounding, ~3e-15.  ReLU and leaky ReLU's
 *     E[phi' phi'] = (pi - acos rho) / (2 pi) has infinite slope at rho = 1,
 *     so an S12 rounded by a few ulps there (a duplicate input in x1 and x2
 *     whose BLAS dot product rounds differently from its self-variance)
 *     moves Theta by up to ~1e-8: the conditioning of the kernel, not of
 *     the formula.  x2 = NULL, and exact dot products, give rho = 1 exactly.
 *   - Mehler series (truncation target 1e-13): worst measured 1e-13 over
 *     rho in [-1, 1] including rho -> +-1 for distinct inputs, for
 *     variances up to 30 (sigmoid, GELU, softplus) and up to 3 (tanh).
 *     Larger variances sharpen phi' beyond what the 1024-node rule
 *     resolves, and near rho = 1 the 512-term series stops short: tanh
 *     E[phi' phi'] 6e-12 at variance 5, 3e-8 at 10, 2e-4 at 30; sigmoid
 *     3e-5, GELU 1.4e-4, softplus 6e-8 at 100.  E[phi phi] (the NNGP) is
 *     100-1000 times better, and so is every pair with rho <= 0.9.
 */
#include "analytic.h"
#include "quadrature.h"
#include "../kernel/blas.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define WHO "tn_ntk_analytic"

static const double pi = 3.14159265358979323846;

/* Diagonal kernel values above this are refused: pair values are bounded by
 * the diagonals (Cauchy-Schwarz), and products of two of them must stay in
 * double range inside the closed forms. */
#define KERNEL_LIMIT 1e150

/* Truncation target of the Mehler series (quadrature.h). */
#define MEHLER_TOL 1e-13

static int has_closed_form(tn_activation act)
{
    return act == TN_ACT_IDENTITY || act == TN_ACT_RELU || act == TN_ACT_LEAKY_RELU ||
           act == TN_ACT_ERF;
}

/* E[phi(u) phi(v)], E[phi'(u) phi'(v)] for the closed-form activations. */
static void closed_form_dual(tn_activation act, double slope, double s11, double s22, double s12,
                             double *eff, double *edd)
{
    switch (act) {
    case TN_ACT_RELU:
    case TN_ACT_LEAKY_RELU: {
        const double a = act == TN_ACT_RELU ? 0.0 : slope;   /* phi'(0) and phi'(x < 0) */
        if (s11 > 0.0 && s22 > 0.0) {
            const double c = tni_correlation(s11, s22, s12);
            const double t = acos(c), sin_t = sqrt((1.0 - c) * (1.0 + c));
            /* sqrt of the product, as in tni_correlation: exactly q for
             * s11 = s22 = q (KERNEL_LIMIT keeps the product in range). */
            const double prod = s11 * s22;
            const double sd = prod >= DBL_MIN ? sqrt(prod) : sqrt(s11) * sqrt(s22);
            const double relu_ff = sd / (2.0 * pi) * (sin_t + (pi - t) * c);
            const double relu_dd = (pi - t) / (2.0 * pi);
            *eff = a * s12 + (1.0 - a) * (1.0 - a) * relu_ff;
            *edd = a + (1.0 - a) * (1.0 - a) * relu_dd;
        } else {
            /* u = 0 or v = 0 exactly: phi = 0 there and phi' = a, and
             * E[phi'(v)] = (1 + a) / 2 for the other one. */
            *eff = 0.0;
            *edd = (s11 > 0.0 || s22 > 0.0) ? a * (1.0 + a) / 2.0 : a * a;
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

/* E[phi(u)^2], E[phi'(u)^2] for u ~ N(0, q): the pair formula at
 * S11 = S22 = S12 = q, where tni_correlation gives exactly 1 (acos(1) = 0,
 * no rounding).  Using the same formula keeps an input paired with itself
 * in x1 and x2 bit-identical to the diagonal of K(x1, x1). */
static void closed_form_self(tn_activation act, double slope, double q, double *ef2, double *ed2)
{
    closed_form_dual(act, slope, q, q, q, ef2, ed2);
}

static int kernel_in_range(double v)
{
    return v >= 0.0 && v <= KERNEL_LIMIT;    /* false for NaN */
}

/* Self-variances of every row of x (n x d) at every layer, var[(l-1) n + i]
 * = Sigma^l(x_i, x_i), and Theta^L(x_i, x_i) in theta_diag (if not NULL).
 * Returns 0 if a value leaves [0, KERNEL_LIMIT] (or is NaN). */
static int self_kernels(const tni_mlp_spec *spec, tni_mehler *m, const double *x, size_t n,
                        double *var, double *theta_diag)
{
    const double sw2 = spec->sigma_w * spec->sigma_w, sb2 = spec->sigma_b * spec->sigma_b;
    const double cw = sw2 / (double)spec->d;
    for (size_t i = 0; i < n; i++) {
        const double *xi = x + i * spec->d;
        double ss = 0.0;
        for (size_t k = 0; k < spec->d; k++) ss += xi[k] * xi[k];
        double v = cw * ss + sb2, th = v;
        if (!kernel_in_range(v)) return 0;
        var[i] = v;
        for (size_t l = 1; l < spec->depth; l++) {
            double ef2, ed2;
            if (m)
                tni_mehler_moments(m, v, &ef2, theta_diag ? &ed2 : NULL);
            else
                closed_form_self(spec->act, spec->slope, v, &ef2, &ed2);
            v = sw2 * ef2 + sb2;
            if (!kernel_in_range(v)) return 0;
            var[l * n + i] = v;
            if (theta_diag) {
                th = v + sw2 * ed2 * th;
                if (!kernel_in_range(th)) return 0;
            }
        }
        if (theta_diag) theta_diag[i] = th;
    }
    return 1;
}

/* The largest |rho| each row of x1 (and of x2) meets at this layer,
 * excluding the pairs tni_mehler_pair integrates directly (|rho| ~ 1) and,
 * when x2 is x1, the diagonal. */
static void largest_correlations(const double *S, size_t n1, size_t n2, int sym,
                                 const double *var1, const double *var2, double *rmax1,
                                 double *rmax2)
{
    for (size_t i = 0; i < n1; i++) rmax1[i] = 0.0;
    if (!sym)
        for (size_t j = 0; j < n2; j++) rmax2[j] = 0.0;
    for (size_t i = 0; i < n1; i++) {
        const size_t jend = sym ? i : n2;
        for (size_t j = 0; j < jend; j++) {
            const double r = fabs(tni_correlation(var1[i], var2[j], S[i * n2 + j]));
            if (r >= TNI_MEHLER_RHO_DIRECT) continue;
            if (r > rmax1[i]) rmax1[i] = r;
            if (sym) {
                if (r > rmax1[j]) rmax1[j] = r;
            } else if (r > rmax2[j]) {
                rmax2[j] = r;
            }
        }
    }
}

/* The Mehler expansions of every row of x1 (e1) and x2 (e2) at one layer.
 * Each row first gets the smallest rule its own largest correlation needs;
 * then every pair whose truncation bound is not met within the shorter of
 * its two expansions raises that row to the other's rule (one pass
 * suffices: a raised row meets its own criterion at the old level already,
 * so raising never breaks a pair that was met). */
static void expand_layer(tni_mehler *m, const double *S, size_t n1, size_t n2, int sym,
                         const double *v1, const double *v2, double *rmax1, double *rmax2,
                         int *need, tni_mehler_expansion *e1, tni_mehler_expansion *e2)
{
    const size_t rows = sym ? n1 : n1 + n2;
    int *need1 = need, *need2 = sym ? need : need + n1;
    largest_correlations(S, n1, n2, sym, v1, v2, rmax1, rmax2);
    for (size_t i = 0; i < n1; i++) tni_mehler_expand(m, v1[i], rmax1[i], 0, &e1[i]);
    if (!sym)
        for (size_t j = 0; j < n2; j++) tni_mehler_expand(m, v2[j], rmax2[j], 0, &e2[j]);
    for (size_t r = 0; r < rows; r++) need[r] = 0;
    for (size_t i = 0; i < n1; i++) {
        const size_t jend = sym ? i : n2;
        for (size_t j = 0; j < jend; j++) {
            const tni_mehler_expansion *p = &e1[i], *q = &e2[j];
            if (tni_mehler_pair_converges(m, p, q, S[i * n2 + j])) continue;
            if (p->level < q->level) {
                if (q->level > need1[i]) need1[i] = q->level;
            } else if (p->level > need2[j]) {
                need2[j] = p->level;
            }
        }
    }
    for (size_t i = 0; i < n1; i++)
        if (need1[i] > e1[i].level) tni_mehler_expand(m, v1[i], rmax1[i], need1[i], &e1[i]);
    if (!sym)
        for (size_t j = 0; j < n2; j++)
            if (need2[j] > e2[j].level) tni_mehler_expand(m, v2[j], rmax2[j], need2[j], &e2[j]);
}

tn_status tni_analytic_mlp(tn_ctx *ctx, const tni_mlp_spec *spec, const double *x1, size_t n1,
                           const double *x2, size_t n2, double *nngp, double *ntk)
{
    if (spec == NULL || x1 == NULL)
        return tni_fail(ctx, TN_E_INVALID_ARG, WHO ": spec and x1 must not be NULL");
    if (n1 == 0 || (x2 != NULL && n2 == 0))
        return tni_fail(ctx, TN_E_INVALID_ARG, WHO ": no inputs (n1 = %zu, n2 = %zu)", n1, n2);
    if (spec->d == 0) return tni_fail(ctx, TN_E_INVALID_ARG, WHO ": input size 0");
    if (spec->depth < 1)
        return tni_fail(ctx, TN_E_INVALID_ARG, WHO ": depth must be >= 1 dense layer");
    if (!isfinite(spec->sigma_w) || !isfinite(spec->sigma_b) || spec->sigma_w < 0.0 ||
        spec->sigma_b < 0.0)
        return tni_fail(ctx, TN_E_INVALID_ARG,
                        WHO ": sigma_w and sigma_b must be finite and >= 0 (got %g, %g)",
                        spec->sigma_w, spec->sigma_b);
    if ((int)spec->act < (int)TN_ACT_IDENTITY || (int)spec->act > (int)TN_ACT_SOFTPLUS)
        return tni_fail(ctx, TN_E_UNSUPPORTED,
                        WHO ": activation %d has no infinite-width kernel", (int)spec->act);
    if (spec->act == TN_ACT_LEAKY_RELU && !isfinite(spec->slope))
        return tni_fail(ctx, TN_E_INVALID_ARG, WHO ": leaky ReLU slope %g is not finite",
                        spec->slope);
    if (nngp == NULL && ntk == NULL) return TN_OK;

    const int sym = x2 == NULL;
    if (sym) {
        x2 = x1;
        n2 = n1;
    }
    const size_t L = spec->depth, d = spec->d;
    const int quad = !has_closed_form(spec->act) && L > 1;
    const int threads = spec->threads > 0 ? spec->threads : 1;
    const double sw2 = spec->sigma_w * spec->sigma_w, sb2 = spec->sigma_b * spec->sigma_b;
    const double cw = sw2 / (double)d;
    size_t nn, n_rows = sym ? n1 : n1 + n2, nvar;
    if (tni_mul_overflow(n1, n2, &nn) || tni_mul_overflow(L, n_rows, &nvar))
        return tni_fail(ctx, TN_E_NOMEM, WHO ": %zu x %zu kernel overflows size_t", n1, n2);

    /* Every allocation happens here, before anything is written. */
    tn_status st = TN_E_NOMEM;
    tni_mehler mehler;
    int mehler_ready = 0;
    tni_mehler_expansion *exps = NULL;
    double *var = NULL, *theta_diag = NULL, *S_own = NULL, *exp_store = NULL, *rmax = NULL;
    int *need = NULL;
    /* Sigma is needed to compute Theta even when only the NTK is asked for
     * (except at depth 1, where Theta = Sigma). */
    double *S = nngp, *T = ntk;
    var = tni_alloc_or_fail(ctx, WHO, nvar, sizeof(double));
    theta_diag = tni_alloc_or_fail(ctx, WHO, n_rows, sizeof(double));
    if (var == NULL || theta_diag == NULL) goto done;
    if (S == NULL && L > 1) {
        S = S_own = tni_alloc_or_fail(ctx, WHO, nn, sizeof(double));
        if (S == NULL) goto done;
    }
    if (quad) {
        if ((st = tni_mehler_init(ctx, WHO, &mehler, spec->act, spec->slope, ntk != NULL,
                                  MEHLER_TOL)) != TN_OK)
            goto done;
        mehler_ready = 1;
        st = TN_E_NOMEM;
        exps = tni_alloc_or_fail(ctx, WHO, n_rows, sizeof *exps);
        exp_store = tni_alloc_or_fail(ctx, WHO, n_rows,
                                      tni_mehler_expansion_doubles(&mehler) * sizeof(double));
        rmax = tni_alloc_or_fail(ctx, WHO, n_rows, sizeof(double));
        need = tni_alloc_or_fail(ctx, WHO, n_rows, sizeof(int));
        if (exps == NULL || exp_store == NULL || rmax == NULL || need == NULL) goto done;
        const size_t stride = (size_t)TNI_MEHLER_KMAX + 1;
        for (size_t r = 0; r < n_rows; r++) {
            double *p = exp_store + r * tni_mehler_expansion_doubles(&mehler);
            exps[r].a = p;
            exps[r].log_tail_a = p + stride;
            exps[r].b = ntk ? p + 2 * stride : NULL;
            exps[r].log_tail_b = ntk ? p + 3 * stride : NULL;
        }
    }

    /* Self-kernels of every row at every layer; refuse overflow now. */
    double *var1 = var, *var2 = sym ? var : var + L * n1;
    double *th1 = theta_diag, *th2 = sym ? theta_diag : theta_diag + n1;
    if (!self_kernels(spec, quad ? &mehler : NULL, x1, n1, var1, ntk ? th1 : NULL) ||
        (!sym && !self_kernels(spec, quad ? &mehler : NULL, x2, n2, var2, ntk ? th2 : NULL))) {
        const int finite = tni_all_finite(x1, n1 * d) && (sym || tni_all_finite(x2, n2 * d));
        st = finite ? tni_fail(ctx, TN_E_INVALID_ARG,
                               WHO ": the kernel exceeds %g (inputs or sigma_w too large)",
                               KERNEL_LIMIT)
                    : tni_fail(ctx, TN_E_INVALID_ARG, WHO ": an input is not finite");
        goto done;
    }

    /* From here on nothing fails.  Layer 1: the input Gram matrix.  BLAS
     * gives the plain dot products; the scale and shift are applied here,
     * in the same arithmetic as self_kernels, so an input paired with itself
     * gets exactly its self-variance when the dot products are exact. */
    double *G = S ? S : T;
    if (sym) {
        tni_syrk_lower(threads, n1, d, 1.0, x1, d, 0.0, G, n1);
        for (size_t i = 0; i < n1; i++)
            for (size_t j = 0; j < i; j++) G[i * n1 + j] = cw * G[i * n1 + j] + sb2;
    } else {
        tni_gemm(threads, TNI_NOTRANS, TNI_TRANS, n1, n2, d, 1.0, x1, d, x2, d, 0.0, G, n2);
        for (size_t e = 0; e < nn; e++) G[e] = cw * G[e] + sb2;
        /* An input of x1 met again in x2 gets exactly its self-variance, as
         * on the diagonal of the symmetric case: the NTK's arccos is
         * ill-conditioned at correlation 1, and a GEMM kernel that sums in
         * another order than self_kernels (BLIS's skx kernels use FMA and
         * split the sum in blocks) would put ~1e-8 into the kernel. */
        for (size_t i = 0; i < n1; i++)
            for (size_t j = 0; j < n2; j++)
                if (var1[i] == var2[j] && fabs(G[i * n2 + j] - var1[i]) <= 1e-12 * var1[i] &&
                    memcmp(x1 + i * d, x2 + j * d, d * sizeof(double)) == 0)
                    G[i * n2 + j] = var1[i];
    }
    if (T && T != G) {
        if (sym) {
            for (size_t i = 0; i < n1; i++)
                memcpy(T + i * n1, G + i * n1, i * sizeof(double));
        } else {
            memcpy(T, G, nn * sizeof(double));
        }
    }

    tni_mehler_expansion *e1 = exps, *e2 = exps && !sym ? exps + n1 : exps;
    double *rmax1 = rmax, *rmax2 = rmax && !sym ? rmax + n1 : rmax;
    for (size_t l = 1; l < L; l++) {
        /* Variances of the previous layer (Sigma^l in 1-based terms). */
        const double *v1 = var1 + (l - 1) * n1, *v2 = var2 + (l - 1) * n2;
        if (quad) expand_layer(&mehler, S, n1, n2, sym, v1, v2, rmax1, rmax2, need, e1, e2);
        for (size_t i = 0; i < n1; i++) {
            const size_t jend = sym ? i : n2;
            for (size_t j = 0; j < jend; j++) {
                const size_t ij = i * n2 + j;
                double eff, edd;
                if (quad)
                    tni_mehler_pair(&mehler, &e1[i], &e2[j], S[ij], &eff, T ? &edd : NULL);
                else
                    closed_form_dual(spec->act, spec->slope, v1[i], v2[j], S[ij], &eff, &edd);
                S[ij] = sw2 * eff + sb2;
                if (T) T[ij] = S[ij] + sw2 * edd * T[ij];
            }
        }
    }

    if (sym) {
        /* The diagonal from the self-kernels, then the upper triangle. */
        for (size_t i = 0; i < n1; i++) {
            if (nngp) nngp[i * n1 + i] = var1[(L - 1) * n1 + i];
            if (ntk) ntk[i * n1 + i] = th1[i];
        }
        if (nngp) tni_symmetrize_lower(n1, nngp, n1);
        if (ntk) tni_symmetrize_lower(n1, ntk, n1);
    }
    st = TN_OK;

done:
    if (mehler_ready) tni_mehler_free(&mehler);
    tni_free(exps);
    tni_free(exp_store);
    tni_free(rmax);
    tni_free(need);
    tni_free(S_own);
    tni_free(var);
    tni_free(theta_diag);
    return st;
}
