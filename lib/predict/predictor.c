/* predictor.c -- closed-form outputs of the linearized network trained on
 * MSE by full-batch gradient descent or flow (predict.h, docs/math.md §6).
 *
 * With K + reg I = V^T diag(lam) V (rows of V the eigenvectors),
 * r = f_0(X) - Y and h = eta / N:
 *   f_t(X)  = Y + V^T diag(m_t(lam)) V r
 *   f_t(x*) = f_0(x*) - K(x*, X) V^T diag(g_t(lam)) V r,  g = (1 - m) / lam,
 * which is MATH.md's Theta^-1 (I - M_t) written so that a zero eigenvalue
 * needs no inverse at finite t.  r is an n x O matrix: a traced kernel acts
 * on its O columns, a full kernel on it flattened (rows (i, c)); in memory
 * both are the same n O doubles, seen as m x cols. */
#include "predict.h"
#include "linalg.h"
#include "../kernel/blas.h"

#include <math.h>
#include <string.h>

void tni_predictor_delete(tn_predictor *p)
{
    if (p == NULL) return;
    p->magic = TNI_MAGIC_DEAD;
    tni_train_kernel_release(&p->kern);
    tni_free(p->Y);
    tni_free(p);
}

tn_status tni_predictor_new(tn_ctx *ctx, const double *k, size_t n, size_t O, int full,
                            const double *y, tn_predictor **out)
{
    static const char fn[] = "tn_predictor_create";
    tn_predictor *p = tni_alloc_or_fail(ctx, fn, 1, sizeof *p);
    if (p == NULL) return TN_E_NOMEM;
    p->magic = TNI_MAGIC_PREDICTOR;
    p->ctx = ctx;
    p->n = n;
    p->O = O;
    p->full = full;
    p->m = full ? n * O : n;
    p->cols = full ? 1 : O;
    p->eta = 1.0;
    p->time_mode = TN_PRED_STEPS;
    p->Y = tni_alloc(ctx, n * O, sizeof(double));
    if (p->Y == NULL) {
        tni_predictor_delete(p);
        return tni_fail(ctx, TN_E_NOMEM, "%s: out of memory for the targets", fn);
    }
    memcpy(p->Y, y, n * O * sizeof(double));
    /* Decomposing now serves the default regularizer and refuses an
     * indefinite kernel at create, where the mistake was made. */
    tn_status st = tni_train_kernel_init(&p->kern, ctx, fn, "the kernel", "TN_PRED_DIAG_REG", k,
                                         p->m, 1);
    if (st != TN_OK) {
        tni_predictor_delete(p);
        return st;
    }
    *out = p;
    return TN_OK;
}

void tni_predictor_set(tn_predictor *p, tn_predictor_param q, double value)
{
    switch (q) {
    case TN_PRED_LEARNING_RATE: p->eta = value; break;
    case TN_PRED_DIAG_REG: tni_train_kernel_set_shift(&p->kern, value); break;
    case TN_PRED_TIME: p->time_mode = (int)value; break;
    }
}

tn_status tni_predictor_spectrum(tn_predictor *p, const char *fn, double *lambda_max,
                                 double *max_lr)
{
    TNI_TRY(tni_train_kernel_eig(&p->kern, fn));
    const double lmax = p->kern.lam[p->m - 1];
    if (lambda_max) *lambda_max = lmax;
    /* Gradient descent multiplies each eigencomponent by 1 - eta lam / N:
     * bounded iff eta lam_max / N <= 2. */
    if (max_lr) *max_lr = lmax > 0 ? 2.0 * (double)p->n / lmax : INFINITY;
    return TN_OK;
}

tn_status tni_predictor_predict(tn_predictor *p, double t, const double *f0_train,
                                double *f_train_t, const double *k_test_train,
                                const double *f0_test, size_t n_test, double *f_test_t)
{
    static const char fn[] = "tn_predictor_predict";
    tn_ctx *ctx = p->ctx;
    const int th = ctx->threads;
    const size_t m = p->m, cols = p->cols, nv = p->n * p->O;
    const size_t mt = p->full ? n_test * p->O : n_test;    /* rows of k_test_train */
    const size_t ntv = f_test_t ? n_test * p->O : 0;
    TNI_TRY(tni_train_kernel_eig(&p->kern, fn));

    const double *lam = p->kern.lam;
    const double h = p->eta / (double)p->n;
    const double xmax = h * lam[m - 1];
    const int flow = p->time_mode == TN_PRED_FLOW;
    const int at_inf = isinf(t);
    const int singular = tni_eig_singular(lam, m);
    if (at_inf && !flow && xmax >= 2.0)
        return tni_fail(ctx, TN_E_NUMERIC,
                        "%s: gradient descent diverges at this learning rate (eta lambda_max / "
                        "n_train = %g >= 2), so t = infinity has no limit; the largest stable "
                        "learning rate is 2 n_train / lambda_max = %g",
                        fn, xmax, 2.0 * (double)p->n / lam[m - 1]);
    /* Past 2 the top component grows like |1 - eta lambda_max / N|^t: the
     * closed form is what GD would do, but GD at this rate is diverging,
     * whether or not the numbers have overflowed yet. */
    if (!at_inf && t > 0 && !flow && xmax > 2.0)
        return tni_fail(ctx, TN_E_NUMERIC,
                        "%s: gradient descent diverges at this learning rate (eta lambda_max / "
                        "n_train = %g > 2); the largest stable learning rate is 2 n_train / "
                        "lambda_max = %g",
                        fn, xmax, 2.0 * (double)p->n / lam[m - 1]);
    if (at_inf && f_test_t && singular)
        return tni_fail(ctx, TN_E_NUMERIC,
                        "%s: the kernel is singular at t = infinity (smallest eigenvalue %g, "
                        "at most %.3g x largest %g); set TN_PRED_DIAG_REG",
                        fn, lam[0], tni_kernel_tol(m), lam[m - 1]);
    /* The eigenvalues said the matrix is numerically nonsingular, so this
     * fails only at the edge of that band. */
    if (at_inf && f_test_t)
        TNI_TRY(tni_train_kernel_chol(&p->kern, fn, "at t = infinity, "));

    /* Results are built in a workspace and copied out only once they are
     * known to be finite, so a failure leaves the caller's buffers alone. */
    size_t total = 4 * nv + 2 * m;
    if (tni_add_overflow(total, f_train_t ? nv : 0, &total) ||
        tni_add_overflow(total, ntv, &total))
        return tni_fail(ctx, TN_E_NOMEM, "%s: the workspace size overflows", fn);
    double *ws = tni_alloc_or_fail(ctx, fn, total, sizeof(double));
    if (ws == NULL) return TN_E_NOMEM;
    double *R = ws, *Z = R + nv, *W = Z + nv, *S = W + nv;
    double *mf = S + nv, *gf = mf + m;
    double *out_tr = gf + m, *out_te = out_tr + (f_train_t ? nv : 0);

    for (size_t i = 0; i < nv; i++) R[i] = f0_train[i] - p->Y[i];
    const double *V = p->kern.V;
    if (t == 0.0) {
        /* Nothing has moved yet: exactly f_0, not f_0 up to the rounding of
         * V^T V r. */
        if (f_train_t) memcpy(out_tr, f0_train, nv * sizeof(double));
        if (f_test_t) memcpy(out_te, f0_test, ntv * sizeof(double));
    } else if (!at_inf) {
        for (size_t k = 0; k < m; k++) tni_time_factors(flow, h, t, lam[k], &mf[k], &gf[k]);
        /* Z = V r: r in the eigenbasis, shared by both outputs. */
        tni_gemm(th, TNI_NOTRANS, TNI_NOTRANS, m, cols, m, 1.0, V, m, R, cols, 0.0, Z, cols);
        if (f_train_t) {
            for (size_t k = 0; k < m; k++)
                for (size_t c = 0; c < cols; c++) W[k * cols + c] = mf[k] * Z[k * cols + c];
            memcpy(out_tr, p->Y, nv * sizeof(double));
            tni_gemm(th, TNI_TRANS, TNI_NOTRANS, m, cols, m, 1.0, V, m, W, cols, 1.0, out_tr,
                     cols);
        }
        if (f_test_t) {
            for (size_t k = 0; k < m; k++)
                for (size_t c = 0; c < cols; c++) W[k * cols + c] = gf[k] * Z[k * cols + c];
            tni_gemm(th, TNI_TRANS, TNI_NOTRANS, m, cols, m, 1.0, V, m, W, cols, 0.0, S, cols);
        }
    } else {
        if (f_train_t) {
            memcpy(out_tr, p->Y, nv * sizeof(double));
            if (singular) {
                /* Components on numerically zero eigenvalues never move;
                 * all others have converged to Y. */
                const double band = tni_kernel_tol(m) * lam[m - 1];
                tni_gemm(th, TNI_NOTRANS, TNI_NOTRANS, m, cols, m, 1.0, V, m, R, cols, 0.0, Z,
                         cols);
                for (size_t k = 0; k < m; k++)
                    for (size_t c = 0; c < cols; c++)
                        W[k * cols + c] = lam[k] <= band ? Z[k * cols + c] : 0.0;
                tni_gemm(th, TNI_TRANS, TNI_NOTRANS, m, cols, m, 1.0, V, m, W, cols, 1.0, out_tr,
                         cols);
            }
        }
        if (f_test_t) {
            /* S = (K + reg I)^-1 r by Cholesky: the inverse itself, not the
             * limit of g, so no eigenvalue is divided by. */
            memcpy(S, R, nv * sizeof(double));
            tni_cholesky_solve(m, p->kern.chol, cols, S, Z);
        }
    }
    if (f_test_t && t != 0.0) {
        memcpy(out_te, f0_test, ntv * sizeof(double));
        tni_gemm(th, TNI_NOTRANS, TNI_NOTRANS, mt, cols, m, -1.0, k_test_train, m, S, cols, 1.0,
                 out_te, cols);
    }

    const int ok = (!f_train_t || tni_all_finite(out_tr, nv)) &&
                   (!f_test_t || tni_all_finite(out_te, ntv));
    if (!ok) {
        tni_free(ws);
        return tni_fail(ctx, TN_E_NUMERIC, "%s: the result is not finite at t = %g", fn, t);
    }
    if (f_train_t) memcpy(f_train_t, out_tr, nv * sizeof(double));
    if (f_test_t) memcpy(f_test_t, out_te, ntv * sizeof(double));
    tni_free(ws);
    return TN_OK;
}
