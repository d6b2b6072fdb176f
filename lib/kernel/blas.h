/*
 * blas.h -- matrix products over BLIS's typed API, on the kernel set of
 * kernel/kernels.h.  Row-major everywhere.  `threads` is the context's count:
 * a product large enough is cut into that many bands of C, each computed by
 * a single-threaded BLIS call on a thread of the caller's pool
 * (kernel/parallel.h); BLIS's own threads and global settings are never
 * used.  Arguments are assumed valid: the layers above check them, because
 * BLIS aborts on bad ones.
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
