/* api_taylor.c -- public entry points of the Taylor expansion: checks, then
 * taylor/. */
#include "check.h"
#include "../net/net.h"
#include "../taylor/taylor.h"

#include <math.h>
#include <string.h>

TN_API int tn_taylor_max_order(void)
{
    return TNI_MAX_ORDER;
}

TN_API tn_status tn_taylor_create(tn_net *net, int order, tn_taylor **out)
{
    static const char fn[] = "tn_taylor_create";
    if (out) *out = NULL;
    TNI_TRY(tni_check_handle(net, TNI_MAGIC_NET));
    TNI_TRY(tni_check_ptr(net->ctx, fn, out, "out"));
    if (!net->initialized)
        return tni_fail(net->ctx, TN_E_STATE, "%s: the network is not initialized", fn);
    if (order < 1 || order > TNI_MAX_ORDER)
        return tni_fail(net->ctx, TN_E_INVALID_ARG, "%s: order %d is outside [1, %d]", fn, order,
                        TNI_MAX_ORDER);
    return tni_taylor_new(net, (size_t)order, out);
}

TN_API int tn_taylor_order(const tn_taylor *t)
{
    return tni_check_handle(t, TNI_MAGIC_TAYLOR) == TN_OK ? (int)t->ex.order : 0;
}

TN_API tn_status tn_taylor_rebase(tn_taylor *t, const double *theta0, size_t len)
{
    static const char fn[] = "tn_taylor_rebase";
    TNI_TRY(tni_check_handle(t, TNI_MAGIC_TAYLOR));
    if (theta0 == NULL) {
        tni_expansion_rebase(&t->ex, tni_net_theta(t->ex.net));
        return TN_OK;
    }
    TNI_TRY(tni_check_len(t->ctx, fn, "theta0", len, t->ex.P));
    if (!tni_all_finite(theta0, len))
        return tni_fail(t->ctx, TN_E_INVALID_ARG, "%s: theta0 has a value that is not finite", fn);
    tni_expansion_rebase(&t->ex, theta0);
    return TN_OK;
}

TN_API tn_status tn_taylor_get_base(const tn_taylor *t, double *theta0, size_t len)
{
    static const char fn[] = "tn_taylor_get_base";
    TNI_TRY(tni_check_handle(t, TNI_MAGIC_TAYLOR));
    TNI_TRY(tni_check_ptr(t->ctx, fn, theta0, "theta0"));
    TNI_TRY(tni_check_len(t->ctx, fn, "theta0", len, t->ex.P));
    for (size_t i = 0; i < len; i++) theta0[i] = t->ex.theta0[i];
    return TN_OK;
}

static tn_status eval_args(tn_taylor *t, const char *fn, const double *x, size_t n,
                           const void *out, const char *outname)
{
    TNI_TRY(tni_check_handle(t, TNI_MAGIC_TAYLOR));
    TNI_TRY(tni_check_ptr(t->ctx, fn, x, "x"));
    TNI_TRY(tni_check_ptr(t->ctx, fn, out, outname));
    TNI_TRY(tni_check_rows(t->ctx, fn, n));
    TNI_TRY(tni_check_matrix(t->ctx, fn, "x", n, t->ex.d));
    size_t blocks;
    if (tni_mul_overflow(n, t->ex.O, &blocks)) blocks = SIZE_MAX;
    TNI_TRY(tni_check_matrix(t->ctx, fn, outname, blocks, t->ex.order + 1));
    return tni_check_finite(t->ctx, fn, "x", x, n * t->ex.d);
}

/* theta, or the net's parameters for NULL; a theta that is not finite is
 * refused as tn_taylor_rebase refuses such a theta0. */
static tn_status theta_or_net(const tn_taylor *t, const char *fn, const double **theta)
{
    if (*theta == NULL) {
        *theta = tni_net_theta(t->ex.net);
        return TN_OK;
    }
    return tni_check_finite(t->ctx, fn, "theta", *theta, t->ex.P);
}

/* The status of an evaluation; one refused leaves nothing to report the
 * term norms or the divergence of (their state is the refused pass's). */
static tn_status evaluated(tn_taylor *t, tn_status st)
{
    if (st != TN_OK) t->evaluated = 0;
    return st;
}

TN_API tn_status tn_taylor_forward(tn_taylor *t, const double *theta, const double *x, size_t n,
                                   double *y)
{
    static const char fn[] = "tn_taylor_forward";
    TNI_TRY(eval_args(t, fn, x, n, y, "y"));
    TNI_TRY(theta_or_net(t, fn, &theta));
    return evaluated(t, tni_check_result(t->ctx, fn,
                                         tni_taylor_eval(t, theta, x, n, y, NULL, NULL, NULL), y,
                                         n * t->ex.O));
}

TN_API tn_status tn_taylor_terms(tn_taylor *t, const double *theta, const double *x, size_t n,
                                 double *terms)
{
    static const char fn[] = "tn_taylor_terms";
    TNI_TRY(eval_args(t, fn, x, n, terms, "terms"));
    TNI_TRY(theta_or_net(t, fn, &theta));
    return evaluated(t, tni_check_result(t->ctx, fn,
                                         tni_taylor_eval(t, theta, x, n, NULL, terms, NULL, NULL),
                                         terms, (t->ex.order + 1) * n * t->ex.O));
}

TN_API tn_status tn_taylor_vjp(tn_taylor *t, const double *theta, const double *x, size_t n,
                               const double *cotangent, double *grad)
{
    static const char fn[] = "tn_taylor_vjp";
    TNI_TRY(eval_args(t, fn, x, n, grad, "grad"));
    TNI_TRY(tni_check_ptr(t->ctx, fn, cotangent, "cotangent"));
    TNI_TRY(tni_check_finite(t->ctx, fn, "cotangent", cotangent, n * t->ex.O));
    TNI_TRY(theta_or_net(t, fn, &theta));
    return evaluated(t, tni_check_result(t->ctx, fn,
                                         tni_taylor_eval(t, theta, x, n, NULL, NULL, cotangent,
                                                         grad),
                                         grad, t->ex.P));
}

TN_API tn_status tn_taylor_term_norms(const tn_taylor *t, double *norms, size_t len)
{
    static const char fn[] = "tn_taylor_term_norms";
    TNI_TRY(tni_check_handle(t, TNI_MAGIC_TAYLOR));
    TNI_TRY(tni_check_ptr(t->ctx, fn, norms, "norms"));
    TNI_TRY(tni_check_len(t->ctx, fn, "norms", len, t->ex.order + 1));
    if (!t->evaluated)
        return tni_fail(t->ctx, TN_E_STATE, "%s: no successful evaluation yet", fn);
    double out[TNI_MAX_ORDER + 1];
    for (size_t j = 0; j < len; j++) {
        out[j] = t->norm_scale[j] * sqrt(t->norm_ssq[j]);
        if (!isfinite(out[j]))
            return tni_fail(t->ctx, TN_E_NUMERIC,
                            "%s: the norm of term %zu overflows (its entries are finite, near the "
                            "largest double)", fn, j);
    }
    memcpy(norms, out, len * sizeof(double));
    return TN_OK;
}

TN_API tn_status tn_taylor_divergence(const tn_taylor *t, double *ratio)
{
    static const char fn[] = "tn_taylor_divergence";
    TNI_TRY(tni_check_handle(t, TNI_MAGIC_TAYLOR));
    TNI_TRY(tni_check_ptr(t->ctx, fn, ratio, "ratio"));
    if (!t->evaluated)
        return tni_fail(t->ctx, TN_E_STATE, "%s: no successful evaluation yet", fn);
    const size_t k = t->ex.order;
    const double top = t->norm_scale[k], below = t->norm_scale[k - 1];
    /* A series that stopped (top == 0) converged, whatever came before it.
     * The ratio of scaled norms never divides infinities (a NaN before):
     * it is finite, or INFINITY when the top term dwarfs the one below
     * beyond the range of doubles. */
    *ratio = top == 0.0 ? 0.0
             : below == 0.0
                 ? INFINITY
                 : (top / below) * sqrt(t->norm_ssq[k] / t->norm_ssq[k - 1]);
    return TN_OK;
}

TN_API void tn_taylor_free(tn_taylor *t)
{
    if (tni_check_handle(t, TNI_MAGIC_TAYLOR) == TN_OK) tni_taylor_delete(t);
}
