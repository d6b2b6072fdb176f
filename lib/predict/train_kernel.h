/*
 * train_kernel.h -- a train kernel with the factorizations inference needs
 * of it, computed when first asked for and kept: the one cache behind the
 * closed-form predictor (its kernel) and the GP (its NNGP and NTK kernels).
 *
 * The kernel is kept symmetrized and without its diagonal shift (the
 * regularizer); everything derived is of K + shift I:
 *   - the eigendecomposition V^T diag(lam) V (rows of V the eigenvectors),
 *     or the eigenvalues alone for a kernel that only needs a Cholesky
 *     factor, with the numerical-zero policy of linalg.h applied;
 *   - the Cholesky factor.
 * A new shift marks both stale; they are redone at the next call that
 * needs them, and a failure leaves them stale so that call can be retried.
 *
 * Every kernel is checked positive semi-definite (eigenvalues down to
 * -tol lambda_max, linalg.h) when it is made: an indefinite kernel is the
 * caller's mistake, refused where it is given, and a shift >= 0 keeps a
 * PSD kernel PSD.
 */
#ifndef TNI_TRAIN_KERNEL_H
#define TNI_TRAIN_KERNEL_H

#include "../core/core.h"

typedef struct tni_train_kernel {
    tn_ctx *ctx;
    size_t m;
    const char *what;           /* "the kernel", "the NNGP train kernel": for messages */
    const char *shift_name;     /* the setting that is the shift: "TN_PRED_DIAG_REG" */
    double *K;                  /* m x m, symmetrized, without the shift */
    double shift;
    double *V;                  /* eigenvectors, or NULL when only eigenvalues are kept */
    double *lam;                /* eigenvalues, ascending, clipped; valid when eig_ok */
    int eig_ok;
    double *chol;               /* Cholesky factor (linalg.h's layout); valid when chol_ok */
    int chol_ok;
} tni_train_kernel;

/* Copies and symmetrizes K (m x m, finite, symmetric per tni_check_kernel),
 * and decomposes it: with eigenvectors when `vectors`, else eigenvalues
 * only.  TN_E_NUMERIC (not positive semi-definite), TN_E_NOMEM; on failure
 * nothing is left allocated.  Messages start with fn. */
tn_status tni_train_kernel_init(tni_train_kernel *k, tn_ctx *ctx, const char *fn,
                                const char *what, const char *shift_name, const double *K,
                                size_t m, int vectors);
void tni_train_kernel_release(tni_train_kernel *k);

/* A new shift (>= 0); the factorizations become stale if it differs. */
void tni_train_kernel_set_shift(tni_train_kernel *k, double shift);

/* The eigendecomposition of K + shift I, current. */
tn_status tni_train_kernel_eig(tni_train_kernel *k, const char *fn);

/* The Cholesky factor of K + shift I, current; `context` prefixes the
 * kernel's name in the message of a failure ("at t = infinity, "). */
tn_status tni_train_kernel_chol(tni_train_kernel *k, const char *fn, const char *context);

#endif
