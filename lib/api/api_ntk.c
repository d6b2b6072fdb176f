/* api_ntk.c -- public entry points of the NTK: checks, then ntk/. */
#include "check.h"
#include "../ntk/analytic.h"
#include "../ntk/ntk.h"

#include <math.h>

#define TNI_NTK_DEFAULT_BUDGET ((size_t)256 << 20)
#define TNI_NTK_MIN_BUDGET ((size_t)1 << 20)

TN_API tn_status tn_ntk_create(tn_net *net, tn_ntk **out)
{
    static const char fn[] = "tn_ntk_create";
    if (out) *out = NULL;
    TNI_TRY(tni_check_handle(net, TNI_MAGIC_NET));
    TNI_TRY(tni_check_ptr(net->ctx, fn, out, "out"));
    if (!net->initialized)
        return tni_fail(net->ctx, TN_E_STATE, "%s: the network is not initialized", fn);
    tn_ntk *k = tni_alloc_or_fail(net->ctx, fn, 1, sizeof *k);
    if (k == NULL) return TN_E_NOMEM;
    k->magic = TNI_MAGIC_NTK;
    k->ctx = net->ctx;
    k->net = net;
    k->method = TN_NTK_AUTO;
    k->full = 0;
    k->budget = TNI_NTK_DEFAULT_BUDGET;
    *out = k;
    return TN_OK;
}

TN_API tn_status tn_ntk_set(tn_ntk *k, tn_ntk_param p, double v)
{
    static const char fn[] = "tn_ntk_set";
    TNI_TRY(tni_check_handle(k, TNI_MAGIC_NTK));
    switch (p) {
    case TN_NTK_METHOD:
        if (v != TN_NTK_AUTO && v != TN_NTK_STRUCTURED && v != TN_NTK_JACOBIAN &&
            v != TN_NTK_VECTOR_PRODUCTS)
            return tni_fail(k->ctx, TN_E_INVALID_ARG, "%s: method %g is not a TN_NTK_* method", fn, v);
        k->method = (int)v;
        return TN_OK;
    case TN_NTK_OUTPUTS:
        if (v != TN_NTK_TRACE && v != TN_NTK_FULL)
            return tni_fail(k->ctx, TN_E_INVALID_ARG,
                            "%s: outputs %g is neither TN_NTK_TRACE nor TN_NTK_FULL", fn, v);
        k->full = v == TN_NTK_FULL;
        return TN_OK;
    case TN_NTK_MEMORY_BUDGET:
        if (!(v >= (double)TNI_NTK_MIN_BUDGET && v <= (double)SIZE_MAX / 2 && v == floor(v)))
            return tni_fail(k->ctx, TN_E_INVALID_ARG,
                            "%s: memory budget %g must be a whole number of bytes >= %zu", fn, v,
                            TNI_NTK_MIN_BUDGET);
        /* What was kept for the old budget may exceed the new one. */
        if ((size_t)v != k->budget) tni_ntk_release_work(k);
        k->budget = (size_t)v;
        return TN_OK;
    }
    return tni_fail(k->ctx, TN_E_INVALID_ARG, "%s: %d is not a tn_ntk_param", fn, (int)p);
}

TN_API tn_status tn_ntk_get(const tn_ntk *k, tn_ntk_param p, double *value)
{
    TNI_TRY(tni_check_handle(k, TNI_MAGIC_NTK));
    TNI_TRY(tni_check_ptr(k->ctx, "tn_ntk_get", value, "value"));
    switch (p) {
    case TN_NTK_METHOD: *value = k->method; return TN_OK;
    case TN_NTK_OUTPUTS: *value = k->full ? TN_NTK_FULL : TN_NTK_TRACE; return TN_OK;
    case TN_NTK_MEMORY_BUDGET: *value = (double)k->budget; return TN_OK;
    }
    return tni_fail(k->ctx, TN_E_INVALID_ARG, "tn_ntk_get: %d is not a tn_ntk_param", (int)p);
}

/* x1, n1, x2, n2 and an output of side1 x side2 values. */
static tn_status pair_args(tn_ntk *k, const char *fn, const double *x1, size_t n1,
                           const double *x2, size_t n2, size_t per_row)
{
    TNI_TRY(tni_check_ptr(k->ctx, fn, x1, "x1"));
    TNI_TRY(tni_check_rows(k->ctx, fn, n1));
    if (x2 != NULL && n2 == 0) return tni_fail(k->ctx, TN_E_INVALID_ARG, "%s: n2 is 0", fn);
    const size_t d = tn_net_input_size(k->net), m2 = x2 ? n2 : n1;
    TNI_TRY(tni_check_matrix(k->ctx, fn, "x1", n1, d));
    if (x2) TNI_TRY(tni_check_matrix(k->ctx, fn, "x2", n2, d));
    size_t s1, s2;
    if (tni_mul_overflow(n1, per_row, &s1) || tni_mul_overflow(m2, per_row, &s2))
        return tni_fail(k->ctx, TN_E_INVALID_ARG, "%s: the kernel's size overflows", fn);
    return tni_check_matrix(k->ctx, fn, "the kernel", s1, s2);
}

TN_API tn_status tn_ntk_compute(tn_ntk *k, const double *x1, size_t n1, const double *x2,
                                size_t n2, double *K)
{
    static const char fn[] = "tn_ntk_compute";
    TNI_TRY(tni_check_handle(k, TNI_MAGIC_NTK));
    TNI_TRY(tni_check_ptr(k->ctx, fn, K, "K"));
    const size_t per_row = k->full ? tn_net_output_dim(k->net) : 1;
    TNI_TRY(pair_args(k, fn, x1, n1, x2, n2, per_row));
    const size_t d = tn_net_input_size(k->net), m2 = x2 ? n2 : n1;
    /* As tn_ntk_analytic: an input that is not finite has no kernel. */
    TNI_TRY(tni_check_finite(k->ctx, fn, "x1", x1, n1 * d));
    if (x2) TNI_TRY(tni_check_finite(k->ctx, fn, "x2", x2, n2 * d));
    return tni_check_result(k->ctx, fn, tni_ntk_compute(k, x1, n1, x2, n2, K), K,
                            n1 * per_row * m2 * per_row);
}

TN_API tn_status tn_ntk_analytic(tn_ntk *k, const double *x1, size_t n1, const double *x2,
                                 size_t n2, double *nngp, double *ntk)
{
    static const char fn[] = "tn_ntk_analytic";
    TNI_TRY(tni_check_handle(k, TNI_MAGIC_NTK));
    if (nngp == NULL && ntk == NULL)
        return tni_fail(k->ctx, TN_E_INVALID_ARG, "%s: nngp and ntk are both NULL", fn);
    TNI_TRY(pair_args(k, fn, x1, n1, x2, n2, 1));
    const tn_net *net = k->net;
    if (net->parameterization != TN_PARAM_NTK)
        return tni_fail(k->ctx, TN_E_UNSUPPORTED,
                        "%s: infinite-width kernels are defined under NTK parameterization", fn);
    const tni_settings s = tni_net_settings(net);
    return tni_analytic_graph(k->ctx, fn, tni_net_graph(net), &s, k->budget, x1, n1, x2,
                              x2 ? n2 : n1, nngp, ntk);
}

TN_API tn_status tn_ntk_monte_carlo(tn_ntk *k, uint64_t seed, size_t samples, const double *x1,
                                    size_t n1, const double *x2, size_t n2, double *nngp,
                                    double *ntk)
{
    static const char fn[] = "tn_ntk_monte_carlo";
    TNI_TRY(tni_check_handle(k, TNI_MAGIC_NTK));
    if (nngp == NULL && ntk == NULL)
        return tni_fail(k->ctx, TN_E_INVALID_ARG, "%s: nngp and ntk are both NULL", fn);
    if (samples == 0) return tni_fail(k->ctx, TN_E_INVALID_ARG, "%s: samples is 0", fn);
    const size_t per_row = k->full ? tn_net_output_dim(k->net) : 1;
    TNI_TRY(pair_args(k, fn, x1, n1, x2, n2, per_row));
    const size_t d = tn_net_input_size(k->net), m2 = x2 ? n2 : n1;
    TNI_TRY(tni_check_finite(k->ctx, fn, "x1", x1, n1 * d));
    if (x2) TNI_TRY(tni_check_finite(k->ctx, fn, "x2", x2, n2 * d));
    tn_status st = tni_ntk_monte_carlo(k, seed, samples, x1, n1, x2, n2, nngp, ntk);
    const size_t size = n1 * per_row * m2 * per_row;
    if (nngp) st = tni_check_result(k->ctx, fn, st, nngp, size);
    if (ntk) st = tni_check_result(k->ctx, fn, st, ntk, size);
    return st;
}

TN_API void tn_ntk_free(tn_ntk *k)
{
    if (tni_check_handle(k, TNI_MAGIC_NTK) != TN_OK) return;
    tni_tape_free(k->tape);
    tni_ntk_release_work(k);
    k->magic = TNI_MAGIC_DEAD;
    tni_free(k);
}
