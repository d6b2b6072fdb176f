/* linalg.c -- LAPACK wrappers, the numerical-zero policy and the time
 * factors of the linearized dynamics (linalg.h). */
#include "linalg.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Reference LAPACK, column-major, 32-bit integers.  gfortran passes the
 * length of each CHARACTER argument as a hidden trailing size_t; passing it
 * keeps the calls conforming to that ABI instead of relying on the callee
 * never reading it. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info, size_t jobz_len, size_t uplo_len);
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info,
                    size_t uplo_len);
extern void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a,
                    const int *lda, double *b, const int *ldb, int *info, size_t uplo_len);
extern void dtrtrs_(const char *uplo, const char *trans, const char *diag, const int *n,
                    const int *nrhs, const double *a, const int *lda, double *b, const int *ldb,
                    int *info, size_t uplo_len, size_t trans_len, size_t diag_len);
extern void dpocon_(const char *uplo, const int *n, const double *a, const int *lda,
                    const double *anorm, double *rcond, double *work, int *iwork, int *info,
                    size_t uplo_len);

double tni_kernel_tol(size_t m)
{
    return 1e-10 * (double)(m ? m : 1);
}

tn_status tni_check_kernel(tn_ctx *ctx, const char *fn, const char *name, const double *K,
                           size_t m)
{
    if (!tni_all_finite(K, m * m))
        return tni_fail(ctx, TN_E_INVALID_ARG, "%s: %s has a value that is not finite", fn, name);
    double kmax = 0.0;
    for (size_t i = 0; i < m * m; i++)
        if (fabs(K[i]) > kmax) kmax = fabs(K[i]);
    /* Elementwise against the largest entry: see tni_kernel_tol for why
     * 1e-10 keeps the symmetrized kernel inside the eigenvalue noise band. */
    const double tol = 1e-10 * kmax;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < i; j++) {
            const double d = fabs(K[i * m + j] - K[j * m + i]);
            if (d > tol)
                return tni_fail(ctx, TN_E_NUMERIC,
                                "%s: %s is not symmetric: |K[%zu][%zu] - K[%zu][%zu]| = %g "
                                "exceeds 1e-10 x max|K| = %g",
                                fn, name, i, j, j, i, d, tol);
        }
    return TN_OK;
}

void tni_sym_shift(const double *K, size_t m, double reg, double *out)
{
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < i; j++) {
            const double v = 0.5 * (K[i * m + j] + K[j * m + i]);
            out[i * m + j] = v;
            out[j * m + i] = v;
        }
        out[i * m + i] = K[i * m + i] + reg;
    }
}

tn_status tni_eigh(tn_ctx *ctx, const char *fn, size_t m, double *A, double *w, int vectors)
{
    const int n = (int)m;
    const char *jobz = vectors ? "V" : "N";
    int info = 0, lwork = -1, liwork = -1, iq = 0;
    double wq = 0.0;
    /* Workspace query first: dsyevd's optimal sizes depend on the LAPACK
     * build (block sizes), so they are asked for rather than hard-coded. */
    dsyevd_(jobz, "L", &n, A, &n, w, &wq, &lwork, &iq, &liwork, &info, 1, 1);
    if (info != 0 || !(wq >= 1.0) || wq > (double)INT_MAX || iq < 1)
        return tni_fail(ctx, TN_E_UNSUPPORTED,
                        "%s: LAPACK dsyevd cannot size its workspace for dimension %zu", fn, m);
    lwork = (int)wq;
    liwork = iq;
    double *work = tni_alloc(ctx, (size_t)lwork, sizeof(double));
    int *iwork = tni_alloc(ctx, (size_t)liwork, sizeof(int));
    if (work == NULL || iwork == NULL) {
        tni_free(work);
        tni_free(iwork);
        return tni_fail(ctx, TN_E_NOMEM, "%s: out of memory for the eigensolver's workspace (%zu bytes)",
                        fn, (size_t)lwork * sizeof(double) + (size_t)liwork * sizeof(int));
    }
    dsyevd_(jobz, "L", &n, A, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    tni_free(work);
    tni_free(iwork);
    if (info != 0)
        return tni_fail(ctx, TN_E_NUMERIC,
                        "%s: the symmetric eigensolver (LAPACK dsyevd) failed to converge (info %d)",
                        fn, info);
    /* dsyevd writes eigenvector k as column k of the column-major array,
     * which is row k of the row-major one: already the layout promised. */
    return TN_OK;
}

tn_status tni_clip_psd(tn_ctx *ctx, const char *fn, const char *what, double *w, size_t m)
{
    const double lmax = w[m - 1] > 0.0 ? w[m - 1] : 0.0;
    const double band = tni_kernel_tol(m) * lmax;
    if (!(w[0] >= -band))
        return tni_fail(ctx, TN_E_NUMERIC,
                        "%s: %s is not positive semi-definite (smallest eigenvalue %.6g, largest "
                        "%.6g; at most %.3g x largest below zero is taken for rounding)",
                        fn, what, w[0], w[m - 1], tni_kernel_tol(m));
    for (size_t k = 0; k < m && w[k] < 0.0; k++) w[k] = 0.0;
    return TN_OK;
}

int tni_eig_singular(const double *w, size_t m)
{
    return w[0] <= tni_kernel_tol(m) * w[m - 1];
}

tn_status tni_cholesky(size_t m, double *A, int *pivot)
{
    const int n = (int)m;
    int info = 0;
    dpotrf_("L", &n, A, &n, &info, 1);
    *pivot = info > 0 ? info : 0;
    return info == 0 ? TN_OK : TN_E_NUMERIC;
}

double tni_norm1_shifted(const double *A, size_t m, double shift)
{
    double best = 0.0;
    /* Row sums of the row-major array are column sums of A^T; for the
     * symmetric matrices this serves, the same thing. */
    for (size_t i = 0; i < m; i++) {
        double s = 0.0;
        for (size_t j = 0; j < m; j++) s += fabs(A[i * m + j] + (i == j ? shift : 0.0));
        if (s > best) best = s;
    }
    return best;
}

tn_status tni_cholesky_rcond(tn_ctx *ctx, const char *fn, size_t m, const double *L,
                             double anorm, double *rcond)
{
    const int n = (int)m;
    int info = 0;
    double *work = tni_alloc(ctx, 3 * m, sizeof(double));
    int *iwork = tni_alloc(ctx, m, sizeof(int));
    *rcond = 0.0;
    if (work == NULL || iwork == NULL) {
        tni_free(work);
        tni_free(iwork);
        return tni_fail(ctx, TN_E_NOMEM, "%s: out of memory for the condition estimate", fn);
    }
    dpocon_("L", &n, L, &n, &anorm, rcond, work, iwork, &info, 1);
    tni_free(work);
    tni_free(iwork);
    return TN_OK;
}

void tni_cholesky_solve(size_t m, const double *L, size_t nrhs, double *B, double *work)
{
    const int n = (int)m, k = (int)nrhs;
    int info = 0;
    /* dpotrs wants column-major right-hand sides; one column needs no copy. */
    double *cm = nrhs == 1 ? B : work;
    if (nrhs > 1)
        for (size_t i = 0; i < m; i++)
            for (size_t c = 0; c < nrhs; c++) cm[c * m + i] = B[i * nrhs + c];
    dpotrs_("L", &n, &k, L, &n, cm, &n, &info, 1);
    if (nrhs > 1)
        for (size_t i = 0; i < m; i++)
            for (size_t c = 0; c < nrhs; c++) B[i * nrhs + c] = cm[c * m + i];
}

void tni_lower_solve_t(size_t m, const double *L, size_t nrhs, double *Bt)
{
    const int n = (int)m, k = (int)nrhs;
    int info = 0;
    /* Bt row-major (nrhs x m) is B column-major (m x nrhs): no copy. */
    dtrtrs_("L", "N", "N", &n, &k, L, &n, Bt, &n, &info, 1, 1, 1);
}

/* expm1(u) / u, 1 at u = 0: relative accuracy for every u, no cancellation. */
static double phi(double u)
{
    return u == 0.0 ? 1.0 : expm1(u) / u;
}

/* Past |u| = 40, 1 - e^{-u} rounds to 1: g is exactly 1 / lam there. */
#define TNI_SATURATED 40.0

void tni_time_factors(int flow, double h, double t, double lam, double *mf, double *gf)
{
    if (t == 0.0) {
        *mf = 1.0;
        *gf = 0.0;
        return;
    }
    const double x = h * lam;
    if (x == 0.0) {
        /* lam = 0 (or so small that h lam underflows): the component never
         * moves, and (1 - m) / lam -> h t. */
        *mf = 1.0;
        *gf = h * t;
        return;
    }
    if (flow) {
        const double u = -x * t;
        *mf = exp(u);
        /* (1 - e^u) / lam = h t (expm1(u) / u): a product of accurate
         * factors, where 1 - exp(u) would lose everything for small x t. */
        *gf = u < -TNI_SATURATED ? 1.0 / lam : h * t * phi(u);
        return;
    }
    if (x < 1.0) {
        /* (1 - x)^t = exp(t log1p(-x)), and
         * (1 - m) / lam = h t phi(u) (log1p(-x) / -x), u = t log1p(-x). */
        const double L = log1p(-x);
        const double u = t * L;
        *mf = exp(u);
        *gf = u < -TNI_SATURATED ? 1.0 / lam : h * t * phi(u) * (L / -x);
        return;
    }
    if (x == 1.0) {
        *mf = 0.0;
        *gf = 1.0 / lam;
        return;
    }
    /* x > 1: the factor 1 - x is negative, its powers alternate in sign.
     * log |1 - x| = log1p(x - 2) near x = 2, where x - 2 is exact
     * (Sterbenz) and |1 - x| is close to 1, so even powers near 1 keep
     * their small distance from 1. */
    const double L = x < 3.0 ? log1p(x - 2.0) : log(x - 1.0);
    const double u = t * L;
    const int odd = fmod(t, 2.0) == 1.0;
    const double e = exp(u);
    *mf = odd ? -e : e;
    *gf = (odd ? 1.0 + e : -expm1(u)) / lam;
}
