/* api_predict.c -- public entry points of the closed-form predictor and of
 * GP inference: checks, then predict/. */
#include "check.h"
#include "../predict/linalg.h"
#include "../predict/predict.h"

#include <limits.h>
#include <math.h>

/* LAPACK takes dimensions as int. */
static tn_status lapack_dim(tn_ctx *ctx, const char *fn, const char *what, size_t d, size_t max)
{
    if (d <= max) return TN_OK;
    return tni_fail(ctx, TN_E_UNSUPPORTED,
                    "%s: %s of %zu exceeds what LAPACK with 32-bit integers can take (%zu)", fn,
                    what, d, max);
}

/* t >= 0 or INFINITY; with whole = 1, a whole number of steps. */
static tn_status check_time(tn_ctx *ctx, const char *fn, double t, int whole)
{
    if (!(t >= 0))
        return tni_fail(ctx, TN_E_INVALID_ARG, "%s: t is %g; it must be >= 0 (or INFINITY)", fn, t);
    if (whole && isfinite(t) && t != floor(t))
        return tni_fail(ctx, TN_E_INVALID_ARG,
                        "%s: t is %g; with TN_PRED_STEPS it must be a whole number of steps "
                        "(set TN_PRED_TIME to TN_PRED_FLOW for continuous time)",
                        fn, t);
    return TN_OK;
}

/*---------------------------------------------------------------------
 * Closed-form predictor
 *-------------------------------------------------------------------*/

TN_API tn_status tn_predictor_create(tn_ctx *ctx, const double *k_train, size_t n_train,
                                     size_t n_out, int full_kernel, const double *y_train,
                                     tn_predictor **out)
{
    static const char fn[] = "tn_predictor_create";
    if (out) *out = NULL;
    TNI_TRY(tni_check_handle(ctx, TNI_MAGIC_CTX));
    TNI_TRY(tni_check_ptr(ctx, fn, out, "out"));
    TNI_TRY(tni_check_ptr(ctx, fn, k_train, "k_train"));
    TNI_TRY(tni_check_ptr(ctx, fn, y_train, "y_train"));
    if (n_train == 0)
        return tni_fail(ctx, TN_E_INVALID_ARG, "%s: n_train is 0 (no examples)", fn);
    if (n_out == 0) return tni_fail(ctx, TN_E_INVALID_ARG, "%s: n_out is 0 (no outputs)", fn);
    if (full_kernel != 0 && full_kernel != 1)
        return tni_fail(ctx, TN_E_INVALID_ARG,
                        "%s: full_kernel is %d; it must be 0 (traced) or 1 (full)", fn,
                        full_kernel);
    TNI_TRY(tni_check_matrix(ctx, fn, "y_train", n_train, n_out));
    const size_t m = full_kernel ? n_train * n_out : n_train;
    TNI_TRY(tni_check_matrix(ctx, fn, "k_train", m, m));
    TNI_TRY(lapack_dim(ctx, fn, "a kernel dimension", m, TNI_EIGH_MAX_DIM));
    TNI_TRY(tni_check_finite(ctx, fn, "y_train", y_train, n_train * n_out));
    TNI_TRY(tni_check_kernel(ctx, fn, "k_train", k_train, m));
    return tni_predictor_new(ctx, k_train, n_train, n_out, full_kernel, y_train, out);
}

TN_API tn_status tn_predictor_set(tn_predictor *p, tn_predictor_param q, double value)
{
    static const char fn[] = "tn_predictor_set";
    TNI_TRY(tni_check_handle(p, TNI_MAGIC_PREDICTOR));
    tn_ctx *ctx = p->ctx;
    switch (q) {
    case TN_PRED_LEARNING_RATE:
        if (!(isfinite(value) && value > 0))
            return tni_fail(ctx, TN_E_INVALID_ARG,
                            "%s: learning rate %g must be finite and > 0", fn, value);
        break;
    case TN_PRED_DIAG_REG:
        if (!(isfinite(value) && value >= 0))
            return tni_fail(ctx, TN_E_INVALID_ARG,
                            "%s: diagonal regularizer %g must be finite and >= 0", fn, value);
        break;
    case TN_PRED_TIME:
        if (value != TN_PRED_STEPS && value != TN_PRED_FLOW)
            return tni_fail(ctx, TN_E_INVALID_ARG,
                            "%s: time mode %g is neither TN_PRED_STEPS nor TN_PRED_FLOW", fn,
                            value);
        break;
    default:
        return tni_fail(ctx, TN_E_INVALID_ARG, "%s: %d is not a tn_predictor_param", fn, (int)q);
    }
    tni_predictor_set(p, q, value);
    return TN_OK;
}

TN_API tn_status tn_predictor_get(const tn_predictor *p, tn_predictor_param q, double *value)
{
    static const char fn[] = "tn_predictor_get";
    TNI_TRY(tni_check_handle(p, TNI_MAGIC_PREDICTOR));
    TNI_TRY(tni_check_ptr(p->ctx, fn, value, "value"));
    switch (q) {
    case TN_PRED_LEARNING_RATE: *value = p->eta; return TN_OK;
    case TN_PRED_DIAG_REG: *value = p->kern.shift; return TN_OK;
    case TN_PRED_TIME: *value = p->time_mode; return TN_OK;
    }
    return tni_fail(p->ctx, TN_E_INVALID_ARG, "%s: %d is not a tn_predictor_param", fn, (int)q);
}

TN_API tn_status tn_predictor_predict(tn_predictor *p, double t, const double *f0_train,
                                      double *f_train_t, const double *k_test_train,
                                      const double *f0_test, size_t n_test, double *f_test_t)
{
    static const char fn[] = "tn_predictor_predict";
    TNI_TRY(tni_check_handle(p, TNI_MAGIC_PREDICTOR));
    tn_ctx *ctx = p->ctx;
    TNI_TRY(check_time(ctx, fn, t, p->time_mode == TN_PRED_STEPS));
    TNI_TRY(tni_check_ptr(ctx, fn, f0_train, "f0_train"));
    TNI_TRY(tni_check_finite(ctx, fn, "f0_train", f0_train, p->n * p->O));
    if (f_test_t) {
        /* Test inputs are read only when test outputs are asked for. */
        TNI_TRY(tni_check_ptr(ctx, fn, k_test_train, "k_test_train (f_test_t is not NULL)"));
        TNI_TRY(tni_check_ptr(ctx, fn, f0_test, "f0_test (f_test_t is not NULL)"));
        if (n_test == 0)
            return tni_fail(ctx, TN_E_INVALID_ARG, "%s: n_test is 0 (no test examples)", fn);
        TNI_TRY(tni_check_matrix(ctx, fn, "f0_test", n_test, p->O));
        TNI_TRY(tni_check_matrix(ctx, fn, "k_test_train", p->full ? n_test * p->O : n_test, p->m));
        TNI_TRY(tni_check_finite(ctx, fn, "f0_test", f0_test, n_test * p->O));
        TNI_TRY(tni_check_finite(ctx, fn, "k_test_train", k_test_train,
                             (p->full ? n_test * p->O : n_test) * p->m));
    } else {
        k_test_train = NULL;
        f0_test = NULL;
    }
    return tni_predictor_predict(p, t, f0_train, f_train_t, k_test_train, f0_test, n_test,
                                 f_test_t);
}

TN_API tn_status tn_predictor_lambda_max(tn_predictor *p, double *value)
{
    static const char fn[] = "tn_predictor_lambda_max";
    TNI_TRY(tni_check_handle(p, TNI_MAGIC_PREDICTOR));
    TNI_TRY(tni_check_ptr(p->ctx, fn, value, "value"));
    return tni_predictor_spectrum(p, fn, value, NULL);
}

TN_API tn_status tn_predictor_max_learning_rate(tn_predictor *p, double *value)
{
    static const char fn[] = "tn_predictor_max_learning_rate";
    TNI_TRY(tni_check_handle(p, TNI_MAGIC_PREDICTOR));
    TNI_TRY(tni_check_ptr(p->ctx, fn, value, "value"));
    return tni_predictor_spectrum(p, fn, NULL, value);
}

TN_API void tn_predictor_free(tn_predictor *p)
{
    if (tni_check_handle(p, TNI_MAGIC_PREDICTOR) == TN_OK) tni_predictor_delete(p);
}

/*---------------------------------------------------------------------
 * Gaussian-process inference
 *-------------------------------------------------------------------*/

TN_API tn_status tn_gp_create(tn_ctx *ctx, const double *nngp_train, const double *ntk_train,
                              size_t n_train, size_t n_out, const double *y_train, tn_gp **out)
{
    static const char fn[] = "tn_gp_create";
    if (out) *out = NULL;
    TNI_TRY(tni_check_handle(ctx, TNI_MAGIC_CTX));
    TNI_TRY(tni_check_ptr(ctx, fn, out, "out"));
    TNI_TRY(tni_check_ptr(ctx, fn, nngp_train, "nngp_train"));
    TNI_TRY(tni_check_ptr(ctx, fn, y_train, "y_train"));
    if (n_train == 0)
        return tni_fail(ctx, TN_E_INVALID_ARG, "%s: n_train is 0 (no examples)", fn);
    if (n_out == 0) return tni_fail(ctx, TN_E_INVALID_ARG, "%s: n_out is 0 (no outputs)", fn);
    TNI_TRY(tni_check_matrix(ctx, fn, "y_train", n_train, n_out));
    TNI_TRY(tni_check_matrix(ctx, fn, "nngp_train", n_train, n_train));
    TNI_TRY(lapack_dim(ctx, fn, "n_train", n_train,
                       ntk_train ? (size_t)TNI_EIGH_MAX_DIM : (size_t)INT_MAX));
    TNI_TRY(tni_check_finite(ctx, fn, "y_train", y_train, n_train * n_out));
    TNI_TRY(tni_check_kernel(ctx, fn, "nngp_train", nngp_train, n_train));
    if (ntk_train) TNI_TRY(tni_check_kernel(ctx, fn, "ntk_train", ntk_train, n_train));
    return tni_gp_new(ctx, nngp_train, ntk_train, n_train, n_out, y_train, out);
}

TN_API tn_status tn_gp_set(tn_gp *g, tn_gp_param q, double value)
{
    static const char fn[] = "tn_gp_set";
    TNI_TRY(tni_check_handle(g, TNI_MAGIC_GP));
    tn_ctx *ctx = g->ctx;
    switch (q) {
    case TN_GP_DIAG_REG:
        if (!(isfinite(value) && value >= 0))
            return tni_fail(ctx, TN_E_INVALID_ARG,
                            "%s: diagonal regularizer %g must be finite and >= 0", fn, value);
        break;
    case TN_GP_LEARNING_RATE:
        if (!(isfinite(value) && value > 0))
            return tni_fail(ctx, TN_E_INVALID_ARG,
                            "%s: learning rate %g must be finite and > 0", fn, value);
        break;
    default:
        return tni_fail(ctx, TN_E_INVALID_ARG, "%s: %d is not a tn_gp_param", fn, (int)q);
    }
    tni_gp_set(g, q, value);
    return TN_OK;
}

TN_API tn_status tn_gp_get(const tn_gp *g, tn_gp_param q, double *value)
{
    TNI_TRY(tni_check_handle(g, TNI_MAGIC_GP));
    TNI_TRY(tni_check_ptr(g->ctx, "tn_gp_get", value, "value"));
    switch (q) {
    case TN_GP_DIAG_REG: *value = g->nngp.shift; return TN_OK;
    case TN_GP_LEARNING_RATE: *value = g->eta; return TN_OK;
    }
    return tni_fail(g->ctx, TN_E_INVALID_ARG, "tn_gp_get: %d is not a tn_gp_param", (int)q);
}

/* The test-side checks both posteriors share: n_test, the shapes of the
 * outputs and of K(test, test) when the covariance is asked for. */
static tn_status test_args(tn_gp *g, const char *fn, const double *test_test, size_t n_test,
                           const double *mean, const double *cov)
{
    tn_ctx *ctx = g->ctx;
    if (cov) TNI_TRY(tni_check_ptr(ctx, fn, test_test, "nngp_test_test (cov is not NULL)"));
    if (n_test == 0)
        return tni_fail(ctx, TN_E_INVALID_ARG, "%s: n_test is 0 (no test examples)", fn);
    TNI_TRY(tni_check_matrix(ctx, fn, "the test-train kernel", n_test, g->n));
    if (mean) TNI_TRY(tni_check_matrix(ctx, fn, "mean", n_test, g->O));
    if (cov) TNI_TRY(tni_check_matrix(ctx, fn, "cov", n_test, n_test));
    TNI_TRY(lapack_dim(ctx, fn, "n_test", n_test, (size_t)INT_MAX));
    if (cov) {
        TNI_TRY(tni_check_kernel(ctx, fn, "nngp_test_test", test_test, n_test));
        /* Its diagonal holds prior variances. */
        for (size_t a = 0; a < n_test; a++)
            if (test_test[a * n_test + a] < 0)
                return tni_fail(ctx, TN_E_NUMERIC,
                                "%s: nngp_test_test[%zu][%zu] = %g is a negative variance: not "
                                "a kernel",
                                fn, a, a, test_test[a * n_test + a]);
    }
    return TN_OK;
}

TN_API tn_status tn_gp_nngp_posterior(tn_gp *g, const double *nngp_test_train,
                                      const double *nngp_test_test, size_t n_test,
                                      double *mean, double *cov)
{
    static const char fn[] = "tn_gp_nngp_posterior";
    TNI_TRY(tni_check_handle(g, TNI_MAGIC_GP));
    TNI_TRY(tni_check_ptr(g->ctx, fn, nngp_test_train, "nngp_test_train"));
    TNI_TRY(test_args(g, fn, nngp_test_test, n_test, mean, cov));
    TNI_TRY(tni_check_finite(g->ctx, fn, "nngp_test_train", nngp_test_train, n_test * g->n));
    return tni_gp_nngp_posterior(g, nngp_test_train, cov ? nngp_test_test : NULL, n_test, mean,
                                 cov);
}

TN_API tn_status tn_gp_ntk_posterior(tn_gp *g, double t, const double *ntk_test_train,
                                     const double *nngp_test_train,
                                     const double *nngp_test_test, size_t n_test,
                                     double *mean, double *cov)
{
    static const char fn[] = "tn_gp_ntk_posterior";
    TNI_TRY(tni_check_handle(g, TNI_MAGIC_GP));
    tn_ctx *ctx = g->ctx;
    if (g->ntk.K == NULL)
        return tni_fail(ctx, TN_E_STATE,
                        "%s: the GP was created without ntk_train, so it can only give the NNGP "
                        "posterior",
                        fn);
    TNI_TRY(check_time(ctx, fn, t, 0));
    TNI_TRY(tni_check_ptr(ctx, fn, ntk_test_train, "ntk_test_train"));
    /* The mean needs only the NTK; the NNGP blocks enter the covariance. */
    if (cov)
        TNI_TRY(tni_check_ptr(ctx, fn, nngp_test_train, "nngp_test_train (cov is not NULL)"));
    TNI_TRY(test_args(g, fn, nngp_test_test, n_test, mean, cov));
    TNI_TRY(tni_check_finite(ctx, fn, "ntk_test_train", ntk_test_train, n_test * g->n));
    if (cov)
        TNI_TRY(tni_check_finite(ctx, fn, "nngp_test_train", nngp_test_train, n_test * g->n));
    return tni_gp_ntk_posterior(g, t, ntk_test_train, cov ? nngp_test_train : NULL,
                                cov ? nngp_test_test : NULL, n_test, mean, cov);
}

TN_API void tn_gp_free(tn_gp *g)
{
    if (tni_check_handle(g, TNI_MAGIC_GP) == TN_OK) tni_gp_delete(g);
}
