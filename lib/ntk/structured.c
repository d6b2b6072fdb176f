/* structured.c -- NTK blocks from per-layer Gram products, never forming a
 * Jacobian: Theta_{ic,jd} = sum_l (w^2 <x_i, x_j> + b^2) <g_i^c, g_j^d>.
 * Traced, the sum over outputs c = d is one GEMM on rows that hold all of an
 * example's outputs; on a diagonal tile (x2 = x1) SYRK does half the work. */
#include "ntk.h"
#include "../kernel/blas.h"

size_t tni_structured_tmp_doubles(size_t a, size_t b, size_t O, int full)
{
    return a * b * (1 + (full ? O * O : 1));
}

void tni_structured_block(int threads, const tni_param_layers *pl, size_t O, int full,
                          const tni_features *A, const tni_features *B, int diag, double *K,
                          size_t ldk, double *tmp)
{
    const size_t a = A->rows, b = B->rows;
    double *Gx = tmp, *Gg = tmp + a * b;
    const double invO = 1.0 / (double)O;
    for (size_t m = 0; m < pl->count; m++) {
        const tni_layer *L = pl->layer[m];
        const size_t in = L->in_size, out = L->out_size;
        const double w2 = L->w_scale * L->w_scale, b2 = L->b_scale * L->b_scale;
        const int first = m == 0;
        if (diag)
            tni_syrk_lower(threads, a, in, 1.0, A->X[m], in, 0.0, Gx, a);
        else
            tni_gemm(threads, TNI_NOTRANS, TNI_TRANS, a, b, in, 1.0, A->X[m], in, B->X[m], in,
                     0.0, Gx, b);
        if (!full) {
            const size_t wide = O * out;   /* all of an example's outputs in one row */
            if (diag)
                tni_syrk_lower(threads, a, wide, 1.0, A->G[m], wide, 0.0, Gg, a);
            else
                tni_gemm(threads, TNI_NOTRANS, TNI_TRANS, a, b, wide, 1.0, A->G[m], wide, B->G[m],
                         wide, 0.0, Gg, b);
            for (size_t i = 0; i < a; i++) {
                const size_t jend = diag ? i + 1 : b;
                double *Ki = K + i * ldk;
                for (size_t j = 0; j < jend; j++) {
                    const double v = (w2 * Gx[i * b + j] + b2) * Gg[i * b + j] * invO;
                    Ki[j] = first ? v : Ki[j] + v;
                }
            }
        } else {
            const size_t ra = a * O, rb = b * O;
            if (diag)
                tni_syrk_lower(threads, ra, out, 1.0, A->G[m], out, 0.0, Gg, ra);
            else
                tni_gemm(threads, TNI_NOTRANS, TNI_TRANS, ra, rb, out, 1.0, A->G[m], out, B->G[m],
                         out, 0.0, Gg, rb);
            for (size_t r = 0; r < ra; r++) {
                const size_t i = r / O, cend = diag ? r + 1 : rb;
                double *Kr = K + r * ldk;
                for (size_t s = 0; s < cend; s++) {
                    const double v = (w2 * Gx[i * b + s / O] + b2) * Gg[r * rb + s];
                    Kr[s] = first ? v : Kr[s] + v;
                }
            }
        }
    }
}
