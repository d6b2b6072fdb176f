/*
 * predict.h -- closed-form linearized dynamics under MSE and Gaussian-process
 * inference (docs/math.md §6).  The entry points in api/api_predict.c check
 * the arguments; the functions here assume them valid.
 *
 * Both handles keep one symmetric eigendecomposition of their (regularized)
 * kernel, which serves every time t, and redo it only when the diagonal
 * regularizer changes (lazily, at the next call that needs it).  Inverses
 * at t = INFINITY go through a Cholesky factor, kept likewise.
 */
#ifndef TNI_PREDICT_H
#define TNI_PREDICT_H

#include "../core/core.h"

/* "TNgp": the GP handle's tag (core.h has the others). */

struct tn_predictor {
    uint32_t magic;
    tn_ctx *ctx;
    size_t n, O;        /* train examples, outputs */
    int full;           /* 1: the kernel is (n O) x (n O), rows (i, c) */
    size_t m;           /* the kernel's dimension: n O (full) or n (traced) */
    size_t cols;        /* columns the kernel applies to: 1 (full) or O (traced) */
    double eta, reg;
    int time_mode;      /* TN_PRED_STEPS or TN_PRED_FLOW */
    double *K;          /* m x m, symmetrized, without reg */
    double *Y;          /* n x O */
    /* K + reg I = V^T diag(lam) V, V's rows the eigenvectors; valid when eig_ok. */
    double *V, *lam;
    int eig_ok;
    double *chol;       /* Cholesky factor of K + reg I, or NULL; valid when chol_ok */
    int chol_ok;
};

struct tn_gp {
    uint32_t magic;
    tn_ctx *ctx;
    size_t n, O;
    double reg, eta;
    double *K;          /* NNGP train kernel, n x n, symmetrized, without reg */
    double *T;          /* NTK train kernel likewise, or NULL */
    double *Y;          /* n x O */
    double *chol;       /* Cholesky factor of K + reg I, or NULL; valid when chol_ok */
    int chol_ok;
    double *V, *lam;    /* eigendecomposition of T + reg I as in tn_predictor */
    int eig_ok;
};

/* --- predictor.c --------------------------------------------------------- */
/* k (m x m) and y (n x O) are valid: finite, k symmetric (tni_check_kernel),
 * m <= TNI_EIGH_MAX_DIM. */
tn_status tni_predictor_new(tn_ctx *ctx, const double *k, size_t n, size_t O, int full,
                            const double *y, tn_predictor **out);
/* The learning rate, regularizer or time mode, already range-checked. */
void tni_predictor_set(tn_predictor *p, tn_predictor_param q, double value);
/* t is valid for the time mode; f0_train finite; the test arguments are
 * NULL when f_test_t is, and valid and finite otherwise. */
tn_status tni_predictor_predict(tn_predictor *p, double t, const double *f0_train,
                                double *f_train_t, const double *k_test_train,
                                const double *f0_test, size_t n_test, double *f_test_t);
void tni_predictor_delete(tn_predictor *p);

/* --- gp.c ---------------------------------------------------------------- */
tn_status tni_gp_new(tn_ctx *ctx, const double *nngp, const double *ntk, size_t n, size_t O,
                     const double *y, tn_gp **out);
void tni_gp_set(tn_gp *g, tn_gp_param q, double value);
/* Valid, finite arguments; nngp_test_test is non-NULL when cov is. */
tn_status tni_gp_nngp_posterior(tn_gp *g, const double *k_test_train,
                                const double *k_test_test, size_t n_test, double *mean,
                                double *cov);
/* g->T non-NULL; t >= 0 or INFINITY; nngp_test_train and nngp_test_test
 * non-NULL when cov is. */
tn_status tni_gp_ntk_posterior(tn_gp *g, double t, const double *ntk_test_train,
                               const double *nngp_test_train, const double *nngp_test_test,
                               size_t n_test, double *mean, double *cov);
void tni_gp_delete(tn_gp *g);

#endif
