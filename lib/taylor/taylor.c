/* taylor.c -- the tn_taylor handle: chunked evaluation of f_k, its terms and
 * its VJP, with the term norms behind the divergence indicator. */
#include "taylor.h"

#include <math.h>
#include <string.h>

tn_status tni_taylor_new(tn_net *net, size_t order, tn_taylor **out)
{
    tn_ctx *ctx = tni_net_ctx(net);
    tn_taylor *t = tni_alloc_or_fail(ctx, "tn_taylor_create", 1, sizeof *t);
    if (t == NULL) return TN_E_NOMEM;
    tn_status st = tni_expansion_init(&t->ex, net, order);
    if (st != TN_OK) {
        tni_free(t);
        return st;
    }
    t->magic = TNI_MAGIC_TAYLOR;
    t->ctx = ctx;
    *out = t;
    return TN_OK;
}

void tni_taylor_delete(tn_taylor *t)
{
    tni_expansion_release(&t->ex);
    t->magic = TNI_MAGIC_DEAD;
    tni_free(t);
}

tn_status tni_taylor_eval(tn_taylor *t, const double *theta, const double *x, size_t n,
                          double *y, double *terms, const double *cot, double *grad)
{
    tni_expansion *e = &t->ex;
    const size_t O = e->O, k = e->order;
    const size_t rows = tni_net_chunk_rows(e->net, k, n);
    double scale[TNI_MAX_ORDER + 1] = {0}, ssq[TNI_MAX_ORDER + 1];
    for (size_t j = 0; j <= TNI_MAX_ORDER; j++) ssq[j] = 1.0;
    for (size_t i = 0; i < n; i += rows) {
        const size_t b = n - i < rows ? n - i : rows, blk = b * O;
        tn_status st = tni_expansion_forward(e, theta, x + i * e->d, b);
        if (st == TN_OK && grad) st = tni_expansion_reverse(e, cot + i * O, grad, i > 0);
        if (st != TN_OK) {
            t->evaluated = 0;
            return st;
        }
        size_t deg;
        const double *z = tni_engine_output(e->tape, &deg);
        for (size_t j = 0; j <= deg; j++)
            for (size_t q = 0; q < blk; q++) {
                /* Squares of terms beyond 1e154 would overflow: scaled. */
                const double a = fabs(z[j * blk + q]);
                if (a == 0.0) continue;
                if (scale[j] < a) {
                    ssq[j] = 1.0 + ssq[j] * (scale[j] / a) * (scale[j] / a);
                    scale[j] = a;
                } else {
                    ssq[j] += (a / scale[j]) * (a / scale[j]);
                }
            }
        if (y) tni_engine_output_sum(e->tape, 0, y + i * O);
        for (size_t j = 0; terms && j <= k; j++) {
            double *dst = terms + j * n * O + i * O;
            if (j <= deg)
                memcpy(dst, z + j * blk, blk * sizeof(double));
            else
                memset(dst, 0, blk * sizeof(double));
        }
    }
    memcpy(t->norm_scale, scale, sizeof scale);
    memcpy(t->norm_ssq, ssq, sizeof ssq);
    t->evaluated = 1;
    return TN_OK;
}
