/* jacobian.c -- the parts of an NTK tile pair formed by Jacobian contraction:
 * rows (i, c) of J hold d f_c(x_i) / d theta over the Jacobian nodes'
 * parameters (features.c assembles them), and one GEMM adds J_A J_B^T. */
#include "features.h"
#include "../kernel/blas.h"

void tni_jacobian_block(int threads, size_t O, size_t cols, int full, const double *JA, size_t a,
                        const double *JB, size_t b, int diag, double *K, size_t ldk)
{
    if (cols == 0) return;
    if (!full) {
        /* Traced: rows of O cols values (all outputs of an example), summed over c = d. */
        if (diag)
            tni_syrk_lower(threads, a, O * cols, 1.0, JA, O * cols, 1.0, K, ldk);
        else
            tni_gemm(threads, TNI_NOTRANS, TNI_TRANS, a, b, O * cols, 1.0, JA, O * cols, JB,
                     O * cols, 1.0, K, ldk);
    } else if (diag) {
        tni_syrk_lower(threads, a * O, cols, 1.0, JA, cols, 1.0, K, ldk);
    } else {
        tni_gemm(threads, TNI_NOTRANS, TNI_TRANS, a * O, b * O, cols, 1.0, JA, cols, JB, cols, 1.0,
                 K, ldk);
    }
}
