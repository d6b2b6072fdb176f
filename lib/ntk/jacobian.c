/* jacobian.c -- NTK blocks by explicit per-example Jacobians contracted with
 * one GEMM: rows (i, c) of J are d f_c(x_i) / d theta, assembled from the
 * gradient factors (d f_c / d W = w g^c x^T, d f_c / d b = b g^c). */
#include "ntk.h"
#include "../kernel/blas.h"

#include <string.h>

void tni_jacobian_rows(const tni_param_layers *pl, size_t O, size_t P, const tni_features *F,
                       double *J)
{
    for (size_t i = 0; i < F->rows; i++)
        for (size_t c = 0; c < O; c++) {
            double *row = J + (i * O + c) * P;
            for (size_t m = 0; m < pl->count; m++) {
                const tni_layer *L = pl->layer[m];
                const size_t in = L->in_size, out = L->out_size;
                const double *x = F->X[m] + i * in, *g = F->G[m] + (i * O + c) * out;
                double *w = row + L->offset, *b = w + out * in;
                for (size_t o = 0; o < out; o++) {
                    const double go = L->w_scale * g[o];
                    for (size_t q = 0; q < in; q++) w[o * in + q] = go * x[q];
                    b[o] = L->b_scale * g[o];
                }
            }
        }
}

void tni_jacobian_block(int threads, size_t O, size_t P, int full, const double *JA, size_t a,
                        const double *JB, size_t b, int diag, double *K, size_t ldk)
{
    if (!full) {
        /* Traced: rows of O P values (all outputs of an example), scaled 1/O. */
        const double s = 1.0 / (double)O;
        if (diag)
            tni_syrk_lower(threads, a, O * P, s, JA, O * P, 0.0, K, ldk);
        else
            tni_gemm(threads, TNI_NOTRANS, TNI_TRANS, a, b, O * P, s, JA, O * P, JB, O * P, 0.0,
                     K, ldk);
    } else if (diag) {
        tni_syrk_lower(threads, a * O, P, 1.0, JA, P, 0.0, K, ldk);
    } else {
        tni_gemm(threads, TNI_NOTRANS, TNI_TRANS, a * O, b * O, P, 1.0, JA, P, JB, P, 0.0, K, ldk);
    }
}
