/*
 * predict.h -- closed-form linearized dynamics under MSE and Gaussian-process
 * inference (docs/math.md §6).  The entry points in api/api_predict.c check
 * the arguments; the functions here assume them valid.
 *
 * Both handles keep their train kernels as tni_train_kernel: one
 * eigendecomposition of each (regularized) kernel serves every time t, and
 * is redone only when the diagonal regularizer changes (lazily, at the next
 * call that needs it); inverses go through a Cholesky factor, kept likewise.
 */
#ifndef TNI_PREDICT_H
#define TNI_PREDICT_H

#include "train_kernel.h"

/* "TNgp": the GP handle's tag (core.h has the others). */

struct tn_predictor {
    uint32_t magic;
    tn_ctx *ctx;
    size_t n, O;        /* train examples, outputs */
    int full;           /* 1: the kernel is (n O) x (n O), rows (i, c) */
    size_t m;           /* the kernel's dimension: n O (full) or n (traced) */
    size_t cols;        /* columns the kernel applies to: 1 (full) or O (traced) */
    double eta;
    int time_mode;      /* TN_PRED_STEPS or TN_PRED_FLOW */
    tni_train_kernel kern;  /* shift TN_PRED_DIAG_REG; eigenvectors kept */
    double *Y;          /* n x O */
};

struct tn_gp {
    uint32_t magic;
    tn_ctx *ctx;
    size_t n, O;
    double eta;
    tni_train_kernel nngp;  /* K, shift TN_GP_DIAG_REG; eigenvalues only (checked PSD), Cholesky */
    tni_train_kernel ntk;   /* Theta likewise, eigenvectors kept; K NULL when not given */
    double *Y;          /* n x O */
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
/* lambda_max of the kernel plus the regularizer (decomposing it if stale),
 * and 2 n_train / lambda_max (INFINITY for a zero kernel). */
tn_status tni_predictor_spectrum(tn_predictor *p, const char *fn, double *lambda_max,
                                 double *max_lr);
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
