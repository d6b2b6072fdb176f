/* train_kernel.c -- a train kernel and its cached factorizations
 * (train_kernel.h). */
#include "train_kernel.h"
#include "linalg.h"

#include <stdio.h>
#include <string.h>

void tni_train_kernel_release(tni_train_kernel *k)
{
    tni_free(k->K);
    tni_free(k->V);
    tni_free(k->lam);
    tni_free(k->chol);
    memset(k, 0, sizeof *k);
}

/* A = K + shift I. */
static void shifted(const tni_train_kernel *k, double *A)
{
    const size_t m = k->m;
    memcpy(A, k->K, m * m * sizeof(double));
    for (size_t i = 0; i < m; i++) A[i * m + i] += k->shift;
}

tn_status tni_train_kernel_eig(tni_train_kernel *k, const char *fn)
{
    if (k->eig_ok) return TN_OK;
    const size_t m = k->m;
    /* dsyevd overwrites its input: V itself, or a scratch copy when only
     * the eigenvalues are kept. */
    double *A = k->V ? k->V : tni_alloc_or_fail(k->ctx, fn, m * m, sizeof(double));
    if (A == NULL) return TN_E_NOMEM;
    shifted(k, A);
    tn_status st = tni_eigh(k->ctx, fn, m, A, k->lam, k->V != NULL);
    if (A != k->V) tni_free(A);
    /* Entries near the largest double (or a shift that takes them past it)
     * have eigenvalues that overflow: nothing finite can be computed from
     * them, so say so here rather than let infinities through. */
    if (st == TN_OK && !(tni_all_finite(k->lam, m) && (k->V == NULL || tni_all_finite(k->V, m * m))))
        st = tni_fail(k->ctx, TN_E_NUMERIC,
                      "%s: %s%s%s has eigenvalues that overflow (entries too large by far: scale "
                      "it down)",
                      fn, k->what, k->shift > 0 ? " plus " : "", k->shift > 0 ? k->shift_name : "");
    if (st == TN_OK) {
        char name[128];
        snprintf(name, sizeof name, k->shift > 0 ? "%s plus %s" : "%s", k->what, k->shift_name);
        st = tni_clip_psd(k->ctx, fn, name, k->lam, m);
    }
    k->eig_ok = st == TN_OK;
    return st;
}

tn_status tni_train_kernel_chol(tni_train_kernel *k, const char *fn, const char *context)
{
    if (k->chol_ok) return TN_OK;
    const size_t m = k->m;
    if (k->chol == NULL) {
        k->chol = tni_alloc_or_fail(k->ctx, fn, m * m, sizeof(double));
        if (k->chol == NULL) return TN_E_NOMEM;
    }
    shifted(k, k->chol);
    int pivot;
    if (tni_cholesky(m, k->chol, &pivot) != TN_OK)
        return tni_fail(k->ctx, TN_E_NUMERIC,
                        "%s: %s%s%s%s is not positive definite (Cholesky factorization failed at "
                        "leading minor %d); set %s",
                        fn, context, k->what, k->shift > 0 ? " plus " : "",
                        k->shift > 0 ? k->shift_name : "", pivot, k->shift_name);
    k->chol_ok = 1;
    return TN_OK;
}

void tni_train_kernel_set_shift(tni_train_kernel *k, double shift)
{
    if (shift == k->shift) return;
    k->shift = shift;
    k->eig_ok = 0;
    k->chol_ok = 0;
}

tn_status tni_train_kernel_init(tni_train_kernel *k, tn_ctx *ctx, const char *fn,
                                const char *what, const char *shift_name, const double *K,
                                size_t m, int vectors)
{
    memset(k, 0, sizeof *k);
    k->ctx = ctx;
    k->m = m;
    k->what = what;
    k->shift_name = shift_name;
    k->K = tni_alloc(ctx, m * m, sizeof(double));
    k->lam = tni_alloc(ctx, m, sizeof(double));
    if (vectors) k->V = tni_alloc(ctx, m * m, sizeof(double));
    if (k->K == NULL || k->lam == NULL || (vectors && k->V == NULL)) {
        tni_train_kernel_release(k);
        return tni_fail(ctx, TN_E_NOMEM, "%s: out of memory for a kernel of dimension %zu", fn, m);
    }
    tni_sym_shift(K, m, 0.0, k->K);
    const tn_status st = tni_train_kernel_eig(k, fn);
    if (st != TN_OK) tni_train_kernel_release(k);
    return st;
}
