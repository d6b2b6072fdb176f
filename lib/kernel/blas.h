/*
 * blas.h -- matrix products over BLIS's typed API.  Row-major everywhere.
 * The thread count travels with each call (a BLIS rntm_t built on the stack),
 * so contexts on different threads never share BLIS state and BLIS's global
 * settings are never touched.  Arguments are assumed valid: the layers above
 * check them, because BLIS aborts on bad ones.
 */
#ifndef TNI_BLAS_H
#define TNI_BLAS_H

#include <stddef.h>

typedef enum { TNI_NOTRANS = 0, TNI_TRANS = 1 } tni_trans;

/* C (m x n, leading dimension ldc) = alpha op(A) op(B) + beta C.
 * op(A) is m x k: A is stored m x k (lda) or, transposed, k x m (lda).
 * op(B) is k x n: B is stored k x n (ldb) or, transposed, n x k (ldb).
 * beta == 0 overwrites C without reading it (NaNs in C do not propagate). */
void tni_gemm(int threads, tni_trans ta, tni_trans tb, size_t m, size_t n, size_t k,
              double alpha, const double *A, size_t lda, const double *B, size_t ldb,
              double beta, double *C, size_t ldc);

/* The lower triangle of C (n x n) = alpha A A^T + beta C, A n x k (lda).
 * The strict upper triangle is left untouched. */
void tni_syrk_lower(int threads, size_t n, size_t k, double alpha, const double *A, size_t lda,
                    double beta, double *C, size_t ldc);

/* Copies the lower triangle of the n x n matrix C into its upper triangle. */
void tni_symmetrize_lower(size_t n, double *C, size_t ldc);

#endif
