/* quadrature.c -- Gauss-Hermite rules and Mehler-series expectations of the
 * smooth activations (the method is described in quadrature.h; accuracy in
 * analytic.c and docs/ntk_analytic.md). */
#include "quadrature.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const double two_over_sqrt_pi = 1.12837916709551257390;   /* 2/sqrt(pi) */
static const double inv_sqrt_2pi = 0.39894228040143267794;       /* 1/sqrt(2 pi) */
static const double inv_sqrt2 = 0.70710678118654752440;

/*---------------------------------------------------------------------
 * Gauss-Hermite rules
 *-------------------------------------------------------------------*/

/* Eigenvalues of the symmetric tridiagonal matrix with diagonal d[0..n-1]
 * and off-diagonal e[0..n-2] (e[i] couples i and i+1; e[n-1] is scratch),
 * by the implicit QL method with Wilkinson shifts (no eigenvectors: the
 * weights come from the polynomials, which keeps their relative accuracy).
 * Results in d, unordered.  sqrt(a^2 + b^2) instead of hypot: the entries
 * here are at most ~4n, far from overflow, and hypot is several times
 * slower in this, the innermost loop of building a rule. */
static void tridiagonal_eigenvalues(size_t n, double *d, double *e)
{
    if (n == 0) return;
    e[n - 1] = 0.0;
    for (size_t l = 0; l < n; l++) {
        for (int iter = 0; iter < 100; iter++) {
            size_t m = l;
            for (; m + 1 < n; m++) {
                const double dd = fabs(d[m]) + fabs(d[m + 1]);
                if (fabs(e[m]) <= DBL_EPSILON * dd) break;
            }
            if (m == l) break;
            double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            double r = sqrt(g * g + 1.0);
            g = d[m] - d[l] + e[l] / (g + copysign(r, g));
            double s = 1.0, c = 1.0, p = 0.0;
            int deflated_early = 0;
            for (size_t i1 = m; i1-- > l;) {
                const double f = s * e[i1], b = c * e[i1];
                r = sqrt(f * f + g * g);
                e[i1 + 1] = r;
                if (r == 0.0) {             /* underflow: split the matrix here */
                    d[i1 + 1] -= p;
                    e[m] = 0.0;
                    deflated_early = 1;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i1 + 1] - p;
                r = (d[i1] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i1 + 1] = g + p;
                g = c * r - b;
            }
            if (deflated_early) continue;
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
}

/* h_{n-1}(x) and h_n(x) of the orthonormal recurrence
 * h_{k+1} = (x h_k - sqrt(k) h_{k-1}) / sqrt(k + 1), h_0 = 1, for NB
 * nodes at once (independent chains keep the pipeline full: one chain is a
 * serial dependency of multiply-subtract-multiply), returned as mantissas
 * hm1[], hn[] and log-scales: h = mantissa * exp(log_scale).  At the outer
 * nodes of a 1024-point rule h_n reaches e^{x^2/4} ~ e^{960}, beyond
 * double range, hence the rescaling.  sqrt_k[k] = sqrt(k) and
 * inv_sqrt_k[k] = 1/sqrt(k), k <= n. */
#define NB 4
static void hermite_pair(size_t n, const double *sqrt_k, const double *inv_sqrt_k,
                         const double *x, double *hm1, double *hn, double *log_scale)
{
    double prev[NB], cur[NB], ls[NB];
    for (int b = 0; b < NB; b++) prev[b] = 0.0, cur[b] = 1.0, ls[b] = 0.0;
    for (size_t k = 0; k < n; k++) {
        int big = 0;
        for (int b = 0; b < NB; b++) {
            const double next = (x[b] * cur[b] - sqrt_k[k] * prev[b]) * inv_sqrt_k[k + 1];
            prev[b] = cur[b];
            cur[b] = next;
            big |= fabs(next) > 1e100;
        }
        if (big) {
            for (int b = 0; b < NB; b++)
                if (fabs(cur[b]) > 1e100) {
                    cur[b] *= 1e-100;
                    prev[b] *= 1e-100;
                    ls[b] += 100.0 * log(10.0);
                }
        }
    }
    for (int b = 0; b < NB; b++) hm1[b] = prev[b], hn[b] = cur[b], log_scale[b] = ls[b];
}

static int compare_doubles(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void tni_gauss_hermite(size_t n, double *x, double *w, double *log_w, double *scratch)
{
    /* Golub-Welsch: the nodes are the eigenvalues of the Jacobi matrix J of
     * the recurrence x h_k = sqrt(k+1) h_{k+1} + sqrt(k) h_{k-1}.  J has a
     * zero diagonal, so J^2 splits into two tridiagonal blocks on the even
     * and the odd indices; the block of the indices k = n%2, n%2 + 2, ...,
     * n - 2 has the n/2 positive nodes' squares as eigenvalues:
     *   (J^2)_{k,k} = k + (k+1) = 2k + 1,   (J^2)_{k,k+2} = sqrt((k+1)(k+2)).
     * Half the size is a quarter of the QL work; the sign symmetry is exact
     * by construction, and odd n adds the node 0. */
    const size_t m = n / 2, k0 = n % 2;
    double *d = scratch, *e = scratch + n, *sqrt_k = scratch + 2 * n;
    for (size_t i = 0; i < m; i++) {
        const double k = (double)(k0 + 2 * i);
        d[i] = 2.0 * k + 1.0;
        e[i] = sqrt((k + 1.0) * (k + 2.0));
    }
    tridiagonal_eigenvalues(m, d, e);
    qsort(d, m, sizeof(double), compare_doubles);
    /* The positive nodes, ascending, into x[n - m ..]; e is free again and
     * becomes the table of 1/sqrt(k). */
    for (size_t i = 0; i < m; i++) x[n - m + i] = sqrt(fmax(d[i], 0.0));
    double *inv_sqrt_k = e;
    for (size_t k = 0; k <= n; k++) {
        sqrt_k[k] = sqrt((double)k);
        inv_sqrt_k[k] = k ? 1.0 / sqrt_k[k] : 0.0;
    }
    /* QL leaves an absolute error ~ eps * ||J^2|| ~ 4n eps in x^2; two
     * Newton steps on h_n (h_n' = sqrt(n) h_{n-1}) make each node accurate
     * relative to itself.  Then the weights, by Christoffel-Darboux at a
     * root of h_n: sum_{k<n} h_k^2 = n h_{n-1}^2, in logarithms.  Positive
     * half only, mirrored after, so the rule is exactly symmetric. */
    for (size_t i0 = n - m; i0 < n; i0 += NB) {
        double xb[NB], hm1[NB], hn[NB], ls[NB];
        const size_t cnt = n - i0 < NB ? n - i0 : NB;
        for (size_t b = 0; b < NB; b++) xb[b] = x[i0 + (b < cnt ? b : 0)];
        for (int it = 0; it < 2; it++) {
            hermite_pair(n, sqrt_k, inv_sqrt_k, xb, hm1, hn, ls);
            for (size_t b = 0; b < NB; b++)
                if (hm1[b] != 0.0) xb[b] -= hn[b] / (sqrt_k[n] * hm1[b]);
        }
        hermite_pair(n, sqrt_k, inv_sqrt_k, xb, hm1, hn, ls);
        for (size_t b = 0; b < cnt; b++) {
            const double lw = -log((double)n) - 2.0 * (log(fabs(hm1[b])) + ls[b]);
            const size_t i = i0 + b, j = n - 1 - i;
            x[i] = xb[b];
            x[j] = -xb[b];
            if (log_w) log_w[i] = log_w[j] = lw;
            if (w) w[i] = w[j] = exp(lw);
        }
    }
    if (k0) {
        /* The middle node 0 of an odd rule: h_{n-1}(0) from the recurrence. */
        double xb[NB] = {0}, hm1[NB], hn[NB], ls[NB];
        hermite_pair(n, sqrt_k, inv_sqrt_k, xb, hm1, hn, ls);
        const double lw = -log((double)n) - 2.0 * (log(fabs(hm1[0])) + ls[0]);
        x[m] = 0.0;
        if (log_w) log_w[m] = lw;
        if (w) w[m] = exp(lw);
    }
}

/*---------------------------------------------------------------------
 * Activations (the same formulas as kernel/series.c, order 0)
 *-------------------------------------------------------------------*/

static double sigmoid(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

void tni_activation_value(tn_activation act, double slope, double x, double *phi, double *dphi)
{
    switch (act) {
    case TN_ACT_IDENTITY:
        *phi = x;
        *dphi = 1.0;
        return;
    case TN_ACT_RELU:
        *phi = x > 0.0 ? x : 0.0;
        *dphi = x > 0.0 ? 1.0 : 0.0;     /* relu'(0) = 0, as the layers use */
        return;
    case TN_ACT_LEAKY_RELU:
        *dphi = x > 0.0 ? 1.0 : slope;
        *phi = *dphi * x;
        return;
    case TN_ACT_TANH: {
        const double ch = cosh(x);       /* inf for |x| > 710: sech^2 -> 0 */
        *phi = tanh(x);
        *dphi = 1.0 / (ch * ch);
        return;
    }
    case TN_ACT_SIGMOID:
        *phi = sigmoid(x);
        *dphi = sigmoid(x) * sigmoid(-x);   /* no cancellation in 1 - sigmoid */
        return;
    case TN_ACT_ERF:
        *phi = erf(x);
        *dphi = two_over_sqrt_pi * exp(-x * x);
        return;
    case TN_ACT_GELU: {
        const double Phi = 0.5 * erfc(-x * inv_sqrt2);
        *phi = x * Phi;
        *dphi = Phi + x * inv_sqrt_2pi * exp(-0.5 * x * x);
        return;
    }
    case TN_ACT_SOFTPLUS:
        *phi = fmax(x, 0.0) + log1p(exp(-fabs(x)));
        *dphi = sigmoid(x);
        return;
    }
    *phi = *dphi = 0.0;
}

/*---------------------------------------------------------------------
 * Mehler expansions
 *
 * Coefficients by quadrature.  a_k = E[f(sd xi) h_k(xi)] is summed against
 * the Hermite functions psi_k = h_k exp(-x^2/4) (bounded by ~1, where h_k
 * itself overflows at the outer nodes of large rules) with the weights
 * r_i = w_i exp(x_i^2/4).  An n-node rule integrates f h_k exactly when f is
 * a polynomial of degree <= 2n - 1 - k; with k <= n/2 the aliasing error of
 * a_k comes from coefficients of f beyond 3n/2, which for a rule that
 * resolves f (below) are far smaller than the tail the series criterion
 * already demands to be small.
 *
 * Resolution check.  Before an n-node rule is trusted for an example, E[f^2]
 * and E[f'^2] from it must agree with those of the 2n-node rule to
 * TOL_RESOLVE (relative): a transition narrower than the node spacing (tanh
 * at a large variance) shows up there first.  The largest rule is used
 * regardless, and the accuracy then degrades (analytic.c gives numbers).
 *-------------------------------------------------------------------*/

#define TOL_RESOLVE 1e-14

/* log v, and -inf for v = 0: the bounds below add logarithms, and -inf
 * (a zero tail, a zero correlation) correctly satisfies every bound. */
static double safe_log(double v)
{
    return v > 0.0 ? log(v) : -HUGE_VAL;
}

static size_t level_nodes(int level)
{
    return (size_t)TNI_MEHLER_NMIN << level;
}

static size_t level_kmax(int level)
{
    return level_nodes(level) / 2;
}

/* Builds rule `level` on first use (the storage exists since init). */
static void ensure_rule(tni_mehler *m, int level)
{
    tni_hermite_rule *R = &m->rule[level];
    if (R->ready) return;
    double *log_w = m->log_w;
    tni_gauss_hermite(R->n, R->x, R->w, log_w, m->gh_scratch);
    for (size_t i = 0; i < R->n; i++) {
        const double q = 0.25 * R->x[i] * R->x[i];
        R->r[i] = exp(log_w[i] + q);
        R->psi0[i] = exp(-q);
    }
    R->ready = 1;
}

tn_status tni_mehler_init(tn_ctx *ctx, const char *who, tni_mehler *m, tn_activation act,
                          double slope, int want_deriv, double tol)
{
    memset(m, 0, sizeof *m);
    m->act = act;
    m->slope = slope;
    m->want_deriv = want_deriv;
    m->tol = tol;
    size_t rule_doubles = 0;
    for (int l = 0; l < TNI_MEHLER_LEVELS; l++) rule_doubles += 4 * level_nodes(l);
    const size_t scratch_doubles = 12 * (size_t)TNI_MEHLER_NMAX + 1;
    m->block = tni_alloc_or_fail(ctx, who, rule_doubles + scratch_doubles, sizeof(double));
    if (m->block == NULL) return TN_E_NOMEM;
    double *p = m->block;
    for (int l = 0; l < TNI_MEHLER_LEVELS; l++) {
        tni_hermite_rule *R = &m->rule[l];
        R->n = level_nodes(l);
        R->x = p, p += R->n;
        R->w = p, p += R->n;
        R->r = p, p += R->n;
        R->psi0 = p, p += R->n;
    }
    const size_t N = TNI_MEHLER_NMAX;
    m->f_cur = p, p += N;
    m->d_cur = p, p += N;
    m->f_next = p, p += N;
    m->d_next = p, p += N;
    m->psi_prev = p, p += N;
    m->psi_cur = p, p += N;
    m->c_f = p, p += N;
    m->c_d = p, p += N;
    m->log_w = p, p += N;
    m->gh_scratch = p;       /* 3N + 1 */
    return TN_OK;
}

void tni_mehler_free(tni_mehler *m)
{
    if (m == NULL) return;
    tni_free(m->block);
    memset(m, 0, sizeof *m);
}

size_t tni_mehler_expansion_doubles(const tni_mehler *m)
{
    return (m->want_deriv ? 4 : 2) * ((size_t)TNI_MEHLER_KMAX + 1);
}

/* phi(sd x_i) and phi'(sd x_i) at the nodes of rule R; returns E[phi^2] and
 * E[phi'^2] in *ef2, *ed2. */
static void evaluate_on_rule(const tni_mehler *m, const tni_hermite_rule *R, double sd, double *f,
                             double *d, double *ef2, double *ed2)
{
    double sf = 0.0, sdd = 0.0;
    for (size_t i = 0; i < R->n; i++) {
        tni_activation_value(m->act, m->slope, sd * R->x[i], &f[i], &d[i]);
        sf += R->w[i] * f[i] * f[i];
        sdd += R->w[i] * d[i] * d[i];
    }
    *ef2 = sf;
    *ed2 = sdd;
}

static int agree(double a, double b)
{
    return fabs(a - b) <= TOL_RESOLVE * fabs(b);
}

void tni_mehler_moments(tni_mehler *m, double var, double *ef2, double *ed2)
{
    const double sd = sqrt(var);
    double f0, d0, f1, d1;
    if (var == 0.0) {       /* u = 0: exactly, as tni_mehler_expand and _pair have it */
        tni_activation_value(m->act, m->slope, 0.0, &f0, &d0);
        *ef2 = f0 * f0;
        if (ed2) *ed2 = d0 * d0;
        return;
    }
    ensure_rule(m, 0);
    evaluate_on_rule(m, &m->rule[0], sd, m->f_cur, m->d_cur, &f0, &d0);
    for (int l = 0; l + 1 < TNI_MEHLER_LEVELS; l++) {
        ensure_rule(m, l + 1);
        evaluate_on_rule(m, &m->rule[l + 1], sd, m->f_cur, m->d_cur, &f1, &d1);
        const int done = agree(f0, f1) && (ed2 == NULL || agree(d0, d1));
        f0 = f1;
        d0 = d1;
        if (done) break;
    }
    *ef2 = f0;
    if (ed2) *ed2 = d0;
}

/* log T(k) for k = 0..K from the coefficients a_0..a_K and the remainder
 * beyond K, E[f^2] - sum a_k^2.  Summing the tail backwards from the
 * remainder keeps small tails accurate (no cancellation against E[f^2]
 * except in the remainder itself).  The remainder is a difference of two
 * sums known to a few ulps of E[f^2], so it is never taken below
 * TAIL_FLOOR E[f^2]: a remainder that rounds to 0 would claim the series
 * ends at K, and a pair with a slowly converging partner would then stop
 * at this example's K with an error of sqrt(T_partner(K) * true tail). */
#define TAIL_FLOOR 1e-15

static void log_tails(const double *a, size_t K, double e2, double *log_tail)
{
    double partial = 0.0;
    for (size_t k = 0; k <= K; k++) partial += a[k] * a[k];
    double tail = fmax(e2 - partial, TAIL_FLOOR * e2);
    for (size_t k = K + 1; k-- > 0;) {
        log_tail[k] = safe_log(tail);
        tail += a[k] * a[k];
    }
}

/* The smallest K <= kmax with
 *     (K+1) log|rho| + (log T_p(K) + log T_q(K)) / 2 <= rhs,
 * i.e. whose Cauchy-Schwarz bound |rho|^(K+1) sqrt(T_p(K) T_q(K)) on the
 * truncation error is under exp(rhs); kmax + 1 if none.  The left side is
 * nonincreasing in K, so a bisection finds it in log2(kmax) steps. */
static size_t first_k_within(const double *lt_p, const double *lt_q, size_t kmax, double log_rho,
                             double rhs)
{
    size_t lo = 0, hi = kmax + 1;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if ((double)(mid + 1) * log_rho + 0.5 * (lt_p[mid] + lt_q[mid]) <= rhs)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* a_k (and b_k) for k = 0..K from phi, phi' at the nodes of R (in f_cur,
 * d_cur), by the Hermite-function recurrence.  The rule is symmetric and
 * psi_k(-x) = (-1)^k psi_k(x), so a_k sums over the positive nodes only,
 * against the even part f(x) + f(-x) for even k and the odd part for odd
 * k: half the work.  Four partial sums per coefficient let the reductions
 * overlap (the compiler may not reassociate them itself). */
static void hermite_coefficients(tni_mehler *m, const tni_hermite_rule *R, size_t K,
                                 tni_mehler_expansion *e)
{
    const size_t n = R->n, h = n / 2;    /* n is even: 32 << level */
    double *even_f = m->c_f, *odd_f = m->c_f + h, *even_d = m->c_d, *odd_d = m->c_d + h;
    double *prev = m->psi_prev, *cur = m->psi_cur;
    const double *xp = R->x + h;
    for (size_t i = 0; i < h; i++) {
        const size_t j = h + i, mirror = h - 1 - i;
        even_f[i] = R->r[j] * (m->f_cur[j] + m->f_cur[mirror]);
        odd_f[i] = R->r[j] * (m->f_cur[j] - m->f_cur[mirror]);
        even_d[i] = R->r[j] * (m->d_cur[j] + m->d_cur[mirror]);
        odd_d[i] = R->r[j] * (m->d_cur[j] - m->d_cur[mirror]);
        prev[i] = 0.0;
        cur[i] = R->psi0[j];
    }
    for (size_t k = 0; k <= K; k++) {
        const double *cf = k % 2 ? odd_f : even_f, *cd = k % 2 ? odd_d : even_d;
        double sa[4] = {0.0, 0.0, 0.0, 0.0}, sb[4] = {0.0, 0.0, 0.0, 0.0};
        for (size_t i = 0; i < h; i += 4) {     /* h is a multiple of 16 */
            for (size_t t = 0; t < 4; t++) {
                sa[t] += cf[i + t] * cur[i + t];
                sb[t] += cd[i + t] * cur[i + t];
            }
        }
        e->a[k] = (sa[0] + sa[1]) + (sa[2] + sa[3]);
        if (m->want_deriv) e->b[k] = (sb[0] + sb[1]) + (sb[2] + sb[3]);
        const double s0 = sqrt((double)k), s1 = 1.0 / sqrt((double)(k + 1));
        for (size_t i = 0; i < h; i++) {
            const double next = (xp[i] * cur[i] - s0 * prev[i]) * s1;
            prev[i] = cur[i];
            cur[i] = next;
        }
    }
}

void tni_mehler_expand(tni_mehler *m, double var, double rho_max, int min_level,
                       tni_mehler_expansion *e)
{
    const size_t stride = (size_t)TNI_MEHLER_KMAX + 1;
    e->var = var;
    e->sd = sqrt(var);
    ensure_rule(m, 0);
    ensure_rule(m, 1);
    if (var == 0.0) {
        /* u = 0: f(u) is the constant f(0), whose only coefficient is a_0. */
        double f0, d0;
        tni_activation_value(m->act, m->slope, 0.0, &f0, &d0);
        memset(e->a, 0, stride * sizeof(double));
        e->a[0] = f0;
        for (size_t k = 0; k < stride; k++) e->log_tail_a[k] = -HUGE_VAL;
        if (m->want_deriv) {
            memset(e->b, 0, stride * sizeof(double));
            e->b[0] = d0;
            for (size_t k = 0; k < stride; k++) e->log_tail_b[k] = -HUGE_VAL;
        }
        e->ef2 = f0 * f0;
        e->ed2 = d0 * d0;
        e->log_ef2 = safe_log(e->ef2);
        e->log_ed2 = safe_log(e->ed2);
        e->kmax = 0;
        e->level = 0;
        return;
    }
    const double log_rho = safe_log(rho_max), log_tol = log(m->tol);
    double ef2_cur, ed2_cur, ef2_next = 0.0, ed2_next = 0.0;
    evaluate_on_rule(m, &m->rule[0], e->sd, m->f_cur, m->d_cur, &ef2_cur, &ed2_cur);
    for (int level = 0; level < TNI_MEHLER_LEVELS; level++) {
        const int last = level + 1 == TNI_MEHLER_LEVELS;
        const tni_hermite_rule *R = &m->rule[level];
        if (!last) {
            ensure_rule(m, level + 1);
            evaluate_on_rule(m, &m->rule[level + 1], e->sd, m->f_next, m->d_next, &ef2_next,
                             &ed2_next);
        } else {
            ef2_next = ef2_cur;
            ed2_next = ed2_cur;
        }
        const int resolved = agree(ef2_cur, ef2_next) && (!m->want_deriv || agree(ed2_cur, ed2_next));
        if ((resolved && level >= min_level) || last) {
            const size_t K = level_kmax(level);
            hermite_coefficients(m, R, K, e);
            /* The finer rule's moments are the better ones. */
            e->ef2 = ef2_next;
            e->ed2 = ed2_next;
            e->log_ef2 = safe_log(e->ef2);
            e->log_ed2 = safe_log(e->ed2);
            e->kmax = K;
            e->level = level;
            log_tails(e->a, K, e->ef2, e->log_tail_a);
            /* Per example: rho_max^(K+1) T(K) <= tol E[f^2] for both
             * examples of a pair implies the pair bound, since T is
             * nonincreasing and |rho| <= rho_max. */
            int enough = first_k_within(e->log_tail_a, e->log_tail_a, K, log_rho,
                                        log_tol + safe_log(e->ef2)) <= K;
            if (m->want_deriv) {
                log_tails(e->b, K, e->ed2, e->log_tail_b);
                enough = enough &&
                         first_k_within(e->log_tail_b, e->log_tail_b, K, log_rho,
                                        log_tol + safe_log(e->ed2)) <= K;
            }
            if (enough || last) return;
        }
        /* Next level: the finer rule's values become the current ones. */
        double *t = m->f_cur;
        m->f_cur = m->f_next;
        m->f_next = t;
        t = m->d_cur;
        m->d_cur = m->d_next;
        m->d_next = t;
        ef2_cur = ef2_next;
        ed2_cur = ed2_next;
    }
}

/* sum_{k=0..K} rho^k a_k b_k by Horner. */
static double mehler_sum(const double *a, const double *b, size_t K, double rho)
{
    double s = 0.0;
    for (size_t k = K + 1; k-- > 0;) s = s * rho + a[k] * b[k];
    return s;
}

/* Terms of the series for a pair: the bound under tol sqrt(E_p E_q), or
 * every stored term when no K reaches it (a resolution-limited example). */
static size_t pair_terms(const double *lt_p, const double *lt_q, size_t kmax, double log_rho,
                         double rhs)
{
    const size_t K = first_k_within(lt_p, lt_q, kmax, log_rho, rhs);
    return K > kmax ? kmax : K;
}

double tni_correlation(double s11, double s22, double s12)
{
    if (!(s11 > 0.0) || !(s22 > 0.0)) return 0.0;
    const double prod = s11 * s22;
    const double den = prod >= DBL_MIN && prod <= DBL_MAX ? sqrt(prod) : sqrt(s11) * sqrt(s22);
    const double rho = s12 / den;
    return rho > 1.0 ? 1.0 : rho < -1.0 ? -1.0 : rho;
}

int tni_mehler_pair_converges(const tni_mehler *m, const tni_mehler_expansion *p,
                              const tni_mehler_expansion *q, double s12)
{
    const double rho = tni_correlation(p->var, q->var, s12);
    if (fabs(rho) >= TNI_MEHLER_RHO_DIRECT || p->level == q->level) return 1;
    const size_t kmax = p->kmax < q->kmax ? p->kmax : q->kmax;
    const double log_rho = safe_log(fabs(rho)), log_tol = log(m->tol);
    if (first_k_within(p->log_tail_a, q->log_tail_a, kmax, log_rho,
                       log_tol + 0.5 * (p->log_ef2 + q->log_ef2)) > kmax)
        return 0;
    return !m->want_deriv || first_k_within(p->log_tail_b, q->log_tail_b, kmax, log_rho,
                                            log_tol + 0.5 * (p->log_ed2 + q->log_ed2)) <= kmax;
}

void tni_mehler_pair(const tni_mehler *m, const tni_mehler_expansion *p,
                     const tni_mehler_expansion *q, double s12, double *eff, double *edd)
{
    const double rho = tni_correlation(p->var, q->var, s12);
    if (fabs(rho) >= TNI_MEHLER_RHO_DIRECT) {
        /* Perfectly correlated: u = sd_p xi, v = +-sd_q xi, a 1-D integral on
         * a rule finer than either example needed.  Replacing rho by +-1
         * changes the result by at most (1 - |rho|) |dE/drho|, and
         * dE/drho = sd_p sd_q E[phi'(u) phi'(v)] (Price's theorem). */
        int level = (p->level > q->level ? p->level : q->level) + 1;
        if (level >= TNI_MEHLER_LEVELS) level = TNI_MEHLER_LEVELS - 1;
        const tni_hermite_rule *R = &m->rule[level];
        const double sq = rho > 0.0 ? q->sd : -q->sd;
        double sf = 0.0, sd = 0.0;
        for (size_t i = 0; i < R->n; i++) {
            double fu, du, fv, dv;
            tni_activation_value(m->act, m->slope, p->sd * R->x[i], &fu, &du);
            tni_activation_value(m->act, m->slope, sq * R->x[i], &fv, &dv);
            sf += R->w[i] * fu * fv;
            sd += R->w[i] * du * dv;
        }
        *eff = sf;
        if (edd) *edd = sd;
        return;
    }
    const size_t kmax = p->kmax < q->kmax ? p->kmax : q->kmax;
    const double log_rho = safe_log(fabs(rho)), log_tol = log(m->tol);
    size_t K = pair_terms(p->log_tail_a, q->log_tail_a, kmax, log_rho,
                          log_tol + 0.5 * (p->log_ef2 + q->log_ef2));
    *eff = mehler_sum(p->a, q->a, K, rho);
    if (edd) {
        K = pair_terms(p->log_tail_b, q->log_tail_b, kmax, log_rho,
                       log_tol + 0.5 * (p->log_ed2 + q->log_ed2));
        *edd = mehler_sum(p->b, q->b, K, rho);
    }
}
