/* taylor.h -- the public expansion handle over tni_expansion. */
#ifndef TNI_TAYLOR_H
#define TNI_TAYLOR_H

#include "expansion.h"

struct tn_taylor {
    uint32_t magic;
    tn_ctx *ctx;
    tni_expansion ex;
    /* Frobenius norm of each output term z_j over the rows of the last
     * evaluation, as scale[j] sqrt(ssq[j]) (LAPACK's dnrm2 scaling: no
     * square overflows or underflows); the divergence indicator is built
     * from them. */
    double norm_scale[TNI_MAX_ORDER + 1], norm_ssq[TNI_MAX_ORDER + 1];
    int evaluated;
};

tn_status tni_taylor_new(tn_net *net, size_t order, tn_taylor **out);
void tni_taylor_delete(tn_taylor *t);

/* One pass over n rows of x in chunks, serving forward (y: the sum of the
 * terms), terms (terms: order+1 blocks of n x O) and the VJP (cot -> grad);
 * any output may be NULL.  theta is the full parameter vector. */
tn_status tni_taylor_eval(tn_taylor *t, const double *theta, const double *x, size_t n,
                          double *y, double *terms, const double *cot, double *grad);

#endif
