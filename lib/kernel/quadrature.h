/*
 * quadrature.h -- Gaussian expectations of the smooth activations (tanh,
 * sigmoid, GELU, softplus) for the infinite-width kernels (analytic.c).
 *
 * The kernel recursion needs, for every pair of examples at every layer,
 * E[f(u) f(v)] with (u, v) ~ N(0, [[S11, S12], [S12, S22]]) and f = phi or
 * phi'.  A 2-D product rule per pair costs n^2 activation evaluations per
 * pair; instead we use Mehler's formula.  Writing u = sqrt(S11) xi,
 * v = sqrt(S22) eta with corr(xi, eta) = rho = S12 / sqrt(S11 S22),
 *
 *     E[f(u) g(v)] = sum_k rho^k a_k b_k,
 *     a_k = E[f(sqrt(S11) xi) h_k(xi)],   b_k = E[g(sqrt(S22) eta) h_k(eta)],
 *
 * h_k = He_k / sqrt(k!) the orthonormal probabilists' Hermite polynomials.
 * The coefficients depend on one example's variance only: they are computed
 * once per example per layer by 1-D Gauss-Hermite quadrature
 * (tni_mehler_expand), and each pair costs one truncated series in rho
 * (tni_mehler_pair).  Parseval (sum_k a_k^2 = E[f^2]) gives the tail
 * T(K) = sum_{k>K} a_k^2 of every example, and Cauchy-Schwarz bounds the
 * truncation error after K terms by |rho|^(K+1) sqrt(T_a(K) T_b(K)); K is
 * chosen per pair as the smallest that puts this bound under
 * tol * sqrt(E[f(u)^2] E[g(v)^2]).  Accuracy: see analytic.c and
 * docs/ntk_analytic.md.
 */
#ifndef TNI_QUADRATURE_H
#define TNI_QUADRATURE_H

#include "../core/core.h"

/* Probabilists' Gauss-Hermite rule with n >= 1 nodes: sum_i w_i g(x_i)
 * approximates E[g(xi)], xi ~ N(0, 1), exactly for polynomials of degree
 * <= 2n - 1; the weights sum to 1.  Nodes ascending and exactly symmetric.
 * Golub-Welsch eigenvalues (implicit QL) polished by Newton on the
 * orthonormal recurrence; weights 1 / (n h_{n-1}(x_i)^2), computed in
 * logarithms so they keep full relative accuracy down to underflow.
 * log_w (may be NULL) receives log w_i, finite even where w_i underflows.
 * scratch: 3n + 1 doubles. */
void tni_gauss_hermite(size_t n, double *x, double *w, double *log_w, double *scratch);

/* phi(x) and phi'(x) exactly as the network layers compute them
 * (kernel/series.c), for every tn_activation.  slope: leaky ReLU. */
void tni_activation_value(tn_activation act, double slope, double x, double *phi, double *dphi);

/* Rules of 32, 64, ..., 1024 nodes; an example uses the smallest that
 * resolves it.  An n-node rule gives coefficients up to k = n/2 (see
 * quadrature.c for why), so at most TNI_MEHLER_KMAX + 1 coefficients. */
#define TNI_MEHLER_LEVELS 6
#define TNI_MEHLER_NMIN 32
#define TNI_MEHLER_NMAX (TNI_MEHLER_NMIN << (TNI_MEHLER_LEVELS - 1))
#define TNI_MEHLER_KMAX (TNI_MEHLER_NMAX / 2)

typedef struct tni_hermite_rule {
    size_t n;
    double *x;          /* nodes */
    double *w;          /* weights (sum 1); underflow to 0 at the extreme nodes */
    double *r;          /* w_i exp(x_i^2 / 4), the weight against Hermite functions */
    double *psi0;       /* exp(-x_i^2 / 4) = psi_0(x_i) */
    int ready;          /* built on first use: most calls need only small rules */
} tni_hermite_rule;

/* Workspace for one activation; one per call, nothing global. */
typedef struct tni_mehler {
    tn_activation act;
    double slope;
    int want_deriv;     /* also expand phi' (only the NTK needs it) */
    double tol;         /* target truncation bound, relative (see above) */
    tni_hermite_rule rule[TNI_MEHLER_LEVELS];
    double *block;      /* one allocation holding every array of this struct */
    double *f_cur, *d_cur, *f_next, *d_next;   /* phi, phi' at the nodes of two rules */
    double *psi_prev, *psi_cur, *c_f, *c_d;    /* recurrence state, weighted values */
    double *log_w, *gh_scratch;                /* for building rules */
} tni_mehler;

/* One example's expansion at one layer.  The arrays point into storage the
 * caller provides (tni_mehler_expansion_doubles() doubles each). */
typedef struct tni_mehler_expansion {
    double var, sd;     /* S(x, x) and its square root */
    double ef2, ed2;    /* E[phi(u)^2], E[phi'(u)^2], u ~ N(0, var) */
    double log_ef2, log_ed2;    /* their logarithms (-inf for 0), used per pair */
    size_t kmax;        /* coefficients 0..kmax are stored */
    int level;          /* the rule they came from */
    double *a, *log_tail_a;     /* phi:  a_k and log T(k), k = 0..kmax */
    double *b, *log_tail_b;     /* phi': the same (unused unless want_deriv) */
} tni_mehler_expansion;

/* Allocates the workspace (tni_alloc; the rules are filled lazily, so no
 * later call allocates).  Errors: TN_E_NOMEM, recorded in ctx as "who: ...". */
tn_status tni_mehler_init(tn_ctx *ctx, const char *who, tni_mehler *m, tn_activation act,
                          double slope, int want_deriv, double tol);
void tni_mehler_free(tni_mehler *m);

/* Doubles of storage one expansion needs. */
size_t tni_mehler_expansion_doubles(const tni_mehler *m);

/* E[phi(u)^2] and E[phi'(u)^2] (ed2 may be NULL), u ~ N(0, var), var >= 0,
 * by the smallest rule on which they agree with the next rule to 1e-14
 * (relative), or the largest rule. */
void tni_mehler_moments(tni_mehler *m, double var, double *ef2, double *ed2);

/* Expands phi (and phi') at variance var >= 0 into e, whose arrays must
 * already point at storage.  rho_max bounds |rho| over the pairs this
 * example will meet through tni_mehler_pair (excluding |rho| ~ 1, which that
 * function integrates directly); the rule is the smallest at or above
 * min_level that both resolves phi and reaches the truncation target at
 * rho_max: then rho_max^(K+1) T(K) <= tol E[f^2] for some stored K. */
void tni_mehler_expand(tni_mehler *m, double var, double rho_max, int min_level,
                       tni_mehler_expansion *e);

/* Whether the pair's truncation bound is met within the coefficients both
 * expansions store.  The per-example criterion does not ensure it when the
 * two came from different rules: the series stops at the shorter one, where
 * the longer one's tail may still be large.  The caller then re-expands
 * the example with the smaller rule at the other's level (at equal levels
 * the two criteria imply the pair bound, since |rho| <= both rho_max). */
int tni_mehler_pair_converges(const tni_mehler *m, const tni_mehler_expansion *p,
                              const tni_mehler_expansion *q, double s12);

/* E[phi(u) phi(v)] and E[phi'(u) phi'(v)] (edd may be NULL) for
 * Var u = p->var, Var v = q->var, Cov(u, v) = s12. */
void tni_mehler_pair(const tni_mehler *m, const tni_mehler_expansion *p,
                     const tni_mehler_expansion *q, double s12, double *eff, double *edd);

/* rho = s12 / sqrt(s11 s22) clamped into [-1, 1]; 0 if a variance is 0.
 * sqrt of the product (not the product of square roots) when it is in
 * range, so that s12 == s11 == s22 gives exactly 1 (sqrt(fl(q*q)) == q in
 * IEEE arithmetic): an input paired with itself is exactly correlated. */
double tni_correlation(double s11, double s22, double s12);

/* |rho| at or beyond which tni_mehler_pair integrates the pair directly at
 * rho = +-1 (1-D quadrature) instead of summing the series. */
#define TNI_MEHLER_RHO_DIRECT (1.0 - 1e-13)

#endif
