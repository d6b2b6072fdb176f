/* blas.c -- BLIS typed-API wrappers, threaded by the library (blas.h). */
#include "blas.h"
#include "kernels.h"
#include "parallel.h"

#include <blis.h>
#include <math.h>

/* Products below this many flops run on one thread: waking a worker costs
 * a few microseconds, what ~1 MFLOP takes at full speed. */
#define MIN_SPLIT_FLOPS 4e6
/* Parts are cut at multiples of this many rows or columns (whole cache
 * lines of C; BLIS's micro-tiles are 6 to 16 wide). */
#define ALIGN 8

static void scale_block(size_t m, size_t n, double beta, double *C, size_t ldc)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++)
            C[i * ldc + j] = beta == 0.0 ? 0.0 : beta * C[i * ldc + j];
}

/* One single-threaded BLIS call on the selected kernel set.  The row-major
 * product C = op(A) op(B) is issued as the column-major C^T = op(B)^T
 * op(A)^T over the same memory, as the Fortran BLAS interface issues it:
 * with C stored by columns BLIS 0.9.0 runs the step's shapes 2-4% faster on
 * the skx kernels (27-49% on the 10-wide readout), and never slower on
 * haswell or zen3 (docs/guide/performance.md).  The sums are the same; only
 * which operand is packed as which changes. */
static void gemm1(tni_trans ta, tni_trans tb, size_t m, size_t n, size_t k, double alpha,
                  const double *A, size_t lda, const double *B, size_t ldb, double beta,
                  double *C, size_t ldc)
{
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(1, &rntm);
    double a = alpha, b = beta;
    bli_dgemm_ex(tb == TNI_TRANS ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 ta == TNI_TRANS ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, (dim_t)n, (dim_t)m,
                 (dim_t)k, &a, (double *)B, 1, (inc_t)ldb, (double *)A, 1, (inc_t)lda, &b, C, 1,
                 (inc_t)ldc, (cntx_t *)tni_kernels_cntx(), &rntm);
}

static void syrk1(size_t n, size_t k, double alpha, const double *A, size_t lda, double beta,
                  double *C, size_t ldc)
{
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(1, &rntm);
    double a = alpha, b = beta;
    /* The row-major lower triangle of A A^T is the column-major upper
     * triangle of the same product: issued by columns, as gemm1. */
    bli_dsyrk_ex(BLIS_UPPER, BLIS_TRANSPOSE, (dim_t)n, (dim_t)k, &a, (double *)A, 1, (inc_t)lda,
                 &b, C, 1, (inc_t)ldc, (cntx_t *)tni_kernels_cntx(), &rntm);
}

typedef struct gemm_job {
    tni_trans ta, tb;
    size_t m, n, k, parts;
    int split_rows;
    double alpha, beta;
    const double *A, *B;
    size_t lda, ldb, ldc;
    double *C;
} gemm_job;

/* Part p of C: a band of rows (op(A) rows) or of columns (op(B) columns). */
static void gemm_part(void *arg, size_t p, double *scratch)
{
    (void)scratch;
    const gemm_job *j = arg;
    size_t lo, hi;
    if (j->split_rows) {
        tni_split_range(j->m, j->parts, ALIGN, p, &lo, &hi);
        if (hi > lo)
            gemm1(j->ta, j->tb, hi - lo, j->n, j->k, j->alpha,
                  j->A + (j->ta == TNI_TRANS ? lo : lo * j->lda), j->lda, j->B, j->ldb, j->beta,
                  j->C + lo * j->ldc, j->ldc);
    } else {
        tni_split_range(j->n, j->parts, ALIGN, p, &lo, &hi);
        if (hi > lo)
            gemm1(j->ta, j->tb, j->m, hi - lo, j->k, j->alpha, j->A, j->lda,
                  j->B + (j->tb == TNI_TRANS ? lo * j->ldb : lo), j->ldb, j->beta, j->C + lo,
                  j->ldc);
    }
}

/* Parts worth cutting `len` items into for `threads` threads. */
static size_t parts_for(int threads, size_t len, double flops)
{
    size_t parts = (size_t)tni_threads_usable(threads);
    if (flops < MIN_SPLIT_FLOPS) return 1;
    const size_t most = (len + ALIGN - 1) / ALIGN;
    return parts < most ? parts : most;
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
    /* Cutting C's columns makes every part pack all of op(A) (m x k),
     * cutting its rows all of op(B) (k x n): cut the dimension whose other
     * operand is the smaller. */
    const int split_rows = m > n;
    const double flops = 2.0 * (double)m * (double)n * (double)k;
    const size_t parts = parts_for(threads, split_rows ? m : n, flops);
    if (parts <= 1) {
        gemm1(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    gemm_job j = {ta, tb, m, n, k, parts, split_rows, alpha, beta, A, B, lda, ldb, ldc, C};
    tni_parallel(threads, parts, gemm_part, &j, NULL);
}

typedef struct syrk_job {
    size_t n, k, parts;
    double alpha, beta;
    const double *A;
    size_t lda, ldc;
    double *C;
} syrk_job;

/* Band b of rows [r0, r1) of the lower triangle: its rectangle left of the
 * diagonal block (a GEMM) and its diagonal block (a SYRK).  Bounds at
 * n sqrt(b / parts) give every band the same area. */
static size_t band_edge(const syrk_job *j, size_t b)
{
    if (b >= j->parts) return j->n;
    size_t r = (size_t)((double)j->n * sqrt((double)b / (double)j->parts));
    r = r / ALIGN * ALIGN;
    return r < j->n ? r : j->n;
}

static void syrk_part(void *arg, size_t b, double *scratch)
{
    (void)scratch;
    const syrk_job *j = arg;
    const size_t r0 = band_edge(j, b), r1 = band_edge(j, b + 1);
    if (r1 <= r0) return;
    if (r0 > 0)
        gemm1(TNI_NOTRANS, TNI_TRANS, r1 - r0, r0, j->k, j->alpha, j->A + r0 * j->lda, j->lda,
              j->A, j->lda, j->beta, j->C + r0 * j->ldc, j->ldc);
    syrk1(r1 - r0, j->k, j->alpha, j->A + r0 * j->lda, j->lda, j->beta,
          j->C + r0 * j->ldc + r0, j->ldc);
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
    const size_t parts = parts_for(threads, n, (double)n * (double)n * (double)k);
    if (parts <= 1) {
        syrk1(n, k, alpha, A, lda, beta, C, ldc);
        return;
    }
    syrk_job j = {n, k, parts, alpha, beta, A, lda, ldc, C};
    tni_parallel(threads, parts, syrk_part, &j, NULL);
}

void tni_symmetrize_lower(size_t n, double *C, size_t ldc)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            C[i * ldc + j] = C[j * ldc + i];
}
