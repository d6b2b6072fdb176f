/*
 * linalg.h -- the dense symmetric linear algebra of the closed-form
 * predictor and GP inference: LAPACK (dsyevd, dpotrf, dpotrs, dtrtrs,
 * dpocon) behind checked wrappers, the numerical-zero policy for
 * eigenvalues, and the time factors of the linearized dynamics computed
 * without cancellation.
 *
 * Storage: every matrix is row-major.  A symmetric matrix is its own
 * transpose, so LAPACK (column-major) reads it unchanged; what LAPACK
 * returns is described per function in row-major terms.
 */
#ifndef TNI_PREDICT_LINALG_H
#define TNI_PREDICT_LINALG_H

#include "../core/core.h"

/* Largest kernel dimension dsyevd can take with 32-bit LAPACK integers: its
 * workspace 1 + 6m + 2m^2 must fit in an int. */
#define TNI_EIGH_MAX_DIM 32766u

/* Relative tolerance of kernel entries and eigenvalues, for a kernel of
 * dimension m: 1e-10 * m.  Used three ways, one policy:
 *   - symmetry: |K_ij - K_ji| <= 1e-10 max|K| (the kernel used is
 *     (K + K^T)/2; the antisymmetric part left out has 2-norm at most
 *     m * 1e-10 max|K| <= tol * lambda_max, inside the band below);
 *   - eigenvalues in [-tol lambda_max, tol lambda_max] are numerically
 *     zero: negative ones are clipped to 0, anything below -tol lambda_max
 *     means the kernel is not positive semi-definite;
 *   - a kernel whose smallest eigenvalue lies in that band is singular for
 *     the purposes of an inverse (t = INFINITY).
 * Why 1e-10 * m: dsyevd is backward stable, its eigenvalues carry absolute
 * errors of a modest multiple of m eps lambda_max (eps = 2.2e-16), about
 * 5e5 times below the band; the kernel itself, accumulated over P
 * parameters in double, carries entry errors of order sqrt(P) eps (P eps at
 * worst) relative, which move eigenvalues by at most m times that: the band
 * covers entry errors up to 1e-10, i.e. P far beyond any kernel computed
 * here.  A genuinely indefinite matrix (a wrong kernel, a test-train block
 * passed by mistake) has lambda_min / lambda_max of order 1e-3 or more. */
double tni_kernel_tol(size_t m);

/* TN_OK if all m*m entries are finite (else TN_E_INVALID_ARG) and the
 * matrix is symmetric within tni_kernel_tol's policy (else TN_E_NUMERIC);
 * messages "<fn>: <name> ...". */
tn_status tni_check_kernel(tn_ctx *ctx, const char *fn, const char *name, const double *K,
                           size_t m);

/* out = (K + K^T) / 2 + reg I, m x m. */
void tni_sym_shift(const double *K, size_t m, double reg, double *out);

/* Eigendecomposition of the symmetric m x m matrix A (m <= TNI_EIGH_MAX_DIM)
 * by dsyevd: the eigenvalues w ascending and, with `vectors`, row k of A
 * the unit eigenvector of w[k] (without, A is destroyed).  TN_E_NOMEM
 * (workspace), TN_E_NUMERIC (no convergence). */
tn_status tni_eigh(tn_ctx *ctx, const char *fn, size_t m, double *A, double *w, int vectors);

/* Applies the numerical-zero policy to the ascending eigenvalues w of a
 * matrix meant to be positive semi-definite: clips the rounding-noise
 * negatives to 0, or returns TN_E_NUMERIC "<fn>: <what> is not positive
 * semi-definite (...)". */
tn_status tni_clip_psd(tn_ctx *ctx, const char *fn, const char *what, double *w, size_t m);

/* 1 if the smallest of the ascending, clipped eigenvalues w is numerically
 * zero (tni_kernel_tol). */
int tni_eig_singular(const double *w, size_t m);

/* Cholesky factor of the symmetric positive definite m x m matrix A, in
 * place (dpotrf, LAPACK's lower factor L in column-major order, so A = L L^T
 * with L^T in the upper triangle of the row-major array).  *pivot is 0, or
 * the order of the leading minor that is not positive (then TN_E_NUMERIC is
 * returned without a message: the caller knows what the matrix was). */
tn_status tni_cholesky(size_t m, double *A, int *pivot);

/* LAPACK's estimate of the 1-norm reciprocal condition number of A from its
 * Cholesky factor L (dpocon); anorm = the 1-norm of A.  0 on allocation
 * failure (TN_E_NOMEM is then returned). */
tn_status tni_cholesky_rcond(tn_ctx *ctx, const char *fn, size_t m, const double *L,
                             double anorm, double *rcond);

/* The 1-norm (max column sum of |a_ij|) of the symmetric m x m matrix
 * A + shift I. */
double tni_norm1_shifted(const double *A, size_t m, double shift);

/* B (m x nrhs, row-major) = A^-1 B from A's Cholesky factor (dpotrs); work
 * holds m * nrhs doubles. */
void tni_cholesky_solve(size_t m, const double *L, size_t nrhs, double *B, double *work);

/* C = L^-1 B for the Cholesky factor L, where B is given as its transpose:
 * Bt (nrhs x m, row-major) in, Bt = (L^-1 B)^T out (dtrtrs). */
void tni_lower_solve_t(size_t m, const double *L, size_t nrhs, double *Bt);

/* The time factors of the linearized dynamics on one eigenvalue lam >= 0 of
 * the kernel, for h = eta / N:
 *   *mf = m_t(lam)  = (1 - h lam)^t (steps, t a whole number) or
 *                     exp(-h lam t) (flow),
 *   *gf = g_t(lam)  = (1 - m_t(lam)) / lam, with its limit h t at lam = 0.
 * t is finite and >= 0.  Computed through expm1 / log1p so that nothing
 * cancels for small h lam: g is accurate to a few ulps relative for every
 * lam, including lam far below 1 / (h t).  With steps and h lam > 2 the
 * factors grow like |1 - h lam|^t and may overflow to infinity: that is what
 * gradient descent does, and the caller reports it. */
void tni_time_factors(int flow, double h, double t, double lam, double *mf, double *gf);

#endif
