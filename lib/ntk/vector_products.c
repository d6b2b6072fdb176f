/* vector_products.c -- NTK columns from NTK-vector products: for each
 * example j of x2 and output d, the gradient v = d f_d(x_j) / d theta (a VJP
 * of one row) and then J(x1) v (a JVP, the order-1 coefficient) give column
 * (j, d) of the full kernel.  Memory is one gradient and one JVP tape; time
 * is n2 O (VJP + JVP over x1). */
#include "ntk.h"

#include <string.h>

tn_status tni_vp_compute(tn_ntk *k, const double *x1, size_t n1, const double *x2, size_t n2,
                         int symmetric, double *K, size_t rows_per_jvp, double *v, double *cot)
{
    const tn_net *net = k->net;
    const size_t O = tni_net_output_dim(net), d = tni_net_input_size(net), ldk = k->full ? n2 * O : n2;
    const double *theta = tni_net_theta(net);
    const double invO = 1.0 / (double)O;
    for (size_t j = 0; j < n2; j++) {
        const size_t i0 = symmetric ? j : 0;   /* the lower triangle, mirrored later */
        if (!k->full)
            for (size_t i = i0; i < n1; i++) K[i * ldk + j] = 0.0;
        for (size_t dd = 0; dd < O; dd++) {
            memset(cot, 0, O * sizeof(double));
            cot[dd] = 1.0;
            tn_status st = tni_engine_forward(k->tape, theta, NULL, 0, x2 + j * d, 1, 0);
            if (st == TN_OK) st = tni_engine_reverse(k->tape, theta, NULL, cot, v, 0);
            if (st != TN_OK) return st;
            for (size_t i = i0; i < n1; i += rows_per_jvp) {
                const size_t b = n1 - i < rows_per_jvp ? n1 - i : rows_per_jvp;
                st = tni_engine_forward(k->tape, theta, v, 1, x1 + i * d, b, 0);
                if (st != TN_OK) return st;
                size_t deg;
                const double *z = tni_engine_output(k->tape, &deg);
                const double *jv = z + b * O;   /* order-1 block: J(x1) v */
                for (size_t r = 0; r < b; r++) {
                    if (k->full)
                        for (size_t c = 0; c < O; c++)
                            K[((i + r) * O + c) * ldk + j * O + dd] = jv[r * O + c];
                    else
                        K[(i + r) * ldk + j] += jv[r * O + dd] * invO;
                }
            }
        }
        tn_status st = tni_progress(k->ctx, "tn_ntk_compute", (double)(j + 1) / (double)n2);
        if (st != TN_OK) return st;
    }
    return TN_OK;
}
