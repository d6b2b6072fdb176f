/*
 * benchutil.h -- timing and the BLIS reference rate every benchmark prints
 * beside its own, so results read as a fraction of what this machine's GEMM
 * reaches on the same shapes in the same run.  The reference runs on the
 * library's own BLIS with the best kernel set for the CPU, whatever
 * TAYLORNET_KERNELS selects for the library: the benchmarks link the
 * library's internal archive, which carries that BLIS.
 */
#ifndef TN_BENCHUTIL_H
#define TN_BENCHUTIL_H

#define _POSIX_C_SOURCE 200809L
#include <blis.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "taylornet.h"
#include "kernel/kernels.h"   /* internal: the best kernel set's BLIS context */

/* Stops the benchmark with the context's message when a call fails. */
#define BU_CK(ctx, expr)                                                                     \
    do {                                                                                     \
        tn_status s_ = (expr);                                                               \
        if (s_ != TN_OK) {                                                                   \
            fprintf(stderr, "%s: %s (%s)\n", #expr, tn_status_string(s_), tn_ctx_errmsg(ctx)); \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

/* An MLP d -> widths[0] -> act -> ... -> widths[L-1], initialized from seed 1. */
static inline tn_net *bu_mlp(tn_ctx *ctx, size_t d, const size_t *widths, size_t L, tn_activation act)
{
    tn_net *net;
    BU_CK(ctx, tn_net_create(ctx, &d, 1, &net));
    for (size_t l = 0; l < L; l++) {
        BU_CK(ctx, tn_net_add_dense(net, widths[l]));
        if (l + 1 < L) BU_CK(ctx, tn_net_add_activation(net, act));
    }
    BU_CK(ctx, tn_net_init(net, 1));
    return net;
}

/* The first line of every benchmark: the kernels the library runs on. */
static inline void bu_print_blas(void)
{
    printf("%s\n", tn_blas_info());
}

static inline double bu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The smallest and the median of n timings (t is reordered). */
static inline double bu_min(const double *t, int n)
{
    double m = t[0];
    for (int i = 1; i < n; i++) m = t[i] < m ? t[i] : m;
    return m;
}

static inline int bu_cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double bu_median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, bu_cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* One GEMM shape of a workload: C (m x n) = op(A) op(B), inner dimension k. */
typedef struct bu_gemm {
    size_t m, n, k;
    int ta, tb;
} bu_gemm;

static inline double bu_flops(const bu_gemm *g, size_t count)
{
    double f = 0;
    for (size_t i = 0; i < count; i++) f += 2.0 * (double)g[i].m * (double)g[i].n * (double)g[i].k;
    return f;
}

/* The GEMMs of one full training step of an MLP d -> widths[0] -> ... ->
 * widths[L-1] at batch B, in the layout the engine uses: per dense layer the
 * forward Z = X W^T, the weight gradient Zbar^T X and, but for the first
 * layer (whose input cotangent nobody needs), the input cotangent Zbar W.
 * g holds 3 L entries; returns the count. */
static inline size_t bu_mlp_step_gemms(bu_gemm *g, size_t B, size_t d, const size_t *widths,
                                       size_t L)
{
    size_t ng = 0, in = d;
    for (size_t l = 0; l < L; l++) {
        const size_t out = widths[l];
        g[ng++] = (bu_gemm){B, out, in, 0, 1};
        g[ng++] = (bu_gemm){out, in, B, 1, 0};
        if (l > 0) g[ng++] = (bu_gemm){B, in, out, 0, 0};
        in = out;
    }
    return ng;
}

/* The reference: the shapes' products with BLIS directly, on the best
 * kernel set, `threads` threads through a local rntm_t, on operands kept
 * from one pass to the next.  Each pass times the shapes twice: with C
 * stored by rows (C = op(A) op(B)) and by columns (C^T = op(B)^T op(A)^T,
 * how the Fortran BLAS interface and the library issue it); the faster
 * storage order is the reference, so no ratio is flattered by a slow form
 * of the same product.
 *
 * The operands are shared by all shapes (one A, B and C, the largest), as
 * a GEMM benchmark that repeats one product would have them, or, with
 * `distinct`, each shape has its own, as in a network's step, where every
 * product reads other matrices.  Shared operands stay partly in the cache
 * from one product to the next: the step benchmark's shapes ran 4% faster
 * on them (43.3 against 45.0 ms), a rate no step can have. */
typedef struct bu_gemm_ref {
    const bu_gemm *g;
    size_t count;
    double *A, *B, *C;              /* shared */
    double **As, **Bs, **Cs;        /* one per shape */
    rntm_t rntm;
} bu_gemm_ref;

static inline double *bu_filled(size_t n, int mod, double scale)
{
    double *v = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) v[i] = (double)(i % (size_t)mod) * scale;  /* pages touched */
    return v;
}

/* with_distinct: also allocate the per-shape operands. */
static inline void bu_gemm_ref_init(bu_gemm_ref *r, const bu_gemm *g, size_t count, int threads,
                                    int with_distinct)
{
    size_t maxa = 0, maxb = 0, maxc = 0;
    r->As = calloc(count, sizeof(double *));
    r->Bs = calloc(count, sizeof(double *));
    r->Cs = calloc(count, sizeof(double *));
    for (size_t i = 0; i < count; i++) {
        if (g[i].m * g[i].k > maxa) maxa = g[i].m * g[i].k;
        if (g[i].k * g[i].n > maxb) maxb = g[i].k * g[i].n;
        if (g[i].m * g[i].n > maxc) maxc = g[i].m * g[i].n;
        if (!with_distinct) continue;
        r->As[i] = bu_filled(g[i].m * g[i].k, 17, 0.01);
        r->Bs[i] = bu_filled(g[i].k * g[i].n, 13, 0.01);
        r->Cs[i] = bu_filled(g[i].m * g[i].n, 1, 0.0);
    }
    r->g = g;
    r->count = count;
    r->A = bu_filled(maxa, 17, 0.01);
    r->B = bu_filled(maxb, 13, 0.01);
    r->C = bu_filled(maxc, 1, 0.0);
    bli_rntm_init(&r->rntm);
    bli_rntm_set_num_threads(threads, &r->rntm);
}

/* Seconds for one pass over the shapes, in the faster storage order, on
 * shared or distinct operands. */
static inline double bu_gemm_ref_time(bu_gemm_ref *r, int distinct)
{
    double one = 1.0, zero = 0.0, best = 1e30;
    cntx_t *cntx = (cntx_t *)tni_kernels_best_cntx();
    for (int by_cols = 0; by_cols < 2; by_cols++) {
        const double t0 = bu_now();
        for (size_t i = 0; i < r->count; i++) {
            const bu_gemm *s = &r->g[i];
            double *A = distinct ? r->As[i] : r->A, *B = distinct ? r->Bs[i] : r->B;
            double *C = distinct ? r->Cs[i] : r->C;
            /* Row-major operands as the library stores them. */
            const inc_t lda = (inc_t)(s->ta ? s->m : s->k), ldb = (inc_t)(s->tb ? s->k : s->n);
            const trans_t ta = s->ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE;
            const trans_t tb = s->tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE;
            if (by_cols)
                bli_dgemm_ex(tb, ta, (dim_t)s->n, (dim_t)s->m, (dim_t)s->k, &one, B, 1, ldb, A, 1,
                             lda, &zero, C, 1, (inc_t)s->n, cntx, &r->rntm);
            else
                bli_dgemm_ex(ta, tb, (dim_t)s->m, (dim_t)s->n, (dim_t)s->k, &one, A, lda, 1, B,
                             ldb, 1, &zero, C, (inc_t)s->n, 1, cntx, &r->rntm);
        }
        const double t = bu_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

static inline void bu_gemm_ref_free(bu_gemm_ref *r)
{
    for (size_t i = 0; i < r->count; i++) {
        free(r->As[i]);
        free(r->Bs[i]);
        free(r->Cs[i]);
    }
    free(r->As);
    free(r->Bs);
    free(r->Cs);
    free(r->A);
    free(r->B);
    free(r->C);
}

/* Seconds for one pass over the shapes (best of reps), shared operands. */
static inline double bu_gemm_seconds(const bu_gemm *g, size_t count, int threads, int reps)
{
    bu_gemm_ref r;
    bu_gemm_ref_init(&r, g, count, threads, 0);
    double best = 1e30;
    for (int i = 0; i < reps; i++) {
        const double t = bu_gemm_ref_time(&r, 0);
        if (t < best) best = t;
    }
    bu_gemm_ref_free(&r);
    return best;
}

#endif
