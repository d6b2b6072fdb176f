/*
 * check.h -- the argument checks every public entry point starts with.
 * Each records "<function>: <what is wrong>" in the handle's context and
 * returns the status, so entry points read as a list of preconditions.
 */
#ifndef TNI_CHECK_H
#define TNI_CHECK_H

#include "../core/core.h"

/* A handle: NULL -> TN_E_INVALID_ARG (no context to hold a message),
 * wrong tag -> TN_E_MISUSE. */
static inline tn_status tni_check_handle(const void *h, uint32_t magic)
{
    if (h == NULL) return TN_E_INVALID_ARG;
    if (*(const uint32_t *)h != magic) return TN_E_MISUSE;
    return TN_OK;
}

static inline tn_status tni_check_ptr(tn_ctx *ctx, const char *fn, const void *p,
                                      const char *name)
{
    return p ? TN_OK : tni_fail(ctx, TN_E_INVALID_ARG, "%s: %s is NULL", fn, name);
}

static inline tn_status tni_check_rows(tn_ctx *ctx, const char *fn, size_t n)
{
    return n ? TN_OK : tni_fail(ctx, TN_E_INVALID_ARG, "%s: n is 0 (no examples)", fn);
}

static inline tn_status tni_check_len(tn_ctx *ctx, const char *fn, const char *name,
                                      size_t len, size_t want)
{
    return len == want ? TN_OK
                       : tni_fail(ctx, TN_E_SHAPE, "%s: %s has length %zu, expected %zu", fn,
                                  name, len, want);
}

/* Rows x cols must fit in memory arithmetic (it is about to be indexed). */
static inline tn_status tni_check_matrix(tn_ctx *ctx, const char *fn, const char *name,
                                         size_t rows, size_t cols)
{
    size_t n;
    if (tni_mul_overflow(rows, cols, &n) || n > SIZE_MAX / sizeof(double))
        return tni_fail(ctx, TN_E_INVALID_ARG, "%s: %s of %zu x %zu overflows", fn, name, rows,
                        cols);
    return TN_OK;
}

/* Every value of an input array finite: a NaN or infinity in an input can
 * only give a result that is not finite, so it is refused as an argument
 * (TN_E_INVALID_ARG), the same way by every call. */
static inline tn_status tni_check_finite(tn_ctx *ctx, const char *fn, const char *name,
                                         const double *v, size_t n)
{
    return tni_all_finite(v, n)
               ? TN_OK
               : tni_fail(ctx, TN_E_INVALID_ARG, "%s: %s has a value that is not finite", fn, name);
}

/* The status of a computation whose n results are in v, refusing results
 * that are not finite: finite inputs and parameters can still overflow
 * (TN_E_NUMERIC), and no call returns TN_OK with such a result. */
static inline tn_status tni_check_result(tn_ctx *ctx, const char *fn, tn_status st,
                                         const double *v, size_t n)
{
    if (st != TN_OK || tni_all_finite(v, n)) return st;
    return tni_fail(ctx, TN_E_NUMERIC,
                    "%s: the result is not finite (it overflows: inputs or parameters too large)",
                    fn);
}

#endif
