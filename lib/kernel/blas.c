/* blas.c -- BLIS typed-API wrappers with a per-call thread count (blas.h). */
#include "blas.h"
#include "kernels.h"

#include <blis.h>

static void rntm_for(rntm_t *r, int threads)
{
    bli_rntm_init(r);
    bli_rntm_set_num_threads(threads > 0 ? threads : 1, r);
}

static void scale_block(size_t m, size_t n, double beta, double *C, size_t ldc)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++)
            C[i * ldc + j] = beta == 0.0 ? 0.0 : beta * C[i * ldc + j];
}

void tni_gemm(int threads, tni_trans ta, tni_trans tb, size_t m, size_t n, size_t k,
              double alpha, const double *A, size_t lda, const double *B, size_t ldb,
              double beta, double *C, size_t ldc)
{
    if (m == 0 || n == 0) return;
    if (k == 0 || alpha == 0.0) {
        scale_block(m, n, beta, C, ldc);
        return;
    }
    rntm_t rntm;
    rntm_for(&rntm, threads);
    double a = alpha, b = beta;
    bli_dgemm_ex(ta == TNI_TRANS ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 tb == TNI_TRANS ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 (dim_t)m, (dim_t)n, (dim_t)k, &a,
                 (double *)A, (inc_t)lda, 1, (double *)B, (inc_t)ldb, 1,
                 &b, C, (inc_t)ldc, 1, tni_kernels_cntx(), &rntm);
}

void tni_syrk_lower(int threads, size_t n, size_t k, double alpha, const double *A, size_t lda,
                    double beta, double *C, size_t ldc)
{
    if (n == 0) return;
    if (k == 0 || alpha == 0.0) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j <= i; j++)
                C[i * ldc + j] = beta == 0.0 ? 0.0 : beta * C[i * ldc + j];
        return;
    }
    rntm_t rntm;
    rntm_for(&rntm, threads);
    double a = alpha, b = beta;
    bli_dsyrk_ex(BLIS_LOWER, BLIS_NO_TRANSPOSE, (dim_t)n, (dim_t)k, &a,
                 (double *)A, (inc_t)lda, 1, &b, C, (inc_t)ldc, 1, tni_kernels_cntx(), &rntm);
}

void tni_symmetrize_lower(size_t n, double *C, size_t ldc)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            C[i * ldc + j] = C[j * ldc + i];
}
