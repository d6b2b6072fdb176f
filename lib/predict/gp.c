/* gp.c -- Gaussian-process inference with infinite-width kernels (Lee et
 * al. 2019): the NNGP posterior and the NTK-GP of gradient flow at time t
 * (predict.h, docs/math.md §6).  Kernels are traced: one n x n matrix shared
 * by the outputs, so Y's columns are independent right-hand sides. */
#include "predict.h"
#include "linalg.h"
#include "../kernel/blas.h"

#include <math.h>
#include <string.h>

/* Refusal threshold of LAPACK's 1-norm reciprocal condition estimate for the
 * NNGP train kernel.  The 1-norm and 2-norm condition numbers differ by at
 * most a factor m, and dpocon's estimate is never below the true 1-norm
 * value, so rcond1 <= 1e-10 implies lambda_min / lambda_max <= 1e-10 m:
 * this refuses only kernels that the eigenvalue policy of linalg.h (used by
 * the predictor and the NTK-GP) calls singular too. */
#define TNI_GP_RCOND_MIN 1e-10

void tni_gp_delete(tn_gp *g)
{
    if (g == NULL) return;
    g->magic = TNI_MAGIC_DEAD;
    tni_train_kernel_release(&g->nngp);
    tni_train_kernel_release(&g->ntk);
    tni_free(g->Y);
    tni_free(g);
}

/* The Cholesky factor of K + reg I, refused when its condition says the
 * solves would be noise. */
static tn_status nngp_factor(tn_gp *g, const char *fn)
{
    if (g->nngp.chol_ok) return TN_OK;
    TNI_TRY(tni_train_kernel_chol(&g->nngp, fn, ""));
    /* A factorization can succeed on a matrix singular up to rounding, and
     * then its solves are noise: ask for the condition too. */
    const size_t n = g->n;
    const double anorm = tni_norm1_shifted(g->nngp.K, n, g->nngp.shift);
    double rcond;
    tn_status st = tni_cholesky_rcond(g->ctx, fn, n, g->nngp.chol, anorm, &rcond);
    if (st == TN_OK && !(rcond > TNI_GP_RCOND_MIN))
        st = tni_fail(g->ctx, TN_E_NUMERIC,
                      "%s: the NNGP train kernel%s is numerically singular (reciprocal "
                      "condition number %.3g <= %g); set TN_GP_DIAG_REG",
                      fn, g->nngp.shift > 0 ? " plus TN_GP_DIAG_REG" : "", rcond,
                      TNI_GP_RCOND_MIN);
    if (st != TN_OK) g->nngp.chol_ok = 0;       /* retried next time */
    return st;
}

tn_status tni_gp_new(tn_ctx *ctx, const double *nngp, const double *ntk, size_t n, size_t O,
                     const double *y, tn_gp **out)
{
    static const char fn[] = "tn_gp_create";
    tn_gp *g = tni_alloc_or_fail(ctx, fn, 1, sizeof *g);
    if (g == NULL) return TN_E_NOMEM;
    g->magic = TNI_MAGIC_GP;
    g->ctx = ctx;
    g->n = n;
    g->O = O;
    g->eta = 1.0;
    g->Y = tni_alloc(ctx, n * O, sizeof(double));
    if (g->Y == NULL) {
        tni_gp_delete(g);
        return tni_fail(ctx, TN_E_NOMEM, "%s: out of memory for the targets", fn);
    }
    memcpy(g->Y, y, n * O * sizeof(double));
    /* Both kernels are checked positive semi-definite here, where they are
     * given, as tn_predictor_create checks its kernel: an indefinite NNGP
     * kernel would give negative variances later.  Only the NTK's
     * eigenvectors serve the posterior. */
    tn_status st = tni_train_kernel_init(&g->nngp, ctx, fn, "the NNGP train kernel",
                                         "TN_GP_DIAG_REG", nngp, n, 0);
    if (st == TN_OK && ntk)
        st = tni_train_kernel_init(&g->ntk, ctx, fn, "the NTK train kernel", "TN_GP_DIAG_REG",
                                   ntk, n, 1);
    if (st != TN_OK) {
        tni_gp_delete(g);
        return st;
    }
    *out = g;
    return TN_OK;
}

void tni_gp_set(tn_gp *g, tn_gp_param q, double value)
{
    switch (q) {
    case TN_GP_DIAG_REG:
        tni_train_kernel_set_shift(&g->nngp, value);
        tni_train_kernel_set_shift(&g->ntk, value);
        break;
    case TN_GP_LEARNING_RATE: g->eta = value; break;
    }
}

/* One workspace holding the given parts (counts of doubles), or NULL after
 * recording the failure. */
static double *workspace(tn_ctx *ctx, const char *fn, const size_t *parts, size_t nparts)
{
    size_t total = 0;
    for (size_t i = 0; i < nparts; i++)
        if (tni_add_overflow(total, parts[i], &total)) {
            tni_fail(ctx, TN_E_NOMEM, "%s: the workspace size overflows", fn);
            return NULL;
        }
    return tni_alloc_or_fail(ctx, fn, total, sizeof(double));
}

/* A posterior variance is what the joint NNGP kernel of the train and test
 * points leaves unexplained: with that kernel positive semi-definite it is
 * >= 0 up to the rounding of the terms that form it, which scale bounds in
 * magnitude.  A variance below -rel scale is no rounding -- the test-test
 * kernel does not fit the train and test-train ones, and a covariance built
 * from them is not one -- and is refused; one within the band is rounding
 * and is set to 0 (as scikit-learn's GaussianProcessRegressor does). */
static tn_status check_variance(tn_ctx *ctx, const char *fn, double *v, size_t a, double kaa,
                                double scale, double rel)
{
    if (*v >= 0) return TN_OK;
    if (*v >= -rel * scale) {
        *v = 0.0;
        return TN_OK;
    }
    return tni_fail(ctx, TN_E_NUMERIC,
                    "%s: the posterior variance of test point %zu is %g < 0 (nngp_test_test "
                    "gives it %g): the joint NNGP kernel of train and test points is not "
                    "positive semi-definite; check nngp_test_test and the test-train kernels",
                    fn, a, *v, kaa);
}

static tn_status not_finite(tn_ctx *ctx, const char *fn, double *ws)
{
    tni_free(ws);
    return tni_fail(ctx, TN_E_NUMERIC, "%s: the result is not finite", fn);
}

tn_status tni_gp_nngp_posterior(tn_gp *g, const double *k_test_train,
                                const double *k_test_test, size_t n_test, double *mean,
                                double *cov)
{
    static const char fn[] = "tn_gp_nngp_posterior";
    tn_ctx *ctx = g->ctx;
    const int th = ctx->threads;
    const size_t n = g->n, O = g->O, nt = n_test;
    TNI_TRY(nngp_factor(g, fn));
    const size_t parts[] = {nt * n, O * n, mean ? nt * O : 0, cov ? nt * nt : 0};
    double *ws = workspace(ctx, fn, parts, 4);
    if (ws == NULL) return TN_E_NOMEM;
    double *Ct = ws, *Dt = Ct + parts[0], *out_mean = Dt + parts[1], *out_cov = out_mean + parts[2];

    /* With K + reg I = L L^T: mean = (L^-1 KX*)^T (L^-1 Y) and
     * cov = K** - (L^-1 KX*)^T (L^-1 KX*), the latter a SYRK, so the
     * covariance comes out exactly symmetric. */
    memcpy(Ct, k_test_train, nt * n * sizeof(double));
    tni_lower_solve_t(n, g->nngp.chol, nt, Ct);
    if (mean) {
        for (size_t i = 0; i < n; i++)
            for (size_t c = 0; c < O; c++) Dt[c * n + i] = g->Y[i * O + c];
        tni_lower_solve_t(n, g->nngp.chol, O, Dt);
        tni_gemm(th, TNI_NOTRANS, TNI_TRANS, nt, O, n, 1.0, Ct, n, Dt, n, 0.0, out_mean, O);
        if (!tni_all_finite(out_mean, nt * O)) return not_finite(ctx, fn, ws);
    }
    if (cov) {
        tni_sym_shift(k_test_test, nt, 0.0, out_cov);
        tni_syrk_lower(th, nt, n, -1.0, Ct, n, 1.0, out_cov, nt);
        tni_symmetrize_lower(nt, out_cov, nt);
        if (!tni_all_finite(out_cov, nt * nt)) return not_finite(ctx, fn, ws);
        /* cov_aa = K**_aa - |L^-1 k_a|^2.  The triangular solve is backward
         * stable: |L^-1 k_a|^2 carries a relative error of about
         * 2 n eps sqrt(cond K), and nngp_factor keeps cond_1 K < 1e10, so
         * cond_2 K < 1e10 n: at most 4.4e-11 n^1.5, and 1e-9 n^1.5 leaves
         * a factor 20 to spare. */
        const double rel = 1e-9 * (double)n * sqrt((double)n);
        for (size_t a = 0; a < nt; a++) {
            const double kaa = k_test_test[a * nt + a];
            double q = 0.0;
            for (size_t k = 0; k < n; k++) q += Ct[a * n + k] * Ct[a * n + k];
            tn_status st = check_variance(ctx, fn, &out_cov[a * nt + a], a, kaa, kaa + q, rel);
            if (st != TN_OK) {
                tni_free(ws);
                return st;
            }
        }
    }
    if (mean) memcpy(mean, out_mean, nt * O * sizeof(double));
    if (cov) memcpy(cov, out_cov, nt * nt * sizeof(double));
    tni_free(ws);
    return TN_OK;
}

tn_status tni_gp_ntk_posterior(tn_gp *g, double t, const double *ntk_test_train,
                               const double *nngp_test_train, const double *nngp_test_test,
                               size_t n_test, double *mean, double *cov)
{
    static const char fn[] = "tn_gp_ntk_posterior";
    tn_ctx *ctx = g->ctx;
    const int th = ctx->threads;
    const size_t n = g->n, O = g->O, nt = n_test;
    TNI_TRY(tni_train_kernel_eig(&g->ntk, fn));
    const double *lam = g->ntk.lam, *V = g->ntk.V;
    const int at_inf = isinf(t);
    if (at_inf && tni_eig_singular(lam, n))
        return tni_fail(ctx, TN_E_NUMERIC,
                        "%s: the NTK train kernel is singular at t = infinity (smallest "
                        "eigenvalue %g, at most %.3g x largest %g); set TN_GP_DIAG_REG",
                        fn, lam[0], tni_kernel_tol(n), lam[n - 1]);

    const size_t parts[] = {n, 2 * nt * n, mean ? nt * O : 0,
                            cov ? n * n + nt * n + 2 * nt * nt : 0};
    double *ws = workspace(ctx, fn, parts, 4);
    if (ws == NULL) return TN_E_NOMEM;
    double *gf = ws, *Q = gf + n, *P = Q + nt * n, *out_mean = P + nt * n;
    double *Kr = out_mean + parts[2], *G = Kr + (cov ? n * n : 0), *H = G + (cov ? nt * n : 0),
           *out_cov = H + (cov ? nt * nt : 0);

    /* P = Theta*X Theta^-1 (I - E) = Theta*X V^T diag(g) V with
     * g = (1 - e^{-eta lam t / N}) / lam, the predictor's stable factor;
     * 1 / lam at t = infinity, where the check above made lam > 0. */
    const double h = g->eta / (double)n;
    for (size_t k = 0; k < n; k++) {
        double mf;
        if (at_inf)
            gf[k] = 1.0 / lam[k];
        else
            tni_time_factors(1, h, t, lam[k], &mf, &gf[k]);
    }
    tni_gemm(th, TNI_NOTRANS, TNI_TRANS, nt, n, n, 1.0, ntk_test_train, n, V, n, 0.0, Q, n);
    for (size_t a = 0; a < nt; a++)
        for (size_t k = 0; k < n; k++) Q[a * n + k] *= gf[k];
    tni_gemm(th, TNI_NOTRANS, TNI_NOTRANS, nt, n, n, 1.0, Q, n, V, n, 0.0, P, n);

    if (mean) {
        tni_gemm(th, TNI_NOTRANS, TNI_NOTRANS, nt, O, n, 1.0, P, n, g->Y, O, 0.0, out_mean, O);
        if (!tni_all_finite(out_mean, nt * O)) return not_finite(ctx, fn, ws);
    }
    if (cov) {
        /* cov = K** + P K P^T - P KX* - K*X P^T = K** + sym((P K - 2 K*X) P^T),
         * sym(A) = (A + A^T) / 2: two GEMMs, and symmetric by construction.
         * K carries the regularizer too ("the train kernels' diagonals"),
         * which makes the NTK-GP with Theta = K at t = infinity the NNGP
         * posterior, regularized or not. */
        tni_sym_shift(g->nngp.K, n, g->nngp.shift, Kr);
        for (size_t i = 0; i < nt * n; i++) G[i] = -2.0 * nngp_test_train[i];
        tni_gemm(th, TNI_NOTRANS, TNI_NOTRANS, nt, n, n, 1.0, P, n, Kr, n, 1.0, G, n);
        tni_gemm(th, TNI_NOTRANS, TNI_TRANS, nt, nt, n, 1.0, G, n, P, n, 0.0, H, nt);
        for (size_t a = 0; a < nt; a++)
            for (size_t b = 0; b <= a; b++) {
                const double kab = 0.5 * (nngp_test_test[a * nt + b] + nngp_test_test[b * nt + a]);
                const double v = kab + 0.5 * (H[a * nt + b] + H[b * nt + a]);
                out_cov[a * nt + b] = v;
                out_cov[b * nt + a] = v;
            }
        if (!tni_all_finite(out_cov, nt * nt)) return not_finite(ctx, fn, ws);
        /* cov_aa = K**_aa + sum_k (P K - 2 K*X)_ak P_ak, its terms bounded by
         * |K**_aa| + sum_k |G_ak P_ak| + 2 |K*X_ak P_ak|.  P carries the
         * rounding of the eigendecomposition amplified by at most the
         * condition number the eigenvalue policy allows at t = infinity
         * (1e10 / n, linalg.h), n eps 1e10 / n = 2.2e-6 relative (less at
         * finite t, where g <= h t): 1e-5 of the scale is beyond it. */
        for (size_t a = 0; a < nt; a++) {
            const double kaa = nngp_test_test[a * nt + a];
            double scale = fabs(kaa);
            for (size_t k = 0; k < n; k++)
                scale += fabs(G[a * n + k] * P[a * n + k]) +
                         2.0 * fabs(nngp_test_train[a * n + k] * P[a * n + k]);
            tn_status st = check_variance(ctx, fn, &out_cov[a * nt + a], a, kaa, scale, 1e-5);
            if (st != TN_OK) {
                tni_free(ws);
                return st;
            }
        }
    }
    if (mean) memcpy(mean, out_mean, nt * O * sizeof(double));
    if (cov) memcpy(cov, out_cov, nt * nt * sizeof(double));
    tni_free(ws);
    return TN_OK;
}
