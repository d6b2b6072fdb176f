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
    tni_free(g->K);
    tni_free(g->T);
    tni_free(g->Y);
    tni_free(g->chol);
    tni_free(g->V);
    tni_free(g->lam);
    tni_free(g);
}

static tn_status ensure_eig(tn_gp *g, const char *fn)
{
    if (g->eig_ok) return TN_OK;
    TNI_TRY(tni_eigh_shifted(g->ctx, fn, "the NTK train kernel", "TN_GP_DIAG_REG", g->n, g->T,
                             g->reg, g->V, g->lam));
    g->eig_ok = 1;
    return TN_OK;
}

static tn_status ensure_chol(tn_gp *g, const char *fn)
{
    if (g->chol_ok) return TN_OK;
    const size_t n = g->n;
    const double anorm = tni_norm1_shifted(g->K, n, g->reg);
    TNI_TRY(tni_cholesky_shifted(g->ctx, fn, "the NNGP train kernel", "TN_GP_DIAG_REG", n, g->K,
                                 g->reg, &g->chol));
    /* A factorization can succeed on a matrix singular up to rounding, and
     * then its solves are noise: ask for the condition too. */
    double rcond;
    TNI_TRY(tni_cholesky_rcond(g->ctx, fn, n, g->chol, anorm, &rcond));
    if (!(rcond > TNI_GP_RCOND_MIN))
        return tni_fail(g->ctx, TN_E_NUMERIC,
                        "%s: the NNGP train kernel%s is numerically singular (reciprocal "
                        "condition number %.3g <= %g); set TN_GP_DIAG_REG",
                        fn, g->reg > 0 ? " plus TN_GP_DIAG_REG" : "", rcond, TNI_GP_RCOND_MIN);
    g->chol_ok = 1;
    return TN_OK;
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
    g->reg = 0.0;
    g->eta = 1.0;
    g->K = tni_alloc(ctx, n * n, sizeof(double));
    g->Y = tni_alloc(ctx, n * O, sizeof(double));
    int ok = g->K != NULL && g->Y != NULL;
    if (ok && ntk) {
        g->T = tni_alloc(ctx, n * n, sizeof(double));
        g->V = tni_alloc(ctx, n * n, sizeof(double));
        g->lam = tni_alloc(ctx, n, sizeof(double));
        ok = g->T != NULL && g->V != NULL && g->lam != NULL;
    }
    if (!ok) {
        tni_gp_delete(g);
        return tni_fail(ctx, TN_E_NOMEM, "%s: out of memory for kernels of dimension %zu", fn, n);
    }
    tni_sym_shift(nngp, n, 0.0, g->K);
    memcpy(g->Y, y, n * O * sizeof(double));
    if (ntk) {
        tni_sym_shift(ntk, n, 0.0, g->T);
        /* As the predictor: an indefinite NTK is refused where it is given. */
        tn_status st = ensure_eig(g, fn);
        if (st != TN_OK) {
            tni_gp_delete(g);
            return st;
        }
    }
    *out = g;
    return TN_OK;
}

void tni_gp_set(tn_gp *g, tn_gp_param q, double value)
{
    switch (q) {
    case TN_GP_DIAG_REG:
        if (value != g->reg) {
            g->reg = value;
            g->eig_ok = 0;
            g->chol_ok = 0;
        }
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
    TNI_TRY(ensure_chol(g, fn));
    const size_t parts[] = {nt * n, O * n, mean ? nt * O : 0, cov ? nt * nt : 0};
    double *ws = workspace(ctx, fn, parts, 4);
    if (ws == NULL) return TN_E_NOMEM;
    double *Ct = ws, *Dt = Ct + parts[0], *out_mean = Dt + parts[1], *out_cov = out_mean + parts[2];

    /* With K + reg I = L L^T: mean = (L^-1 KX*)^T (L^-1 Y) and
     * cov = K** - (L^-1 KX*)^T (L^-1 KX*), the latter a SYRK, so the
     * covariance comes out exactly symmetric. */
    memcpy(Ct, k_test_train, nt * n * sizeof(double));
    tni_lower_solve_t(n, g->chol, nt, Ct);
    if (mean) {
        for (size_t i = 0; i < n; i++)
            for (size_t c = 0; c < O; c++) Dt[c * n + i] = g->Y[i * O + c];
        tni_lower_solve_t(n, g->chol, O, Dt);
        tni_gemm(th, TNI_NOTRANS, TNI_TRANS, nt, O, n, 1.0, Ct, n, Dt, n, 0.0, out_mean, O);
        if (!tni_all_finite(out_mean, nt * O)) return not_finite(ctx, fn, ws);
    }
    if (cov) {
        tni_sym_shift(k_test_test, nt, 0.0, out_cov);
        tni_syrk_lower(th, nt, n, -1.0, Ct, n, 1.0, out_cov, nt);
        tni_symmetrize_lower(nt, out_cov, nt);
        if (!tni_all_finite(out_cov, nt * nt)) return not_finite(ctx, fn, ws);
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
    TNI_TRY(ensure_eig(g, fn));
    const double *lam = g->lam, *V = g->V;
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
        tni_sym_shift(g->K, n, g->reg, Kr);
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
    }
    if (mean) memcpy(mean, out_mean, nt * O * sizeof(double));
    if (cov) memcpy(cov, out_cov, nt * nt * sizeof(double));
    tni_free(ws);
    return TN_OK;
}
